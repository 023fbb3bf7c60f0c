//! The load driver: one mio event loop keeps every connection busy with a
//! window of request frames in flight (1 = request-response; more =
//! pipelined), closed-loop. An echo reply is the request itself, so the
//! driver checks every reply byte against the request as it counts it:
//! a wrong server cannot score.
//!
//! Warm-up runs first and is not measured; then come the repetitions,
//! back to back on the same connections, each its own count. A repetition
//! that has completed nothing when its time is up runs on until a reply
//! completes (at most [`STALL_LIMIT`] more): a stall of the server or of a
//! shared machine then shows as one slow repetition, which the median
//! discounts, instead of a zero that fails the measurement.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::error::Error;
use crate::measure::proc::this_thread_cpu;
use crate::measure::stats::histogram;

/// How long a repetition that has completed nothing may run over.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// A closed-loop echo load.
#[derive(Debug, Clone)]
pub struct EchoLoad {
    /// The server.
    pub addr: SocketAddr,
    /// One request frame; its echo must be the same bytes.
    pub frame: Vec<u8>,
    /// Connections.
    pub conns: usize,
    /// Frames in flight per connection.
    pub depth: usize,
}

/// Warm-up, then repetitions.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Not measured.
    pub warmup: Duration,
    /// Measured repetitions.
    pub reps: usize,
    /// Length of each.
    pub rep: Duration,
}

/// What one measured repetition counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepCount {
    /// Replies completed.
    pub frames: u64,
    /// Its actual length.
    pub secs: f64,
    /// It ran over its length, waiting for a first reply.
    pub overtime: bool,
}

/// The outcome of a load.
#[derive(Debug)]
pub struct EchoResult {
    /// Per repetition.
    pub reps: Vec<RepCount>,
    /// Latency of every reply of the measured repetitions, in ns.
    pub latency: Histogram<u64>,
    /// Driver thread CPU seconds during the repetitions.
    pub cpu_s: f64,
    /// Driver reads during the repetitions.
    pub reads: u64,
    /// Driver writes during the repetitions.
    pub writes: u64,
    /// Connections that completed nothing during the repetitions.
    pub starved: usize,
}

struct Conn {
    s: TcpStream,
    /// Frames in the batch being written, and bytes of it written.
    queued: usize,
    written: usize,
    /// Start times of frames sent (or being sent) and not yet answered.
    inflight: VecDeque<Instant>,
    /// Offset within the reply frame being received.
    rpos: usize,
    measured: u64,
}

/// Runs `load` on the calling thread for the whole schedule; `window` is
/// called with `true` as the measured repetitions begin and `false` as they
/// end (to sample the server there).
pub fn run(
    load: &EchoLoad,
    schedule: &Schedule,
    window: &mut dyn FnMut(bool),
) -> Result<EchoResult, Error> {
    let flen = load.frame.len();
    let depth = load.depth.max(1);
    let batch: Vec<u8> = load.frame.repeat(depth);
    let mut poll = Poll::new().map_err(Error::io("creating the poll"))?;
    let mut conns = Vec::with_capacity(load.conns);
    for i in 0..load.conns {
        let s = std::net::TcpStream::connect_timeout(&load.addr, Duration::from_secs(5))
            .map_err(Error::io(format!("connection {i} to {}", load.addr)))?;
        s.set_nodelay(true)
            .and_then(|()| s.set_nonblocking(true))
            .map_err(Error::io("configuring a connection"))?;
        let mut s = TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(Error::io("registering a connection"))?;
        conns.push(Conn {
            s,
            queued: 0,
            written: 0,
            inflight: VecDeque::with_capacity(depth),
            rpos: 0,
            measured: 0,
        });
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut phase_end = start + schedule.warmup;
    let mut phase = 0usize; // 0 = warm-up, then 1..=reps
    let mut phase_start = start;
    let mut phase_frames = 0u64;
    let mut reps = Vec::with_capacity(schedule.reps);
    let mut hist = histogram();
    let (mut reads, mut writes) = (0u64, 0u64);
    let mut cpu0 = 0.0;
    let mut overtime = false;
    let now = Instant::now();
    for c in conns.iter_mut() {
        pump(c, now, depth, &batch, flen, &mut writes)?;
    }
    loop {
        let mut now = Instant::now();
        let stall_end = phase_start + schedule.rep + STALL_LIMIT;
        if now >= phase_end && phase > 0 && phase_frames == 0 && now < stall_end {
            overtime = true;
            phase_end = stall_end;
        }
        if now >= phase_end {
            if phase == 0 {
                window(true);
                // What the callback took is not the first repetition's.
                now = Instant::now();
                cpu0 = this_thread_cpu();
                reads = 0;
                writes = 0;
                for c in conns.iter_mut() {
                    c.measured = 0;
                }
            } else {
                reps.push(RepCount {
                    frames: phase_frames,
                    secs: (now - phase_start).as_secs_f64(),
                    overtime,
                });
                overtime = false;
            }
            if phase == schedule.reps {
                window(false);
                break;
            }
            phase += 1;
            phase_start = now;
            phase_end = now + schedule.rep;
            phase_frames = 0;
        }
        poll.poll(&mut events, Some(phase_end.saturating_duration_since(now)))
            .or_else(|e| {
                if e.kind() == ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(Error::io("polling")(e))
                }
            })?;
        let now = Instant::now();
        let measuring = phase > 0;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            let done = drain(
                c,
                &mut buf,
                &load.frame,
                now,
                measuring.then_some(&mut hist),
                &mut reads,
            )?;
            if measuring {
                c.measured += done;
                phase_frames += done;
            }
            pump(c, now, depth, &batch, flen, &mut writes)?;
        }
        if overtime && phase_frames > 0 {
            phase_end = now;
        }
    }
    let cpu_s = this_thread_cpu() - cpu0;
    let starved = conns.iter().filter(|c| c.measured == 0).count();
    Ok(EchoResult {
        reps,
        latency: hist,
        cpu_s,
        reads,
        writes,
        starved,
    })
}

/// Fills the connection's window, writing whole batches where the socket takes them.
fn pump(
    c: &mut Conn,
    now: Instant,
    depth: usize,
    batch: &[u8],
    flen: usize,
    writes: &mut u64,
) -> Result<(), Error> {
    loop {
        if c.queued == 0 {
            let k = depth - c.inflight.len();
            if k == 0 {
                return Ok(());
            }
            c.queued = k;
            c.written = 0;
            c.inflight.extend(std::iter::repeat_n(now, k));
        }
        let end = c.queued * flen;
        match c.s.write(&batch[c.written..end]) {
            Ok(n) => {
                *writes += 1;
                c.written += n;
                if c.written == end {
                    c.queued = 0;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("writing")(e)),
        }
    }
}

/// Reads all that is there, checking it against the request; returns the
/// replies completed.
fn drain(
    c: &mut Conn,
    buf: &mut [u8],
    frame: &[u8],
    now: Instant,
    mut hist: Option<&mut Histogram<u64>>,
    reads: &mut u64,
) -> Result<u64, Error> {
    let mut done = 0;
    loop {
        let n = match c.s.read(buf) {
            Ok(0) => {
                return Err(Error::Misbehaved {
                    what: "the server closed a connection".into(),
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(done),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading")(e)),
        };
        *reads += 1;
        crate::peer::frames::match_echo(&buf[..n], frame, &mut c.rpos, || {
            let t0 = c.inflight.pop_front().ok_or_else(|| Error::Misbehaved {
                what: "a reply arrived for no request".into(),
            })?;
            done += 1;
            if let Some(h) = hist.as_deref_mut() {
                let _ = h.record((now - t0).as_nanos() as u64);
            }
            Ok(())
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut b = [0u8; 65536];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// One connection, one 1-byte echo request in flight.
    fn one_frame_load(addr: SocketAddr) -> EchoLoad {
        EchoLoad {
            addr,
            frame: b"\x0f\0\0\0{\"file_size\":1}z".to_vec(),
            conns: 1,
            depth: 1,
        }
    }

    #[test]
    fn counts_and_checks_echoes() {
        let addr = echo_server();
        let schedule = Schedule {
            warmup: Duration::from_millis(20),
            reps: 3,
            rep: Duration::from_millis(30),
        };
        for depth in [1, 8] {
            let load = EchoLoad {
                addr,
                frame: b"\x0f\0\0\0{\"file_size\":3}abc".to_vec(),
                conns: 3,
                depth,
            };
            let r = run(&load, &schedule, &mut |_| {}).unwrap();
            assert_eq!(r.reps.len(), 3);
            assert!(r.reps.iter().all(|p| p.frames > 0 && p.secs >= 0.03));
            assert_eq!(r.starved, 0);
            assert!(!r.latency.is_empty() && r.reads > 0 && r.writes > 0);
        }
    }

    /// A server that goes quiet as the measurement begins makes the first
    /// repetition run over until its reply: a slow repetition, not a zero.
    #[test]
    fn a_stall_is_one_long_repetition_not_a_zero() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let mut quiet = Some(released);
            while let Ok(n) = s.read(&mut b) {
                if let Some(r) = quiet.take() {
                    // The measurement has begun: three repetitions of silence.
                    let _ = r.recv_timeout(Duration::from_secs(10));
                    std::thread::sleep(Duration::from_millis(60));
                }
                if n == 0 || s.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        });
        let load = one_frame_load(addr);
        let schedule = Schedule {
            warmup: Duration::from_millis(10),
            reps: 5,
            rep: Duration::from_millis(20),
        };
        let r = run(&load, &schedule, &mut |start| {
            if start {
                release.send(()).unwrap();
            }
        })
        .unwrap();
        assert!(r.reps[0].overtime && r.reps[0].frames > 0, "{:?}", r.reps);
        assert!(r.reps.iter().all(|p| p.frames > 0), "{:?}", r.reps);
    }

    #[test]
    fn a_wrong_reply_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let n = s.read(&mut b).unwrap();
            b[n - 1] ^= 1;
            s.write_all(&b[..n]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let load = one_frame_load(addr);
        let schedule = Schedule {
            warmup: Duration::from_millis(10),
            reps: 1,
            rep: Duration::from_millis(50),
        };
        let e = run(&load, &schedule, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&e, crate::error::Error::Misbehaved { what } if what.contains("differs")),
            "{e}"
        );
    }
}
