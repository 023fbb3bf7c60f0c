//! The gate's judgement: a current run against a baseline, a regression
//! failed strictly where results are deterministic and carefully where
//! they are not. `sockbench gate` ([`crate::gate`]) runs it; the report
//! draws its rows ([`crate::report::gate_md`]).
//!
//! - Conformance: a case that passed in the baseline and does not pass now
//!   fails the gate; so does a `--known-failing` entry that passes (stale).
//! - Counters (syscalls per frame in request-response, codec allocations
//!   per operation): they repeat within about 1 % from run to run, so a
//!   rise above `--counter-tolerance` (default 5 %) fails. Pipelined calls
//!   per frame depend on batching, hence on timing: a rise there warns.
//! - Not gated, with a row that says why ([`GateVerdict::Ungated`], counted
//!   apart from passes): results a sender held back, results whose
//!   connections were served one at a time, and every timing when the
//!   baseline ran on another machine (CPU model, CPU count or kernel) or
//!   `--no-timing` is given. [`crate::gate::ab`] gates timings on one machine instead.
//! - Timings: only ratios to the same run's ceilings are compared, never
//!   absolute numbers. A regression needs both a median change beyond
//!   `--tolerance` (default 25 %) and the current repetitions' range lying
//!   wholly below the baseline's; a baseline pooled from several runs
//!   (`sockbench baseline`) makes that range cover run-to-run noise.
//!   Smaller or overlapping changes are warnings. Capacity ratios move in
//!   steps of their search, so their tolerance is at least two steps
//!   ([`capacity_tolerance`]); with no ceiling capacity at the target
//!   there is no ratio, and nothing is gated.
//!
//! Exit codes: 0 pass, 1 regression, 2 unusable input (with one line why).

use std::path::{Path, PathBuf};

use crate::schema::Results;
use crate::schema::conform::KnownFailing;

use crate::measure::stats::Summary;
use crate::schema::bench::{BenchRun, Measurement, Scenario, Status};
use crate::schema::conform::{ConformRun, Outcome};

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GateVerdict {
    /// Worse beyond doubt.
    Regression,
    /// Worse, but within what noise or the tolerance allows.
    Warning,
    /// Better beyond doubt.
    Improved,
    /// Stated, not judged; the row's note says why.
    Ungated,
    /// Unchanged within tolerance.
    Pass,
}

impl GateVerdict {
    /// The word a report prints.
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Regression => "REGRESSION",
            GateVerdict::Warning => "warning",
            GateVerdict::Improved => "improved",
            GateVerdict::Ungated => "not gated",
            GateVerdict::Pass => "pass",
        }
    }
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is compared, e.g. `echo rr/64B/16c mio: ratio to ceiling`.
    pub metric: String,
    /// Baseline value.
    pub baseline: String,
    /// Current value.
    pub current: String,
    /// Relative change, when numeric.
    pub change: Option<f64>,
    /// The verdict.
    pub verdict: GateVerdict,
    /// Why.
    pub note: String,
}

/// Input the gate cannot use; exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// Tolerances.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// Relative drop of a median ratio that can be a regression.
    pub timing: f64,
    /// Relative rise of a counter that is a regression.
    pub counter: f64,
    /// Whether timings are gated at all (`--no-timing` turns them off; a
    /// baseline from another machine does too).
    pub gate_timing: bool,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            timing: 0.25,
            counter: 0.05,
            gate_timing: true,
        }
    }
}

/// A baseline or current: bench results, conform results, or both.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Bench results.
    pub bench: Option<BenchRun>,
    /// Conformance results.
    pub conform: Option<ConformRun>,
}

impl Inputs {
    /// Reads a results.json, or a directory holding `results.json` and/or
    /// `conform/results.json`.
    pub fn load(path: &Path) -> Result<Inputs, Unusable> {
        let files: Vec<PathBuf> = if path.is_dir() {
            [path.join("results.json"), path.join("conform/results.json")]
                .into_iter()
                .filter(|p| p.exists())
                .collect()
        } else {
            vec![path.to_owned()]
        };
        if files.is_empty() {
            return Err(Unusable(format!(
                "{}: no results.json or conform/results.json in it",
                path.display()
            )));
        }
        let mut inputs = Inputs::default();
        for f in files {
            match Results::read(&f).map_err(|e| Unusable(e.to_string()))? {
                Results::Bench(run) => inputs.bench = Some(*run),
                Results::Conform(run) => inputs.conform = Some(*run),
                Results::Soak(_) => {
                    return Err(Unusable(format!(
                        "{}: a soak's results are judged by the soak itself, not gated",
                        f.display()
                    )));
                }
            }
        }
        Ok(inputs)
    }

    /// This baseline cut to what a confirming run re-measured: the
    /// configurations it has results for, the codec operations if it has
    /// them, conformance only if it has some. A confirming run repeats only
    /// what regressed.
    pub fn narrowed_to(&self, confirming: &Inputs) -> Inputs {
        let bench = match (&self.bench, &confirming.bench) {
            (Some(b), Some(c)) => {
                let mut b = b.clone();
                b.results
                    .retain(|m| c.find(m.scenario, &m.key, &m.target).is_some());
                if c.codec.is_empty() {
                    b.codec.clear();
                }
                Some(b)
            }
            (b, _) => b.clone(),
        };
        Inputs {
            bench,
            conform: confirming.conform.as_ref().and(self.conform.clone()),
        }
    }
}

/// Compares `current` with `baseline`.
pub fn compare(
    baseline: &Inputs,
    current: &Inputs,
    tol: Tolerances,
    known: &KnownFailing,
) -> Result<Vec<Row>, Unusable> {
    let mut rows = Vec::new();
    match (&baseline.conform, &current.conform) {
        (Some(b), Some(c)) => rows.extend(conformance(b, c, known)?),
        (Some(_), None) => {
            return Err(Unusable(
                "the baseline has conformance results and the current run has none".into(),
            ));
        }
        _ => {}
    }
    match (&baseline.bench, &current.bench) {
        (Some(b), Some(c)) => rows.extend(bench(b, c, tol)?),
        (Some(_), None) => {
            return Err(Unusable(
                "the baseline has bench results and the current run has none".into(),
            ));
        }
        _ => {}
    }
    if rows.is_empty() && baseline.bench.is_none() && baseline.conform.is_none() {
        return Err(Unusable("the baseline holds no results".into()));
    }
    Ok(rows)
}

fn conformance(
    base: &ConformRun,
    cur: &ConformRun,
    known: &KnownFailing,
) -> Result<Vec<Row>, Unusable> {
    let mut rows = Vec::new();
    for b in &base.results {
        let Some(c) = cur.result(&b.case, &b.target) else {
            return Err(Unusable(format!(
                "conformance case {} on {} is missing from the current run",
                b.case, b.target
            )));
        };
        let metric = format!("conform {} on {}", b.case, b.target);
        let (verdict, note) = match (b.outcome, c.outcome, known.contains(&c.target, &c.case)) {
            (_, Outcome::Pass, true) => (
                GateVerdict::Regression,
                "listed as known failing but passes: the list is stale".to_owned(),
            ),
            (_, _, true) => (GateVerdict::Pass, "known failing".to_owned()),
            (Outcome::Pass, Outcome::Pass, _) => (GateVerdict::Pass, String::new()),
            (Outcome::Pass, o, _) => (
                GateVerdict::Regression,
                format!(
                    "passed, now {}: {}",
                    o.as_str(),
                    c.actual.as_deref().or(c.reason.as_deref()).unwrap_or("")
                ),
            ),
            (_, Outcome::Pass, _) => (GateVerdict::Improved, "now passes".to_owned()),
            _ => (GateVerdict::Pass, "did not pass before either".to_owned()),
        };
        rows.push(Row {
            metric,
            baseline: b.outcome.as_str().into(),
            current: c.label(),
            change: None,
            verdict,
            note,
        });
    }
    Ok(rows)
}

fn comparable(base: &BenchRun, cur: &BenchRun) -> Result<(), Unusable> {
    let (b, c) = (&base.parameters, &cur.parameters);
    let same = b.rep_ms == c.rep_ms
        && b.echo_bodies == c.echo_bodies
        && b.echo_connections == c.echo_connections
        && b.upload_bytes == c.upload_bytes
        && b.udp_sizes == c.udp_sizes
        && b.many_idle == c.many_idle
        && (b.capacity.bodies.is_empty() || b.capacity == c.capacity);
    if base.mode != cur.mode || !same {
        return Err(Unusable(format!(
            "the runs are not comparable: baseline is a {} run, current a {} run with other parameters; rerun with the same flags",
            base.mode, cur.mode
        )));
    }
    Ok(())
}

/// The value compared for timing: the ratio to the ceiling where there is one.
fn timing(m: &Measurement) -> (Summary, &'static str) {
    match m.ratio {
        Some(r) => (r, "ratio to ceiling"),
        None => (m.value, "value"),
    }
}

/// Why this comparison's timings are not gated, if they are not: turned
/// off, or measured on two machines. Ratios to ceilings cancel much of a
/// machine, not its wake-up latency, which moves request-response ratios
/// from one machine to another.
pub fn timing_off(base: &BenchRun, cur: &BenchRun, tol: Tolerances) -> Option<String> {
    let (b, c) = (&base.machine, &cur.machine);
    if !tol.gate_timing {
        Some("--no-timing: timings stated, not gated".into())
    } else if (&b.cpu, b.cpus, &b.kernel) != (&c.cpu, c.cpus, &c.kernel) {
        let m = |m: &crate::schema::machine::Machine| {
            format!(
                "{} x{} (kernel {})",
                or_unknown(&m.cpu),
                m.cpus,
                or_unknown(&m.kernel)
            )
        };
        Some(format!(
            "timings compare on one machine only: the baseline ran on {}, this run on {} \
             (record a baseline here with `sockbench baseline`, or use `gate --ab`)",
            m(b),
            m(c)
        ))
    } else {
        None
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

fn bench(base: &BenchRun, cur: &BenchRun, tol: Tolerances) -> Result<Vec<Row>, Unusable> {
    comparable(base, cur)?;
    let timing_off = timing_off(base, cur, tol);
    let mut rows = Vec::new();
    for b in base.results.iter().filter(|m| m.status == Status::Ok) {
        let name = format!("{} {} {}", b.scenario, b.key, b.target);
        let Some(c) = cur.find(b.scenario, &b.key, &b.target) else {
            return Err(Unusable(format!(
                "scenario {} {} on {} is missing from the current run",
                b.scenario, b.key, b.target
            )));
        };
        if c.status != Status::Ok {
            rows.push(Row {
                metric: name,
                baseline: "ok".into(),
                current: c.status.to_string(),
                change: None,
                verdict: GateVerdict::Regression,
                note: c.reason.clone().unwrap_or_default(),
            });
            continue;
        }
        // A row that states both ratios without gating them.
        let ungated = |what: &str, verdict: GateVerdict, note: String| Row {
            metric: format!("{name}: {what}"),
            baseline: b.ratio.map_or("-".into(), |r| format!("{:.3}", r.median)),
            current: c.ratio.map_or("-".into(), |r| format!("{:.3}", r.median)),
            change: None,
            verdict,
            note,
        };
        if b.scenario == Scenario::Capacity && (b.ratio.is_none() || c.ratio.is_none()) {
            // Without a ceiling capacity there is no ratio, and absolute rates are not gated.
            rows.push(ungated(
                "capacity ratio",
                GateVerdict::Ungated,
                "no ceiling capacity at the target in one of the runs: not gated".into(),
            ));
            continue;
        }
        if let Some(by) = b.limited_by.as_ref().or(c.limited_by.as_ref()) {
            rows.push(ungated(
                "rate",
                GateVerdict::Ungated,
                format!("the {by} set the rate in one of the runs, not the server: not gated"),
            ));
            continue;
        }
        // A target that served the connections one at a time is measured
        // on one connection's round trip; its ratio to a ceiling serving
        // them all swings with the machine's wake-up latency. Its
        // one-connection results are gated.
        if b.starved > 0 || c.starved > 0 || starved_note(b) {
            rows.push(ungated(
                "ratio to ceiling",
                GateVerdict::Ungated,
                "connections served one at a time: one connection's round trip, not gated".into(),
            ));
            continue;
        }
        if b.ratio.is_some() != c.ratio.is_some() {
            rows.push(ungated(
                "ratio to ceiling",
                GateVerdict::Warning,
                "a ratio in one run only (its ceiling failed?): not comparable".into(),
            ));
            continue;
        }
        let ((bs, what), (cs, _)) = (timing(b), timing(c));
        if let Some(why) = &timing_off {
            rows.push(ungated(what, GateVerdict::Ungated, why.clone()));
        } else {
            let t = if b.scenario == Scenario::Capacity {
                capacity_tolerance(&base.parameters.capacity.plan, tol.timing)
            } else {
                tol.timing
            };
            rows.push(timing_row(format!("{name}: {what}"), &bs, &cs, t));
        }
        rows.extend(call_rows(&name, b, c, tol));
    }
    rows.extend(suspect_rows(cur));
    rows.extend(codec_rows(base, cur, tol, timing_off.as_deref())?);
    Ok(rows)
}

/// The calls-per-frame rows of one measurement: gated where the counts are
/// exact (request-response), warnings where batching makes them timing's.
fn call_rows(name: &str, b: &Measurement, c: &Measurement, tol: Tolerances) -> Vec<Row> {
    let mut rows = Vec::new();
    if let (Some(bc), Some(cc)) = (b.syscalls, c.syscalls) {
        for (label, x, y) in [
            (
                "server reads/frame",
                bc.server_reads_per_frame,
                cc.server_reads_per_frame,
            ),
            (
                "server writes/frame",
                bc.server_writes_per_frame,
                cc.server_writes_per_frame,
            ),
            (
                "driver reads/frame",
                bc.driver_reads_per_frame,
                cc.driver_reads_per_frame,
            ),
            (
                "driver writes/frame",
                bc.driver_writes_per_frame,
                cc.driver_writes_per_frame,
            ),
            (
                "server syscalls/frame",
                bc.server_syscalls_per_frame,
                cc.server_syscalls_per_frame,
            ),
        ] {
            if x <= 0.0 {
                continue;
            }
            let row = counter_row(format!("{name}: {label}"), x, y, tol.counter);
            // System calls include waits and calls that would block,
            // whose number timing sets even in request-response.
            let syscalls = label.starts_with("server syscalls");
            rows.push(match (exact_counts(b) && !syscalls, syscalls) {
                (true, _) => row,
                (false, false) => batched(row),
                (false, true) => {
                    let mut row = batched(row);
                    if row.verdict == GateVerdict::Warning {
                        row.note = "waits and calls that would block are counted, and \
                                    timing sets how many: not gated"
                            .into();
                    }
                    row
                }
            });
        }
    }
    rows
}

/// A warning row for every result above its ceiling.
fn suspect_rows(cur: &BenchRun) -> Vec<Row> {
    let mut rows = Vec::new();
    // A target above its ceiling means the ceiling bounds nothing: every
    // ratio to it is suspect, whichever way it moved.
    for c in &cur.results {
        if let Some(r) = c.ratio.filter(|r| super::suspect(r.median)) {
            rows.push(Row {
                metric: format!("{} {} {}: suspect ceiling", c.scenario, c.key, c.target),
                baseline: "-".into(),
                current: format!("{:.3}", r.median),
                change: None,
                verdict: GateVerdict::Warning,
                note: format!(
                    "ratio above {} to its ceiling: the ceiling is not one",
                    crate::analysis::SUSPECT
                ),
            });
        }
    }
    rows
}

/// The codec's rows: allocations gated, its speed-up over the alternative
/// timed like any ratio.
fn codec_rows(
    base: &BenchRun,
    cur: &BenchRun,
    tol: Tolerances,
    timing_off: Option<&str>,
) -> Result<Vec<Row>, Unusable> {
    let mut rows = Vec::new();
    for b in &base.codec {
        let Some(c) = cur.codec.iter().find(|c| c.operation == b.operation) else {
            return Err(Unusable(format!(
                "codec operation {:?} is missing from the current run",
                b.operation
            )));
        };
        rows.push(counter_row(
            format!("codec {}: allocations/op", b.operation),
            b.ours_allocs,
            c.ours_allocs,
            tol.counter,
        ));
        // Ours over the alternative, both timed in the same run: a ratio that survives the machine.
        let ratio = |r: &crate::schema::bench::CodecResult| Summary {
            n: 1,
            median: r.alternative_ns.median / r.ours_ns.median,
            min: r.alternative_ns.min / r.ours_ns.max,
            max: r.alternative_ns.max / r.ours_ns.min,
            mean: r.alternative_ns.median / r.ours_ns.median,
            cv: 0.0,
        };
        let metric = format!("codec {}: speed-up over the alternative", b.operation);
        let (rb, rc) = (ratio(b), ratio(c));
        rows.push(match timing_off {
            Some(why) => Row {
                metric,
                baseline: format!("{:.3}", rb.median),
                current: format!("{:.3}", rc.median),
                change: None,
                verdict: GateVerdict::Ungated,
                note: why.to_owned(),
            },
            None => timing_row(metric, &rb, &rc, tol.timing),
        });
    }
    Ok(rows)
}

/// Why a result's ratio bounds something other than the server, if it
/// does: the sender set the rate, or the connections were served one at a
/// time (one connection's round trip against a ceiling serving them all).
pub(crate) fn not_the_server(m: &Measurement) -> Option<&'static str> {
    if m.limited_by.is_some() {
        Some("the sender set the rate, not the server: not gated")
    } else if m.starved > 0 || starved_note(m) {
        Some("connections served one at a time: one connection's round trip, not gated")
    } else {
        None
    }
}

/// A baseline written before `starved` was recorded says so in its notes.
fn starved_note(m: &Measurement) -> bool {
    m.notes.iter().any(|n| n.ends_with("served one at a time"))
}

/// Whether a result's calls per frame are exact: request-response keeps one
/// frame in flight per connection, so each frame costs the same reads and
/// writes in every run. Pipelined frames batch as timing lets them (0.33 to
/// 0.54 driver reads per frame at 16 KiB and 256 connections, same build),
/// so there a rise is a warning, not a regression.
pub(crate) fn exact_counts(m: &Measurement) -> bool {
    m.scenario == Scenario::Echo && m.key.starts_with("rr/")
}

/// A counter row demoted to a warning: its count depends on batching.
pub(crate) fn batched(mut row: Row) -> Row {
    if row.verdict == GateVerdict::Improved {
        row.verdict = GateVerdict::Pass;
    } else if row.verdict == GateVerdict::Regression {
        row.verdict = GateVerdict::Warning;
        row.note = "pipelined: calls per frame move with how frames batch, which timing sets; \
                    not gated"
            .into();
    }
    row
}

/// A capacity moves in steps of the search (one bisected step of the
/// ramp), so noise can cost it a step or two: a regression must be a larger
/// drop than two steps, and at least the timing tolerance.
pub fn capacity_tolerance(plan: &crate::schema::load::Plan, timing: f64) -> f64 {
    let step = plan
        .factor
        .max(1.0)
        .powf(1.0 / 2f64.powi(plan.bisect as i32));
    timing.max(1.0 - 1.0 / (step * step))
}

/// A higher-is-better timing ratio.
pub fn timing_row(metric: String, b: &Summary, c: &Summary, tol: f64) -> Row {
    let change = if b.median > 0.0 {
        c.median / b.median - 1.0
    } else {
        0.0
    };
    let (verdict, note) = if change < -tol && c.max < b.min {
        (
            GateVerdict::Regression,
            format!(
                "median {:+.0}% and every repetition below the baseline's range",
                change * 100.0
            ),
        )
    } else if change < -tol {
        (
            GateVerdict::Warning,
            "a drop beyond the tolerance, but the ranges overlap: noise cannot be ruled out".into(),
        )
    } else if change < -tol / 2.0 {
        (GateVerdict::Warning, "a drop within the tolerance".into())
    } else if change > tol && c.min > b.max {
        (GateVerdict::Improved, String::new())
    } else {
        (GateVerdict::Pass, String::new())
    };
    Row {
        metric,
        baseline: format!("{:.3} [{:.3}, {:.3}]", b.median, b.min, b.max),
        current: format!("{:.3} [{:.3}, {:.3}]", c.median, c.min, c.max),
        change: Some(change),
        verdict,
        note,
    }
}

/// A lower-is-better, deterministic count.
pub fn counter_row(metric: String, b: f64, c: f64, tol: f64) -> Row {
    let change = if b > 0.0 {
        c / b - 1.0
    } else if c > 0.0 {
        1.0
    } else {
        0.0
    };
    let verdict = if change > tol {
        GateVerdict::Regression
    } else if change < -tol {
        GateVerdict::Improved
    } else {
        GateVerdict::Pass
    };
    Row {
        metric,
        baseline: format!("{b:.3}"),
        current: format!("{c:.3}"),
        change: Some(change),
        verdict,
        note: String::new(),
    }
}

/// Merges the comparisons of several current runs against one baseline: a
/// timing regression stands only if every run shows it (noise seldom strikes
/// the same metric twice; a real slowdown does), everything else is judged
/// on the first run.
pub fn confirm(mut runs: Vec<Vec<Row>>) -> Vec<Row> {
    if runs.len() < 2 {
        return runs.pop().unwrap_or_default();
    }
    let later: Vec<Vec<Row>> = runs.drain(1..).collect();
    let mut first = runs.pop().unwrap_or_default();
    for row in first
        .iter_mut()
        .filter(|r| r.verdict == GateVerdict::Regression && is_timing(&r.metric))
    {
        // A run that did not re-measure this metric is no evidence either way.
        let again: Vec<&Row> = later
            .iter()
            .filter_map(|rows| rows.iter().find(|r| r.metric == row.metric))
            .collect();
        if again.is_empty() {
            continue;
        }
        if again.iter().all(|r| r.verdict == GateVerdict::Regression) {
            let n = again.len() + 1;
            row.note = format!("{}; confirmed in all {n} runs", row.note);
        } else {
            row.verdict = GateVerdict::Warning;
            row.note = format!("{}; not confirmed by the other run(s): noise", row.note);
        }
    }
    first
}

/// Whether a row compares a timing (as [`timing_row`] names them), the only
/// kind a confirming run can clear.
pub(crate) fn is_timing(metric: &str) -> bool {
    [
        ": ratio to ceiling",
        ": value",
        ": speed-up over the alternative",
    ]
    .iter()
    .any(|k| metric.ends_with(k))
}

/// Why rows were not gated, each reason with how many rows it covers, in
/// order of first appearance.
pub fn ungated_reasons(rows: &[Row]) -> Vec<(&str, usize)> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for r in rows.iter().filter(|r| r.verdict == GateVerdict::Ungated) {
        match out.iter_mut().find(|(why, _)| *why == r.note) {
            Some((_, n)) => *n += 1,
            None => out.push((&r.note, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(reps: &[f64]) -> Summary {
        Summary::of(reps)
    }

    #[test]
    fn timing_needs_size_and_separation() {
        let base = s(&[1.0, 1.02, 0.98, 1.01, 0.99]);
        assert_eq!(
            timing_row("x".into(), &base, &s(&[0.6, 0.61, 0.59, 0.6, 0.62]), 0.25).verdict,
            GateVerdict::Regression
        );
        assert_eq!(
            timing_row("x".into(), &base, &s(&[0.95, 0.97, 1.0, 0.96, 0.98]), 0.25).verdict,
            GateVerdict::Pass
        );
        // A large drop whose range reaches the baseline's: a warning, not a failure.
        assert_eq!(
            timing_row("x".into(), &base, &s(&[0.6, 0.65, 0.7, 0.62, 0.99]), 0.25).verdict,
            GateVerdict::Warning
        );
        assert_eq!(
            timing_row("x".into(), &base, &s(&[1.5, 1.6, 1.55, 1.52, 1.58]), 0.25).verdict,
            GateVerdict::Improved
        );
    }

    #[test]
    fn counters_are_strict() {
        assert_eq!(
            counter_row("x".into(), 1.0, 1.04, 0.05).verdict,
            GateVerdict::Pass
        );
        assert_eq!(
            counter_row("x".into(), 1.0, 1.06, 0.05).verdict,
            GateVerdict::Regression
        );
        assert_eq!(
            counter_row("x".into(), 2.0, 1.0, 0.05).verdict,
            GateVerdict::Improved
        );
        assert_eq!(
            counter_row("x".into(), 0.0, 1.0, 0.05).verdict,
            GateVerdict::Regression
        );
    }

    #[test]
    fn only_request_response_counts_are_gated() {
        let row = || counter_row("x".into(), 0.33, 0.54, 0.05);
        let rr = Measurement::new(
            Scenario::Echo,
            "rr/16KiB/256c",
            "mio",
            "frames/s",
            "closed-loop",
        );
        let piped = Measurement::new(
            Scenario::Echo,
            "pipelined/16KiB/256c",
            "mio",
            "frames/s",
            "x",
        );
        assert!(exact_counts(&rr) && !exact_counts(&piped));
        assert_eq!(row().verdict, GateVerdict::Regression);
        let demoted = batched(row());
        assert_eq!(demoted.verdict, GateVerdict::Warning);
        assert!(demoted.note.contains("not gated"), "{}", demoted.note);
        assert_eq!(
            batched(counter_row("x".into(), 0.54, 0.33, 0.05)).verdict,
            GateVerdict::Pass
        );
    }

    #[test]
    fn capacity_tolerates_two_search_steps() {
        let plan = |factor, bisect| crate::schema::load::Plan {
            start_rate: 1000.0,
            factor,
            max_rate: 1e6,
            bisect,
            confirm: 0,
        };
        // Quick: ×4 bisected twice is a step of √2; two steps halve it.
        assert!((capacity_tolerance(&plan(4.0, 2), 0.25) - 0.5).abs() < 1e-9);
        // Fine steps never go below the timing tolerance.
        assert_eq!(capacity_tolerance(&plan(2.0, 5), 0.25), 0.25);
    }
}
