//! Users: messages addressed to an authenticated user rather than to one connection.
//!
//! Owns three sans-IO pieces that the user's **owner worker** keeps, and the rule that picks that
//! worker:
//!
//! - [`owner_of_user`]: every user (a JWT `sub`) has exactly one owner worker, a fixed hash of the
//!   user id (the same function as rooms' [`crate::room::owner_of`]), so every worker sends a
//!   user's registrations, messages and acks to the same place, in FIFO order per pair of workers,
//!   without locks.
//! - [`Sessions`]: the user's live connections (registered when an authenticated `/ws` session
//!   opens, removed when it closes), which is where a user message is fanned out.
//! - [`inbox`]: the user's inbox ([`inbox::InboxStore`], in memory now), holding what must survive
//!   until it is acknowledged or delivered to a later connection, with its bounds, redelivery
//!   backoff and expiry.
//! - [`MsgIds`]: the server-assigned message ids (`<process epoch>-<worker>-<n>`), unique within
//!   the run and, through the random per-process epoch, not confusable with an id of an earlier run.
//!
//! Nothing here does I/O, reads a clock or a random source (`now` and the epoch are passed in), or
//! knows about sockets: the driver (`driver::users`) turns the answers into frames and mesh
//! messages.

pub mod inbox;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::envelope::ConnId;

/// The worker that owns `user` among `workers`: the same fixed FNV-1a hash as rooms use, so it is
/// the same on every worker.
pub fn owner_of_user(user: &str, workers: usize) -> usize {
    crate::room::owner_of(user, workers)
}

/// The live connections of the users a worker owns.
///
/// Invariant: a user is present only while it has at least one connection, and a connection is
/// listed once per user (the driver registers it once, at the open of its session, and removes it
/// once, at its close; the mesh is FIFO per pair of workers, so the removal never overtakes the
/// registration).
#[derive(Debug, Default)]
pub struct Sessions {
    conns: HashMap<Arc<str>, Vec<ConnId>>,
}

impl Sessions {
    /// No user connected.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Registers `conn` as a connection of `user`. `true` when it was not registered yet.
    pub fn connect(&mut self, user: &Arc<str>, conn: ConnId) -> bool {
        let conns = self.conns.entry(user.clone()).or_default();
        if conns.contains(&conn) {
            return false;
        }
        conns.push(conn);
        true
    }

    /// Removes `conn` from `user`'s connections. `true` when it was registered.
    pub fn disconnect(&mut self, user: &str, conn: ConnId) -> bool {
        let Some(conns) = self.conns.get_mut(user) else {
            return false;
        };
        let Some(at) = conns.iter().position(|&c| c == conn) else {
            return false;
        };
        conns.swap_remove(at);
        if conns.is_empty() {
            self.conns.remove(user);
        }
        true
    }

    /// `user`'s live connections, in no particular order (empty when offline).
    pub fn conns(&self, user: &str) -> &[ConnId] {
        self.conns.get(user).map_or(&[], Vec::as_slice)
    }

    /// Whether `user` has a live connection.
    pub fn is_online(&self, user: &str) -> bool {
        self.conns.contains_key(user)
    }

    /// Users with at least one live connection.
    pub fn users(&self) -> usize {
        self.conns.len()
    }
}

/// The message ids one owner worker assigns: `<epoch>-<worker>-<n>`, `n` counting from 1.
///
/// `epoch` is chosen at random by the driver when the process starts, so an id of an earlier run
/// (a client holding one across a restart) never names a message of this run: it is simply
/// unknown. The worker part keeps the ids of different owners apart within one run.
#[derive(Debug)]
pub struct MsgIds {
    /// `<epoch>-<worker>`.
    prefix: Box<str>,
    /// The last `n` handed out.
    last: u64,
}

impl MsgIds {
    /// The ids of worker `worker` in the run whose epoch is `epoch` (any text without `-`).
    pub fn new(epoch: &str, worker: usize) -> MsgIds {
        debug_assert!(!epoch.contains('-'));
        MsgIds {
            prefix: format!("{epoch}-{worker}").into(),
            last: 0,
        }
    }

    /// A new number, never returned before by this generator.
    pub fn assign(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// The id of number `n`, for display.
    pub fn id(&self, n: u64) -> MsgId<'_> {
        MsgId {
            prefix: &self.prefix,
            n,
        }
    }

    /// The number of an id this generator rendered; `None` for anything else (another run,
    /// another worker, junk).
    pub fn parse(&self, id: &str) -> Option<u64> {
        let n = id.strip_prefix(&*self.prefix)?.strip_prefix('-')?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
            return None;
        }
        n.parse().ok().filter(|&n| n <= self.last)
    }
}

/// One message id, rendered with `Display` (no allocation).
#[derive(Clone, Copy, Debug)]
pub struct MsgId<'a> {
    prefix: &'a str,
    n: u64,
}

impl fmt::Display for MsgId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.prefix, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ConnKey;

    fn conn(worker: u32, n: u64) -> ConnId {
        ConnId {
            worker,
            key: ConnKey::from_u64(n),
        }
    }

    #[test]
    fn a_user_is_online_while_it_has_a_connection_on_any_worker() {
        let ann: Arc<str> = "ann".into();
        let mut s = Sessions::new();
        assert!(s.connect(&ann, conn(0, 1)));
        assert!(s.connect(&ann, conn(1, 1)));
        assert!(!s.connect(&ann, conn(1, 1)), "registered once");
        assert_eq!(s.conns("ann").len(), 2);
        assert!(s.disconnect("ann", conn(0, 1)));
        assert!(s.is_online("ann"));
        assert!(!s.disconnect("ann", conn(0, 1)));
        assert!(s.disconnect("ann", conn(1, 1)));
        assert!(!s.is_online("ann"));
        assert_eq!(s.users(), 0);
        assert!(s.conns("ann").is_empty());
    }

    #[test]
    fn message_ids_round_trip_and_ids_of_other_runs_and_workers_are_unknown() {
        let mut ids = MsgIds::new("a1b2c3", 1);
        let n = ids.assign();
        let m = ids.assign();
        assert!(m > n);
        let text = ids.id(m).to_string();
        assert_eq!(text, "a1b2c3-1-2");
        assert_eq!(ids.parse(&text), Some(m));
        let other_run = MsgIds::new("ffffff", 1);
        assert_eq!(other_run.parse(&text), None);
        let other_worker = MsgIds::new("a1b2c3", 0);
        assert_eq!(other_worker.parse(&text), None);
        for junk in [
            "",
            "a1b2c3-1-",
            "a1b2c3-1-x",
            "a1b2c3-1-07",
            "a1b2c3-1-3",
            "a1b2c3-12-1",
        ] {
            assert_eq!(ids.parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_user_has_one_owner_in_range() {
        for workers in 1..6 {
            let w = owner_of_user("ann", workers);
            assert!(w < workers);
            assert_eq!(w, owner_of_user("ann", workers));
        }
    }
}
