//! The verdict: per workload, which target is fastest, by how much over
//! the runner-up, and whether the repetitions separate them at all.
//!
//! A workload pools several configurations (request-response at 0 B, 64 B
//! and 1 KiB over 1, 16 and 256 connections, say). A target's score is the
//! geometric mean over them of its median, so every configuration counts
//! the same whatever its scale. Whether the best beats the runner-up is a
//! bootstrap on the repetitions: each (target, configuration)'s repetitions
//! are resampled with replacement, the scores recomputed, 2,000 times; the
//! best wins only if it is ahead in at least 95 % of the resamples, else
//! the two are a tie.

use rand::{Rng, SeedableRng};

use crate::schema::bench::{BenchRun, Measurement, Scenario, Status};

/// Resamples of the bootstrap.
pub const RESAMPLES: usize = 2000;
/// The share of resamples the best must lead in to be called the winner.
pub const CONFIDENCE: f64 = 0.95;

/// One workload's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadVerdict {
    /// What is measured, e.g. `request-response, small bodies`.
    pub workload: &'static str,
    /// Configurations pooled (those every ranked target completed).
    pub configs: usize,
    /// The fastest target.
    pub best: String,
    /// The next one.
    pub runner_up: Option<String>,
    /// best's score over runner-up's, minus 1.
    pub margin: f64,
    /// The share of resamples in which best led.
    pub confidence: f64,
    /// The figure that explains it: CPU and system calls per frame of both.
    pub why: String,
    /// No target has a figure in every configuration (a capacity search
    /// that found none): then no one is ranked, and `best` is the target
    /// that met the most configurations, `met` of `configs`.
    pub none_met: Option<usize>,
}

impl WorkloadVerdict {
    /// True when the repetitions do not separate best from runner-up.
    pub fn tie(&self) -> bool {
        self.runner_up.is_some() && self.confidence < CONFIDENCE
    }
}

/// A workload: its name, its scenario, and which configuration keys it pools.
type Workload = (&'static str, Scenario, fn(&str) -> bool);

/// The workloads, each a scenario and a test on its configuration key.
const WORKLOADS: [Workload; 7] = [
    ("capacity at the latency target", Scenario::Capacity, |_| {
        true
    }),
    ("request-response, small bodies", Scenario::Echo, |k| {
        k.starts_with("rr/") && !k.contains("/16KiB/")
    }),
    ("request-response, 16 KiB bodies", Scenario::Echo, |k| {
        k.starts_with("rr/16KiB/")
    }),
    ("pipelined, small bodies", Scenario::Echo, |k| {
        k.starts_with("pipelined/") && !k.contains("/16KiB/")
    }),
    ("pipelined, 16 KiB bodies", Scenario::Echo, |k| {
        k.starts_with("pipelined/16KiB/")
    }),
    (
        "many idle connections beside active ones",
        Scenario::Many,
        |_| true,
    ),
    ("upload with MD5", Scenario::Upload, |_| true),
];

/// The UDP workload is separate: its figure is a loss-free rate.
const UDP: (&str, Scenario) = ("UDP echo, loss-free rate", Scenario::Udp);

/// Every workload the run measured.
pub fn verdicts(run: &BenchRun) -> Vec<WorkloadVerdict> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(run.seed);
    let mut out = Vec::new();
    let all = WORKLOADS
        .iter()
        .map(|&(w, f, k)| (w, f, k))
        .chain(std::iter::once((
            UDP.0,
            UDP.1,
            (|_| true) as fn(&str) -> bool,
        )));
    for (workload, family, wanted) in all {
        let results: Vec<&Measurement> = run
            .results
            .iter()
            .filter(|m| m.scenario == family && wanted(&m.key))
            .collect();
        if let Some(v) = judge(workload, &results, run, &mut rng) {
            out.push(v);
        }
    }
    out
}

fn usable(m: &Measurement) -> bool {
    m.status == Status::Ok && !m.reps.is_empty()
}

fn judge(
    workload: &'static str,
    results: &[&Measurement],
    run: &BenchRun,
    rng: &mut impl Rng,
) -> Option<WorkloadVerdict> {
    let mut keys: Vec<&str> = results.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    // Ranked: targets with a usable result somewhere in the workload;
    // pooled: the configurations all of them completed.
    let targets: Vec<&str> = run
        .targets
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| results.iter().any(|m| m.target == *t && usable(m)))
        .collect();
    let find = |t: &str, k: &str| {
        results
            .iter()
            .find(|m| m.target == t && m.key == k)
            .copied()
    };
    let common: Vec<&str> = keys
        .into_iter()
        .filter(|k| targets.iter().all(|t| find(t, k).is_some_and(usable)))
        .collect();
    if targets.is_empty() || common.is_empty() {
        return None;
    }
    let reps = |t: &str| -> Vec<&[f64]> {
        common
            .iter()
            .filter_map(|k| find(t, k).map(|m| m.reps.as_slice()))
            .collect()
    };
    let mut scored: Vec<(&str, f64)> = targets
        .iter()
        .map(|t| {
            (
                *t,
                score(&reps(t).iter().map(|r| median(r)).collect::<Vec<_>>()),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, best_score) = scored[0];
    if best_score <= 0.0 {
        // Every score is zero: a geometric mean cannot rank them, and
        // naming a "best" would be the sort's accident.
        let met = |t: &str| {
            common
                .iter()
                .filter(|k| find(t, k).is_some_and(|m| median(&m.reps) > 0.0))
                .count()
        };
        let most = targets.iter().copied().max_by_key(|t| met(t))?;
        return Some(WorkloadVerdict {
            workload,
            configs: common.len(),
            best: most.into(),
            runner_up: None,
            margin: 0.0,
            confidence: 0.0,
            why: String::new(),
            none_met: Some(met(most)),
        });
    }
    let Some(&(second, second_score)) = scored.get(1) else {
        return Some(WorkloadVerdict {
            workload,
            configs: common.len(),
            best: best.into(),
            runner_up: None,
            margin: 0.0,
            confidence: 1.0,
            why: String::new(),
            none_met: None,
        });
    };
    let (rb, rs) = (reps(best), reps(second));
    let mut led = 0;
    for _ in 0..RESAMPLES {
        let b = score(
            &rb.iter()
                .map(|r| resampled_median(r, rng))
                .collect::<Vec<_>>(),
        );
        let s = score(
            &rs.iter()
                .map(|r| resampled_median(r, rng))
                .collect::<Vec<_>>(),
        );
        if b > s {
            led += 1;
        }
    }
    let per = |t: &str| explain(&common.iter().filter_map(|k| find(t, k)).collect::<Vec<_>>());
    let (wb, ws) = (per(best), per(second));
    let limited = results
        .iter()
        .filter(|m| common.contains(&m.key.as_str()))
        .filter_map(|m| m.limited_by.as_deref())
        .next();
    let why = match (wb.0, ws.0) {
        (Some(cb), Some(cs)) => {
            // An upload is one frame: its CPU reads per byte.
            let unit = if results.iter().any(|m| m.scenario == Scenario::Upload) {
                "s per GB"
            } else {
                "µs per frame"
            };
            let mut w = format!("server CPU {cb:.2} vs {cs:.2} {unit}");
            if let (Some(yb), Some(ys)) = (wb.1, ws.1) {
                w.push_str(&format!("; system calls {yb:.2} vs {ys:.2} per frame"));
            }
            w
        }
        _ => String::new(),
    };
    let why = match limited {
        Some(by) => format!(
            "the {by} set some of these rates, not the server: they bound the targets from below{}",
            if why.is_empty() {
                String::new()
            } else {
                format!("; {why}")
            }
        ),
        None => why,
    };
    Some(WorkloadVerdict {
        workload,
        configs: common.len(),
        best: best.into(),
        runner_up: Some(second.into()),
        // The runner-up may score zero (none found somewhere); then the
        // margin has no size, only the lead.
        margin: if second_score > 0.0 {
            best_score / second_score - 1.0
        } else {
            f64::NAN
        },
        confidence: led as f64 / RESAMPLES as f64,
        why,
        none_met: None,
    })
}

/// Geometric mean over configurations, with zero (no capacity found) kept
/// as zero rather than swallowing the mean.
fn score(medians: &[f64]) -> f64 {
    if medians.is_empty() || medians.iter().any(|&m| m <= 0.0) {
        return 0.0;
    }
    (medians.iter().map(|m| m.ln()).sum::<f64>() / medians.len() as f64).exp()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn resampled_median(v: &[f64], rng: &mut impl Rng) -> f64 {
    let pick: Vec<f64> = (0..v.len())
        .map(|_| v[rng.random_range(0..v.len())])
        .collect();
    median(&pick)
}

/// Geometric means of server CPU µs per frame and system calls per frame
/// over the measurements that have them.
fn explain(ms: &[&Measurement]) -> (Option<f64>, Option<f64>) {
    let cpu: Vec<f64> = ms
        .iter()
        .filter_map(|m| {
            m.server.map(|u| {
                if m.scenario == Scenario::Upload {
                    u.cpu_s_per_gb
                } else {
                    u.cpu_us_per_frame
                }
            })
        })
        .filter(|&c| c > 0.0)
        .collect();
    let calls: Vec<f64> = ms
        .iter()
        .filter_map(|m| m.syscalls)
        .map(|s| match s.server_syscalls_per_frame > 0.0 {
            true => s.server_syscalls_per_frame,
            false => s.server_reads_per_frame + s.server_writes_per_frame,
        })
        .filter(|&c| c > 0.0)
        .collect();
    let g = |v: &[f64]| (!v.is_empty()).then(|| score(v));
    (g(&cpu), g(&calls))
}

#[cfg(test)]
mod tests {
    use super::*;
    // The table is drawn by the report; these tests read the judgement through it.
    use crate::report::verdict_md::markdown;
    use crate::schema::bench::BenchTarget;

    fn run_with(reps: &[(&str, &str, [f64; 5])]) -> BenchRun {
        let mut run = BenchRun::empty();
        for name in ["a", "b"] {
            run.targets.push(BenchTarget {
                name: name.into(),
                kind: "backend".into(),
                detail: String::new(),
                concurrent: true,
            });
        }
        for (t, k, r) in reps {
            run.results.push(
                Measurement::new(Scenario::Echo, k, t, "frames/s", "closed-loop")
                    .with_reps(r.to_vec()),
            );
        }
        run
    }

    #[test]
    fn a_clear_lead_wins_and_overlapping_repetitions_tie() {
        let clear = run_with(&[
            ("a", "rr/64B/1c", [100.0, 101.0, 99.0, 100.0, 102.0]),
            ("b", "rr/64B/1c", [80.0, 81.0, 79.0, 80.0, 82.0]),
        ]);
        let v = &verdicts(&clear)[0];
        assert_eq!((v.best.as_str(), v.runner_up.as_deref()), ("a", Some("b")));
        assert!(!v.tie(), "{v:?}");
        assert!((v.margin - 0.25).abs() < 0.01, "{v:?}");

        let noisy = run_with(&[
            ("a", "rr/64B/1c", [100.0, 60.0, 140.0, 90.0, 105.0]),
            ("b", "rr/64B/1c", [95.0, 130.0, 70.0, 100.0, 99.0]),
        ]);
        let v = &verdicts(&noisy)[0];
        assert!(v.tie(), "{v:?}");
        assert!(markdown(&noisy).contains("**tie**"));
    }

    #[test]
    fn each_configuration_counts_the_same_whatever_its_scale() {
        // a wins the small configuration by 2x, b the big one by 1.5x: a
        // leads overall though b's big numbers dwarf a's small ones.
        let run = run_with(&[
            ("a", "rr/64B/1c", [200.0; 5]),
            ("b", "rr/64B/1c", [100.0; 5]),
            ("a", "rr/64B/16c", [1e6; 5]),
            ("b", "rr/64B/16c", [1.5e6; 5]),
        ]);
        let v = &verdicts(&run)[0];
        assert_eq!(v.best, "a");
        assert_eq!(v.configs, 2);
    }

    #[test]
    fn when_every_target_misses_a_configuration_none_is_ranked() {
        // a capacity search that found nothing is a zero: with a zero in
        // every target's row the geometric means are all zero, and the old
        // code named whichever target sorted first, "+inf%" ahead.
        let run = run_with(&[
            ("a", "rr/64B/16c", [0.0; 5]),
            ("b", "rr/64B/16c", [9e4; 5]),
            ("a", "rr/64B/256c", [0.0; 5]),
            ("b", "rr/64B/256c", [0.0; 5]),
        ]);
        let v = &verdicts(&run)[0];
        assert_eq!((v.best.as_str(), v.none_met), ("b", Some(1)), "{v:?}");
        let md = markdown(&run);
        assert!(md.contains("| none | no target met it"), "{md}");
        assert!(!md.contains("inf"), "{md}");

        // One zero only in the runner-up's row: the best leads, with no
        // percentage to give.
        let run = run_with(&[("a", "rr/64B/16c", [5e4; 5]), ("b", "rr/64B/16c", [0.0; 5])]);
        let v = &verdicts(&run)[0];
        assert_eq!((v.best.as_str(), v.none_met), ("a", None), "{v:?}");
        assert!(!v.tie(), "{v:?}");
        assert!(markdown(&run).contains("the runner-up has none"));
    }
}
