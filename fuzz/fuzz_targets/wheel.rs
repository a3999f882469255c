//! Random insert / cancel / reset / advance sequences against a `BTreeMap` model keyed by
//! (effective deadline, filing order): the wheel must fire the same values in the same order at
//! the same advances, and stale keys must miss.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ringcast::time::{TimerKey, TimerWheel};

/// Reads a deadline offset: the scale byte picks ticks, seconds-ish, far, or absolute values.
fn delta(bytes: &mut impl Iterator<Item = u8>) -> u64 {
    let scale = bytes.next().unwrap_or(0);
    let mut raw = [0u8; 8];
    for b in raw.iter_mut().take(1 + (scale as usize % 8)) {
        *b = bytes.next().unwrap_or(0);
    }
    u64::from_le_bytes(raw)
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let start = delta(&mut bytes);
    let mut wheel = TimerWheel::new(start);
    let mut now = start;
    let mut model: BTreeMap<(u64, u64), u32> = BTreeMap::new();
    let mut keys: Vec<(TimerKey, Option<(u64, u64)>)> = Vec::new();
    let mut seq = 0u64;
    let mut out = Vec::new();
    while let Some(op) = bytes.next() {
        match op % 5 {
            0 | 1 => {
                let d = delta(&mut bytes);
                // Ops with the top bit set insert in the past (saturating), others in the future.
                let deadline = if op & 0x80 != 0 {
                    now.saturating_sub(d)
                } else {
                    now.saturating_add(d)
                };
                let value = keys.len() as u32;
                let key = wheel.insert(deadline, value);
                let slot = (deadline.max(now), seq);
                seq += 1;
                model.insert(slot, value);
                keys.push((key, Some(slot)));
            }
            2 if !keys.is_empty() => {
                let n = bytes.next().unwrap_or(0) as usize % keys.len();
                let (key, slot) = keys[n];
                assert_eq!(wheel.cancel(key), slot.and_then(|s| model.remove(&s)));
                keys[n].1 = None;
            }
            3 if !keys.is_empty() => {
                let n = bytes.next().unwrap_or(0) as usize % keys.len();
                let deadline = now.saturating_add(delta(&mut bytes));
                let (key, slot) = keys[n];
                assert_eq!(wheel.reset(key, deadline), slot.is_some());
                if let Some(old) = slot {
                    let value = model.remove(&old).expect("model tracks live keys");
                    let new = (deadline.max(now), seq);
                    seq += 1;
                    model.insert(new, value);
                    keys[n].1 = Some(new);
                }
            }
            4 => {
                now = now.saturating_add(delta(&mut bytes));
                out.clear();
                wheel.advance(now, &mut out);
                let mut expected = Vec::new();
                while let Some(entry) = model.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    expected.push(entry.remove());
                }
                assert_eq!(out, expected);
                for &v in &expected {
                    keys[v as usize].1 = None;
                }
            }
            _ => {}
        }
        assert_eq!(wheel.len(), model.len());
        let earliest = model.keys().next().map(|&(d, _)| d);
        match (wheel.next_deadline(), earliest) {
            (Some(next), Some(earliest)) => assert!(now <= next && next <= earliest),
            (None, None) => {}
            (next, earliest) => panic!("next_deadline {next:?} with earliest {earliest:?}"),
        }
    }
    for (key, slot) in keys {
        assert_eq!(wheel.contains(key), slot.is_some());
    }
});
