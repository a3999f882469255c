//! Arbitrary bytes through the auth path of `Policy::admit_request`: as a whole request head, as
//! a token carried in each of the three places (header, query, `bearer.` protocol), and as JWT
//! claims signed with the right and a wrong secret. Never a panic; a token the fuzzer made up
//! never verifies; a token signed with the server's secret verifies exactly when its claims obey
//! the rules (modelled here independently), and then names its `sub`.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use ringcast::proto::handshake::{HandshakeLimits, Request};
use ringcast::security::auth::AuthError;
use ringcast::security::{AuthMode, Now, Policy, Refusal, Secret, SecurityConfig};
use serde_json::Value;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret!";
const WRONG: &str = "not-the-secret-not-the-secret-not-it";
const NOW_S: u64 = 1_700_000_000;
const NOW: Now = Now {
    tick_ms: 0,
    unix_ms: NOW_S * 1000,
};
const LEEWAY: u64 = 30;

fn policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let config = SecurityConfig {
            auth: AuthMode::Required,
            auth_jwt_secret: Some(Secret(SECRET.into())),
            auth_leeway: std::time::Duration::from_secs(LEEWAY),
            ..SecurityConfig::default()
        };
        Policy::new(&config, None).expect("valid policy")
    })
}

fn head(target: &str, header: Option<(&str, &str)>) -> Option<Request> {
    let mut text = format!("GET {target} HTTP/1.1\r\nHost: h\r\n");
    if let Some((name, value)) = header {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    Request::parse_head(text.as_bytes(), &HandshakeLimits::default()).ok()
}

/// Every request form carrying `token` is refused: no made-up token verifies.
fn assert_forged_refused(token: &str) {
    let forms = [
        head("/ws", Some(("Authorization", &format!("Bearer {token}")))),
        head(&format!("/ws?token={token}"), None),
        head(
            "/ws",
            Some(("Sec-WebSocket-Protocol", &format!("bearer.{token}"))),
        ),
    ];
    for request in forms.into_iter().flatten() {
        let result = policy().admit_request(&request, [192, 0, 2, 1].into(), NOW);
        assert!(
            matches!(result, Err(Refusal::Auth(_))),
            "forged token admitted: {token:?}"
        );
    }
}

/// What the verifier must say about these claims when the signature is good.
fn model(claims: &Value) -> Result<String, AuthError> {
    let obj = claims.as_object().ok_or(AuthError::InvalidClaims)?;
    let field = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let exp = match field("exp") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(AuthError::InvalidClaims)?),
    };
    let nbf = match field("nbf") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(AuthError::InvalidClaims)?),
    };
    let sub = match field("sub") {
        None => None,
        Some(v) => Some(v.as_str().ok_or(AuthError::InvalidClaims)?.to_owned()),
    };
    let rooms = match field("rooms") {
        None => None,
        Some(v) => {
            let list = v.as_array().ok_or(AuthError::InvalidClaims)?;
            if list.iter().any(|r| !r.is_string()) {
                return Err(AuthError::InvalidClaims);
            }
            Some(list.len())
        }
    };
    let exp = exp.ok_or(AuthError::MissingExpiry)?;
    if NOW_S >= exp.saturating_add(LEEWAY) {
        return Err(AuthError::Expired);
    }
    if nbf.is_some_and(|nbf| NOW_S.saturating_add(LEEWAY) < nbf) {
        return Err(AuthError::NotYetValid);
    }
    let sub = sub
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or(AuthError::MissingSubject)?;
    if rooms.is_some_and(|n| n > 256) {
        return Err(AuthError::InvalidClaims);
    }
    Ok(sub)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // A whole request head: whatever it carries, it cannot hold a valid token.
        0 => {
            if let Ok(request) = Request::parse_head(rest, &HandshakeLimits::default()) {
                let result = policy().authenticate(&request, NOW.unix_ms);
                assert!(result.is_err(), "request admitted without a real token");
            }
        }
        // A made-up token, also with a syntactically valid header of each algorithm.
        1 => {
            let text = String::from_utf8_lossy(rest);
            assert_forged_refused(&text);
            for alg in ["none", "HS256", "HS512", "RS256", "ES256"] {
                let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
                let token = format!("{header}.{}", URL_SAFE_NO_PAD.encode(rest));
                assert_forged_refused(&token);
                let dotted = format!(
                    "{header}.{}.{}",
                    URL_SAFE_NO_PAD.encode(rest),
                    URL_SAFE_NO_PAD.encode(rest)
                );
                assert_forged_refused(&dotted);
            }
        }
        // Claims signed for real: the wrong secret never verifies, the right one as modelled.
        _ => {
            let Ok(claims) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let wrong = encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(WRONG.as_bytes()),
            )
            .expect("JSON values serialise");
            assert_forged_refused(&wrong);
            let right = encode(
                &Header::new(Algorithm::HS384),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("JSON values serialise");
            let request = head("/ws", Some(("Authorization", &format!("Bearer {right}"))))
                .expect("a JWT is a valid header value");
            let got = policy()
                .authenticate(&request, NOW.unix_ms)
                .map(|id| id.user.expect("a verified token names a user").to_string());
            let want = model(&claims).map_err(Refusal::Auth);
            match (&got, &want) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                // Any refusal where the model refuses (serde may classify a wrong type before
                // a missing field), but never a signature or algorithm failure.
                (Err(Refusal::Auth(e)), Err(_)) => assert!(
                    !matches!(
                        e,
                        AuthError::BadSignature
                            | AuthError::AlgorithmNotAllowed
                            | AuthError::AlgorithmNone
                    ),
                    "{e:?} for {claims}"
                ),
                _ => panic!("verifier {got:?}, model {want:?}, claims {claims}"),
            }
        }
    }
});
