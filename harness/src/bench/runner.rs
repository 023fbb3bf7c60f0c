//! The run: ceilings, then each scenario on each target, with progress.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::context::{BenchOptions, Family, Run, start};
use crate::schema::bench::{BenchRun, BenchTarget, Mode, SCHEMA, UnavailableTarget};
use crate::schema::machine::Machine;
use crate::target::TargetSpec;

/// A scenario family's entry point.
type Entry = fn(&mut Run<'_>) -> Result<()>;

/// Runs every wanted scenario on every target.
pub fn run(opts: &BenchOptions) -> Result<BenchRun> {
    let started = Instant::now();
    // Every thread started from here on (driver, probes) inherits the driver's CPU.
    if let Some(p) = opts.pin {
        p.pin_driver();
    }
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut targets = Vec::new();
    let mut unavailable = Vec::new();
    for spec in &opts.targets {
        if let TargetSpec::Backend(name) = spec
            && let Some(why) = crate::serve::backends::unavailable(name)
        {
            eprintln!("sockbench bench: {name} is not measured: unavailable here: {why}");
            unavailable.push(UnavailableTarget {
                name: name.clone(),
                reason: why,
            });
            continue;
        }
        // Start each once to learn what it declares.
        let s = start(spec, opts, &[]).with_context(|| format!("cannot start {}", spec.name()))?;
        let concurrent = s.concurrent();
        let (kind, detail) = spec.describe(&opts.exe);
        targets.push((
            spec.clone(),
            BenchTarget {
                name: spec.name(),
                kind: kind.into(),
                detail,
                concurrent,
            },
        ));
    }
    let total = estimate_steps(opts, targets.len());
    let bar = if opts.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("bench {bar:30} {pos}/{len} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut run = Run {
        opts,
        targets,
        ceilings: Vec::new(),
        results: Vec::new(),
        bar,
    };
    let mut family_seconds = std::collections::BTreeMap::new();
    let families: [(Family, Entry); 4] = [
        (Family::Echo, super::echo::run),
        (Family::Upload, super::upload::run),
        (Family::Udp, super::udp::run),
        (Family::Many, super::many::run),
    ];
    for (family, entry) in families {
        if opts.wants(family) {
            let t = Instant::now();
            entry(&mut run)?;
            family_seconds.insert(family.name().to_owned(), t.elapsed().as_secs_f64());
        }
    }
    // After the families whose ceilings they check (the TCP stream, the
    // 1-connection echo, the UDP echo and sender).
    let anchors = if opts.anchors && opts.netem.is_none() {
        let t = Instant::now();
        let a = super::anchors::run(&mut run);
        family_seconds.insert("anchors".to_owned(), t.elapsed().as_secs_f64());
        a
    } else {
        Vec::new()
    };
    let netem = match &opts.netem {
        Some(spec) => {
            run.step("netem: namespaces, veth and qdiscs");
            super::netem::run(opts, spec)?
        }
        None => Vec::new(),
    };
    let codec = if opts.wants(Family::Codec) {
        run.step("codec micro-measurements");
        let t = Instant::now();
        let c = super::micro::in_child(&opts.exe, &opts.schedule())?;
        family_seconds.insert("codec".to_owned(), t.elapsed().as_secs_f64());
        c
    } else {
        Vec::new()
    };
    // Capacity runs after everything else though the report shows it first:
    // its searches open and close tens of thousands of connections and keep
    // the driver spinning, and measured first they cut the ratios of the
    // scenarios after them (docs/performance.md gives the runs).
    if opts.wants(Family::Capacity) {
        let t = Instant::now();
        super::capacity::run(&mut run)?;
        family_seconds.insert("capacity".to_owned(), t.elapsed().as_secs_f64());
    }
    // What the CPUs lose to others, measured last: a thread spinning on
    // them must not change what the scenarios see.
    run.step("scheduling floor");
    let floor_d = Duration::from_millis(if opts.mode == Mode::Quick { 300 } else { 1000 });
    let floor: Vec<crate::measure::floor::CpuFloor> = match opts.pin {
        Some(p) => vec![
            crate::measure::floor::probe(Some(p.driver), floor_d),
            crate::measure::floor::probe(Some(p.server), floor_d),
        ],
        None => vec![crate::measure::floor::probe(None, floor_d)],
    };
    run.bar.finish_and_clear();
    Ok(BenchRun {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        machine: Machine::probe(),
        seed: opts.seed,
        started_unix,
        duration_s: started.elapsed().as_secs_f64(),
        mode: opts.mode,
        parameters: opts.params.clone(),
        targets: run.targets.into_iter().map(|(_, t)| t).collect(),
        ceilings: run.ceilings,
        results: run.results,
        codec,
        family_seconds,
        runs: 1,
        floor,
        netem,
        anchors,
        unavailable,
    })
}

fn estimate_steps(opts: &BenchOptions, targets: usize) -> usize {
    let p = &opts.params;
    let mut n = 0;
    if opts.wants(Family::Capacity) {
        n += p.capacity.bodies.len() * p.capacity.connections.len() * (targets + 1);
    }
    if opts.wants(Family::Echo) {
        n += 2 * p.echo_bodies.len() * p.echo_connections.len() * (targets + 1);
    }
    if opts.wants(Family::Upload) {
        n += 2 + 2 * (targets + 1);
    }
    if opts.wants(Family::Udp) {
        n += p.udp_sizes.len() * (targets + 1);
    }
    if opts.wants(Family::Many) {
        n += targets + 1;
    }
    n
}
