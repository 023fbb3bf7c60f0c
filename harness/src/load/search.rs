//! Capacity at a latency target: the highest offered rate at which the
//! target holds with no errors and no timeouts.
//!
//! ```text
//!  ramp:   r0, r0·f, r0·f², ...  until the target is overloaded
//!  bisect: √(lo·hi) between the highest passing rate lo and the step above it, n times
//!  capacity = lo, known to within hi/lo
//! ```
//!
//! The ramp does not stop at the first step that misses the target: on a
//! virtual machine a lightly loaded server sleeps between requests and its
//! CPU wakes late (measured here: p99 of 11 ms at 2k/s against 0.7 ms at
//! 32k/s, the same server), so latency can fall before it rises. It stops
//! where the target is overloaded: errors, timeouts, replies falling short
//! of the offered rate, or requests held back by full windows.
//!
//! Each step is one probe (a warm-up, then repeated measured windows,
//! judged on the median window). The search knows nothing of sockets: the
//! probe is a closure, so it is tested against fake targets. The capacity
//! step is then measured again: a pass that does not repeat was luck, and
//! the next-highest passing rate is tried in its place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::summary::Percentiles;
use crate::units::BadValue;

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

/// Runs the search; `probe(rate)` measures one step.
pub fn search(plan: &Plan, slo: &Slo, probe: &mut dyn FnMut(f64) -> Step) -> Capacity {
    let mut steps: Vec<Step> = Vec::new();
    let mut r = plan.start_rate;
    while r <= plan.max_rate * 1.000_001 {
        let s = probe(r).judge(slo);
        let stop = s.overloaded();
        steps.push(s);
        if stop {
            break;
        }
        r *= plan.factor;
    }
    let best = |steps: &[Step]| {
        steps
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.offered)
            .fold(0.0, f64::max)
    };
    // The lowest failing step above the best passing one.
    let above = |steps: &[Step], lo: f64| {
        steps
            .iter()
            .filter(|s| !s.passed && s.offered > lo)
            .min_by(|a, b| a.offered.total_cmp(&b.offered))
            .map(|s| s.offered)
    };
    let mut lo = best(&steps);
    if lo > 0.0 {
        for _ in 0..plan.bisect {
            let Some(hi) = above(&steps, lo) else { break };
            let s = probe((lo * hi).sqrt()).judge(slo);
            steps.push(s);
            lo = best(&steps);
        }
    }
    // A passing step above a failing one can be luck on a noisy machine:
    // the capacity step must pass twice; a refuted rate no longer counts.
    let mut refuted: Vec<f64> = Vec::new();
    for _ in 0..plan.confirm {
        if lo <= 0.0 {
            break;
        }
        let s = probe(lo).judge(slo);
        let ok = s.passed;
        steps.push(s);
        if ok {
            break;
        }
        refuted.push(lo);
        for s in steps.iter_mut().filter(|s| s.offered == lo) {
            s.passed = false;
        }
        lo = best(&steps);
    }
    let failed_at = above(&steps, lo);
    let driver_limited = failed_at
        .and_then(|f| steps.iter().find(|s| s.offered == f))
        .is_some_and(|s| s.driver_limited);
    Capacity {
        rate: lo,
        failed_at,
        driver_limited,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target whose latency meets 1 ms up to `capacity` and that
    /// saturates at twice that; it also misses the target below `below`.
    fn fake(capacity: f64, below: f64) -> impl FnMut(f64) -> Step {
        move |rate| {
            let p99 = if rate < below {
                5000.0
            } else if rate <= capacity {
                150.0
            } else {
                8000.0
            };
            let served = rate.min(2.0 * capacity);
            Step {
                offered: rate,
                achieved: served,
                latency: Percentiles {
                    p99,
                    ..Percentiles::default()
                },
                judged_us: p99,
                sent: rate as u64,
                held: 0,
                errors: 0,
                timeouts: 0,
                driver_limited: false,
                lag_p99_us: 10.0,
                server_cpu_us_per_frame: None,
                window_rates: vec![served],
                passed: false,
            }
        }
    }

    fn plan(factor: f64, max_rate: f64, bisect: usize) -> Plan {
        Plan {
            start_rate: 1000.0,
            factor,
            max_rate,
            bisect,
            confirm: 2,
        }
    }

    #[test]
    fn a_fake_target_of_known_capacity_is_found_within_its_step() {
        for capacity in [1500.0, 37_000.0, 123_456.0, 999_999.0] {
            let c = search(
                &plan(2.0, 4e6, 3),
                &Slo::default(),
                &mut fake(capacity, 0.0),
            );
            let hi = c.failed_at.unwrap();
            assert!(c.rate <= capacity && capacity < hi, "{capacity}: {c:?}");
            // Three bisections of a factor of 2: within 2^(1/8).
            assert!(
                hi / c.rate <= 2f64.powf(1.0 / 8.0) + 1e-9,
                "{capacity}: {}",
                hi / c.rate
            );
            assert_eq!(c.at().unwrap().offered, c.rate);
            assert!(!c.driver_limited);
        }
    }

    #[test]
    fn a_slow_low_end_does_not_end_the_ramp() {
        // Misses the target below 8k/s (a sleeping CPU), meets it up to 50k/s.
        let c = search(
            &plan(2.0, 4e6, 4),
            &Slo::default(),
            &mut fake(50_000.0, 8000.0),
        );
        assert!(
            c.rate <= 50_000.0 && c.rate > 50_000.0 / 2f64.powf(1.0 / 16.0),
            "{c:?}"
        );
        assert!(c.steps[0].offered == 1000.0 && !c.steps[0].passed);
    }

    #[test]
    fn nothing_passing_is_capacity_zero_and_an_unbounded_top_is_the_highest_tried() {
        let c = search(
            &plan(4.0, 64_000.0, 1),
            &Slo::default(),
            &mut fake(10.0, 0.0),
        );
        assert_eq!(c.rate, 0.0);
        assert!(c.at().is_none() && c.describe().starts_with("none: no rate"));
        assert_eq!(c.steps.len(), 1, "overloaded at once: the ramp stops");
        let c = search(
            &plan(4.0, 64_000.0, 1),
            &Slo::default(),
            &mut fake(1e9, 0.0),
        );
        assert_eq!((c.rate, c.failed_at), (64_000.0, None));
        assert_eq!(
            c.steps.len(),
            5,
            "1k, 4k, 16k, 64k, and 64k again to confirm"
        );
    }

    #[test]
    fn errors_fail_and_stop_and_a_lagging_driver_is_named() {
        let mut inner = fake(1e9, 0.0);
        let c = search(&plan(2.0, 1e6, 2), &Slo::default(), &mut |r| {
            let mut s = inner(r);
            s.errors = u64::from(r > 5000.0);
            s
        });
        assert!(c.rate >= 4000.0 && c.rate < 8000.0, "{c:?}");
        assert!(
            c.steps.iter().all(|s| s.offered <= 8000.0),
            "no step past the first overload"
        );
        let mut inner = fake(1e9, 0.0);
        let c = search(&plan(2.0, 1e6, 0), &Slo::default(), &mut |r| {
            let mut s = inner(r);
            if r > 10_000.0 {
                s.driver_limited = true;
                s.judged_us = 3000.0;
                s.achieved = r * 0.5;
            }
            s
        });
        assert!(c.driver_limited && c.rate == 8000.0, "{c:?}");
        assert!(c.describe().contains("may be higher"));
    }

    #[test]
    fn a_lucky_pass_is_refuted_by_its_confirmation() {
        // Meets the target up to 10k/s; at 64k/s it passes once by luck.
        let mut calls_at_64k = 0;
        let mut inner = fake(10_000.0, 0.0);
        let c = search(&plan(4.0, 1e6, 0), &Slo::default(), &mut |r| {
            let mut s = inner(r);
            if r == 64_000.0 {
                calls_at_64k += 1;
                if calls_at_64k == 1 {
                    s.judged_us = 150.0;
                }
            }
            s
        });
        assert_eq!(c.rate, 4000.0, "{c:?}");
        assert_eq!(calls_at_64k, 2, "measured, then refuted");
        assert!(
            c.steps.iter().filter(|s| s.offered == 4000.0).count() == 2,
            "then 4k/s confirmed"
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!("p99=1ms".parse::<Slo>(), Ok(Slo::default()));
        let s: Slo = "p999=500us".parse().unwrap();
        assert_eq!((s.quantile, s.limit_us), (Quantile::P999, 500.0));
        assert_eq!("P50=2.5ms".parse::<Slo>().unwrap().limit_us, 2500.0);
        for bad in ["p99", "p98=1ms", "p99=1h", "p99=0ms", "p99=ms", "p99=-1ms"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
        assert_eq!(Slo::default().to_string(), "p99 ≤ 1 ms");
        // The flag form parses back to the same target (the gate's rerun passes it).
        for s in [Slo::default(), s, "p90=2.5ms".parse().unwrap()] {
            assert_eq!(s.flag().parse::<Slo>(), Ok(s), "{}", s.flag());
        }
    }
}
