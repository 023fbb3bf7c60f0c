//! report.md's section for each scenario family (echo, upload, UDP, many
//! connections): values and ratios, latency, server CPU, calls per frame,
//! the UDP probe's accuracy and the notes. Drawn from the run alone.

use std::fmt::Write;

use super::cells::{cell, table_head};
use crate::schema::bench::{BenchRun, Scenario};

/// One scenario family: its values, latency, CPU, calls and notes.
pub(super) fn section(
    s: &mut String,
    run: &BenchRun,
    names: &[&str],
    (family, title, what): (Scenario, &str, &str),
) -> std::fmt::Result {
    let keys: Vec<String> = run
        .keys()
        .into_iter()
        .filter(|(f, _)| *f == family)
        .map(|(_, k)| k)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    writeln!(s)?;
    writeln!(s, "## {title}")?;
    writeln!(s)?;
    writeln!(s, "{what}.")?;
    writeln!(s)?;
    grid(s, names, &keys, |k, t| cell(run.find(family, k, t)))?;
    if family != Scenario::Upload {
        latency(s, run, names, family, &keys)?;
    }
    server_cpu(s, run, names, family, &keys)?;
    match family {
        Scenario::Upload => store_loop(s, run)?,
        Scenario::Echo => calls(s, run, names, &keys)?,
        Scenario::Udp => udp_accuracy(s, run, names, &keys)?,
        _ => {}
    }
    notes(s, run, family)
}

/// Latency percentiles per configuration.
fn latency(
    s: &mut String,
    run: &BenchRun,
    names: &[&str],
    family: Scenario,
    keys: &[String],
) -> std::fmt::Result {
    writeln!(s)?;
    writeln!(
        s,
        "Latency p50 / p99 / p99.9 (µs), {}:",
        if family == Scenario::Udp {
            "open loop"
        } else {
            "closed loop"
        }
    )?;
    writeln!(s)?;
    grid(s, names, keys, |k, t| {
        run.find(family, k, t)
            .and_then(|m| m.latency)
            .map_or("-".into(), |l| {
                format!("{:.0} / {:.0} / {:.0}", l.p50_us, l.p99_us, l.p999_us)
            })
    })?;

    Ok(())
}

/// Server CPU per frame (or per GB) and peak RSS.
fn server_cpu(
    s: &mut String,
    run: &BenchRun,
    names: &[&str],
    family: Scenario,
    keys: &[String],
) -> std::fmt::Result {
    writeln!(s)?;
    if family == Scenario::Upload {
        writeln!(s, "Server CPU seconds per GB uploaded, and peak RSS:")?;
    } else {
        writeln!(
            s,
            "Server CPU µs per frame (the load driver's in brackets), and peak RSS:"
        )?;
    }
    writeln!(s)?;
    grid(s, names, keys, |k, t| {
        run.find(family, k, t)
            .and_then(|m| m.server.map(|u| (u, m.driver_cpu_us_per_frame)))
            .map_or("-".into(), |(u, d)| {
                let rss = u.peak_rss_bytes as f64 / 1048576.0;
                if family == Scenario::Upload {
                    return format!("{:.2} s/GB, {rss:.0} MiB", u.cpu_s_per_gb);
                }
                let drv = if d > 0.0 {
                    format!(" [{d:.2}]")
                } else {
                    String::new()
                };
                format!("{:.2}{drv}, {rss:.0} MiB", u.cpu_us_per_frame)
            })
    })?;
    Ok(())
}

/// The store loop's own CPU per GB, beside the uploads.
fn store_loop(s: &mut String, run: &BenchRun) -> std::fmt::Result {
    let floors: Vec<String> = run
        .ceilings
        .iter()
        .filter_map(|c| {
            let key = c.key.strip_prefix("store/")?;
            Some(format!("{key} {:.2} s/GB", c.cpu_s_per_gb?))
        })
        .collect();
    if !floors.is_empty() {
        writeln!(s)?;
        writeln!(
            s,
            "The store loop's own thread: {} (each server's ratio to it is in the notes).",
            floors.join(", ")
        )?;
    }

    Ok(())
}

/// Reads, writes and system calls per frame.
fn calls(s: &mut String, run: &BenchRun, names: &[&str], keys: &[String]) -> std::fmt::Result {
    writeln!(s)?;
    writeln!(
        s,
        "Server reads / writes per frame (the sticky path: fewer than one read per frame means frames arrived glued), and in brackets system calls per frame (mio and percore: waits, reads and writes, including those that would block; uring: its `io_uring_enter` calls, which carry its reads and writes; the others: reads plus writes, a lower bound):"
    )?;
    writeln!(s)?;
    grid(s, names, keys, |k, t| {
        run.find(Scenario::Echo, k, t)
            .and_then(|m| m.syscalls)
            .filter(|c| c.server_reads_per_frame > 0.0)
            .map_or("-".into(), |c| {
                format!(
                    "{:.2} / {:.2} ({:.3})",
                    c.server_reads_per_frame,
                    c.server_writes_per_frame,
                    c.server_syscalls_per_frame
                )
            })
    })?;

    Ok(())
}

/// The UDP probe against the relay's record.
fn udp_accuracy(
    s: &mut String,
    run: &BenchRun,
    names: &[&str],
    keys: &[String],
) -> std::fmt::Result {
    writeln!(s)?;
    writeln!(
        s,
        "Accuracy: each target probed through the seeded impairment relay (loss in bursts, duplicates, reordering, corruption, both directions); the probe's counts beside those the relay's record predicts (received / duplicates / reordered / corrupted / lost):"
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| target | size | sent | dropped requests / replies | injected | measured | exact |"
    )?;
    writeln!(s, "|---|---|---|---|---|---|---|")?;
    for k in keys {
        for t in names {
            if let Some(a) = run.find(Scenario::Udp, k, t).and_then(|m| m.accuracy) {
                let c = |u: crate::schema::bench::UdpCounts| {
                    format!(
                        "{} / {} / {} / {} / {}",
                        u.received, u.duplicates, u.out_of_order, u.corrupted, u.lost
                    )
                };
                let exact = if a.injected == a.measured {
                    "yes"
                } else {
                    "**no**"
                };
                writeln!(
                    s,
                    "| {t} | {k} | {} | {} / {} | {} | {} | {exact} |",
                    a.sent,
                    a.dropped_requests,
                    a.dropped_replies,
                    c(a.injected),
                    c(a.measured)
                )?;
            }
        }
    }

    Ok(())
}

/// The measurements' notes of a family.
fn notes(s: &mut String, run: &BenchRun, family: Scenario) -> std::fmt::Result {
    let notes: Vec<String> = run
        .results
        .iter()
        .filter(|m| m.scenario == family && !m.notes.is_empty())
        .map(|m| format!("- {} {}: {}", m.target, m.key, m.notes.join("; ")))
        .collect();
    if !notes.is_empty() {
        writeln!(s)?;
        writeln!(s, "Notes:")?;
        writeln!(s)?;
        for n in notes {
            writeln!(s, "{n}")?;
        }
    }

    Ok(())
}

/// A table of configurations by targets, each cell drawn by `cell`.
fn grid(
    s: &mut String,
    names: &[&str],
    keys: &[String],
    cell: impl Fn(&str, &str) -> String,
) -> std::fmt::Result {
    table_head(s, "configuration", names)?;
    for k in keys {
        write!(s, "| {k} |")?;
        for t in names {
            write!(s, " {} |", cell(k, t))?;
        }
        writeln!(s)?;
    }
    Ok(())
}
