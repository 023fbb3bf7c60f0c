//! The `sockbench gate` and `sockbench baseline` commands.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::analysis::gate::{GateVerdict, Inputs, Tolerances, compare};
use crate::report::gate_md::markdown;
use crate::schema::bench::BenchRun;
use crate::schema::conform::KnownFailing;

/// Flags of `sockbench gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The baseline: a results.json, or a directory with results.json and/or conform/results.json.
    #[arg(long, default_value = "reports/baseline")]
    pub baseline: PathBuf,
    /// The current run, likewise. Given twice or more (confirming runs), a
    /// timing regression must appear in every one; conformance and counters
    /// are judged on the first. A confirming run may hold only some
    /// scenarios (those that regressed); the rest are judged on the first.
    #[arg(long, default_value = "reports/latest")]
    pub current: Vec<PathBuf>,
    /// Cases expected to fail now (`ID` or `TARGET:ID`); one that passes fails the gate.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Relative drop of a median ratio that can be a regression.
    #[arg(long, default_value_t = 0.25)]
    pub tolerance: f64,
    /// Relative rise of a counter (syscalls, allocations per frame) that is a regression.
    #[arg(long, default_value_t = 0.05)]
    pub counter_tolerance: f64,
    /// State timings without gating them: gate conformance and counters
    /// only (CI on shared machines, where `--ab` gates the timings).
    #[arg(long, conflicts_with_all = ["confirm", "ab"])]
    pub no_timing: bool,
    /// On a timing regression, re-measure just the regressed configurations
    /// (same build, same parameters, into CURRENT/confirm) and let only
    /// what regresses again stand.
    #[arg(long, conflicts_with = "ab")]
    pub confirm: bool,
    /// Write the Markdown summary (for a pull-request comment) here.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Instead: build this revision in a worktree and compare it with this
    /// build, interleaved, on paired ratios (the pull-request mode). Without
    /// REV, the revision the baseline was measured at.
    #[arg(long, value_name = "REV", num_args = 0..=1, default_missing_value = "")]
    pub ab: Option<String>,
    /// Rounds of the A/B comparison (at least 5).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// `bench` flags for the A/B runs, after `--`:
    /// `gate --ab -- --only "echo rr/64B/16c" --backend mio`.
    #[arg(last = true, value_name = "BENCH_ARGS")]
    pub bench_args: Vec<String>,
}

/// Runs the gate: exit 0 pass, 1 regression; an error is unusable input
/// (exit 2).
pub fn main(args: GateArgs) -> Result<ExitCode> {
    run(&args)
}

fn run(args: &GateArgs) -> Result<ExitCode> {
    let tol = Tolerances {
        timing: args.tolerance,
        counter: args.counter_tolerance,
        gate_timing: !args.no_timing,
    };
    let rows = if let Some(rev) = &args.ab {
        if args.rounds < 5 {
            bail!("--rounds {}: at least 5 rounds", args.rounds);
        }
        let rev = if rev.is_empty() {
            baseline_revision(&args.baseline)?
        } else {
            rev.clone()
        };
        let work = tempfile::Builder::new().prefix("sockbench-ab-").tempdir()?;
        super::ab::run(&rev, args.rounds, &args.bench_args, tol, work.path())?
    } else {
        let known = match &args.known_failing {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let catalogue = crate::conform::cases::catalogue();
                KnownFailing::parse(&text, |id| catalogue.iter().any(|c| c.id == id))
                    .with_context(|| format!("{}", p.display()))?
            }
            None => Default::default(),
        };
        let baseline = Inputs::load(&args.baseline)?;
        let mut runs = Vec::new();
        let mut first_bench = None;
        for (i, path) in args.current.iter().enumerate() {
            let current = Inputs::load(path)?;
            if i == 0 {
                first_bench.clone_from(&current.bench);
            }
            // A confirming run re-measures the timings that regressed; it
            // need not repeat conform or the scenarios that passed.
            let base = if i > 0 {
                baseline.narrowed_to(&current)
            } else {
                baseline.clone()
            };
            runs.push(compare(&base, &current, tol, &known)?);
        }
        if args.confirm {
            let first = args.current.first().map(PathBuf::as_path);
            if let (Some(path), Some(rows)) = (first, runs.first()) {
                if let Some(cur) = &first_bench {
                    let plan = super::rerun::plan(rows, |t| {
                        cur.targets
                            .iter()
                            .any(|x| x.name == t && x.kind == "backend")
                    });
                    for t in &plan.skipped {
                        println!(
                            "gate: {t} is not a back-end; its regressions cannot be re-measured"
                        );
                    }
                    if !plan.only.is_empty() {
                        let out = super::rerun::out_dir(path);
                        let file = super::rerun::run(&plan, cur, &out)?;
                        let again = Inputs::load(&file)?;
                        runs.push(compare(&baseline.narrowed_to(&again), &again, tol, &known)?);
                    }
                }
            }
        }
        crate::analysis::gate::confirm(runs)
    };
    let md = markdown(&rows);
    if let Some(p) = &args.summary {
        std::fs::write(p, &md).with_context(|| format!("cannot write {}", p.display()))?;
    }
    for r in rows
        .iter()
        .filter(|r| matches!(r.verdict, GateVerdict::Regression | GateVerdict::Warning))
    {
        let change = r
            .change
            .map_or(String::new(), |c| format!(" ({:+.1}%)", c * 100.0));
        println!(
            "{:<10} {}: {} -> {}{change} {}",
            r.verdict.as_str(),
            r.metric,
            r.baseline,
            r.current,
            r.note
        );
    }
    for (why, n) in crate::analysis::gate::ungated_reasons(&rows) {
        println!("not gated  {n} metric(s): {why}");
    }
    let count = |v: GateVerdict| rows.iter().filter(|r| r.verdict == v).count();
    let regressions = count(GateVerdict::Regression);
    println!(
        "gate: {} metrics, {regressions} regression(s), {} warning(s), {} not gated: {}",
        rows.len(),
        count(GateVerdict::Warning),
        count(GateVerdict::Ungated),
        if regressions == 0 { "pass" } else { "FAIL" }
    );
    Ok(if regressions == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The git revision the baseline's bench results were measured at.
fn baseline_revision(baseline: &std::path::Path) -> Result<String> {
    let inputs = Inputs::load(baseline)?;
    let rev = inputs
        .bench
        .map(|b| b.machine.git_revision)
        .unwrap_or_default();
    if rev.is_empty() {
        bail!(
            "--ab without a revision: {} records no git revision; name one (--ab REV)",
            baseline.display()
        );
    }
    Ok(rev)
}

/// Flags of `sockbench baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Quick bench runs pooled into the baseline.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Where it goes.
    #[arg(long, default_value = "reports/baseline")]
    pub out: PathBuf,
}

/// Refreshes the committed baseline: pooled quick bench runs and a
/// conformance run of every back-end.
pub fn baseline(args: BaselineArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let work = tempfile::Builder::new()
        .prefix("sockbench-baseline-")
        .tempdir()?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        eprintln!("baseline: bench --quick, run {} of {}", i + 1, args.runs);
        let out = work.path().join(format!("run-{i}"));
        let status = Command::new(&exe)
            .args(["bench", "--quick", "--no-progress", "--out"])
            .arg(&out)
            .status()?;
        if !status.success() {
            bail!("bench run {} failed", i + 1);
        }
        runs.push(serde_json::from_str::<BenchRun>(&std::fs::read_to_string(
            out.join("results.json"),
        )?)?);
    }
    let pooled = crate::analysis::pool::pool(runs).context("no runs")?;
    crate::report::write_bench(&pooled, &args.out, true)?;
    eprintln!("baseline: conform --backend all");
    let status = Command::new(&exe)
        .args(["conform", "--backend", "all", "--no-progress", "--out"])
        .arg(args.out.join("conform"))
        .status()?;
    if !status.success() {
        bail!("the conformance run failed: a baseline must pass");
    }
    println!(
        "baseline written to {} ({} pooled runs)",
        args.out.display(),
        args.runs
    );
    Ok(ExitCode::SUCCESS)
}
