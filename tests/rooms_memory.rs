//! Memory per room, counted at the allocator: what one more one-member room costs across the
//! three structures a room lives in (the member's worker's [`LocalRooms`], the owner's
//! [`OwnedRooms`] and the owner's stream store), with history off and on. The budget: with
//! history off at most 256 B plus its name; history on adds its entries and its header, and
//! nothing outside the stream.
//!
//! Counts the bytes requested from the allocator (live bytes after minus before, divided by the
//! room count), so it includes hash-table slack at the count measured but not the allocator's own
//! rounding. One test per binary: the counter is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use ringcast::envelope::ConnId;
use ringcast::room::stream::{
    Entry, EpochSource, HistoryPolicy, HistoryRules, MemoryStore, RoomStore,
};
use ringcast::room::{LocalRooms, MemberInfo, OwnedRooms, RoomLimits};
use ringcast::table::ConnKey;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's own arguments, so `System`'s
// guarantees hold; the counter is only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROOMS: u64 = 50_000;
/// `dm:00000000`: the name every structure keeps a copy of.
const NAME_LEN: usize = 11;

/// Bytes per room, for `ROOMS` one-member rooms each with `kept` messages of history, in each
/// of the three structures a room lives in.
#[derive(Debug)]
struct PerRoom {
    /// The member's worker: the room's local entry and the connection's membership.
    local: isize,
    /// The owner's member list.
    owner: isize,
    /// The owner's stream (offset, epoch, history).
    stream: isize,
}

impl PerRoom {
    fn total(&self) -> isize {
        self.local + self.owner + self.stream
    }
}

fn live_since(before: isize) -> isize {
    (LIVE.load(Ordering::Relaxed) - before) / ROOMS as isize
}

fn per_room(history: usize, kept: u64) -> PerRoom {
    let limits = RoomLimits::default();
    let policy = HistoryPolicy {
        size: history,
        ttl: 60_000,
    };
    let frame = Bytes::from(vec![b'x'; 100]);
    let name = |i: u64| format!("dm:{i:08}");

    let before = LIVE.load(Ordering::Relaxed);
    let mut local = LocalRooms::new();
    for i in 0..ROOMS {
        let key = ConnKey::from_u64(i);
        local.begin_join(key, &name(i), &limits).unwrap();
        assert!(local.confirm_join(key, &name(i), false));
    }
    let local_bytes = live_since(before);

    let before = LIVE.load(Ordering::Relaxed);
    let mut owned = OwnedRooms::new(4);
    for i in 0..ROOMS {
        let conn = ConnId {
            worker: 1,
            key: ConnKey::from_u64(i),
        };
        let info = MemberInfo {
            user: None,
            name: None,
        };
        assert!(owned.join(&name(i), conn, info, false, &limits).unwrap());
    }
    let owner_bytes = live_since(before);
    assert_eq!(owned.len(), ROOMS as usize);

    let before = LIVE.load(Ordering::Relaxed);
    let mut store = MemoryStore::new(
        HistoryRules::new(policy, &[]),
        usize::MAX,
        EpochSource::new(1),
        0,
    );
    for i in 0..ROOMS {
        let room = name(i);
        store.open(&room, 0);
        for _ in 0..kept {
            let at = store.append(&room, 0);
            let entry = Entry {
                offset: at.offset,
                frame: frame.clone(),
            };
            store.record(&room, entry, 0);
        }
    }
    let stream_bytes = live_since(before);
    assert_eq!(store.stats().streams, ROOMS as usize);
    assert_eq!(store.stats().entries, (ROOMS * kept) as usize);

    drop((local, owned, store));
    PerRoom {
        local: local_bytes,
        owner: owner_bytes,
        stream: stream_bytes,
    }
}

#[test]
fn a_one_member_room_costs_at_most_256_bytes_plus_its_name_and_history_adds_its_entries() {
    let off = per_room(0, 0);
    let with = per_room(10, 10);
    println!(
        "one-member room: {} B with history off ({NAME_LEN} B name, kept 4 times; {off:?}), {} B \
         with 10 kept messages ({with:?}; their frames are shared with the fan-out and not \
         counted: {} B more per room)",
        off.total(),
        with.total(),
        with.total() - off.total()
    );
    // Measured 1266 B, then 486 B, before the compact shapes (a member kept inline, no per-worker
    // counts below 17 members, a 24-byte stream without history).
    assert!(
        off.total() <= 256 + NAME_LEN as isize,
        "{} B per room",
        off.total()
    );
    assert_eq!(
        (with.local, with.owner),
        (off.local, off.owner),
        "history costs nothing outside the stream"
    );
    // With history on: 40 B per entry, the history header (88 B) and its ttl timer.
    assert!(
        with.stream - off.stream <= 10 * 40 + 160,
        "{} B of history per room",
        with.stream - off.stream
    );
}
