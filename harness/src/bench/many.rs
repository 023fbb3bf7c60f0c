//! Many connections: thousands of idle connections held open beside a few
//! active ones doing request-response echo; what the idle ones cost in
//! memory and what they do to the active ones. Only for back-ends that
//! declare concurrency (the others cannot hold a second connection).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::ceilings::Strategy;
use super::context::{Run, Server, start};
use super::driver::EchoLoad;
use super::echo::{ceiling_of, frame, measure};
use crate::error::Error;
use crate::schema::bench::{Measurement, Scenario};

/// Runs the scenario on every concurrent target.
pub fn run(run: &mut Run<'_>) -> Result<()> {
    let opts = run.opts;
    let (idle, active) = (opts.params.many_idle, opts.params.many_active);
    let key = format!("{idle}idle+{active}active");
    if !opts.wants_config("many", &key) {
        return Ok(());
    }
    let schedule = opts.schedule();
    let frame = frame(64, opts.seed);
    crate::measure::proc::raise_fd_limit();
    run.step(&format!("many {key}: unframed ceiling (active only)"));
    let mut ceiling = ceiling_of(run, Strategy::EventLoop, &frame, active, 1, &key)?;
    ceiling.key = format!("many/{key}");
    let mut measured = Vec::new();
    for (spec, info) in run.targets.clone() {
        run.step(&format!(
            "many {key} on {} (opening {idle} connections)",
            info.name
        ));
        if !info.concurrent {
            measured.push(
                Measurement::new(Scenario::Many, &key, &info.name, "frames/s", "closed-loop")
                    .not_applicable("the target serves one connection at a time"),
            );
            continue;
        }
        let load = |server: &Server| EchoLoad {
            addr: server.tcp(),
            frame: frame.clone(),
            conns: active,
            depth: 1,
        };
        let m = match start(&spec, opts, &[]) {
            Ok(server) => match hold_idle(&server, idle) {
                Ok((held, note)) => {
                    let mut m = measure(
                        &load(&server),
                        &schedule,
                        Some(&server),
                        Scenario::Many,
                        &key,
                        &info.name,
                    );
                    m.notes.push(note);
                    drop(held);
                    m
                }
                Err(e) => {
                    Measurement::new(Scenario::Many, &key, &info.name, "frames/s", "closed-loop")
                        .failed(e)
                }
            },
            Err(e) => Measurement::new(Scenario::Many, &key, &info.name, "frames/s", "closed-loop")
                .failed(format!("{e:#}")),
        };
        measured.push(m);
    }
    // Again after the targets, as in the echo scenario.
    run.step(&format!("many {key}: unframed ceiling again"));
    let mut again = ceiling_of(run, Strategy::EventLoop, &frame, active, 1, &key)?;
    again.key = format!("many/{key}");
    ceiling.pool(&again);
    let ceiling = run.ceiling(ceiling);
    for mut m in measured {
        m.relate(&ceiling);
        run.record(m);
    }
    Ok(())
}

/// Waits until the server holds `n` connections (`active` counts the stats
/// connection too; outside servers do not report it, so a pause stands in).
fn settle(server: &Server, n: usize, deadline: Instant) -> Result<(), Error> {
    loop {
        match server.stats() {
            Some((tcp, _)) if tcp.active as usize > n => return Ok(()),
            Some((tcp, _)) if tcp.active == 0 => {
                std::thread::sleep(Duration::from_millis(100));
                return Ok(());
            }
            _ if Instant::now() > deadline => {
                return Err(Error::Timeout {
                    what: format!("the server accepting {n} connections"),
                    after: Duration::from_secs(120),
                });
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Opens `idle` connections, waits until the server holds them, and says
/// what they cost in memory.
fn hold_idle(server: &Server, idle: usize) -> Result<(Vec<TcpStream>, String), Error> {
    let base = server.sample().map_or(0, |s| s.rss);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held = Vec::with_capacity(idle);
    // In batches well under the listen backlog, each accepted before the
    // next: connects past a full backlog lose their SYN and wait a second.
    for batch in (0..idle).collect::<Vec<_>>().chunks(1000) {
        for &i in batch {
            let s = TcpStream::connect_timeout(&server.tcp(), Duration::from_secs(5))
                .map_err(Error::io(format!("idle connection {i} of {idle}")))?;
            held.push(s);
        }
        settle(server, held.len(), deadline)?;
    }
    let rss = server.sample().map_or(0, |s| s.rss);
    let per_conn = rss.saturating_sub(base) as f64 / idle as f64;
    let note = format!(
        "{idle} idle connections held; server RSS {:.1} MiB beside them, {:.1} KiB per idle connection",
        rss as f64 / 1_048_576.0,
        per_conn / 1024.0
    );
    Ok((held, note))
}
