//! std::net building blocks for the thread-based back-ends (`blocking`,
//! `threaded`): serving one stream with a [`Connection`], the UDP echo
//! thread, the accept loop, and shutdown wake-ups for threads blocked in
//! system calls.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as Both, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::connection::{Connection, Flow};
use crate::counters::{add, bump, unbump};
use crate::server::ServerContext;

/// Largest UDP payload plus one: a datagram this big cannot have been cut.
pub const UDP_BUFFER: usize = 65_536;

/// Serves one TCP connection until it ends, the peer stalls past the idle
/// timeout, or shutdown closes it. `active` was taken when it was accepted.
pub fn serve_connection(
    stream: TcpStream,
    ctx: &Arc<ServerContext>,
    tracker: &Arc<Tracker>,
    active: ActiveGuard,
) {
    let _active = active;
    let c = &ctx.counters;
    // Shared with the tracker rather than cloned: a clone would cost a
    // second file descriptor per connection.
    let stream = Arc::new(stream);
    let tracked = tracker.register(&stream);
    let mut stream: &TcpStream = &stream;
    if let Err(e) = configure(stream, ctx) {
        log::debug!("cannot configure connection: {e}");
        return;
    }
    let mut conn = Connection::new(ctx);
    // The read timeout in force: the idle timeout, shortened while a frame
    // head is being read so that the header deadline holds.
    let mut timeout = ctx.config.idle_timeout;
    let mut buf = vec![0u8; ctx.config.io_buffer];
    let mut out = Vec::with_capacity(ctx.config.io_buffer + 4096);
    loop {
        // Publish "idle" before looking at the flag: the shutdown hook either
        // sees idle and closes the socket, or this thread sees the flag.
        tracked.idle.store(conn.at_boundary(), SeqCst);
        if ctx.shutdown.is_triggered() && conn.at_boundary() {
            break;
        }
        let wanted = match conn.head_deadline() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
                .min(ctx.config.idle_timeout),
            None => ctx.config.idle_timeout,
        };
        if wanted != timeout {
            timeout = wanted;
            let _ = stream.set_read_timeout(Some(timeout));
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    // A read that waited the whole idle timeout closes the
                    // connection even mid-head; one shortened for the header
                    // deadline and woken a hair early reads on.
                    let idle = timeout >= ctx.config.idle_timeout;
                    match conn.head_deadline() {
                        Some(d) if Instant::now() >= d => log::debug!(
                            "closing a connection whose header took over {:?}",
                            ctx.config.header_timeout
                        ),
                        Some(_) if !idle => continue,
                        _ => log::debug!(
                            "closing a connection idle for {:?}",
                            ctx.config.idle_timeout
                        ),
                    }
                } else {
                    log::debug!("read failed: {e}");
                }
                conn.on_eof();
                break;
            }
        };
        tracked.idle.store(false, SeqCst);
        if n == 0 {
            conn.on_eof();
            break;
        }
        bump(&c.reads);
        let flow = conn.on_read(&buf[..n], &mut out);
        if !out.is_empty() {
            if let Err(e) = write_counted(stream, &out, ctx) {
                log::debug!("write failed: {e}");
                conn.on_eof();
                break;
            }
            out.clear();
        }
        if flow == Flow::Close {
            lingering_close(stream);
            break;
        }
    }
}

fn configure(stream: &TcpStream, ctx: &ServerContext) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(ctx.config.idle_timeout))?;
    stream.set_write_timeout(Some(ctx.config.idle_timeout))
}

/// Writes all of `buf`, counting each system call in `writes`.
pub fn write_counted(
    mut stream: &TcpStream,
    mut buf: &[u8],
    ctx: &ServerContext,
) -> io::Result<()> {
    let most = ctx.config.max_write.unwrap_or(usize::MAX);
    while !buf.is_empty() {
        match stream.write(&buf[..buf.len().min(most)]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                bump(&ctx.counters.writes);
                buf = &buf[n..];
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes after a fatal error so that the error reply arrives: send FIN,
/// then read and discard what the peer still sends, briefly. Closing with
/// unread input would send RST, which can destroy the reply in flight.
pub fn lingering_close(mut stream: &TcpStream) {
    let _ = stream.shutdown(Both::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut budget: usize = 4 << 20;
    let mut sink = [0u8; 16 * 1024];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    while Instant::now() < deadline && budget > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

/// Counts a connection in `connections` and `active` for its lifetime.
#[derive(Debug)]
pub struct ActiveGuard(Arc<ServerContext>);

impl ActiveGuard {
    /// Counts a new connection.
    pub fn new(ctx: &Arc<ServerContext>) -> Self {
        bump(&ctx.counters.connections);
        bump(&ctx.counters.active);
        ActiveGuard(Arc::clone(ctx))
    }

    /// True when a connection is over the `max_connections` cap (counting itself).
    pub fn over_cap(&self) -> bool {
        self.0.counters.active.load(SeqCst) > self.0.config.max_connections as u64
    }
}

/// Turns away a connection over the cap: it sees end of stream at once,
/// before any reply, and is counted in `refused`.
pub fn refuse(stream: TcpStream, ctx: &ServerContext) {
    bump(&ctx.counters.refused);
    log::debug!(
        "refusing a connection: {} open",
        ctx.counters.active.load(SeqCst)
    );
    let _ = stream.shutdown(Both::Both);
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.counters.active.fetch_sub(1, SeqCst);
    }
}

/// Accepts until shutdown, handing each connection to `handle`.
pub fn accept_loop(
    listener: &TcpListener,
    ctx: &ServerContext,
    mut handle: impl FnMut(TcpStream),
) -> io::Result<()> {
    wake_on_shutdown(listener, ctx)?;
    while !ctx.shutdown.is_triggered() {
        match listener.accept() {
            Ok((stream, _)) if ctx.shutdown.is_triggered() => drop(stream),
            Ok((stream, _)) => handle(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

/// The address a socket bound to `addr` can be reached at from this host.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn wake_on_shutdown(listener: &TcpListener, ctx: &ServerContext) -> io::Result<()> {
    // A thread blocked in accept() wakes when a connection arrives.
    let addr = reachable(listener.local_addr()?);
    ctx.shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    });
    Ok(())
}

/// Spawns the UDP echo thread.
pub fn spawn_udp_echo(socket: UdpSocket, ctx: Arc<ServerContext>) -> io::Result<JoinHandle<()>> {
    let addr = reachable(socket.local_addr()?);
    ctx.shutdown.on_trigger(move || {
        // A thread blocked in recv_from() wakes when a datagram arrives.
        let any: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
        };
        if let Ok(s) = UdpSocket::bind(any) {
            let _ = s.send_to(&[], addr);
        }
    });
    // In case the wake-up datagram is lost.
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    thread::Builder::new()
        .name("udp-echo".into())
        .spawn(move || udp_echo(&socket, &ctx))
}

fn udp_echo(socket: &UdpSocket, ctx: &ServerContext) {
    let c = &ctx.counters;
    let mut buf = vec![0u8; UDP_BUFFER];
    while !ctx.shutdown.is_triggered() {
        match socket.recv_from(&mut buf) {
            Ok(_) if ctx.shutdown.is_triggered() => break,
            Ok((n, from)) => {
                bump(&c.datagrams_in);
                add(&c.udp_bytes_in, n as u64);
                bump(&c.datagrams_out);
                if let Err(e) = socket.send_to(&buf[..n], from) {
                    unbump(&c.datagrams_out);
                    log::debug!("udp send to {from} failed: {e}");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            // ICMP errors of earlier sends surface here; they concern one peer only.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => {
                log::warn!("udp receive failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The live connections of a thread-based server, so shutdown can close
/// idle ones at once and the rest after the grace period.
pub struct Tracker {
    live: Mutex<Live>,
    changed: Condvar,
}

/// The next key, and each live connection's stream and idle flag.
type Live = (u64, HashMap<u64, (Arc<TcpStream>, Arc<AtomicBool>)>);

/// A connection's registration; dropping it deregisters.
pub struct Tracked {
    tracker: Arc<Tracker>,
    key: u64,
    /// True while the connection is between frames, waiting for input.
    pub idle: Arc<AtomicBool>,
}

impl Tracker {
    /// A tracker wired to `ctx`'s shutdown.
    pub fn new(ctx: &Arc<ServerContext>) -> Arc<Tracker> {
        let tracker = Arc::new(Tracker {
            live: Mutex::new((0, HashMap::new())),
            changed: Condvar::new(),
        });
        let weak: Weak<Tracker> = Arc::downgrade(&tracker);
        let grace = ctx.config.grace;
        ctx.shutdown.on_trigger(move || {
            let Some(t) = weak.upgrade() else { return };
            t.close(true);
            let _ = thread::Builder::new().name("grace".into()).spawn(move || {
                let deadline = Instant::now() + grace;
                if !t.wait_empty(deadline) {
                    t.close(false);
                }
            });
        });
        tracker
    }

    /// Registers a connection until the returned guard drops.
    pub fn register(self: &Arc<Self>, stream: &Arc<TcpStream>) -> Tracked {
        let idle = Arc::new(AtomicBool::new(false));
        let mut live = self.lock();
        let key = live.0;
        live.0 += 1;
        live.1.insert(key, (Arc::clone(stream), Arc::clone(&idle)));
        Tracked {
            tracker: Arc::clone(self),
            key,
            idle,
        }
    }

    /// Connections alive now.
    pub fn len(&self) -> usize {
        self.lock().1.len()
    }

    /// True when no connection is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no connection is alive or `deadline` passes; true if none is.
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut live = self.lock();
        while !live.1.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .changed
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn close(&self, only_idle: bool) {
        for (stream, idle) in self.lock().1.values() {
            if !only_idle || idle.load(SeqCst) {
                let _ = stream.shutdown(Both::Both);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tracker.lock().1.remove(&self.key);
        self.tracker.changed.notify_all();
    }
}
