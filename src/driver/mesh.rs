//! Messages between workers (and from the control thread to workers).
//!
//! Owns the vocabulary cores use to talk to each other. Workers never share mutable state: anything
//! one worker needs from another travels as a [`MeshMsg`] through that worker's inbox (a tokio
//! unbounded channel: lock-free on the sending side, drained by the owning worker's runtime).

use tokio::sync::mpsc;

/// A message delivered to one worker.
#[derive(Debug)]
pub enum MeshMsg {
    /// Begin the graceful drain: refuse new sessions, close every connection with 1001, exit when
    /// all are gone or the drain timeout passes.
    Shutdown,
}

/// The sending side of one worker's inbox.
pub type Outbox = mpsc::UnboundedSender<MeshMsg>;
/// The receiving side, owned by the worker.
pub type Inbox = mpsc::UnboundedReceiver<MeshMsg>;

/// One inbox per worker: the senders (cloneable, for every other party) and the receivers (one per
/// worker, moved into its thread).
pub fn mesh(workers: usize) -> (Vec<Outbox>, Vec<Inbox>) {
    (0..workers).map(|_| mpsc::unbounded_channel()).unzip()
}
