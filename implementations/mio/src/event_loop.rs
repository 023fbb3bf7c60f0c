//! The loop: accept, UDP echo, connection events, timers, shutdown.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use sockbench_core::stdio::{ActiveGuard, UDP_BUFFER};
use sockbench_core::{Server, ServerContext, add, bump, unbump};

use crate::conn::{Conn, State};

const LISTENER: Token = Token(usize::MAX - 1);
const UDP: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Datagrams echoed per readiness before the loop turns to other sockets;
/// a UDP flood must not starve TCP.
const UDP_BATCH: usize = 256;
/// How often idle timeouts are checked.
const TICK: Duration = Duration::from_millis(500);

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
    /// Set once shutdown began: the end of the grace period.
    stop_by: Option<Instant>,
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
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let w = Arc::clone(&waker);
        ctx.shutdown.on_trigger(move || {
            let _ = w.wake();
        });
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            udp,
            udp_more: false,
            conns: Slab::new(),
            buf: vec![0; ctx.config.io_buffer],
            udp_buf: vec![0; UDP_BUFFER],
            ctx,
            stop_by: None,
            next_tick: Instant::now() + TICK,
            _waker: waker,
        })
    }

    /// Serves until shutdown and the grace period are over.
    pub fn run(mut self) -> io::Result<()> {
        // Outside `self`, so handlers can borrow the loop while iterating.
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let mut timeout = self.next_tick.saturating_duration_since(now);
            if let Some(stop_by) = self.stop_by {
                timeout = timeout.min(stop_by.saturating_duration_since(now));
            }
            if self.udp_more {
                timeout = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for e in events.iter() {
                match e.token() {
                    LISTENER => self.accept(),
                    UDP => self.udp_echo(),
                    WAKER => self.begin_stop(),
                    Token(key) => {
                        let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                        self.conn_event(key, readable, e.is_writable());
                    }
                }
            }
            if self.udp_more && self.stop_by.is_none() {
                self.udp_echo();
            }
            if self.housekeeping() {
                return Ok(());
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let active = ActiveGuard::new(&self.ctx);
                    if active.over_cap() {
                        bump(&self.ctx.counters.refused);
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        continue;
                    }
                    if let Err(e) = stream.set_nodelay(true) {
                        log::debug!("TCP_NODELAY: {e}");
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let mut conn = Conn::new(stream, &self.ctx, active);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    match self
                        .poll
                        .registry()
                        .register(conn.stream(), Token(key), interest)
                    {
                        Ok(()) => {
                            entry.insert(conn);
                        }
                        Err(e) => log::warn!("cannot register a connection: {e}"),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors: the backlog waits for the next edge.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn udp_echo(&mut self) {
        let c = &self.ctx.counters;
        self.udp_more = false;
        for _ in 0..UDP_BATCH {
            match self.udp.recv_from(&mut self.udp_buf) {
                Ok((n, from)) => {
                    bump(&c.datagrams_in);
                    add(&c.udp_bytes_in, n as u64);
                    bump(&c.datagrams_out);
                    // A full send buffer drops the echo, as the network may.
                    if let Err(e) = self.udp.send_to(&self.udp_buf[..n], from) {
                        unbump(&c.datagrams_out);
                        log::debug!("udp send to {from}: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => {
                    log::warn!("udp receive failed: {e}");
                    return;
                }
            }
        }
        self.udp_more = true;
    }

    fn conn_event(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if writable {
            conn.on_writable(&mut self.buf);
        }
        if readable {
            conn.on_readable(&mut self.buf);
        }
        if conn.state() == State::Done {
            self.conns.remove(key);
        }
    }

    fn begin_stop(&mut self) {
        if self.stop_by.is_some() || !self.ctx.shutdown.is_triggered() {
            return;
        }
        log::debug!("stopping: {} connection(s) open", self.conns.len());
        self.listener = None;
        self.stop_by = Some(Instant::now() + self.ctx.config.grace);
    }

    /// Timers and shutdown progress; true when the loop should end.
    fn housekeeping(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            for (_, conn) in self.conns.iter_mut() {
                conn.on_tick(now);
            }
        }
        if let Some(stop_by) = self.stop_by {
            let over = now >= stop_by;
            for (_, conn) in self.conns.iter_mut() {
                if over || conn.is_idle() {
                    conn.abort();
                }
            }
        }
        self.conns.retain(|_, c| c.state() != State::Done);
        self.stop_by.is_some() && self.conns.is_empty()
    }
}
