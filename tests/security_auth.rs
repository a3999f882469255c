//! JWT on the upgrade, as a specification: which tokens open a connection, which get 401 (and
//! with what headers), where a token may be carried, what the `rooms` claim grants, and what
//! happens when a token expires or is refreshed. Sans-IO: requests are parsed from bytes, time is
//! passed in. The RSA and EC keys in `tests/security_fixtures/` are test-only, made with openssl.

use std::net::IpAddr;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ringcast::proto::handshake::{HandshakeLimits, Request};
use ringcast::security::auth::{
    extract_token, AuthError, Rooms, TokenSource, Verifier, TOKEN_EXPIRED_CLOSE_CODE,
    TOKEN_EXPIRED_REASON,
};
use ringcast::security::{AuthMode, Identity, Now, Policy, Refusal, Secret, SecurityConfig};
use serde_json::{json, Value};

const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!";
const RSA_PRIVATE: &[u8] = include_bytes!("security_fixtures/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("security_fixtures/rsa_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("security_fixtures/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("security_fixtures/ec_public.pem");

/// 2023-11-14T22:13:20Z, in seconds and milliseconds.
const NOW_S: u64 = 1_700_000_000;
const NOW_MS: u64 = NOW_S * 1000;
const NOW: Now = Now {
    tick_ms: 5_000,
    unix_ms: NOW_MS,
};
const LEEWAY_S: u64 = 30;

fn peer() -> IpAddr {
    "203.0.113.7".parse().unwrap()
}

fn claims(sub: &str, exp: u64) -> Value {
    json!({ "sub": sub, "exp": exp })
}

fn hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE).unwrap();
    encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn secret_verifier() -> Verifier {
    Verifier::new(Some(SECRET.as_bytes()), None, LEEWAY_S).unwrap()
}

fn policy(mode: AuthMode, secret: bool, pem: Option<&[u8]>) -> Policy {
    let config = SecurityConfig {
        auth: mode,
        auth_jwt_secret: secret.then(|| Secret(SECRET.into())),
        auth_leeway: std::time::Duration::from_secs(LEEWAY_S),
        ..SecurityConfig::default()
    };
    Policy::new(&config, pem).expect("valid policy")
}

fn request(target: &str, headers: &[(&str, &str)]) -> Request {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Request::parse_head(head.as_bytes(), &HandshakeLimits::default()).expect("valid head")
}

fn bearer(token: &str) -> Request {
    request("/ws", &[("Authorization", &format!("Bearer {token}"))])
}

// --- what verifies --------------------------------------------------------------------------

#[test]
fn a_valid_hs256_token_yields_its_subject_and_expiry() {
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("alice", NOW_S + 60),
    );
    let id = secret_verifier().verify(&token, NOW_MS).unwrap();
    assert_eq!(id.user.as_deref(), Some("alice"));
    assert_eq!(id.expires_at, Some(NOW_S + 60));
    assert_eq!(id.rooms, Rooms::Any);
}

#[test]
fn hs384_and_hs512_verify_with_the_same_secret() {
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = hs(alg, SECRET.as_bytes(), &claims("bob", NOW_S + 60));
        assert!(secret_verifier().verify(&token, NOW_MS).is_ok(), "{alg:?}");
    }
}

#[test]
fn rs256_verifies_with_an_rsa_public_key_and_es256_with_an_ec_one() {
    let rsa = Verifier::new(None, Some(RSA_PUBLIC), LEEWAY_S).unwrap();
    let id = rsa
        .verify(&rs256(&claims("r", NOW_S + 60)), NOW_MS)
        .unwrap();
    assert_eq!(id.user.as_deref(), Some("r"));
    let ec = Verifier::new(None, Some(EC_PUBLIC), LEEWAY_S).unwrap();
    let id = ec.verify(&es256(&claims("e", NOW_S + 60)), NOW_MS).unwrap();
    assert_eq!(id.user.as_deref(), Some("e"));
    // Each key verifies only its own algorithm.
    assert_eq!(
        ec.verify(&rs256(&claims("r", NOW_S + 60)), NOW_MS),
        Err(AuthError::AlgorithmNotAllowed)
    );
}

// --- what does not ----------------------------------------------------------------------------

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("alice", NOW_S + 60),
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(&serde_json::to_vec(&claims("admin", NOW_S + 60)).unwrap());
    let forged = parts.join(".");
    assert_eq!(
        secret_verifier().verify(&forged, NOW_MS),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_token_signed_with_another_secret_fails_the_signature() {
    let token = hs(
        Algorithm::HS256,
        b"some-other-secret-also-32-bytes-long!!",
        &claims("alice", NOW_S + 60),
    );
    assert_eq!(
        secret_verifier().verify(&token, NOW_MS),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_flipped_signature_byte_fails_the_rs256_signature() {
    let token = rs256(&claims("alice", NOW_S + 60));
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = sig.to_owned().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}.{}", String::from_utf8(sig).unwrap());
    let rsa = Verifier::new(None, Some(RSA_PUBLIC), LEEWAY_S).unwrap();
    assert_eq!(rsa.verify(&forged, NOW_MS), Err(AuthError::BadSignature));
}

#[test]
fn alg_none_is_refused_whatever_its_case() {
    for alg in ["none", "None", "NONE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let payload = b64(&serde_json::to_vec(&claims("alice", NOW_S + 60)).unwrap());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            assert_eq!(
                secret_verifier().verify(&token, NOW_MS),
                Err(AuthError::AlgorithmNone),
                "{token}"
            );
        }
    }
}

#[test]
fn an_rsa_public_key_used_as_an_hs256_secret_is_refused() {
    // The classic algorithm-confusion forgery: the attacker knows the public key and signs with
    // it as an HMAC secret, hoping the server verifies HS256 with "its key".
    let forged = hs(Algorithm::HS256, RSA_PUBLIC, &claims("admin", NOW_S + 3600));
    let public_only = Verifier::new(None, Some(RSA_PUBLIC), LEEWAY_S).unwrap();
    assert_eq!(
        public_only.verify(&forged, NOW_MS),
        Err(AuthError::AlgorithmNotAllowed)
    );
    // With a secret configured too, HS256 is checked against the secret, never the PEM.
    let both = Verifier::new(Some(SECRET.as_bytes()), Some(RSA_PUBLIC), LEEWAY_S).unwrap();
    assert_eq!(both.verify(&forged, NOW_MS), Err(AuthError::BadSignature));
    // And the real RS256 token still verifies with both keys configured.
    assert!(both
        .verify(&rs256(&claims("r", NOW_S + 60)), NOW_MS)
        .is_ok());
}

#[test]
fn an_rs256_token_meets_no_key_when_only_a_secret_is_configured() {
    assert_eq!(
        secret_verifier().verify(&rs256(&claims("r", NOW_S + 60)), NOW_MS),
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[test]
fn an_unsupported_algorithm_is_refused() {
    let header = b64(br#"{"alg":"PS256"}"#);
    let payload = b64(&serde_json::to_vec(&claims("a", NOW_S + 60)).unwrap());
    assert_eq!(
        secret_verifier().verify(&format!("{header}.{payload}.c2ln"), NOW_MS),
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[test]
fn a_token_past_exp_plus_leeway_is_expired_and_within_it_is_not() {
    let v = secret_verifier();
    let token = hs(Algorithm::HS256, SECRET.as_bytes(), &claims("a", NOW_S));
    // exp == now is accepted only thanks to the leeway ...
    assert!(v.verify(&token, NOW_MS).is_ok());
    assert!(v.verify(&token, (NOW_S + LEEWAY_S - 1) * 1000).is_ok());
    // ... and refused from exp + leeway on (RFC 7519 §4.1.4: "on or after").
    assert_eq!(
        v.verify(&token, (NOW_S + LEEWAY_S) * 1000),
        Err(AuthError::Expired)
    );
    let strict = Verifier::new(Some(SECRET.as_bytes()), None, 0).unwrap();
    assert_eq!(strict.verify(&token, NOW_MS), Err(AuthError::Expired));
}

#[test]
fn a_token_whose_nbf_is_beyond_the_leeway_is_not_yet_valid() {
    let v = secret_verifier();
    let early = json!({ "sub": "a", "exp": NOW_S + 3600, "nbf": NOW_S + LEEWAY_S + 1 });
    let token = hs(Algorithm::HS256, SECRET.as_bytes(), &early);
    assert_eq!(v.verify(&token, NOW_MS), Err(AuthError::NotYetValid));
    let skewed = json!({ "sub": "a", "exp": NOW_S + 3600, "nbf": NOW_S + LEEWAY_S });
    let token = hs(Algorithm::HS256, SECRET.as_bytes(), &skewed);
    assert!(v.verify(&token, NOW_MS).is_ok());
}

#[test]
fn a_token_without_exp_or_sub_is_refused() {
    let v = secret_verifier();
    let no_exp = hs(Algorithm::HS256, SECRET.as_bytes(), &json!({ "sub": "a" }));
    assert_eq!(v.verify(&no_exp, NOW_MS), Err(AuthError::MissingExpiry));
    let no_sub = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &json!({ "exp": NOW_S + 60 }),
    );
    assert_eq!(v.verify(&no_sub, NOW_MS), Err(AuthError::MissingSubject));
    let empty_sub = hs(Algorithm::HS256, SECRET.as_bytes(), &claims("", NOW_S + 60));
    assert_eq!(v.verify(&empty_sub, NOW_MS), Err(AuthError::MissingSubject));
}

#[test]
fn claims_of_the_wrong_type_are_invalid() {
    let v = secret_verifier();
    for bad in [
        json!({ "sub": "a", "exp": "tomorrow" }),
        json!({ "sub": "a", "exp": NOW_S + 60, "rooms": "lobby" }),
        json!({ "sub": "a", "exp": NOW_S + 60, "rooms": [1, 2] }),
        json!({ "sub": 7, "exp": NOW_S + 60 }),
    ] {
        let token = hs(Algorithm::HS256, SECRET.as_bytes(), &bad);
        assert_eq!(
            v.verify(&token, NOW_MS),
            Err(AuthError::InvalidClaims),
            "{bad}"
        );
    }
}

#[test]
fn text_that_is_not_a_jwt_is_malformed() {
    let v = secret_verifier();
    for junk in ["", "abc", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.e30"] {
        assert_eq!(v.verify(junk, NOW_MS), Err(AuthError::Malformed), "{junk}");
    }
}

#[test]
fn an_empty_secret_is_not_a_key() {
    assert!(Verifier::new(Some(b""), None, 0).is_err());
    assert!(Verifier::new(None, Some(b"-----BEGIN PUBLIC KEY-----\nnope\n"), 0).is_err());
}

// --- rooms ----------------------------------------------------------------------------------

#[test]
fn the_rooms_claim_allows_exact_names_and_star_wildcards_only() {
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &json!({ "sub": "a", "exp": NOW_S + 60, "rooms": ["lobby", "team-*", "*.public", "a*b*c"] }),
    );
    let rooms = secret_verifier().verify(&token, NOW_MS).unwrap().rooms;
    for allowed in [
        "lobby", "team-", "team-red", "x.public", ".public", "abc", "aXbYc", "abbbc",
    ] {
        assert!(rooms.can_join(allowed), "{allowed}");
    }
    for refused in [
        "Lobby", "lobby2", "team", "public", "xpublic", "ab", "acb", "", "admin",
    ] {
        assert!(!rooms.can_join(refused), "{refused}");
    }
}

#[test]
fn no_rooms_claim_allows_every_room_and_an_empty_list_none() {
    assert!(Rooms::Any.can_join("anything"));
    assert!(!Rooms::Only(vec![]).can_join("anything"));
    assert!(Rooms::Only(vec!["*".into()]).can_join(""));
}

#[test]
fn a_pathological_wildcard_pattern_answers_without_backtracking_blowup() {
    // Exponential for a naive backtracking matcher; linear passes for the two-pointer one.
    let pattern = "*a".repeat(100) + "b";
    let room = "a".repeat(256);
    assert!(!Rooms::Only(vec![pattern]).can_join(&room));
}

// --- where the token comes from -----------------------------------------------------------

#[test]
fn a_token_is_read_from_the_header_then_the_query_then_a_bearer_protocol() {
    let r = request(
        "/ws?token=from-query",
        &[
            ("Authorization", "Bearer from-header"),
            ("Sec-WebSocket-Protocol", "chat, bearer.from-protocol"),
        ],
    );
    let (t, s) = extract_token(&r).unwrap();
    assert_eq!((t.as_ref(), s), ("from-header", TokenSource::Header));

    let r = request(
        "/ws?room=1&token=from%2Dquery",
        &[("Sec-WebSocket-Protocol", "bearer.from-protocol")],
    );
    let (t, s) = extract_token(&r).unwrap();
    assert_eq!((t.as_ref(), s), ("from-query", TokenSource::Query));

    let r = request(
        "/ws",
        &[
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("Sec-WebSocket-Protocol", "chat, Bearer.from-protocol"),
        ],
    );
    let (t, s) = extract_token(&r).unwrap();
    assert_eq!((t.as_ref(), s), ("from-protocol", TokenSource::Protocol));

    assert!(extract_token(&request("/ws", &[("Sec-WebSocket-Protocol", "chat")])).is_none());
}

#[test]
fn a_token_in_a_bearer_protocol_entry_opens_the_connection() {
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("br", NOW_S + 60),
    );
    let r = request(
        "/ws",
        &[("Sec-WebSocket-Protocol", &format!("chat, bearer.{token}"))],
    );
    let admitted = policy(AuthMode::Required, true, None)
        .admit_request(&r, peer(), NOW)
        .unwrap();
    assert_eq!(admitted.identity.user.as_deref(), Some("br"));
}

// --- the policy's answers ---------------------------------------------------------------------

#[test]
fn required_auth_without_a_token_is_401_with_a_bare_bearer_challenge() {
    let err = policy(AuthMode::Required, true, None)
        .admit_request(&request("/ws", &[]), peer(), NOW)
        .unwrap_err();
    assert_eq!(err, Refusal::Auth(AuthError::Missing));
    assert_eq!(err.status(), 401);
    assert_eq!(err.label(), "auth_missing");
    let mut out = Vec::new();
    err.render(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    assert!(
        text.contains("\r\nWWW-Authenticate: Bearer realm=\"ringcast\"\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\nauthentication required\n"),
        "{text}"
    );
}

#[test]
fn an_expired_token_is_401_with_an_invalid_token_challenge() {
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("a", NOW_S - 3600),
    );
    let err = policy(AuthMode::Required, true, None)
        .admit_request(&bearer(&token), peer(), NOW)
        .unwrap_err();
    assert_eq!(err, Refusal::Auth(AuthError::Expired));
    assert_eq!(err.label(), "auth_expired");
    let mut out = Vec::new();
    err.render(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "WWW-Authenticate: Bearer realm=\"ringcast\", error=\"invalid_token\", \
             error_description=\"token expired\"\r\n"
        ),
        "{text}"
    );
}

#[test]
fn optional_auth_admits_without_a_token_but_not_with_a_bad_one() {
    let p = policy(AuthMode::Optional, true, None);
    let anon = p.admit_request(&request("/ws", &[]), peer(), NOW).unwrap();
    assert_eq!(anon.identity.user, None);
    assert_eq!(anon.identity.rooms, Rooms::Any);
    assert_eq!(
        p.admit_request(&bearer("garbage"), peer(), NOW)
            .unwrap_err(),
        Refusal::Auth(AuthError::Malformed)
    );
}

#[test]
fn auth_off_ignores_even_a_forged_token() {
    let p = policy(AuthMode::Off, false, None);
    let admitted = p.admit_request(&bearer("garbage"), peer(), NOW).unwrap();
    assert_eq!(admitted.identity.user, None);
}

#[test]
fn a_public_key_alone_is_enough_for_required_auth() {
    let p = policy(AuthMode::Required, false, Some(EC_PUBLIC));
    let token = es256(&claims("ec-user", NOW_S + 60));
    let admitted = p.admit_request(&bearer(&token), peer(), NOW).unwrap();
    assert_eq!(admitted.identity.user.as_deref(), Some("ec-user"));
}

#[test]
fn from_config_reads_the_public_key_file_and_refuses_one_that_is_not_pem() {
    let fixture = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/security_fixtures")
            .join(name)
    };
    let config = SecurityConfig {
        auth: AuthMode::Required,
        auth_jwt_public_key: Some(fixture("ec_public.pem")),
        ..SecurityConfig::default()
    };
    let p = Policy::from_config(&config).expect("valid policy");
    let token = es256(&claims("ec-user", NOW_S + 60));
    let admitted = p.admit_request(&bearer(&token), peer(), NOW).unwrap();
    assert_eq!(admitted.identity.user.as_deref(), Some("ec-user"));

    let not_pem = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let wrong = SecurityConfig {
        auth_jwt_public_key: Some(not_pem),
        ..config.clone()
    };
    let err = Policy::from_config(&wrong).unwrap_err();
    assert_eq!(err.field(), "auth_jwt_public_key");
    assert!(err.to_string().contains("Cargo.toml"), "{err}");

    // PEM text passed in directly, no file named: the error has no file to name.
    let in_memory = SecurityConfig {
        auth_jwt_public_key: None,
        ..config
    };
    let err = Policy::new(&in_memory, Some(b"not a pem")).unwrap_err();
    assert_eq!(err.field(), "auth_jwt_public_key");
    assert!(
        err.to_string().starts_with("invalid auth_jwt_public_key: "),
        "{err}"
    );
}

// --- expiry during the connection --------------------------------------------------------

#[test]
fn the_expiry_deadline_includes_the_leeway_and_is_zero_once_passed() {
    let p = policy(AuthMode::Required, true, None);
    let token = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("a", NOW_S + 60),
    );
    let id = p
        .admit_request(&bearer(&token), peer(), NOW)
        .unwrap()
        .identity;
    assert_eq!(
        p.ms_until_expiry(&id, NOW_MS + 500),
        Some((60 + LEEWAY_S) * 1000 - 500)
    );
    assert_eq!(p.ms_until_expiry(&id, (NOW_S + 10_000) * 1000), Some(0));
    assert_eq!(p.ms_until_expiry(&Identity::anonymous(), NOW_MS), None);
    assert_eq!(TOKEN_EXPIRED_CLOSE_CODE, 4001);
    assert_eq!(TOKEN_EXPIRED_REASON, "token expired");
}

#[test]
fn a_refresh_for_the_same_subject_replaces_the_identity_and_moves_the_deadline() {
    let p = policy(AuthMode::Required, true, None);
    let first = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("a", NOW_S + 60),
    );
    let id = p
        .admit_request(&bearer(&first), peer(), NOW)
        .unwrap()
        .identity;
    let later = json!({ "sub": "a", "exp": NOW_S + 600, "rooms": ["lobby"] });
    let second = hs(Algorithm::HS256, SECRET.as_bytes(), &later);
    let next = p.refresh(&id, &second, NOW_MS).unwrap();
    assert_eq!(next.expires_at, Some(NOW_S + 600));
    assert!(next.rooms.can_join("lobby") && !next.rooms.can_join("other"));
    assert_eq!(
        p.ms_until_expiry(&next, NOW_MS),
        Some((600 + LEEWAY_S) * 1000)
    );
}

#[test]
fn a_refresh_for_another_subject_is_forbidden_and_a_bad_one_unauthorized() {
    let p = policy(AuthMode::Required, true, None);
    let id = p
        .admit_request(
            &bearer(&hs(
                Algorithm::HS256,
                SECRET.as_bytes(),
                &claims("a", NOW_S + 60),
            )),
            peer(),
            NOW,
        )
        .unwrap()
        .identity;
    let other = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("b", NOW_S + 600),
    );
    let err = p.refresh(&id, &other, NOW_MS).unwrap_err();
    assert_eq!(err, AuthError::SubjectChanged);
    assert_eq!((err.status(), err.reply_code()), (403, "forbidden"));
    let expired = hs(
        Algorithm::HS256,
        SECRET.as_bytes(),
        &claims("a", NOW_S - 600),
    );
    let err = p.refresh(&id, &expired, NOW_MS).unwrap_err();
    assert_eq!(
        (err.clone(), err.reply_code()),
        (AuthError::Expired, "token_expired")
    );
    assert_eq!(
        p.refresh(&id, "junk", NOW_MS).unwrap_err().reply_code(),
        "unauthorized"
    );
}

#[test]
fn a_refresh_with_auth_off_is_refused() {
    let p = policy(AuthMode::Off, false, None);
    assert_eq!(
        p.refresh(&Identity::anonymous(), "x", NOW_MS),
        Err(AuthError::Disabled)
    );
}

#[test]
fn a_private_key_given_as_the_public_key_is_refused_at_start_up() {
    for private in [RSA_PRIVATE, EC_PRIVATE] {
        let err = Verifier::new(None, Some(private), LEEWAY_S).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
    }
    assert!(Verifier::new(None, Some(RSA_PUBLIC), LEEWAY_S).is_ok());
    assert!(Verifier::new(None, Some(EC_PUBLIC), LEEWAY_S).is_ok());
}
