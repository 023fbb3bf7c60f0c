//! What every sockbench back-end shares.
//!
//! - [`Session`]: the protocol's request logic, sans I/O (echo, upload,
//!   stats, every error and whether it closes the connection).
//! - [`Storage`] and [`Upload`]: temporary file, incremental MD5, fsync,
//!   atomic rename, file-name rules, no partial files.
//! - [`Connection`]: a session with storage done inline, for synchronous drivers.
//! - [`Backend`], [`Server`], [`ServerContext`], [`ServerConfig`]: the
//!   contract between `sockbench serve` and a back-end (see [`server`]).
//! - [`Counters`] for `stats`, and [`Shutdown`].
//! - [`stdio`]: std::net building blocks for the thread-based back-ends.

mod config;
mod connection;
mod counters;
pub mod server;
mod session;
mod shutdown;
pub mod stdio;
mod storage;

pub use config::ServerConfig;
pub use connection::{Connection, Flow};
pub use counters::{Counters, ProcessProbe, ProcessUse, TcpStats, UdpStats, add, bump, unbump};
pub use server::{Backend, Capabilities, Server, ServerContext};
pub use session::{Eof, Session, Step, StorageOp};
pub use shutdown::Shutdown;
pub use storage::{
    BadFileName, CommitError, Storage, Stored, TEMP_PREFIX, TEMP_SUFFIX, Upload, validate_file_name,
};
