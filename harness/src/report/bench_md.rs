//! The benchmark report in Markdown, and the terminal summary.

use std::fmt::Write;

use anyhow::Result;

use super::Reporter;
use super::cells::{si, table_head};
use crate::analysis::{SUSPECT, suspect};
use crate::schema::bench::{BenchRun, Measurement, Scenario, Status};

/// report.md.
pub struct BenchMarkdown;

impl Reporter<BenchRun> for BenchMarkdown {
    fn file_name(&self) -> &str {
        "report.md"
    }

    fn render(&self, run: &BenchRun) -> Result<String> {
        let mut s = String::new();
        header(&mut s, run)?;
        capacity(&mut s, run)?;
        ceilings(&mut s, run)?;
        let names: Vec<&str> = run.targets.iter().map(|t| t.name.as_str()).collect();
        for (family, title, what) in [
            (
                Scenario::Echo,
                "Echo: sticky frames, closed loop",
                "frames/s",
            ),
            (
                Scenario::Upload,
                "Upload with MD5",
                "MB/s, ratio to the store loop of the same configuration (receive, MD5, write and commit, unframed); each ratio to MD5 on one core is in the notes",
            ),
            (
                Scenario::Udp,
                "UDP echo: highest loss-free rate",
                "datagrams/s echoed, ratio to a raw UDP echo",
            ),
            (
                Scenario::Many,
                "Many connections: idle beside active",
                "frames/s of the active connections",
            ),
        ] {
            super::bench_families::section(&mut s, run, &names, (family, title, what))?;
        }
        netem(&mut s, run)?;
        codec(&mut s, run)?;
        Ok(s)
    }
}

/// The run: machine, parameters, placement, floor, the verdict.
fn header(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    let m = &run.machine;
    writeln!(s, "# sockbench bench ({})", run.mode)?;
    writeln!(s)?;
    writeln!(
        s,
        "{} on {} ({} CPUs, {:.0} GiB{}), kernel {}, {}, git {}, seed {}, {:.0} s.",
        run.tool_version,
        or(&m.cpu),
        m.cpus,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        if m.virtualization.is_empty() {
            String::new()
        } else {
            format!(", {}", m.virtualization)
        },
        or(&m.kernel),
        or(&m.rustc),
        or(&m.git_revision),
        run.seed,
        run.duration_s
    )?;
    let p = &run.parameters;
    writeln!(
        s,
        "Each value is the median of {} repetitions of {} ms after {} ms of warm-up; `±` is the coefficient of variation; `·` the ratio to the ceiling measured in the same run.",
        p.repetitions, p.rep_ms, p.warmup_ms
    )?;
    writeln!(
        s,
        "Placement: {} (the server gets one core; with `--no-pin` the scheduler decides).",
        p.pinning
    )?;
    for f in &run.floor {
        writeln!(
            s,
            "Scheduling floor, {}{}.",
            f.describe(),
            if f.shapes_p99() {
                ": over 1 % of the time, so no open-loop p99 here can be below those gaps"
            } else {
                ""
            }
        )?;
    }
    for u in &run.unavailable {
        writeln!(
            s,
            "\n**{} not measured**: unavailable on this machine ({}).",
            u.name, u.reason
        )?;
    }
    let verdict = super::verdict_md::markdown(run);
    if !verdict.is_empty() {
        writeln!(s)?;
        write!(s, "{verdict}")?;
    }
    let suspects: Vec<String> = run
        .results
        .iter()
        .filter(|m| m.ratio.is_some_and(|r| suspect(r.median)))
        .map(|m| format!("{} {} on {}", m.scenario, m.key, m.target))
        .collect();
    if !suspects.is_empty() {
        writeln!(
            s,
            "\n**Suspect ceilings** ({}): a target above {SUSPECT}x its ceiling beat the bare path, so that ceiling bounds nothing: {}.",
            suspects.len(),
            suspects.join(", ")
        )?;
    }
    Ok(())
}

/// The run-wide ceilings: the raw TCP stream, MD5, the store loop.
fn ceilings(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    writeln!(s)?;
    writeln!(s, "## Ceilings")?;
    writeln!(s)?;
    writeln!(s, "| ceiling | measures | median | min | max | CV |")?;
    writeln!(s, "|---|---|---|---|---|---|")?;
    for c in run.ceilings.iter().filter(|c| {
        c.key == "tcp-stream" || c.key.starts_with("md5") || c.key.starts_with("store/")
    }) {
        writeln!(
            s,
            "| {} | {} | {} {} | {} | {} | {:.1}% |",
            c.target,
            c.key,
            si(c.value.median),
            c.unit,
            si(c.value.min),
            si(c.value.max),
            c.value.cv * 100.0
        )?;
    }
    anchors(s, run)?;
    writeln!(s)?;
    writeln!(
        s,
        "Echo and UDP ceilings (an unframed echo of the same bytes, a raw UDP echo) are per configuration; each ratio below is a repetition's value over its ceiling's best repetition (measured before and after the targets)."
    )?;
    Ok(())
}

/// netem beside the relay, when the run had it.
fn netem(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    if run.netem.is_empty() {
        return Ok(());
    }
    writeln!(s)?;
    writeln!(s, "## netem beside the relay")?;
    writeln!(s)?;
    writeln!(
        s,
        "Round-trip loss across two network namespaces with netem on both veth ends, beside the relay dropping the same fraction each way on loopback (median and range of the repetitions):"
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| target | size | expected | netem measured | relay measured | netem p50 / p99 (µs) |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|")?;
    for n in &run.netem {
        let p = n.netem.first().map_or((0.0, 0.0), |x| (x.p50_us, x.p99_us));
        writeln!(
            s,
            "| {} | {} B | {:.2}% | {:.2}% ({:.2}–{:.2}) | {:.2}% ({:.2}–{:.2}) | {:.0} / {:.0} |",
            n.target,
            n.size,
            n.expected_loss * 100.0,
            n.netem_loss.median * 100.0,
            n.netem_loss.min * 100.0,
            n.netem_loss.max * 100.0,
            n.relay_loss.median * 100.0,
            n.relay_loss.min * 100.0,
            n.relay_loss.max * 100.0,
            p.0,
            p.1
        )?;
    }
    Ok(())
}

/// The codec table, when the run had it.
fn codec(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    if run.codec.is_empty() {
        return Ok(());
    }
    writeln!(s)?;
    writeln!(
        s,
        "## Codec: ours beside tokio-util LengthDelimitedCodec + serde_json"
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| operation | ours (ns) | alternative (ns) | alternative / ours | allocations ours / alternative |"
    )?;
    writeln!(s, "|---|---|---|---|---|")?;
    for c in &run.codec {
        writeln!(
            s,
            "| {} | {:.0} ±{:.0}% | {:.0} ±{:.0}% | {:.2}× | {:.1} / {:.1} |",
            c.operation,
            c.ours_ns.median,
            c.ours_ns.cv * 100.0,
            c.alternative_ns.median,
            c.alternative_ns.cv * 100.0,
            c.alternative_ns.median / c.ours_ns.median,
            c.ours_allocs,
            c.alternative_allocs
        )?;
    }
    Ok(())
}

/// The headline: capacity at the latency target, per configuration.
fn capacity(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    let keys: Vec<String> = run
        .keys()
        .into_iter()
        .filter(|(f, _)| *f == Scenario::Capacity)
        .map(|(_, k)| k)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let c = &run.parameters.capacity;
    writeln!(s)?;
    writeln!(s, "## Capacity at {} (open loop)", c.slo)?;
    writeln!(s)?;
    writeln!(
        s,
        "The highest offered rate, in requests/s, at which {} held with no errors or timeouts: constant arrivals, latency from each request's intended send time. `·` the ratio to the unframed echo's capacity found the same way; then the server's CPU µs per reply at that rate. `none`: no rate tried met the target.",
        c.slo
    )?;
    writeln!(s)?;
    let names: Vec<&str> = run.targets.iter().map(|t| t.name.as_str()).collect();
    let mut head = vec!["ceiling"];
    head.extend(&names);
    table_head(s, "configuration", &head)?;
    for k in &keys {
        write!(s, "| {k} |")?;
        let ceiling = run
            .ceilings
            .iter()
            .find(|m| m.key == format!("capacity/{k}"));
        write!(s, " {} |", capacity_cell(ceiling))?;
        for t in &names {
            write!(
                s,
                " {} |",
                capacity_cell(run.find(Scenario::Capacity, k, t))
            )?;
        }
        writeln!(s)?;
    }
    writeln!(s)?;
    writeln!(
        s,
        "Search: from {:.0}/s up by ×{} until the target is overloaded, then {} bisections; each step {} ms of warm-up and {} windows of {} ms, judged on the median window. The knee charts in index.html show every step.",
        c.plan.start_rate, c.plan.factor, c.plan.bisect, c.warmup_ms, c.windows, c.window_ms
    )?;
    let notes: Vec<String> = run
        .ceilings
        .iter()
        .chain(&run.results)
        .filter(|m| m.scenario == Scenario::Capacity || m.key.starts_with("capacity/"))
        .filter(|m| !m.notes.is_empty())
        .map(|m| format!("- {} {}: {}", m.target, m.key, m.notes.join("; ")))
        .collect();
    if !notes.is_empty() {
        writeln!(s)?;
        for n in notes {
            writeln!(s, "{n}")?;
        }
    }
    Ok(())
}

/// The anchors: iperf3 and sockperf beside our ceilings.
fn anchors(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    if run.anchors.is_empty() {
        return Ok(());
    }
    writeln!(s)?;
    writeln!(s, "## Anchors")?;
    writeln!(s)?;
    writeln!(
        s,
        "Standard tools in the same run, same placement: a ceiling far below them is not a ceiling."
    )?;
    writeln!(s)?;
    writeln!(s, "| tool | measures | theirs | ours | ours / theirs |")?;
    writeln!(s, "|---|---|---|---|---|")?;
    for a in &run.anchors {
        let Some(v) = a.value else {
            writeln!(
                s,
                "| {} | {} | not run: {} | - | - |",
                a.tool,
                a.measures,
                a.reason.as_deref().unwrap_or("")
            )?;
            continue;
        };
        let ours = match (a.ours, &a.ours_is) {
            (Some(o), Some(what)) => format!("{} {} ({what})", si(o), a.unit),
            _ => "-".into(),
        };
        let ratio = match (a.ratio, a.want_at_least) {
            (Some(r), Some(w)) if r < w => format!("{r:.2}× (**short**: want at least {w:.1}×)"),
            (Some(r), Some(w)) => format!("{r:.2}× (want at least {w:.1}×)"),
            (Some(r), None) => format!("{r:.2}×"),
            _ => "-".into(),
        };
        writeln!(
            s,
            "| {} | {} (`{}`) | {} {} | {ours} | {ratio} |",
            a.tool,
            a.measures,
            a.command,
            si(v),
            a.unit
        )?;
    }
    Ok(())
}

fn capacity_cell(m: Option<&Measurement>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m.status != Status::Ok => {
            format!("{} ({})", m.status, m.reason.as_deref().unwrap_or(""))
        }
        Some(m) if m.value.median <= 0.0 => "none".into(),
        Some(m) => {
            let mut out = si(m.value.median);
            if let Some(r) = m.ratio {
                out.push_str(&format!(" · {:.2}×", r.median));
                if suspect(r.median) {
                    out.push_str(" (suspect ceiling)");
                }
            }
            if let Some(u) = m.server {
                out.push_str(&format!(" · {:.1} µs", u.cpu_us_per_frame));
            }
            out
        }
    }
}

fn or(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The terminal summary: per family, each target's median ratio to its ceiling.
pub fn summary(run: &BenchRun) -> String {
    let mut s = String::new();
    let took: Vec<String> = run
        .family_seconds
        .iter()
        .map(|(f, t)| format!("{f} {t:.0} s"))
        .collect();
    let _ = writeln!(
        s,
        "\nbench ({}) in {:.0} s ({}); ratio to ceiling, median over configurations:",
        run.mode,
        run.duration_s,
        took.join(", ")
    );
    for family in [
        Scenario::Capacity,
        Scenario::Echo,
        Scenario::Upload,
        Scenario::Udp,
        Scenario::Many,
    ] {
        let mut line = format!("  {family:<8}");
        let mut any = false;
        for t in &run.targets {
            let mut ratios: Vec<f64> = run
                .results
                .iter()
                .filter(|m| m.scenario == family && m.target == t.name)
                .filter_map(|m| m.ratio.map(|r| r.median))
                .collect();
            if ratios.is_empty() {
                continue;
            }
            any = true;
            ratios.sort_by(f64::total_cmp);
            let _ = write!(line, "  {} {:.2}×", t.name, ratios[ratios.len() / 2]);
        }
        if any {
            let _ = writeln!(s, "{line}");
        }
    }
    s
}
