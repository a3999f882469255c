//! Realistic JSON payloads (`--json-payload`): what a compression measurement must be fed, since
//! one repeated byte compresses to almost nothing and says nothing about real traffic.
//!
//! Owns the shape of the generated documents: below 1 KiB a chat message (ids, a timestamp, a
//! line of text, mentions), from 1 KiB a dashboard update (a list of series with changing
//! values), as `benches/deflate.rs` uses. Variant `k` changes the numbers (ids, timestamps,
//! values), never the length: every number is written at a fixed width (padded with spaces, as
//! JSON allows, or with zeros inside strings), so all variants of one size are exactly `size`
//! bytes (a pre-encoded burst of several variants needs equal frames).
//! Never produces invalid JSON, never does I/O.

/// The smallest payload `--json-payload` can fill exactly: `{"seq":…,"note":""}`.
pub const MIN_JSON_PAYLOAD: usize = 64;

/// Distinct variants a sender cycles through: enough that a compressor with context takeover
/// cannot simply point back at the identical previous message.
pub const VARIANTS: u64 = 16;

/// Words the free text is made of (chat lines and the padding note).
const WORDS: [&str; 16] = [
    "ok", "shipping", "it", "to", "staging", "now", "works", "on", "my", "machine", "lgtm",
    "deploy", "after", "lunch", "the", "build",
];

/// A JSON document of exactly `size` bytes (`size` ≥ [`MIN_JSON_PAYLOAD`]), variant `k`.
pub fn json_payload(size: usize, k: u64) -> Vec<u8> {
    assert!(size >= MIN_JSON_PAYLOAD, "checked by the plan");
    let mut s = format!(
        r#"{{"seq":{:>10},"ts":{:013}"#,
        k,
        1_764_081_000_123 + k * 917
    );
    // Fixed-width items while they fit with room for the closing note.
    let tail = r#","note":""}"#.len();
    let mut i = 0u64;
    loop {
        let item = if size < 1024 {
            chat_field(i, k)
        } else {
            dashboard_field(i, k)
        };
        if s.len() + item.len() + tail > size {
            break;
        }
        s.push_str(&item);
        i += 1;
    }
    // The rest is free text, as long as needed to make `size` exactly.
    let mut note = String::new();
    let mut w = k as usize;
    while note.len() < size - s.len() - tail {
        if !note.is_empty() {
            note.push(' ');
        }
        note.push_str(WORDS[w % WORDS.len()]);
        w += 3;
    }
    note.truncate(size - s.len() - tail);
    s.push_str(r#","note":""#);
    s.push_str(&note);
    s.push_str(r#""}"#);
    debug_assert_eq!(s.len(), size);
    s.into_bytes()
}

/// One field of a chat message: who, which room, a line of text.
fn chat_field(i: u64, k: u64) -> String {
    let word = |n: u64| WORDS[((k + n) % WORDS.len() as u64) as usize];
    match i % 4 {
        0 => format!(
            r#","user":"user-{:04}","from":"0:{:05}.0""#,
            k % 97,
            k % 9973
        ),
        1 => format!(
            r#","text{}":"{:<8} {:<8} {:<8} {:<8}""#,
            i,
            word(i),
            word(i + 1),
            word(i + 2),
            word(i + 5)
        ),
        2 => format!(r#","reply_to{}":{:>8}"#, i, 900 + k / 3),
        _ => format!(r#","mentions{}":["@ops","@user-{:04}"]"#, i, (k + 5) % 13),
    }
}

/// One entry of a dashboard update: a host's metric and its current value.
fn dashboard_field(i: u64, k: u64) -> String {
    let v = (k * 7919 + i * 104_729) % 100_000;
    format!(
        r#","s{:03}":{{"host":"web-{:02}","metric":"cpu.user","value":{:>3}.{:02},"unit":"percent","ok":{}}}"#,
        i,
        i % 40,
        v / 1000 % 1000,
        v % 100,
        if v % 7 != 0 { "true " } else { "false" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_valid_json_of_exactly_the_size_asked() {
        for size in [64, 65, 128, 300, 1023, 1024, 4096, 65_536] {
            let first = json_payload(size, 0);
            for k in 0..VARIANTS {
                let p = json_payload(size, k);
                assert_eq!(p.len(), size, "size {size} variant {k}");
                let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
                assert!(v.is_object());
                if k > 0 {
                    assert_ne!(p, first, "variants differ");
                }
            }
        }
    }

    #[test]
    fn the_documents_look_like_their_kind() {
        let chat = String::from_utf8(json_payload(300, 3)).unwrap();
        assert!(chat.contains(r#""user":"user-0003""#), "{chat}");
        let dash = String::from_utf8(json_payload(4096, 3)).unwrap();
        assert!(dash.contains(r#""metric":"cpu.user""#), "{dash}");
        assert!(!dash.contains(r#""t":"#), "never the fanout send-time key");
    }
}
