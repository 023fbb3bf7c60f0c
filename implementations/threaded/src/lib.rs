//! A thread per connection over std::net: the blocking loop of `blocking`,
//! run on its own thread for each accepted connection.
//!
//! Bounded by `--max-connections` (connections past it are closed at once)
//! and by the idle timeout, which is each socket's read and write timeout,
//! so a stalled client cannot hold a thread forever.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sockbench_core::stdio::{Tracker, accept_loop, serve_connection, spawn_udp_echo};
use sockbench_core::{Backend, Capabilities, Server, admit};

/// Stack of a connection thread: the session needs little, and thousands
/// of idle connections should not reserve gigabytes.
const STACK: usize = 256 * 1024;

/// The `threaded` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Threaded;

impl Backend for Threaded {
    fn name(&self) -> &'static str {
        "threaded"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::CONCURRENT
    }

    fn run(&self, server: Server) -> io::Result<()> {
        let Server { tcp, udp, ctx } = server;
        let udp = spawn_udp_echo(udp, Arc::clone(&ctx))?;
        let tracker = Tracker::new(&ctx);
        accept_loop(&tcp, &ctx, |stream| {
            // Refused: the stream is dropped, closing it (see `admit`).
            let Ok(admitted) = admit(&ctx) else { return };
            let (ctx, tracker) = (Arc::clone(&ctx), Arc::clone(&tracker));
            let spawned = thread::Builder::new()
                .name("conn".into())
                .stack_size(STACK)
                .spawn(move || serve_connection(stream, &ctx, &tracker, admitted));
            if let Err(e) = spawned {
                // Out of threads: the stream went with the failed closure and is closed.
                log::warn!("cannot start a connection thread: {e}");
            }
        })?;
        // Connections finish their frames within the grace period, then are cut.
        let deadline = Instant::now() + ctx.config.grace + Duration::from_secs(1);
        if !tracker.wait_empty(deadline) {
            log::warn!(
                "{} connection(s) still open after the grace period",
                tracker.len()
            );
        }
        let _ = udp.join();
        Ok(())
    }
}
