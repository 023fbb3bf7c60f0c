//! `sockbench explore` and `sockbench replay`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use sockbench_wire::WireConfig;

use super::generate::{Shape, default_shape};
use super::judge::Divergence;
use super::program::Program;
use super::repro::{self, FORMAT, Repro};
use super::run::{self, ExplorePlan, ExploreTarget};
use super::shrink;
use crate::measure::units::parse_seconds;
use crate::target::TargetSpec;
use crate::target::args::{Preflight, TargetArgs};

/// `sockbench explore`.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// The server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Stop after this many seconds.
    #[arg(long, default_value = "60", value_parser = parse_seconds)]
    pub time: Duration,
    /// Stop after this many programs.
    #[arg(long)]
    pub programs: Option<u64>,
    /// Seed of the programs (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Programs run at once, each job against a server of its own when
    /// the harness starts them.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Where repro.json, repro.py and report.md go.
    #[arg(long, default_value = "reports/latest/explore")]
    pub out: PathBuf,
    /// Time shrinking may take, seconds.
    #[arg(long, default_value = "30", value_parser = parse_seconds)]
    pub shrink_time: Duration,
    /// Send no UDP.
    #[arg(long)]
    pub no_udp: bool,
}

/// `sockbench replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A repro.json written by explore.
    pub file: PathBuf,
    /// The server.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The one server, and the byte order and limits it speaks (an address
/// target's as given; the contract's defaults for one we start).
fn spec(t: &TargetArgs) -> Result<(TargetSpec, WireConfig)> {
    t.contract_only("explore")?;
    let spec = t.one(Preflight::Reach, "explore")?;
    let wire = match &spec {
        TargetSpec::Address { wire, .. } => *wire,
        _ => WireConfig::default(),
    };
    Ok((spec, wire))
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the sockbench executable")
}

/// Runs `sockbench explore`: 0 nothing diverged, 1 a divergence (repro
/// written); an error is unusable input (exit 2).
pub fn run(args: ExploreArgs) -> Result<ExitCode> {
    explore_inner(&args)
}

fn explore_inner(args: &ExploreArgs) -> Result<ExitCode> {
    let (spec, wire) = spec(&args.target)?;
    let exe = exe()?;
    let udp = !args.no_udp && (spec.spawns() || args.target.udp.is_some());
    let tcp = args.target.tcp.is_some() || spec.spawns();
    if !tcp && !udp {
        bail!("--udp alone is a UDP-only target: drop --no-udp");
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let shape = Shape {
        wire,
        udp,
        tcp,
        ..default_shape(wire.endian, true)
    };
    let plan = ExplorePlan {
        seed,
        time: args.time,
        programs: args.programs,
        jobs: args.jobs,
        shape,
    };
    let name = spec.name();
    let (kind, detail) = spec.describe(&exe);
    eprintln!(
        "explore {name} ({kind}: {detail}), seed {seed}, up to {:?}",
        args.time
    );
    let make = || run::start(&spec, &exe, udp);
    let outcome = run::explore(plan, &make)?;
    let t = &outcome.tally;
    let secs = outcome.elapsed.as_secs_f64();
    println!(
        "explore {name}: {} programs, {} actions, {:.1} MB in {secs:.1} s ({:.1} programs/s), seed {seed}",
        t.programs,
        t.actions,
        t.bytes as f64 / 1e6,
        t.programs as f64 / secs.max(1e-9)
    );
    let kinds: Vec<String> = t.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let cuts: Vec<String> = t.cuts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("  actions: {}", kinds.join(", "));
    println!("  cuts: {}", cuts.join(", "));
    let Some(found) = outcome.found else {
        for f in ["repro.json", "repro.py"] {
            // A repro left from an earlier run would describe a bug this run did not see.
            let _ = std::fs::remove_file(args.out.join(f));
        }
        println!("no divergence");
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "DIVERGENCE in program {} after {:.1} s: {}",
        found.k,
        found.after.as_secs_f64(),
        found.divergence.what
    );
    let attempt = |p: &Program| -> Option<Divergence> {
        let mut s = run::start(&spec, &exe, udp).ok()?;
        let d = s.try_program(p, wire).0;
        s.stop();
        d
    };
    let shrunk = shrink::shrink(
        &found.program,
        &found.divergence,
        wire.endian,
        args.shrink_time,
        attempt,
    );
    // Three fresh runs of the shrunk program: a flaky divergence says so.
    // Only the same kind counts: a run in which something else went wrong
    // (the server died of it) is said, not taken for this one.
    let mut reproduced = 0;
    let mut log = found.log.clone();
    let mut div = shrunk.divergence.clone();
    let mut other: Option<Divergence> = None;
    for _ in 0..3 {
        let Ok(mut s) = run::start(&spec, &exe, udp) else {
            continue;
        };
        let (d, seen) = s.try_program(&shrunk.program, wire);
        s.stop();
        match d {
            Some(d) if d.kind() == shrunk.divergence.kind() => {
                reproduced += 1;
                log = run::wire_log(&seen);
                div = d;
            }
            Some(d) => other = Some(d),
            None => {}
        }
    }
    let (program, divergence) = if reproduced == 0 {
        (found.program.clone(), found.divergence.clone())
    } else {
        (shrunk.program.clone(), div)
    };
    let size = |p: &Program| {
        let (a, b, c) = p.size();
        [a as u64, b, c as u64]
    };
    let r = Repro {
        format: FORMAT.into(),
        seed,
        program_index: found.k,
        target: format!("{name} ({detail})"),
        endian: wire.endian.to_string(),
        max_header: wire.max_header,
        max_body: wire.max_body,
        found_after_s: found.after.as_secs_f64(),
        original: size(&found.program),
        shrunk: size(&program),
        shrink_tries: [shrunk.tries, shrunk.kept],
        reproduced,
        divergence,
        program,
        wire_log: log,
    };
    repro::write(&args.out, &r)?;
    println!(
        "  shrunk to {} actions, {} bytes, {} cuts in {} tries{}; reproduced in {reproduced} of 3 fresh runs",
        r.shrunk[0],
        r.shrunk[1],
        r.shrunk[2],
        r.shrink_tries[0],
        if shrunk.timed_out {
            " (time ran out)"
        } else {
            ""
        }
    );
    println!("  expected: {}", r.divergence.expected);
    println!("  actual:   {}", r.divergence.actual);
    if let Some(o) = other {
        println!(
            "  a fresh run showed something else instead: {}: {}",
            o.what, o.actual
        );
    }
    println!(
        "  wrote {}/repro.json, repro.py, report.md",
        args.out.display()
    );
    Ok(ExitCode::from(1))
}

/// Runs `sockbench replay`: 1 while the repro still diverges, 0 once it
/// does not; an error is unusable input (exit 2).
pub fn replay(args: ReplayArgs) -> Result<ExitCode> {
    Ok(if replay_inner(&args)? {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn replay_inner(args: &ReplayArgs) -> Result<bool> {
    let r = Repro::read(&args.file)?;
    let (spec, _) = spec(&args.target)?;
    let udp = !r.program.udp.is_empty();
    if udp && !spec.spawns() && args.target.udp.is_none() {
        bail!("the program sends UDP: give --udp ADDR");
    }
    let mut server: ExploreTarget = run::start(&spec, &exe()?, udp)?;
    let (d, seen) = server.try_program(&r.program, r.wire());
    server.stop();
    log::debug!("replay:\n{}", run::wire_log(&seen).join("\n"));
    match d {
        Some(d) => {
            println!("REPRODUCED: {}", d.what);
            println!("  expected: {}", d.expected);
            println!("  actual:   {}", d.actual);
            Ok(true)
        }
        None => {
            println!(
                "no divergence: {} behaves as the model on {}",
                spec.name(),
                display(&args.file)
            );
            Ok(false)
        }
    }
}

fn display(p: &Path) -> String {
    crate::target::relative(&p.to_string_lossy())
}
