//! The sticky-echo scenario: echo frames of each body size, request-response
//! and pipelined, over 1, 16 and 256 connections; each configuration also
//! on the unframed echo ceiling.

use anyhow::Result;

use super::ceilings::Strategy;
use super::context::{Run, Server, server_use, size_label, start};
use super::driver::{self, EchoLoad, Schedule};
use crate::measure::proc::ProcSample;
use crate::measure::stats::Latency;
use crate::schema::bench::{Measurement, Scenario, Status, Syscalls};

/// Runs the echo matrix.
pub fn run(run: &mut Run<'_>) -> Result<()> {
    let opts = run.opts;
    let p = opts.params.clone();
    let schedule = opts.schedule();
    for mode in ["rr", "pipelined"] {
        for &body in &p.echo_bodies {
            for &conns in &p.echo_connections {
                let key = format!("{mode}/{}/{conns}c", size_label(body as u64));
                if !opts.wants_config("echo", &key) {
                    continue;
                }
                let frame = frame(body, opts.seed);
                let depth = if mode == "rr" {
                    1
                } else {
                    (p.pipeline_window_bytes / frame.len()).clamp(1, p.pipeline_max_depth)
                };
                let (mut ceiling, strategy) = best_ceiling(run, &frame, conns, depth, &key)?;
                let mut measured = Vec::new();
                for (spec, info) in run.targets.clone() {
                    run.step(&format!("echo {key} on {}", info.name));
                    let m = match start(&spec, opts, &[]) {
                        Ok(server) => {
                            let load = EchoLoad {
                                addr: server.tcp(),
                                frame: frame.clone(),
                                conns,
                                depth,
                            };
                            measure(
                                &load,
                                &schedule,
                                Some(&server),
                                Scenario::Echo,
                                &key,
                                &info.name,
                            )
                        }
                        Err(e) => Measurement::new(
                            Scenario::Echo,
                            &key,
                            &info.name,
                            "frames/s",
                            "closed-loop",
                        )
                        .failed(format!("{e:#}")),
                    };
                    measured.push(m);
                    // Again after each target: the machine's speed drifts by
                    // a third within seconds here, and a ceiling measured
                    // only before the targets can land in a slow spell that
                    // a target then misses, and "beats".
                    run.step(&format!("echo {key}: unframed ceiling again"));
                    let again = ceiling_of(run, strategy, &frame, conns, depth, &key)?;
                    ceiling.pool(&again);
                }
                let ceiling = run.ceiling(ceiling);
                for mut m in measured {
                    m.relate(&ceiling);
                    run.record(m);
                }
            }
        }
    }
    Ok(())
}

/// One measurement of the unframed echo of `strategy`, in a process of
/// its own on the server's CPU.
pub fn ceiling_of(
    run: &Run<'_>,
    strategy: Strategy,
    frame: &[u8],
    conns: usize,
    depth: usize,
    key: &str,
) -> Result<Measurement> {
    let opts = run.opts;
    let c = super::ceilings::spawn(&opts.exe, strategy, frame.len(), opts.pin)?;
    let load = EchoLoad {
        addr: c.tcp,
        frame: frame.to_vec(),
        conns,
        depth,
    };
    Ok(measure(
        &load,
        &opts.schedule(),
        None,
        Scenario::Ceiling,
        &format!("echo/{key}"),
        &format!("unframed echo ({})", strategy.name()),
    ))
}

/// The unframed echo ceiling of one configuration: every strategy that
/// can win there measured in turn, the fastest (by median) kept, and the
/// others named in its notes.
fn best_ceiling(
    run: &Run<'_>,
    frame: &[u8],
    conns: usize,
    depth: usize,
    key: &str,
) -> Result<(Measurement, Strategy)> {
    let mut best: Option<(Measurement, Strategy)> = None;
    let mut tried = Vec::new();
    for &strategy in Strategy::candidates(conns) {
        run.step(&format!(
            "echo {key}: unframed ceiling ({})",
            strategy.name()
        ));
        let m = ceiling_of(run, strategy, frame, conns, depth, key)?;
        tried.push(format!(
            "{}: {}",
            strategy.name(),
            if m.status == Status::Ok {
                format!("{:.0}", m.value.median)
            } else {
                m.status.to_string()
            }
        ));
        let better = match &best {
            None => true,
            Some((b, _)) => {
                m.status == Status::Ok
                    && (b.status != Status::Ok || m.value.median > b.value.median)
            }
        };
        if better {
            best = Some((m, strategy));
        }
    }
    let (mut best, strategy) = best.expect("every configuration has a candidate strategy");
    if tried.len() > 1 {
        best.notes.push(format!(
            "fastest of the unframed echoes by median ({}), measured again after each target",
            tried.join(", ")
        ));
    }
    Ok((best, strategy))
}

/// An echo request of `body` bytes.
pub fn frame(body: usize, seed: u64) -> Vec<u8> {
    crate::peer::frames::echo_frame(body, seed, sockbench_wire::Endian::Little)
}

/// Runs one closed-loop load and turns it into a measurement; with a
/// server, also its CPU, memory and system-call counts.
pub fn measure(
    load: &EchoLoad,
    schedule: &Schedule,
    server: Option<&Server>,
    scenario: Scenario,
    key: &str,
    target: &str,
) -> Measurement {
    let window = if load.depth == 1 {
        "request-response".to_owned()
    } else {
        format!("window {}", load.depth)
    };
    let m = Measurement::new(
        scenario,
        key,
        target,
        "frames/s",
        &format!("closed-loop, {window}"),
    );
    let before_stats = server.and_then(Server::stats);
    let mut samples: (Option<ProcSample>, Option<ProcSample>) = (None, None);
    let result = driver::run(load, schedule, &mut |start| {
        if let Some(s) = server {
            let sample = s.sample();
            if start {
                samples.0 = sample
            } else {
                samples.1 = sample
            }
        }
    });
    let r = match result {
        Ok(r) => r,
        Err(e) => return m.failed(e),
    };
    let flen = load.frame.len() as f64;
    let rates: Vec<f64> = r.reps.iter().map(|p| p.frames as f64 / p.secs).collect();
    let frames: u64 = r.reps.iter().map(|p| p.frames).sum();
    let mut m = m.with_reps(rates.clone());
    if frames == 0 {
        return m.failed("no reply completed in the measured repetitions");
    }
    m.mb_per_s = Some(crate::measure::stats::Summary::of(
        &rates.iter().map(|r| r * flen / 1e6).collect::<Vec<_>>(),
    ));
    m.latency = Some(Latency::of(&r.latency));
    m.driver_cpu_us_per_frame = r.cpu_s / frames as f64 * 1e6;
    let over = r.reps.iter().filter(|p| p.overtime).count();
    if over > 0 {
        let empty = r.reps.iter().filter(|p| p.frames == 0).count();
        m.notes.push(format!(
            "{over} of {} repetitions ran over, waiting for a first reply (a stall of the server \
             or the machine){}",
            r.reps.len(),
            if empty > 0 {
                format!(
                    "; {empty} completed nothing in {} s more",
                    driver::STALL_LIMIT.as_secs()
                )
            } else {
                String::new()
            }
        ));
    }
    m.starved = r.starved;
    if r.starved > 0 {
        m.notes.push(format!(
            "{} of {} connections completed nothing: served one at a time",
            r.starved, load.conns
        ));
    }
    let driver_reads = r.reads as f64 / frames as f64;
    let driver_writes = r.writes as f64 / frames as f64;
    let mut syscalls = Syscalls {
        driver_reads_per_frame: driver_reads,
        driver_writes_per_frame: driver_writes,
        ..Syscalls::default()
    };
    if let Some(s) = server {
        if let (Some(a), Some(b)) = samples {
            m.server = Some(server_use(
                &a,
                &b,
                frames as f64,
                frames as f64 * flen * 2.0,
            ));
        }
        // With starved connections the server's counts include the backlog it
        // drains after the measurement, which varies: not a counter to trust.
        let stats_after = if r.starved > 0 { None } else { s.stats() };
        if let (Some((t0, _)), Some((t1, _))) = (before_stats, stats_after) {
            let (f, rd, wr, calls) = (
                (t1.frames - t0.frames) as f64,
                (t1.reads - t0.reads) as f64,
                (t1.writes - t0.writes) as f64,
                (t1.syscalls - t0.syscalls) as f64,
            );
            if f > 0.0 && rd > 0.0 {
                syscalls.server_reads_per_frame = rd / f;
                syscalls.server_writes_per_frame = wr / f;
                syscalls.server_frames_per_read = f / rd;
                syscalls.server_syscalls_per_frame = match calls > 0.0 {
                    true => calls / f,
                    false => (rd + wr) / f,
                };
            }
        }
    }
    m.syscalls = Some(syscalls);
    m
}
