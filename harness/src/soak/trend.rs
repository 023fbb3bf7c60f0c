//! The leak judgement: a Theil-Sen line through each resource's samples
//! after the warm-up (the median of all pairwise slopes, so a few outliers,
//! a GC pause or a burst of connections, cannot tilt it), and a threshold
//! per resource that growth must pass both per hour and in the window.
//!
//! The two limits work together: the rate catches a slow leak over a long
//! soak, the window's growth keeps a short soak from judging noise. For a
//! soak under about a quarter of an hour the window's growth decides.

use crate::schema::soak::Trend;

/// A resource and the growth that makes it a leak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// `rss`, `fds`, `threads` or `children`.
    pub resource: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Slope above which growth is a leak, units per hour.
    pub per_hour: f64,
    /// Fitted growth over the window at least this for a leak.
    pub growth: f64,
}

/// The documented thresholds (docs/robustness.md). Idle, churning and
/// uploading connections make fds and threads wander by a few around a
/// flat line, and allocators settle within the warm-up; a leak of one fd,
/// thread or cached body per operation passes these within seconds.
pub const LIMITS: [Limit; 4] = [
    Limit {
        resource: "rss",
        unit: "KiB",
        per_hour: 32.0 * 1024.0,
        growth: 16.0 * 1024.0,
    },
    Limit {
        resource: "fds",
        unit: "count",
        per_hour: 60.0,
        growth: 16.0,
    },
    Limit {
        resource: "threads",
        unit: "count",
        per_hour: 30.0,
        growth: 4.0,
    },
    // A forking server's children come and go with its connections; one
    // left per connection (a zombie never reaped) passes these at once.
    Limit {
        resource: "children",
        unit: "count",
        per_hour: 60.0,
        growth: 8.0,
    },
];

/// Most points a fit uses (evenly spaced), so a day-long soak stays cheap.
const MAX_POINTS: usize = 400;

/// The Theil-Sen line `(slope, intercept)` through `points`; `None` with
/// fewer than two distinct times.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    let pts: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            if b.0 != a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut rest: Vec<f64> = pts.iter().map(|(x, y)| y - slope * x).collect();
    Some((slope, median(&mut rest)?))
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Fits and judges one resource: `points` are (seconds, value) after the
/// warm-up. `None` when there are too few points to fit.
pub fn judge(limit: &Limit, points: &[(f64, f64)]) -> Option<Trend> {
    let (slope, intercept) = theil_sen(points)?;
    let (t0, t1) = (points.first()?.0, points.last()?.0);
    let growth = slope * (t1 - t0);
    let per_hour = slope * 3600.0;
    Some(Trend {
        resource: limit.resource.into(),
        unit: limit.unit.into(),
        per_hour,
        growth,
        from: intercept + slope * t0,
        to: intercept + slope * t1,
        limit_per_hour: limit.per_hour,
        limit_growth: limit.growth,
        leak: per_hour > limit.per_hour && growth >= limit.growth,
        detected_s: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(n: usize, slope: f64, base: f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                // Deterministic wander of +-3 around the line.
                let wobble = ((i * 7919) % 7) as f64 - 3.0;
                (i as f64, base + slope * i as f64 + wobble)
            })
            .collect()
    }

    #[test]
    fn the_fit_recovers_the_slope_through_noise_and_outliers() {
        let mut pts = noisy(60, 2.0, 100.0);
        // Spikes a least-squares fit would follow.
        pts[50].1 += 5000.0;
        pts[55].1 += 4000.0;
        let (slope, intercept) = theil_sen(&pts).unwrap();
        assert!((slope - 2.0).abs() < 0.1, "{slope}");
        assert!((intercept - 100.0).abs() < 4.0, "{intercept}");
        assert_eq!(theil_sen(&[(1.0, 1.0)]), None);
        assert_eq!(theil_sen(&[(1.0, 1.0), (1.0, 5.0)]), None);
    }

    #[test]
    fn one_fd_per_second_is_a_leak_and_wandering_around_a_flat_line_is_not() {
        let fds = &LIMITS[1];
        let leak = judge(fds, &noisy(20, 1.0, 80.0)).unwrap();
        assert!(leak.leak, "{leak:?}");
        assert!((leak.per_hour - 3600.0).abs() < 400.0, "{leak:?}");
        let flat = judge(fds, &noisy(600, 0.0, 80.0)).unwrap();
        assert!(!flat.leak, "{flat:?}");
        // A burst of connections at the end does not tilt a long flat run.
        let mut burst = noisy(600, 0.0, 80.0);
        for p in &mut burst[590..] {
            p.1 += 200.0;
        }
        assert!(!judge(fds, &burst).unwrap().leak);
    }

    #[test]
    fn a_slow_leak_needs_both_the_rate_and_the_growth() {
        let threads = &LIMITS[2];
        // 0.02 threads/s = 72/h, above the rate: over 60 s that is 1.2
        // threads, too little to judge; over an hour it is 72.
        let short: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64, 10.0 + 0.02 * i as f64))
            .collect();
        assert!(!judge(threads, &short).unwrap().leak);
        let long: Vec<(f64, f64)> = (0..3600)
            .map(|i| (i as f64, 10.0 + 0.02 * i as f64))
            .collect();
        assert!(judge(threads, &long).unwrap().leak);
        // Fast growth that stops early is below the rate over a long run.
        let rss = &LIMITS[0];
        let settles: Vec<(f64, f64)> = (0..3600)
            .map(|i| {
                (
                    i as f64,
                    50_000.0 + if i < 30 { i as f64 * 100.0 } else { 3000.0 },
                )
            })
            .collect();
        assert!(!judge(rss, &settles).unwrap().leak);
    }
}
