//! One ring and everything it serves: the multishot accept, the UDP slots,
//! the connections, the shutdown eventfd and the timers.
//!
//! Each turn of the loop is one `io_uring_enter`: it submits every entry
//! queued since the last turn and waits for at least one completion or the
//! next tick. Completions are then handed to their connection's driver,
//! whose actions queue the next entries. Every buffer an entry points to
//! is owned by the worker and stays put until that entry's completion: a
//! connection is removed only when none of its operations is in flight.

use std::fs::File;
use std::io::{self, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;
use sockbench_core::{
    AcceptFailure, Action, Admitted, Counters, Driver, RecvFailure, ServerContext, UdpEcho,
    accept_failed, admit,
};

use crate::bufs::{BufRing, GROUP};
use crate::op::Op;
use crate::udp::{SLOTS, Slot};

/// How often the drivers' deadlines are checked.
const TICK: Duration = Duration::from_millis(500);
/// How often, once stopping, the grace periods are checked.
const STOP_TICK: Duration = Duration::from_millis(20);
/// Receive buffers in the worker's ring of small buffers (`io_buffer`
/// bytes each): many, for many connections with little to read each.
const BUFFERS: u16 = 128;
/// How long an entry with a send in flight waits for a second completion
/// before it settles for one.
const PAIR_WAIT_US: u32 = 10;
/// Up to this many connections, a connection's receive waits for its send
/// and a body-sized one takes a wide buffer; past it, all take small
/// buffers and read on while they send, as the 8 wide buffers would be
/// fought over (see `pump`).
const SERIAL_MAX: usize = 64;
/// Receives in a row that found no ring buffer before a connection reads
/// into a buffer of its own: each such receive costs its connection a turn
/// of the loop, and spilling at the first cost more than it saved
/// (docs/performance.md).
const SPILL_AFTER: u8 = 8;
/// Receive buffers in the ring of wide ones (`read_size` bytes each), for
/// connections whose reads fill a small buffer: few, so the ones in use
/// stay in the cache (docs/performance.md measures both).
const WIDE_BUFFERS: u16 = 8;
/// Submission queue entries; a fuller queue is submitted early.
const ENTRIES: u32 = 1024;

/// This thread's ring. One thread submits to it and reaps it, so the
/// kernel may run its completion work only when the thread asks for
/// completions (`DEFER_TASKRUN`, 6.1), instead of interrupting the thread
/// as each receive lands; kernels before 6.1 refuse the flags with
/// EINVAL and get a plain ring.
fn ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(ENTRIES)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => IoUring::new(ENTRIES),
            _ => Err(e),
        })
}

/// A `sendmsg`'s header and its two pieces: the driver's pending output
/// and a run of echoes still in a ring buffer. Boxed, so it stays put
/// while the kernel reads it.
struct Msg {
    hdr: libc::msghdr,
    iov: [libc::iovec; 2],
}

impl Msg {
    fn new() -> Box<Msg> {
        // SAFETY: both are plain C structs for which all zeroes is valid.
        Box::new(unsafe { std::mem::zeroed() })
    }

    /// Points the header at the non-empty ones of `pieces`.
    fn set(&mut self, pieces: [&[u8]; 2]) -> *const libc::msghdr {
        let mut n = 0;
        for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
            self.iov[n] = libc::iovec {
                iov_base: piece.as_ptr().cast_mut().cast(),
                iov_len: piece.len(),
            };
            n += 1;
        }
        self.hdr.msg_iov = self.iov.as_mut_ptr();
        self.hdr.msg_iovlen = n as _;
        &self.hdr
    }
}

/// A connection of the ring.
struct Conn {
    stream: TcpStream,
    driver: Driver,
    /// The send in flight reads the driver's output, lent to it (see
    /// [`Driver::lend_output`]), and this run of echoes in a ring buffer:
    /// `(buffer, start, len)`, recycled when the send completes.
    held: Option<(u16, usize, usize)>,
    /// The receive in flight (and `held`) use the wide ring.
    in_wide: bool,
    /// The last receive was body-sized (a quarter of a small buffer or
    /// more): the next takes a wide buffer.
    wide: bool,
    msg: Box<Msg>,
    /// An upload's receive buffer (`read_size` bytes, empty otherwise):
    /// its body comes in large reads into one buffer, which stays in the
    /// cache between reads, where the ring's buffers rotate through
    /// `BUFFERS * io_buffer` bytes and are cold when the kernel fills them.
    body: Vec<u8>,
    /// The receive in flight reads into `body`, not a ring buffer.
    into_body: bool,
    /// Receives in a row that found the ring empty; at `SPILL_AFTER` the
    /// next one reads into `body`, so a connection always gets its turn.
    spill: u8,
    receiving: bool,
    sending: bool,
    /// The driver said close: waiting for the operations in flight.
    closing: bool,
    _admitted: Admitted,
}

/// A ring's worker.
pub struct Worker<'c> {
    // Declared first, dropped first: no operation can outlive the buffers below.
    ring: IoUring,
    /// The small and the wide receive buffers.
    bufs: [BufRing; 2],
    ctx: &'c Arc<ServerContext>,
    listener: Option<TcpListener>,
    accepting: bool,
    udp: UdpSocket,
    /// Made once and never resized: a slot stays put while the kernel
    /// holds pointers into it.
    slots: Vec<Slot<'c>>,
    /// Per slot: an operation is in flight.
    slot_busy: Vec<bool>,
    wake: File,
    wake_buf: Box<[u8; 8]>,
    waking: bool,
    conns: Slab<Conn>,
    /// Connections with a send in flight.
    sends: usize,
    /// Connections with a receive in flight.
    receives: usize,
    /// The kernel takes a minimum wait (6.12): see `PAIR_WAIT_US`.
    min_wait: bool,
    /// Per ring, the buffers held by sends in flight.
    held: [usize; 2],
    stopping: bool,
    next_tick: Instant,
}

impl<'c> Worker<'c> {
    /// A worker serving `listener` and `udp` (shared with the other
    /// workers: the kernel hands each connection and datagram to one).
    pub fn new(
        ctx: &'c Arc<ServerContext>,
        listener: TcpListener,
        udp: UdpSocket,
    ) -> io::Result<Self> {
        let ring = ring()?;
        let min_wait = ring.params().is_feature_min_timeout();
        let config = &ctx.config;
        let bufs = [
            BufRing::register(&ring, GROUP, BUFFERS, config.io_buffer)?,
            BufRing::register(&ring, GROUP + 1, WIDE_BUFFERS, config.read_size)?,
        ];
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let wake = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let hook = wake.try_clone()?;
        ctx.shutdown.on_trigger(move || {
            let _ = (&hook).write_all(&1u64.to_ne_bytes());
        });
        Ok(Worker {
            ring,
            bufs,
            ctx,
            listener: Some(listener),
            accepting: false,
            udp,
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
            slot_busy: vec![false; SLOTS],
            wake,
            wake_buf: Box::new([0; 8]),
            waking: false,
            conns: Slab::new(),
            held: [0; 2],
            sends: 0,
            receives: 0,
            min_wait,
            stopping: false,
            next_tick: Instant::now() + TICK,
        })
    }

    /// Serves until shutdown and the grace periods are over.
    pub fn run(mut self) -> io::Result<()> {
        self.arm_accept();
        self.arm_wake();
        for i in 0..SLOTS {
            self.arm_udp(i);
        }
        let mut done = Vec::with_capacity(ENTRIES as usize);
        loop {
            let wait = self.next_tick.saturating_duration_since(Instant::now());
            let ts = types::Timespec::from(wait);
            let mut args = types::SubmitArgs::new().timespec(&ts);
            // A send in flight completes soon, and its completion alone
            // needs nothing urgent: with a receive in flight too, wait a
            // little for a second completion, so one entry serves both.
            let want = match self.sends > 0 && self.receives > 0 && self.min_wait {
                true => {
                    args = args.min_wait_usec(PAIR_WAIT_US);
                    2
                }
                false => 1,
            };
            let queued = self.ring.submission().len();
            match self.ring.submitter().submit_with_args(want, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
            self.counters().ring_entered(queued);
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            let now = Instant::now();
            for (data, res, flags) in done.drain(..) {
                match Op::decode(data) {
                    Some(op) => self.complete(op, res, flags, now),
                    None => log::warn!("a completion of no operation: {data:#x}"),
                }
            }
            if self.housekeeping(now) {
                return Ok(());
            }
        }
    }

    fn counters(&self) -> &'c Counters {
        &self.ctx.counters
    }

    /// Queues an entry, submitting the queue first if it is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to is owned by the worker
            // and stays put until the entry completes (see the module docs).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            let queued = self.ring.submission().len();
            if let Err(e) = self.ring.submit() {
                log::warn!("io_uring submit: {e}");
            }
            self.counters().ring_entered(queued);
        }
    }

    fn arm_accept(&mut self) {
        if let Some(l) = &self.listener
            && !self.accepting
        {
            let fd = types::Fd(l.as_raw_fd());
            let entry = opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build();
            self.push(entry.user_data(Op::Accept.encode()));
            self.accepting = true;
        }
    }

    fn arm_wake(&mut self) {
        let fd = types::Fd(self.wake.as_raw_fd());
        let entry = opcode::Read::new(fd, self.wake_buf.as_mut_ptr(), 8).build();
        self.push(entry.user_data(Op::Wake.encode()));
        self.waking = true;
    }

    fn arm_udp(&mut self, i: usize) {
        if self.stopping || self.slot_busy[i] {
            return;
        }
        let entry = self.slots[i].recv(types::Fd(self.udp.as_raw_fd()));
        self.push(entry.user_data(Op::UdpRecv(i).encode()));
        self.slot_busy[i] = true;
    }

    fn cancel(&mut self, op: Op) {
        let entry = opcode::AsyncCancel::new(op.encode()).build();
        self.push(entry.user_data(Op::Cancel.encode()));
    }

    fn complete(&mut self, op: Op, res: i32, flags: u32, now: Instant) {
        match op {
            Op::Accept => self.accepted(res, flags, now),
            Op::Wake => {
                self.waking = false;
                self.begin_stop();
            }
            Op::Recv(key) => {
                let Some(conn) = self.conns.get_mut(key) else {
                    return;
                };
                conn.receiving = false;
                self.receives -= 1;
                let mut send = None;
                let w = usize::from(conn.in_wide);
                match (res, cqueue::buffer_select(flags)) {
                    // Closing: what raced the cancellation is dropped.
                    (_, Some(bid)) if conn.closing => self.bufs[w].recycle(bid),
                    _ if conn.closing => {}
                    (n, Some(bid)) if n > 0 => {
                        let bufs = &mut self.bufs[w];
                        conn.spill = 0;
                        // A quarter of a small buffer or more: a body-sized
                        // read, not a run of small frames.
                        conn.wide = n as usize >= self.ctx.config.io_buffer / 4;
                        let data = bufs.get(bid, n as usize);
                        let tail = conn.driver.on_read_direct(data, now);
                        // At most half the small ring is held by sends, so
                        // receives seldom run out of buffers. The wide ring
                        // serves at most `SERIAL_MAX` connections, none of
                        // which receives while it sends, and all of it may
                        // be held: a run copied because the ring was held
                        // cost more than the receives that find it empty and
                        // wait (docs/performance.md).
                        let room = match w {
                            1 => self.held[w] < bufs.count(),
                            _ => self.held[w] < bufs.count() / 2,
                        };
                        if !tail.is_empty() && !conn.sending && room {
                            // The run goes out from the ring buffer, behind
                            // the pending output, in one send: no copy.
                            let start = tail.as_ptr() as usize - data.as_ptr() as usize;
                            let [pending, _] = conn.driver.direct_slices(tail);
                            let msg = conn.msg.set([&pending, tail]);
                            let fd = types::Fd(conn.stream.as_raw_fd());
                            send = Some(
                                opcode::SendMsg::new(fd, msg)
                                    .flags(libc::MSG_NOSIGNAL as u32)
                                    .build()
                                    .user_data(Op::Send(key).encode()),
                            );
                            conn.driver.lend_output();
                            conn.sending = true;
                            self.sends += 1;
                            conn.held = Some((bid, start, tail.len()));
                            self.held[w] += 1;
                        } else {
                            conn.driver.keep_direct(tail);
                            bufs.recycle(bid);
                        }
                    }
                    (n, None) if n > 0 && conn.into_body => {
                        conn.driver.on_read(&conn.body[..n as usize], now);
                    }
                    (0, _) => conn.driver.on_eof(),
                    // Every buffer was taken in this turn: after SPILL_AFTER
                    // such turns in a row this connection reads into its own.
                    (r, _) if r == -libc::ENOBUFS => conn.spill += 1,
                    (r, _) if r == -libc::ECANCELED => {}
                    // Data without a buffer cannot happen; it would be the kernel's error.
                    (r, _) => {
                        let errno = if r < 0 { -r } else { libc::EIO };
                        conn.driver.on_error(&io::Error::from_raw_os_error(errno));
                    }
                }
                if let Some(entry) = send {
                    self.push(entry);
                }
                self.pump(key, now);
            }
            Op::Send(key) => {
                let Some(conn) = self.conns.get_mut(key) else {
                    return;
                };
                conn.sending = false;
                self.sends -= 1;
                let held = conn.held.take();
                let w = usize::from(conn.in_wide);
                let tail = held.map_or(&[][..], |(bid, start, len)| {
                    &self.bufs[w].get(bid, start + len)[start..]
                });
                match res {
                    _ if conn.closing => {}
                    n if n >= 0 => conn.driver.on_written_direct(n as usize, tail, now),
                    r if r == -libc::ECANCELED => {}
                    r => conn.driver.on_error(&io::Error::from_raw_os_error(-r)),
                }
                if let Some((bid, ..)) = held {
                    self.bufs[w].recycle(bid);
                    self.held[w] -= 1;
                }
                self.pump(key, now);
            }
            Op::UdpRecv(i) => {
                self.slot_busy[i] = false;
                let fd = types::Fd(self.udp.as_raw_fd());
                let counters = self.counters();
                match self.slots[i].received(res, fd, counters) {
                    Ok(Some(send)) => {
                        self.push(send.user_data(Op::UdpSend(i).encode()));
                        self.slot_busy[i] = true;
                    }
                    Ok(None) => self.arm_udp(i),
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                    // A failing socket waits for the next tick (`housekeeping`).
                    Err(e) => {
                        if UdpEcho(counters).recv_failed(&e) == RecvFailure::Retry {
                            self.arm_udp(i);
                        }
                    }
                }
            }
            Op::UdpSend(i) => {
                self.slot_busy[i] = false;
                self.slots[i].sent(res);
                self.arm_udp(i);
            }
            Op::Cancel => {}
        }
    }

    fn accepted(&mut self, res: i32, flags: u32, now: Instant) {
        if !cqueue::more(flags) {
            self.accepting = false;
        }
        if res < 0 {
            // Cancelled: stopping. Out of descriptors and the like: the
            // next tick accepts again.
            let e = io::Error::from_raw_os_error(-res);
            if res != -libc::ECANCELED
                && accept_failed(&e) != AcceptFailure::Backoff
                && !self.stopping
            {
                self.arm_accept();
            }
            return;
        }
        if !self.accepting && !self.stopping {
            self.arm_accept();
        }
        // SAFETY: a successful accept's result is a new descriptor, ours alone.
        let stream = unsafe { TcpStream::from_raw_fd(res) };
        // Refused: the stream is dropped, closing it (see `admit`).
        let Ok(admitted) = admit(self.ctx) else {
            return;
        };
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("TCP_NODELAY: {e}");
        }
        let key = self.conns.insert(Conn {
            stream,
            driver: Driver::new(self.ctx, now),
            held: None,
            in_wide: false,
            wide: false,
            msg: Msg::new(),
            body: Vec::new(),
            into_body: false,
            spill: 0,
            receiving: false,
            sending: false,
            closing: false,
            _admitted: admitted,
        });
        self.pump(key, now);
    }

    /// Carries out connection `key`'s actions until it waits for a completion.
    fn pump(&mut self, key: usize, now: Instant) {
        let mut queue: [Option<squeue::Entry>; 2] = [None, None];
        let mut cancel: [Option<Op>; 2] = [None, None];
        let busy = self.conns.len() > 1;
        // Several connections: none reads while its send is in flight, so
        // what its peer sends meanwhile comes in one larger receive (and the
        // peer is woken for one larger reply). One: it reads on, so its
        // requests and replies overlap. Past `SERIAL_MAX` connections a turn
        // has large batches anyway, and small frames lose by waiting.
        let connections = self.conns.len();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let serial = busy && connections <= SERIAL_MAX;
        let (mut sent, mut received) = (false, false);
        let fd = types::Fd(conn.stream.as_raw_fd());
        loop {
            if conn.closing {
                if !conn.receiving && !conn.sending {
                    self.conns.remove(key);
                }
                break;
            }
            let recv = match conn.driver.next(now) {
                Action::Close => {
                    conn.closing = true;
                    cancel = [
                        conn.receiving.then_some(Op::Recv(key)),
                        conn.sending.then_some(Op::Send(key)),
                    ];
                    continue;
                }
                Action::ShutdownWrite => {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    continue;
                }
                Action::AbortUpload => continue,
                Action::Write(bytes) => {
                    if !conn.sending {
                        // Sent from the driver's buffer, which stays put
                        // until the send completes (`lend_output`).
                        let send = opcode::Send::new(fd, bytes.as_ptr(), bytes.len() as u32)
                            .flags(libc::MSG_NOSIGNAL)
                            .build();
                        queue[0] = Some(send.user_data(Op::Send(key).encode()));
                        conn.driver.lend_output();
                        conn.sending = true;
                        sent = true;
                    }
                    // Reading goes on while a write waits, up to the backpressure mark.
                    conn.driver.wants_read() && !(serial && conn.sending)
                }
                Action::Read => !(serial && conn.sending),
            };
            if recv && !conn.receiving {
                // No receive is in flight: `body` may be resized or freed.
                let storing = conn.driver.is_storing();
                conn.into_body = storing || conn.spill >= SPILL_AFTER;
                if conn.into_body {
                    conn.spill = 0;
                }
                let entry = if conn.into_body {
                    let size = match storing {
                        true => self.ctx.config.read_size,
                        false => self.ctx.config.io_buffer,
                    };
                    if conn.body.len() != size {
                        conn.body = vec![0; size];
                    }
                    opcode::Recv::new(fd, conn.body.as_mut_ptr(), size as u32).build()
                } else {
                    if conn.driver.is_idle() {
                        conn.body = Vec::new();
                    }
                    // One connection: small reads, answered at once, so its
                    // next requests overlap with the reply; several: whole
                    // buffers, in fewer and larger sends (as the mio loop).
                    // A held buffer is returned before the ring is switched.
                    if conn.held.is_none() {
                        conn.in_wide = serial && conn.wide;
                    }
                    let bufs = &self.bufs[usize::from(conn.in_wide)];
                    let size = match busy {
                        true => bufs.size(),
                        false => bufs.size().min(self.ctx.config.io_buffer),
                    };
                    opcode::Recv::new(fd, std::ptr::null_mut(), size as u32)
                        .buf_group(bufs.group())
                        .build()
                        .flags(squeue::Flags::BUFFER_SELECT)
                };
                queue[1] = Some(entry.user_data(Op::Recv(key).encode()));
                conn.receiving = true;
                received = true;
            }
            break;
        }
        self.sends += usize::from(sent);
        self.receives += usize::from(received);
        for entry in queue.into_iter().flatten() {
            self.push(entry);
        }
        for op in cancel.into_iter().flatten() {
            self.cancel(op);
        }
    }

    fn begin_stop(&mut self) {
        if self.stopping || !self.ctx.shutdown.is_triggered() {
            return;
        }
        log::debug!("stopping: {} connection(s) open", self.conns.len());
        self.stopping = true;
        if self.accepting {
            self.cancel(Op::Accept);
        }
        for i in 0..SLOTS {
            if self.slot_busy[i] {
                self.cancel(Op::UdpRecv(i));
            }
        }
    }

    /// Timers and shutdown progress; true when the worker is done.
    fn housekeeping(&mut self, now: Instant) -> bool {
        if self.ctx.shutdown.is_triggered() {
            self.begin_stop();
        }
        // Once stopping, every turn: idle connections close at once, and
        // the rest when their grace period ends.
        if now >= self.next_tick || self.stopping {
            self.next_tick = now + if self.stopping { STOP_TICK } else { TICK };
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.driver.on_timeout(now);
                }
                self.pump(key, now);
            }
            if !self.stopping {
                self.arm_accept();
                for i in 0..SLOTS {
                    self.arm_udp(i);
                }
            }
        }
        if self.stopping && !self.accepting {
            // The accept is over: the listener can close (its backlog is reset).
            self.listener = None;
        }
        self.stopping
            && self.conns.is_empty()
            && !self.accepting
            && !self.waking
            && !self.slot_busy.iter().any(|&b| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockbench_core::Backend as _;

    /// Where the kernel takes the flags (6.1 on), the worker's ring is one
    /// thread's and defers its completion work (docs/performance.md says
    /// what that is worth).
    #[test]
    fn the_ring_defers_its_completion_work_where_the_kernel_can() {
        if crate::Uring.probe().is_err() {
            // No io_uring here: harness/tests/e2e.rs checks the refusal.
            return;
        }
        let ring = ring().unwrap();
        let takes = IoUring::<squeue::Entry, cqueue::Entry>::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(8);
        assert_eq!(
            ring.params().is_setup_single_issuer(),
            takes.is_ok(),
            "{:?}",
            takes.err()
        );
    }
}
