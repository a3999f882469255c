//! Tokens for the tests that connect as a user: HS256, signed with the test's secret, valid for an
//! hour. Apart from `common` because the load tool's tests share `common` and have no JWT crate.
#![allow(dead_code)]

/// An HS256 token signed with `secret` carrying `claims` plus an `exp` one hour from now (the
/// claims' own `exp`, if any, is replaced).
pub fn hs256_token_with(secret: &str, mut claims: serde_json::Value) -> String {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    claims["exp"] = serde_json::json!(exp);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An HS256 token for user `sub`, signed with `secret`, valid for an hour.
pub fn hs256_token(secret: &str, sub: &str) -> String {
    hs256_token_with(secret, serde_json::json!({ "sub": sub }))
}
