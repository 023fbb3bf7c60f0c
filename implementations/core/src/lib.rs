//! What every sockbench back-end shares.
//!
//! - [`Session`]: the protocol's request logic, sans I/O (echo, upload,
//!   stats, every error and whether it closes the connection).
//! - [`Driver`]: one connection's lifecycle around its session, sans I/O
//!   and sans clock: idle timeout, header deadline, lingering close,
//!   backpressure, shutdown; the back-end carries out its [`Action`]s.
//! - [`admit`]: serve or refuse a connection over the cap; [`UdpEcho`]: the
//!   counted UDP echo.
//! - [`Storage`] and [`Upload`]: temporary file, incremental MD5, fsync,
//!   atomic rename, file-name rules, no partial files.
//! - [`Backend`], [`Server`], [`ServerContext`], [`ServerConfig`]: the
//!   contract between `sockbench serve` and a back-end (see [`server`]).
//! - [`Counters`] for `stats`, and [`Shutdown`].
//! - [`sockets`]: how the listening sockets are bound.
//! - [`stdio`]: std::net building blocks for the thread-based back-ends.
#![deny(missing_docs, missing_debug_implementations)]

mod admission;
mod config;
mod counters;
pub mod digest;
mod driver;
pub mod server;
mod session;
mod shutdown;
pub mod sockets;
pub mod stdio;
mod storage;
mod udp;

pub use admission::{AcceptFailure, Admitted, Refused, accept_failed, admit};
pub use config::ServerConfig;
pub use counters::{Counters, ProcessProbe, ProcessUse, TcpStats, UdpStats};
pub use driver::{Action, Driver, LINGER_BYTES, LINGER_TIME};
pub use server::{Backend, Capabilities, Server, ServerContext, Unavailable, join_workers};
pub use session::{Eof, Session, Step, StorageOp};
pub use shutdown::Shutdown;
pub use storage::{
    BadFileName, CommitError, Storage, Stored, TEMP_PREFIX, TEMP_SUFFIX, Upload, validate_file_name,
};
pub use udp::{Echo, RecvFailure, UDP_BUFFER, UdpEcho};
