//! `sockbench bench --netem SPEC`: the UDP probe across two network
//! namespaces impaired by netem, beside the same probe through the relay
//! impairing loopback by the same loss. netem's loss is random; the relay's
//! is seeded and exactly accounted; the two should agree within noise.

use std::time::Duration;

use anyhow::{Result, anyhow};

use super::context::BenchOptions;
use crate::measure::stats::Summary;
use crate::schema::bench::NetemResult;
use crate::schema::udp::{NetemSpec, ProbeSummary};
use crate::target::TargetSpec;
use crate::target::server::{Launch, Server};
use crate::udp::netem::Namespaces;
use crate::udp::relay::{Impairment, Relay, RelayConfig};
use crate::udp::seq::{self, Probe};

/// Runs the comparison for every back-end target.
pub fn run(opts: &BenchOptions, spec: &NetemSpec) -> Result<Vec<NetemResult>> {
    let ns = Namespaces::create(spec).map_err(|e| anyhow!(e))?;
    let rate = 5000.0;
    let duration = Duration::from_millis(opts.params.rep_ms.max(200) * 2);
    let mut out = Vec::new();
    for spec_target in &opts.targets {
        let TargetSpec::Backend(name) = spec_target else {
            eprintln!(
                "netem mode runs our back-ends only; {} is left out",
                spec_target.name()
            );
            continue;
        };
        let server = Server::start_command(name, ns.server_command(&opts.exe, name), None)?;
        let loopback = Server::start(
            spec_target,
            &opts.exe,
            &Launch::new("netem").flags(["--no-fsync"]),
        )?;
        let (Some(server_udp), Some(loopback_udp)) = (server.udp(), loopback.udp()) else {
            anyhow::bail!("{name} announced no UDP address");
        };
        for &size in &opts.params.udp_sizes {
            let mut netem = Vec::new();
            let mut relay = Vec::new();
            for rep in 0..opts.params.repetitions {
                netem.push(
                    ns.probe(&opts.exe, server_udp, size, rate, duration)
                        .map_err(|e| anyhow!(e))?,
                );
                let p = spec.loss_pct / 100.0;
                let config = RelayConfig {
                    seed: opts.seed + rep as u64,
                    to_server: Impairment {
                        drop: p,
                        burst: 1,
                        ..Impairment::default()
                    },
                    to_client: Impairment {
                        drop: p,
                        burst: 1,
                        ..Impairment::default()
                    },
                };
                let r = Relay::start(loopback_udp, &config)?;
                let got = seq::run(
                    r.addr,
                    &Probe {
                        size,
                        rate,
                        duration,
                        drain: Duration::from_millis(100),
                    },
                )?;
                relay.push(ProbeSummary::from(&got));
            }
            let loss = |v: &[ProbeSummary]| {
                Summary::of(
                    &v.iter()
                        .map(|p| p.lost as f64 / p.sent.max(1) as f64)
                        .collect::<Vec<_>>(),
                )
            };
            out.push(NetemResult {
                target: name.clone(),
                size,
                spec: *spec,
                expected_loss: spec.round_trip_loss(),
                netem_loss: loss(&netem),
                relay_loss: loss(&relay),
                netem,
                relay,
            });
        }
    }
    Ok(out)
}
