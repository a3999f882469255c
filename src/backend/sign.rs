//! The signature of a request to the backend: HMAC-SHA256 over `"<timestamp>.<body>"`.
//!
//! Sans-IO and pure: the sender passes the timestamp in. The signed content binds the body to the
//! time it was sent, so a receiver that checks both (signature in constant time, timestamp within
//! a few minutes of its clock) refuses a replayed request. It must never log or render the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature: `sha256=<64 lowercase hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Ringcast-Signature";
/// The header carrying the timestamp (Unix seconds) that is part of the signed content.
pub const TIMESTAMP_HEADER: &str = "X-Ringcast-Timestamp";

/// `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body)).
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently with Python's standard library:
        // hmac.new(b"Jefe", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"Jefe", 1_700_000_000, b"{}"),
            "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(
            signature(b"Jefe", 1_700_000_001, b"{}"),
            signature(b"Jefe", 1_700_000_000, b"{}")
        );
    }
}
