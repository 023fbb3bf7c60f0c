//! The `sockbench soak` command: start or find the targets, run the
//! workload on all of them at once while sampling each, judge, report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sockbench_wire::WireConfig;

use super::sampler::Sampler;
use super::trend::{LIMITS, judge};
use super::workload::{SoakTally, WorkloadPlan, run};
use crate::measure::units::positive_duration;
use crate::report::write_soak;
use crate::schema::machine::Machine;
use crate::schema::soak::{SCHEMA, Sample, SoakRun, SoakTarget, SoakVerdict, rate};
use crate::target::TargetSpec;
use crate::target::args::{Preflight, TargetArgs};
use crate::target::server::{Launch, Server, StartError};

/// Flags of `sockbench soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// What to soak: our back-ends, serve-contract commands, or a server
    /// already listening (`--tcp` with `--pid`, whose resources are sampled).
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to soak: `20s`, `10m`, `24h`.
    #[arg(long, default_value = "10m", value_parser = positive_duration)]
    pub duration: Duration,
    /// The first part left out of the trends (default: a quarter of the
    /// duration, between 2 s and 60 s).
    #[arg(long, value_parser = positive_duration)]
    pub warmup: Option<Duration>,
    /// Idle connections held open on each concurrent target.
    #[arg(long, default_value_t = 64)]
    pub idle: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for results.json, report.md and index.html.
    #[arg(long, default_value = "reports/latest/soak")]
    pub out: PathBuf,
    /// Also put the slope table into this Markdown file, as its `soak`
    /// block (docs/robustness.md; other blocks are kept).
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// A target ready to soak, or why it cannot run here.
struct Soaked {
    spec: TargetSpec,
    unavailable: Option<String>,
    plan: WorkloadPlan,
    pid: u32,
    server: Option<Server>,
}

/// Runs the command: 0 all flat and correct, 1 a leak or a wrong reply.
/// Unusable input is an error (exit 2), before anything runs.
pub fn main(args: SoakArgs) -> Result<ExitCode> {
    let warmup = args.warmup.unwrap_or_else(|| {
        (args.duration / 4).clamp(Duration::from_secs(2), Duration::from_secs(60))
    });
    if args.duration < warmup + Duration::from_secs(5) {
        bail!(
            "--duration {:?} leaves under 5 s after the {warmup:?} warm-up to judge",
            args.duration
        );
    }
    if args.target.tcp.is_some() && args.target.pid.is_none() {
        bail!("--tcp needs --pid: the soak samples the server's process");
    }
    args.target.contract_only("soak")?;
    let specs = args.target.resolve(Preflight::Echo, &[])?;
    if specs.is_empty() {
        bail!(
            "nothing to soak: give --backend all|NAME..., --spawn 'CMD', or --tcp ADDR --pid PID"
        );
    }
    crate::target::kill_children_on_signal()?;
    crate::measure::proc::raise_fd_limit();
    let exe = std::env::current_exe().context("cannot find the sockbench executable")?;
    let mut ready = Vec::new();
    for spec in specs {
        ready.push(start(spec, &exe, &args)?);
    }
    let start_at = Instant::now();
    let until = start_at + args.duration;
    for r in &mut ready {
        r.plan.until = until;
    }
    eprintln!(
        "sockbench soak: {} target(s) for {:?} (warm-up {warmup:?}), seed {}",
        ready.len(),
        args.duration,
        args.seed
    );
    let bar = progress(&args);
    let targets: Vec<SoakTarget> = std::thread::scope(|s| {
        let handles: Vec<_> = ready
            .iter_mut()
            .map(|r| s.spawn(|| soak(r, start_at, warmup)))
            .collect();
        while Instant::now() < until && !handles.iter().all(|h| h.is_finished()) {
            bar.set_position(start_at.elapsed().as_secs());
            std::thread::sleep(Duration::from_millis(250));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("a soak thread panicked"))
            })
            .collect()
    });
    bar.finish_and_clear();
    for r in &mut ready {
        if let Some(s) = r.server.as_mut().and_then(Server::child) {
            let _ = s.terminate(Duration::from_secs(5));
        }
    }
    let result = SoakRun {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        machine: Machine::probe(),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        duration_s: args.duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        seed: args.seed,
        targets,
    };
    let mut written = write_soak(&result, &args.out, true)?;
    if let Some(path) = &args.table {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let doc = crate::report::splice(
            &old,
            crate::report::ROBUSTNESS_TITLE,
            "soak",
            &crate::report::soak_md::section(&result),
        );
        std::fs::write(path, doc).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path.clone());
    }
    for t in &result.targets {
        println!("  {:<14} {:<5} {}", t.name, verdict(t.verdict), t.summary);
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verdict(v: SoakVerdict) -> &'static str {
    match v {
        SoakVerdict::Flat => "FLAT",
        SoakVerdict::Leak => "LEAK",
        SoakVerdict::Wrong => "WRONG",
        SoakVerdict::Unavailable => "N/A",
    }
}

fn progress(args: &SoakArgs) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(args.duration.as_secs());
    bar.set_style(
        ProgressStyle::with_template("soak {bar:30} {pos}/{len} s")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Starts a spawnable target (with its own storage, no fsync: the soak
/// looks for growth, not disk speed), or checks an address's pid.
fn start(spec: TargetSpec, exe: &std::path::Path, args: &SoakArgs) -> Result<Soaked> {
    let plan = |server: &Server| WorkloadPlan {
        tcp: server.tcp(),
        udp: server.udp(),
        wire: server.wire(),
        concurrent: server.concurrent(),
        idle: args.idle,
        until: Instant::now(),
        seed: args.seed,
    };
    let launch = if spec.spawns() {
        Launch::new("soak").flags(["--no-fsync"])
    } else {
        Launch::new("soak")
    };
    let server = match Server::start(&spec, exe, &launch) {
        Ok(s) => s,
        Err(e @ StartError::Unavailable { .. }) => {
            return Ok(Soaked {
                unavailable: Some(format!("not run: {e}")),
                plan: WorkloadPlan {
                    tcp: ([127, 0, 0, 1], 0).into(),
                    udp: None,
                    wire: WireConfig::default(),
                    concurrent: false,
                    idle: args.idle,
                    until: Instant::now(),
                    seed: args.seed,
                },
                spec,
                pid: 0,
                server: None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let pid = server.pid().context("--tcp needs --pid")?;
    if server.resources().is_none() {
        bail!("--pid {pid}: no such process");
    }
    Ok(Soaked {
        plan: plan(&server),
        spec,
        unavailable: None,
        pid,
        server: Some(server),
    })
}

/// Soaks one target: the workload and the sampler side by side, then the
/// judgement.
fn soak(r: &mut Soaked, start_at: Instant, warmup: Duration) -> SoakTarget {
    let (kind, detail) = r
        .spec
        .describe(&std::env::current_exe().unwrap_or_default());
    if let Some(why) = &r.unavailable {
        return SoakTarget {
            name: r.spec.name(),
            kind: kind.into(),
            detail,
            pid: 0,
            verdict: SoakVerdict::Unavailable,
            summary: why.clone(),
            trends: Vec::new(),
            ops: Default::default(),
            wrong: Vec::new(),
            wrong_total: 0,
            udp_lost: 0,
            samples: Vec::new(),
        };
    }
    let tally = SoakTally::default();
    let sampler = Sampler {
        pid: r.pid,
        tcp: r.plan.tcp,
        wire: r.plan.wire,
        start: start_at,
    };
    let until = r.plan.until;
    let mut samples: Vec<Sample> = Vec::new();
    let mut died_at = None;
    std::thread::scope(|s| {
        s.spawn(|| run(&r.plan, &tally));
        let mut next = start_at;
        while Instant::now() < until {
            match sampler.sample() {
                Some(x) => samples.push(x),
                None => {
                    died_at = Some(start_at.elapsed().as_secs_f64());
                    break;
                }
            }
            next += Duration::from_secs(1);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait.min(until.saturating_duration_since(Instant::now())));
            }
        }
    });
    if died_at.is_none()
        && let Some(server) = r.server.as_mut()
        && !server.is_running()
    {
        died_at = Some(start_at.elapsed().as_secs_f64());
    }
    let judged: Vec<&Sample> = samples
        .iter()
        .filter(|x| x.t_s >= warmup.as_secs_f64())
        .collect();
    let series = |i: usize| -> Vec<(f64, f64)> {
        judged
            .iter()
            .map(|x| {
                let v = [x.rss_kib, x.fds, x.threads, x.children][i];
                (x.t_s, v as f64)
            })
            .collect()
    };
    let trends: Vec<_> = LIMITS
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let points = series(i);
            let mut t = judge(l, &points)?;
            // How soon this soak could have said so: the first prefix of the
            // judged window that already passes both limits.
            if t.leak {
                t.detected_s = (3..=points.len())
                    .find(|&k| judge(l, &points[..k]).is_some_and(|x| x.leak))
                    .map(|k| points[k - 1].0);
            }
            Some(t)
        })
        .collect();
    let (mut wrong, mut wrong_total) = tally.wrong_replies();
    if let Some(t) = died_at {
        wrong.insert(0, format!("the server exited at {t:.1} s"));
        wrong_total += 1;
    }
    let leaks: Vec<String> = trends
        .iter()
        .filter(|t| t.leak)
        .map(|t| {
            format!(
                "{} grows {} per hour ({:+.0} {} over the judged {:.0} s)",
                t.resource,
                rate(t.per_hour, &t.unit),
                t.growth,
                t.unit,
                judged.last().map_or(0.0, |l| l.t_s) - judged.first().map_or(0.0, |f| f.t_s)
            )
        })
        .collect();
    let (verdict, summary) = if wrong_total > 0 {
        (
            SoakVerdict::Wrong,
            format!(
                "{wrong_total} wrong or missing repl{}; first: {}",
                if wrong_total == 1 { "y" } else { "ies" },
                wrong.first().map_or("", String::as_str)
            ),
        )
    } else if !leaks.is_empty() {
        (SoakVerdict::Leak, format!("leak: {}", leaks.join("; ")))
    } else if trends.len() < LIMITS.len() {
        (
            SoakVerdict::Wrong,
            "too few samples after the warm-up to judge".into(),
        )
    } else {
        (SoakVerdict::Flat, "flat, every reply correct".into())
    };
    SoakTarget {
        name: r.spec.name(),
        kind: kind.into(),
        detail,
        pid: r.pid,
        verdict,
        summary,
        trends,
        ops: tally.ops(),
        wrong,
        wrong_total,
        udp_lost: tally.udp_lost(),
        samples,
    }
}
