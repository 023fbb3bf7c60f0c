//! What every scenario shares: the options of the run, the server under
//! test with its /proc and `stats` probes, and the run in progress a
//! scenario records into. Below the scenarios, which the runner calls.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use indicatif::ProgressBar;

use super::driver::Schedule;
use crate::measure::proc::ProcSample;
use crate::schema::bench::{
    BenchRun, BenchTarget, Measurement, Mode, Parameters, Placement, ServerUse, Status,
};
use crate::target::TargetSpec;
use crate::target::server::Launch;
pub use crate::target::server::Server;

/// A scenario family, as `--scenario` and `--only` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Family {
    /// Open-loop capacity at a latency target.
    Capacity,
    /// Closed-loop echo: request-response and pipelined.
    Echo,
    /// Uploads with MD5.
    Upload,
    /// UDP echo: the loss-free rate.
    Udp,
    /// Many idle connections beside active ones.
    Many,
    /// The codec against tokio-util's, in a process of its own.
    Codec,
}

impl Family {
    /// Every family, in run order.
    pub const ALL: [Family; 6] = [
        Family::Capacity,
        Family::Echo,
        Family::Upload,
        Family::Udp,
        Family::Many,
        Family::Codec,
    ];

    /// The name reports and `--only` use.
    pub fn name(self) -> &'static str {
        match self {
            Family::Capacity => "capacity",
            Family::Echo => "echo",
            Family::Upload => "upload",
            Family::Udp => "udp",
            Family::Many => "many",
            Family::Codec => "codec",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = UnknownFamily;

    fn from_str(s: &str) -> Result<Family, UnknownFamily> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFamily(s.to_owned()))
    }
}

/// A scenario name that is not a family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {0:?} (expected some of: capacity, echo, upload, udp, many, codec)")]
pub struct UnknownFamily(pub String);

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `quick` or `full`.
    pub mode: Mode,
    /// Servers to measure.
    pub targets: Vec<TargetSpec>,
    /// Scenario families to run.
    pub scenarios: Vec<Family>,
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

    /// Options that repeat `previous` (its mode, parameters, seed and
    /// placement) on our back-ends `backends`, for the `only`
    /// configurations: the gate's confirming run. No peer, no anchors, no
    /// progress bars.
    pub fn repeating(
        previous: &BenchRun,
        backends: &[String],
        only: &[String],
        exe: PathBuf,
    ) -> Result<BenchOptions, UnknownFamily> {
        let mut scenarios = only
            .iter()
            .map(|o| o.split(' ').next().unwrap_or("").parse::<Family>())
            .collect::<Result<Vec<_>, _>>()?;
        scenarios.sort();
        scenarios.dedup();
        let pin = match previous.parameters.pinning {
            Placement::Unpinned => None,
            Placement::Pinned(_) => crate::measure::pin::Pinning::detect(),
        };
        Ok(BenchOptions {
            mode: previous.mode,
            targets: backends
                .iter()
                .map(|b| TargetSpec::Backend(b.clone()))
                .collect(),
            scenarios,
            params: previous.parameters.clone(),
            seed: previous.seed,
            exe,
            progress: false,
            netem: None,
            pin,
            anchors: false,
            only: only.to_vec(),
        })
    }

    /// Whether the run includes this scenario family.
    pub fn wants(&self, family: Family) -> bool {
        self.scenarios.contains(&family)
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

/// Starts `spec` for a measurement with extra serve flags, on the
/// server's CPU when pinned; an address target is only connected to (and
/// `extra` must be empty).
pub fn start(spec: &TargetSpec, opts: &BenchOptions, extra: &[&str]) -> Result<Server> {
    let launch = Launch::new("bench")
        .flags(extra.iter().copied())
        .pinned(opts.pin);
    Ok(Server::start(spec, &opts.exe, &launch)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate's confirming run repeats the current run through its
    /// parameters, not through a command line: what goes in comes out.
    #[test]
    fn a_repeating_run_keeps_the_previous_parameters() {
        let mut previous = BenchRun::empty();
        previous.parameters.rep_ms = 123;
        previous.parameters.repetitions = 7;
        previous.parameters.capacity.slo = "p90=2ms".parse().unwrap();
        previous.seed = 42;
        let only = ["echo rr/64B/16c".to_owned(), "codec".to_owned()];
        let o = BenchOptions::repeating(&previous, &["mio".into()], &only, "x".into()).unwrap();
        assert_eq!(o.params, previous.parameters);
        assert_eq!((o.mode, o.seed), (previous.mode, 42));
        assert_eq!(o.scenarios, [Family::Echo, Family::Codec]);
        assert!(o.wants_config("echo", "rr/64B/16c") && !o.wants_config("echo", "rr/64B/1c"));
        assert_eq!(o.pin, None, "the previous run was not pinned");
        assert!(matches!(&o.targets[..], [TargetSpec::Backend(b)] if b == "mio"));
        let bad = ["nope key".to_owned()];
        assert!(BenchOptions::repeating(&previous, &[], &bad, "x".into()).is_err());
    }
}
