//! The unframed echo: every read written straight back, no framing. Two
//! ways to do it, because neither is fastest everywhere: one event loop
//! wins with many connections (no thread switches), a blocking thread per
//! connection wins with one or a few (a read and a write per round trip,
//! no readiness wake-ups). The echo scenario measures both and keeps the
//! faster as the ceiling, so no framed server can beat it by doing less.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Bytes read at a time: a whole 64 KiB pipelining window and more, so a
/// glued batch of frames or a large body comes back in one write.
const READ_SIZE: usize = 256 * 1024;
/// What [`Strategy::EventLoopSmall`] reads before a write.
const SMALL_READ: usize = 64 * 1024;

/// How the unframed echo serves its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One mio event loop for every connection, gathering up to 256 KiB
    /// before each write.
    EventLoop,
    /// The same loop reading at most 64 KiB before each write, as the mio
    /// back-end does: at 16 KiB bodies pipelined on one connection the
    /// 256 KiB loop's bigger bursts lost to mio (docs/performance.md).
    EventLoopSmall,
    /// A blocking thread per connection.
    Threads,
    /// One connection at a time, served by the thread that accepts it (the
    /// classic loop): at one connection it can beat both of the others,
    /// with no thread switch between accept and serve.
    Sequential,
}

impl Strategy {
    /// Its `sockbench ceiling --strategy` value.
    pub fn flag(self) -> &'static str {
        match self {
            Strategy::EventLoop => "loop",
            Strategy::EventLoopSmall => "loop64",
            Strategy::Threads => "threads",
            Strategy::Sequential => "sequential",
        }
    }

    /// Parses a `--strategy` value.
    pub fn parse(s: &str) -> Option<Strategy> {
        [
            Strategy::EventLoop,
            Strategy::EventLoopSmall,
            Strategy::Threads,
            Strategy::Sequential,
        ]
        .into_iter()
        .find(|k| k.flag() == s)
    }

    /// Its name in notes and the report.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::EventLoop => "event loop",
            Strategy::EventLoopSmall => "event loop, 64 KiB reads",
            Strategy::Threads => "thread per connection",
            Strategy::Sequential => "one connection at a time",
        }
    }

    /// The strategies worth trying at `conns` connections: one at a time
    /// only at one; threads only up to 16, past which one CPU's worth of
    /// threads only loses to the loop.
    pub fn candidates(conns: usize) -> &'static [Strategy] {
        match conns {
            1 => &[
                Strategy::EventLoop,
                Strategy::EventLoopSmall,
                Strategy::Threads,
                Strategy::Sequential,
            ],
            2..=16 => &[
                Strategy::EventLoop,
                Strategy::EventLoopSmall,
                Strategy::Threads,
            ],
            _ => &[Strategy::EventLoop, Strategy::EventLoopSmall],
        }
    }
}

/// A running unframed echo on an ephemeral loopback port. Stops when
/// dropped (a thread-per-connection echo's threads end with their
/// connections, which the load closes).
pub struct EchoCeiling {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Option<Arc<mio::Waker>>,
}

impl EchoCeiling {
    /// Starts an echo of `strategy` that writes back whole multiples of
    /// `align` bytes (0: whatever it read; past half the read buffer, 0),
    /// every thread of it on `cpu` when given.
    pub fn start_with(
        strategy: Strategy,
        align: usize,
        cpu: Option<usize>,
    ) -> std::io::Result<EchoCeiling> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        match strategy {
            Strategy::EventLoop | Strategy::EventLoopSmall => {
                let read = if strategy == Strategy::EventLoop {
                    READ_SIZE
                } else {
                    SMALL_READ
                };
                // A held partial frame must fit the buffer beside a read.
                let align = if align > read / 2 { 0 } else { align };
                let mut listener = mio::net::TcpListener::bind(
                    "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
                )?;
                let addr = listener.local_addr()?;
                let poll = mio::Poll::new()?;
                poll.registry()
                    .register(&mut listener, LISTENER, mio::Interest::READABLE)?;
                let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
                thread::Builder::new()
                    .name("ceiling-echo".into())
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            crate::measure::pin::pin_current_thread(cpu);
                        }
                        event_loop(poll, listener, &flag, align, read)
                    })?;
                Ok(EchoCeiling {
                    addr,
                    stop,
                    waker: Some(waker),
                })
            }
            Strategy::Threads | Strategy::Sequential => {
                let align = if align > READ_SIZE / 2 { 0 } else { align };
                let spawn = strategy == Strategy::Threads;
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                thread::Builder::new()
                    .name("ceiling-accept".into())
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            crate::measure::pin::pin_current_thread(cpu);
                        }
                        accept_threads(&listener, &flag, spawn, align)
                    })?;
                Ok(EchoCeiling {
                    addr,
                    stop,
                    waker: None,
                })
            }
        }
    }
}

impl Drop for EchoCeiling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        match &self.waker {
            Some(w) => {
                let _ = w.wake();
            }
            // The accept thread blocks in accept: one connection wakes it
            // to see the flag.
            None => {
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            }
        }
    }
}

const LISTENER: mio::Token = mio::Token(usize::MAX);
const WAKER: mio::Token = mio::Token(usize::MAX - 1);

/// Accepts until stopped; with `spawn` each connection gets a thread
/// (inheriting the accept thread's CPU), else the accepting thread serves
/// it to the end before accepting the next.
fn accept_threads(listener: &TcpListener, stop: &AtomicBool, spawn: bool, align: usize) {
    for s in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(s) = s else { continue };
        let _ = s.set_nodelay(true);
        if spawn {
            let _ = thread::Builder::new()
                .name("ceiling-conn".into())
                .stack_size(64 * 1024)
                .spawn(move || blocking_echo(s, align));
        } else {
            blocking_echo(s, align);
        }
    }
}

/// Echoes what it reads back until end of stream, in whole multiples of
/// `align` bytes (the rest waits for the next read).
fn blocking_echo(mut s: TcpStream, align: usize) {
    let mut buf = vec![0u8; READ_SIZE];
    let mut have = 0;
    loop {
        match s.read(&mut buf[have..]) {
            Ok(0) => return,
            Ok(n) => {
                have += n;
                let whole = aligned(have, align);
                if whole > 0 && s.write_all(&buf[..whole]).is_err() {
                    return;
                }
                buf.copy_within(whole..have, 0);
                have -= whole;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The longest prefix of `n` bytes that is whole frames of `align` bytes
/// (all of it when `align` is 0).
fn aligned(n: usize, align: usize) -> usize {
    if align == 0 { n } else { n - n % align }
}

/// A connection of the event-loop echo: bytes read but not yet written
/// back, and the start of a frame read but not yet whole.
struct Echoing {
    s: mio::net::TcpStream,
    pending: Vec<u8>,
    sent: usize,
    held: Vec<u8>,
    /// A FIN or error was signalled: read on to the end, short reads or not.
    hup: bool,
}

fn event_loop(
    mut poll: mio::Poll,
    listener: mio::net::TcpListener,
    stop: &AtomicBool,
    align: usize,
    read: usize,
) {
    let mut events = mio::Events::with_capacity(1024);
    let mut conns: slab::Slab<Echoing> = slab::Slab::new();
    let mut buf = vec![0u8; read];
    while !stop.load(Ordering::SeqCst) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(200)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => {
                    while let Ok((mut s, _)) = listener.accept() {
                        let _ = s.set_nodelay(true);
                        let e = conns.vacant_entry();
                        let token = mio::Token(e.key());
                        if poll
                            .registry()
                            // Both interests once, as the mio back-end does:
                            // re-registering whenever a write falls short cost
                            // two epoll_ctl calls per window at 16 KiB bodies.
                            .register(
                                &mut s,
                                token,
                                mio::Interest::READABLE | mio::Interest::WRITABLE,
                            )
                            .is_ok()
                        {
                            e.insert(Echoing {
                                s,
                                pending: Vec::new(),
                                sent: 0,
                                held: Vec::new(),
                                hup: false,
                            });
                        }
                    }
                }
                WAKER => {}
                mio::Token(k) => {
                    let Some(c) = conns.get_mut(k) else { continue };
                    // A writable edge with nothing owed (an ACK freed
                    // space) needs no system call at all.
                    c.hup |= ev.is_read_closed() || ev.is_error();
                    let readable = ev.is_readable() || c.hup;
                    if !readable && c.sent >= c.pending.len() {
                        continue;
                    }
                    if !serve(c, &mut buf, align) {
                        conns.remove(k);
                    }
                }
            }
        }
    }
}

/// Writes back what is owed; then, while nothing is owed, reads all that
/// has arrived (up to the buffer) and writes back its whole frames of
/// `align` bytes in one write. Gathering first matters: a 16 KiB request
/// that arrives in two pieces goes back as one, and whole frames only, as a
/// framed server sends them, so the client is woken once per batch and
/// never for half a frame. A short read ends the reading until the next
/// edge, as in the mio back-end (which otherwise beat this ceiling by up to
/// 1.2x at 1 KiB pipelined, saving the reads that would block), unless a
/// FIN was signalled. False when the connection is finished.
fn serve(c: &mut Echoing, buf: &mut [u8], align: usize) -> bool {
    use std::io::ErrorKind::{Interrupted, WouldBlock};
    loop {
        while c.sent < c.pending.len() {
            match c.s.write(&c.pending[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == WouldBlock => return true,
                Err(e) if e.kind() == Interrupted => {}
                Err(_) => return false,
            }
        }
        c.pending.clear();
        c.sent = 0;
        let start = c.held.len();
        buf[..start].copy_from_slice(&c.held);
        c.held.clear();
        let (mut got, mut eof, mut drained) = (start, false, false);
        while got < buf.len() {
            match c.s.read(&mut buf[got..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    drained = !c.hup && got + n < buf.len();
                    got += n;
                    if drained {
                        break;
                    }
                }
                Err(e) if e.kind() == WouldBlock => break,
                Err(e) if e.kind() == Interrupted => {}
                Err(_) => return false,
            }
        }
        let whole = aligned(got, align);
        c.held.extend_from_slice(&buf[whole..got]);
        if got == start || whole == 0 {
            return !eof && got < buf.len();
        }
        match c.s.write(&buf[..whole]) {
            Ok(w) => c.pending.extend_from_slice(&buf[w..whole]),
            Err(e) if e.kind() == WouldBlock || e.kind() == Interrupted => {
                c.pending.extend_from_slice(&buf[..whole])
            }
            Err(_) => return false,
        }
        if eof {
            return false;
        }
        if drained && c.pending.is_empty() {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echoes(strategy: Strategy) {
        // 1 MiB is 1024 frames of 1 KiB: aligned or not, all of it returns.
        for align in [0, 1024] {
            echoes_aligned(strategy, align);
        }
    }

    fn echoes_aligned(strategy: Strategy, align: usize) {
        let c = EchoCeiling::start_with(strategy, align, None).unwrap();
        let mut conns: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(c.addr).unwrap())
            .collect();
        // 1 MiB each way on each connection: more than a socket buffer,
        // so the event loop must hold what it could not write and resume.
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        // Each dropped after use, so a one-at-a-time echo reaches the next.
        for mut s in conns.drain(..) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut w = s.try_clone().unwrap();
            let d = data.clone();
            let writer = thread::spawn(move || w.write_all(&d).unwrap());
            let mut back = vec![0u8; data.len()];
            s.read_exact(&mut back).unwrap();
            writer.join().unwrap();
            assert!(back == data, "{} echoed other bytes", strategy.name());
        }
    }

    #[test]
    fn an_aligned_echo_holds_back_a_partial_frame_until_it_is_whole() {
        for strategy in [Strategy::EventLoop, Strategy::Threads] {
            let c = EchoCeiling::start_with(strategy, 10, None).unwrap();
            let mut s = TcpStream::connect(c.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s.write_all(&[7u8; 14]).unwrap();
            let mut b = [0u8; 32];
            assert_eq!(
                s.read(&mut b).unwrap(),
                10,
                "{}: one whole frame",
                strategy.name()
            );
            // The 4 held bytes are not sent on their own...
            assert!(
                s.read(&mut b).is_err(),
                "{}: a partial frame came back",
                strategy.name()
            );
            // ...but go back with the 6 that complete them.
            s.write_all(&[8u8; 6]).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let n = s.read(&mut b).unwrap();
            assert_eq!(&b[..n], &[7, 7, 7, 7, 8, 8, 8, 8, 8, 8]);
        }
    }

    #[test]
    fn the_event_loop_echoes_every_byte_back() {
        echoes(Strategy::EventLoop);
    }

    #[test]
    fn the_small_read_event_loop_echoes_every_byte_back() {
        echoes(Strategy::EventLoopSmall);
    }

    #[test]
    fn the_thread_per_connection_echo_echoes_every_byte_back() {
        echoes(Strategy::Threads);
    }

    #[test]
    fn the_sequential_echo_serves_one_connection_after_another() {
        // Each connection of `echoes` is served and dropped before the
        // next is used, so one at a time serves them all.
        echoes(Strategy::Sequential);
    }
}
