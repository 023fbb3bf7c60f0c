//! The loop: accept, UDP echo, connection events, timers, shutdown. Its
//! poll timeout is the earliest deadline any driver asked for
//! ([`Timers`]); nothing is scanned on a period.

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
use crate::timers::{Slot, Timers};

const LISTENER: Token = Token(usize::MAX - 1);
const UDP: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Datagrams echoed per readiness, so that a UDP flood cannot starve TCP.
const UDP_BATCH: usize = 256;

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
    timers: Timers,
    /// The next connection's generation (see [`Slot`]).
    generation: u64,
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
            timers: Timers::default(),
            generation: 0,
            _waker: waker,
        })
    }

    /// Serves until shutdown and the grace period are over.
    pub fn run(mut self) -> io::Result<()> {
        // Outside `self`, so handlers can borrow the loop while iterating.
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = match self.udp_more {
                true => Some(Duration::ZERO),
                false => self
                    .timers
                    .next()
                    .map(|t| t.saturating_duration_since(Instant::now())),
            };
            self.ctx.counters.syscalls(1);
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() != ErrorKind::Interrupted => return Err(e),
                _ => {}
            }
            // One connection: read a small piece and answer it from the read
            // buffer at once, so its next requests overlap with the reply.
            // Several: read all each has, in fewer, larger writes, which
            // spare their peers as many wake-ups (docs/performance.md).
            let busy = self.conns.len() > 1;
            for e in events.iter() {
                match e.token() {
                    LISTENER => self.accept(),
                    UDP => self.udp_echo(),
                    WAKER => self.begin_stop(),
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            let size = match busy || conn.driver.is_storing() {
                                true => self.buf.len(),
                                false => self.ctx.config.io_buffer.min(self.buf.len()),
                            };
                            let over = conn.on_event(e, &mut self.buf[..size], !busy);
                            self.settle(key, over);
                        }
                    }
                }
            }
            if self.udp_more && !self.stopping {
                self.udp_echo();
            }
            self.fire_timers();
            if self.stopping && self.conns.is_empty() {
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
                    let key = entry.key();
                    let driver = Driver::new(&self.ctx, Instant::now());
                    self.generation += 1;
                    let mut conn = Conn::new(stream, driver, admitted, self.generation);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let registry = self.poll.registry();
                    match registry.register(&mut conn.stream, Token(key), interest) {
                        Ok(()) => {
                            entry.insert(conn);
                            self.settle(key, false);
                        }
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
            // Each driver reads the stop flag on its next step: idle
            // connections close now, the rest arm their grace's end.
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                let over = self.conns[key].pump(&mut self.buf, false);
                self.settle(key, over);
            }
        }
    }

    /// After a connection acted: removes it when it is over, else arms its
    /// driver's deadline if that comes before the one it waits for.
    fn settle(&mut self, key: usize, over: bool) {
        if over {
            if self.conns.remove(key).armed.is_some() {
                self.timers.forget_one();
            }
            return;
        }
        let conn = &mut self.conns[key];
        if let Some(at) = conn.driver.poll_timeout()
            && conn.armed.is_none_or(|armed| at < armed)
        {
            if conn.armed.is_some() {
                self.timers.forget_one();
            }
            conn.armed = Some(at);
            self.timers.arm(
                at,
                Slot {
                    key,
                    generation: conn.generation,
                },
            );
        }
    }

    /// Runs every deadline that has come: a driver whose deadline moved
    /// later is armed again, the others get their timeout.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((at, slot)) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(slot.key) else {
                continue;
            };
            if conn.generation != slot.generation || conn.armed != Some(at) {
                continue;
            }
            conn.armed = None;
            let over = match conn.driver.poll_timeout() {
                Some(later) if later > now => false,
                _ => {
                    conn.driver.on_timeout(now);
                    conn.pump(&mut self.buf, false)
                }
            };
            self.settle(slot.key, over);
        }
        let conns = &self.conns;
        self.timers.compact(|| {
            conns
                .iter()
                .filter_map(|(key, c)| {
                    let generation = c.generation;
                    c.armed.map(|at| (at, Slot { key, generation }))
                })
                .collect()
        });
    }
}
