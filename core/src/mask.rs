//! Payload masking (RFC 6455 §5.3): `transformed[i] = original[i] XOR key[i % 4]`.
//!
//! Owns the XOR transform, in a scalar reference ([`apply_mask_scalar`]) and a word-wide fast path
//! ([`apply_mask`]) that must agree with it for every length and alignment. Never allocates, never
//! uses `unsafe`: the fast path works on 8-byte chunks through `from_ne_bytes`, which the compiler
//! turns into plain (and auto-vectorised) word loads.
//!
//! `offset` is the position of `buf[0]` within the frame payload, so a payload can be unmasked in
//! pieces as it arrives: piece after piece, each with the running offset.

/// Scalar reference: one byte at a time. Kept for testing and benchmarking the fast path.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset + i) & 3];
    }
}

/// Fast path: XORs 32 bytes per step with a key widened to 64 bits, then 8, then bytes.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that key[0] applies to buf[0].
    let key = rotate(key, offset);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);

    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            xor_word(word, wide);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        xor_word(word, wide);
    }
    // A multiple of 8 bytes was consumed, so the key phase is unchanged for the tail.
    apply_mask_scalar(words.into_remainder(), key, 0);
}

#[inline(always)]
fn xor_word(word: &mut [u8], wide: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(word);
    word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
}

#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let r = offset & 3;
    [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_hello() {
        // §5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn fast_equals_scalar_for_every_length_alignment_and_offset() {
        let key = [0xA1, 0x5B, 0x07, 0xE3];
        let source: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        for align in 0..16 {
            for len in 0..=64 {
                for offset in 0..4 {
                    let mut fast = source.clone();
                    let mut slow = source.clone();
                    apply_mask(&mut fast[align..align + len], key, offset);
                    apply_mask_scalar(&mut slow[align..align + len], key, offset);
                    assert_eq!(fast, slow, "align {align} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [1, 2, 3, 250];
        let whole: Vec<u8> = (0..100u8).collect();
        let mut at_once = whole.clone();
        apply_mask(&mut at_once, key, 0);
        for cut in 0..whole.len() {
            let mut pieces = whole.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, at_once, "cut {cut}");
        }
    }
}
