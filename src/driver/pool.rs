//! Per-worker pools of read buffers and iovec lists, so an idle connection holds no buffer.
//!
//! Owns recycling: a connection takes a read buffer only while it has bytes to process and gives it
//! back when it has consumed them all. A buffer still shared with payloads in flight (split off
//! and frozen into `Bytes`) cannot be reclaimed in place; it is then simply dropped and its memory
//! is freed when the last payload goes. Never grows without bound: at most `max_pooled` buffers are
//! kept, and only buffers whose capacity is back to the standard size.

use bytes::{Bytes, BytesMut};

/// Read buffers and write lists for one worker.
pub struct BufferPool {
    read_size: usize,
    max_pooled: usize,
    reads: Vec<BytesMut>,
    iovs: Vec<Vec<Bytes>>,
}

impl BufferPool {
    /// A pool handing out read buffers of `read_size` bytes, keeping at most `max_pooled` of each kind.
    pub fn new(read_size: usize, max_pooled: usize) -> Self {
        BufferPool {
            read_size,
            max_pooled,
            reads: Vec::new(),
            iovs: Vec::new(),
        }
    }

    /// The standard read buffer size.
    pub fn read_size(&self) -> usize {
        self.read_size
    }

    /// An empty read buffer with at least `read_size` bytes of capacity.
    pub fn take_read(&mut self) -> BytesMut {
        self.reads
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.read_size))
    }

    /// Returns a read buffer whose bytes have all been consumed.
    pub fn give_read(&mut self, mut buf: BytesMut) {
        debug_assert!(buf.is_empty());
        buf.clear();
        // Reclaims the whole allocation only if no split-off payload still points into it.
        if self.reads.len() < self.max_pooled
            && buf.try_reclaim(self.read_size)
            && buf.capacity() <= self.read_size * 4
        {
            self.reads.push(buf);
        }
    }

    /// An empty list for one vectored write.
    pub fn take_iov(&mut self) -> Vec<Bytes> {
        self.iovs.pop().unwrap_or_default()
    }

    /// Returns a list after its write; its chunks are dropped here.
    pub fn give_iov(&mut self, mut iov: Vec<Bytes>) {
        iov.clear();
        if self.iovs.len() < self.max_pooled && iov.capacity() <= 1024 {
            self.iovs.push(iov);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumed_buffer_is_reused_without_a_new_allocation() {
        let mut pool = BufferPool::new(4096, 4);
        let mut buf = pool.take_read();
        let ptr = buf.as_ptr();
        buf.extend_from_slice(b"hello");
        let _ = buf.split_to(5); // consumed and dropped
        pool.give_read(buf);
        let again = pool.take_read();
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.capacity() >= 4096);
    }

    #[test]
    fn a_buffer_shared_with_a_live_payload_is_not_pooled() {
        let mut pool = BufferPool::new(4096, 4);
        let mut buf = pool.take_read();
        buf.extend_from_slice(b"payload");
        let payload = buf.split_to(7).freeze();
        pool.give_read(buf);
        let other = pool.take_read();
        assert_eq!(
            &payload[..],
            b"payload",
            "the payload is untouched by later reads"
        );
        assert!(other.capacity() >= 4096);
    }

    #[test]
    fn the_pool_keeps_at_most_max_pooled_buffers() {
        let mut pool = BufferPool::new(64, 2);
        let bufs: Vec<_> = (0..5).map(|_| pool.take_read()).collect();
        for b in bufs {
            pool.give_read(b);
        }
        assert_eq!(pool.reads.len(), 2);
    }
}
