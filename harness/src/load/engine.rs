//! The open-loop TCP engine: one mio event loop drives every connection on
//! its schedule of intended send times ([`super::schedule`]).
//!
//! ```text
//!  intended t ──► due? ──► window has room? ──yes──► write (lag = now - eligible)
//!                              │ no                        │
//!                              ▼                           ▼
//!                   held: waits for a reply      reply ──► latency = now - t
//! ```
//!
//! A request goes out at its intended time whether or not earlier replies
//! came back, up to `window` requests in flight per connection. Past that
//! the server is pushing back: the request waits, and its latency still
//! counts from its intended time, so a stalled server shows its stall
//! (no coordinated omission). The driver's own lateness, from the moment a
//! request could have gone out to the moment it did, is the lag: when it
//! grows, the numbers describe the driver, and the run says so.
//!
//! Every intended request ends as exactly one of: received (its latency
//! recorded), a timeout (no reply within `timeout` of its intended time,
//! sent or not), or an error (its connection failed). Requests are
//! attributed to the measured window holding their intended time.
//!
//! Waiting uses a timerfd armed to just before the next intended time
//! (epoll's own timeout has millisecond resolution, which would be lag of
//! its own), then busy-polls the last [`SPIN`].

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, timerfd_create, timerfd_settime,
};

use super::schedule::{Arrival, ConnSchedule};
use crate::error::Error;
use crate::measure::proc::this_thread_cpu;

/// Why a load could not run at all (a failure during the run is counted
/// as errors instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The event loop or its timer failed.
    #[error("load driver: {0}")]
    Driver(#[from] std::io::Error),
}

/// One open-loop load.
#[derive(Debug, Clone)]
pub struct OpenLoad {
    /// The server.
    pub addr: SocketAddr,
    /// The request frame; its echo must be the same bytes.
    pub frame: Vec<u8>,
    /// Connections.
    pub conns: usize,
    /// Offered requests per second, over all connections.
    pub rate: f64,
    /// Arrival process.
    pub arrival: Arrival,
    /// Most requests in flight per connection.
    pub window: usize,
    /// Seed of the Poisson gaps.
    pub seed: u64,
    /// A request with no reply this long after its intended time is a timeout.
    pub timeout: Duration,
    /// Busy-poll when the next send is this close (see [`SPIN`]).
    pub spin: Duration,
    /// Ends the load early when set (a background load, stopped when the
    /// work it accompanies ends); requests in flight then are not counted.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// How close the next send must be for the driver to busy-poll instead of
/// sleeping. On the 2-core VM this was written on, a thread sleeping 0.5 ms
/// woke 0.1 ms late at the median and 2.4 ms late at p99 (Python's
/// `time.sleep`, the same with a timerfd): a sleeping driver lags by that
/// much. Spinning costs the driver's core, which it should have to itself.
pub const SPIN: Duration = Duration::from_millis(2);

/// Warm-up (sent, not recorded), then measured windows back to back.
#[derive(Debug, Clone)]
pub struct Phases {
    /// Not recorded.
    pub warmup: Duration,
    /// Measured windows.
    pub windows: Vec<Duration>,
}

/// What one measured window counted.
#[derive(Debug, Clone)]
pub struct Window {
    /// Its length.
    pub secs: f64,
    /// Requests sent.
    pub sent: u64,
    /// Replies received in time.
    pub received: u64,
    /// Requests lost to a failed connection.
    pub errors: u64,
    /// Requests with no reply within the timeout.
    pub timeouts: u64,
    /// Requests that waited because the connection's window was full.
    pub held: u64,
    /// Latency from the intended send time, µs.
    pub latency: Histogram<u64>,
    /// The driver's own lateness per send, µs.
    pub lag: Histogram<u64>,
}

impl Window {
    /// An empty window `d` long.
    pub fn new(d: Duration) -> Window {
        Window {
            secs: d.as_secs_f64(),
            sent: 0,
            received: 0,
            errors: 0,
            timeouts: 0,
            held: 0,
            latency: us_histogram(),
            lag: us_histogram(),
        }
    }
}

/// The outcome of a load.
#[derive(Debug)]
pub struct OpenResult {
    /// Per measured window.
    pub windows: Vec<Window>,
    /// The driver thread's CPU seconds over the measured windows.
    pub cpu_s: f64,
    /// What went wrong on failed connections (the first few).
    pub failures: Vec<String>,
}

/// A histogram of microseconds from 1 µs to an hour at 3 significant digits.
pub fn us_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    intended: u64,
}

struct Conn {
    s: TcpStream,
    sched: ConnSchedule,
    inflight: VecDeque<Pending>,
    /// Frames queued for writing, and bytes of the first already written.
    unwritten: usize,
    wpos: usize,
    /// Offset within the reply being received.
    rpos: usize,
    /// When a reply last freed a full window (ns), for the lag.
    opened_at: u64,
    dead: bool,
}

/// The phase boundaries in ns: `ends[0]` ends the warm-up, `ends[k]` window k-1.
struct Bounds {
    ends: Vec<u64>,
}

impl Bounds {
    fn new(p: &Phases) -> Bounds {
        let mut t = p.warmup.as_nanos() as u64;
        let mut ends = vec![t];
        for w in &p.windows {
            t += w.as_nanos() as u64;
            ends.push(t);
        }
        Bounds { ends }
    }

    fn end(&self) -> u64 {
        *self.ends.last().unwrap_or(&0)
    }

    /// The measured window holding intended time `t`; `None` in the warm-up.
    fn window(&self, t: u64) -> Option<usize> {
        if t < self.ends[0] {
            return None;
        }
        let k = self.ends.partition_point(|&e| e <= t);
        (k < self.ends.len()).then(|| k - 1)
    }
}

const BATCH_BYTES: usize = 256 * 1024;

/// Runs `load` over `phases` on the calling thread. `boundary(k)` is
/// called as measured window `k` begins, and with `k == windows.len()`
/// when the last one ends (to sample the server there).
pub fn run(
    load: &OpenLoad,
    phases: &Phases,
    boundary: &mut dyn FnMut(usize),
) -> Result<OpenResult, LoadError> {
    let flen = load.frame.len();
    let window = load.window.max(1);
    let batch_frames = (BATCH_BYTES / flen.max(1)).clamp(1, window);
    let batch = load.frame.repeat(batch_frames);
    let bounds = Bounds::new(phases);
    let end = bounds.end();
    let timeout = load.timeout.as_nanos() as u64;
    let spin = load.spin.as_nanos() as u64;
    let mut poll = Poll::new()?;
    let mut conns = connect_all(load, window, &poll)?;
    let timer_token = Token(usize::MAX);
    let timer = wake_timer(&poll, timer_token)?;
    let mut windows: Vec<Window> = phases.windows.iter().map(|d| Window::new(*d)).collect();
    let mut failures = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let t0 = Instant::now();
    let ns = |t0: Instant| t0.elapsed().as_nanos() as u64;
    let mut next_boundary = 0usize; // index into bounds.ends
    let mut cpu0 = this_thread_cpu();
    let deadline = end + timeout;
    loop {
        if load
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            break;
        }
        let mut now = ns(t0);
        while next_boundary < bounds.ends.len() && now >= bounds.ends[next_boundary] {
            if next_boundary == 0 {
                cpu0 = this_thread_cpu();
            }
            boundary(next_boundary);
            next_boundary += 1;
            now = ns(t0);
        }
        for (i, c) in conns.iter_mut().enumerate() {
            if c.dead {
                continue;
            }
            send_due(c, now, end, window, &bounds, &mut windows);
            if let Err(e) = flush(c, &batch, flen) {
                fail(c, i, &e, end, &bounds, &mut windows, &mut failures);
            }
        }
        let open = conns
            .iter()
            .any(|c| !c.dead && (c.sched.peek() < end || !c.inflight.is_empty()));
        if !open || now >= deadline {
            break;
        }
        // Sleep until the next send that can go out, the next boundary or the deadline.
        let mut wake = deadline;
        if next_boundary < bounds.ends.len() {
            wake = wake.min(bounds.ends[next_boundary]);
        }
        for c in &conns {
            if !c.dead && c.inflight.len() < window && c.sched.peek() < end {
                wake = wake.min(c.sched.peek());
            }
        }
        let sleep = wake.saturating_sub(ns(t0));
        if sleep <= spin {
            poll.poll(&mut events, Some(Duration::ZERO))
        } else {
            // Wake early and spin the rest: a sleeping CPU wakes late.
            arm(&timer, sleep - spin)?;
            poll.poll(&mut events, None)
        }
        .or_else(|e| {
            if e.kind() == ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        for ev in events.iter() {
            if ev.token() == timer_token {
                let mut tick = [0u8; 8];
                let _ = rustix::io::read(&timer, &mut tick);
                continue;
            }
            let i = ev.token().0;
            let c = &mut conns[i];
            if c.dead {
                continue;
            }
            let r = receive(
                c,
                &mut buf,
                &load.frame,
                window,
                t0,
                timeout,
                &bounds,
                &mut windows,
            );
            if let Err(e) = r {
                fail(c, i, &e, end, &bounds, &mut windows, &mut failures);
            }
        }
    }
    let cpu_s = this_thread_cpu() - cpu0;
    // Whatever is still owed at the deadline timed out, sent or not. A
    // stopped load owes only what was already overdue: the rest was never
    // asked for.
    let stopped = load
        .stop
        .as_ref()
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    let now = ns(t0);
    let owed = |intended: u64| !stopped || intended + timeout <= now;
    for c in conns.iter_mut().filter(|c| !c.dead) {
        time_out_what_is_owed(c, end, &owed, &bounds, &mut windows);
    }
    while next_boundary < bounds.ends.len() {
        boundary(next_boundary);
        next_boundary += 1;
    }
    Ok(OpenResult {
        windows,
        cpu_s,
        failures,
    })
}

/// Opens, tunes and registers the load's connections, each with its share
/// of the schedule.
fn connect_all(load: &OpenLoad, window: usize, poll: &Poll) -> Result<Vec<Conn>, LoadError> {
    let mut conns = Vec::with_capacity(load.conns);
    for i in 0..load.conns {
        let s = std::net::TcpStream::connect_timeout(&load.addr, Duration::from_secs(5)).map_err(
            |source| LoadError::Connect {
                addr: load.addr,
                source,
            },
        )?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut s = TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        conns.push(Conn {
            s,
            sched: ConnSchedule::new(load.arrival, load.rate, load.conns, i, load.seed),
            inflight: VecDeque::with_capacity(window),
            unwritten: 0,
            wpos: 0,
            rpos: 0,
            opened_at: 0,
            dead: false,
        });
    }
    Ok(conns)
}

/// The timer that wakes the loop before a send is due, registered as `token`.
fn wake_timer(poll: &Poll, token: Token) -> Result<OwnedFd, LoadError> {
    let timer = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    poll.registry()
        .register(&mut SourceFd(&timer.as_raw_fd()), token, Interest::READABLE)?;
    Ok(timer)
}

/// At the end: whatever a connection still owes (in flight, or scheduled
/// and not sent) counts as timed out in its window.
fn time_out_what_is_owed(
    c: &mut Conn,
    end: u64,
    owed: &dyn Fn(u64) -> bool,
    bounds: &Bounds,
    windows: &mut [Window],
) {
    for p in c.inflight.drain(..) {
        if let Some(k) = bounds.window(p.intended).filter(|_| owed(p.intended)) {
            windows[k].timeouts += 1;
        }
    }
    while c.sched.peek() < end && owed(c.sched.peek()) {
        if let Some(k) = bounds.window(c.sched.take()) {
            windows[k].timeouts += 1;
        }
    }
}

/// Arms the timer `ns` from now (at least 1 ns: zero would disarm it).
fn arm(timer: &OwnedFd, ns: u64) -> std::io::Result<()> {
    let ns = ns.max(1);
    let spec = Itimerspec {
        it_interval: rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: rustix::time::Timespec {
            tv_sec: (ns / 1_000_000_000) as _,
            tv_nsec: (ns % 1_000_000_000) as _,
        },
    };
    timerfd_settime(timer.as_fd(), TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

/// Queues every request that is due and fits the window.
fn send_due(
    c: &mut Conn,
    now: u64,
    end: u64,
    window: usize,
    bounds: &Bounds,
    windows: &mut [Window],
) {
    while c.sched.peek() < end && c.sched.peek() <= now && c.inflight.len() < window {
        let t = c.sched.take();
        c.inflight.push_back(Pending { intended: t });
        c.unwritten += 1;
        if let Some(k) = bounds.window(t) {
            let w = &mut windows[k];
            w.sent += 1;
            // Ready since its intended time, or since a reply made room.
            let eligible = t.max(c.opened_at);
            if c.opened_at > t {
                w.held += 1;
            }
            w.lag.saturating_record(now.saturating_sub(eligible) / 1000);
        }
    }
}

/// Writes queued frames until the socket pushes back.
fn flush(c: &mut Conn, batch: &[u8], flen: usize) -> Result<(), Error> {
    let batch_frames = batch.len() / flen;
    while c.unwritten > 0 {
        let upto = c.unwritten.min(batch_frames) * flen;
        match c.s.write(&batch[c.wpos..upto]) {
            Ok(n) => {
                c.wpos += n;
                c.unwritten -= c.wpos / flen;
                c.wpos %= flen;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("writing")(e)),
        }
    }
    Ok(())
}

/// Reads what is there, checking it against the request, and records
/// each completed reply.
#[allow(clippy::too_many_arguments)]
fn receive(
    c: &mut Conn,
    buf: &mut [u8],
    frame: &[u8],
    window: usize,
    t0: Instant,
    timeout: u64,
    bounds: &Bounds,
    windows: &mut [Window],
) -> Result<(), Error> {
    loop {
        let n = match c.s.read(buf) {
            Ok(0) => {
                return Err(Error::Misbehaved {
                    what: "the server closed the connection".into(),
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading")(e)),
        };
        let now = t0.elapsed().as_nanos() as u64;
        let (inflight, opened_at) = (&mut c.inflight, &mut c.opened_at);
        crate::peer::frames::match_echo(&buf[..n], frame, &mut c.rpos, || {
            let was_full = inflight.len() >= window;
            let p = inflight.pop_front().ok_or_else(|| Error::Misbehaved {
                what: "a reply arrived for no request".into(),
            })?;
            if was_full {
                *opened_at = now;
            }
            if let Some(k) = bounds.window(p.intended) {
                let latency = now.saturating_sub(p.intended);
                let w = &mut windows[k];
                if latency > timeout {
                    w.timeouts += 1;
                } else {
                    w.received += 1;
                    w.latency.saturating_record((latency / 1000).max(1));
                }
            }
            Ok(())
        })?;
    }
}

/// Marks a connection failed: what it owed counts as errors.
fn fail(
    c: &mut Conn,
    i: usize,
    why: &Error,
    end: u64,
    bounds: &Bounds,
    windows: &mut [Window],
    failures: &mut Vec<String>,
) {
    c.dead = true;
    if failures.len() < 5 {
        failures.push(format!("connection {i}: {why}"));
    }
    for p in c.inflight.drain(..) {
        if let Some(k) = bounds.window(p.intended) {
            windows[k].errors += 1;
        }
    }
    while c.sched.peek() < end {
        if let Some(k) = bounds.window(c.sched.take()) {
            windows[k].errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const FRAME: &[u8] = b"\x0f\0\0\0{\"file_size\":3}abc";

    /// An echo server; with `stall`, its first connection sleeps that long
    /// once, when `go` is set, before echoing on.
    fn server(stall: Option<(Duration, Arc<AtomicBool>)>) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut stall = stall;
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut stall = stall.take();
                std::thread::spawn(move || {
                    let mut b = [0u8; 65536];
                    while let Ok(n) = s.read(&mut b) {
                        if let Some((d, go)) = &stall {
                            if go.load(Ordering::SeqCst) {
                                std::thread::sleep(*d);
                                stall = None;
                            }
                        }
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn load(addr: SocketAddr, rate: f64, conns: usize, window: usize) -> OpenLoad {
        OpenLoad {
            stop: None,
            addr,
            frame: FRAME.to_vec(),
            conns,
            rate,
            arrival: Arrival::Constant,
            window,
            seed: 1,
            timeout: Duration::from_secs(5),
            spin: SPIN,
        }
    }

    fn phases(warmup_ms: u64, windows_ms: &[u64]) -> Phases {
        Phases {
            warmup: Duration::from_millis(warmup_ms),
            windows: windows_ms
                .iter()
                .map(|&m| Duration::from_millis(m))
                .collect(),
        }
    }

    #[test]
    fn every_intended_request_is_sent_and_answered_once() {
        let addr = server(None);
        let mut seen = Vec::new();
        let r = run(
            &load(addr, 2000.0, 4, 8),
            &phases(50, &[100, 150]),
            &mut |k| seen.push(k),
        )
        .unwrap();
        assert_eq!(seen, vec![0, 1, 2], "every boundary, in order");
        // Constant arrivals: exactly rate x length intended in each window.
        for (w, want) in r.windows.iter().zip([200, 300]) {
            assert_eq!(w.sent, want, "{w:?}");
            assert_eq!(w.received + w.timeouts + w.errors, want);
            assert_eq!(w.latency.len(), w.received);
            assert_eq!(w.lag.len(), want, "one lag sample per send");
        }
        assert!(r.failures.is_empty());
    }

    /// The open-loop point: a server that stalls 150 ms delays every request
    /// intended during the stall, and each counts from its intended time.
    /// A closed loop would see one slow reply per connection.
    #[test]
    fn latency_counts_from_the_intended_time_through_a_stall() {
        let go = Arc::new(AtomicBool::new(false));
        let addr = server(Some((Duration::from_millis(150), Arc::clone(&go))));
        let r = run(&load(addr, 1000.0, 1, 1), &phases(20, &[400]), &mut |k| {
            if k == 0 {
                go.store(true, Ordering::SeqCst);
            }
        })
        .unwrap();
        let w = &r.windows[0];
        assert_eq!(w.sent, w.received, "{w:?}");
        // ~150 requests fell due during the stall; with one in flight they waited.
        assert!(w.held >= 100, "held {}", w.held);
        let slow = w.latency.count_between(50_000, u64::MAX);
        assert!(slow >= 50, "{slow} replies at 50 ms or more");
        assert!(w.latency.max() >= 140_000, "max {} us", w.latency.max());
    }

    #[test]
    fn a_silent_server_times_out_and_a_closing_one_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(600));
            drop(s);
        });
        let mut silent = load(addr, 500.0, 1, 4);
        silent.timeout = Duration::from_millis(200);
        let r = run(&silent, &phases(0, &[100]), &mut |_| {}).unwrap();
        let w = &r.windows[0];
        assert_eq!((w.received, w.timeouts, w.errors), (0, 50, 0), "{w:?}");
        held.join().unwrap();

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let _ = s.read(&mut b);
        });
        let r = run(&load(addr, 500.0, 1, 4), &phases(0, &[100]), &mut |_| {}).unwrap();
        let w = &r.windows[0];
        assert_eq!(w.received + w.timeouts, 0, "{w:?}");
        assert_eq!(w.errors, 50, "{w:?}");
        // A close with requests unread may arrive as a reset: either fails the connection.
        let why = &r.failures[0];
        assert!(
            why.contains("closed") || why.contains("reset"),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn a_wrong_echo_fails_its_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let n = s.read(&mut b).unwrap();
            b[n - 1] ^= 1;
            s.write_all(&b[..n]).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let r = run(&load(addr, 100.0, 1, 1), &phases(0, &[100]), &mut |_| {}).unwrap();
        assert!(r.failures[0].contains("differs"), "{:?}", r.failures);
        assert_eq!(r.windows[0].received, 0);
    }

    #[test]
    fn phases_attribute_by_intended_time() {
        let b = Bounds::new(&phases(10, &[20, 30]));
        assert_eq!(b.window(0), None);
        assert_eq!(b.window(9_999_999), None);
        assert_eq!(b.window(10_000_000), Some(0));
        assert_eq!(b.window(29_999_999), Some(0));
        assert_eq!(b.window(30_000_000), Some(1));
        assert_eq!(b.window(59_999_999), Some(1));
        assert_eq!(b.window(60_000_000), None);
    }
}
