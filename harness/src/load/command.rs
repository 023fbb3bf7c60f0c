//! `sockbench load` (one open-loop run against any address, like wrk2 or
//! `iperf3 -c`) and `sockbench merge` (runs from several hosts as one).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::engine::{self, OpenLoad, Phases};
use super::schedule::Arrival;
use super::summary::{Asked, LoadSummary};
use crate::dialect::Dialect;
use crate::measure::units::{
    at_least_one, duration, positive_duration, positive_rate, positive_size,
};
use crate::peer::frames::echo_frame;
use crate::target::args::{Preflight, TargetArgs};
use crate::target::server::{Launch, Server};

/// Flags of `sockbench load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The server: `--tcp HOST:PORT` (as wrk2 or `iperf3 -c` take it), or
    /// one of ours or a serve-contract command, started for the run.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Offered requests per second, over all connections.
    #[arg(long, allow_hyphen_values = true, value_parser = positive_rate)]
    pub rate: f64,
    /// How long to measure: `10s`, `500ms`, `2m` (a bare number is seconds).
    #[arg(long, default_value = "10s", allow_hyphen_values = true, value_parser = positive_duration)]
    pub duration: Duration,
    /// Connections; the rate is split evenly over them.
    #[arg(long, default_value_t = 16, allow_hyphen_values = true, value_parser = at_least_one)]
    pub connections: usize,
    /// Body bytes of each echo request (suffixes K, M allowed).
    #[arg(long, default_value = "64", allow_hyphen_values = true, value_parser = positive_size)]
    pub body: usize,
    /// How requests arrive: evenly spaced, or a Poisson process.
    #[arg(long, value_enum, default_value_t = Arrival::Constant)]
    pub arrival: Arrival,
    /// Most requests in flight per connection; past it a request waits
    /// (and its latency still counts from its intended time).
    #[arg(long, default_value_t = 32, allow_hyphen_values = true, value_parser = at_least_one)]
    pub pipeline: usize,
    /// Sent before the measured duration and not recorded.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub warmup: Duration,
    /// A request with no reply this long after its intended send time is a timeout.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// Sleep until each send instead of busy-polling the last 2 ms (saves the
    /// driver's core; on a VM, sleeping threads wake late and the driver lags).
    #[arg(long)]
    pub no_spin: bool,
    /// Seed of the payload and of Poisson gaps.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print exactly one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the latency distribution (HdrHistogram percentile text, µs) to FILE.
    #[arg(long, value_name = "FILE")]
    pub histogram: Option<PathBuf>,
}

/// Flags of `sockbench merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// `sockbench load --json` outputs, one per host.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write the merged latency distribution to FILE.
    #[arg(long, value_name = "FILE")]
    pub histogram: Option<PathBuf>,
}

/// The one server to load: an address that answers an echo, or one
/// started for the run (without fsync; the load is echoes). In another
/// dialect than the contract's, the address is only checked to listen:
/// the load's first echo is the check.
fn start(target: &TargetArgs, dialect: &Dialect) -> anyhow::Result<Server> {
    let check = if dialect.contract {
        Preflight::Echo
    } else {
        Preflight::Reach
    };
    let spec = target.one(check, "load")?;
    let launch = if spec.spawns() && !spec.is_plain() {
        Launch::new("load").flags(["--no-fsync"])
    } else {
        Launch::new("load")
    };
    let exe = std::env::current_exe()?;
    let server = Server::start(&spec, &exe, &launch)?;
    if !server.has_tcp() {
        anyhow::bail!("load sends TCP echoes; the target is UDP-only");
    }
    Ok(server)
}

/// The request of the load: the contract's echo frame, or the dialect's,
/// whose echo must come back as the same bytes (the engine compares them).
fn request(
    args: &LoadArgs,
    dialect: &Dialect,
    endian: sockbench_wire::Endian,
) -> anyhow::Result<Vec<u8>> {
    if dialect.contract {
        return Ok(echo_frame(args.body, args.seed, endian));
    }
    if dialect.echo != crate::dialect::Echo::Verbatim || !dialect.many_frames() {
        anyhow::bail!(
            "load sends many echoes per connection and compares each reply with its request; {} (it needs echo = \"verbatim\" and many frames per connection)",
            dialect.summary()
        );
    }
    let body: Vec<u8> = (0..args.body).map(|i| b'a' + (i % 26) as u8).collect();
    crate::dialect::codec::echo(dialect, &body)
        .ok_or_else(|| anyhow::anyhow!("{}: no echo request", dialect.summary()))
}

/// Runs `sockbench load`.
pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    // Held until the run ends: a server we started stops with it.
    let dialect = args.target.dialect()?;
    let server = start(&args.target, &dialect)?;
    let (addr, endian) = (server.tcp(), server.wire().endian);
    crate::measure::proc::raise_fd_limit();
    let load = OpenLoad {
        stop: None,
        addr,
        frame: request(&args, &dialect, endian)?,
        conns: args.connections,
        rate: args.rate,
        arrival: args.arrival,
        window: args.pipeline,
        seed: args.seed,
        timeout: args.timeout,
        spin: if args.no_spin {
            Duration::ZERO
        } else {
            engine::SPIN
        },
    };
    let phases = Phases {
        warmup: args.warmup,
        windows: vec![args.duration],
    };
    if !args.json {
        eprintln!(
            "sockbench load: {addr}, {:.0}/s {} over {} connections for {:?} (after {:?} of warm-up)",
            args.rate,
            args.arrival.as_str(),
            args.connections,
            args.duration,
            args.warmup
        );
    }
    let result = engine::run(&load, &phases, &mut |_| {})?;
    for f in &result.failures {
        eprintln!("sockbench load: {f}");
    }
    let asked = Asked {
        target: addr.to_string(),
        rate: args.rate,
        connections: args.connections,
        body: args.body,
        arrival: args.arrival.as_str().into(),
        pipeline: args.pipeline,
    };
    let summary = LoadSummary::of(&asked, &result);
    Ok(emit(&summary, args.json, args.histogram.as_deref()))
}

/// Runs `sockbench merge`.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut parts = Vec::new();
    for f in &args.files {
        let part = std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<LoadSummary>(&t).map_err(|e| e.to_string()));
        match part {
            Ok(p) => parts.push(p),
            Err(e) => {
                anyhow::bail!("{}: not a `sockbench load --json` output: {e}", f.display());
            }
        }
    }
    let m = LoadSummary::merge(&parts)?;
    eprintln!("{}", m.human());
    Ok(emit(&m, true, args.histogram.as_deref()))
}

fn emit(s: &LoadSummary, json: bool, histogram: Option<&std::path::Path>) -> ExitCode {
    if let Some(path) = histogram {
        let text = s
            .latency_histogram()
            .map(|h| percentile_text(&h))
            .map_err(|e| e.to_string())
            .and_then(|t| std::fs::write(path, t).map_err(|e| e.to_string()));
        if let Err(e) = text {
            eprintln!("sockbench: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let mut out = std::io::stdout().lock();
    let text = if json {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        s.human()
    };
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// The percentile distribution in HdrHistogram's text format (the one its
/// plotter reads), values in µs.
pub fn percentile_text(h: &hdrhistogram::Histogram<u64>) -> String {
    use std::fmt::Write;
    let mut s = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    for v in h.iter_quantiles(1) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:.2}", 1.0 / (1.0 - q))
        } else {
            "inf".into()
        };
        let _ = writeln!(
            s,
            "{:12.3} {:14.12} {:10} {:>14}",
            v.value_iterated_to() as f64,
            q,
            v.count_since_last_iteration(),
            inv
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]",
        h.mean(),
        h.stdev(),
        h.max() as f64,
        h.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_text_ends_at_the_max() {
        let mut h = engine::us_histogram();
        for v in [10u64, 20, 30, 1000] {
            h.record(v).unwrap();
        }
        let t = percentile_text(&h);
        assert!(t.contains("Total count    =            4"), "{t}");
        assert!(t.lines().filter(|l| l.contains("inf")).count() >= 1, "{t}");
    }
}
