//! The load tool's permessage-deflate client (RFC 7692), for `--deflate`: the offer a browser
//! makes, the check of the server's answer, and inflating the server's compressed messages.
//!
//! Owns: the offer line ([`OFFER`]); reading the server's `Sec-WebSocket-Extensions` answer out
//! of a response head ([`take_answer`]) so that the crate's response validator (which offers no
//! extension and would refuse any answer) checks the rest; and one connection's inflate state
//! ([`ClientInflate`]). §7.1: a client "MUST _Fail the WebSocket Connection_" on an answer it
//! cannot accept (another extension, unknown or repeated parameters, bad values, a
//! `client_max_window_bits` it did not offer): each is a [`DeflateError`].
//!
//! The tool sends its own messages uncompressed (RSV1 clear, which §6 allows on a connection that
//! negotiated the extension), so what a run measures is the server's compression, the bytes it
//! puts on the wire, and (in `echo`) nothing of the server's inflation.
//!
//! Never does I/O. Never inflates past the largest message the tool accepts: the crate's
//! [`Inflater`] stops at the limit (the same bounded code the server uses on its side).

use ringcast::proto::deflate::negotiate::parse_offer;
use ringcast::proto::deflate::{Inflater, EXTENSION_NAME, MAX_WINDOW_BITS};
use ringcast::proto::handshake::ExtensionOffer;

/// What the tool offers: what Chrome and Firefox send.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Why the server's answer to the offer is refused (§7.1), or a compressed message is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeflateError {
    /// The answer names an extension other than permessage-deflate, or several.
    #[error("the server answered an extension that was not offered")]
    NotOffered,
    /// The answer's parameters are not a valid permessage-deflate response.
    #[error("invalid permessage-deflate answer: {0}")]
    BadAnswer(String),
    /// A compressed message from the server did not inflate (or inflated past the limit).
    #[error("a compressed message did not inflate: {0}")]
    Inflate(ringcast::proto::deflate::InflateError),
}

/// What the server's answer lets the tool's inflater do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// §7.1.1.1: each server message starts from an empty window, so the inflate context may
    /// be reset after each one.
    pub server_no_context_takeover: bool,
    /// The server's window (§7.1.2.1), 8..=15.
    pub server_max_window_bits: u8,
}

/// Splits a complete response head (ending with the empty line) into the head without its
/// `Sec-WebSocket-Extensions` lines, for the crate's validator, and the server's answer to
/// [`OFFER`] (`None`: the offer was declined).
pub fn take_answer(head: &[u8]) -> Result<(Vec<u8>, Option<Answer>), DeflateError> {
    const NAME: &[u8] = b"sec-websocket-extensions:";
    let mut rest = Vec::with_capacity(head.len());
    let mut values = Vec::new();
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            let value = String::from_utf8_lossy(&line[NAME.len()..])
                .trim()
                .to_owned();
            if !value.is_empty() {
                values.push(value);
            }
        } else {
            rest.extend_from_slice(line);
        }
    }
    let answer = match values.as_slice() {
        [] => None,
        [one] => Some(parse_answer(one)?),
        _ => return Err(DeflateError::NotOffered),
    };
    Ok((rest, answer))
}

/// Reads `permessage-deflate; param[=value]; …`: one element, our extension, parameters as
/// an offer's (the crate's [`parse_offer`] checks names, repeats and values), and a
/// `client_max_window_bits` only with a value (§7.1.2.2: a response includes it "with a value").
fn parse_answer(value: &str) -> Result<Answer, DeflateError> {
    if value.contains(',') {
        return Err(DeflateError::NotOffered);
    }
    let mut parts = value.split(';').map(str::trim);
    let name = parts.next().unwrap_or_default();
    if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return Err(DeflateError::NotOffered);
    }
    let mut params = Vec::new();
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_owned())),
            None => (p, None),
        };
        params.push((name.to_owned(), value));
    }
    let offer = ExtensionOffer {
        name: name.to_owned(),
        params,
    };
    let parsed = parse_offer(&offer).map_err(|e| DeflateError::BadAnswer(e.to_string()))?;
    if parsed.client_max_window_bits == Some(None) {
        return Err(DeflateError::BadAnswer(
            "client_max_window_bits without a value".to_owned(),
        ));
    }
    Ok(Answer {
        server_no_context_takeover: parsed.server_no_context_takeover,
        server_max_window_bits: parsed.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
    })
}

/// One connection's side of the server's compressed messages: the payload gathered over its
/// frames, then inflated (with the context kept between messages unless the server said
/// `server_no_context_takeover`). Buffers are reused: no allocation per message once they have
/// grown to the largest message.
pub struct ClientInflate {
    answer: Answer,
    /// Made at the first compressed message.
    inflater: Option<Box<Inflater>>,
    /// The compressed payload of the message being received.
    pending: Vec<u8>,
    /// The last inflated message.
    out: Vec<u8>,
}

impl std::fmt::Debug for ClientInflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInflate")
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

impl ClientInflate {
    /// Inflate state for a connection that negotiated `answer`.
    pub fn new(answer: Answer) -> ClientInflate {
        ClientInflate {
            answer,
            inflater: None,
            pending: Vec::new(),
            out: Vec::new(),
        }
    }

    /// A piece of the compressed message being received.
    pub fn push(&mut self, piece: &[u8]) {
        self.pending.extend_from_slice(piece);
    }

    /// Inflates the message gathered by [`ClientInflate::push`] (at most `max` bytes) and
    /// returns it; the next message starts empty.
    pub fn finish(&mut self, max: usize) -> Result<&[u8], DeflateError> {
        let answer = self.answer;
        let inflater = self.inflater.get_or_insert_with(|| {
            Box::new(Inflater::new(
                answer.server_max_window_bits,
                answer.server_no_context_takeover,
            ))
        });
        self.out.clear();
        let result = inflater.inflate(&self.pending, max, &mut self.out);
        self.pending.clear();
        result.map_err(DeflateError::Inflate)?;
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast::proto::deflate::Deflater;

    fn head(ext: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             {ext}Sec-WebSocket-Accept: x\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_answer_is_read_and_removed_from_the_head() {
        let (rest, answer) = take_answer(&head(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n",
        ))
        .unwrap();
        assert_eq!(rest, head(""));
        assert_eq!(
            answer,
            Some(Answer {
                server_no_context_takeover: true,
                server_max_window_bits: 15
            })
        );
        let (_, answer) =
            take_answer(&head("sec-websocket-extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=12\r\n")).unwrap();
        assert_eq!(
            answer,
            Some(Answer {
                server_no_context_takeover: false,
                server_max_window_bits: 10
            })
        );
        assert_eq!(take_answer(&head("")).unwrap(), (head(""), None));
    }

    #[test]
    fn answers_a_client_must_refuse_are_errors() {
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; unknown",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits",
        ] {
            let h = head(&format!("Sec-WebSocket-Extensions: {bad}\r\n"));
            assert!(take_answer(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn compressed_messages_inflate_with_or_without_context_takeover() {
        for takeover in [false, true] {
            let mut def = Deflater::new(1, 15, !takeover);
            let mut inf = ClientInflate::new(Answer {
                server_no_context_takeover: !takeover,
                server_max_window_bits: 15,
            });
            for m in [&b"hello hello"[..], b"hello hello", b"", b"bye"] {
                let mut z = Vec::new();
                def.compress(m, &mut z);
                let (a, b) = z.split_at(z.len() / 2);
                inf.push(a);
                inf.push(b);
                assert_eq!(inf.finish(100).unwrap(), m);
            }
            let mut z = Vec::new();
            def.compress(&[b'a'; 1000], &mut z);
            inf.push(&z);
            assert!(matches!(inf.finish(999), Err(DeflateError::Inflate(_))));
        }
    }
}
