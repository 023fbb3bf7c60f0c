//! The lifecycle of one TCP connection as a deterministic state machine, in
//! the style of quinn-proto: time comes in as an argument and is never read
//! here, so every rule below is a unit test with fake time.
//!
//! ```text
//!            on_eof                 output sent
//!   Open --------------> Draining ---------------> Done
//!    |  \
//!    |   \ fatal error replied     output sent: ShutdownWrite
//!    |    +---------------> Closing ------------> Lingering ----> Done
//!    |                                        (discard input until EOF,
//!    | header deadline, idle timeout,            1 s or 4 MiB)
//!    | I/O error, end of the grace period
//!    +---------------------------------------------------------> Done
//! ```
//!
//! The rules it owns, for every back-end (docs/protocol.md §4 and §6):
//!
//! - **Idle timeout**: no byte moved either way for `idle_timeout` closes
//!   the connection, wherever its frame stands.
//! - **Header deadline**: from a frame's first byte to the end of its header
//!   at most `header_timeout` (a slowloris never trips the idle timeout).
//! - **Lingering close** after a fatal error: send FIN, then read and
//!   discard for at most 1 s or 4 MiB, so the error reply is not destroyed
//!   by the RST that closing with unread input sends.
//! - **Backpressure**: reading stops while `io_buffer` reply bytes wait.
//! - **Shutdown**: once the server stops, a connection between frames closes
//!   at once; one inside a frame has until the end of the grace period.
//! - **Truncation**: a stream that ends inside a frame drops its upload
//!   (the temporary file goes) before the failure is counted.
//! - Counting socket reads and writes, and `--max-write` (a test hook).
//!
//! A back-end loops: call [`Driver::next`], carry out the [`Action`], report
//! what happened (`on_read`, `on_written`, `on_eof`, `on_error`), and when
//! nothing happens by [`Driver::poll_timeout`], call [`Driver::on_timeout`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::ServerContext;
use crate::session::{Eof, Session, Step, StorageOp};
use crate::storage::{CommitError, Stored, Upload};

/// How long a lingering close waits for the peer's end of stream.
pub const LINGER_TIME: Duration = Duration::from_secs(1);
/// The most bytes a lingering close reads and discards.
pub const LINGER_BYTES: usize = 4 << 20;

/// The shortest run of echoes [`Driver::on_read_direct`] leaves in the read
/// buffer; shorter ones are copied into the output, as they cost less to
/// copy than to write as a second piece (docs/performance.md).
pub const DIRECT_MIN: usize = 4096;

/// What the back-end must do next.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "carry out the action, then report what happened"]
pub enum Action<'a> {
    /// Write (some of) these bytes, then report with [`Driver::on_written`].
    Write(&'a [u8]),
    /// Wait for input until [`Driver::poll_timeout`]; report it with
    /// [`Driver::on_read`] (or its delegated form), [`Driver::on_eof`] or
    /// [`Driver::on_timeout`].
    Read,
    /// Send FIN (shut down the writing half). The driver now lingers:
    /// read on, until [`Driver::poll_timeout`] at the latest.
    ShutdownWrite,
    /// Delegated storage only: abandon the open upload and remove its
    /// temporary file before calling `next` again.
    AbortUpload,
    /// Close the socket; the connection is over.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The peer finished sending: write what is left, then close.
    Draining,
    /// A fatal error was replied: write it, then shut down and linger.
    Closing,
    /// FIN sent: discard input until this instant or this many more bytes.
    Lingering(Instant, usize),
    Done,
}

/// Who performs uploads' storage operations.
#[derive(Debug)]
enum Storage {
    /// The driver, synchronously, inside `on_read`.
    Inline(Option<Upload>),
    /// The back-end (a worker, a ring): `open` while an upload is begun and
    /// not yet committed or failed.
    Delegated { open: bool },
}

/// One connection's lifecycle around its [`Session`].
#[derive(Debug)]
pub struct Driver {
    session: Session,
    ctx: Arc<ServerContext>,
    storage: Storage,
    /// Replies; `out[sent..]` is still to be written.
    out: Vec<u8>,
    sent: usize,
    /// Replies that came while `out` is lent to a write in flight, due
    /// after it; empty whenever `out` is not lent.
    back: Vec<u8>,
    /// A write in flight reads `out[sent..]` ([`Driver::lend_output`]):
    /// `out` must not change until [`Driver::on_written`].
    lent: bool,
    state: State,
    /// When a byte last moved either way.
    last_active: Instant,
    /// When the frame head being read began.
    head_since: Option<Instant>,
    /// The end of the grace period, once the server is stopping.
    stop_by: Option<Instant>,
    /// `Session::eof` was called: the session's end is counted.
    ended: bool,
    /// The session's end waits for a delegated upload to be abandoned.
    end_pending: bool,
    /// A read is being fed in parts, around storage operations.
    mid_read: bool,
}

impl Driver {
    /// A connection accepted at `now` whose uploads the driver stores itself.
    pub fn new(ctx: &Arc<ServerContext>, now: Instant) -> Self {
        Self::with_storage(ctx, now, Storage::Inline(None))
    }

    /// A connection whose back-end performs the storage operations: they
    /// come out of [`Driver::on_read_delegated`].
    pub fn delegating(ctx: &Arc<ServerContext>, now: Instant) -> Self {
        Self::with_storage(ctx, now, Storage::Delegated { open: false })
    }

    fn with_storage(ctx: &Arc<ServerContext>, now: Instant, storage: Storage) -> Self {
        Driver {
            session: Session::new(Arc::clone(ctx)),
            ctx: Arc::clone(ctx),
            storage,
            out: Vec::new(),
            sent: 0,
            back: Vec::new(),
            lent: false,
            state: State::Open,
            last_active: now,
            head_since: None,
            stop_by: None,
            ended: false,
            end_pending: false,
            mid_read: false,
        }
    }

    /// The next thing to do. Reads the server's stop flag (not the clock):
    /// once it is set, an idle connection closes and the rest get `grace`.
    pub fn next(&mut self, now: Instant) -> Action<'_> {
        if self.stop_by.is_none() && self.ctx.shutdown.is_triggered() {
            self.stop_by = Some(now + self.ctx.config.grace);
        }
        if self.stop_by.is_some() && self.is_idle() {
            self.state = State::Done;
        }
        if self.end_pending {
            self.end_pending = false;
            self.storage = Storage::Delegated { open: false };
            return Action::AbortUpload;
        }
        if matches!(self.state, State::Done | State::Draining) && !self.ended {
            self.end_session();
            if self.end_pending {
                return self.next(now);
            }
        }
        let pending = self.out.len() - self.sent;
        debug_assert!(self.lent || self.back.is_empty());
        match self.state {
            State::Done => Action::Close,
            _ if pending > 0 => {
                let most = self.ctx.config.max_write.unwrap_or(usize::MAX);
                Action::Write(&self.out[self.sent..self.sent + pending.min(most)])
            }
            State::Draining => {
                self.state = State::Done;
                Action::Close
            }
            State::Closing => {
                self.state = State::Lingering(now + LINGER_TIME, LINGER_BYTES);
                Action::ShutdownWrite
            }
            State::Open | State::Lingering(..) => Action::Read,
        }
    }

    /// Bytes read from the peer at `now` (inline storage). Replies queue up
    /// for the next [`Action::Write`].
    pub fn on_read(&mut self, input: &[u8], now: Instant) {
        let mut rest = input;
        while let Some(op) = self.read(&mut rest, now, None) {
            self.store(op);
        }
    }

    /// As [`Driver::on_read`], for back-ends that write from their read
    /// buffer: when the replies end with a run of whole echo frames, the run
    /// is not copied into the driver's output but returned, a piece of
    /// `input` due after the pending output. Write the two with one
    /// vectored write ([`Driver::direct_slices`]) and report it with
    /// [`Driver::on_written_direct`] before `input` is reused.
    pub fn on_read_direct<'a>(&mut self, input: &'a [u8], now: Instant) -> &'a [u8] {
        let mut rest = input;
        let mut tail: &[u8] = &[];
        while let Some(op) = self.read(&mut rest, now, Some(&mut tail)) {
            self.store(op);
        }
        tail
    }

    /// Bytes read from the peer at `now`, when the back-end stores uploads
    /// (see [`Driver::delegating`]). `Some(op)`: perform it, report with
    /// [`Driver::storage_failed`] or [`Driver::committed`], and call again
    /// with the rest of `input`, until `None`: all of it was used. (The end
    /// of a body may need no input: call again even when none is left.)
    pub fn on_read_delegated<'a>(
        &mut self,
        input: &mut &'a [u8],
        now: Instant,
    ) -> Option<StorageOp<'a>> {
        self.read(input, now, None)
    }

    /// [`Driver::on_read_delegated`] and [`Driver::on_read_direct`] in one:
    /// when it returns `None`, `tail` is the run of echoes to write from the
    /// read buffer (see there).
    pub fn on_read_delegated_direct<'a>(
        &mut self,
        input: &mut &'a [u8],
        tail: &mut &'a [u8],
        now: Instant,
    ) -> Option<StorageOp<'a>> {
        self.read(input, now, Some(tail))
    }

    fn read<'a>(
        &mut self,
        input: &mut &'a [u8],
        now: Instant,
        tail: Option<&mut &'a [u8]>,
    ) -> Option<StorageOp<'a>> {
        if !self.mid_read && !input.is_empty() {
            if let State::Lingering(until, budget) = self.state {
                // Discarded, and not counted: how long a peer goes on
                // sending after an error says nothing of the server.
                self.state = match budget.checked_sub(input.len()) {
                    Some(left) if left > 0 => State::Lingering(until, left),
                    _ => State::Done,
                };
                *input = &[];
                return None;
            }
            self.ctx.counters.read();
            self.last_active = now;
        }
        if self.state != State::Open {
            *input = &[];
            return None;
        }
        // Under the test hook every reply goes through the capped writes.
        let tail = tail.filter(|_| self.ctx.config.max_write.is_none());
        let out = if self.lent {
            &mut self.back
        } else {
            &mut self.out
        };
        let step = match tail {
            Some(tail) => {
                let step = self.session.feed_direct(input, out, tail);
                if tail.len() < DIRECT_MIN {
                    // Cheaper copied than written as a second piece.
                    out.extend_from_slice(tail);
                    *tail = &[];
                }
                step
            }
            None => self.session.feed(input, out),
        };
        self.mid_read = matches!(step, Step::Storage(_));
        match step {
            Step::NeedInput => {
                self.head_since = if self.session.in_head() {
                    Some(self.head_since.unwrap_or(now))
                } else {
                    None
                };
                None
            }
            Step::Close => {
                self.state = State::Closing;
                // The session is over and has counted its error already.
                self.ended = true;
                self.drop_upload();
                None
            }
            Step::Storage(op) => {
                if let Storage::Delegated { open } = &mut self.storage {
                    match op {
                        StorageOp::Begin { .. } => *open = true,
                        StorageOp::Commit { .. } => *open = false,
                        StorageOp::Write(_) => {}
                    }
                }
                Some(op)
            }
        }
    }

    fn store(&mut self, op: StorageOp<'_>) {
        let Storage::Inline(upload) = &mut self.storage else {
            debug_assert!(false, "on_read with delegated storage");
            return;
        };
        match op {
            StorageOp::Begin { file_name } => match self.ctx.storage.begin(&file_name) {
                Ok(u) => *upload = Some(u),
                Err(e) => self.session.storage_failed(&e),
            },
            StorageOp::Write(data) => {
                if let Some(u) = upload
                    && let Err(e) = u.write(data)
                {
                    *upload = None;
                    self.session.storage_failed(&e);
                }
            }
            StorageOp::Commit { expected } => {
                let result = upload
                    .take()
                    .map_or(Err(CommitError::not_open()), |u| u.commit(expected));
                let out = if self.lent {
                    &mut self.back
                } else {
                    &mut self.out
                };
                self.session.committed(result, out);
            }
        }
    }

    /// Reports that a delegated `Begin` or `Write` failed; the back-end has
    /// dropped the upload.
    pub fn storage_failed(&mut self, error: &std::io::Error) {
        self.storage = Storage::Delegated { open: false };
        self.session.storage_failed(error);
    }

    /// Reports a delegated commit's result; its reply is queued.
    pub fn committed(&mut self, result: Result<Stored, CommitError>) {
        let out = if self.lent {
            &mut self.back
        } else {
            &mut self.out
        };
        self.session.committed(result, out);
    }

    /// For back-ends whose writes outlive the call (io_uring): the bytes of
    /// the last [`Action::Write`] are now read by a write in flight, so
    /// they stay where they are, and replies meanwhile queue behind them.
    /// Ends with [`Driver::on_written`] or [`Driver::on_written_direct`].
    pub fn lend_output(&mut self) {
        self.lent = true;
    }

    /// `n` bytes of the last [`Action::Write`] were written at `now`.
    pub fn on_written(&mut self, n: usize, now: Instant) {
        self.on_written_direct(n, &[], now);
    }

    /// The pending output and a run from [`Driver::on_read_direct`], as the
    /// two slices of one vectored write.
    pub fn direct_slices<'s>(&'s self, tail: &'s [u8]) -> [std::io::IoSlice<'s>; 2] {
        [
            std::io::IoSlice::new(&self.out[self.sent..]),
            std::io::IoSlice::new(tail),
        ]
    }

    /// A run from [`Driver::on_read_direct`] that is not written now (a
    /// write is in flight, or the socket is full): it is copied in behind
    /// every reply queued.
    pub fn keep_direct(&mut self, tail: &[u8]) {
        match self.lent {
            true => self.back.extend_from_slice(tail),
            false => self.out.extend_from_slice(tail),
        }
    }

    /// A write of the pending output followed by `tail` wrote `n` bytes at
    /// `now` (0: none, it would block): what is left of `tail` is copied
    /// into the output, after what is left of the rest.
    pub fn on_written_direct(&mut self, n: usize, tail: &[u8], now: Instant) {
        if n > 0 {
            self.ctx.counters.wrote();
            self.last_active = now;
        }
        let from_out = n.min(self.out.len() - self.sent);
        self.sent += from_out;
        let rest = tail.get(n - from_out..).unwrap_or_default();
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent >= self.ctx.config.io_buffer {
            // Keep the buffer from growing under a peer that reads slowly.
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        self.lent = false;
        if self.back.is_empty() {
            self.out.extend_from_slice(rest);
        } else if self.out.is_empty() && rest.is_empty() {
            std::mem::swap(&mut self.out, &mut self.back);
        } else {
            // Only after a partial write in flight: rare, so a copy.
            self.out.extend_from_slice(rest);
            self.out.append(&mut self.back);
        }
    }

    /// The peer ended its stream: replies still queued are written, then
    /// the connection closes. Mid-frame, the frame is discarded.
    pub fn on_eof(&mut self) {
        self.state = match self.state {
            State::Open => State::Draining,
            State::Closing => State::Closing,
            _ => State::Done,
        };
    }

    /// A read or write failed: the connection ends now.
    pub fn on_error(&mut self, error: &std::io::Error) {
        log::debug!("connection failed: {error}");
        self.state = State::Done;
    }

    /// Applies every rule whose time has come by `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        let config = &self.ctx.config;
        match self.state {
            State::Done => {}
            State::Lingering(until, _) if now >= until => self.state = State::Done,
            _ if self.stop_by.is_some_and(|t| now >= t) => {
                log::debug!("closing a connection still busy after the grace period");
                self.state = State::Done;
            }
            State::Open if self.head_deadline().is_some_and(|t| now >= t) => {
                log::debug!(
                    "closing a connection whose header took over {:?}",
                    config.header_timeout
                );
                self.state = State::Done;
            }
            State::Lingering(..) => {}
            _ if now >= self.last_active + config.idle_timeout => {
                log::debug!("closing a connection idle for {:?}", config.idle_timeout);
                self.state = State::Done;
            }
            _ => {}
        }
    }

    /// When [`Driver::on_timeout`] must be called if nothing happens before.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.last_active + self.ctx.config.idle_timeout;
        let deadline = match self.state {
            State::Done => return None,
            State::Lingering(until, _) => until,
            State::Open => self.head_deadline().map_or(idle, |h| h.min(idle)),
            State::Draining | State::Closing => idle,
        };
        Some(self.stop_by.map_or(deadline, |s| s.min(deadline)))
    }

    /// True while the driver would take input ([`Action::Read`], or a read
    /// alongside a pending write): not past the backpressure mark.
    pub fn wants_read(&self) -> bool {
        match self.state {
            State::Open => self.out.len() - self.sent + self.back.len() < self.ctx.config.io_buffer,
            State::Lingering(..) => true,
            _ => false,
        }
    }

    /// True when closing now loses nothing: between frames, replies sent.
    pub fn is_idle(&self) -> bool {
        self.state == State::Open && self.sent == self.out.len() && self.session.at_boundary()
    }

    /// True while an upload is open: what comes next is file data, which
    /// back-ends read in `read_size` pieces where they otherwise read less.
    pub fn is_storing(&self) -> bool {
        matches!(
            self.storage,
            Storage::Inline(Some(_)) | Storage::Delegated { open: true }
        )
    }

    /// True once the server is stopping and this connection knows it.
    pub fn is_stopping(&self) -> bool {
        self.stop_by.is_some()
    }

    fn head_deadline(&self) -> Option<Instant> {
        self.head_since.map(|t| t + self.ctx.config.header_timeout)
    }

    fn drop_upload(&mut self) {
        match &mut self.storage {
            Storage::Inline(upload) => *upload = None,
            Storage::Delegated { open } if *open => self.end_pending = true,
            Storage::Delegated { .. } => {}
        }
    }

    /// Ends the session where it stands: a frame in progress is discarded,
    /// its upload's temporary file removed before the failure is counted.
    fn end_session(&mut self) {
        self.drop_upload();
        if self.end_pending {
            return;
        }
        self.ended = true;
        if self.session.eof() == Eof::Truncated {
            log::debug!("a stream ended inside a frame");
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.ended {
            self.drop_upload();
            self.ended = true;
            self.session.eof();
        }
    }
}
