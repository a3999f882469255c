//! Incremental search for the end of an HTTP head (`\r\n\r\n`), bounded by a byte limit.
//!
//! Owns: remembering how far a growing buffer has been searched, so a head arriving a few bytes
//! per read costs O(total bytes), not O(bytes²). Never parses, never allocates, never looks past
//! the limit: a caller that stops reading once it gets [`ScanStatus::TooLarge`] never holds more
//! than `limit` bytes of head.
//!
//! Contract: every call gets the same buffer, grown at the end (the bytes already seen unchanged).

/// The terminator of an HTTP head: the CRLF ending the last header line, then the empty line
/// (RFC 7230 §3: `HTTP-message = start-line *( header-field CRLF ) CRLF [ message-body ]`).
const TERMINATOR: &[u8; 4] = b"\r\n\r\n";

/// What one scan found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStatus {
    /// The head is the first `usize` bytes, terminator included.
    Complete(usize),
    /// No terminator yet and fewer than `limit` bytes seen: read more.
    Partial,
    /// `limit` bytes seen without a terminator: the head cannot fit.
    TooLarge,
}

/// Remembers how far a growing buffer has been searched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadScanner {
    /// Bytes at `[..scanned]` have been searched. Invariant: no terminator *starts* before
    /// `scanned - 3`; one may start in the last three searched bytes and end in new bytes, so the
    /// next search resumes 3 bytes back.
    scanned: usize,
    /// Total bytes examined over every call (including the 3-byte overlaps): the proof, for
    /// tests and curious callers, that nothing is rescanned. At most `len + 3 × calls`.
    examined: usize,
}

impl HeadScanner {
    /// A scanner that has seen nothing.
    pub fn new() -> HeadScanner {
        HeadScanner::default()
    }

    /// Searches the bytes of `buf` not searched before (plus 3 bytes of overlap), never past
    /// `limit`. Cost: O(new bytes).
    pub fn scan(&mut self, buf: &[u8], limit: usize) -> ScanStatus {
        let window_end = buf.len().min(limit);
        // `min` keeps a contract-breaking shorter buffer from panicking; it is searched again.
        let start = self
            .scanned
            .saturating_sub(TERMINATOR.len() - 1)
            .min(window_end);
        self.examined += window_end - start;
        if let Some(at) = find_terminator(&buf[start..window_end]) {
            let head_len = start + at + TERMINATOR.len();
            self.scanned = head_len;
            return ScanStatus::Complete(head_len);
        }
        self.scanned = window_end;
        // A terminator not within the first `limit` bytes would end past `limit`.
        if buf.len() >= limit {
            ScanStatus::TooLarge
        } else {
            ScanStatus::Partial
        }
    }

    /// How many leading bytes have been searched.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    /// Total bytes examined over every call so far (see the field's invariant).
    pub fn examined(&self) -> usize {
        self.examined
    }
}

/// The offset of the first `\r\n\r\n` in `hay`: Boyer-Moore-Horspool on the 4-byte pattern.
/// It looks at the byte under the pattern's last position and shifts by how far that byte
/// forbids a match: `\n` → 2 (it could be the pattern's second byte), `\r` → 1 (its third),
/// any other byte → 4 (no pattern byte). Header text is mostly "other", so most steps skip 4
/// bytes. [`find_terminator_naive`] is the reference it is tested against.
fn find_terminator(hay: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + TERMINATOR.len() <= hay.len() {
        match hay[i + 3] {
            b'\n' => {
                if hay[i..i + 4] == *TERMINATOR {
                    return Some(i);
                }
                i += 2;
            }
            b'\r' => i += 1,
            _ => i += 4,
        }
    }
    None
}

/// The obvious search, kept as the reference for [`find_terminator`].
#[cfg(test)]
fn find_terminator_naive(hay: &[u8]) -> Option<usize> {
    hay.windows(TERMINATOR.len()).position(|w| w == TERMINATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skipping_search_agrees_with_the_naive_one_on_every_short_crlf_string() {
        // Every string of length 0..=9 over {\r, \n, x}: all overlaps and near-misses.
        let alphabet = [b'\r', b'\n', b'x'];
        for len in 0..=9u32 {
            for mut code in 0..3usize.pow(len) {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[code % 3];
                        code /= 3;
                        b
                    })
                    .collect();
                assert_eq!(
                    find_terminator(&hay),
                    find_terminator_naive(&hay),
                    "{hay:?}"
                );
            }
        }
    }

    #[test]
    fn a_terminator_split_across_two_reads_is_found() {
        let msg = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for cut in 0..msg.len() {
            let mut s = HeadScanner::new();
            let first = s.scan(&msg[..cut], 1024);
            if first != ScanStatus::Partial {
                assert_eq!(first, ScanStatus::Complete(msg.len()), "cut {cut}");
                continue;
            }
            assert_eq!(
                s.scan(msg, 1024),
                ScanStatus::Complete(msg.len()),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn a_head_fed_one_byte_at_a_time_is_examined_at_most_len_plus_three_per_call() {
        let mut msg = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            msg.extend_from_slice(format!("X-Header-{i}: some value\r\n").as_bytes());
        }
        msg.extend_from_slice(b"\r\n");
        let mut s = HeadScanner::new();
        let mut calls = 0;
        for end in 1..=msg.len() {
            calls += 1;
            let status = s.scan(&msg[..end], 1 << 20);
            if end < msg.len() {
                assert_eq!(status, ScanStatus::Partial);
                assert_eq!(s.scanned(), end);
            } else {
                assert_eq!(status, ScanStatus::Complete(msg.len()));
            }
        }
        assert!(
            s.examined() <= msg.len() + 3 * calls,
            "examined {} bytes of a {}-byte head in {calls} calls",
            s.examined(),
            msg.len()
        );
        // Rescanning from the start on every read would examine about len²/2 bytes.
        assert!(s.examined() < msg.len() * 5);
    }

    #[test]
    fn a_head_ending_exactly_at_the_limit_is_complete() {
        let msg = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            HeadScanner::new().scan(msg, msg.len()),
            ScanStatus::Complete(msg.len())
        );
    }

    #[test]
    fn a_head_one_byte_over_the_limit_is_too_large_even_when_its_terminator_has_arrived() {
        let msg = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            HeadScanner::new().scan(msg, msg.len() - 1),
            ScanStatus::TooLarge
        );
    }

    #[test]
    fn fewer_bytes_than_the_limit_without_terminator_is_partial() {
        let mut s = HeadScanner::new();
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\n\r", 18), ScanStatus::Partial);
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\n\r", 17), ScanStatus::TooLarge);
    }
}
