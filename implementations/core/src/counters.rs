//! Server-wide counters, reported by the `stats` operation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Live counters, updated by every connection and the UDP socket.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// TCP connections open now.
    pub active: AtomicU64,
    /// Request frames whose head was decoded.
    pub frames: AtomicU64,
    /// TCP bytes received.
    pub bytes_in: AtomicU64,
    /// TCP bytes sent.
    pub bytes_out: AtomicU64,
    /// Error replies sent plus streams that ended mid-frame.
    pub errors: AtomicU64,
    /// Uploads stored.
    pub uploads_ok: AtomicU64,
    /// Uploads that ended in an error (name, digest, disk, truncation).
    pub uploads_failed: AtomicU64,
    /// TCP connections turned away over `max_connections`.
    pub refused: AtomicU64,
    /// Socket reads that returned data (not end of stream, whose number
    /// and timing depend on the client's teardown).
    pub reads: AtomicU64,
    /// Socket writes that sent data.
    pub writes: AtomicU64,
    /// UDP datagrams received.
    pub datagrams_in: AtomicU64,
    /// UDP datagrams echoed.
    pub datagrams_out: AtomicU64,
    /// UDP payload bytes received.
    pub udp_bytes_in: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Takes back a [`bump`] whose event did not happen. UDP echoes are counted
/// before the send, so an echo a client holds is always in `stats` already
/// (as TCP frames are); a failed send is taken back here.
pub fn unbump(c: &AtomicU64) {
    c.fetch_sub(1, Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
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
