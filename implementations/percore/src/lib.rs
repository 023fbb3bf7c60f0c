//! Thread-per-core, shared nothing: one event loop per core the server may
//! use (`--workers`, default all of them), each pinned to its core, each
//! with its own `SO_REUSEPORT` TCP listener and UDP socket on the bound
//! addresses.
//!
//! The kernel spreads new connections and datagrams over the sockets by a
//! hash of the peer's address, so a loop only ever touches its own sockets
//! and connections: no lock, no queue, no wake-up crosses loops. What they
//! share is the server's context: the counters `stats` reports (one set of
//! atomics, so `stats` shows their sum), the stop signal, and admission,
//! whose cap is counted over every loop. Each loop is the `mio` back-end's
//! [`EventLoop`], so the two differ only in the model, not in the code.
//!
//! The price of the model: a connection is bound to the loop the hash gave
//! it, however busy that loop is, and the loops' sockets close with them
//! at shutdown (a connection still in one's backlog then is reset).

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use sockbench_core::sockets::{Sharing, bind_tcp, bind_udp};
use sockbench_core::{Backend, Capabilities, Server, ServerContext, join_workers};
use sockbench_mio::event_loop::EventLoop;

/// The `percore` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerCore;

impl Backend for PerCore {
    fn name(&self) -> &'static str {
        "percore"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            concurrent: true,
            reuse_port: true,
        }
    }

    fn run(&self, server: Server) -> io::Result<()> {
        let Server { tcp, udp, ctx } = server;
        let cpus = allowed_cpus()?;
        let loops = ctx.config.threads().max(1);
        let (tcp_addr, udp_addr) = (tcp.local_addr()?, udp.local_addr()?);
        // Every loop's sockets exist before any loop runs: a bind that
        // fails fails the start, not a loop later.
        let mut sockets = vec![(tcp, udp)];
        for _ in 1..loops {
            sockets.push((
                bind_tcp(tcp_addr, Sharing::ReusePort)?,
                bind_udp(udp_addr, Sharing::ReusePort)?,
            ));
        }
        log::debug!("{loops} loop(s) on CPUs {cpus:?}");
        let handles: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(i, (tcp, udp))| {
                let cpu = cpus[i % cpus.len()];
                let ctx = Arc::clone(&ctx);
                thread::Builder::new()
                    .name(format!("percore-{i}"))
                    .spawn(move || serve_loop(cpu, tcp, udp, ctx))
            })
            .collect::<io::Result<_>>()?;
        join_workers(&ctx, handles)
    }
}

/// One loop on its core. A failed pin is logged, not fatal: the loop
/// still serves, as an unpinned thread.
fn serve_loop(
    cpu: usize,
    tcp: TcpListener,
    udp: UdpSocket,
    ctx: Arc<ServerContext>,
) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    if let Err(e) = sched_setaffinity(None, &set) {
        log::warn!("cannot pin a loop to CPU {cpu}: {e}");
    }
    EventLoop::new(Server { tcp, udp, ctx })?.run()
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(None)?;
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect();
    match cpus.is_empty() {
        true => Err(io::Error::other("no CPU is allowed")),
        false => Ok(cpus),
    }
}
