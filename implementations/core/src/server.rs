//! The contract between `sockbench serve` and a back-end.
//!
//! `serve` binds the sockets, prints the ready line, installs the signal
//! handlers and calls [`Backend::run`]. A back-end must then:
//!
//! - pass every accepted TCP connection through [`admit`](crate::admit)
//!   and serve it with a [`Driver`](crate::Driver), carrying out its
//!   actions, with `TCP_NODELAY` set;
//! - echo every UDP datagram to its sender from a buffer of at least
//!   [`UDP_BUFFER`](crate::UDP_BUFFER) bytes through [`UdpEcho`](crate::UdpEcho);
//! - when [`Shutdown`] triggers: stop accepting, keep driving the open
//!   connections (each driver closes itself: at once when idle, at the end
//!   of the grace period otherwise), and return when none is left.
//!
//! It must not implement protocol or connection rules itself: they live in
//! `Session`, `Driver`, `admit` and `UdpEcho`.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;

use crate::config::ServerConfig;
use crate::counters::Counters;
use crate::shutdown::Shutdown;
use crate::storage::Storage;

/// What a back-end can do, as declared in the `serve` ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Serves several TCP connections at once.
    pub concurrent: bool,
    /// Opens sibling sockets on the bound addresses: `serve` binds with
    /// [`Sharing::ReusePort`](crate::sockets::Sharing::ReusePort).
    pub reuse_port: bool,
}

impl Capabilities {
    /// Serves connections at once, on the sockets `serve` bound alone.
    pub const CONCURRENT: Capabilities = Capabilities {
        concurrent: true,
        reuse_port: false,
    };
}

/// Why a back-end cannot serve on this machine (a kernel feature missing
/// or forbidden): `serve` says so in one line and exits 2, and `conform`
/// and `bench` report the back-end as unsupported with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Everything a server's parts share.
#[derive(Debug)]
pub struct ServerContext {
    /// The back-end's name, as in `stats` replies.
    pub backend: &'static str,
    /// Settings.
    pub config: ServerConfig,
    /// Counters for `stats`.
    pub counters: Counters,
    /// Where uploads go.
    pub storage: Arc<Storage>,
    /// The stop signal.
    pub shutdown: Shutdown,
}

impl ServerContext {
    /// A context for `backend` storing uploads in `storage`.
    pub fn new(backend: &'static str, config: ServerConfig, storage: Storage) -> Arc<Self> {
        Arc::new(ServerContext {
            backend,
            config,
            counters: Counters::default(),
            storage: Arc::new(storage),
            shutdown: Shutdown::default(),
        })
    }
}

/// Bound sockets and the shared context, handed to a back-end.
#[derive(Debug)]
pub struct Server {
    /// The listening TCP socket (blocking mode).
    pub tcp: TcpListener,
    /// The bound UDP socket (blocking mode).
    pub udp: UdpSocket,
    /// Shared state.
    pub ctx: Arc<ServerContext>,
}

/// One I/O model serving the protocol.
pub trait Backend: Send + Sync {
    /// The name used by `--backend`.
    fn name(&self) -> &'static str;
    /// What this back-end can do.
    fn capabilities(&self) -> Capabilities;
    /// Whether this machine can run the back-end; checked before binding.
    fn probe(&self) -> Result<(), Unavailable> {
        Ok(())
    }
    /// Serves until `server.ctx.shutdown` triggers and in-flight work is done.
    fn run(&self, server: Server) -> io::Result<()>;
}

/// Waits for a back-end's worker threads (percore's loops, uring's rings).
/// The first failure or panic stops the others, which must not serve on
/// with part of the server gone, and is returned.
pub fn join_workers(
    ctx: &ServerContext,
    workers: Vec<std::thread::JoinHandle<io::Result<()>>>,
) -> io::Result<()> {
    let mut first_error = None;
    for w in workers {
        let result = w
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
        if let Err(e) = result {
            ctx.shutdown.trigger();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
