//! A sequenced UDP probe: each datagram carries a 64-bit sequence number and
//! its send time; the receiver counts what came back, lost, duplicated and
//! reordered, with RFC 3550 jitter and latency percentiles. The sender is
//! open-loop (paced at the offered rate) and every wait has a deadline, so a
//! lost echo never hangs anything.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::batch;
use crate::measure::stats::histogram;

/// Bytes of header in each probe datagram: sequence number and send time.
pub const HEADER: usize = 16;

/// What to send.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Datagram size (at least [`HEADER`]).
    pub size: usize,
    /// Offered rate, datagrams per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// How long to wait for late echoes: the receiver stops once the
    /// sending is over and nothing has arrived for this long (waiting at
    /// most [`DRAIN_LIMIT`] longer than this after the last send).
    pub drain: Duration,
}

/// How much longer than the drain the receiver waits on while echoes keep coming.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// What came back.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams echoed.
    pub received: u64,
    /// Echoes of a datagram already received.
    pub duplicates: u64,
    /// Echoes that arrived after one with a higher sequence number.
    pub out_of_order: u64,
    /// Echoes whose payload differs from what was sent.
    pub corrupted: u64,
    /// Echoes cut to fit the receive buffer (MSG_TRUNC).
    pub truncated: u64,
    /// Sent but never echoed.
    pub lost: u64,
    /// Sends the kernel refused (buffer full and the like).
    pub send_errors: u64,
    /// RFC 3550 interarrival jitter, microseconds.
    pub jitter_us: f64,
    /// Round-trip times in ns.
    pub latency: Histogram<u64>,
    /// How long sending took.
    pub send_secs: f64,
}

impl ProbeResult {
    /// Lost fraction of what was sent.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 / self.sent as f64
        }
    }
}

/// The largest UDP payload for `addr`'s family: 65,535 minus the IP and
/// UDP headers (20 + 8 on IPv4; IPv6's 40-byte header is not counted in
/// its payload length, so 65,535 - 8).
pub fn max_payload(addr: SocketAddr) -> usize {
    if addr.is_ipv4() { 65_507 } else { 65_527 }
}

/// A datagram larger than its family allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a UDP datagram of {size} bytes exceeds the {family} maximum of {max} bytes (EMSGSIZE): it cannot be sent, only refused"
)]
pub struct Oversize {
    /// The size asked for.
    pub size: usize,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// The limit.
    pub max: usize,
}

/// Checks a payload size against `addr`'s family before anything is sent.
pub fn check_size(addr: SocketAddr, size: usize) -> Result<(), Oversize> {
    let max = max_payload(addr);
    if size > max {
        return Err(Oversize {
            size,
            family: if addr.is_ipv4() { "IPv4" } else { "IPv6" },
            max,
        });
    }
    Ok(())
}

/// A socket of `server`'s family, with large buffers: bound to loopback for
/// a loopback server, else to any address (a namespace's veth).
pub fn bind_for(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = match (server.is_ipv4(), server.ip().is_loopback()) {
        (true, true) => (Ipv4Addr::LOCALHOST, 0).into(),
        (true, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (false, true) => (Ipv6Addr::LOCALHOST, 0).into(),
        (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(local)?;
    let s2 = socket2::SockRef::from(&s);
    let _ = s2.set_recv_buffer_size(8 << 20);
    let _ = s2.set_send_buffer_size(8 << 20);
    Ok(s)
}

/// [`bind_for`], connected to `server`.
pub fn socket_for(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = bind_for(server)?;
    s.connect(server)?;
    Ok(s)
}

/// Sends `probe` to `server` and receives the echoes.
pub fn run(server: SocketAddr, probe: &Probe) -> std::io::Result<ProbeResult> {
    let size = probe.size.max(HEADER);
    check_size(server, size).map_err(std::io::Error::other)?;
    let sock = socket_for(server)?;
    let rx = sock.try_clone()?;
    rx.set_read_timeout(Some(Duration::from_millis(20)))?;
    let start = Instant::now();
    // Nanoseconds from `start` to the end of sending; 0 while sending.
    let sent_by = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (sent_by, drain) = (sent_by.clone(), probe.drain);
        thread::spawn(move || receive(&rx, start, &sent_by, drain))
    };
    let mut payload = vec![0u8; size];
    for (i, b) in payload.iter_mut().enumerate().skip(HEADER) {
        *b = i as u8;
    }
    // A batch's worth of datagrams, each with its own sequence number and
    // send time, handed to the kernel in one sendmmsg.
    let mut slots = vec![payload; batch::BATCH];
    let (mut sent, mut send_errors) = (0u64, 0u64);
    let interval = Duration::from_micros(250);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= probe.duration {
            break;
        }
        let due = (probe.rate * elapsed.as_secs_f64()).ceil() as u64;
        while sent < due {
            let k = ((due - sent) as usize).min(batch::BATCH);
            let now = (start.elapsed().as_nanos() as u64).to_le_bytes();
            for (j, slot) in slots[..k].iter_mut().enumerate() {
                slot[..8].copy_from_slice(&(sent + j as u64).to_le_bytes());
                slot[8..16].copy_from_slice(&now);
            }
            let msgs: Vec<&[u8]> = slots[..k].iter().map(Vec::as_slice).collect();
            match batch::send(&sock, &msgs, None) {
                Ok(n) if n > 0 => sent += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => {
                    // The kernel is full: the datagram is not sent, and not counted.
                    send_errors += 1;
                    break;
                }
            }
        }
        thread::sleep(interval);
    }
    let sent_for = start.elapsed();
    sent_by.store((sent_for.as_nanos() as u64).max(1), Ordering::Release);
    let send_secs = sent_for.as_secs_f64();
    let mut r = receiver
        .join()
        .map_err(|_| std::io::Error::other("the receiver panicked"))?;
    r.sent = sent;
    r.send_errors = send_errors;
    r.send_secs = send_secs;
    r.lost = sent.saturating_sub(r.received);
    Ok(r)
}

/// The sender alone: datagrams of `size` sent to `to` as fast as batches
/// go, unpaced, for `duration`; returns datagrams per second sent (what
/// `sockperf throughput` reports). This is the most the UDP scenario can
/// offer a server.
pub fn one_way(to: SocketAddr, size: usize, duration: Duration) -> std::io::Result<f64> {
    let size = size.max(HEADER);
    check_size(to, size).map_err(std::io::Error::other)?;
    let sock = socket_for(to)?;
    let slots = vec![vec![0x5au8; size]; batch::BATCH];
    let msgs: Vec<&[u8]> = slots.iter().map(Vec::as_slice).collect();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        match batch::send(&sock, &msgs, None) {
            Ok(n) => sent += n as u64,
            // A full buffer or a refused port: nothing sent this time.
            Err(_) => thread::yield_now(),
        }
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64())
}

/// Receives until sending is over and the echoes have gone quiet: a fixed
/// window after the last send would count an echo delayed by a busy
/// machine as lost. Reads a batch per system call, so the receiver keeps up
/// with a batched sender; every echo of a batch is stamped with the time
/// the batch arrived.
fn receive(sock: &UdpSocket, start: Instant, sent_by: &AtomicU64, drain: Duration) -> ProbeResult {
    let mut bufs = vec![vec![0u8; 65_536]; batch::BATCH];
    let mut lens = [0usize; batch::BATCH];
    let mut t = Tally {
        r: ProbeResult {
            sent: 0,
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            corrupted: 0,
            truncated: 0,
            lost: 0,
            send_errors: 0,
            jitter_us: 0.0,
            latency: histogram(),
            send_secs: 0.0,
        },
        seen: Vec::new(),
        highest: None,
        last_transit: None,
        jitter: 0.0,
    };
    let mut last_arrival = Duration::ZERO;
    loop {
        let end = Duration::from_nanos(sent_by.load(Ordering::Acquire));
        let now = start.elapsed();
        if !end.is_zero()
            && (now >= last_arrival.max(end) + drain || now >= end + drain + DRAIN_LIMIT)
        {
            break;
        }
        let Ok(n) = batch::recv(sock, &mut bufs, &mut lens, None) else {
            continue;
        };
        last_arrival = start.elapsed();
        let now = last_arrival.as_nanos() as u64;
        for i in 0..n {
            if lens[i] > bufs[i].len() {
                t.r.truncated += 1;
            } else {
                t.account(&bufs[i][..lens[i]], now);
            }
        }
    }
    t.r.jitter_us = t.jitter;
    t.r
}

/// The receiver's counts as echoes come in.
struct Tally {
    r: ProbeResult,
    /// A bit per sequence number seen.
    seen: Vec<u64>,
    highest: Option<u64>,
    last_transit: Option<f64>,
    jitter: f64,
}

impl Tally {
    /// Counts one echo that arrived `now` (ns from the probe's start).
    fn account(&mut self, d: &[u8], now: u64) {
        let r = &mut self.r;
        if d.len() < HEADER {
            return;
        }
        // The sender fills byte i with i: anything else was altered on the way.
        if d[HEADER..]
            .iter()
            .enumerate()
            .any(|(i, b)| *b != (i + HEADER) as u8)
        {
            r.corrupted += 1;
            return;
        }
        let seq = u64::from_le_bytes(d[..8].try_into().unwrap_or_default());
        let sent_at = u64::from_le_bytes(d[8..16].try_into().unwrap_or_default());
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            if word > 1 << 24 {
                return; // not one of ours
            }
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            r.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        r.received += 1;
        match self.highest {
            Some(h) if seq < h => r.out_of_order += 1,
            _ => self.highest = Some(seq),
        }
        let rtt = now.saturating_sub(sent_at);
        let _ = r.latency.record(rtt.max(100));
        // RFC 3550 §6.4.1: J += (|D(i-1,i)| - J) / 16 over transit times.
        let transit = rtt as f64 / 1e3;
        if let Some(prev) = self.last_transit {
            self.jitter += ((transit - prev).abs() - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_echo_and_every_loss() {
        // An echo that drops every third datagram and duplicates every fifth.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || {
            let mut b = [0u8; 2048];
            let mut i = 0u64;
            while let Ok((n, from)) = server.recv_from(&mut b) {
                i += 1;
                if i % 3 == 0 {
                    continue;
                }
                let _ = server.send_to(&b[..n], from);
                if i % 5 == 0 {
                    let _ = server.send_to(&b[..n], from);
                }
            }
        });
        let probe = Probe {
            size: 64,
            rate: 3000.0,
            duration: Duration::from_millis(300),
            drain: Duration::from_millis(100),
        };
        let r = run(addr, &probe).unwrap();
        assert!(r.sent >= 800, "sent {}", r.sent);
        assert_eq!(r.received + r.lost, r.sent);
        let dropped = r.sent / 3;
        assert_eq!(r.lost, dropped, "every third dropped");
        assert!(r.duplicates > 0);
        assert_eq!(r.latency.len(), r.received);
    }

    /// Echoes that keep arriving after the last send are waited for, even
    /// when each is late by more than the drain: they are not loss.
    #[test]
    fn a_steady_delay_longer_than_the_drain_loses_nothing() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        thread::spawn(move || {
            let mut b = [0u8; 2048];
            let mut queue = std::collections::VecDeque::new();
            let t0 = Instant::now();
            // Bounded: the probe is over within a few seconds.
            while t0.elapsed() < Duration::from_secs(20) {
                if let Ok((n, from)) = server.recv_from(&mut b) {
                    queue.push_back((
                        Instant::now() + Duration::from_millis(400),
                        b[..n].to_vec(),
                        from,
                    ));
                }
                while queue
                    .front()
                    .is_some_and(|(due, _, _)| *due <= Instant::now())
                {
                    let (_, d, from) = queue.pop_front().unwrap();
                    let _ = server.send_to(&d, from);
                }
            }
        });
        let probe = Probe {
            size: 64,
            rate: 1000.0,
            duration: Duration::from_millis(300),
            drain: Duration::from_millis(250),
        };
        let r = run(addr, &probe).unwrap();
        assert!(r.sent >= 250, "sent {}", r.sent);
        assert_eq!((r.received, r.lost), (r.sent, 0));
    }
}
