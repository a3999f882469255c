//! Per-worker listening sockets with `SO_REUSEPORT`.
//!
//! Owns socket creation: every worker gets its own listening socket on the same address, and the
//! kernel spreads incoming connections across them. Never accepts: the worker does that on its own
//! ring. When the configured port is 0, the first socket picks the port and the others reuse it.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT`; returns them and the address
/// they share.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let mut sockets = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if bound.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_tcp_nodelay(true)?;
        socket.bind(&bound.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        if bound.port() == 0 {
            bound = socket
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("listener has no socket address"))?;
        }
        sockets.push(socket.into());
    }
    Ok((sockets, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_worker_the_same_port() {
        let (sockets, addr) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 3, 16).unwrap();
        assert_ne!(addr.port(), 0);
        for s in &sockets {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
    }
}
