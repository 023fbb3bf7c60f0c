//! Server settings shared by every back-end.

use std::time::Duration;

use sockbench_wire::WireConfig;

use crate::counters::ProcessProbe;

/// Everything `sockbench serve` can set, whatever the back-end.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Framing: byte order and limits.
    pub wire: WireConfig,
    /// Flush uploads to disk before acknowledging them.
    pub fsync: bool,
    /// A connection that sends nothing for this long (or whose replies are
    /// not read for this long) is closed.
    pub idle_timeout: Duration,
    /// On SIGTERM, how long frames in progress may take to finish.
    pub grace: Duration,
    /// From a frame's first byte to the end of its header: past it the
    /// connection is closed (a slowloris trickling a header byte by byte
    /// never trips the idle timeout).
    pub header_timeout: Duration,
    /// Most connections served at once (concurrent back-ends); past it new
    /// connections get a `busy` close.
    pub max_connections: usize,
    /// Worker threads for back-ends with a pool (tokio); `None`: one per core.
    pub workers: Option<usize>,
    /// The most reply bytes buffered per connection before reading stops
    /// (and the size of uring's and tokio's per-connection read buffers).
    pub io_buffer: usize,
    /// Bytes asked for per read where the buffer is one per loop (mio,
    /// percore) or per connection thread (blocking, threaded), and by tokio
    /// and uring while an upload's body streams ([`Driver::is_storing`]):
    /// large, so a body comes in few calls. Untouched pages cost no memory.
    ///
    /// [`Driver::is_storing`]: crate::Driver::is_storing
    pub read_size: usize,
    /// Test only: the most bytes written per system call (a deliberately
    /// slow path the CI gate must catch). `None` in real use.
    pub max_write: Option<usize>,
    /// Reads the process's CPU and memory for `stats` (see [`ProcessProbe`]).
    pub process: Option<ProcessProbe>,
}

impl ServerConfig {
    /// Worker threads for back-ends with a pool: `workers`, or one per core.
    pub fn threads(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            wire: WireConfig::default(),
            fsync: true,
            idle_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            max_connections: 16_384,
            workers: None,
            io_buffer: 64 * 1024,
            read_size: 256 * 1024,
            max_write: None,
            process: None,
        }
    }
}
