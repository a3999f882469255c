//! `apply_mask` (fast) equals `apply_mask_scalar` (reference) for any data, key and offset, and
//! masking twice restores the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::mask::{apply_mask, apply_mask_scalar};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let key = [data[0], data[1], data[2], data[3]];
    let offset = usize::from(data[4]);
    // Mask a sub-slice starting at a data-chosen alignment; the bytes before it must not change.
    let source = &data[6..];
    let align = usize::from(data[5] & 15).min(source.len());
    let mut fast = source.to_vec();
    let mut slow = source.to_vec();
    apply_mask(&mut fast[align..], key, offset);
    apply_mask_scalar(&mut slow[align..], key, offset);
    assert_eq!(fast, slow);
    apply_mask(&mut fast[align..], key, offset);
    assert_eq!(fast, source);
});
