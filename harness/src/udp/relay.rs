//! A seeded, replayable impairment relay between a UDP client and server:
//! per direction it drops (in bursts, or by index), duplicates, reorders,
//! delays with jitter and corrupts datagrams, and records what it did, down
//! to the order in which it handed replies to the client. From that record
//! the exact counts a receiver must measure follow ([`Record::expected`]).
//!
//! Each datagram gets exactly one action, drawn from a seeded generator per
//! direction, so a seed replays the same impairment for the same traffic.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::seq::HEADER;

/// What to do to one direction's datagrams. Probabilities are exclusive
/// per datagram (their sum must not exceed 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impairment {
    /// Probability that a datagram starts a drop burst.
    pub drop: f64,
    /// Datagrams dropped per burst (at least 1).
    pub burst: usize,
    /// Datagram indices (0-based, this direction) always dropped.
    pub drop_indices: Vec<u64>,
    /// Probability of forwarding twice.
    pub duplicate: f64,
    /// Probability of holding a datagram back.
    pub reorder: f64,
    /// A held datagram goes out after this many later ones (at least 1).
    pub reorder_depth: usize,
    /// Probability of flipping a payload byte (beyond the probe header).
    pub corrupt: f64,
    /// Delay of every forwarded datagram.
    pub delay: Duration,
    /// Uniform jitter added to the delay (0..jitter).
    pub jitter: Duration,
}

/// The relay's configuration: a seed and an impairment per direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayConfig {
    /// Seed of both directions' decisions.
    pub seed: u64,
    /// Client to server.
    pub to_server: Impairment,
    /// Server to client.
    pub to_client: Impairment,
}

/// What the relay did in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionRecord {
    /// Datagrams that arrived.
    pub received: u64,
    /// Dropped.
    pub dropped: u64,
    /// Forwarded twice.
    pub duplicated: u64,
    /// Held back behind later ones.
    pub reordered: u64,
    /// Forwarded with a flipped byte.
    pub corrupted: u64,
    /// Datagrams sent on (duplicates count twice).
    pub forwarded: u64,
}

/// Everything the relay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Client to server.
    pub to_server: DirectionRecord,
    /// Server to client.
    pub to_client: DirectionRecord,
    /// The sequence numbers handed to the client, in order, and whether each
    /// was corrupted (on either leg: a corrupted request is echoed corrupted).
    pub emitted: Vec<(u64, bool)>,
    /// Requests corrupted on the way to the server.
    pub corrupted_requests: HashSet<u64>,
}

/// The counts a receiver must measure, derived from a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// Distinct intact datagrams.
    pub received: u64,
    /// Intact copies of a datagram already received.
    pub duplicates: u64,
    /// Intact first copies arriving after a higher sequence number.
    pub out_of_order: u64,
    /// Corrupted datagrams.
    pub corrupted: u64,
    /// Sent minus received.
    pub lost: u64,
}

impl Record {
    /// The receiver's counts for `sent` datagrams through this relay, with
    /// the receiver's own definitions.
    pub fn expected(&self, sent: u64) -> Expected {
        let mut e = Expected::default();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        for &(seq, corrupted) in &self.emitted {
            if corrupted {
                e.corrupted += 1;
                continue;
            }
            if !seen.insert(seq) {
                e.duplicates += 1;
                continue;
            }
            e.received += 1;
            match highest {
                Some(h) if seq < h => e.out_of_order += 1,
                _ => highest = Some(seq),
            }
        }
        e.lost = sent.saturating_sub(e.received);
        e
    }
}

/// A running relay. Dropping it stops it.
pub struct Relay {
    /// Where clients send (the relay's front).
    pub addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay in front of `server`.
    pub fn start(server: SocketAddr, config: &RelayConfig) -> std::io::Result<Relay> {
        // The front answers whoever sends to it, so it is not connected.
        let front = super::seq::bind_for(server)?;
        let back = super::seq::socket_for(server)?;
        let addr = front.local_addr()?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(2)))?;
        }
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let mut threads = Vec::new();
        for up in [true, false] {
            let (from, to) = if up {
                (front.try_clone()?, back.try_clone()?)
            } else {
                (back.try_clone()?, front.try_clone()?)
            };
            let imp = if up {
                config.to_server.clone()
            } else {
                config.to_client.clone()
            };
            let rng =
                StdRng::seed_from_u64(config.seed ^ if up { 0x5eed_0001 } else { 0x5eed_0002 });
            let (record, stop, client) =
                (Arc::clone(&record), Arc::clone(&stop), Arc::clone(&client));
            threads.push(
                thread::Builder::new()
                    .name(format!("relay-{}", if up { "up" } else { "down" }))
                    .spawn(move || {
                        Direction {
                            up,
                            from,
                            to,
                            imp,
                            rng,
                            record,
                            client,
                            held: Vec::new(),
                            delayed: Vec::new(),
                            burst: 0,
                            index: 0,
                        }
                        .run(&stop)
                    })?,
            );
        }
        Ok(Relay {
            addr,
            record,
            stop,
            threads,
        })
    }

    /// A copy of what the relay has done so far.
    pub fn record(&self) -> Record {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Direction {
    up: bool,
    from: UdpSocket,
    to: UdpSocket,
    imp: Impairment,
    rng: StdRng,
    record: Arc<Mutex<Record>>,
    client: Arc<Mutex<Option<SocketAddr>>>,
    /// Held for reordering: (datagram, corrupted, later datagrams still to pass).
    held: Vec<(Vec<u8>, bool, usize)>,
    /// Delayed: (release time, datagram, corrupted), in arrival order.
    delayed: Vec<(Instant, Vec<u8>, bool)>,
    burst: usize,
    index: u64,
}

enum Action {
    Drop,
    Duplicate,
    Reorder,
    Corrupt,
    Pass,
}

impl Direction {
    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::SeqCst) {
            let got = if self.up {
                self.from.recv_from(&mut buf).map(|(n, a)| (n, Some(a)))
            } else {
                self.from.recv(&mut buf).map(|n| (n, None))
            };
            match got {
                Ok((n, peer)) => {
                    if let Some(peer) = peer {
                        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(peer);
                    }
                    self.handle(buf[..n].to_vec());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => {}
            }
            self.release_due(false);
        }
        self.release_due(true);
    }

    fn action(&mut self) -> Action {
        let i = self.index;
        self.index += 1;
        if self.burst > 0 {
            self.burst -= 1;
            return Action::Drop;
        }
        if self.imp.drop_indices.contains(&i) {
            return Action::Drop;
        }
        let x: f64 = self.rng.random();
        let imp = &self.imp;
        let mut edge = imp.drop;
        if x < edge {
            self.burst = imp.burst.max(1) - 1;
            return Action::Drop;
        }
        for (p, a) in [
            (imp.duplicate, Action::Duplicate),
            (imp.reorder, Action::Reorder),
            (imp.corrupt, Action::Corrupt),
        ] {
            edge += p;
            if x < edge {
                return a;
            }
        }
        Action::Pass
    }

    fn handle(&mut self, mut d: Vec<u8>) {
        let action = self.action();
        let mut rec = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = if self.up {
            &mut rec.to_server
        } else {
            &mut rec.to_client
        };
        dir.received += 1;
        drop(rec);
        match action {
            Action::Drop => self.count(|r| r.dropped += 1),
            Action::Duplicate => {
                self.count(|r| r.duplicated += 1);
                self.forward(d.clone(), false);
                self.forward(d, false);
            }
            Action::Reorder => {
                self.count(|r| r.reordered += 1);
                self.held.push((d, false, self.imp.reorder_depth.max(1)));
                return;
            }
            Action::Corrupt if d.len() > HEADER => {
                self.count(|r| r.corrupted += 1);
                let at = HEADER + (self.rng.random::<u64>() as usize) % (d.len() - HEADER);
                d[at] ^= 0x5a;
                self.forward(d, true);
            }
            Action::Corrupt | Action::Pass => self.forward(d, false),
        }
        // Held datagrams go out after enough later ones have passed.
        for h in self.held.iter_mut() {
            h.2 = h.2.saturating_sub(1);
        }
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.2 == 0);
        self.held = keep;
        for (d, c, _) in due {
            self.forward(d, c);
        }
    }

    fn count(&self, f: impl FnOnce(&mut DirectionRecord)) {
        let mut rec = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        f(if self.up {
            &mut rec.to_server
        } else {
            &mut rec.to_client
        });
    }

    /// Sends now, or after the delay.
    fn forward(&mut self, d: Vec<u8>, corrupted: bool) {
        if self.imp.delay.is_zero() && self.imp.jitter.is_zero() {
            return self.send(&d, corrupted);
        }
        let jitter = if self.imp.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.imp.jitter.mul_f64(self.rng.random())
        };
        self.delayed
            .push((Instant::now() + self.imp.delay + jitter, d, corrupted));
    }

    fn release_due(&mut self, all: bool) {
        if all {
            // Whatever is still held goes out at the end, in order.
            let held: Vec<_> = std::mem::take(&mut self.held);
            for (d, c, _) in held {
                self.forward(d, c);
            }
        }
        let now = Instant::now();
        let mut due: Vec<(Instant, Vec<u8>, bool)> = Vec::new();
        self.delayed.retain(|x| {
            if all || x.0 <= now {
                due.push(x.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|x| x.0);
        for (_, d, c) in due {
            self.send(&d, c);
        }
    }

    fn send(&mut self, d: &[u8], corrupted: bool) {
        let seq = if d.len() >= 8 {
            u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
        } else {
            u64::MAX
        };
        if self.up && corrupted {
            // Before the send: the echo may race back through the other thread.
            self.record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .corrupted_requests
                .insert(seq);
        }
        let sent = if self.up {
            self.to.send(d).is_ok()
        } else {
            let client = *self.client.lock().unwrap_or_else(PoisonError::into_inner);
            client.is_some_and(|c| self.to.send_to(d, c).is_ok())
        };
        if !sent {
            return;
        }
        let mut rec = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        if self.up {
            rec.to_server.forwarded += 1;
        } else {
            rec.to_client.forwarded += 1;
            let upstream = rec.corrupted_requests.contains(&seq);
            rec.emitted.push((seq, corrupted || upstream));
        }
    }
}
