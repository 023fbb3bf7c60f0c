//! Runs a program against a live server: connections opened at their
//! first slot, each stream sent in the program's segments, in the
//! schedule's order, with its pauses; a reader per connection keeps what
//! comes back. Every wait has a deadline, so a server that stops
//! answering costs seconds, never a hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sockbench_wire::Endian;

use super::model::Expect;
use super::program::{End, Program, Slot};

/// How long the replies may take in all before the run moves on.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a wait lasts with nothing arriving at all.
pub const QUIET: Duration = Duration::from_secs(1);
/// How long a UDP echo may take, per try.
const UDP_WAIT: Duration = Duration::from_millis(300);
/// UDP tries before a datagram counts as unanswered (loopback rarely drops).
const UDP_TRIES: usize = 3;

/// Where the server listens.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// TCP.
    pub tcp: SocketAddr,
    /// UDP, if it is tested.
    pub udp: Option<SocketAddr>,
}

/// What one connection saw.
#[derive(Debug, Clone, Default)]
pub struct ConnSeen {
    /// Every byte received, in order.
    pub bytes: Vec<u8>,
    /// The server closed (a read returned 0) before the client closed.
    pub eof: bool,
    /// A receive or send error (a reset, say), with when it happened.
    pub error: Option<String>,
    /// The connection could not be opened.
    pub refused: Option<String>,
    /// What was sent and received, for the report.
    pub log: Vec<String>,
    /// Per action: milliseconds from its last byte sent to its whole reply
    /// received, where both happened.
    pub round_trips_ms: Vec<Option<f64>>,
}

/// What the whole program saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Per connection.
    pub conns: Vec<ConnSeen>,
    /// Per datagram: the echo, if one came.
    pub udp: Vec<Option<Vec<u8>>>,
}

#[derive(Default)]
struct Inbox {
    bytes: Vec<u8>,
    /// Whole reply frames in `bytes` so far, and where the next begins.
    frames: usize,
    parsed: usize,
    /// When each whole frame was in.
    frame_times: Vec<Instant>,
    eof: bool,
    error: Option<String>,
    closing: bool,
}

struct Live {
    stream: TcpStream,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    stream_bytes: Vec<u8>,
    /// Segment boundaries: 0, the cuts, the stream's length.
    bounds: Vec<usize>,
    /// Where each action's frame starts in the stream.
    starts: Vec<usize>,
    next: usize,
    log: Vec<String>,
    send_error: Option<String>,
    t0: Instant,
    /// When each action's last byte went out.
    sent_at: Vec<Option<Instant>>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` holds of the inbox, the server closes or fails,
    /// or nothing has arrived for [`QUIET`] (a slow server that is still
    /// sending is waited for, up to `deadline`).
    fn wait(&self, deadline: Instant, done: impl Fn(&Inbox) -> bool) -> bool {
        let (m, cv) = &*self.inbox;
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut seen, mut quiet_until) = (g.bytes.len(), Instant::now() + QUIET);
        loop {
            if done(&g) {
                return true;
            }
            let now = Instant::now();
            if g.bytes.len() != seen {
                (seen, quiet_until) = (g.bytes.len(), now + QUIET);
            }
            let until = deadline.min(quiet_until);
            if now >= until || g.eof || g.error.is_some() {
                return done(&g);
            }
            g = cv
                .wait_timeout(g, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn note(&mut self, what: String) {
        let ms = self.t0.elapsed().as_secs_f64() * 1e3;
        self.log.push(format!("{ms:8.1} ms  {what}"));
    }
}

/// Counts the whole frames received: waits are in frames, not bytes,
/// since a stats reply's length depends on the server's counters.
fn count_frames(g: &mut Inbox, endian: Endian) {
    loop {
        let rest = &g.bytes[g.parsed..];
        let Some(len) = super::replies::frame_len(rest, endian) else {
            return;
        };
        g.parsed += len;
        g.frames += 1;
        g.frame_times.push(Instant::now());
    }
}

fn reader(mut stream: TcpStream, inbox: Arc<(Mutex<Inbox>, Condvar)>, endian: Endian) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let r = stream.read(&mut buf);
        let (m, cv) = &*inbox;
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        match r {
            Ok(0) => {
                // Our own shutdown of the read side also reads as 0.
                if !g.closing {
                    g.eof = true;
                }
                cv.notify_all();
                return;
            }
            Ok(n) => {
                g.bytes.extend_from_slice(&buf[..n]);
                count_frames(&mut g, endian);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if !g.closing {
                    g.error = Some(e.to_string());
                }
                cv.notify_all();
                return;
            }
        }
        cv.notify_all();
    }
}

/// Runs `program` (whose expected outcome is `expect`) against `addrs`.
pub fn run(program: &Program, expect: &Expect, addrs: Addrs, endian: Endian) -> Seen {
    let t0 = Instant::now();
    let mut live: Vec<Option<Live>> = (0..program.conns.len()).map(|_| None).collect();
    let mut seen = Seen {
        conns: vec![ConnSeen::default(); program.conns.len()],
        udp: vec![None; program.udp.len()],
    };
    for slot in &program.schedule {
        match *slot {
            Slot::Udp(d) => seen.udp[d] = udp_echo(addrs, &program.udp[d].bytes()),
            Slot::Tcp(c) => {
                if seen.conns[c].refused.is_some() {
                    continue;
                }
                if live[c].is_none() {
                    match open(program, c, addrs.tcp, endian, t0) {
                        Ok(l) => live[c] = Some(l),
                        Err(e) => {
                            seen.conns[c].refused = Some(format!("connect {}: {e}", addrs.tcp));
                            continue;
                        }
                    }
                }
                let Some(l) = live[c].as_mut() else { continue };
                let conn = &program.conns[c];
                let exp = &expect.conns[c];
                if l.next + 1 < l.bounds.len() {
                    send_segment(l, conn.depth, conn.pauses.get(l.next).copied(), exp);
                } else if let Some(l) = live[c].take() {
                    seen.conns[c] = finish(l, conn.end, exp);
                }
            }
        }
    }
    // Slots past the end cannot happen in a normal program; close anything left.
    for (c, l) in live.iter_mut().enumerate() {
        if let Some(l) = l.take() {
            seen.conns[c] = finish(l, program.conns[c].end, &expect.conns[c]);
        }
    }
    seen
}

fn open(
    program: &Program,
    c: usize,
    tcp: SocketAddr,
    endian: Endian,
    t0: Instant,
) -> std::io::Result<Live> {
    let stream = TcpStream::connect_timeout(&tcp, Duration::from_secs(3))?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(REPLY_DEADLINE))?;
    let inbox = Arc::new((Mutex::new(Inbox::default()), Condvar::new()));
    let r = stream.try_clone()?;
    let ib = Arc::clone(&inbox);
    let reader = thread::Builder::new()
        .name(format!("explore-conn-{c}"))
        .spawn(move || reader(r, ib, endian))?;
    let stream_bytes = program.stream(c, endian);
    let conn = &program.conns[c];
    let mut bounds = vec![0];
    bounds.extend(conn.cuts.iter().map(|&x| x as usize));
    bounds.push(stream_bytes.len());
    let mut starts = Vec::new();
    let mut at = 0;
    for a in &conn.actions {
        starts.push(at);
        at += a.wire(endian).len();
    }
    let mut l = Live {
        stream,
        inbox,
        reader: Some(reader),
        stream_bytes,
        bounds,
        starts,
        next: 0,
        log: Vec::new(),
        send_error: None,
        t0,
        sent_at: vec![None; conn.actions.len()],
    };
    l.note(format!("connect {tcp}"));
    Ok(l)
}

fn send_segment(l: &mut Live, depth: usize, pause: Option<u8>, exp: &super::model::ConnExpect) {
    let (from, to) = (l.bounds[l.next], l.bounds[l.next + 1]);
    l.next += 1;
    if l.send_error.is_some() {
        return;
    }
    // Pipelining depth: before this segment, the replies of the action
    // `depth` before the last one it begins must be in, as far as that
    // action was sent whole before the segment.
    if let Some(i) = l.starts.iter().rposition(|&s| s >= from && s < to)
        && let Some(j) = i.checked_sub(depth)
        && let Some(j) = (0..=j)
            .rev()
            .find(|&j| l.starts.get(j + 1).is_some_and(|&e| e <= from))
    {
        let due = exp.frames_through(j);
        let deadline = Instant::now() + REPLY_DEADLINE;
        if !l.wait(deadline, |g| g.frames >= due) {
            let got = l.lock().frames;
            l.note(format!("gave up waiting for {due} replies, have {got}"));
        }
    }
    let seg = l.stream_bytes[from..to].to_vec();
    match l.stream.write_all(&seg) {
        Ok(()) => {
            let now = Instant::now();
            for i in 0..l.sent_at.len() {
                let end = l.starts.get(i + 1).copied().unwrap_or(l.stream_bytes.len());
                if end > from && end <= to {
                    l.sent_at[i] = Some(now);
                }
            }
            l.note(format!("sent [{from}..{to}) {} bytes", to - from));
        }
        Err(e) => {
            l.note(format!("send [{from}..{to}) failed: {e}"));
            l.send_error = Some(format!("sending bytes {from}..{to}: {e}"));
        }
    }
    if let Some(ms) = pause.filter(|&p| p > 0) {
        thread::sleep(Duration::from_millis(u64::from(ms)));
        l.note(format!("paused {ms} ms"));
    }
}

fn finish(mut l: Live, end: End, exp: &super::model::ConnExpect) -> ConnSeen {
    let due = exp.frames_through(exp.replies.len().saturating_sub(1));
    let deadline = Instant::now() + REPLY_DEADLINE;
    match end {
        End::HalfClose => {
            let _ = l.stream.shutdown(Shutdown::Write);
            l.note("shut down writing".into());
        }
        End::Close | End::Reset => {}
    }
    if exp.closes {
        l.wait(deadline, |g| g.eof || g.error.is_some());
    } else {
        l.wait(deadline, |g| g.frames >= due);
    }
    // A few more milliseconds for bytes that should not come at all.
    let extra = Instant::now() + Duration::from_millis(2);
    l.wait(extra, |g| g.bytes.len() > g.parsed);
    {
        let mut g = l.lock();
        g.closing = true;
    }
    if end == End::Reset {
        let _ = socket2::SockRef::from(&l.stream).set_linger(Some(Duration::ZERO));
    }
    // Our read shutdown wakes the reader; then both handles close.
    let _ = l.stream.shutdown(Shutdown::Read);
    if let Some(r) = l.reader.take() {
        let _ = r.join();
    }
    let g = std::mem::take(&mut *l.lock());
    l.note(format!(
        "{} after receiving {} bytes{}{}",
        match end {
            End::Close => "closed",
            End::HalfClose => "closed (after the half-close)",
            End::Reset => "reset",
        },
        g.bytes.len(),
        if g.eof { "; the server had closed" } else { "" },
        g.error
            .as_deref()
            .map(|e| format!("; receive error: {e}"))
            .unwrap_or_default()
    ));
    // The reply to action i, if it has one, is whole frame number
    // frames_through(i) - 1.
    let round_trips_ms = (0..exp.replies.len())
        .map(|i| {
            let before = if i == 0 { 0 } else { exp.frames_through(i - 1) };
            let f = exp
                .frames_through(i)
                .checked_sub(1)
                .filter(|&f| f >= before)?;
            let (sent, got) = (l.sent_at[i]?, *g.frame_times.get(f)?);
            Some(got.saturating_duration_since(sent).as_secs_f64() * 1e3)
        })
        .collect();
    ConnSeen {
        round_trips_ms,
        bytes: g.bytes,
        eof: g.eof,
        error: g.error.or(l.send_error.take()),
        refused: None,
        log: std::mem::take(&mut l.log),
    }
}

fn udp_echo(addrs: Addrs, payload: &[u8]) -> Option<Vec<u8>> {
    let to = addrs.udp?;
    let local: SocketAddr = if to.is_ipv6() {
        "[::1]:0".parse().ok()?
    } else {
        "127.0.0.1:0".parse().ok()?
    };
    // A socket per datagram: a late echo of an earlier try can only be
    // this datagram's own.
    let sock = UdpSocket::bind(local).ok()?;
    sock.set_read_timeout(Some(UDP_WAIT)).ok()?;
    let mut buf = vec![0u8; 65536];
    for _ in 0..UDP_TRIES {
        if sock.send_to(payload, to).is_err() {
            return None;
        }
        if let Ok((n, from)) = sock.recv_from(&mut buf)
            && from == to
        {
            return Some(buf[..n].to_vec());
        }
    }
    None
}
