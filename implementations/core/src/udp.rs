//! The UDP echo's rules, for every back-end: what is counted when, and
//! which receive errors are a peer's business rather than the server's.
//!
//! A back-end receives into a buffer of at least [`UDP_BUFFER`] bytes,
//! calls [`UdpEcho::received`] and sends the datagram back, then reports
//! the send with [`Echo::sent`].

use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use crate::counters::Counters;

/// Largest UDP payload plus one: a datagram this big cannot have been cut.
pub const UDP_BUFFER: usize = 65_536;

/// The echo's bookkeeping over the server's counters.
#[derive(Debug, Clone, Copy)]
pub struct UdpEcho<'a>(pub &'a Counters);

/// An echo counted before its send; [`Echo::sent`] takes it back if the
/// send failed.
#[derive(Debug)]
#[must_use = "report the send with Echo::sent"]
pub struct Echo<'a> {
    counters: &'a Counters,
    to: SocketAddr,
}

/// What to do after a failed receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvFailure {
    /// Nothing to worry about (no datagram yet, a signal, or an ICMP error
    /// of an earlier send, which concerns one peer): receive again.
    Retry,
    /// The socket itself failed (logged): back off briefly, then receive again.
    Backoff,
}

impl<'a> UdpEcho<'a> {
    /// A datagram of `len` bytes arrived from `from`: it and its echo are
    /// counted now, so an echo the client holds is always in `stats`.
    pub fn received(self, len: usize, from: SocketAddr) -> Echo<'a> {
        self.0.datagram(len);
        Echo {
            counters: self.0,
            to: from,
        }
    }

    /// Classifies a failed receive.
    pub fn recv_failed(self, e: &io::Error) -> RecvFailure {
        match e.kind() {
            ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionRefused => RecvFailure::Retry,
            _ => {
                log::warn!("udp receive failed: {e}");
                RecvFailure::Backoff
            }
        }
    }
}

impl Echo<'_> {
    /// Reports the echo's send. A failure (a full send buffer drops the
    /// echo, as the network may) is taken back from `datagrams_out`.
    pub fn sent<T>(self, result: &io::Result<T>) {
        if let Err(e) = result {
            self.counters.echo_not_sent();
            log::debug!("udp send to {}: {e}", self.to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_counted_before_its_send_and_taken_back_if_the_send_fails() {
        let c = Counters::default();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let echo = UdpEcho(&c).received(10, from);
        assert_eq!(c.snapshot().1.datagrams_out, 1, "counted before the send");
        echo.sent(&Ok(10));
        UdpEcho(&c)
            .received(5, from)
            .sent::<usize>(&Err(ErrorKind::WouldBlock.into()));
        let (_, udp) = c.snapshot();
        assert_eq!(
            (udp.datagrams_in, udp.datagrams_out, udp.bytes_in),
            (2, 1, 15)
        );
    }

    #[test]
    fn icmp_errors_and_timeouts_are_retried_and_socket_failures_back_off() {
        let c = Counters::default();
        let e = |k: ErrorKind| UdpEcho(&c).recv_failed(&k.into());
        assert_eq!(e(ErrorKind::ConnectionRefused), RecvFailure::Retry);
        assert_eq!(e(ErrorKind::WouldBlock), RecvFailure::Retry);
        assert_eq!(e(ErrorKind::PermissionDenied), RecvFailure::Backoff);
    }
}
