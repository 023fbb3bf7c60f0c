//! A wire log: the offset, size and time of every write and read of a
//! case's connections, with the first bytes in hex. It is the evidence a
//! failed conformance case carries, so nobody has to rerun it to see what
//! was sent and what came back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

pub use crate::schema::conform::{Dir, WireEvent};

/// How many leading bytes of each transfer are kept.
pub const HEAD_BYTES: usize = 48;
/// How many events a log keeps; later ones are counted, not stored.
pub const MAX_EVENTS: usize = 400;

#[derive(Debug)]
struct Inner {
    start: Instant,
    next_conn: u32,
    events: Vec<WireEvent>,
    dropped: usize,
    peers: Vec<String>,
}

/// A shared, bounded wire log.
#[derive(Debug, Clone)]
pub struct WireLog(Arc<Mutex<Inner>>);

impl Default for WireLog {
    fn default() -> Self {
        WireLog(Arc::new(Mutex::new(Inner {
            start: Instant::now(),
            next_conn: 1,
            events: Vec::new(),
            dropped: 0,
            peers: Vec::new(),
        })))
    }
}

impl WireLog {
    /// Numbers a new connection.
    pub fn new_connection(&self, peer: Option<SocketAddr>) -> u32 {
        let mut l = self.lock();
        let id = l.next_conn;
        l.next_conn += 1;
        l.peers
            .push(peer.map_or_else(|| "?".into(), |p| p.to_string()));
        id
    }

    /// Records a transfer or an event on connection `conn`.
    pub fn record(&self, conn: u32, dir: Dir, offset: u64, bytes: &[u8], note: &str) {
        let mut l = self.lock();
        if l.events.len() >= MAX_EVENTS {
            l.dropped += 1;
            return;
        }
        let t_ms = l.start.elapsed().as_secs_f64() * 1000.0;
        l.events.push(WireEvent {
            t_ms,
            conn,
            dir,
            offset,
            len: bytes.len(),
            head: hex(&bytes[..bytes.len().min(HEAD_BYTES)]),
            note: note.to_owned(),
        });
    }

    /// The events so far, and how many were not kept.
    pub fn snapshot(&self) -> (Vec<WireEvent>, usize) {
        let l = self.lock();
        (l.events.clone(), l.dropped)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
