//! Server-wide counters, reported by the `stats` operation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Live counters, updated by every connection and the UDP socket. Each
/// event has its method; only core decides when an event happened.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    connections: AtomicU64,
    /// TCP connections open now.
    active: AtomicU64,
    /// Request frames whose head was decoded.
    frames: AtomicU64,
    /// TCP bytes received.
    bytes_in: AtomicU64,
    /// TCP bytes sent.
    bytes_out: AtomicU64,
    /// Error replies sent plus streams that ended mid-frame.
    errors: AtomicU64,
    /// Uploads stored.
    uploads_ok: AtomicU64,
    /// Uploads that ended in an error (name, digest, disk, truncation).
    uploads_failed: AtomicU64,
    /// TCP connections turned away over `max_connections`.
    refused: AtomicU64,
    /// Socket reads that returned data (not end of stream, whose number
    /// and timing depend on the client's teardown).
    reads: AtomicU64,
    /// Socket writes that sent data.
    writes: AtomicU64,
    syscalls: AtomicU64,
    ring_submissions: AtomicU64,
    /// UDP datagrams received.
    datagrams_in: AtomicU64,
    /// UDP datagrams echoed.
    datagrams_out: AtomicU64,
    /// UDP payload bytes received.
    udp_bytes_in: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

impl Counters {
    /// A socket read returned data.
    pub fn read(&self) {
        bump(&self.reads);
    }

    /// A socket write sent data.
    pub fn wrote(&self) {
        bump(&self.writes);
    }

    /// The TCP I/O loop made `n` system calls: waits, reads and writes,
    /// including those that would block (accepts, connection setup and UDP
    /// are not counted). Counted by the event-loop back-ends.
    pub fn syscalls(&self, n: u64) {
        add(&self.syscalls, n);
    }

    /// A completion-based back-end entered the kernel (`io_uring_enter`,
    /// one system call) with `submitted` new operations.
    pub fn ring_entered(&self, submitted: usize) {
        bump(&self.syscalls);
        add(&self.ring_submissions, submitted as u64);
    }

    /// TCP connections open now.
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    pub(crate) fn opened(&self) {
        bump(&self.connections);
        bump(&self.active);
    }

    pub(crate) fn closed(&self) {
        self.active.fetch_sub(1, Relaxed);
    }

    pub(crate) fn refused(&self) {
        bump(&self.refused);
    }

    pub(crate) fn frame(&self) {
        bump(&self.frames);
    }

    pub(crate) fn bytes(&self, received: u64, sent: u64) {
        add(&self.bytes_in, received);
        add(&self.bytes_out, sent);
    }

    pub(crate) fn error(&self) {
        bump(&self.errors);
    }

    pub(crate) fn upload(&self, stored: bool) {
        bump(if stored {
            &self.uploads_ok
        } else {
            &self.uploads_failed
        });
    }

    /// Counts a datagram in and its echo out. The echo is counted before
    /// the send, so an echo a client holds is always in `stats` already (as
    /// TCP frames are); a failed send is taken back.
    pub(crate) fn datagram(&self, len: usize) {
        bump(&self.datagrams_in);
        add(&self.udp_bytes_in, len as u64);
        bump(&self.datagrams_out);
    }

    pub(crate) fn echo_not_sent(&self) {
        self.datagrams_out.fetch_sub(1, Relaxed);
    }
}

/// The TCP half of a `stats` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// TCP connections open now.
    #[serde(default)]
    pub active: u64,
    /// Request frames whose head was decoded.
    pub frames: u64,
    /// TCP bytes received.
    pub bytes_in: u64,
    /// TCP bytes sent.
    pub bytes_out: u64,
    /// Error replies plus streams that ended mid-frame.
    pub errors: u64,
    /// Uploads stored.
    pub uploads_ok: u64,
    /// Uploads that failed.
    pub uploads_failed: u64,
    /// Connections turned away over the cap; absent from outside servers.
    #[serde(default)]
    pub refused: u64,
    /// Socket reads that returned data; absent from outside servers.
    #[serde(default)]
    pub reads: u64,
    /// Socket writes; absent from outside servers.
    #[serde(default)]
    pub writes: u64,
    /// The I/O loop's system calls (see [`Counters::syscalls`]): `mio`,
    /// `percore` and `uring` (whose only I/O calls are `io_uring_enter`);
    /// 0 for back-ends that do not count them.
    #[serde(default)]
    pub syscalls: u64,
    /// Operations submitted to the ring (the `uring` back-end; 0 elsewhere).
    #[serde(default)]
    pub ring_submissions: u64,
}

/// The UDP half of a `stats` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams echoed.
    pub datagrams_out: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
}

impl Counters {
    /// A consistent-enough copy for a reply (each counter read once).
    pub fn snapshot(&self) -> (TcpStats, UdpStats) {
        let r = |c: &AtomicU64| c.load(Relaxed);
        (
            TcpStats {
                connections: r(&self.connections),
                active: r(&self.active),
                frames: r(&self.frames),
                bytes_in: r(&self.bytes_in),
                bytes_out: r(&self.bytes_out),
                errors: r(&self.errors),
                uploads_ok: r(&self.uploads_ok),
                uploads_failed: r(&self.uploads_failed),
                refused: r(&self.refused),
                reads: r(&self.reads),
                writes: r(&self.writes),
                syscalls: r(&self.syscalls),
                ring_submissions: r(&self.ring_submissions),
            },
            UdpStats {
                datagrams_in: r(&self.datagrams_in),
                datagrams_out: r(&self.datagrams_out),
                bytes_in: r(&self.udp_bytes_in),
            },
        )
    }
}

/// What a server process has used, for the optional `process` object of a
/// `stats` reply: CPU per frame can then be measured from another host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUse {
    /// User CPU seconds.
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Peak resident set size, KiB.
    pub rss_peak_kib: u64,
}

/// Reads the process's use. Core never reads the operating system itself:
/// whoever starts the server (`sockbench serve`) supplies this, as time is
/// supplied; `None` leaves `process` out of `stats`.
pub type ProcessProbe = fn() -> Option<ProcessUse>;
