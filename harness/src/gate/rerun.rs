//! `gate --confirm`: re-measure only the configurations whose timing
//! regressed, with the same build and parameters as the current run, so a
//! regression stands only if it shows twice (noise seldom strikes the same
//! metric twice; a real slowdown does) without repeating the whole bench.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::analysis::gate::{GateVerdict, Row, is_timing};
use crate::bench::context::BenchOptions;
use crate::schema::bench::BenchRun;

/// What a confirming run re-measures: `--only` entries and the back-ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RerunPlan {
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
pub fn plan(rows: &[Row], backend: impl Fn(&str) -> bool) -> RerunPlan {
    let mut p = RerunPlan::default();
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

/// Where a confirming run of `current` (a directory or a results.json) goes.
pub fn out_dir(current: &Path) -> PathBuf {
    if current.is_dir() {
        current.join("confirm")
    } else {
        current.parent().unwrap_or(Path::new(".")).join("confirm")
    }
}

/// Runs the confirming bench in this process, through the bench library
/// with `current`'s parameters; the path of the results.json it wrote.
pub fn run(plan: &RerunPlan, current: &BenchRun, out: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the sockbench executable")?;
    let opts = BenchOptions::repeating(current, &plan.backends, &plan.only, exe)?;
    // Said as the bench flags that would ask for the same run.
    let only: Vec<String> = plan.only.iter().map(|o| format!("--only {o}")).collect();
    println!(
        "gate: confirming run, in this process: bench --backend {} {}",
        plan.backends.join(","),
        only.join(" ")
    );
    let result = crate::bench::runner::run(&opts).context("the confirming bench run failed")?;
    crate::report::write_bench(&result, out, true)?;
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
