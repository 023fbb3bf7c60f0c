//! The classic server loop: accept one connection, serve it to the end,
//! accept the next. UDP echo runs on its own thread.
//!
//! It is not concurrent: a second client waits in the listen backlog until
//! the first one leaves (or stalls past the idle timeout). That is the
//! baseline the other I/O models are measured against.

use std::io;
use std::sync::Arc;

use sockbench_core::stdio::{Tracker, accept_loop, serve_connection, spawn_udp_echo};
use sockbench_core::{Backend, Capabilities, Server, admit};

/// The `blocking` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking;

impl Backend for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            concurrent: false,
            reuse_port: false,
        }
    }

    fn run(&self, server: Server) -> io::Result<()> {
        let Server { tcp, udp, ctx } = server;
        let udp = spawn_udp_echo(udp, Arc::clone(&ctx))?;
        let tracker = Tracker::new(&ctx);
        accept_loop(&tcp, &ctx, |stream| {
            // One connection at a time never reaches a cap of one or more.
            if let Ok(admitted) = admit(&ctx) {
                serve_connection(stream, &ctx, &tracker, admitted);
            }
        })?;
        let _ = udp.join();
        Ok(())
    }
}
