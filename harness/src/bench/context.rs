//! What every scenario shares: the options of the run, the server under
//! test with its /proc and `stats` probes, and the run in progress a
//! scenario records into. Below the scenarios, which the runner calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde_json::json;
use sockbench_core::{TcpStats, UdpStats};

use super::driver::Schedule;
use crate::measure::proc::{self, ProcSample};
use crate::peer::client::Client;
use crate::schema::bench::{BenchTarget, Measurement, Mode, Parameters, ServerUse, Status};
use crate::target::{Spawned, TargetSpec, command_for};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `quick` or `full`.
    pub mode: Mode,
    /// Servers to measure.
    pub targets: Vec<TargetSpec>,
    /// Scenario families to run.
    pub scenarios: Vec<String>,
    /// Parameters.
    pub params: Parameters,
    /// Payload seed.
    pub seed: u64,
    /// The sockbench executable.
    pub exe: PathBuf,
    /// Draw progress bars.
    pub progress: bool,
    /// Run the netem comparison instead of the scenarios.
    pub netem: Option<crate::schema::udp::NetemSpec>,
    /// Where the driver and the servers run, when pinned.
    pub pin: Option<crate::measure::pin::Pinning>,
    /// Run iperf3 and sockperf beside the ceilings.
    pub anchors: bool,
    /// Only these configurations (`SCENARIO KEY`, or a whole `SCENARIO`);
    /// empty for all.
    pub only: Vec<String>,
}

impl BenchOptions {
    /// Warm-up and repetitions of every steady-state measurement.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            warmup: Duration::from_millis(self.params.warmup_ms),
            reps: self.params.repetitions,
            rep: Duration::from_millis(self.params.rep_ms),
        }
    }

    /// Whether the run includes this scenario family.
    pub fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }

    /// Whether `--only` leaves this configuration in.
    pub fn wants_config(&self, scenario: &str, key: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|o| match o.split_once(' ') {
                Some((s, k)) => s == scenario && k == key,
                None => o == scenario,
            })
    }
}

/// A server for a measurement: started for it, with its own storage
/// directory, or one already running at an address (`bench --tcp`).
pub struct Server {
    /// The child, when we started it.
    pub proc: Option<Spawned>,
    tcp: SocketAddr,
    udp: Option<SocketAddr>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `spec` with extra serve flags, on the server's CPU when pinned;
    /// an address target is only connected to (and `extra` must be empty).
    pub fn start(
        spec: &TargetSpec,
        exe: &std::path::Path,
        extra: &[&str],
        pin: Option<crate::measure::pin::Pinning>,
    ) -> Result<Server> {
        if let TargetSpec::Address { tcp, udp, .. } = spec {
            if !extra.is_empty() {
                anyhow::bail!(
                    "a server already running cannot be restarted with {}",
                    extra.join(" ")
                );
            }
            return Ok(Server {
                proc: None,
                tcp: *tcp,
                udp: *udp,
                _dir: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("sockbench-bench-")
            .tempdir()?;
        let mut cmd = command_for(spec, exe).context("bench targets must be spawnable")?;
        cmd.arg("--storage").arg(dir.path()).args(extra);
        if let Some(p) = pin {
            p.pin_server(&mut cmd);
        }
        let proc = Spawned::start(cmd, Duration::from_secs(15))?;
        let (tcp, udp) = (proc.ready.tcp, Some(proc.ready.udp));
        Ok(Server {
            proc: Some(proc),
            tcp,
            udp,
            _dir: Some(dir),
        })
    }

    /// The TCP address.
    pub fn tcp(&self) -> SocketAddr {
        self.tcp
    }

    /// The UDP address, if the target has one.
    pub fn udp(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// Its counters, by a stats request on a new connection.
    pub fn stats(&self) -> Option<(TcpStats, UdpStats)> {
        stats(self.tcp())
    }

    /// Its CPU and memory now: from /proc for a child, from the optional
    /// `process` object of its `stats` reply otherwise; `None` without either.
    pub fn sample(&self) -> Option<ProcSample> {
        match &self.proc {
            Some(p) => proc::sample(p.pid()),
            None => remote_use(self.tcp()).map(|u| ProcSample {
                user_s: u.cpu_user_s,
                sys_s: u.cpu_sys_s,
                cpu_precise_s: u.cpu_user_s + u.cpu_sys_s,
                peak_rss: u.rss_peak_kib * 1024,
                rss: u.rss_peak_kib * 1024,
            }),
        }
    }
}

/// The `process` object of a server's `stats` reply, if it has one.
pub fn remote_use(addr: SocketAddr) -> Option<sockbench_core::ProcessUse> {
    let t = Duration::from_secs(10);
    let mut c = Client::connect(addr, Default::default(), t).ok()?;
    let r = c
        .request(&json!({"op": "stats", "file_size": 0}), b"", t)
        .ok()?;
    serde_json::from_value(r.header.get("process")?.clone()).ok()
}

/// A server's counters; `None` when it does not answer within 10 s.
pub fn stats(addr: SocketAddr) -> Option<(TcpStats, UdpStats)> {
    let t = Duration::from_secs(10);
    let mut c = Client::connect(addr, Default::default(), t).ok()?;
    let r = c
        .request(&json!({"op": "stats", "file_size": 0}), b"", t)
        .ok()?;
    Some((
        serde_json::from_value(r.header["tcp"].clone()).ok()?,
        serde_json::from_value(r.header["udp"].clone()).ok()?,
    ))
}

/// Server resources between two samples, for `frames` frames and `bytes` bytes.
pub fn server_use(before: &ProcSample, after: &ProcSample, frames: f64, bytes: f64) -> ServerUse {
    let cpu_s = (after.cpu_precise_s - before.cpu_precise_s).max(0.0);
    ServerUse {
        cpu_s,
        user_s: after.user_s - before.user_s,
        sys_s: after.sys_s - before.sys_s,
        peak_rss_bytes: after.peak_rss,
        cpu_us_per_frame: if frames > 0.0 {
            cpu_s / frames * 1e6
        } else {
            0.0
        },
        cpu_s_per_mframe: if frames > 0.0 {
            cpu_s / frames * 1e6
        } else {
            0.0
        },
        cpu_s_per_gb: if bytes > 0.0 {
            cpu_s / (bytes / 1e9)
        } else {
            0.0
        },
    }
}

/// Progress and bookkeeping shared by the scenarios.
pub struct Run<'a> {
    /// Options.
    pub opts: &'a BenchOptions,
    /// Targets and what they declared.
    pub targets: Vec<(TargetSpec, BenchTarget)>,
    /// Ceilings measured so far.
    pub ceilings: Vec<Measurement>,
    /// Results so far.
    pub results: Vec<Measurement>,
    /// Progress, one step per measurement.
    pub bar: ProgressBar,
}

impl Run<'_> {
    /// Shows what is being measured.
    pub fn step(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// Records a result and advances the progress bar.
    pub fn record(&mut self, m: Measurement) {
        self.bar.inc(1);
        if m.status != Status::Ok {
            self.bar.println(format!(
                "  {} {} on {}: {} ({})",
                m.scenario,
                m.key,
                m.target,
                m.status,
                m.reason.as_deref().unwrap_or("")
            ));
        }
        self.results.push(m);
    }

    /// Records a ceiling.
    pub fn ceiling(&mut self, m: Measurement) -> Measurement {
        self.bar.inc(1);
        self.ceilings.push(m.clone());
        m
    }
}

/// `64B`, `1KiB`, `64MiB`: sizes as keys show them.
pub fn size_label(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}
