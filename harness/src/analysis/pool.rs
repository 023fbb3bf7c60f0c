//! Pooling several bench runs into one baseline: each configuration's
//! repetitions from every run together, so the baseline's range spans the
//! run-to-run noise a single run cannot show.

use crate::measure::stats::Summary;
use crate::schema::bench::{BenchRun, CodecResult, Measurement, ServerUse, Status, Syscalls};

/// Pools `runs` (of the same parameters) into one.
pub fn pool(mut runs: Vec<BenchRun>) -> Option<BenchRun> {
    let mut out = runs.first()?.clone();
    let rest: Vec<BenchRun> = runs.drain(1..).collect();
    for m in out.results.iter_mut() {
        let others: Vec<&Measurement> = rest
            .iter()
            .filter_map(|r| r.find(m.scenario, &m.key, &m.target))
            .collect();
        merge(m, &others);
    }
    for c in out.ceilings.iter_mut() {
        let others: Vec<&Measurement> = rest
            .iter()
            .filter_map(|r| {
                r.ceilings
                    .iter()
                    .find(|x| x.scenario == c.scenario && x.key == c.key)
            })
            .collect();
        merge(c, &others);
    }
    for c in out.codec.iter_mut() {
        let others: Vec<&CodecResult> = rest
            .iter()
            .filter_map(|r| r.codec.iter().find(|x| x.operation == c.operation))
            .collect();
        merge_codec(c, &others);
    }
    out.duration_s += rest.iter().map(|r| r.duration_s).sum::<f64>();
    out.runs = 1 + rest.len();
    Some(out)
}

/// Adds the repetitions of every run that measured this configuration
/// too; the CPU and counters become their mean over those runs.
fn merge(m: &mut Measurement, others: &[&Measurement]) {
    if m.status != Status::Ok {
        return;
    }
    let ok: Vec<&Measurement> = others
        .iter()
        .copied()
        .filter(|o| o.status == Status::Ok)
        .collect();
    if ok.is_empty() {
        return;
    }
    for o in &ok {
        m.reps.extend_from_slice(&o.reps);
    }
    m.value = Summary::of(&m.reps);
    if let Some(first) = m.ratio {
        let all: Vec<Summary> = std::iter::once(first)
            .chain(ok.iter().filter_map(|o| o.ratio))
            .collect();
        m.ratio = Some(widen(&all));
    }
    if let Some(first) = m.server {
        let all: Vec<ServerUse> = std::iter::once(first)
            .chain(ok.iter().filter_map(|o| o.server))
            .collect();
        let mean = |f: fn(&ServerUse) -> f64| all.iter().map(f).sum::<f64>() / all.len() as f64;
        m.server = Some(ServerUse {
            cpu_s: mean(|u| u.cpu_s),
            user_s: mean(|u| u.user_s),
            sys_s: mean(|u| u.sys_s),
            peak_rss_bytes: all.iter().map(|u| u.peak_rss_bytes).max().unwrap_or(0),
            cpu_us_per_frame: mean(|u| u.cpu_us_per_frame),
            cpu_s_per_mframe: mean(|u| u.cpu_s_per_mframe),
            cpu_s_per_gb: mean(|u| u.cpu_s_per_gb),
        });
    }
    // The store loop's own CPU, and the load driver's.
    let cpu_gb: Vec<f64> = std::iter::once(m.cpu_s_per_gb)
        .chain(ok.iter().map(|o| o.cpu_s_per_gb))
        .flatten()
        .collect();
    if m.cpu_s_per_gb.is_some() {
        m.cpu_s_per_gb = Some(cpu_gb.iter().sum::<f64>() / cpu_gb.len() as f64);
    }
    let runs = 1 + ok.len();
    m.driver_cpu_us_per_frame = (m.driver_cpu_us_per_frame
        + ok.iter().map(|o| o.driver_cpu_us_per_frame).sum::<f64>())
        / runs as f64;
    if let Some(first) = m.syscalls {
        let all: Vec<Syscalls> = std::iter::once(first)
            .chain(ok.iter().filter_map(|o| o.syscalls))
            .collect();
        // Counters agree within about 1 % from run to run; keep their mean
        // over the runs that counted. A 0 is a run that could not (its
        // connections starved: see bench/echo.rs), not a count: averaged
        // in, one counted 1.0 and four such runs made 0.2, which the gate
        // then held a counting run to.
        let mean = |f: fn(&Syscalls) -> f64| {
            let counted: Vec<f64> = all.iter().map(f).filter(|v| *v > 0.0).collect();
            match counted.len() {
                0 => 0.0,
                n => counted.iter().sum::<f64>() / n as f64,
            }
        };
        m.syscalls = Some(Syscalls {
            server_reads_per_frame: mean(|s| s.server_reads_per_frame),
            server_writes_per_frame: mean(|s| s.server_writes_per_frame),
            server_frames_per_read: mean(|s| s.server_frames_per_read),
            driver_reads_per_frame: mean(|s| s.driver_reads_per_frame),
            driver_writes_per_frame: mean(|s| s.driver_writes_per_frame),
            server_syscalls_per_frame: mean(|s| s.server_syscalls_per_frame),
        });
    }
}

/// Per-run summaries pooled: the median of their medians (one run that
/// went wrong moves it by one place, not by its size), the range of them
/// all, the mean weighted by repetitions, the largest CV.
fn widen(all: &[Summary]) -> Summary {
    let n: usize = all.iter().map(|s| s.n).sum();
    let mut medians: Vec<f64> = all.iter().map(|s| s.median).collect();
    medians.sort_by(f64::total_cmp);
    let mid = medians.len() / 2;
    let median = match medians.len() % 2 {
        0 if mid > 0 => (medians[mid - 1] + medians[mid]) / 2.0,
        _ => medians.get(mid).copied().unwrap_or(0.0),
    };
    let weight = n.max(1) as f64;
    Summary {
        n,
        median,
        min: all.iter().map(|s| s.min).fold(f64::INFINITY, f64::min),
        max: all.iter().map(|s| s.max).fold(f64::NEG_INFINITY, f64::max),
        mean: all.iter().map(|s| s.mean * s.n as f64).sum::<f64>() / weight,
        cv: all.iter().map(|s| s.cv).fold(0.0, f64::max),
    }
}

fn merge_codec(c: &mut CodecResult, others: &[&CodecResult]) {
    if others.is_empty() {
        return;
    }
    let all = |f: fn(&CodecResult) -> Summary| -> Vec<Summary> {
        std::iter::once(f(c))
            .chain(others.iter().map(|o| f(o)))
            .collect()
    };
    let (ours, alternative) = (all(|x| x.ours_ns), all(|x| x.alternative_ns));
    c.ours_ns = widen(&ours);
    c.alternative_ns = widen(&alternative);
    for o in others {
        c.ours_allocs = c.ours_allocs.max(o.ours_allocs);
        c.alternative_allocs = c.alternative_allocs.max(o.alternative_allocs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(median: f64, n: usize) -> Summary {
        Summary {
            n,
            median,
            min: median * 0.9,
            max: median * 1.1,
            mean: median,
            cv: 0.05,
        }
    }

    #[test]
    fn one_wild_run_moves_the_pooled_median_by_a_place_not_by_its_size() {
        // Five runs' ratios, one of them a run whose ceiling fell short.
        let runs: Vec<Summary> = [1.0, 1.0, 0.98, 1.0, 4.0]
            .iter()
            .map(|&m| summary(m, 3))
            .collect();
        let p = widen(&runs);
        assert_eq!(p.n, 15);
        assert_eq!(p.median, 1.0, "{p:?}");
        assert!((p.max - 4.4).abs() < 1e-9 && (p.min - 0.882).abs() < 1e-9);
        assert!((p.mean - 1.596).abs() < 1e-9, "{p:?}");
        // An even count takes the middle two.
        let even = widen(&[summary(1.0, 5), summary(2.0, 5)]);
        assert_eq!(even.median, 1.5);
    }

    #[test]
    fn pooled_counters_are_the_mean_of_every_run() {
        let run = |calls: f64| {
            let mut r = BenchRun::empty();
            let mut m = Measurement::new(
                crate::schema::bench::Scenario::Echo,
                "rr/64B/1c",
                "mio",
                "frames/s",
                "closed-loop",
            )
            .with_reps(vec![calls * 100.0; 5]);
            m.syscalls = Some(Syscalls {
                server_syscalls_per_frame: calls,
                ..Syscalls::default()
            });
            m.server = Some(ServerUse {
                cpu_us_per_frame: calls * 2.0,
                peak_rss_bytes: calls as u64,
                ..ServerUse::default()
            });
            r.results.push(m);
            r
        };
        let p = pool([1.0, 2.0, 3.0, 4.0, 5.0].map(run).to_vec()).unwrap();
        let m = &p.results[0];
        assert_eq!(p.runs, 5);
        assert_eq!(m.reps.len(), 25);
        assert_eq!(m.value.median, 300.0);
        // Halving at each run weighted the last run by 1/2, the first by 1/16.
        assert_eq!(m.syscalls.unwrap().server_syscalls_per_frame, 3.0);
        // Runs that could not count (0) are left out, not averaged in.
        let p = pool([0.0, 1.0, 0.0, 0.0, 0.0].map(run).to_vec()).unwrap();
        assert_eq!(
            p.results[0].syscalls.unwrap().server_syscalls_per_frame,
            1.0
        );
        // The server's CPU was the first run's alone.
        let u = m.server.unwrap();
        assert_eq!((u.cpu_us_per_frame, u.peak_rss_bytes), (6.0, 5));
    }
}
