//! Moves one connection's bytes both ways through its cutters: a thread
//! per direction, each reading with a short timeout so that a held tail is
//! glued or flushed in time and a stop is noticed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::Counters;
use super::faults::{Cutter, Faults};

/// How often an idle pump looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What both directions of a connection share.
struct Shared<'a> {
    faults: &'a Faults,
    stop: &'a AtomicBool,
    counters: &'a Counters,
    /// Bytes through this connection, both ways (for `reset_after`).
    through: AtomicU64,
    /// Set by a reset: both pumps end, and the sockets close with RST.
    reset: AtomicBool,
}

/// Runs `client` <-> `upstream` until both directions end.
pub fn connection(
    client: TcpStream,
    upstream: TcpStream,
    faults: &Faults,
    seed: u64,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let shared = Shared {
        faults,
        stop,
        counters,
        through: AtomicU64::new(0),
        reset: AtomicBool::new(false),
    };
    thread::scope(|s| {
        let sh = &shared;
        let (c, u) = (&client, &upstream);
        s.spawn(move || pump(c, u, Cutter::new(sh.faults, seed), sh));
        pump(u, c, Cutter::new(sh.faults, seed ^ 0x5eed), sh);
    });
    if shared.reset.load(Ordering::SeqCst) {
        for s in [&client, &upstream] {
            let _ = socket2::SockRef::from(s.as_ref()).set_linger(Some(Duration::ZERO));
        }
    }
    // The last references drop here: with linger 0 the close is a reset.
}

fn pump(src: &TcpStream, dst: &TcpStream, mut cut: Cutter, sh: &Shared<'_>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let start = Instant::now();
    let mut sent: u64 = 0;
    loop {
        if sh.stop.load(Ordering::Relaxed) || sh.reset.load(Ordering::Relaxed) {
            return;
        }
        let wait = if pending.is_empty() {
            TICK
        } else {
            sh.faults.glue.max(Duration::from_micros(100))
        };
        let _ = src.set_read_timeout(Some(wait));
        let (flush, eof) = match (&*src).read(&mut buf) {
            Ok(0) => (true, true),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                (false, false)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                (true, false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                abort(src, dst);
                return;
            }
        };
        if !forward(dst, &mut pending, &mut cut, flush, sh, start, &mut sent) {
            // A reset closes with RST once both pumps are out; a FIN first
            // would be a clean close.
            if !sh.reset.load(Ordering::SeqCst) {
                abort(src, dst);
            }
            return;
        }
        if eof {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Ends both sides, as a network carries a failure both ways: the other
/// direction's pump may be blocked writing to a peer that stopped reading
/// because of this one, and only a shutdown wakes it.
fn abort(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Writes the pieces of `pending` that are ready; false when the
/// connection ended (a reset, or the destination failed).
fn forward(
    dst: &TcpStream,
    pending: &mut Vec<u8>,
    cut: &mut Cutter,
    flush: bool,
    sh: &Shared<'_>,
    start: Instant,
    sent: &mut u64,
) -> bool {
    let mut done = 0;
    let mut first = true;
    while let Some(mut n) = cut.next_piece(pending.len() - done, flush) {
        // The delay is per burst, as a network's would be: per piece it
        // would turn a 1 MiB body cut into 1-byte pieces into hours.
        if std::mem::take(&mut first) {
            let pause = cut.delay();
            if !pause.is_zero() {
                thread::sleep(pause);
            }
        }
        if let Some(rate) = sh.faults.throttle {
            let due = start + Duration::from_secs_f64((*sent + n as u64) as f64 / rate as f64);
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                thread::sleep(w);
            }
        }
        let mut reset = false;
        if let Some(limit) = sh.faults.reset_after {
            let before = sh.through.fetch_add(n as u64, Ordering::SeqCst);
            if before + n as u64 >= limit {
                n = limit.saturating_sub(before) as usize;
                reset = true;
            }
        }
        if (&*dst).write_all(&pending[done..done + n]).is_err() {
            return false;
        }
        done += n;
        *sent += n as u64;
        sh.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if reset {
            if !sh.reset.swap(true, Ordering::SeqCst) {
                sh.counters.resets.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
    }
    pending.drain(..done);
    true
}
