//! The loop: accept, UDP echo, connection events, timers, shutdown.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use sockbench_core::{
    AcceptFailure, Driver, RecvFailure, Server, ServerContext, UDP_BUFFER, UdpEcho, accept_failed,
    admit,
};

use crate::conn::Conn;

const LISTENER: Token = Token(usize::MAX - 1);
const UDP: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Datagrams echoed per readiness, so that a UDP flood cannot starve TCP.
const UDP_BATCH: usize = 256;
/// How often the drivers' deadlines are checked.
const TICK: Duration = Duration::from_millis(500);
/// How often, once stopping, the grace periods are checked.
const STOP_TICK: Duration = Duration::from_millis(20);

/// The single-threaded server.
pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    udp: UdpSocket,
    udp_more: bool,
    conns: Slab<Conn>,
    ctx: Arc<ServerContext>,
    buf: Vec<u8>,
    udp_buf: Vec<u8>,
    /// Shutdown began; each driver keeps its own grace period.
    stopping: bool,
    next_tick: Instant,
    _waker: Arc<Waker>,
}

impl EventLoop {
    /// Registers the server's sockets and the shutdown waker.
    pub fn new(server: Server) -> io::Result<EventLoop> {
        let Server { tcp, udp, ctx } = server;
        tcp.set_nonblocking(true)?;
        udp.set_nonblocking(true)?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(tcp);
        let mut udp = UdpSocket::from_std(udp);
        let registry = poll.registry();
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        registry.register(&mut udp, UDP, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let w = Arc::clone(&waker);
        ctx.shutdown.on_trigger(move || drop(w.wake()));
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            udp,
            udp_more: false,
            conns: Slab::new(),
            buf: vec![0; ctx.config.read_size],
            udp_buf: vec![0; UDP_BUFFER],
            ctx,
            stopping: false,
            next_tick: Instant::now() + TICK,
            _waker: waker,
        })
    }

    /// Serves until shutdown and the grace period are over.
    pub fn run(mut self) -> io::Result<()> {
        // Outside `self`, so handlers can borrow the loop while iterating.
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = match self.udp_more {
                true => Duration::ZERO,
                false => self.next_tick.saturating_duration_since(Instant::now()),
            };
            self.ctx.counters.syscalls(1);
            match self.poll.poll(&mut events, Some(timeout)) {
                Err(e) if e.kind() != ErrorKind::Interrupted => return Err(e),
                _ => {}
            }
            for e in events.iter() {
                match e.token() {
                    LISTENER => self.accept(),
                    UDP => self.udp_echo(),
                    WAKER => self.begin_stop(),
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key)
                            && conn.on_event(e, &mut self.buf)
                        {
                            self.conns.remove(key);
                        }
                    }
                }
            }
            if self.udp_more && !self.stopping {
                self.udp_echo();
            }
            if self.housekeeping() {
                return Ok(());
            }
        }
    }

    fn accept(&mut self) {
        while let Some(listener) = &self.listener {
            match listener.accept() {
                Ok((stream, _)) => {
                    // Refused: the stream is dropped, closing it (see `admit`).
                    let Ok(admitted) = admit(&self.ctx) else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true); // cannot fail on a new socket
                    let entry = self.conns.vacant_entry();
                    let driver = Driver::new(&self.ctx, Instant::now());
                    let mut conn = Conn::new(stream, driver, admitted);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let registry = self.poll.registry();
                    match registry.register(&mut conn.stream, Token(entry.key()), interest) {
                        Ok(()) => drop(entry.insert(conn)),
                        Err(e) => log::warn!("cannot register a connection: {e}"),
                    }
                }
                // Out of descriptors too: the backlog waits for the next edge.
                Err(e) if accept_failed(&e) != AcceptFailure::Retry => return,
                Err(_) => {}
            }
        }
    }

    fn udp_echo(&mut self) {
        let echo = UdpEcho(&self.ctx.counters);
        self.udp_more = false;
        for _ in 0..UDP_BATCH {
            match self.udp.recv_from(&mut self.udp_buf) {
                Ok((n, from)) => echo
                    .received(n, from)
                    .sent(&self.udp.send_to(&self.udp_buf[..n], from)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if echo.recv_failed(&e) == RecvFailure::Backoff => return,
                Err(_) => {}
            }
        }
        self.udp_more = true;
    }

    fn begin_stop(&mut self) {
        if !self.stopping && self.ctx.shutdown.is_triggered() {
            log::debug!("stopping: {} connection(s) open", self.conns.len());
            self.listener = None;
            self.stopping = true;
        }
    }

    /// Timers and shutdown progress; true when the loop should end.
    fn housekeeping(&mut self) -> bool {
        let now = Instant::now();
        // Once stopping, every pass: idle connections close now, the rest at their grace's end.
        if now >= self.next_tick || self.stopping {
            self.next_tick = now + if self.stopping { STOP_TICK } else { TICK };
            let buf = &mut self.buf;
            self.conns.retain(|_, conn| {
                conn.driver.on_timeout(now);
                !conn.pump(buf)
            });
        }
        self.stopping && self.conns.is_empty()
    }
}
