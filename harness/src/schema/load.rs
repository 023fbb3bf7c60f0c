//! The capacity search's serialized types: the latency target, the plan, each
//! step and the outcome (`sockbench load`, the bench's capacity scenario;
//! the search itself is [`crate::load::search`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::measure::stats::Percentiles;
use crate::measure::units::BadValue;

/// Which percentile a target bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantile {
    /// Median.
    P50,
    /// 90th.
    P90,
    /// 99th.
    P99,
    /// 99.9th.
    P999,
}

/// A latency target: `p99=1ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// The percentile.
    pub quantile: Quantile,
    /// Its bound in µs.
    pub limit_us: f64,
}

impl Slo {
    /// The bounded percentile of `p`.
    pub fn value(&self, p: &Percentiles) -> f64 {
        match self.quantile {
            Quantile::P50 => p.p50,
            Quantile::P90 => p.p90,
            Quantile::P99 => p.p99,
            Quantile::P999 => p.p999,
        }
    }

    /// As `--slo` takes it: `p99=1000us`.
    pub fn flag(&self) -> String {
        format!("{}={}us", self.name(), self.limit_us)
    }

    /// `p99`.
    pub fn name(&self) -> &'static str {
        match self.quantile {
            Quantile::P50 => "p50",
            Quantile::P90 => "p90",
            Quantile::P99 => "p99",
            Quantile::P999 => "p99.9",
        }
    }
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            quantile: Quantile::P99,
            limit_us: 1000.0,
        }
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limit_us >= 1000.0 && self.limit_us % 1000.0 == 0.0 {
            write!(f, "{} ≤ {} ms", self.name(), self.limit_us / 1000.0)
        } else {
            write!(f, "{} ≤ {} µs", self.name(), self.limit_us)
        }
    }
}

impl FromStr for Slo {
    type Err = BadValue;

    /// `p50|p90|p99|p999 = N us|ms` (also `µs`, `s`).
    fn from_str(s: &str) -> Result<Slo, BadValue> {
        let bad = || BadValue::Not {
            text: s.into(),
            expected: "a percentile and a bound, like p99=1ms or p999=500us",
        };
        let (q, v) = s.split_once('=').ok_or_else(bad)?;
        let quantile = match q.trim().to_ascii_lowercase().as_str() {
            "p50" => Quantile::P50,
            "p90" => Quantile::P90,
            "p99" => Quantile::P99,
            "p999" | "p99.9" => Quantile::P999,
            other => {
                return Err(BadValue::Unit {
                    text: s.into(),
                    unit: other.into(),
                    units: "p50, p90, p99 or p999",
                });
            }
        };
        let v = v.trim();
        let split = v
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, unit) = v.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let scale = match unit.trim() {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            _ => return Err(bad()),
        };
        if !(n > 0.0 && n.is_finite()) {
            return Err(BadValue::Range {
                text: s.into(),
                limit: "the bound must be above zero",
            });
        }
        Ok(Slo {
            quantile,
            limit_us: n * scale,
        })
    }
}

/// How the search steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// First offered rate, requests/s.
    pub start_rate: f64,
    /// Ramp factor per step.
    pub factor: f64,
    /// Highest rate tried.
    pub max_rate: f64,
    /// Bisection steps after the ramp.
    pub bisect: usize,
    /// Times the capacity step may be re-measured to confirm it (each
    /// refutal falls back to the next-highest passing rate).
    #[serde(default)]
    pub confirm: usize,
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Offered rate.
    pub offered: f64,
    /// Replies in time per second (median window).
    pub achieved: f64,
    /// Percentiles over all the step's measured windows.
    pub latency: Percentiles,
    /// The bounded percentile, median over the windows: what is judged.
    pub judged_us: f64,
    /// Requests sent over the windows.
    pub sent: u64,
    /// Of them, held back by a full window.
    pub held: u64,
    /// Errors over the windows.
    pub errors: u64,
    /// Timeouts over the windows.
    pub timeouts: u64,
    /// The driver fell behind its schedule.
    pub driver_limited: bool,
    /// The driver's lag, p99 µs.
    pub lag_p99_us: f64,
    /// Server CPU µs per reply, where it could be measured.
    pub server_cpu_us_per_frame: Option<f64>,
    /// Each measured window's achieved rate.
    pub window_rates: Vec<f64>,
    /// The step met the target.
    pub passed: bool,
}

impl Step {
    /// The target could not keep up: past here, higher rates only queue.
    pub fn overloaded(&self) -> bool {
        self.errors > 0
            || self.timeouts > 0
            || self.achieved < 0.9 * self.offered
            || self.held as f64 > 0.01 * self.sent.max(1) as f64
    }

    /// Judges a step against `slo`.
    pub fn judge(mut self, slo: &Slo) -> Step {
        self.passed = self.errors == 0 && self.timeouts == 0 && self.judged_us <= slo.limit_us;
        self
    }
}

/// The outcome of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The highest rate that passed (0: none did).
    pub rate: f64,
    /// The lowest failing rate above it (`None`: none failed).
    pub failed_at: Option<f64>,
    /// That failing step was driver-limited: the capacity may be higher.
    pub driver_limited: bool,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
}

impl Capacity {
    /// The step at the capacity.
    pub fn at(&self) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.passed && s.offered == self.rate)
    }

    /// One line: `41000/s (45255/s failed)`.
    pub fn describe(&self) -> String {
        let bound = match (self.failed_at, self.driver_limited) {
            (Some(f), true) => format!(
                "{f:.0}/s failed with the driver behind its schedule: the capacity may be higher"
            ),
            (Some(f), false) => format!("{f:.0}/s failed"),
            (None, _) => "the highest rate tried".to_owned(),
        };
        if self.rate == 0.0 {
            return "none: no rate tried met the target".to_owned();
        }
        format!("{:.0}/s ({bound})", self.rate)
    }
}
