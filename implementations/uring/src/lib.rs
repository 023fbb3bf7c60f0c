//! Completion-based I/O through io_uring (the `io-uring` crate), the model
//! of monoio, glommio, compio and tokio-uring, as a thin driver over core's
//! connection [`Driver`](sockbench_core::Driver).
//!
//! - One ring per worker thread (`--workers`, default one per core), all
//!   accepting on the one listener with a multishot accept and receiving on
//!   the one UDP socket: the kernel gives each connection and datagram to
//!   one ring.
//! - Receives take their buffer from a provided buffer ring ([`bufs`]) when
//!   data arrives, so an idle connection holds no buffer; replies are sent
//!   through the ring from a per-connection copy. While an upload's body
//!   streams, its connection receives into a buffer of its own of
//!   `read_size` bytes instead, freed when the upload ends: one buffer that
//!   stays in the cache, where the ring's rotate through megabytes (less
//!   CPU per uploaded GB; docs/performance.md has the numbers).
//! - UDP through `recvmsg`/`sendmsg` operations, 16 slots in flight.
//! - Each ring is its worker thread's alone (`SINGLE_ISSUER`), and the
//!   kernel runs its completion work only when that thread enters the ring
//!   to wait (`DEFER_TASKRUN`, Linux 6.1; a plain ring before): no
//!   interruption of the thread as each receive lands, which is what
//!   pipelined small frames pay for most (docs/performance.md).
//! - Submissions are batched: each turn of a worker is one `io_uring_enter`,
//!   which submits what the last turn queued and waits for completions.
//!   The worker counts its enters and submissions (`tcp.ring_enters`,
//!   `tcp.ring_submissions` in `stats`), so system calls per frame compare
//!   with the readiness back-ends' reads and writes.
//! - Uploads are stored inline on the worker, by core's `Upload` (temporary
//!   file, incremental MD5, fsync, rename), as the `mio` back-end does. Not
//!   through the ring: core owns the storage rules (no partial files, the
//!   digest, the atomic rename), and ring writes would split them across
//!   two crates; not through a worker: the upload benchmark then compares
//!   the two event-driven models on the same storage path. The cost, a
//!   worker blocked during a file write or fsync, is the same as `mio`'s
//!   and shows in the upload results with and without `--no-fsync`.
//!
//! Where io_uring is missing (a kernel before 5.19, `kernel.io_uring_disabled`,
//! a seccomp profile such as Docker's default), [`Uring::probe`] says why:
//! `serve` exits 2 with that line, and `conform` and `bench` report the
//! back-end as unsupported. `SOCKBENCH_URING_UNAVAILABLE=reason` forces that
//! path (its tests use it).

#![allow(unsafe_code)]

mod bufs;
mod op;
mod udp;
mod worker;

use std::io;
use std::sync::Arc;
use std::thread;

use io_uring::{IoUring, Probe, opcode};
use sockbench_core::{Backend, Capabilities, Server, Unavailable, join_workers};

/// The `uring` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uring;

/// The environment variable that makes [`Uring::probe`] fail with its value.
pub const FORCE_UNAVAILABLE: &str = "SOCKBENCH_URING_UNAVAILABLE";

impl Backend for Uring {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::CONCURRENT
    }

    fn probe(&self) -> Result<(), Unavailable> {
        if let Some(why) = std::env::var_os(FORCE_UNAVAILABLE) {
            return Err(Unavailable(format!(
                "{} (set by {FORCE_UNAVAILABLE})",
                why.to_string_lossy()
            )));
        }
        let ring = IoUring::new(8).map_err(|e| {
            Unavailable(match e.raw_os_error() {
                Some(libc::ENOSYS) => "io_uring_setup: ENOSYS, the kernel has no io_uring or a seccomp profile hides it".into(),
                Some(libc::EPERM) => "io_uring_setup: EPERM, io_uring is disabled (kernel.io_uring_disabled) or forbidden to this process".into(),
                _ => format!("io_uring_setup failed: {e}"),
            })
        })?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe).map_err(|e| {
            Unavailable(format!("io_uring cannot say which operations it has: {e}"))
        })?;
        let needed = [
            (opcode::Accept::CODE, "accept"),
            (opcode::Recv::CODE, "recv"),
            (opcode::Send::CODE, "send"),
            (opcode::RecvMsg::CODE, "recvmsg"),
            (opcode::SendMsg::CODE, "sendmsg"),
            (opcode::Read::CODE, "read"),
            (opcode::AsyncCancel::CODE, "async cancel"),
        ];
        if let Some((_, name)) = needed.iter().find(|(code, _)| !probe.is_supported(*code)) {
            return Err(Unavailable(format!(
                "this kernel's io_uring has no {name} operation"
            )));
        }
        // Buffer rings and multishot accept came in 5.19.
        let bufs = bufs::BufRing::register(&ring, bufs::GROUP, 1, 4096).map_err(|e| {
            Unavailable(format!(
                "no provided buffer rings (kernel before 5.19?): {e}"
            ))
        })?;
        let _ = ring.submitter().unregister_buf_ring(bufs::GROUP);
        drop(bufs);
        Ok(())
    }

    fn run(&self, server: Server) -> io::Result<()> {
        let Server { tcp, udp, ctx } = server;
        let workers = ctx.config.threads().max(1);
        let mut sockets = Vec::with_capacity(workers);
        for _ in 1..workers {
            sockets.push((tcp.try_clone()?, udp.try_clone()?));
        }
        sockets.push((tcp, udp));
        let handles: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(i, (tcp, udp))| {
                let ctx = Arc::clone(&ctx);
                thread::Builder::new()
                    .name(format!("uring-{i}"))
                    .spawn(move || worker::Worker::new(&ctx, tcp, udp)?.run())
            })
            .collect::<io::Result<_>>()?;
        join_workers(&ctx, handles)
    }
}
