//! The `sockbench bench` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::context::BenchOptions;
use super::context::Family;
use super::runner::run;
use crate::schema::bench::{CapacityParams, Mode, Parameters, Placement, Status};
use crate::schema::load::{Plan, Slo};
use crate::target::TargetSpec;
use crate::target::args::{Preflight, TargetArgs};

/// The classic-style peer measured in the full run.
const PEER: &str = "fixtures/peers/server.py";

/// Flags of `sockbench bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The short run CI uses (about 4 minutes): shorter repetitions, a
    /// 64 MiB upload instead of 1 GiB, no Python peer.
    #[arg(long)]
    pub quick: bool,
    /// What to measure (default: every back-end). A `--tcp` server may run
    /// on another host: CPU figures then come from its `stats` reply's
    /// optional `process` object, `-` without one.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The latency target of the capacity search: p50, p90, p99 or p999 and
    /// a bound in us or ms.
    #[arg(long, default_value = "p99=1ms")]
    pub slo: Slo,
    /// Leave the Python peer out of the full run.
    #[arg(long)]
    pub no_peer: bool,
    /// Scenario families to run (default: all): capacity, echo, upload, udp, many, codec.
    #[arg(long, value_delimiter = ',', value_parser = |s: &str| s.parse::<Family>())]
    pub scenario: Vec<Family>,
    /// Only this configuration, as the report names it: `SCENARIO KEY`
    /// (`echo rr/64B/16c`), or a whole `SCENARIO`; repeatable. What the
    /// gate's confirming run uses to re-measure only what regressed.
    #[arg(long, value_name = "SCENARIO KEY")]
    pub only: Vec<String>,
    /// Where results.json, report.md and index.html go.
    #[arg(long, default_value = "reports/latest")]
    pub out: PathBuf,
    /// Seed of the payloads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Measured repetitions (at least 5).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Length of a repetition in milliseconds.
    #[arg(long)]
    pub rep_ms: Option<u64>,
    /// Warm-up in milliseconds.
    #[arg(long)]
    pub warmup_ms: Option<u64>,
    /// Upload size (suffixes K, M, G allowed).
    #[arg(long, value_parser = crate::measure::units::parse_size)]
    pub upload: Option<u64>,
    /// Idle connections of the many-connections scenario.
    #[arg(long)]
    pub idle: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Do not pin the load driver and the server to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Run iperf3 and sockperf beside the ceilings (the default in a full
    /// run; a tool not installed is one line in the report).
    #[arg(long, conflicts_with = "no_anchors")]
    pub anchors: bool,
    /// Do not run iperf3 and sockperf, even in a full run.
    #[arg(long)]
    pub no_anchors: bool,
    /// Run the UDP probe across two network namespaces impaired by netem
    /// (`loss=1%,delay=5ms,jitter=1ms,reorder=2%`, or `none`) beside the
    /// relay, instead of the scenarios. Needs root, iproute2 and the netem qdisc.
    #[arg(long, value_name = "SPEC")]
    pub netem: Option<crate::schema::udp::NetemSpec>,
}

/// The parameters of a quick or full run.
pub fn parameters(quick: bool) -> Parameters {
    Parameters {
        warmup_ms: if quick { 50 } else { 300 },
        rep_ms: if quick { 50 } else { 400 },
        repetitions: 5,
        echo_bodies: vec![0, 64, 1024, 16 * 1024],
        echo_connections: vec![1, 16, 256],
        // 256 KiB: 15 frames of 16 KiB in flight. With 64 KiB (3 of them)
        // one connection was bound by its round trips, not by the server,
        // and a Python server using twice our CPU per frame tied with ours.
        pipeline_window_bytes: 256 * 1024,
        pipeline_max_depth: 32,
        upload_bytes: if quick { 64 << 20 } else { 1 << 30 },
        udp_sizes: vec![64, 1472],
        udp_start_rate: 20_000,
        udp_loss_onset: 0.001,
        many_idle: 10_000,
        many_active: 64,
        pinning: Placement::Unpinned,
        capacity: CapacityParams {
            bodies: vec![64, 16 * 1024],
            connections: vec![16, 256],
            slo: Slo::default(),
            plan: Plan {
                start_rate: 1000.0,
                factor: if quick { 4.0 } else { 2.0 },
                max_rate: 2e6,
                bisect: if quick { 2 } else { 3 },
                confirm: 2,
            },
            warmup_ms: if quick { 40 } else { 100 },
            windows: if quick { 3 } else { 5 },
            window_ms: if quick { 80 } else { 100 },
            timeout_ms: 1000,
        },
    }
}

/// Runs the command.
pub fn main(args: BenchArgs) -> Result<ExitCode> {
    let mut params = parameters(args.quick);
    if let Some(n) = args.reps {
        if n < 5 {
            bail!("--reps {n}: at least five repetitions are needed for a median and spread");
        }
        params.repetitions = n;
    }
    params.rep_ms = args.rep_ms.unwrap_or(params.rep_ms);
    params.warmup_ms = args.warmup_ms.unwrap_or(params.warmup_ms);
    params.upload_bytes = args.upload.unwrap_or(params.upload_bytes);
    params.many_idle = args.idle.unwrap_or(params.many_idle);
    params.capacity.slo = args.slo;
    let pin = if args.no_pin {
        None
    } else {
        crate::measure::pin::Pinning::detect()
    };
    params.pinning = pin.map_or(Placement::Unpinned, |p| Placement::Pinned(p.describe()));
    let scenarios = if args.netem.is_some() {
        args.scenario.clone()
    } else if args.scenario.is_empty() && !args.only.is_empty() {
        let mut named = args
            .only
            .iter()
            .map(|o| o.split(' ').next().unwrap_or("").parse::<Family>())
            .collect::<Result<Vec<_>, _>>()?;
        named.sort();
        named.dedup();
        named
    } else if args.scenario.is_empty() {
        Family::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    if args.netem.is_some() {
        crate::udp::netem::preflight().map_err(|e| anyhow::anyhow!(e))?;
    }
    let targets = targets(&args)?;
    crate::target::kill_children_on_signal()?;
    crate::measure::proc::raise_fd_limit();
    let opts = BenchOptions {
        mode: if args.quick { Mode::Quick } else { Mode::Full },
        targets,
        scenarios,
        params,
        seed: args.seed,
        exe: std::env::current_exe().context("cannot find the sockbench executable")?,
        progress: !args.no_progress,
        netem: args.netem,
        pin,
        anchors: args.anchors || (!args.quick && !args.no_anchors),
        only: args.only.clone(),
    };
    let names: Vec<String> = opts.targets.iter().map(TargetSpec::name).collect();
    eprintln!(
        "sockbench bench ({}): {} on {}",
        opts.mode,
        opts.scenarios
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", "),
        names.join(", ")
    );
    let result = run(&opts)?;
    for o in &opts.only {
        let (s, k) = o.split_once(' ').unwrap_or((o, ""));
        let hit = result
            .results
            .iter()
            .any(|m| m.scenario.as_str() == s && (k.is_empty() || m.key == k))
            || (s == "codec" && !result.codec.is_empty());
        if !hit {
            bail!(
                "--only {o:?}: no such configuration (name it as the report does: \"echo rr/64B/16c\")"
            );
        }
    }
    let written = crate::report::write_bench(&result, &args.out, true)?;
    print!("{}", crate::report::bench_md::summary(&result));
    for p in written {
        println!("wrote {}", p.display());
    }
    let errors = result
        .results
        .iter()
        .filter(|m| m.status == Status::Error)
        .count();
    if errors > 0 {
        eprintln!("sockbench bench: {errors} measurement(s) failed; see the report");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn targets(args: &BenchArgs) -> Result<Vec<TargetSpec>> {
    // All back-ends unless the run names its targets otherwise.
    args.target.contract_only("bench")?;
    let mut out = args.target.resolve(Preflight::Echo, &["all"])?;
    if !args.quick
        && !args.no_peer
        && args.target.spawn.is_empty()
        && args.target.tcp.is_none()
        && args.netem.is_none()
    {
        if Path::new(PEER).exists() {
            out.push(TargetSpec::Spawn {
                label: "python-peer".into(),
                argv: vec!["python3".into(), PEER.into()],
            });
        } else {
            eprintln!(
                "sockbench bench: {PEER} not found (run from the repository root); the Python peer is left out"
            );
        }
    }
    Ok(out)
}
