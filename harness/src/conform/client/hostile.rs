//! The hostile server: the server side of a client case, written in the
//! dialect (sans-IO codec), delivering its bytes as the case's plan says.
//! Every wait polls a stop flag and a deadline.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value};

use super::cases::{Plan, Task};
use crate::dialect::{Counts, Dialect, Reply, codec};
use crate::peer::wirelog::{Dir, WireLog};

/// The pause between the pieces of a split: long enough that each piece
/// is a read of its own at the client.
pub const PAUSE: Duration = Duration::from_millis(40);
/// How long a request is read after its last byte when it is not a frame
/// of the dialect (the command client's bare command).
const QUIET: Duration = Duration::from_millis(100);
/// The receive buffer of the slow reader's listening socket.
pub const SLOW_RCVBUF: usize = 4096;
/// How long the slow reader reads nothing.
const SLOW_START: Duration = Duration::from_millis(500);
/// The pause between an explored reply's pieces.
const EXPLORE_PAUSE: Duration = Duration::from_millis(20);
/// The marker at the start of the frame glued after a fetched reply.
pub const NEXT: &[u8] = b"NEXT-FRAME:";

/// What the server side of a case saw and did.
#[derive(Debug, Default)]
pub struct Seen {
    /// A connection was accepted (or a datagram received).
    pub connected: bool,
    /// Every byte the client sent, in order.
    pub received: Vec<u8>,
    /// Where the reply was cut, for the cut plans.
    pub cut_at: Option<usize>,
    /// What went wrong on our side of the wire, if anything.
    pub trouble: Option<String>,
}

/// The server side's part of a case.
#[derive(Debug, Clone)]
pub struct Script {
    /// The dialect spoken.
    pub dialect: Dialect,
    /// The task asked of the client.
    pub task: Task,
    /// How replies are delivered.
    pub plan: Plan,
    /// The body a fetch replies with.
    pub body: Arc<Vec<u8>>,
    /// The name a fetch reply carries, where the dialect has a name field.
    pub name: String,
    /// Seed of the random pieces.
    pub seed: u64,
    /// Where an explored reply is cut (`Plan::Explore`), in bytes from its
    /// start.
    pub cuts: Vec<usize>,
}

/// A listener for a case: a small receive window for the slow reader.
pub fn listen(plan: Plan) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if plan == Plan::SlowReader {
        // Before listen(): the window scale is agreed in the handshake.
        s.set_recv_buffer_size(SLOW_RCVBUF)?;
    }
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    s.listen(16)?;
    let l: TcpListener = s.into();
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves one TCP connection of a case on `listener` until the client
/// closes it, `stop` is set, or `until` passes.
pub fn serve_tcp(
    listener: &TcpListener,
    script: &Script,
    log: &WireLog,
    stop: &AtomicBool,
    until: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) || Instant::now() >= until {
                    return seen;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                seen.trouble = Some(format!("accept failed: {e}"));
                return seen;
            }
        }
    };
    seen.connected = true;
    let mut c = match Conn::new(stream, log, stop, until) {
        Ok(c) => c,
        Err(e) => {
            seen.trouble = Some(format!("cannot set up the connection: {e}"));
            return seen;
        }
    };
    let r = match script.task {
        Task::Fetch => fetch(&mut c, script, &mut seen),
        Task::Echo => echo(&mut c, script),
        Task::Upload => upload(&mut c, script),
        Task::Session => Ok(()),
    };
    if let Err(e) = r {
        // The client's doing (it closed or reset early) is judged from
        // what it wrote and how it ended; note ours only.
        if !matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            seen.trouble = Some(e.to_string());
        }
    }
    if script.plan != Plan::Reset || seen.cut_at.is_none() {
        c.drain();
    }
    seen.received = std::mem::take(&mut c.buf);
    // Closed now: with the reset plan's zero linger, an RST.
    drop(c);
    seen
}

/// One accepted connection: what arrived, and writes that are logged.
struct Conn<'a> {
    stream: TcpStream,
    log: &'a WireLog,
    id: u32,
    buf: Vec<u8>,
    /// Bytes of `buf` already answered.
    used: usize,
    sent: u64,
    eof: bool,
    stop: &'a AtomicBool,
    until: Instant,
    /// Reads in a row that found nothing.
    idle_reads: u32,
}

impl<'a> Conn<'a> {
    fn new(
        stream: TcpStream,
        log: &'a WireLog,
        stop: &'a AtomicBool,
        until: Instant,
    ) -> io::Result<Conn<'a>> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        let id = log.new_connection(stream.peer_addr().ok());
        Ok(Conn {
            stream,
            log,
            id,
            buf: Vec::new(),
            used: 0,
            sent: 0,
            eof: false,
            stop,
            until,
            idle_reads: 0,
        })
    }

    /// Whether to stop reading: the stream ended, the case's time is up,
    /// or the client has exited and 100 ms of reads found nothing (what
    /// it sent before it exited is still read).
    fn over(&self) -> bool {
        self.eof
            || Instant::now() >= self.until
            || (self.stop.load(Ordering::SeqCst) && self.idle_reads >= 5)
    }

    /// One read of at most `max` bytes: whether anything arrived.
    fn read_some(&mut self, max: usize) -> io::Result<bool> {
        let mut chunk = vec![0u8; max];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                self.log.record(
                    self.id,
                    Dir::Received,
                    self.buf.len() as u64,
                    &[],
                    "end of stream",
                );
                Ok(false)
            }
            Ok(n) => {
                self.log.record(
                    self.id,
                    Dir::Received,
                    self.buf.len() as u64,
                    &chunk[..n],
                    "",
                );
                self.buf.extend_from_slice(&chunk[..n]);
                self.idle_reads = 0;
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.idle_reads += 1;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.eof = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads until `whole` says how long the pending request is; `None`
    /// when the stream ended or the case is over first.
    fn request(
        &mut self,
        mut whole: impl FnMut(&[u8]) -> Option<Result<usize, String>>,
    ) -> io::Result<Option<Result<usize, String>>> {
        loop {
            if let Some(r) = whole(&self.buf[self.used..]) {
                return Ok(Some(r));
            }
            if self.over() {
                return Ok(None);
            }
            self.read_some(64 * 1024)?;
        }
    }

    fn write(&mut self, bytes: &[u8], note: &str) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.log.record(self.id, Dir::Sent, self.sent, bytes, note);
        self.sent += bytes.len() as u64;
        self.stream.write_all(bytes)
    }

    /// Reads (and keeps) whatever comes until the client closes or the case
    /// ends: the client is never cut off by our side.
    fn drain(&mut self) {
        while !self.over() {
            if self.read_some(64 * 1024).is_err() {
                break;
            }
        }
    }

    /// Writes `reply` (a frame whose prefix is `w` bytes and header `h`)
    /// as `plan` delivers it; `explored` holds an explored reply's cuts.
    fn deliver(
        &mut self,
        reply: &[u8],
        w: usize,
        h: usize,
        plan: Plan,
        rng: &mut StdRng,
        explored: &[usize],
    ) -> io::Result<()> {
        let body_at = (w + h).min(reply.len());
        let mut cuts: Vec<usize> = match plan {
            // A line reply (no prefix) is split after its first byte.
            Plan::SplitPrefix => (1..w.max(2)).collect(),
            Plan::SplitHeader if h > 0 => vec![w + h / 2],
            Plan::SplitBody => vec![body_at + 100, body_at + 1100],
            // A large header goes out as a large write does: in pieces.
            Plan::Header(_) => (w..w + h).step_by(8192).skip(1).collect(),
            Plan::Explore => explored.to_vec(),
            Plan::Pieces => {
                let mut v = Vec::new();
                let mut at = 0;
                while at < reply.len() {
                    at += rng.random_range(1..=16);
                    v.push(at);
                }
                v
            }
            _ => Vec::new(),
        };
        cuts.retain(|&c| c > 0 && c < reply.len());
        let pause = match plan {
            Plan::Pieces => Duration::from_millis(2),
            Plan::Explore => EXPLORE_PAUSE,
            Plan::Header(_) => Duration::from_millis(5),
            _ => PAUSE,
        };
        let mut from = 0;
        for at in cuts {
            self.write(&reply[from..at], "a piece")?;
            from = at;
            thread::sleep(pause);
        }
        self.write(&reply[from..], "")
    }
}

/// A framed reply carrying `body` in the dialect: the bytes, the prefix's
/// width and the header's length. `header_len` pads the header to exactly
/// that many bytes.
pub fn framed(
    d: &Dialect,
    name: &str,
    body: &[u8],
    header_len: Option<usize>,
) -> (Vec<u8>, usize, usize) {
    let w = usize::from(d.prefix.width);
    if d.prefix.counts == Counts::Payload {
        let mut out = codec::prefix(d, body.len() as u64);
        out.extend_from_slice(body);
        return (out, w, 0);
    }
    let mut m = Map::new();
    let size = d.fields.size.clone().unwrap_or_else(|| "file_size".into());
    m.insert(size, Value::from(body.len()));
    if let Some(f) = &d.fields.name {
        m.insert(f.clone(), Value::from(name));
    }
    let mut head = serde_json::to_vec(&Value::Object(m.clone())).unwrap_or_default();
    if let Some(n) = header_len {
        // `"pad":""` plus the comma costs 9 bytes; spaces fill the rest.
        let fill = n.saturating_sub(head.len() + 9);
        m.insert("pad".into(), Value::from(" ".repeat(fill)));
        head = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    }
    let mut out = codec::prefix(d, head.len() as u64);
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    (out, w, head.len())
}

/// Fetch: read what the client asks, answer with one framed body.
fn fetch(c: &mut Conn<'_>, s: &Script, seen: &mut Seen) -> io::Result<()> {
    let d = &s.dialect;
    // A frame of the dialect, or what arrived before a quiet spell.
    let mut last = (0, Instant::now());
    c.request(|b| match codec::frame_len(d, b) {
        Some(Ok(n)) => Some(Ok(n)),
        _ if !b.is_empty() && last.0 == b.len() && last.1.elapsed() >= QUIET => Some(Ok(b.len())),
        _ => {
            if last.0 != b.len() {
                last = (b.len(), Instant::now());
            }
            None
        }
    })?;
    if c.buf.is_empty() || s.plan == Plan::Silent {
        return Ok(());
    }
    c.used = c.buf.len();
    let mut rng = StdRng::seed_from_u64(s.seed);
    match s.plan {
        Plan::Header(0) => {
            let p = codec::prefix(d, 0);
            return c.write(&p, "a zero header length");
        }
        Plan::Reset | Plan::Close => {
            let (reply, w, h) = framed(d, &s.name, &s.body, None);
            let cut = w + h + s.body.len() / 2;
            seen.cut_at = Some(cut);
            c.write(&reply[..cut], "half the body")?;
            thread::sleep(PAUSE);
            if s.plan == Plan::Reset {
                // The close that follows (serve_tcp drops the connection)
                // then sends RST, not FIN.
                socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO))?;
                c.log.record(c.id, Dir::Sent, c.sent, &[], "reset (RST)");
            } else {
                c.log.record(c.id, Dir::Sent, c.sent, &[], "closed (FIN)");
                c.stream.shutdown(std::net::Shutdown::Write)?;
            }
            return Ok(());
        }
        _ => {}
    }
    let pad = match s.plan {
        Plan::Header(n) => Some(n),
        _ => None,
    };
    let (mut reply, w, h) = framed(d, &s.name, &s.body, pad);
    if s.plan == Plan::Glued {
        let mut next = NEXT.to_vec();
        next.extend_from_slice(b" these bytes belong to the frame after the reply");
        reply.extend(framed(d, "next.txt", &next, None).0);
    }
    c.deliver(&reply, w, h, s.plan, &mut rng, &s.cuts)
}

/// Echo: every frame back as the dialect transforms it.
fn echo(c: &mut Conn<'_>, s: &Script) -> io::Result<()> {
    let d = &s.dialect;
    let mut rng = StdRng::seed_from_u64(s.seed);
    loop {
        let n = match c.request(|b| codec::frame_len(d, b))? {
            None => return Ok(()),
            Some(Err(e)) => {
                return Err(io::Error::other(format!(
                    "the client sent something that is not a frame of dialect {}: {e}",
                    d.name
                )));
            }
            Some(Ok(n)) => n,
        };
        let frame = c.buf[c.used..c.used + n].to_vec();
        c.used += n;
        if s.plan == Plan::Silent {
            return Ok(());
        }
        let Some(reply) = codec::echoed(d, &frame) else {
            return Ok(());
        };
        let w = usize::from(d.prefix.width);
        let h = match d.prefix.counts {
            Counts::Payload => 0,
            Counts::Header => codec::read_prefix(d, &frame)
                .and_then(Result::ok)
                .map_or(0, |v| v as usize),
        };
        c.deliver(&reply, w, h, s.plan, &mut rng, &[])?;
    }
}

/// Upload: read the whole frame (slowly, for the slow reader), then the
/// dialect's reply.
fn upload(c: &mut Conn<'_>, s: &Script) -> io::Result<()> {
    let d = &s.dialect;
    if s.plan == Plan::SlowReader {
        // The window fills while nothing is read; after that the small
        // receive buffer keeps it filling.
        let start = Instant::now();
        while start.elapsed() < SLOW_START && !c.over() {
            thread::sleep(Duration::from_millis(10));
        }
        loop {
            if codec::frame_len(d, &c.buf).is_some() || c.over() {
                break;
            }
            c.read_some(64 * 1024)?;
        }
    }
    let n = match c.request(|b| codec::frame_len(d, b))? {
        Some(Ok(n)) => n,
        _ => return Ok(()),
    };
    c.used = n;
    if s.plan == Plan::Silent {
        return Ok(());
    }
    let mut rng = StdRng::seed_from_u64(s.seed);
    match d.upload_reply {
        Reply::None => Ok(()),
        Reply::Line => c.deliver(b"ok\n", 0, 0, s.plan, &mut rng, &[]),
        Reply::Frame => {
            let frame = c.buf[..n].to_vec();
            let (reply, w, h) = upload_reply(d, &frame);
            c.deliver(&reply, w, h, s.plan, &mut rng, &[])
        }
    }
}

/// The framed reply to the upload `frame`: the contract's `status`,
/// `bytes` and `md5` (and the request's `id`), with a size of 0.
fn upload_reply(d: &Dialect, frame: &[u8]) -> (Vec<u8>, usize, usize) {
    use md5::Digest as _;
    let w = usize::from(d.prefix.width);
    let hl = codec::read_prefix(d, frame)
        .and_then(Result::ok)
        .map_or(0, |v| v as usize);
    let head: Value = frame
        .get(w..w + hl)
        .and_then(|h| serde_json::from_slice(h).ok())
        .unwrap_or(Value::Null);
    let body = frame.get(w + hl..).unwrap_or_default();
    let mut m = Map::new();
    m.insert("status".into(), Value::from("ok"));
    let size = d.fields.size.clone().unwrap_or_else(|| "file_size".into());
    m.insert(size, Value::from(0));
    m.insert("bytes".into(), Value::from(body.len()));
    m.insert(
        "md5".into(),
        Value::from(sockbench_wire::md5_hex(&md5::Md5::digest(body).into())),
    );
    if let Some(id) = head.get("id") {
        m.insert("id".into(), id.clone());
    }
    let h = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    let mut out = codec::prefix(d, h.len() as u64);
    out.extend_from_slice(&h);
    (out, w, h.len())
}

/// Serves UDP echoes on `sock` (non-blocking reads polled) until `stop`
/// or `until`: each datagram echoed as the dialect's UDP echo says,
/// except the first under `UdpLost`.
pub fn serve_udp(
    sock: &UdpSocket,
    d: &Dialect,
    plan: Plan,
    log: &WireLog,
    stop: &AtomicBool,
    until: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let mut buf = vec![0u8; 65_536];
    let mut first = true;
    if let Err(e) = sock.set_read_timeout(Some(Duration::from_millis(20))) {
        seen.trouble = Some(e.to_string());
        return seen;
    }
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                seen.trouble = Some(e.to_string());
                break;
            }
        };
        seen.connected = true;
        log.record(0, Dir::Received, 0, &buf[..n], "udp datagram");
        seen.received.extend_from_slice(&buf[..n]);
        if std::mem::take(&mut first) && plan == Plan::UdpLost {
            log.record(
                0,
                Dir::Sent,
                0,
                &[],
                "the echo of this datagram is lost (never sent)",
            );
            continue;
        }
        if let Some(back) = d.udp.apply(&buf[..n]) {
            log.record(0, Dir::Sent, 0, &back, "udp datagram");
            if let Err(e) = sock.send_to(&back, from) {
                seen.trouble = Some(format!("sendto failed: {e}"));
            }
        }
    }
    seen
}
