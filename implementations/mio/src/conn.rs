//! One connection's state machine.
//!
//! ```text
//!            read: EOF             output flushed
//!   Open ------------------> Draining ------------------> Done
//!    |  \
//!    |   \ fatal error replied          output flushed, FIN sent
//!    |    +----------------> Closing ------------------> Lingering --> Done
//!    |                                                 (discard input until EOF,
//!    | idle timeout, I/O error, shutdown                1 s or 4 MiB)
//!    +-----------------------------------------------------------------> Done
//! ```
//!
//! Output is bounded: reading pauses while more than `high_water` reply bytes
//! wait to be sent (the peer is not reading them), and resumes once they are
//! sent, so a peer that writes without reading cannot grow the server.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use sockbench_core::stdio::ActiveGuard;
use sockbench_core::{Connection, Flow, ServerContext, bump};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading requests and writing replies.
    Open,
    /// The peer finished sending: write what is left, then close.
    Draining,
    /// A fatal error was replied: write it, then linger.
    Closing,
    /// FIN sent: discard what the peer still sends until this instant.
    Lingering(Instant, usize),
    /// Close now.
    Done,
}

/// A connection of the event loop.
pub struct Conn {
    stream: TcpStream,
    session: Connection,
    out: Vec<u8>,
    sent: usize,
    state: State,
    /// When bytes last moved either way, for the idle timeout.
    pub last_active: Instant,
    ctx: Arc<ServerContext>,
    _active: ActiveGuard,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(stream: TcpStream, ctx: &Arc<ServerContext>, active: ActiveGuard) -> Conn {
        Conn {
            stream,
            session: Connection::new(ctx),
            out: Vec::new(),
            sent: 0,
            state: State::Open,
            last_active: Instant::now(),
            ctx: Arc::clone(ctx),
            _active: active,
        }
    }

    /// The socket, for registration.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// True when closing now loses nothing: between frames, replies sent.
    pub fn is_idle(&self) -> bool {
        self.state == State::Open && self.pending() == 0 && self.session.at_boundary()
    }

    /// Handles a readable edge: reads until the socket is empty, output
    /// backs up, or the state stops reading. `buf` is the loop's shared buffer.
    pub fn on_readable(&mut self, buf: &mut [u8]) {
        loop {
            match self.state {
                State::Open if self.pending() < self.ctx.config.io_buffer => {}
                State::Lingering(..) => return self.linger(buf),
                // Paused (backpressure) or not reading any more.
                _ => return,
            }
            match self.stream.read(buf) {
                Ok(0) => {
                    self.session.on_eof();
                    self.state = State::Draining;
                    self.flush();
                    return;
                }
                Ok(n) => {
                    bump(&self.ctx.counters.reads);
                    self.last_active = Instant::now();
                    if self.session.on_read(&buf[..n], &mut self.out) == Flow::Close {
                        self.state = State::Closing;
                    }
                    // Reply at once: most replies go out without a writable edge.
                    self.flush();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(&e),
            }
        }
    }

    /// Handles a writable edge; resumes reading if output was the brake.
    pub fn on_writable(&mut self, buf: &mut [u8]) {
        let was_paused = self.state == State::Open && self.pending() >= self.ctx.config.io_buffer;
        self.flush();
        if was_paused && self.pending() < self.ctx.config.io_buffer {
            // No new readable edge will come for data already waiting.
            self.on_readable(buf);
        }
    }

    /// Writes pending output until done or the socket is full.
    fn flush(&mut self) {
        let most = self.ctx.config.max_write.unwrap_or(usize::MAX);
        while self.sent < self.out.len() {
            let end = self.out.len().min(self.sent.saturating_add(most));
            match self.stream.write(&self.out[self.sent..end]) {
                Ok(0) => return self.fail(&ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bump(&self.ctx.counters.writes);
                    self.sent += n;
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(&e),
            }
        }
        self.out.clear();
        self.sent = 0;
        match self.state {
            State::Draining => self.state = State::Done,
            State::Closing => {
                let _ = self.stream.shutdown(Shutdown::Write);
                self.state = State::Lingering(Instant::now() + Duration::from_secs(1), 4 << 20);
            }
            _ => {}
        }
    }

    fn linger(&mut self, buf: &mut [u8]) {
        while let State::Lingering(until, budget) = self.state {
            if Instant::now() >= until {
                self.state = State::Done;
                return;
            }
            match self.stream.read(buf) {
                Ok(0) => self.state = State::Done,
                Ok(n) if n >= budget => self.state = State::Done,
                Ok(n) => self.state = State::Lingering(until, budget - n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.state = State::Done,
            }
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        log::debug!("connection failed: {e}");
        self.abort();
    }

    /// Ends the connection now: a frame in progress is discarded (and its
    /// upload removed).
    pub fn abort(&mut self) {
        if matches!(self.state, State::Open | State::Closing) {
            self.session.on_eof();
        }
        self.state = State::Done;
    }

    /// Applies the time-based rules: idle timeout and the end of lingering.
    pub fn on_tick(&mut self, now: Instant) {
        match self.state {
            State::Lingering(until, _) if now >= until => self.state = State::Done,
            State::Done => {}
            State::Open if self.session.head_deadline().is_some_and(|d| now >= d) => {
                log::debug!(
                    "closing a connection whose header took over {:?}",
                    self.ctx.config.header_timeout
                );
                self.abort();
            }
            _ if now.duration_since(self.last_active) >= self.ctx.config.idle_timeout => {
                log::debug!(
                    "closing a connection idle for {:?}",
                    self.ctx.config.idle_timeout
                );
                self.abort();
            }
            _ => {}
        }
    }
}
