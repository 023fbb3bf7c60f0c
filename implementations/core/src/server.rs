//! The contract between `sockbench serve` and a back-end.
//!
//! `serve` binds the sockets, prints the ready line, installs the signal
//! handlers and calls [`Backend::run`]. A back-end must then:
//!
//! - serve every TCP connection with a [`Session`](crate::Session) (through
//!   [`Connection`](crate::Connection) or its own driver), writing each
//!   reply without needless small writes, with `TCP_NODELAY` set;
//! - echo every UDP datagram to its sender from a buffer of at least
//!   65,536 bytes, counting it in [`Counters`];
//! - count accepted connections and socket reads and writes;
//! - when [`Shutdown`] triggers: stop accepting, let frames in progress
//!   finish for at most `config.grace`, drop unfinished uploads, and return.
//!
//! It must not implement protocol rules itself: they live in `Session`.

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
}

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
    /// Serves until `server.ctx.shutdown` triggers and in-flight work is done.
    fn run(&self, server: Server) -> io::Result<()>;
}
