//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sockbench_core::ServerConfig;
use sockbench_wire::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, Endian, WireConfig};

use crate::error::Error;
use crate::measure::units::{parse_seconds, parse_size};
use crate::serve::ServeOptions;

/// Conformance and benchmark harness for length-prefixed socket servers.
#[derive(Debug, Parser)]
#[command(name = "sockbench", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one back-end as a server (the process contract of docs/protocol.md).
    Serve(ServeArgs),
    /// Check servers against the protocol: our back-ends or anybody's.
    Conform(crate::conform::command::ConformArgs),
    /// Measure the back-ends on identical scenarios; write reports/latest/.
    Bench(crate::bench::command::BenchArgs),
    /// Model-based testing of any server: generated programs, every reply
    /// predicted by the protocol's model, a divergence shrunk to a repro.
    Explore(crate::explore::command::ExploreArgs),
    /// Run an explore repro.json again: exit 1 while it still diverges.
    Replay(crate::explore::command::ReplayArgs),
    /// Open-loop load against any address: a schedule of intended send
    /// times, latency measured from them (like wrk2 or `iperf3 -c`).
    Load(crate::load::command::LoadArgs),
    /// A mixed workload for a long time, the server's memory, file
    /// descriptors and threads sampled every second: exit 1 on a leak or a
    /// wrong reply.
    Soak(crate::soak::command::SoakArgs),
    /// A TCP proxy that re-segments, delays, throttles or resets the
    /// streams it carries (seeded), for anybody's client and server.
    Proxy(crate::proxy::command::ProxyArgs),
    /// Merge `load --json` results from several hosts into one.
    Merge(crate::load::command::MergeArgs),
    /// Regenerate report.md and index.html from a results.json.
    Report(crate::report::command::ReportArgs),
    /// Compare a run with a baseline; exit 1 on a regression.
    Gate(crate::gate::command::GateArgs),
    /// Refresh reports/baseline/: pooled quick bench runs and a conformance run.
    Baseline(crate::gate::command::BaselineArgs),
    /// Print a shell completion script: `sockbench completions bash >
    /// ~/.local/share/bash-completion/completions/sockbench`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (`sockbench man | man -l -`), or write one page
    /// per subcommand into a directory.
    Man {
        /// Write sockbench.1 and sockbench-SUBCOMMAND.1 here instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write the golden vectors' input streams as a fuzzing seed corpus.
    #[command(hide = true)]
    FuzzCorpus {
        /// Directory to fill.
        dir: std::path::PathBuf,
    },
    /// One sequenced UDP probe, printed as JSON (used by the netem mode).
    #[command(hide = true)]
    UdpProbe(UdpProbeArgs),
    /// The bench's ceilings as a process of their own: an unframed TCP
    /// echo and a raw UDP echo, announced with a ready line like `serve`.
    #[command(hide = true)]
    Ceiling {
        /// `loop` (one event loop), `threads` (a thread per connection) or
        /// `sequential` (one connection at a time).
        #[arg(long, default_value = "loop")]
        strategy: String,
        /// Write back only whole multiples of this many bytes (0: any).
        #[arg(long, default_value_t = 0)]
        align: usize,
    },
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "sockbench", out);
}

/// Writes the top-level man page to `out`, or, with `dir`, every visible
/// command's page into it (the wheel ships those, see pyproject.toml).
pub fn man(dir: Option<&std::path::Path>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match dir {
        None => clap_mangen::Man::new(cmd).render(out),
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)
        }
    }
}

/// Flags of `sockbench udp-probe`.
#[derive(Debug, Args)]
pub struct UdpProbeArgs {
    /// The echo server.
    #[arg(long)]
    pub to: SocketAddr,
    /// Datagram size.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Datagrams per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long to send, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub ms: u64,
}

/// Flags of `sockbench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The back-end: blocking, threaded, mio, tokio, uring or percore.
    #[arg(long, short)]
    pub backend: String,
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub tcp: SocketAddr,
    /// UDP address to bind.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub udp: SocketAddr,
    /// Storage directory for uploads (created if missing); default: a fresh
    /// temporary directory removed at exit.
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// Largest header in bytes (suffixes K, M, G, KiB... allowed).
    #[arg(long, default_value_t = u64::from(DEFAULT_MAX_HEADER), value_parser = parse_size)]
    pub max_header: u64,
    /// Largest body in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, value_parser = parse_size)]
    pub max_body: u64,
    /// Byte order of the length prefix: little or big.
    #[arg(long, default_value = "little")]
    pub endian: Endian,
    /// Do not fsync uploads before acknowledging them.
    #[arg(long)]
    pub no_fsync: bool,
    /// Close a connection silent (or not reading) for this many seconds.
    #[arg(long, default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,
    /// On SIGTERM, seconds that frames in progress may take to finish.
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    pub grace: Duration,
    /// Seconds from a frame's first byte to the end of its header (slowloris).
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,
    /// Most connections served at once (concurrent back-ends).
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Worker threads of pooled back-ends (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Test only: write at most N bytes per system call (a deliberately slow
    /// back-end for the gate's own tests).
    #[arg(long, hide = true)]
    pub test_max_write: Option<usize>,
}

impl ServeArgs {
    /// Checks the flags and turns them into serve options.
    pub fn options(self) -> Result<ServeOptions, Error> {
        let max_header = u32::try_from(self.max_header)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "--max-header {} is outside 1..=4294967295",
                    self.max_header
                ))
            })?;
        if self.max_connections == 0 {
            return Err(Error::Invalid(
                "--max-connections must be at least 1".into(),
            ));
        }
        if self.workers == Some(0) {
            return Err(Error::Invalid("--workers must be at least 1".into()));
        }
        Ok(ServeOptions {
            backend: self.backend,
            tcp: self.tcp,
            udp: self.udp,
            storage: self.storage,
            config: ServerConfig {
                wire: WireConfig {
                    endian: self.endian,
                    max_header,
                    max_body: self.max_body,
                },
                fsync: !self.no_fsync,
                idle_timeout: self.idle_timeout,
                grace: self.grace,
                header_timeout: self.header_timeout,
                max_connections: self.max_connections,
                workers: self.workers,
                max_write: self.test_max_write.filter(|&n| n > 0),
                process: Some(crate::measure::proc::own_use),
                ..ServerConfig::default()
            },
        })
    }
}
