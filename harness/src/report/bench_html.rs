//! The benchmark report as one self-contained HTML page with SVG charts:
//! throughput per back-end per scenario, latency percentiles, CPU per
//! frame, UDP loss curves, and every table of report.md.

use std::fmt::Write;

use anyhow::Result;

use super::bench_md::BenchMarkdown;
use super::cells::si;
use super::charts::{Bars, Line, grouped_bars, lines};
use super::{Reporter, escape};
use crate::schema::bench::{BenchRun, Scenario, Status};

/// index.html.
pub struct BenchHtml;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}figure{margin:1.5em 0}svg{max-width:100%;height:auto}.note{color:#555}";

/// One knee chart per capacity configuration: every target and the ceiling.
fn knees(s: &mut String, run: &BenchRun, names: &[String]) -> Result<()> {
    let slo = run.parameters.capacity.slo;
    for (_, key) in run
        .keys()
        .into_iter()
        .filter(|(f, _)| *f == Scenario::Capacity)
    {
        let line = |m: &crate::schema::bench::Measurement| -> Vec<(f64, f64)> {
            m.knee.iter().map(|p| (p.offered, p.judged_us)).collect()
        };
        let mut series: Vec<Line> = names
            .iter()
            .filter_map(|t| {
                run.find(Scenario::Capacity, &key, t)
                    .map(|m| (t.clone(), line(m)))
            })
            .collect();
        if let Some(c) = run
            .ceilings
            .iter()
            .find(|m| m.key == format!("capacity/{key}"))
        {
            series.push(("unframed echo (ceiling)".into(), line(c)));
        }
        chart(
            s,
            super::charts::knee(
                &format!(
                    "Knee, {key}: {} against offered rate (target {slo})",
                    slo.name()
                ),
                &series,
                slo.limit_us,
                &format!("{} latency (µs, median window)", slo.name()),
            )?,
        )?;
    }
    Ok(())
}

impl Reporter<BenchRun> for BenchHtml {
    fn file_name(&self) -> &str {
        "index.html"
    }

    fn render(&self, run: &BenchRun) -> Result<String> {
        let mut s = String::new();
        writeln!(
            s,
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>sockbench bench</title><style>{STYLE}</style></head><body>"
        )?;
        writeln!(
            s,
            "<h1>sockbench bench ({})</h1>",
            escape(run.mode.as_str())
        )?;
        // The verdict first, as in report.md.
        let verdict = super::verdict_md::markdown(run);
        if !verdict.is_empty() {
            writeln!(s, "<h2>Verdict</h2>")?;
            let body = verdict.trim_start_matches("## Verdict\n");
            writeln!(s, "{}", markdown_tables_to_html(body))?;
        }
        let names: Vec<String> = run.targets.iter().map(|t| t.name.clone()).collect();
        knees(&mut s, run, &names)?;
        echo_charts(&mut s, run, &names)?;
        latency_charts(&mut s, run, &names)?;
        upload_chart(&mut s, run, &names)?;
        udp_charts(&mut s, run, &names)?;
        codec_chart(&mut s, run)?;
        writeln!(s, "<h2>Tables</h2>")?;
        let md = BenchMarkdown.render(run)?;
        writeln!(s, "{}", markdown_tables_to_html(&md))?;
        writeln!(
            s,
            "<p class=note>Regenerate with <code>sockbench report --in results.json</code>. Median of {} repetitions; {}.</p>",
            run.parameters.repetitions,
            escape(&format!(
                "{} targets, {} s",
                run.targets.len(),
                si(run.duration_s)
            ))
        )?;
        writeln!(s, "{}</body></html>", super::SELF_CHECK)?;
        Ok(s)
    }
}

/// Echo throughput, its ratio to the ceiling and server CPU, per mode.
fn echo_charts(s: &mut String, run: &BenchRun, names: &[String]) -> Result<()> {
    for mode in ["rr", "pipelined"] {
        let keys: Vec<String> = run
            .keys()
            .into_iter()
            .filter(|(f, k)| *f == Scenario::Echo && k.starts_with(&format!("{mode}/")))
            .map(|(_, k)| k)
            .collect();
        let groups: Vec<String> = keys
            .iter()
            .map(|k| k.trim_start_matches(&format!("{mode}/")).to_owned())
            .collect();
        let series = |f: &dyn Fn(&crate::schema::bench::Measurement) -> Option<f64>| -> Vec<Bars> {
            names
                .iter()
                .map(|t| {
                    (
                        t.clone(),
                        keys.iter()
                            .map(|k| {
                                run.find(Scenario::Echo, k, t)
                                    .filter(|m| m.status == Status::Ok)
                                    .and_then(f)
                            })
                            .collect(),
                    )
                })
                .collect()
        };
        let title = if mode == "rr" {
            "request-response"
        } else {
            "pipelined"
        };
        chart(
            s,
            grouped_bars(
                &format!("Echo throughput, {title} (body / connections)"),
                &groups,
                &series(&|m| Some(m.value.median)),
                "frames/s",
                true,
            )?,
        )?;
        chart(
            s,
            grouped_bars(
                &format!("Echo, {title}: ratio to the unframed echo"),
                &groups,
                &series(&|m| m.ratio.map(|r| r.median)),
                "× ceiling",
                false,
            )?,
        )?;
        chart(
            s,
            grouped_bars(
                &format!("Server CPU per frame, {title}"),
                &groups,
                &series(&|m| m.server.map(|u| u.cpu_us_per_frame)),
                "µs / frame",
                true,
            )?,
        )?;
    }
    Ok(())
}

/// Latency percentiles of one representative configuration per family.
fn latency_charts(s: &mut String, run: &BenchRun, names: &[String]) -> Result<()> {
    // Latency percentiles of one representative configuration per family.
    for (family, key) in [
        (Scenario::Echo, "rr/64B/16c"),
        (Scenario::Many, ""),
        (Scenario::Udp, "64B"),
    ] {
        let key = if key.is_empty() {
            run.keys()
                .into_iter()
                .find(|(f, _)| *f == family)
                .map(|(_, k)| k)
                .unwrap_or_default()
        } else {
            key.to_owned()
        };
        let pct = ["p50", "p90", "p99", "p99.9", "max"]
            .map(String::from)
            .to_vec();
        let series: Vec<Bars> = names
            .iter()
            .map(|t| {
                let l = run.find(family, &key, t).and_then(|m| m.latency);
                (
                    t.clone(),
                    l.map_or(vec![None; 5], |l| {
                        [l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us]
                            .map(Some)
                            .to_vec()
                    }),
                )
            })
            .collect();
        chart(
            s,
            grouped_bars(
                &format!("Latency percentiles, {family} {key}"),
                &pct,
                &series,
                "µs",
                true,
            )?,
        )?;
    }
    Ok(())
}

/// Upload throughput.
fn upload_chart(s: &mut String, run: &BenchRun, names: &[String]) -> Result<()> {
    let uploads: Vec<String> = run
        .keys()
        .into_iter()
        .filter(|(f, _)| *f == Scenario::Upload)
        .map(|(_, k)| k)
        .collect();
    let series: Vec<Bars> = names
        .iter()
        .map(|t| {
            (
                t.clone(),
                uploads
                    .iter()
                    .map(|k| {
                        run.find(Scenario::Upload, k, t)
                            .filter(|m| m.status == Status::Ok)
                            .map(|m| m.value.median)
                    })
                    .collect(),
            )
        })
        .collect();
    chart(
        s,
        grouped_bars(
            "Upload throughput with MD5",
            &uploads,
            &series,
            "MB/s",
            false,
        )?,
    )?;
    Ok(())
}

/// The UDP loss curves, with the raw echo's.
fn udp_charts(s: &mut String, run: &BenchRun, names: &[String]) -> Result<()> {
    for size in &run.parameters.udp_sizes {
        let key = format!("{size}B");
        let mut series: Vec<Line> = names
            .iter()
            .filter_map(|t| {
                run.find(Scenario::Udp, &key, t).map(|m| {
                    (
                        t.clone(),
                        m.curve
                            .iter()
                            .map(|p| (p.offered, p.loss * 100.0))
                            .collect(),
                    )
                })
            })
            .collect();
        if let Some(c) = run.ceilings.iter().find(|c| c.key == format!("udp/{key}")) {
            series.push((
                "raw UDP echo".into(),
                c.curve
                    .iter()
                    .map(|p| (p.offered, p.loss * 100.0))
                    .collect(),
            ));
        }
        chart(
            s,
            lines(
                &format!("UDP loss curve, {size}-byte datagrams"),
                &series,
                "offered datagrams/s",
                "loss %",
            )?,
        )?;
    }
    Ok(())
}

/// The codec's ns per operation, when the run had it.
fn codec_chart(s: &mut String, run: &BenchRun) -> Result<()> {
    if !run.codec.is_empty() {
        let ops: Vec<String> = run.codec.iter().map(|c| c.operation.clone()).collect();
        let series: Vec<Bars> = vec![
            (
                "ours".into(),
                run.codec.iter().map(|c| Some(c.ours_ns.median)).collect(),
            ),
            (
                "LengthDelimitedCodec + serde_json".into(),
                run.codec
                    .iter()
                    .map(|c| Some(c.alternative_ns.median))
                    .collect(),
            ),
        ];
        chart(
            s,
            grouped_bars("Codec: ns per operation", &ops, &series, "ns", true)?,
        )?;
    }
    Ok(())
}

fn chart(s: &mut String, svg: String) -> std::fmt::Result {
    if svg.is_empty() {
        return Ok(());
    }
    writeln!(s, "<figure>{svg}</figure>")
}

/// The report's Markdown as HTML: headings, paragraphs, lists and tables,
/// which is all report.md uses.
/// A Markdown cell or line as HTML: escaped, then `**bold**` and `` `code` ``.
fn inline(md: &str) -> String {
    let mut out = String::new();
    let (mut bold, mut code) = (false, false);
    let mut rest = md;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**").filter(|_| !code) {
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    // Unbalanced markers close where the text ends.
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</b>");
    }
    out
}

fn markdown_tables_to_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    let mut in_list = false;
    for line in md.lines() {
        let t = line.trim();
        if t.starts_with('|') {
            if t.starts_with("|---") {
                continue;
            }
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for c in t.trim_matches('|').split(" | ") {
                let _ = write!(out, "<td>{}</td>", inline(c.trim()));
            }
            out.push_str("</tr>\n");
            continue;
        }
        if in_table {
            out.push_str("</table>\n");
            in_table = false;
        }
        if let Some(item) = t.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>");
                in_list = true;
            }
            let _ = writeln!(out, "<li>{}</li>", inline(item));
            continue;
        }
        if in_list {
            out.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(h) = t.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = t.strip_prefix("# ") {
            let _ = writeln!(out, "<h3>{}</h3>", escape(h));
        } else if !t.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(t));
        }
    }
    if in_table {
        out.push_str("</table>");
    }
    if in_list {
        out.push_str("</ul>");
    }
    out
}

#[cfg(test)]
mod inline_tests {
    use super::inline;

    #[test]
    fn bold_and_code_become_tags_and_the_rest_is_escaped() {
        assert_eq!(
            inline("**tie** with `a<b`"),
            "<b>tie</b> with <code>a&lt;b</code>"
        );
        assert_eq!(inline("`**` stays"), "<code>**</code> stays");
        assert_eq!(inline("**open"), "<b>open</b>");
    }
}
