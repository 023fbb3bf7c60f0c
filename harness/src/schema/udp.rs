//! The UDP probe's serialized types: the netem impairment asked for and
//! what one probe measured (`udp-probe`'s line, the bench's netem rows).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a netem spec was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BadNetem {
    /// A part without `=`.
    #[error("{part:?}: expected key=value (loss, delay, jitter, reorder)")]
    NotKeyValue {
        /// The part as typed.
        part: String,
    },
    /// A value that is not a number.
    #[error("{part:?}: {source}")]
    Number {
        /// The part as typed.
        part: String,
        /// Why it is not a number.
        source: std::num::ParseFloatError,
    },
    /// A key netem does not have here.
    #[error("unknown netem key {0:?} (loss, delay, jitter, reorder)")]
    UnknownKey(String),
    /// `reorder` without `delay`.
    #[error("netem reorders only delayed packets: give a delay with reorder")]
    ReorderWithoutDelay,
}

/// What netem applies on each end (so each direction): `none`, or
/// `loss=1%,delay=5ms,jitter=1ms,reorder=2%` in any combination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NetemSpec {
    /// Loss per direction, percent.
    pub loss_pct: f64,
    /// Delay per direction, ms.
    pub delay_ms: f64,
    /// Jitter on the delay, ms.
    pub jitter_ms: f64,
    /// Reordering, percent (needs a delay).
    pub reorder_pct: f64,
}

impl FromStr for NetemSpec {
    type Err = BadNetem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = NetemSpec::default();
        if s == "none" {
            return Ok(spec);
        }
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| BadNetem::NotKeyValue {
                part: part.to_owned(),
            })?;
            let num = |unit: &str| {
                v.trim_end_matches(unit)
                    .parse::<f64>()
                    .map_err(|source| BadNetem::Number {
                        part: part.to_owned(),
                        source,
                    })
            };
            match k {
                "loss" => spec.loss_pct = num("%")?,
                "delay" => spec.delay_ms = num("ms")?,
                "jitter" => spec.jitter_ms = num("ms")?,
                "reorder" => spec.reorder_pct = num("%")?,
                other => return Err(BadNetem::UnknownKey(other.to_owned())),
            }
        }
        if spec.reorder_pct > 0.0 && spec.delay_ms <= 0.0 {
            return Err(BadNetem::ReorderWithoutDelay);
        }
        Ok(spec)
    }
}

impl NetemSpec {
    /// True when nothing is applied.
    pub fn is_none(&self) -> bool {
        *self == NetemSpec::default()
    }

    /// Expected round-trip loss: a datagram and its echo each cross one netem.
    pub fn round_trip_loss(&self) -> f64 {
        let p = self.loss_pct / 100.0;
        1.0 - (1.0 - p) * (1.0 - p)
    }
}

/// What one probe measured, as `udp-probe` prints it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// Sent.
    pub sent: u64,
    /// Distinct echoes.
    pub received: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Out of order.
    pub out_of_order: u64,
    /// Corrupted.
    pub corrupted: u64,
    /// Lost.
    pub lost: u64,
    /// RFC 3550 jitter, µs.
    pub jitter_us: f64,
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th percentile round trip, µs.
    pub p99_us: f64,
}
