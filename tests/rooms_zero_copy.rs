//! Zero-copy fan-out, shown on the sans-IO path a publish takes on the owner and member workers:
//! render the message frame once, fan it out over a room's local members, queue it on each
//! member's protocol machine. The number of heap allocations does not grow with the number of
//! recipients, and every recipient's queue holds the very same bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use ringcast::envelope::{render, ConnId};
use ringcast::proto::{ConnLimits, Connection};
use ringcast::room::{Audience, LocalRooms, RoomLimits};
use ringcast::table::ConnKey;

/// Counts allocations made by the current thread while armed (other test threads do not count).
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to `System`; the bookkeeping touches only const-initialised
// thread-locals, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

/// A room of `n` local members, each with its own protocol machine.
struct Room {
    rooms: LocalRooms,
    machines: Vec<Connection>,
    arena: BytesMut,
    wire: Vec<Bytes>,
}

impl Room {
    fn new(n: u64) -> Room {
        let mut rooms = LocalRooms::new();
        let limits = RoomLimits::default();
        for i in 0..n {
            let key = ConnKey::from_u64(i);
            rooms.begin_join(key, "lobby", &limits).unwrap();
            assert!(rooms.confirm_join(key, "lobby", true));
        }
        Room {
            rooms,
            machines: (0..n)
                .map(|_| Connection::new(ConnLimits::default()))
                .collect(),
            arena: BytesMut::new(),
            wire: Vec::with_capacity(4),
        }
    }

    /// What one publish costs on the owner (render once) and a member worker (fan out, queue).
    fn publish(&mut self, seq: u64) -> Bytes {
        let from = ConnId {
            worker: 0,
            key: ConnKey::from_u64(0),
        };
        let frame = render::message(
            &mut self.arena,
            "lobby",
            seq,
            from,
            1_700_000_000_000,
            br#"{"text":"hello, room"}"#,
        );
        let machines = &mut self.machines;
        let n = self
            .rooms
            .fan_out("lobby", Audience::Members, &frame, None, |key, f| {
                machines[key.index() as usize].send_encoded(f).unwrap();
            });
        assert_eq!(n, machines.len());
        frame
    }

    /// Every member's socket takes its queued bytes; returns the chunks' addresses.
    fn drain(&mut self) -> Vec<*const u8> {
        let mut ptrs = Vec::new();
        for m in &mut self.machines {
            let n = m.poll_transmit(&mut self.wire);
            ptrs.extend(self.wire.iter().map(|b| b.as_ptr()));
            self.wire.clear();
            m.on_written(n);
        }
        ptrs
    }
}

/// Allocations of one publish to a warmed-up room of `n` members.
fn allocations_for(n: u64) -> u64 {
    let mut room = Room::new(n);
    room.publish(1);
    room.drain();
    let count = allocations_during(|| {
        room.publish(2);
    });
    room.drain();
    count
}

#[test]
fn allocations_of_a_publish_do_not_grow_with_the_number_of_recipients() {
    let few = allocations_for(10);
    let many = allocations_for(10_000);
    assert_eq!(
        few, many,
        "10 members: {few} allocations, 10 000 members: {many}"
    );
    assert!(few <= 1, "at most the frame itself: {few}");
}

#[test]
fn every_recipient_queues_the_same_bytes() {
    let mut room = Room::new(100);
    let frame = room.publish(1);
    let ptrs = room.drain();
    assert_eq!(ptrs.len(), 100, "one chunk per member");
    assert!(ptrs.iter().all(|&p| p == frame.as_ptr()));
}
