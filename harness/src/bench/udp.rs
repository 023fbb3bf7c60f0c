//! The UDP scenario: for each datagram size, raise the offered rate until
//! loss appears (the loss curve), then measure the highest loss-free rate
//! in repetitions. The server's own datagrams_in tells request loss (never
//! reached the server) from reply loss.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;

use super::ceilings::{Strategy, UdpSink};
use super::context::{Run, Server, server_use, start};
use crate::error::Error;
use crate::measure::stats::{Latency, Summary, histogram};
use crate::schema::bench::{Accuracy, CurvePoint, Measurement, Scenario, Status, UdpCounts};
use crate::udp::relay::{Impairment, Relay, RelayConfig};
use crate::udp::seq::{self, Probe};

/// The sweep stops here whatever the loss (datagrams per second).
const MAX_RATE: f64 = 2_560_000.0;

/// Runs the UDP sweep on every target.
pub fn run(run: &mut Run<'_>) -> Result<()> {
    let opts = run.opts;
    for &size in &opts.params.udp_sizes.clone() {
        let key = format!("{size}B");
        if !opts.wants_config("udp", &key) {
            continue;
        }
        // Batched and a datagram per call (see ceilings/udp_echo.rs), the
        // faster kept.
        let raw_echo = |run: &Run<'_>, strategy: Strategy, how: &str| -> Result<Measurement> {
            let c = super::ceilings::spawn(&opts.exe, strategy, 0, opts.pin)?;
            Ok(sweep(
                run,
                c.udp,
                size,
                None,
                Scenario::Ceiling,
                &format!("udp/{key}"),
                &format!("raw UDP echo ({how})"),
            ))
        };
        let mut best: Option<(Measurement, Strategy, &str)> = None;
        let mut tried = Vec::new();
        for (strategy, how) in [
            (Strategy::EventLoop, "batched"),
            (Strategy::Threads, "a datagram per call"),
        ] {
            run.step(&format!("udp {key}: raw echo ceiling ({how})"));
            let m = raw_echo(run, strategy, how)?;
            tried.push(format!("{how}: {:.0}", m.value.median));
            let better = best.as_ref().is_none_or(|(b, ..)| {
                m.status == Status::Ok
                    && (b.status != Status::Ok || m.value.median > b.value.median)
            });
            if better {
                best = Some((m, strategy, how));
            }
        }
        let (mut ceiling, strategy, how) = best.expect("two candidates");
        ceiling.notes.push(format!(
            "faster of the raw echoes by median ({}), measured again after each target",
            tried.join(", ")
        ));
        run.step(&format!("udp {key}: the sender's one-way rate"));
        let sender = sender_rate(run, size, &key);
        run.ceiling(sender);
        let mut measured = Vec::new();
        for (spec, info) in run.targets.clone() {
            run.step(&format!("udp {key} on {}", info.name));
            let m = match start(&spec, opts, &[]) {
                Ok(server) => match server.udp() {
                    Some(udp) => sweep(
                        run,
                        udp,
                        size,
                        Some(&server),
                        Scenario::Udp,
                        &key,
                        &info.name,
                    ),
                    None => Measurement::new(
                        Scenario::Udp,
                        &key,
                        &info.name,
                        "datagrams/s",
                        "open-loop",
                    )
                    .not_applicable("no UDP address given (--udp)"),
                },
                Err(e) => {
                    Measurement::new(Scenario::Udp, &key, &info.name, "datagrams/s", "open-loop")
                        .failed(format!("{e:#}"))
                }
            };
            measured.push(m);
            // Again after each target, as for the echo ceilings: the
            // machine's speed can drift within seconds on a shared host.
            run.step(&format!("udp {key}: raw echo ceiling again"));
            ceiling.pool(&raw_echo(run, strategy, how)?);
        }
        let ceiling = run.ceiling(ceiling);
        for mut m in measured {
            m.relate(&ceiling);
            run.record(m);
        }
    }
    Ok(())
}

/// How fast our sender alone sends `size`-byte datagrams into a sink on
/// the server's CPU, per repetition: what the sweep can offer at most.
fn sender_rate(run: &Run<'_>, size: usize, key: &str) -> Measurement {
    let opts = run.opts;
    let m = Measurement::new(
        Scenario::Ceiling,
        &format!("udp-sender/{key}"),
        "our UDP sender (one-way, batched)",
        "datagrams/s",
        "open-loop, unpaced",
    );
    let sink = match UdpSink::sink(opts.pin.map(|p| p.server)) {
        Ok(s) => s,
        Err(e) => return m.failed(format!("the sink: {e}")),
    };
    let schedule = opts.schedule();
    if let Err(e) = seq::one_way(sink.addr, size, schedule.warmup) {
        return m.failed(format!("one-way warm-up: {e}"));
    }
    let mut reps = Vec::with_capacity(schedule.reps);
    for _ in 0..schedule.reps {
        match seq::one_way(sink.addr, size, schedule.rep) {
            Ok(r) => reps.push(r),
            Err(e) => return m.failed(format!("one-way: {e}")),
        }
    }
    let mut m = m.with_reps(reps);
    m.mb_per_s = Some(Summary::of(
        &m.reps
            .iter()
            .map(|r| r * size as f64 / 1e6)
            .collect::<Vec<_>>(),
    ));
    m
}

fn sweep(
    run: &Run<'_>,
    addr: SocketAddr,
    size: usize,
    server: Option<&Server>,
    scenario: Scenario,
    key: &str,
    target: &str,
) -> Measurement {
    let p = &run.opts.params;
    let step = Duration::from_millis(p.rep_ms.max(50));
    let drain = Duration::from_millis(50);
    let mut m = Measurement::new(scenario, key, target, "datagrams/s", "open-loop, paced");
    let mut rate = p.udp_start_rate as f64;
    let mut best: Option<f64> = None;
    // One step of the sweep: the curve gets a point; true when loss-free.
    let probe = |m: &mut Measurement, rate: f64| -> Result<(bool, f64), Error> {
        let before = server.and_then(Server::stats);
        let r = seq::run(
            addr,
            &Probe {
                size,
                rate,
                duration: step,
                drain,
            },
        )
        .map_err(Error::io(format!("probe at {rate} datagrams/s")))?;
        let reached = server
            .and_then(Server::stats)
            .zip(before)
            .map(|((_, a), (_, b))| a.datagrams_in - b.datagrams_in);
        let request_loss = match reached {
            Some(n) if r.lost > 0 => r.sent.saturating_sub(n) as f64 / r.lost as f64,
            _ => 0.0,
        };
        let secs = step.as_secs_f64();
        m.curve.push(CurvePoint {
            offered: rate,
            sent: r.sent as f64 / secs,
            received: r.received as f64 / secs,
            loss: r.loss(),
            request_loss,
        });
        Ok((r.loss() <= p.udp_loss_onset, r.sent as f64 / secs))
    };
    let mut lossy: Option<f64> = None;
    loop {
        let (clean, sent) = match probe(&mut m, rate) {
            Ok(v) => v,
            Err(e) => return m.failed(e),
        };
        if !clean {
            lossy = Some(rate);
            break;
        }
        best = Some(rate);
        if sent < 0.7 * rate {
            // One probe's shortfall, not the sender's ceiling: on a shared
            // machine an earlier probe may have sent more.
            m.notes.push(format!(
                "the sender fell behind at {rate:.0} datagrams/s offered ({sent:.0} sent): \
                 sender-limited"
            ));
            m.limited_by = Some("sender".into());
            break;
        }
        if rate >= MAX_RATE {
            m.notes.push(format!(
                "no loss up to {MAX_RATE} datagrams/s, the sweep's end"
            ));
            break;
        }
        rate *= 2.0;
    }
    // Bisect between the last clean rate and the first lossy one.
    if let (Some(mut lo), Some(mut hi)) = (best, lossy) {
        for _ in 0..3 {
            let mid = (lo * hi).sqrt();
            match probe(&mut m, mid) {
                Ok((true, _)) => lo = mid,
                Ok((false, _)) => hi = mid,
                Err(e) => return m.failed(e),
            }
        }
        best = Some(lo);
    }
    m.curve.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    // The rate the sender achieved, not the one it was asked for: where the
    // sender is the limit, the two differ, and only the first was loss-free.
    let achieved = best.and_then(|_| {
        m.curve
            .iter()
            .filter(|c| c.loss <= p.udp_loss_onset)
            .map(|c| c.sent)
            .max_by(f64::total_cmp)
    });
    let best = achieved.unwrap_or_else(|| {
        m.notes
            .push("loss above the onset already at the lowest offered rate".into());
        p.udp_start_rate as f64
    });
    m.notes.push(format!(
        "highest loss-free rate: {best:.0} datagrams/s sent (loss at most {:.1}%)",
        p.udp_loss_onset * 100.0
    ));
    let mut m = repeat_at(run, addr, size, server, m, best);
    match accuracy(addr, size, run.opts.seed) {
        Ok(a) => m.accuracy = Some(a),
        Err(e) => m
            .notes
            .push(format!("the accuracy probe through the relay failed: {e}")),
    }
    m
}

/// The measurement proper: repetitions at the highest loss-free rate
/// `best`, with the server's CPU over them.
fn repeat_at(
    run: &Run<'_>,
    addr: SocketAddr,
    size: usize,
    server: Option<&Server>,
    m: Measurement,
    best: f64,
) -> Measurement {
    let p = &run.opts.params;
    let drain = Duration::from_millis(50);
    let before = server.and_then(Server::sample);
    let mut rates = Vec::new();
    let mut losses = Vec::new();
    let mut hist = histogram();
    let rep = Duration::from_millis(p.rep_ms);
    for _ in 0..p.repetitions {
        match seq::run(
            addr,
            &Probe {
                size,
                rate: best,
                duration: rep,
                drain,
            },
        ) {
            Ok(r) => {
                rates.push(r.received as f64 / rep.as_secs_f64());
                losses.push(r.loss());
                let _ = hist.add(&r.latency);
            }
            Err(e) => return m.failed(format!("repetition at {best}: {e}")),
        }
    }
    let after = server.and_then(Server::sample);
    let mut m = m.with_reps(rates);
    m.mb_per_s = Some(Summary::of(
        &m.reps
            .iter()
            .map(|r| r * size as f64 / 1e6)
            .collect::<Vec<_>>(),
    ));
    m.latency = Some(Latency::of(&hist));
    let loss = Summary::of(&losses);
    m.notes.push(format!(
        "loss in the repetitions: median {:.3}%, max {:.3}%",
        loss.median * 100.0,
        loss.max * 100.0
    ));
    if let (Some(a), Some(b)) = (before, after) {
        let frames = m.reps.iter().sum::<f64>() * rep.as_secs_f64();
        m.server = Some(server_use(&a, &b, frames, frames * size as f64 * 2.0));
    }
    m
}

/// The relay's standard impairment: bursts of loss, duplicates, reordering
/// and corruption both ways.
pub fn standard_impairment(seed: u64) -> RelayConfig {
    RelayConfig {
        seed,
        to_server: Impairment {
            drop: 0.02,
            burst: 3,
            duplicate: 0.01,
            reorder: 0.02,
            reorder_depth: 3,
            corrupt: 0.01,
            ..Impairment::default()
        },
        to_client: Impairment {
            drop: 0.01,
            burst: 1,
            duplicate: 0.01,
            reorder: 0.01,
            reorder_depth: 2,
            corrupt: 0.01,
            ..Impairment::default()
        },
    }
}

/// Probes through the seeded relay at a moderate rate and sets the
/// measured counts beside those the relay's record predicts.
fn accuracy(server: SocketAddr, size: usize, seed: u64) -> Result<Accuracy, Error> {
    let config = standard_impairment(seed);
    let relay = Relay::start(server, &config).map_err(Error::io("starting the relay"))?;
    let probe = Probe {
        size,
        rate: 5000.0,
        duration: Duration::from_millis(200),
        drain: Duration::from_millis(100),
    };
    let got = seq::run(relay.addr, &probe).map_err(Error::io("probing through the relay"))?;
    std::thread::sleep(Duration::from_millis(10));
    let record = relay.record();
    let want = record.expected(got.sent);
    Ok(Accuracy {
        seed,
        sent: got.sent,
        dropped_requests: record.to_server.dropped,
        dropped_replies: record.to_client.dropped,
        injected: UdpCounts {
            received: want.received,
            duplicates: want.duplicates,
            out_of_order: want.out_of_order,
            corrupted: want.corrupted,
            lost: want.lost,
        },
        measured: UdpCounts {
            received: got.received,
            duplicates: got.duplicates,
            out_of_order: got.out_of_order,
            corrupted: got.corrupted,
            lost: got.lost,
        },
    })
}
