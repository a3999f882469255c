//! Any bytes as a request head (and as a server response): fed whole, and split at a point the
//! data chooses. Never a panic; both feeds give the same result; an accepted upgrade satisfies
//! every RFC 6455 §4.2.1 rule, re-checked here independently of the parser; every error renders
//! a well-formed response; our 101 passes our own client's check.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ringcast::proto::handshake::{
    validate_upgrade, ClientKey, HandshakeLimits, Parse, RequestParser, ResponseValidator,
    ServerAccepted, UpgradeConfig,
};
use sha1::{Digest, Sha1};

/// Small limits so the fuzzer reaches both 431 paths quickly.
const LIMITS: HandshakeLimits = HandshakeLimits {
    max_head_bytes: 1024,
    max_headers: 16,
};

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(selector) * bytes.len() / 255;

    let whole = RequestParser::new(LIMITS).parse(bytes);
    let mut parser = RequestParser::new(LIMITS);
    let split = match parser.parse(&bytes[..cut]) {
        Ok(Parse::Partial) => parser.parse(bytes),
        done => done,
    };
    assert_eq!(whole, split, "split at {cut}");
    assert!(parser.scanned() <= LIMITS.max_head_bytes);

    let config = UpgradeConfig::with_protocols(["chat", "json"]);
    let mut out = Vec::new();
    match &whole {
        Ok(Parse::Partial) => assert!(bytes.len() < LIMITS.max_head_bytes),
        Ok(Parse::Complete(req, consumed)) => {
            assert!(*consumed <= bytes.len() && *consumed <= LIMITS.max_head_bytes);
            assert!(bytes[..*consumed].ends_with(b"\r\n\r\n"));
            assert!(req.header_count() <= LIMITS.max_headers);
            match validate_upgrade(req, &config) {
                Ok(up) => {
                    // §4.2.1, re-checked from the raw header list.
                    assert_eq!(req.method(), "GET");
                    assert_eq!(req.minor_version(), 1);
                    let all = |name: &'static str| {
                        req.headers()
                            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                            .map(|(_, v)| v)
                            .collect::<Vec<_>>()
                    };
                    let hosts = all("host");
                    assert!(hosts.len() == 1 && !hosts[0].is_empty());
                    assert!(all("upgrade")
                        .iter()
                        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"websocket"))));
                    assert!(all("connection")
                        .iter()
                        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"upgrade"))));
                    assert_eq!(all("sec-websocket-version"), [&b"13"[..]]);
                    let keys = all("sec-websocket-key");
                    assert_eq!(keys.len(), 1);
                    let key = keys[0];
                    let nonce: [u8; 16] = STANDARD
                        .decode(key)
                        .expect("accepted key is base64")
                        .try_into()
                        .expect("accepted key decodes to 16 bytes");
                    let mut sha = Sha1::new();
                    sha.update(key);
                    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
                    assert_eq!(
                        up.accept_key().as_bytes(),
                        STANDARD.encode(sha.finalize()).as_bytes()
                    );
                    if let Some(p) = up.protocol() {
                        assert!(req.protocols().iter().any(|o| o == p));
                        assert!(config.protocols.iter().any(|o| o == p));
                    }

                    // Our 101 passes our own client's §4.1 checks.
                    let client_key = ClientKey::from_nonce(nonce);
                    assert_eq!(client_key.as_str().as_bytes(), key);
                    up.render_response(&mut out);
                    let offered: Vec<&str> = req.protocols().iter().map(String::as_str).collect();
                    let checked = ResponseValidator::new(&client_key, &offered, LIMITS).feed(&out);
                    assert_eq!(
                        checked,
                        Ok(Parse::Complete(
                            ServerAccepted {
                                protocol: up.protocol().map(str::to_owned)
                            },
                            out.len()
                        ))
                    );
                }
                Err(e) => {
                    e.render_response(&mut out);
                    assert!(out.starts_with(format!("HTTP/1.1 {} ", e.status()).as_bytes()));
                    assert!(out.ends_with(format!("\r\n\r\n{}\n", e.reason()).as_bytes()));
                }
            }
        }
        Err(e) => {
            e.render_response(&mut out);
            assert!(out.starts_with(format!("HTTP/1.1 {} ", e.status()).as_bytes()));
        }
    }

    // The same bytes as a server's response to some client: same whole/split agreement.
    let key = ClientKey::from_nonce(*b"the sample nonce");
    let whole = ResponseValidator::new(&key, &["chat"], LIMITS).feed(bytes);
    let mut validator = ResponseValidator::new(&key, &["chat"], LIMITS);
    let split = match validator.feed(&bytes[..cut]) {
        Ok(Parse::Partial) => validator.feed(bytes),
        done => done,
    };
    assert_eq!(whole, split, "response split at {cut}");
});
