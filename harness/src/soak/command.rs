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
use super::workload::{Plan, Tally, run};
use crate::measure::units::positive_duration;
use crate::report::soak_html::Html;
use crate::report::soak_md::Markdown;
use crate::report::{Json, write_all};
use crate::schema::machine::Machine;
use crate::schema::soak::{SCHEMA, Sample, SoakRun, SoakTarget, SoakVerdict, rate};
use crate::target::{Spawned, TargetSpec, command_for};

/// Flags of `sockbench soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Our back-ends to soak, each started as `sockbench serve`: `all` or names.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "NAME")]
    pub backend: Vec<String>,
    /// A command that obeys the serve contract (repeatable; `LABEL=CMD`).
    #[arg(long, value_name = "CMD")]
    pub spawn: Vec<String>,
    /// A server already listening on this TCP address (with --pid).
    #[arg(long, requires = "pid")]
    pub tcp: Option<std::net::SocketAddr>,
    /// Its UDP address; without it no UDP is sent.
    #[arg(long, requires = "tcp")]
    pub udp: Option<std::net::SocketAddr>,
    /// Its process id, whose resources are sampled.
    #[arg(long, requires = "tcp")]
    pub pid: Option<u32>,
    /// It serves one connection at a time.
    #[arg(long, requires = "tcp")]
    pub not_concurrent: bool,
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
struct Ready {
    spec: TargetSpec,
    unavailable: Option<String>,
    plan: Plan,
    pid: u32,
    server: Option<Spawned>,
    _dir: Option<tempfile::TempDir>,
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
    let address = args.tcp.map(|tcp| TargetSpec::Address {
        label: tcp.to_string(),
        tcp,
        udp: args.udp,
        storage: None,
        pid: args.pid,
        concurrent: !args.not_concurrent,
        wire: WireConfig::default(),
    });
    let specs = crate::target::resolve(&args.backend, &args.spawn, address)?;
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
        if let Some(s) = r.server.as_mut() {
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
    let mut written = write_all(&result, &args.out, &[&Json, &Markdown, &Html])?;
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
/// looks for growth, not disk speed), or checks an address and its pid.
fn start(spec: TargetSpec, exe: &std::path::Path, args: &SoakArgs) -> Result<Ready> {
    let plan = |tcp, udp, concurrent| Plan {
        tcp,
        udp,
        wire: WireConfig::default(),
        concurrent,
        idle: args.idle,
        until: Instant::now(),
        seed: args.seed,
    };
    if let TargetSpec::Address {
        tcp,
        udp,
        pid,
        concurrent,
        ..
    } = &spec
    {
        crate::load::command::preflight(&tcp.to_string(), sockbench_wire::Endian::Little)?;
        let pid = pid.context("--tcp needs --pid")?;
        if procfs::process::Process::new(pid as i32).is_err() {
            bail!("--pid {pid}: no such process");
        }
        let plan = plan(*tcp, *udp, *concurrent);
        return Ok(Ready {
            spec,
            unavailable: None,
            plan,
            pid,
            server: None,
            _dir: None,
        });
    }
    if let TargetSpec::Backend(name) = &spec
        && let Some(Err(why)) = crate::serve::backends::find(name).map(|b| b.probe())
    {
        return Ok(Ready {
            unavailable: Some(format!(
                "not run: the {name} back-end is unavailable here: {why}"
            )),
            plan: plan(([127, 0, 0, 1], 0).into(), None, false),
            spec,
            pid: 0,
            server: None,
            _dir: None,
        });
    }
    let dir = tempfile::Builder::new()
        .prefix("sockbench-soak-")
        .tempdir()?;
    let mut cmd = command_for(&spec, exe).context("not a spawnable target")?;
    cmd.arg("--storage").arg(dir.path()).arg("--no-fsync");
    let server = Spawned::start(cmd, Duration::from_secs(15))
        .with_context(|| format!("{} did not start", spec.name()))?;
    let r = server.ready.clone();
    let pid = if r.pid != 0 { r.pid } else { server.pid() };
    Ok(Ready {
        plan: plan(r.tcp, Some(r.udp), r.concurrent),
        spec,
        unavailable: None,
        pid,
        server: Some(server),
        _dir: Some(dir),
    })
}

/// Soaks one target: the workload and the sampler side by side, then the
/// judgement.
fn soak(r: &mut Ready, start_at: Instant, warmup: Duration) -> SoakTarget {
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
    let tally = Tally::default();
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
                let v = [x.rss_kib, x.fds, x.threads][i];
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
