//! Any bytes → `decode_header` never panics; a complete header re-encodes to bytes that decode to
//! the same header, and `Partial` never claims fewer bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::{decode_header, DecodeLimits, HeaderStatus, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let limits = DecodeLimits {
        max_frame_len: if selector & 1 == 0 { 1 << 20 } else { u64::MAX },
        allowed_rsv: (selector >> 1) & 0b111,
        expect_masked: selector & 0x10 == 0,
    };
    match decode_header(wire, &limits) {
        Ok(HeaderStatus::Complete { header, header_len }) => {
            assert!(header_len <= wire.len() && header_len <= MAX_HEADER_LEN);
            assert_eq!(header.mask.is_some(), limits.expect_masked);
            assert!(header.payload_len <= limits.max_frame_len);
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut out);
            assert_eq!(n, header.encoded_len());
            assert!(n <= header_len, "minimal encoding is never longer");
            assert_eq!(
                decode_header(&out[..n], &limits),
                Ok(HeaderStatus::Complete {
                    header,
                    header_len: n
                })
            );
        }
        Ok(HeaderStatus::Partial { needed }) => {
            assert!(needed > wire.len() && needed <= MAX_HEADER_LEN);
        }
        Err(e) => assert!((1000..=1015).contains(&e.close_code())),
    }
});
