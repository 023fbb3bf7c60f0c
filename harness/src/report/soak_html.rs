//! index.html of a soak: per target, the verdict and a time series per
//! resource with its fitted trend dashed over the judged window.

use std::fmt::Write as _;

use anyhow::Result;

use super::charts::{Line, series};
use super::{Reporter, SELF_CHECK, escape};
use crate::schema::soak::{Sample, SoakRun, SoakTarget};

/// The HTML report.
pub struct SoakHtml;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}figure{margin:1em 0}svg{max-width:100%;height:auto}.LEAK,.WRONG{color:#b00;font-weight:bold}";

impl Reporter<SoakRun> for SoakHtml {
    fn file_name(&self) -> &str {
        "index.html"
    }

    fn render(&self, run: &SoakRun) -> Result<String> {
        let mut s = String::new();
        writeln!(
            s,
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>sockbench soak</title><style>{STYLE}</style></head><body>"
        )?;
        writeln!(s, "<h1>sockbench soak</h1>")?;
        writeln!(
            s,
            "<p><code>sockbench {}</code> &middot; {:.0} s, warm-up {:.0} s &middot; seed {} &middot; sockbench {} &middot; git {} &middot; {} ({} CPUs)</p>",
            escape(&run.command),
            run.duration_s,
            run.warmup_s,
            run.seed,
            escape(&run.tool_version),
            escape(&run.machine.git_revision),
            escape(&run.machine.cpu),
            run.machine.cpus
        )?;
        writeln!(
            s,
            "<table><tr><th>target</th><th>verdict</th><th>summary</th><th>ops</th><th>wrong</th></tr>"
        )?;
        for t in &run.targets {
            let v = format!("{:?}", t.verdict).to_uppercase();
            writeln!(
                s,
                "<tr><td><a href=\"#{0}\">{0}</a></td><td class={v}>{v}</td><td>{1}</td><td>{2}</td><td>{3}</td></tr>",
                escape(&t.name),
                escape(&t.summary),
                t.ops.values().sum::<u64>(),
                t.wrong_total
            )?;
        }
        writeln!(s, "</table>")?;
        for t in &run.targets {
            target(&mut s, t, run.warmup_s)?;
        }
        writeln!(s, "{SELF_CHECK}</body></html>")?;
        Ok(s)
    }
}

fn target(s: &mut String, t: &SoakTarget, warmup_s: f64) -> Result<()> {
    writeln!(s, "<h2 id=\"{0}\">{0}</h2>", escape(&t.name))?;
    writeln!(
        s,
        "<p>{} <code>{}</code>, pid {}: <b>{}</b></p>",
        escape(&t.kind),
        escape(&t.detail),
        t.pid,
        escape(&t.summary)
    )?;
    type Value = fn(&Sample) -> f64;
    let charts: [(&str, &str, Value); 4] = [
        ("rss", "RSS (MiB)", |x| x.rss_kib as f64 / 1024.0),
        ("fds", "open file descriptors", |x| x.fds as f64),
        ("threads", "threads", |x| x.threads as f64),
        ("children", "child processes", |x| x.children as f64),
    ];
    for (resource, label, value) in charts {
        let points: Vec<(f64, f64)> = t.samples.iter().map(|x| (x.t_s, value(x))).collect();
        let scale = if resource == "rss" { 1024.0 } else { 1.0 };
        let fit = t.trends.iter().find(|x| x.resource == resource).map(|x| {
            let end = t.samples.last().map_or(warmup_s, |l| l.t_s);
            ((warmup_s, x.from / scale), (end, x.to / scale))
        });
        let line: Line = (t.name.clone(), points);
        let svg = series(
            &format!("{}: {label}", t.name),
            &[line],
            &[fit],
            "seconds",
            label,
        )?;
        writeln!(s, "<figure>{svg}</figure>")?;
    }
    if !t.wrong.is_empty() {
        writeln!(
            s,
            "<p>Wrong or missing replies ({} in all):</p><ul>",
            t.wrong_total
        )?;
        for w in &t.wrong {
            writeln!(s, "<li>{}</li>", escape(w))?;
        }
        writeln!(s, "</ul>")?;
    }
    Ok(())
}
