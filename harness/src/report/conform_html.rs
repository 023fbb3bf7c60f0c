//! The conformance report as one self-contained HTML page: the matrix,
//! colour-coded, each non-passing cell linked to its evidence (expected vs
//! actual, the wire log, the server's stderr), so a failure can be
//! understood without rerunning anything.

use std::fmt::Write;

use anyhow::Result;

use super::{Reporter, escape};
use crate::schema::conform::Dir;
use crate::schema::conform::{CaseRun, ConformRun, Outcome};

/// index.html.
pub struct ConformHtml;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.c{text-align:center;font-weight:600;font-size:12px}
.PASS{background:#d9f2d9}.FAIL{background:#f8caca}.UNSUPPORTED{background:#eee;color:#777}
.TIMEOUT{background:#fde2b8}.HARNESS-ERROR{background:#e3d2f3}.known{outline:2px dashed #999}
a{color:inherit}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
.evidence{border-top:2px solid #ddd;margin-top:2em;padding-top:.5em}
.finding{border-left:4px solid #d33;padding:.2em 1em;margin:1em 0;background:#fff6f6}
.ok{color:#1a7f37;font-weight:600}
.hex{font-family:monospace;font-size:12px;word-break:break-all}
.cat td{background:#fafafa;font-weight:600}
";

impl Reporter<ConformRun> for ConformHtml {
    fn file_name(&self) -> &str {
        "index.html"
    }

    fn render(&self, run: &ConformRun) -> Result<String> {
        let mut s = String::new();
        writeln!(
            s,
            "<!doctype html><html lang={}><head><meta charset=utf-8><title>sockbench conform</title><style>{STYLE}</style></head><body>",
            super::findings::html_lang()
        )?;
        writeln!(s, "<h1>sockbench conform</h1>")?;
        writeln!(
            s,
            "<p>Seed <code>{}</code> (replay with <code>--seed {}</code>) &middot; {} cases &middot; {} target(s) &middot; {:.1} s &middot; sockbench {} &middot; git {} &middot; {} ({} CPUs), kernel {}</p>",
            run.seed,
            run.seed,
            run.cases.len(),
            run.targets.len(),
            run.duration_s,
            escape(&run.tool_version),
            escape(&run.machine.git_revision),
            escape(&run.machine.cpu),
            run.machine.cpus,
            escape(&run.machine.kernel)
        )?;
        writeln!(
            s,
            "<table><tr><th>{}</th><th>{}</th><th>PASS</th><th>FAIL</th><th>UNSUPPORTED</th><th>TIMEOUT</th><th>HARNESS-ERROR</th></tr>",
            escape(&crate::lang::tr("ui.target", &[])),
            escape(&crate::lang::tr("ui.command", &[]))
        )?;
        let counts = run.counts();
        for t in &run.targets {
            let c = counts.get(&t.name).copied().unwrap_or_default();
            let cls = if c.failing == 0 { "PASS" } else { "FAIL" };
            writeln!(
                s,
                "<tr><td class={cls}>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&t.name),
                escape(&t.detail),
                c.pass,
                c.fail,
                c.unsupported,
                c.timeout,
                c.harness_error
            )?;
        }
        writeln!(s, "</table>")?;
        s.push_str(&super::findings::html(run));
        writeln!(
            s,
            "<h2>{}</h2><table><tr><th>{}</th><th>{}</th>",
            escape(&crate::lang::tr("ui.matrix", &[])),
            escape(&crate::lang::tr("ui.case", &[])),
            escape(&crate::lang::tr("ui.checks", &[]))
        )?;
        for t in &run.targets {
            write!(s, "<th>{}</th>", escape(&t.name))?;
        }
        writeln!(s, "</tr>")?;
        let mut category = "";
        for c in &run.cases {
            if c.category != category {
                category = &c.category;
                writeln!(
                    s,
                    "<tr class=cat><td colspan={}>{}</td></tr>",
                    run.targets.len() + 2,
                    escape(category)
                )?;
            }
            write!(
                s,
                "<tr><td><b>{}</b> {}</td><td title=\"{}\">{}</td>",
                escape(&c.id),
                escape(&c.name),
                escape(&c.rule),
                escape(&c.title)
            )?;
            for t in &run.targets {
                match run.result(&c.id, &t.name) {
                    Some(r) => {
                        let known = if r.known_failing { " known" } else { "" };
                        let label = escape(&r.label());
                        let cls = r.outcome.as_str();
                        if r.outcome == Outcome::Pass && !r.fails_run() {
                            write!(s, "<td class=\"c {cls}{known}\">{label}</td>")?;
                        } else {
                            let cause = r.finding.as_deref().map_or(String::new(), |f| {
                                format!("{} {f}: ", crate::lang::tr("ui.explained", &[]))
                            });
                            let title = escape(&format!(
                                "{cause}{}",
                                r.reason.as_deref().or(r.actual.as_deref()).unwrap_or("")
                            ));
                            write!(
                                s,
                                "<td class=\"c {cls}{known}\" title=\"{title}\"><a href=\"#{}\">{label}</a></td>",
                                anchor(r)
                            )?;
                        }
                    }
                    None => write!(s, "<td class=c>-</td>")?,
                }
            }
            writeln!(s, "</tr>")?;
        }
        writeln!(s, "</table>")?;
        for r in run
            .results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass || r.fails_run())
            .filter(|r| r.outcome != Outcome::NotRun)
        {
            evidence(&mut s, run, r)?;
        }
        writeln!(s, "{}</body></html>", super::SELF_CHECK)?;
        Ok(s)
    }
}

fn anchor(r: &CaseRun) -> String {
    super::findings::anchor_of(&r.target, &r.case)
}

fn evidence(s: &mut String, run: &ConformRun, r: &CaseRun) -> Result<()> {
    let info = run.cases.iter().find(|c| c.id == r.case);
    writeln!(s, "<div class=evidence id=\"{}\">", anchor(r))?;
    writeln!(
        s,
        "<h3><span class=\"{}\">{}</span> &nbsp;{} {} on {}</h3>",
        r.outcome.as_str(),
        escape(&r.label()),
        escape(&r.case),
        escape(info.map_or("", |i| i.name.as_str())),
        escape(&r.target)
    )?;
    if let Some(i) = info {
        writeln!(
            s,
            "<p>{}<br><i>Rule:</i> {}</p>",
            escape(&i.title),
            escape(&i.rule)
        )?;
    }
    writeln!(s, "<table>")?;
    for (k, v) in [
        ("expected", &r.expected),
        ("actual", &r.actual),
        ("note", &r.reason),
    ] {
        if let Some(v) = v {
            writeln!(s, "<tr><th>{k}</th><td>{}</td></tr>", escape(v))?;
        }
    }
    writeln!(
        s,
        "<tr><th>time</th><td>{:.1} ms</td></tr></table>",
        r.duration_ms
    )?;
    if !r.wire_log.is_empty() {
        writeln!(
            s,
            "<p>Wire log: every write and read of the case, as seen by the harness (offsets per direction of each connection; connection 0 is UDP).</p>"
        )?;
        writeln!(
            s,
            "<table><tr><th>t (ms)</th><th>conn</th><th>dir</th><th>offset</th><th>bytes</th><th>first bytes (hex)</th><th>note</th></tr>"
        )?;
        for e in &r.wire_log {
            let dir = match e.dir {
                Dir::Sent => "&rarr; sent",
                Dir::Received => "&larr; received",
            };
            writeln!(
                s,
                "<tr><td>{:.2}</td><td>{}</td><td>{dir}</td><td>{}</td><td>{}</td><td class=hex>{}</td><td>{}</td></tr>",
                e.t_ms,
                e.conn,
                e.offset,
                e.len,
                escape(&e.head),
                escape(&e.note)
            )?;
        }
        writeln!(s, "</table>")?;
        if r.wire_log_dropped > 0 {
            writeln!(
                s,
                "<p>{} later event(s) were not kept.</p>",
                r.wire_log_dropped
            )?;
        }
    }
    if let Some(tail) = r.stderr_tail.as_deref().filter(|t| !t.trim().is_empty()) {
        writeln!(s, "<p>Server stderr (end):</p><pre>{}</pre>", escape(tail))?;
    }
    writeln!(s, "</div>")?;
    Ok(())
}
