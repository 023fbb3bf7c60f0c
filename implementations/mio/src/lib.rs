//! One event loop on one thread, UDP included: non-blocking sockets,
//! edge-triggered readiness, a core `Driver` per connection ([`conn`]).
//!
//! Each socket is registered once for both edges and never re-registered:
//! the loop's own state says whether to act on an edge (no `epoll_ctl` per
//! state change).
//!
//! Storage runs inline: an upload's writes and fsync block the loop, this
//! model's honest cost (see the upload benchmarks with `--no-fsync`).

mod conn;
pub mod event_loop;
mod timers;

use std::io;

use sockbench_core::{Backend, Capabilities, Server};

/// The `mio` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mio;

impl Backend for Mio {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::CONCURRENT
    }

    fn run(&self, server: Server) -> io::Result<()> {
        event_loop::EventLoop::new(server)?.run()
    }
}
