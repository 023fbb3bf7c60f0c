//! `gate --ab [BASE_REV]`: build the base revision (by default the one the
//! baseline was measured at) in a git worktree, run base and head
//! interleaved (A B, B A, A B ...) in one job, and gate on the paired
//! ratios: each round's head over base. Interleaving cancels the drift of a
//! shared machine that separate jobs cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::analysis::gate::{
    GateVerdict, Row, Tolerances, batched, counter_row, exact_counts, not_the_server,
};
use crate::measure::stats::Summary;
use crate::schema::bench::{BenchRun, Status};

fn git(args: &[&str], dir: &Path) -> Result<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("git is needed for --ab")?;
    if !o.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// A worktree removed on drop.
struct Worktree {
    repo: PathBuf,
    path: PathBuf,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let _ = git(
            &[
                "worktree",
                "remove",
                "--force",
                &self.path.display().to_string(),
            ],
            &self.repo,
        );
    }
}

/// Builds `rev`, runs `rounds` interleaved pairs of `bench --quick ARGS`,
/// and compares them pairwise.
pub fn run(
    rev: &str,
    rounds: usize,
    bench_args: &[String],
    tol: Tolerances,
    work: &Path,
) -> Result<Vec<Row>> {
    let repo = PathBuf::from(git(&["rev-parse", "--show-toplevel"], Path::new("."))?);
    let commit = git(
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        &repo,
    )?;
    let path = work.join("base-tree");
    git(
        &[
            "worktree",
            "add",
            "--detach",
            &path.display().to_string(),
            &commit,
        ],
        &repo,
    )?;
    let tree = Worktree {
        repo: repo.clone(),
        path,
    };
    eprintln!(
        "gate --ab: building {rev} ({})",
        &commit[..commit.len().min(12)]
    );
    let base_exe = build_base(&repo, &tree.path, rev)?;
    let head_exe = std::env::current_exe()?;
    let mut pairs: Vec<(BenchRun, BenchRun)> = Vec::new();
    for round in 0..rounds {
        let mut runs = Vec::new();
        // A B, then B A: a machine that drifts one way through the job
        // would otherwise favour whichever build always runs first.
        let mut order = [("base", &base_exe), ("head", &head_exe)];
        if round % 2 == 1 {
            order.reverse();
        }
        for (label, exe) in order {
            eprintln!("gate --ab: round {} of {rounds}, {label}", round + 1);
            let out = work.join(format!("{label}-{round}"));
            let status = Command::new(exe)
                .args(["bench", "--quick", "--no-progress", "--out"])
                .arg(&out)
                .args(bench_args)
                .current_dir(&repo)
                .status()?;
            if !status.success() {
                bail!("the {label} bench of round {} failed", round + 1);
            }
            let text = std::fs::read_to_string(out.join("results.json"))?;
            runs.push((label, serde_json::from_str::<BenchRun>(&text)?));
        }
        let (mut base, mut head) = (None, None);
        for (label, run) in runs {
            if label == "base" {
                base = Some(run);
            } else {
                head = Some(run);
            }
        }
        pairs.push((base.context("base run")?, head.context("head run")?));
    }
    drop(tree);
    Ok(paired(&pairs, tol))
}

/// Builds the worktree's `sockbench` in the repository's own target
/// directory, so the dependencies compiled for head are reused (49 s
/// against 125 s in a fresh one here), and moves the result out to
/// `target/ab-base/` (`sockbench` and `sockbench-codec`). Cargo puts the
/// binaries where head's are, so head's are set aside first and put back
/// whatever happens.
fn build_base(repo: &Path, tree: &Path, rev: &str) -> Result<PathBuf> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    // The codec table's executable goes beside it (revisions before it
    // existed have none).
    let exes = ["sockbench", "sockbench-codec"].map(|n| target.join("release").join(n));
    let kept = exes
        .iter()
        .map(|e| Kept::aside(e))
        .collect::<Result<Vec<_>>>()?;
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "sockbench"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(tree)
        .status()
        .context("cargo is needed for --ab")?;
    if !status.success() {
        bail!("the base revision {rev} does not build");
    }
    let dir = target.join("ab-base");
    std::fs::create_dir_all(&dir)?;
    for exe in exes.iter().filter(|e| e.exists()) {
        let to = dir.join(exe.file_name().unwrap_or_default());
        std::fs::rename(exe, &to).with_context(|| format!("cannot move {}", exe.display()))?;
    }
    drop(kept);
    Ok(dir.join("sockbench"))
}

/// A file moved aside and moved back on drop.
struct Kept {
    path: PathBuf,
    aside: Option<PathBuf>,
}

impl Kept {
    fn aside(path: &Path) -> Result<Kept> {
        let aside = path.with_extension("ab-kept");
        let moved = path.exists();
        if moved {
            std::fs::rename(path, &aside)
                .with_context(|| format!("cannot set {} aside", path.display()))?;
        }
        Ok(Kept {
            path: path.to_owned(),
            aside: moved.then_some(aside),
        })
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(aside) = &self.aside {
            let _ = std::fs::rename(aside, &self.path);
        }
    }
}

/// Per configuration, the rounds' head-over-base ratio: a regression when
/// its median is below 1 - tolerance and no round was faster.
pub fn paired(pairs: &[(BenchRun, BenchRun)], tol: Tolerances) -> Vec<Row> {
    let Some((first, last)) = pairs.first().zip(pairs.last()) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for b in first.0.results.iter().filter(|m| m.status == Status::Ok) {
        if let Some(why) = not_the_server(b) {
            rows.push(Row {
                metric: format!("{} {} {}: head/base", b.scenario, b.key, b.target),
                baseline: "-".into(),
                current: "-".into(),
                change: None,
                verdict: GateVerdict::Ungated,
                note: why.into(),
            });
            continue;
        }
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|(base, head)| {
                let (x, y) = (
                    base.find(b.scenario, &b.key, &b.target)?,
                    head.find(b.scenario, &b.key, &b.target)?,
                );
                let (x, y) = (
                    x.ratio.map_or(x.value.median, |r| r.median),
                    y.ratio.map_or(y.value.median, |r| r.median),
                );
                (x > 0.0).then_some(y / x)
            })
            .collect();
        let s = Summary::of(&ratios);
        let metric = format!(
            "{} {} {}: head/base, paired over {} rounds",
            b.scenario,
            b.key,
            b.target,
            ratios.len()
        );
        let verdict = if s.median < 1.0 - tol.timing && s.max < 1.0 {
            GateVerdict::Regression
        } else if s.median < 1.0 - tol.timing / 2.0 {
            GateVerdict::Warning
        } else if s.median > 1.0 + tol.timing && s.min > 1.0 {
            GateVerdict::Improved
        } else {
            GateVerdict::Pass
        };
        rows.push(Row {
            metric,
            baseline: "1.000".into(),
            current: format!("{:.3} [{:.3}, {:.3}]", s.median, s.min, s.max),
            change: Some(s.median - 1.0),
            verdict,
            note: String::new(),
        });
        if let (Some(bc), Some(hc)) = (
            b.syscalls,
            last.1
                .find(b.scenario, &b.key, &b.target)
                .and_then(|m| m.syscalls),
        ) {
            if bc.server_writes_per_frame > 0.0 {
                let row = counter_row(
                    format!("{} {} {}: server writes/frame", b.scenario, b.key, b.target),
                    bc.server_writes_per_frame,
                    hc.server_writes_per_frame,
                    tol.counter,
                );
                rows.push(if exact_counts(b) { row } else { batched(row) });
            }
        }
    }
    rows
}
