//! How a server's sockets are bound: one place for `serve` and for the
//! back-ends that open sibling sockets on the same address (`percore`).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Whether other sockets may later bind the same address (`SO_REUSEPORT`,
/// the kernel then spreads connections and datagrams over all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// This socket alone.
    Exclusive,
    /// One of several sockets of this process on the address.
    ReusePort,
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol, sharing: Sharing) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, ty, Some(protocol))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if sharing == Sharing::ReusePort {
        s.set_reuse_port(true)?;
    }
    Ok(s)
}

/// A listening socket with a backlog deep enough for thousands of
/// simultaneous connects (std's is 128).
pub fn bind_tcp(addr: SocketAddr, sharing: Sharing) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP, sharing)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// A UDP socket with buffers large enough for bursts of maximum-size datagrams.
pub fn bind_udp(addr: SocketAddr, sharing: Sharing) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP, sharing)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}
