//! Pooling several bench runs into one baseline: each configuration's
//! repetitions from every run together, so the baseline's range spans the
//! run-to-run noise a single run cannot show.

use crate::bench::stats::Summary;
use crate::schema::bench::{BenchRun, CodecResult, Measurement, Status};

/// Pools `runs` (of the same parameters) into one.
pub fn pool(mut runs: Vec<BenchRun>) -> Option<BenchRun> {
    let mut out = runs.first()?.clone();
    let rest: Vec<BenchRun> = runs.drain(1..).collect();
    for other in &rest {
        for m in out.results.iter_mut() {
            if let Some(o) = other.find(m.scenario, &m.key, &m.target) {
                merge(m, o);
            }
        }
        for c in out.ceilings.iter_mut() {
            if let Some(o) = other
                .ceilings
                .iter()
                .find(|x| x.scenario == c.scenario && x.key == c.key)
            {
                merge(c, o);
            }
        }
        for c in out.codec.iter_mut() {
            if let Some(o) = other.codec.iter().find(|x| x.operation == c.operation) {
                merge_codec(c, o);
            }
        }
        out.duration_s += other.duration_s;
    }
    out.runs = 1 + rest.len();
    Some(out)
}

fn merge(m: &mut Measurement, o: &Measurement) {
    if m.status != Status::Ok || o.status != Status::Ok {
        return;
    }
    m.reps.extend_from_slice(&o.reps);
    m.value = Summary::of(&m.reps);
    if let (Some(a), Some(b)) = (m.ratio, o.ratio) {
        m.ratio = Some(widen(&a, &b));
    }
    if let (Some(a), Some(b)) = (m.syscalls.as_mut(), o.syscalls) {
        // Counters agree within about 1 %; keep their mean.
        a.server_reads_per_frame = (a.server_reads_per_frame + b.server_reads_per_frame) / 2.0;
        a.server_writes_per_frame = (a.server_writes_per_frame + b.server_writes_per_frame) / 2.0;
        a.server_frames_per_read = (a.server_frames_per_read + b.server_frames_per_read) / 2.0;
        a.driver_reads_per_frame = (a.driver_reads_per_frame + b.driver_reads_per_frame) / 2.0;
        a.driver_writes_per_frame = (a.driver_writes_per_frame + b.driver_writes_per_frame) / 2.0;
        a.server_syscalls_per_frame =
            (a.server_syscalls_per_frame + b.server_syscalls_per_frame) / 2.0;
    }
}

/// The median of medians, and the range of both.
fn widen(a: &Summary, b: &Summary) -> Summary {
    let n = a.n + b.n;
    let median = (a.median * a.n as f64 + b.median * b.n as f64) / n as f64;
    Summary {
        n,
        median,
        min: a.min.min(b.min),
        max: a.max.max(b.max),
        mean: (a.mean * a.n as f64 + b.mean * b.n as f64) / n as f64,
        cv: a.cv.max(b.cv),
    }
}

fn merge_codec(c: &mut CodecResult, o: &CodecResult) {
    c.ours_ns = widen(&c.ours_ns, &o.ours_ns);
    c.alternative_ns = widen(&c.alternative_ns, &o.alternative_ns);
    c.ours_allocs = c.ours_allocs.max(o.ours_allocs);
    c.alternative_allocs = c.alternative_allocs.max(o.alternative_allocs);
}
