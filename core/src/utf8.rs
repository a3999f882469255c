//! Incremental, fail-fast UTF-8 validation of text messages (RFC 6455 §5.6, §8.1).
//!
//! Owns the rule "text is UTF-8" across arbitrary cuts: a message may arrive in fragments, and a
//! fragment in TCP pieces, so a code point may be split anywhere. The validator checks each piece
//! in bulk with `simdutf8` (compat API: `valid_up_to` / `error_len`) and carries an incomplete
//! trailing code point (at most 3 bytes) over to the next piece.
//!
//! Fail-fast: [`Utf8Validator::feed`] fails as soon as the bytes seen so far can no longer be the
//! prefix of valid UTF-8, not at the end of the message (Autobahn 6.4.x).
//!
//! Never allocates, never copies a piece (only the ≤ 3 carried bytes), never looks at a byte twice
//! except those carried bytes.

/// The bytes seen are not, and cannot become, UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

impl From<InvalidUtf8> for super::ProtocolError {
    fn from(_: InvalidUtf8) -> Self {
        super::ProtocolError::InvalidUtf8
    }
}

/// Validates one text message piece by piece.
///
/// Invariant: `carry[..carry_len]` is a strict prefix of one UTF-8 code point (a lead byte and
/// 0..=2 continuation bytes that are still allowed after it), and every byte before it was valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The incomplete code point at the end of the last piece (room for a whole one).
    carry: [u8; 4],
    /// How many bytes of `carry` are in use: 0..=3.
    carry_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Utf8Validator {
            carry: [0; 4],
            carry_len: 0,
        }
    }

    /// Forgets any carried bytes: the start of a new message.
    #[inline]
    pub fn reset(&mut self) {
        self.carry_len = 0;
    }

    /// `true` when the bytes fed so far end on a code point boundary.
    #[inline]
    pub fn is_boundary(&self) -> bool {
        self.carry_len == 0
    }

    /// Validates the next piece of the message.
    ///
    /// Fails as soon as the message so far cannot be a prefix of valid UTF-8. Cost: one bulk
    /// `simdutf8` pass over `piece`, plus at most 3 copied bytes to finish a carried code point.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), InvalidUtf8> {
        let mut rest = piece;
        if self.carry_len > 0 {
            let have = usize::from(self.carry_len);
            let need = sequence_len(self.carry[0]);
            let take = (need - have).min(rest.len());
            self.carry[have..have + take].copy_from_slice(&rest[..take]);
            let filled = have + take;
            match std::str::from_utf8(&self.carry[..filled]) {
                Ok(_) => {
                    self.carry_len = 0;
                    rest = &rest[take..];
                }
                // Still a valid prefix: the piece ran out before the code point did.
                Err(e) if e.error_len().is_none() => {
                    debug_assert_eq!(take, rest.len());
                    self.carry_len = filled as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => Ok(()),
            // `error_len() == None`: "the end of the input was reached unexpectedly", i.e. the
            // tail is a valid but incomplete code point (at most 3 bytes). Keep it for later.
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                debug_assert!(!tail.is_empty() && tail.len() <= 3);
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: an incomplete code point at the end is invalid. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_boundary();
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of the sequence a (valid) lead byte starts (RFC 3629 §4).
#[inline]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        // 0xF0..=0xF4; the invariant rules out anything else.
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Model: can `bytes` still be extended into valid UTF-8?
    fn valid_prefix(bytes: &[u8]) -> bool {
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn a_four_byte_code_point_split_at_every_byte_is_valid() {
        let text = "a€𝄞é".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(
                    feed_all(&[&text[..a], &text[a..b], &text[b..]]),
                    Ok(()),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn a_message_ending_inside_a_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xE2, 0x82]), Ok(()));
        assert!(!v.is_boundary());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish resets: the next message starts clean.
        assert_eq!(v.feed(b"ok"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn fails_on_the_first_byte_that_makes_the_prefix_impossible() {
        // Autobahn 6.4.1-style: a valid start, then 0xF4 0x90 (> U+10FFFF) fails at 0x90, before
        // the rest of the message arrives.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn rejects_overlongs_surrogates_and_stray_continuations() {
        for bad in [
            &[0xC0, 0xAF][..],
            &[0xE0, 0x80, 0xAF],
            &[0xED, 0xA0, 0x80],
            &[0x80],
            &[0xF8, 0x88, 0x80, 0x80, 0x80],
            &[0xFF],
        ] {
            for cut in 0..=bad.len() {
                assert_eq!(feed_all(&[&bad[..cut], &bad[cut..]]), Err(InvalidUtf8));
            }
        }
    }

    #[test]
    fn a_carried_lead_byte_followed_by_ascii_fails() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'x', 0xE0]), Ok(()));
        assert_eq!(v.feed(b"A"), Err(InvalidUtf8));
    }

    #[test]
    fn empty_pieces_change_nothing() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[]), Ok(()));
        assert_eq!(v.feed(&[0xF0, 0x9F]), Ok(()));
        assert_eq!(v.feed(&[]), Ok(()));
        assert_eq!(v.feed(&[0x98, 0x80]), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    proptest! {
        #[test]
        fn agrees_with_std_and_fails_at_the_first_impossible_piece(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), 0x80u8..0xC0, Just(0xE2), Just(0xF0)], 0..64),
            cuts in prop::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut v = Utf8Validator::new();
            let mut start = 0;
            let mut failed = false;
            for &end in &cuts {
                let got = v.feed(&bytes[start..end]);
                prop_assert_eq!(got.is_ok(), valid_prefix(&bytes[..end]), "piece ending at {}", end);
                start = end;
                if got.is_err() { failed = true; break; }
            }
            if !failed {
                prop_assert_eq!(v.finish().is_ok(), std::str::from_utf8(&bytes).is_ok());
            }
        }
    }
}
