//! report.md of a soak: the verdict per target, each resource's trend
//! against its threshold, the workload's tally and every wrong reply.

use std::fmt::Write as _;

use anyhow::Result;

use super::Reporter;
use crate::schema::soak::{SoakRun, SoakTarget, Verdict};
use crate::soak::command::rate;

/// The Markdown report.
pub struct Markdown;

impl Reporter<SoakRun> for Markdown {
    fn file_name(&self) -> &str {
        "report.md"
    }

    fn render(&self, run: &SoakRun) -> Result<String> {
        let mut s = String::new();
        writeln!(s, "# sockbench soak\n")?;
        writeln!(
            s,
            "`sockbench {}`: {:.0} s, the first {:.0} s left out of the trends, seed {}. sockbench {}, git {}, {} ({} CPUs), kernel {}.\n",
            run.command,
            run.duration_s,
            run.warmup_s,
            run.seed,
            run.tool_version,
            run.machine.git_revision,
            run.machine.cpu,
            run.machine.cpus,
            run.machine.kernel
        )?;
        writeln!(s, "{}", table(run))?;
        writeln!(
            s,
            "A leak is judged when a resource's Theil-Sen slope passes its limit per hour and its fitted growth over the judged window passes its limit in units (docs/robustness.md).\n"
        )?;
        for t in &run.targets {
            target(&mut s, t)?;
        }
        Ok(s)
    }
}

/// The slope table: one row per target, the three resources' slopes per
/// hour, the verdict. docs/robustness.md carries it.
pub fn table(run: &SoakRun) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| target | RSS / h | fds / h | threads / h | ops | wrong | verdict |\n|---|---|---|---|---|---|---|"
    );
    for t in &run.targets {
        let slope = |r: &str| {
            t.trends
                .iter()
                .find(|x| x.resource == r)
                .map_or("-".into(), |x| {
                    let mark = if x.leak { " **LEAK**" } else { "" };
                    format!("{}{mark}", rate(x.per_hour, &x.unit))
                })
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.name,
            slope("rss"),
            slope("fds"),
            slope("threads"),
            t.ops.values().sum::<u64>(),
            t.wrong_total,
            match t.verdict {
                Verdict::Flat => "flat",
                Verdict::Leak => "LEAK",
                Verdict::Wrong => "WRONG",
                Verdict::Unavailable => "not run",
            }
        );
    }
    s
}

fn target(s: &mut String, t: &SoakTarget) -> Result<()> {
    writeln!(s, "## {}\n", t.name)?;
    writeln!(
        s,
        "{} `{}`, pid {}: **{}**\n",
        t.kind, t.detail, t.pid, t.summary
    )?;
    writeln!(
        s,
        "| resource | from | to | fitted growth | per hour | limit / h | limit growth | leak |\n|---|---|---|---|---|---|---|---|"
    )?;
    for x in &t.trends {
        writeln!(
            s,
            "| {} ({}) | {:.0} | {:.0} | {:+.0} | {:+.0} | {:.0} | {:.0} | {} |",
            x.resource,
            x.unit,
            x.from,
            x.to,
            x.growth,
            x.per_hour,
            x.limit_per_hour,
            x.limit_growth,
            if x.leak { "yes" } else { "no" }
        )?;
    }
    let ops: Vec<String> = t.ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        s,
        "\nWorkload: {}; UDP echoes lost: {}.\n",
        ops.join(", "),
        t.udp_lost
    )?;
    if !t.wrong.is_empty() {
        writeln!(s, "Wrong or missing replies ({} in all):\n", t.wrong_total)?;
        for w in &t.wrong {
            writeln!(s, "- {w}")?;
        }
        writeln!(s)?;
    }
    Ok(())
}
