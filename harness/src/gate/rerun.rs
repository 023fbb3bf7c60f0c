//! `gate --confirm`: re-measure only the configurations whose timing
//! regressed, with the same build and parameters as the current run, so a
//! regression stands only if it shows twice (noise seldom strikes the same
//! metric twice; a real slowdown does) without repeating the whole bench.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::analysis::gate::{GateVerdict, Row, is_timing};
use crate::schema::bench::{BenchRun, Mode};

/// What a confirming run re-measures: `--only` entries and the back-ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// `SCENARIO KEY`, or `codec` for the codec operations.
    pub only: Vec<String>,
    /// Back-end names the regressed metrics were measured on.
    pub backends: Vec<String>,
    /// Regressed targets that are not back-ends: a confirming run cannot
    /// start them again, so their regressions stand.
    pub skipped: Vec<String>,
}

/// The configurations behind the timing regressions in `rows`; `backend`
/// tells which target names are back-ends (the only ones that can be
/// started again).
pub fn plan(rows: &[Row], backend: impl Fn(&str) -> bool) -> Plan {
    let mut p = Plan::default();
    for r in rows
        .iter()
        .filter(|r| r.verdict == GateVerdict::Regression && is_timing(&r.metric))
    {
        let head = r.metric.split(": ").next().unwrap_or("");
        let words: Vec<&str> = head.split(' ').collect();
        let (only, target) = match words.as_slice() {
            ["codec", ..] => ("codec".to_owned(), None),
            [scenario, key, target] => (format!("{scenario} {key}"), Some(*target)),
            _ => continue,
        };
        if let Some(t) = target {
            if !backend(t) {
                push(&mut p.skipped, t.to_owned());
                continue;
            }
            push(&mut p.backends, t.to_owned());
        }
        push(&mut p.only, only);
    }
    p
}

fn push(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// The `sockbench bench` arguments that repeat `current`'s parameters for
/// the planned configurations only.
pub fn bench_args(plan: &Plan, current: &BenchRun, out: &Path) -> Vec<String> {
    let p = &current.parameters;
    // Only back-ends are re-run: no Python peer, no anchors, in any mode.
    let mut a: Vec<String> = ["bench", "--no-progress", "--no-peer", "--no-anchors"]
        .map(String::from)
        .to_vec();
    if current.mode == Mode::Quick {
        a.push("--quick".into());
    }
    for (flag, v) in [
        ("--reps", p.repetitions.to_string()),
        ("--rep-ms", p.rep_ms.to_string()),
        ("--warmup-ms", p.warmup_ms.to_string()),
        ("--upload", p.upload_bytes.to_string()),
        ("--idle", p.many_idle.to_string()),
        ("--slo", p.capacity.slo.flag()),
    ] {
        a.extend([flag.into(), v]);
    }
    if p.pinning == "none" {
        a.push("--no-pin".into());
    }
    if !plan.backends.is_empty() {
        a.extend(["--backend".into(), plan.backends.join(",")]);
    }
    for o in &plan.only {
        a.extend(["--only".into(), o.clone()]);
    }
    a.extend(["--out".into(), out.display().to_string()]);
    a
}

/// Where a confirming run of `current` (a directory or a results.json) goes.
pub fn out_dir(current: &Path) -> PathBuf {
    if current.is_dir() {
        current.join("confirm")
    } else {
        current.parent().unwrap_or(Path::new(".")).join("confirm")
    }
}

/// Runs the confirming bench with this executable; its results.json path.
pub fn run(plan: &Plan, current: &BenchRun, out: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the sockbench executable")?;
    let args = bench_args(plan, current, out);
    println!("gate: confirming run: sockbench {}", args.join(" "));
    let status = Command::new(exe)
        .args(&args)
        .status()
        .context("cannot start the confirming bench run")?;
    // Exit 1 means some measurement failed; the gate judges those itself.
    if !matches!(status.code(), Some(0 | 1)) {
        bail!("the confirming bench run failed ({status})");
    }
    Ok(out.join("results.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, verdict: GateVerdict) -> Row {
        Row {
            metric: metric.into(),
            baseline: String::new(),
            current: String::new(),
            change: None,
            verdict,
            note: String::new(),
        }
    }

    #[test]
    fn plans_only_the_timing_regressions_of_back_ends() {
        let rows = [
            row(
                "echo rr/64B/16c mio: ratio to ceiling",
                GateVerdict::Regression,
            ),
            row(
                "echo rr/64B/16c tokio: ratio to ceiling",
                GateVerdict::Regression,
            ),
            row("udp 64B peer: ratio to ceiling", GateVerdict::Regression),
            row("echo rr/64B/1c mio: ratio to ceiling", GateVerdict::Warning),
            row(
                "echo rr/64B/1c mio: server writes/frame",
                GateVerdict::Regression,
            ),
            row(
                "codec decode one 64 B frame: speed-up over the alternative",
                GateVerdict::Regression,
            ),
        ];
        let p = plan(&rows, |t| t != "peer");
        assert_eq!(p.only, ["echo rr/64B/16c", "codec"]);
        assert_eq!(p.backends, ["mio", "tokio"]);
        assert_eq!(p.skipped, ["peer"]);
    }
}
