//! What a benchmark run measured, as written to results.json (schema
//! `sockbench-bench/1`) and read back by `sockbench report` and `gate`.

use serde::{Deserialize, Serialize};

use crate::measure::stats::{Latency, Summary};
use crate::schema::load::{Plan, Slo, Step};
use crate::schema::machine::Machine;
use crate::schema::udp::{NetemSpec, ProbeSummary};

/// The schema tag of results.json.
pub const SCHEMA: &str = "sockbench-bench/1";

/// A whole benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    /// `sockbench-bench/1`.
    pub schema: String,
    /// sockbench's version.
    pub tool_version: String,
    /// Where it ran: machine, kernel, rustc, git revision.
    pub machine: Machine,
    /// Seed of the run's randomness (payload contents).
    pub seed: u64,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall time.
    pub duration_s: f64,
    /// `quick` or `full`.
    pub mode: Mode,
    /// Every parameter of the run.
    pub parameters: Parameters,
    /// The servers measured, in column order.
    pub targets: Vec<BenchTarget>,
    /// Ceilings measured in the same run.
    pub ceilings: Vec<Measurement>,
    /// Every (scenario, target) measurement.
    pub results: Vec<Measurement>,
    /// Codec micro-measurements: ours beside the ordinary alternative.
    pub codec: Vec<CodecResult>,
    /// Wall seconds spent on each scenario family.
    #[serde(default)]
    pub family_seconds: std::collections::BTreeMap<String, f64>,
    /// How many runs were pooled into this one (a baseline pools several).
    #[serde(default = "one")]
    pub runs: usize,
    /// The scheduling floor of the CPUs used (stolen time), measured first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floor: Vec<crate::measure::floor::CpuFloor>,
    /// The netem mode's results (`--netem`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netem: Vec<NetemResult>,
    /// iperf3 and sockperf beside our ceilings (`--anchors`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<Anchor>,
    /// Back-ends asked for that this machine cannot run, not measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<UnavailableTarget>,
}

/// A back-end that was not measured because this machine cannot run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableTarget {
    /// The back-end.
    pub name: String,
    /// Why (the kernel feature missing or forbidden).
    pub reason: String,
}

fn one() -> usize {
    1
}

/// The parameters of a run; two runs are comparable when these agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Warm-up before the measured repetitions, excluded from results.
    pub warmup_ms: u64,
    /// Length of one repetition.
    pub rep_ms: u64,
    /// Measured repetitions (at least five).
    pub repetitions: usize,
    /// Echo body sizes.
    pub echo_bodies: Vec<usize>,
    /// Echo connection counts.
    pub echo_connections: Vec<usize>,
    /// Bytes in flight per connection when pipelining.
    pub pipeline_window_bytes: usize,
    /// Most frames in flight per connection when pipelining.
    pub pipeline_max_depth: usize,
    /// Upload size in bytes.
    pub upload_bytes: u64,
    /// UDP datagram sizes.
    pub udp_sizes: Vec<usize>,
    /// First offered UDP rate (datagrams/s); the sweep doubles it.
    pub udp_start_rate: u64,
    /// Loss above this fraction ends the sweep ("loss onset").
    pub udp_loss_onset: f64,
    /// Idle connections of the many-connections scenario.
    pub many_idle: usize,
    /// Active connections beside them.
    pub many_active: usize,
    /// CPU placement: `load driver on CPU 0, server on CPU 1`, or `none`.
    #[serde(default)]
    pub pinning: Placement,
    /// The capacity scenario's search (absent in runs made before it).
    #[serde(default)]
    pub capacity: CapacityParams,
}

/// How the capacity scenario searches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityParams {
    /// Body sizes.
    pub bodies: Vec<usize>,
    /// Connection counts.
    pub connections: Vec<usize>,
    /// The latency target.
    pub slo: Slo,
    /// Ramp and bisection.
    pub plan: Plan,
    /// Warm-up of each step, not recorded.
    pub warmup_ms: u64,
    /// Measured windows per step (judged on the median).
    pub windows: usize,
    /// Length of each window.
    pub window_ms: u64,
    /// A request unanswered this long is a timeout (fails the step).
    pub timeout_ms: u64,
}

impl Default for CapacityParams {
    fn default() -> Self {
        CapacityParams {
            bodies: Vec::new(),
            connections: Vec::new(),
            slo: Slo::default(),
            plan: Plan {
                start_rate: 1000.0,
                factor: 2.0,
                max_rate: 1000.0,
                bisect: 0,
                confirm: 0,
            },
            warmup_ms: 0,
            windows: 0,
            window_ms: 0,
            timeout_ms: 0,
        }
    }
}

/// A server measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchTarget {
    /// Column name.
    pub name: String,
    /// `backend` or `spawn`.
    pub kind: String,
    /// Command line.
    pub detail: String,
    /// Declared concurrency.
    pub concurrent: bool,
}

/// How the server spent resources during the measured repetitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUse {
    /// CPU seconds (user + system, nanosecond resolution).
    pub cpu_s: f64,
    /// User CPU seconds (clock ticks).
    pub user_s: f64,
    /// System CPU seconds (clock ticks).
    pub sys_s: f64,
    /// Peak resident set size.
    pub peak_rss_bytes: u64,
    /// CPU microseconds per frame (or datagram).
    pub cpu_us_per_frame: f64,
    /// CPU seconds per million frames.
    pub cpu_s_per_mframe: f64,
    /// CPU seconds per GB moved (in plus out).
    pub cpu_s_per_gb: f64,
}

/// Deterministic-ish counts of system calls, from the server's `stats`
/// and the driver's own counts; they make the sticky and split paths visible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Syscalls {
    /// Server socket reads per request frame.
    pub server_reads_per_frame: f64,
    /// Server socket writes per request frame.
    pub server_writes_per_frame: f64,
    /// Request frames per server read (the coalescing the server sees).
    pub server_frames_per_read: f64,
    /// Driver reads per reply frame.
    pub driver_reads_per_frame: f64,
    /// Driver writes per request frame.
    pub driver_writes_per_frame: f64,
    /// The server's system calls per request frame: its `tcp.syscalls`
    /// where it counts them (the event loops: waits, reads and writes,
    /// would-block calls included; `uring`: `io_uring_enter`
    /// calls), else reads plus writes, a lower bound. 0 when unknown, as in
    /// results from before it was recorded.
    #[serde(default)]
    pub server_syscalls_per_frame: f64,
}

/// How long a run measures: `bench --quick` or the full run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The two-minute run CI uses.
    Quick,
    /// Every configuration, longer repetitions.
    Full,
}

/// The scenario family a measurement belongs to, or `ceiling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Open-loop capacity at a latency target.
    Capacity,
    /// Closed-loop echo: request-response and pipelined.
    Echo,
    /// Uploads with MD5.
    Upload,
    /// UDP echo.
    Udp,
    /// Many idle connections beside active ones.
    Many,
    /// A ceiling measured in the same run.
    Ceiling,
}

/// Where the load driver and the server ran; in results.json a string,
/// `none` (or empty, in runs made before this type) when not pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Placement {
    /// The scheduler decided.
    #[default]
    Unpinned,
    /// Pinned, as described (`load driver on CPU 0, server on CPU 1`).
    Pinned(String),
}

impl From<String> for Placement {
    fn from(s: String) -> Placement {
        match s.as_str() {
            "" | "none" => Placement::Unpinned,
            _ => Placement::Pinned(s),
        }
    }
}

impl From<Placement> for String {
    fn from(p: Placement) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Unpinned => f.write_str("none"),
            Placement::Pinned(how) => f.write_str(how),
        }
    }
}

/// Whether a measurement has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Measured.
    #[serde(rename = "ok")]
    Ok,
    /// Not applicable to this target (`reason` says why).
    #[serde(rename = "n/a")]
    NotApplicable,
    /// The measurement failed (`reason` says why).
    #[serde(rename = "error")]
    Error,
}

impl Mode {
    /// As results.json spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
}

impl Scenario {
    /// As results.json spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Capacity => "capacity",
            Scenario::Echo => "echo",
            Scenario::Upload => "upload",
            Scenario::Udp => "udp",
            Scenario::Many => "many",
            Scenario::Ceiling => "ceiling",
        }
    }
}

impl Status {
    /// As results.json spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotApplicable => "n/a",
            Status::Error => "error",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Mode, Scenario, Status);

/// One scenario on one target (or one ceiling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Scenario family, or `ceiling`.
    pub scenario: Scenario,
    /// The configuration within the family, e.g. `rr/64B/16c`.
    pub key: String,
    /// Target name, or the ceiling's name.
    pub target: String,
    /// Measured, not applicable to this target, or failed.
    pub status: Status,
    /// Why n/a or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unit of `reps` and `value`.
    pub unit: String,
    /// One value per measured repetition.
    pub reps: Vec<f64>,
    /// Their summary.
    pub value: Summary,
    /// Payload throughput in MB/s, where bytes matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_s: Option<Summary>,
    /// Latency over all measured repetitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// `closed-loop` (a window of requests per connection) or `open-loop` (offered rate).
    pub load: String,
    /// The server's resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUse>,
    /// The load driver's CPU microseconds per frame, beside the server's.
    #[serde(default)]
    pub driver_cpu_us_per_frame: f64,
    /// A ceiling's own CPU seconds per GB (the store loop's thread): the
    /// work's cost, which a noisy machine moves less than its rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s_per_gb: Option<f64>,
    /// System call counts per frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Syscalls>,
    /// The ceiling this result is a ratio to (`scenario/key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<String>,
    /// Each repetition's value over the ceiling's median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Summary>,
    /// What else a reader should know (starved connections, loss curve...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Extra series (the UDP loss curve: offered rate, achieved, loss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<CurvePoint>,
    /// UDP: the probe's counts through the impairment relay beside the relay's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    /// Capacity: every step of the search (latency against offered rate: the knee).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knee: Vec<Step>,
    /// What set this rate when it was not the target: `sender` when the
    /// UDP sender fell behind the offered rate before any loss. Such a
    /// result bounds the target from below and gets no ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    /// Echo: connections that completed nothing because the target served
    /// them one at a time. Its figure is then one connection's round trip
    /// with the rest waiting, set by the machine's wake-up latency more
    /// than by the server (7.4k to 29k frames/s for the same build).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub starved: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The UDP probe's own counts, or those a relay's record predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpCounts {
    /// Distinct intact datagrams echoed.
    pub received: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Out of order.
    pub out_of_order: u64,
    /// Corrupted.
    pub corrupted: u64,
    /// Lost.
    pub lost: u64,
}

/// Measured against injected: the probe's counts through the seeded relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accuracy {
    /// The relay's seed (replays the same impairment).
    pub seed: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Requests the relay dropped on the way to the server.
    pub dropped_requests: u64,
    /// Replies it dropped on the way back.
    pub dropped_replies: u64,
    /// What the relay's record predicts.
    pub injected: UdpCounts,
    /// What the probe measured.
    pub measured: UdpCounts,
}

/// One step of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Offered rate, datagrams per second.
    pub offered: f64,
    /// Achieved send rate.
    pub sent: f64,
    /// Echoes received per second.
    pub received: f64,
    /// Lost fraction (0..1).
    pub loss: f64,
    /// Of the lost, the fraction the server never received (request loss).
    #[serde(default)]
    pub request_loss: f64,
}

impl Measurement {
    /// An empty measurement to be filled in.
    pub fn new(scenario: Scenario, key: &str, target: &str, unit: &str, load: &str) -> Measurement {
        Measurement {
            scenario,
            key: key.into(),
            target: target.into(),
            status: Status::Ok,
            reason: None,
            unit: unit.into(),
            reps: Vec::new(),
            value: Summary::default(),
            mb_per_s: None,
            latency: None,
            load: load.into(),
            server: None,
            driver_cpu_us_per_frame: 0.0,
            cpu_s_per_gb: None,
            syscalls: None,
            ceiling: None,
            ratio: None,
            notes: Vec::new(),
            curve: Vec::new(),
            accuracy: None,
            knee: Vec::new(),
            limited_by: None,
            starved: 0,
        }
    }

    /// Marks it not applicable to its target.
    pub fn not_applicable(mut self, why: &str) -> Measurement {
        self.status = Status::NotApplicable;
        self.reason = Some(why.into());
        self
    }

    /// Marks it failed.
    pub fn failed(mut self, why: impl std::fmt::Display) -> Measurement {
        self.status = Status::Error;
        self.reason = Some(why.to_string());
        self
    }

    /// Sets the repetitions and their summary.
    pub fn with_reps(mut self, reps: Vec<f64>) -> Measurement {
        self.value = Summary::of(&reps);
        self.reps = reps;
        self
    }

    /// Adds another measurement's repetitions of the same thing to these
    /// (a ceiling measured before and after its targets). A failed one
    /// adds nothing but a note; a failed self takes the other's place.
    pub fn pool(&mut self, other: &Measurement) {
        if other.status != Status::Ok {
            self.notes.push(format!(
                "a second measurement failed: {}",
                other.reason.as_deref().unwrap_or("")
            ));
            return;
        }
        if self.status != Status::Ok {
            *self = other.clone();
            return;
        }
        // MB/s is the rate times a fixed size, so it scales with the pool.
        let mb_per_unit = self
            .mb_per_s
            .as_ref()
            .filter(|_| self.value.median > 0.0)
            .map(|m| m.median / self.value.median);
        self.reps.extend_from_slice(&other.reps);
        self.value = Summary::of(&self.reps);
        // Held back once, the pooled figure is a lower bound too.
        if self.limited_by.is_none() {
            self.limited_by.clone_from(&other.limited_by);
        }
        if let Some(k) = mb_per_unit {
            let mb: Vec<f64> = self.reps.iter().map(|r| r * k).collect();
            self.mb_per_s = Some(Summary::of(&mb));
        }
    }

    /// Fills `ratio` from a ceiling measurement: each repetition over the
    /// ceiling's best repetition. A ceiling bounds what the machine can do,
    /// and on a shared machine its fastest repetition is the best estimate
    /// of that bound (a slow spell only ever lowers a rate).
    pub fn relate(&mut self, ceiling: &Measurement) {
        if ceiling.status != Status::Ok || ceiling.value.max <= 0.0 || self.status != Status::Ok {
            return;
        }
        if let Some(by) = self.limited_by.as_ref().or(ceiling.limited_by.as_ref()) {
            self.notes.push(format!(
                "no ratio: the {by}, not the server, set {} rate",
                if self.limited_by.is_some() {
                    "this"
                } else {
                    "the ceiling's"
                }
            ));
            return;
        }
        let ratios: Vec<f64> = self.reps.iter().map(|r| r / ceiling.value.max).collect();
        self.ceiling = Some(format!("{}/{}", ceiling.scenario, ceiling.key));
        self.ratio = Some(Summary::of(&ratios));
    }
}

/// Our codec beside the ordinary alternative on one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecResult {
    /// The operation, e.g. `decode 64 B frame`.
    pub operation: String,
    /// Nanoseconds per operation, ours.
    pub ours_ns: Summary,
    /// Nanoseconds per operation, tokio-util LengthDelimitedCodec + serde_json.
    pub alternative_ns: Summary,
    /// Heap allocations per operation, ours.
    pub ours_allocs: f64,
    /// Heap allocations per operation, the alternative.
    pub alternative_allocs: f64,
}

impl BenchRun {
    /// An empty quick run with no targets and no results, for unit tests.
    #[cfg(test)]
    pub(crate) fn empty() -> BenchRun {
        serde_json::from_str(
            r#"{"schema":"sockbench-bench/1","tool_version":"0","machine":{"hostname":"","kernel":"","cpu":"","cpus":2,"memory_bytes":0,"rustc":"","git_revision":""},
            "seed":1,"started_unix":0,"duration_s":1,"mode":"quick","parameters":{"warmup_ms":50,"rep_ms":50,"repetitions":5,"echo_bodies":[64],"echo_connections":[1],
            "pipeline_window_bytes":65536,"pipeline_max_depth":32,"upload_bytes":1,"udp_sizes":[64],"udp_start_rate":20000,"udp_loss_onset":0.001,"many_idle":1,"many_active":1},
            "targets":[],"ceilings":[],"results":[],"codec":[]}"#,
        )
        .expect("a valid empty run")
    }

    /// The measurement of `scenario/key` on `target`.
    pub fn find(&self, scenario: Scenario, key: &str, target: &str) -> Option<&Measurement> {
        self.results
            .iter()
            .find(|m| m.scenario == scenario && m.key == key && m.target == target)
    }

    /// The distinct (scenario, key) pairs, in order of first appearance.
    pub fn keys(&self) -> Vec<(Scenario, String)> {
        let mut out: Vec<(Scenario, String)> = Vec::new();
        for m in &self.results {
            if !out.iter().any(|(s, k)| *s == m.scenario && *k == m.key) {
                out.push((m.scenario, m.key.clone()));
            }
        }
        out
    }
}

/// One standard tool's figure, beside ours where there is a like-for-like one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// `iperf3` or `sockperf`.
    pub tool: String,
    /// What it measures, e.g. `TCP stream, one connection`.
    pub measures: String,
    /// The command run (its client side).
    pub command: String,
    /// Its figure; `None` when it did not run.
    pub value: Option<f64>,
    /// Unit of `value` and `ours`.
    pub unit: String,
    /// Why it did not run (tool missing, failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Our like-for-like figure and what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours: Option<f64>,
    /// Which of our measurements `ours` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours_is: Option<String>,
    /// `ours / value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The least `ratio` that says our figure is a ceiling (0.9 for the
    /// TCP stream and the one-way sender, 1.0 for the raw UDP echo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub want_at_least: Option<f64>,
}

/// One back-end and datagram size under netem and under the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetemResult {
    /// The back-end.
    pub target: String,
    /// Datagram size.
    pub size: usize,
    /// What netem applied on each end.
    pub spec: NetemSpec,
    /// Round-trip loss the spec implies.
    pub expected_loss: f64,
    /// Measured loss fraction per repetition, across the namespaces.
    pub netem_loss: Summary,
    /// Measured loss per repetition through the relay on loopback.
    pub relay_loss: Summary,
    /// The netem repetitions.
    pub netem: Vec<ProbeSummary>,
    /// The relay repetitions.
    pub relay: Vec<ProbeSummary>,
}
