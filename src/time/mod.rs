//! Time, sans-IO: the per-worker timer wheel.
//!
//! Owns deadline bookkeeping: heartbeats, idle, handshake and close timeouts, drain batches. Time
//! is a `u64` tick count handed in by the caller (the driver uses 1 tick = 1 ms); nothing here
//! reads a clock, sleeps, spawns or does I/O. The driver asks [`TimerWheel::next_deadline`] how
//! long it may sleep and calls [`TimerWheel::advance`] when it wakes.

pub mod wheel;

pub use wheel::{TimerKey, TimerWheel};
