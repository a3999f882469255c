//! Time, sans-IO: the per-worker timer wheel.
//!
//! Owns deadline bookkeeping: heartbeats, idle, handshake and close timeouts, drain batches. Time
//! is a `u64` tick count handed in by the caller (the driver uses 1 tick = 1 ms); nothing here
//! reads a clock, sleeps, spawns or does I/O. Today the driver wakes every
//! `driver::worker::TICK` (10 ms) and calls [`TimerWheel::advance`] with the cached time;
//! [`TimerWheel::next_deadline`] (how long a caller may sleep before the next timer is due) is
//! unit-tested for a driver that sleeps until the next deadline instead of ticking.

pub mod wheel;

pub use wheel::{TimerKey, TimerWheel};
