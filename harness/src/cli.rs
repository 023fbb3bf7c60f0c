//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
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
    /// The language of findings, summaries and reports (default: from
    /// LANG; zh_CN and zh_SG give Simplified Chinese).
    #[arg(long, global = true, value_enum, value_name = "LANG")]
    pub lang: Option<crate::lang::Lang>,
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
    /// Infer the dialect of your own server and client from what crosses
    /// the wire between them; writes dialect.toml for conform --dialect.
    Learn(crate::learn::command::LearnArgs),
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

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Conform(_) => "conform",
            Command::Bench(_) => "bench",
            Command::Explore(_) => "explore",
            Command::Replay(_) => "replay",
            Command::Load(_) => "load",
            Command::Soak(_) => "soak",
            Command::Proxy(_) => "proxy",
            Command::Learn(_) => "learn",
            Command::Merge(_) => "merge",
            Command::Report(_) => "report",
            Command::Gate(_) => "gate",
            Command::Baseline(_) => "baseline",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
            Command::FuzzCorpus { .. } => "fuzz-corpus",
            Command::UdpProbe(_) => "udp-probe",
            Command::Ceiling { .. } => "ceiling",
        }
    }
}

/// Parses the command line. Help and version print and exit 0; a bad flag
/// is one line naming it, for a person at the terminal, and exit 2.
pub fn parse() -> Result<Cli, ExitCode> {
    use clap::Parser as _;
    use clap::error::ErrorKind;
    let e = match Cli::try_parse() {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // clap lists what is missing on the lines after "...:"; they join the
    // first one, up to the blank line before the usage.
    let text = e.render().to_string();
    let line: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    eprintln!(
        "sockbench: {}",
        line.join(" ").trim_start_matches("error: ")
    );
    Err(ExitCode::from(2))
}

/// Logs on stderr at the level `-q`/`-v` ask for (`SOCKBENCH_LOG` overrides),
/// and sets the language of what is printed (`--lang`, else LANG).
pub fn init_logging(cli: &Cli) {
    crate::lang::set(cli.lang.unwrap_or_else(crate::lang::Lang::from_env));
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("SOCKBENCH_LOG", level))
        .format_target(false)
        .init();
}

/// The exit code of a command that failed: 2 for unusable input or a
/// target that cannot be used (most commands, and a back-end this machine
/// cannot serve); 1 where the failure is the run's own (writing reports,
/// serving).
pub fn error_code(command: &str, e: &anyhow::Error) -> u8 {
    match command {
        "serve"
            if matches!(
                e.downcast_ref(),
                Some(Error::Unavailable { .. } | Error::Invalid { .. })
            ) =>
        {
            2
        }
        "serve" | "report" | "baseline" | "completions" | "man" | "fuzz-corpus" | "udp-probe"
        | "ceiling" => 1,
        _ => 2,
    }
}

/// `sockbench serve`: checks the flags (exit 2 on a bad one), then serves.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::serve::serve(args.options()?)?;
    Ok(ExitCode::SUCCESS)
}

/// `sockbench completions SHELL`.
pub fn completions_command(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    completions(shell, &mut text);
    print_all(&text)
}

/// `sockbench man [--dir DIR]`.
pub fn man_command(dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    man(dir, &mut text)?;
    print_all(&text)
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print_all(text: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `sockbench fuzz-corpus DIR`: the golden vectors' streams, one file
/// each, for `just fuzz`.
pub fn fuzz_corpus(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string("fixtures/wire/vectors.json")?;
    let vectors = sockbench_wire::vectors::parse(&text)?;
    std::fs::create_dir_all(dir)?;
    for (i, v) in vectors.iter().enumerate() {
        let bytes = sockbench_wire::vectors::assemble(&v.input)?;
        // The fuzz targets read their first byte as settings: 0 is the protocol's defaults.
        std::fs::write(
            dir.join(format!("vector-{i:02}")),
            [&[0u8][..], &bytes].concat(),
        )?;
    }
    println!("{} seeds in {}", vectors.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `sockbench udp-probe`: one sequenced probe, its summary as one JSON line.
pub fn udp_probe(args: &UdpProbeArgs) -> anyhow::Result<ExitCode> {
    let probe = crate::udp::seq::Probe {
        size: args.size,
        rate: args.rate,
        duration: Duration::from_millis(args.ms),
        drain: Duration::from_millis(200),
    };
    let r = crate::udp::seq::run(args.to, &probe)?;
    println!(
        "{}",
        serde_json::to_string(&crate::schema::udp::ProbeSummary::from(&r))?
    );
    Ok(ExitCode::SUCCESS)
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
            .ok_or_else(|| Error::Invalid {
                input: format!("--max-header {}", self.max_header),
                why: "outside 1..=4294967295".into(),
            })?;
        if self.max_connections == 0 {
            return Err(Error::Invalid {
                input: "--max-connections".into(),
                why: "must be at least 1".into(),
            });
        }
        if self.workers == Some(0) {
            return Err(Error::Invalid {
                input: "--workers".into(),
                why: "must be at least 1".into(),
            });
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
