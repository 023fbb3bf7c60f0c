//! What a soak found (`sockbench-soak/1`): per target, the resources sampled
//! every second, the trend fitted to each, the workload's tally and every
//! wrong reply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::machine::Machine;

/// The schema id.
pub const SCHEMA: &str = "sockbench-soak/1";

/// A whole soak run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakRun {
    /// `sockbench-soak/1`.
    pub schema: String,
    /// sockbench's version.
    pub tool_version: String,
    /// Where it ran.
    pub machine: Machine,
    /// The command as typed.
    pub command: String,
    /// Length of the soak, warm-up included.
    pub duration_s: f64,
    /// The first part of the soak that the trends leave out.
    pub warmup_s: f64,
    /// The seed of the workload.
    pub seed: u64,
    /// One entry per target, in the order given.
    pub targets: Vec<SoakTarget>,
}

impl SoakRun {
    /// True when every target that ran is flat and answered every request
    /// correctly (one this machine cannot run is reported, not judged).
    pub fn passed(&self) -> bool {
        self.targets
            .iter()
            .all(|t| matches!(t.verdict, SoakVerdict::Flat | SoakVerdict::Unavailable))
    }
}

/// What a soak concluded about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoakVerdict {
    /// Every resource flat, every reply right.
    Flat,
    /// A resource grew past its threshold.
    Leak,
    /// A reply was wrong, missing, or the server stopped answering.
    Wrong,
    /// Not run: this machine cannot run the back-end (the summary says why).
    Unavailable,
}

/// One target's soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakTarget {
    /// The name (back-end, spawn label or address).
    pub name: String,
    /// `backend`, `spawn` or `address`.
    pub kind: String,
    /// The command line or the address.
    pub detail: String,
    /// The process sampled.
    pub pid: u32,
    /// The verdict.
    pub verdict: SoakVerdict,
    /// One line: what leaked and how fast, or what was wrong, or "flat".
    pub summary: String,
    /// One fitted trend per resource.
    pub trends: Vec<Trend>,
    /// Operations done, by kind (`echo`, `upload_ok`, `md5_mismatch`, ...).
    pub ops: BTreeMap<String, u64>,
    /// Wrong or missing replies, the first 20 described.
    pub wrong: Vec<String>,
    /// How many replies were wrong or missing in all.
    pub wrong_total: u64,
    /// UDP datagrams sent whose echo never came (reported, not judged:
    /// UDP may lose them).
    pub udp_lost: u64,
    /// The samples, one per second.
    pub samples: Vec<Sample>,
}

/// The server's resources at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
    /// Descendant processes, zombies included: a forking server's
    /// children that outlive their connection, or are never reaped.
    #[serde(default)]
    pub children: u64,
    /// The stats reply's `tcp.frames`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// The stats reply's `tcp.errors`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
}

/// A resource's trend after the warm-up, and the judgement on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// `rss`, `fds` or `threads`.
    pub resource: String,
    /// `KiB` or `count`.
    pub unit: String,
    /// The Theil-Sen slope, in units per hour.
    pub per_hour: f64,
    /// The fitted growth over the judged window, in units.
    pub growth: f64,
    /// The value at the start and end of the judged window (fitted).
    pub from: f64,
    /// See `from`.
    pub to: f64,
    /// A leak needs both: growth per hour above this ...
    pub limit_per_hour: f64,
    /// ... and fitted growth over the window at least this.
    pub limit_growth: f64,
    /// The judgement.
    pub leak: bool,
    /// For a leak: the soak time (seconds since its start) at which the
    /// judged samples so far first showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_s: Option<f64>,
}

/// A rate per hour in its unit, KiB shown as MiB.
pub fn rate(per_hour: f64, unit: &str) -> String {
    if unit == "KiB" {
        format!("{:+.1} MiB", per_hour / 1024.0)
    } else {
        format!("{per_hour:+.0}")
    }
}
