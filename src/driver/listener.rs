//! The listening sockets, one per worker, and whether another process may share their address.
//!
//! Owns socket creation. Never accepts: each worker does that on its own ring.
//!
//! Two shapes, chosen by `reuse_port`:
//!
//! - Off (the default): one socket bound *without* `SO_REUSEPORT`, duplicated (`dup`) once per
//!   worker. The kernel then refuses any other bind of the address with `EADDRINUSE`, whether
//!   the other socket sets `SO_REUSEPORT` or not (Linux lets a socket join a port only when every
//!   socket already on it set `SO_REUSEPORT` too), and this process refuses to start on an
//!   address another process listens on. The workers share one accept queue: each keeps an
//!   accept in flight and the kernel wakes one of them per connection.
//! - On: every worker binds its own socket with `SO_REUSEPORT` and the kernel spreads new
//!   connections across them by hash, and across any other process that also set it on the same
//!   address (same user). That is what a hand-over restart needs, and what splits rooms when two
//!   servers run by mistake, so it is an explicit option.
//!
//! A check that no other process holds the port before binding with `SO_REUSEPORT` was not
//! used: it races with a second server starting at the same moment. When the configured port is
//! 0, the first socket picks the port and the others use it.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds the listening sockets of `count` workers to `addr`; returns them and the address they
/// share. With `reuse_port`, each is its own `SO_REUSEPORT` socket; without, they are one
/// socket, so no other process can bind the address (see the module doc). An address in use is
/// an [`io::ErrorKind::AddrInUse`] error saying so.
pub fn bind(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    reuse_port: bool,
) -> io::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    let mut sockets = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        if !reuse_port {
            if let Some(first) = sockets.first() {
                let shared: &std::net::TcpListener = first;
                sockets.push(shared.try_clone()?);
                continue;
            }
        }
        let socket = listen(bound, backlog, reuse_port).map_err(|e| in_use(e, bound))?;
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

/// One listening socket on `addr`.
fn listen(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR only lets a restart bind past the old process's TIME_WAIT connections; it
    // never lets two sockets listen on one address.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket)
}

/// Says what `EADDRINUSE` means here; other errors pass unchanged.
fn in_use(e: io::Error, addr: SocketAddr) -> io::Error {
    if e.kind() != io::ErrorKind::AddrInUse {
        return e;
    }
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "cannot listen on {addr}: address already in use (another process listens on it; \
             to hand over between two ringcast processes, start both with reuse_port)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_port() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn port_zero_gives_every_worker_the_same_port() {
        for reuse_port in [false, true] {
            let (sockets, addr) = bind(any_port(), 3, 16, reuse_port).unwrap();
            assert_ne!(addr.port(), 0);
            for s in &sockets {
                assert_eq!(s.local_addr().unwrap(), addr);
            }
        }
    }

    #[test]
    fn without_reuse_port_a_second_bind_of_the_address_is_refused() {
        let (_first, addr) = bind(any_port(), 2, 16, false).unwrap();
        for reuse_port in [false, true] {
            let err = bind(addr, 2, 16, reuse_port).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
            assert!(
                err.to_string()
                    .starts_with(&format!("cannot listen on {addr}: address already in use")),
                "{err}"
            );
        }
    }

    #[test]
    fn with_reuse_port_on_both_the_address_is_shared_and_otherwise_refused() {
        let (_first, addr) = bind(any_port(), 2, 16, true).unwrap();
        let (second, _) = bind(addr, 2, 16, true).expect("both opted in");
        assert_eq!(second.len(), 2);
        let err = bind(addr, 1, 16, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
