//! The conformance report in Markdown: summary, matrix, then the evidence
//! of every failure.

use std::fmt::Write;

use anyhow::Result;

use super::Reporter;
use crate::schema::conform::{CaseRun, ConformRun, Outcome};

/// report.md.
pub struct ConformMarkdown;

impl Reporter<ConformRun> for ConformMarkdown {
    fn file_name(&self) -> &str {
        "report.md"
    }

    fn render(&self, run: &ConformRun) -> Result<String> {
        let mut s = String::new();
        writeln!(s, "# sockbench conform")?;
        writeln!(s)?;
        writeln!(
            s,
            "Seed `{}` (replay with `--seed {}`), {} cases on {} target(s) in {:.1} s; sockbench {}, git {}, {} ({} CPUs, kernel {}).",
            run.seed,
            run.seed,
            run.cases.len(),
            run.targets.len(),
            run.duration_s,
            run.tool_version,
            or_dash(&run.machine.git_revision),
            or_dash(&run.machine.cpu),
            run.machine.cpus,
            or_dash(&run.machine.kernel)
        )?;
        writeln!(s)?;
        writeln!(
            s,
            "| {} | PASS | FAIL | UNSUPPORTED | TIMEOUT | HARNESS-ERROR | {} |",
            crate::lang::tr("ui.target", &[]),
            crate::lang::tr("ui.verdict", &[])
        )?;
        writeln!(s, "|---|---|---|---|---|---|---|")?;
        let counts = run.counts();
        for t in &run.targets {
            let c = counts.get(&t.name).copied().unwrap_or_default();
            let verdict = if c.failing == 0 { "ok" } else { "**fails**" };
            writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                t.name, c.pass, c.fail, c.unsupported, c.timeout, c.harness_error, verdict
            )?;
        }
        for t in &run.targets {
            if let Some(after) = &t.stopped_after {
                writeln!(s)?;
                writeln!(
                    s,
                    "**{}** stopped accepting connections after case {after}: the cases after it are NOT-RUN.",
                    t.name
                )?;
            }
            if let Some(d) = &t.dialect {
                writeln!(s)?;
                writeln!(
                    s,
                    "**{}** was checked in dialect `{d}`: the cases it cannot express are UNSUPPORTED, each with the reason.",
                    t.name
                )?;
            }
            for note in &t.notes {
                writeln!(s)?;
                writeln!(s, "**{}**: {note}.", t.name)?;
            }
        }
        writeln!(s)?;
        s.push_str(&super::findings::markdown(run));
        writeln!(s, "## {}", crate::lang::tr("ui.matrix", &[]))?;
        writeln!(s)?;
        s.push_str(&matrix(run, Rows::Names));
        let notable: Vec<&CaseRun> = run
            .results
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Pass | Outcome::Unsupported) || r.fails_run())
            // Said once per target above, not as evidence per case.
            .filter(|r| r.outcome != Outcome::NotRun)
            .collect();
        if !notable.is_empty() {
            writeln!(s)?;
            writeln!(s, "## Evidence")?;
            for r in notable {
                let info = run.cases.iter().find(|c| c.id == r.case);
                writeln!(s)?;
                writeln!(
                    s,
                    "### {} on {}: {} {}",
                    r.label(),
                    r.target,
                    r.case,
                    info.map_or("", |i| i.name.as_str())
                )?;
                if let Some(i) = info {
                    writeln!(s)?;
                    writeln!(s, "{} Rule: {}", i.title, i.rule)?;
                }
                writeln!(s)?;
                if let Some(e) = &r.expected {
                    writeln!(s, "- expected: {e}")?;
                }
                if let Some(a) = &r.actual {
                    writeln!(s, "- actual: {a}")?;
                }
                if let Some(why) = &r.reason {
                    writeln!(s, "- note: {why}")?;
                }
                if let Some(f) = &r.finding {
                    writeln!(s, "- {}: `{f}`", crate::lang::tr("ui.explained", &[]))?;
                }
                if !r.wire_log.is_empty() {
                    writeln!(s)?;
                    writeln!(s, "```text")?;
                    writeln!(
                        s,
                        "{:>9}  conn  dir       offset      len  first bytes / note",
                        "t ms"
                    )?;
                    for e in r.wire_log.iter().take(60) {
                        let dir = match e.dir {
                            crate::schema::conform::Dir::Sent => "sent",
                            crate::schema::conform::Dir::Received => "received",
                        };
                        let text = if e.note.is_empty() {
                            e.head.clone()
                        } else if e.head.is_empty() {
                            e.note.clone()
                        } else {
                            format!("{} ({})", e.head, e.note)
                        };
                        writeln!(
                            s,
                            "{:>9.2}  {:>4}  {:<8} {:>9} {:>8}  {}",
                            e.t_ms, e.conn, dir, e.offset, e.len, text
                        )?;
                    }
                    let more = r.wire_log.len().saturating_sub(60) + r.wire_log_dropped;
                    if more > 0 {
                        writeln!(s, "… {more} more event(s) in results.json")?;
                    }
                    writeln!(s, "```")?;
                }
                if let Some(tail) = r.stderr_tail.as_deref().filter(|t| !t.trim().is_empty()) {
                    writeln!(s)?;
                    writeln!(s, "Server stderr (end):")?;
                    writeln!(s)?;
                    writeln!(s, "```text")?;
                    for l in tail
                        .lines()
                        .rev()
                        .take(15)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        writeln!(s, "{l}")?;
                    }
                    writeln!(s, "```")?;
                }
            }
        }
        Ok(s)
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// How the rows of [`matrix`] name their case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// `id name`, and a cell that fails the run in bold (report.md).
    Names,
    /// `id` and the name as code, then what the case checks (the
    /// robustness document).
    NamesAndChecks,
}

/// The case-by-target matrix, one table for every conformance document.
pub fn matrix(run: &ConformRun, rows: Rows) -> String {
    let mut s = String::from("| case |");
    if rows == Rows::NamesAndChecks {
        s.push_str(" checks |");
    }
    for t in &run.targets {
        let _ = write!(s, " {} |", t.name);
    }
    s.push_str(if rows == Rows::NamesAndChecks {
        "\n|---|---|"
    } else {
        "\n|---|"
    });
    for _ in &run.targets {
        s.push_str("---|");
    }
    s.push('\n');
    for c in &run.cases {
        match rows {
            Rows::Names => {
                let _ = write!(s, "| {} {} |", c.id, c.name);
            }
            Rows::NamesAndChecks => {
                let _ = write!(
                    s,
                    "| {} `{}` | {} |",
                    c.id,
                    c.name,
                    c.title.replace('|', "\\|")
                );
            }
        }
        for t in &run.targets {
            let cell = run.result(&c.id, &t.name).map_or("-".into(), |r| {
                if rows == Rows::Names && r.fails_run() {
                    format!("**{}**", r.label())
                } else {
                    r.label()
                }
            });
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// The terminal summary.
/// Every case that passes on a quiet machine but not under a condition,
/// said as exactly that.
pub fn only_under(run: &ConformRun) -> Vec<String> {
    let mut out = Vec::new();
    for t in &run.targets {
        let (Some(base), Some(cond)) = (&t.base, &t.condition) else {
            continue;
        };
        for r in run.results.iter().filter(|r| r.target == t.name) {
            if !matches!(r.outcome, Outcome::Fail | Outcome::Timeout) {
                continue;
            }
            if run
                .result(&r.case, base)
                .is_some_and(|q| q.outcome == Outcome::Pass)
            {
                out.push(format!(
                    "{} passes quiet but {}s under {cond} on {base}: {}",
                    r.case,
                    r.outcome.as_str(),
                    r.actual.as_deref().or(r.reason.as_deref()).unwrap_or("")
                ));
            }
        }
    }
    out
}

/// The console summary of a run.
pub fn summary(run: &ConformRun) -> String {
    let mut s = String::new();
    let counts = run.counts();
    let _ = writeln!(
        s,
        "\nseed {} ({} cases, {:.1} s)",
        run.seed,
        run.cases.len(),
        run.duration_s
    );
    // The causes first; each case behind them is in report.md.
    s.push_str(&super::findings::terminal(run));
    for t in &run.targets {
        let c = counts.get(&t.name).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<14} {:>3} PASS {:>3} FAIL {:>3} UNSUPPORTED {:>3} TIMEOUT {:>3} HARNESS-ERROR  {}",
            t.name,
            c.pass,
            c.fail,
            c.unsupported,
            c.timeout,
            c.harness_error,
            if c.failing == 0 { "ok" } else { "FAILS" }
        );
        if let Some(after) = &t.stopped_after {
            let _ = writeln!(
                s,
                "  {}: stopped accepting connections after case {after}; the {} case(s) after it were not run",
                t.name, c.not_run
            );
        }
        if let Some(d) = &t.dialect {
            let _ = writeln!(
                s,
                "  {}: {}",
                t.name,
                crate::lang::tr("ui.dialect", &[("dialect", d)])
            );
        }
        for note in &t.notes {
            let _ = writeln!(s, "  {}: {note}", t.name);
        }
    }
    for line in only_under(run) {
        let _ = writeln!(s, "  {line}");
    }
    // Cases not run are counted above, once per target, not listed; a
    // failure a finding explains is said there.
    for r in run
        .results
        .iter()
        .filter(|r| r.fails_run() && r.outcome != Outcome::NotRun && r.finding.is_none())
    {
        let name = run
            .cases
            .iter()
            .find(|c| c.id == r.case)
            .map_or("", |c| c.name.as_str());
        let _ = writeln!(s, "  {} {} {} on {}", r.label(), r.case, name, r.target);
        if r.outcome == Outcome::Fail {
            let _ = writeln!(
                s,
                "      expected: {}",
                r.expected.as_deref().unwrap_or("-")
            );
            let _ = writeln!(s, "      actual:   {}", r.actual.as_deref().unwrap_or("-"));
        } else if let Some(why) = &r.reason {
            let _ = writeln!(s, "      {why}");
        }
    }
    let _ = writeln!(
        s,
        "{}",
        if run.passed() {
            "conform: ok"
        } else {
            "conform: FAILED"
        }
    );
    s
}
