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
//! CPU wakes late (docs/reports.md shows such a knee), so latency can fall
//! before it rises. It stops
//! where the target is overloaded: errors, timeouts, replies falling short
//! of the offered rate, or requests held back by full windows.
//!
//! Each step is one probe (a warm-up, then repeated measured windows,
//! judged on the median window). The search knows nothing of sockets: the
//! probe is a closure, so it is tested against fake targets. The capacity
//! step is then measured again: a pass that does not repeat was luck, and
//! the next-highest passing rate is tried in its place.

use crate::schema::load::{Capacity, Plan, Slo, Step};

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
    use crate::measure::stats::Percentiles;
    use crate::schema::load::Quantile;

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
