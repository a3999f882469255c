//! A single-threaded wake-up flag for one connection task.
//!
//! Owns the hand-off "something changed for this connection" (output queued by another part of the
//! worker, a timer fired, shutdown began) from the worker to the connection's task. Never crosses a
//! thread: it is `!Sync` by construction (`Cell`), which is what lets it be lock-free and tiny.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A sticky flag with at most one waiting task.
///
/// Invariant: a `notify` that happens while nobody waits is remembered (the flag stays set) and
/// consumed by the next `notified().await`, so a wake-up is never lost between checks.
#[derive(Default)]
pub struct LocalNotify {
    flag: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl LocalNotify {
    /// Sets the flag and wakes the waiting task, if any.
    pub fn notify(&self) {
        self.flag.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Completes once the flag is set, clearing it.
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

/// The future returned by [`LocalNotify::notified`].
pub struct Notified<'a> {
    notify: &'a LocalNotify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.flag.replace(false) {
            return Poll::Ready(());
        }
        self.notify.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_before_waiting_is_not_lost() {
        let n = LocalNotify::default();
        n.notify();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(n.notified());
    }

    #[test]
    fn a_notify_wakes_the_waiting_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let n = std::rc::Rc::new(LocalNotify::default());
            let waiter = tokio::task::spawn_local({
                let n = n.clone();
                async move { n.notified().await }
            });
            tokio::task::yield_now().await;
            n.notify();
            waiter.await.unwrap();
        });
    }
}
