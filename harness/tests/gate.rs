//! `sockbench gate`: synthetic results for every rule, then a real
//! deliberately slowed back-end against the untouched one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sockbench::measure::stats::Summary;
use sockbench::schema::bench::{BenchRun, Measurement, Mode, Scenario, Status, Syscalls};
use sockbench::schema::conform::{ConformRun, Outcome};

fn sockbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .unwrap()
}

fn gate(base: &Path, cur: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "gate",
        "--baseline",
        base.to_str().unwrap(),
        "--current",
        cur.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = sockbench(&args);
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A small bench run: two echo configurations with ratios and counters.
fn bench_run(ratios: [[f64; 5]; 2], writes_per_frame: f64) -> BenchRun {
    let template = r#"{"schema":"sockbench-bench/1","tool_version":"0","machine":{"hostname":"","kernel":"","cpu":"","cpus":2,"memory_bytes":0,"rustc":"","git_revision":""},
        "seed":1,"started_unix":0,"duration_s":1,"mode":"quick","parameters":{"warmup_ms":50,"rep_ms":50,"repetitions":5,"echo_bodies":[64],"echo_connections":[1],
        "pipeline_window_bytes":65536,"pipeline_max_depth":32,"upload_bytes":67108864,"udp_sizes":[64],"udp_start_rate":20000,"udp_loss_onset":0.001,"many_idle":10000,"many_active":64},
        "targets":[],"ceilings":[],"results":[],"codec":[]}"#;
    let mut run: BenchRun = serde_json::from_str(template).unwrap();
    for (i, key) in ["rr/64B/1c", "rr/64B/16c"].into_iter().enumerate() {
        let mut m = Measurement::new(Scenario::Echo, key, "mio", "frames/s", "closed-loop")
            .with_reps(ratios[i].map(|r| r * 100_000.0).to_vec());
        m.ratio = Some(Summary::of(&ratios[i]));
        m.syscalls = Some(Syscalls {
            server_reads_per_frame: 1.0,
            server_writes_per_frame: writes_per_frame,
            driver_reads_per_frame: 1.0,
            driver_writes_per_frame: 1.0,
            server_frames_per_read: 1.0,
            server_syscalls_per_frame: 1.0 + writes_per_frame,
        });
        run.results.push(m);
    }
    run
}

fn write(dir: &Path, name: &str, value: &impl serde::Serialize) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(value).unwrap()).unwrap();
    p
}

const STEADY: [f64; 5] = [0.80, 0.82, 0.79, 0.81, 0.80];

#[test]
fn a_40_percent_drop_in_one_ratio_fails() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let cur = write(
        d.path(),
        "cur.json",
        &bench_run([STEADY, STEADY.map(|r| r * 0.6)], 1.0),
    );
    let (code, out) = gate(
        &base,
        &cur,
        &["--summary", d.path().join("s.md").to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("REGRESSION") && out.contains("rr/64B/16c"),
        "{out}"
    );
    let md = std::fs::read_to_string(d.path().join("s.md")).unwrap();
    assert!(
        md.contains("| metric | baseline | current | change | verdict |")
            && md.contains("-40.0%")
            && md.contains("**FAIL**"),
        "{md}"
    );
}

/// Timings from another machine (or with `--no-timing`) are stated and
/// not gated, with a line saying why; counters still are.
#[test]
fn timings_from_another_machine_are_not_gated_but_counters_are() {
    let d = tempfile::tempdir().unwrap();
    let mut other = bench_run([STEADY, STEADY], 1.0);
    other.machine.cpu = "AMD EPYC".into();
    let base = write(d.path(), "base.json", &other);
    let slower = bench_run([STEADY, STEADY.map(|r| r * 0.6)], 1.0);
    let cur = write(d.path(), "cur.json", &slower);
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not gated  2 metric(s): timings compare on one machine only")
            && out.contains("AMD EPYC x2"),
        "{out}"
    );
    let cur = write(d.path(), "counted.json", &bench_run([STEADY, STEADY], 1.1));
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 1, "a counter rise on another machine: {out}");
    // The same machine gates the drop, unless told not to.
    let base = write(d.path(), "same.json", &bench_run([STEADY, STEADY], 1.0));
    let cur = write(d.path(), "cur.json", &slower);
    assert_eq!(gate(&base, &cur, &[]).0, 1);
    let (code, out) = gate(&base, &cur, &["--no-timing"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("--no-timing: timings stated, not gated"),
        "{out}"
    );
}

#[test]
fn five_percent_noise_passes() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let noisy = [
        [0.78, 0.83, 0.76, 0.80, 0.77],
        [0.84, 0.80, 0.77, 0.79, 0.76],
    ];
    let cur = write(d.path(), "cur.json", &bench_run(noisy, 1.0));
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_counter_rise_beyond_five_percent_fails() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let cur = write(d.path(), "cur.json", &bench_run([STEADY, STEADY], 1.1));
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("server writes/frame"), "{out}");
    let cur = write(d.path(), "cur2.json", &bench_run([STEADY, STEADY], 1.03));
    assert_eq!(gate(&base, &cur, &[]).0, 0);
}

#[test]
fn a_missing_scenario_or_a_bad_file_is_exit_2_with_a_reason() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let mut short = bench_run([STEADY, STEADY], 1.0);
    short.results.pop();
    let cur = write(d.path(), "cur.json", &short);
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("scenario echo rr/64B/16c on mio is missing from the current run"),
        "{out}"
    );
    let (code, out) = gate(&base, &d.path().join("nope.json"), &[]);
    assert_eq!(code, 2);
    assert!(out.contains("nope.json"), "{out}");
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, r#"{"schema":"something-else/9"}"#).unwrap();
    let (code, out) = gate(&base, &bad, &[]);
    assert_eq!(code, 2);
    assert!(out.contains("unknown schema"), "{out}");
    let mut full = bench_run([STEADY, STEADY], 1.0);
    full.mode = Mode::Full;
    let (code, out) = gate(&base, &write(d.path(), "full.json", &full), &[]);
    assert_eq!(code, 2);
    assert!(out.contains("not comparable"), "{out}");
}

fn conform_run(outcomes: &[(&str, Outcome)]) -> ConformRun {
    let mut run: ConformRun = serde_json::from_str(r#"{"schema":"sockbench-conform/1","tool_version":"0","seed":1,"machine":{"hostname":"","kernel":"","cpu":"","cpus":2,"memory_bytes":0,"rustc":"","git_revision":""},"started_unix":0,"duration_s":1,"targets":[],"cases":[],"results":[]}"#).unwrap();
    for (case, outcome) in outcomes {
        run.results.push(serde_json::from_value(serde_json::json!({"case": case, "target": "mio", "outcome": outcome, "duration_ms": 1.0})).unwrap());
    }
    run
}

#[test]
fn a_case_that_stops_passing_fails_and_a_stale_known_failing_entry_fails() {
    let d = tempfile::tempdir().unwrap();
    let base = write(
        d.path(),
        "base.json",
        &conform_run(&[
            ("1.1", Outcome::Pass),
            ("2.6", Outcome::Pass),
            ("7.3", Outcome::Fail),
        ]),
    );
    let same = write(
        d.path(),
        "same.json",
        &conform_run(&[
            ("1.1", Outcome::Pass),
            ("2.6", Outcome::Pass),
            ("7.3", Outcome::Fail),
        ]),
    );
    assert_eq!(gate(&base, &same, &[]).0, 0);
    let broke = write(
        d.path(),
        "broke.json",
        &conform_run(&[
            ("1.1", Outcome::Pass),
            ("2.6", Outcome::Fail),
            ("7.3", Outcome::Fail),
        ]),
    );
    let (code, out) = gate(&base, &broke, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("conform 2.6 on mio"), "{out}");
    // Listed as known failing: the failure is accepted...
    let known = d.path().join("known.txt");
    std::fs::write(&known, "mio:2.6\n").unwrap();
    assert_eq!(
        gate(&base, &broke, &["--known-failing", known.to_str().unwrap()]).0,
        0
    );
    // ...and a listed case that passes makes the list stale.
    std::fs::write(&known, "1.1\n").unwrap();
    let (code, out) = gate(&base, &same, &["--known-failing", known.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("stale"), "{out}");
    let missing = write(
        d.path(),
        "missing.json",
        &conform_run(&[("1.1", Outcome::Pass)]),
    );
    assert_eq!(gate(&base, &missing, &[]).0, 2);
}

/// The real thing: a back-end slowed to one byte per write fails the gate on
/// the deterministic counters; the untouched one passes them.
#[test]
fn a_deliberately_slowed_back_end_fails_and_the_untouched_one_passes() {
    let d = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = d.path().join(name);
        let mut args = vec![
            "bench",
            "--quick",
            "--no-progress",
            // Request-response at one and 16 connections (its counts are
            // exact), and the pipelined configurations whose counts move
            // with batching most (16 KiB, 256 connections) and least.
            "--only",
            "echo rr/64B/1c",
            "--only",
            "echo rr/16KiB/1c",
            "--only",
            "echo rr/1KiB/16c",
            "--only",
            "echo pipelined/64B/16c",
            "--only",
            "echo pipelined/16KiB/256c",
            "--reps",
            "5",
            "--rep-ms",
            "20",
            "--warmup-ms",
            "10",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = sockbench(&args);
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            failures(&out)
        );
        out
    };
    let exe = env!("CARGO_BIN_EXE_sockbench");
    // Every echo result, pipelined ones too: their calls per frame move with
    // batching (0.33 to 0.54 reads per frame at 16 KiB and 256 connections,
    // same build), and the gate must not call that a regression.
    let base = run("base", &["--backend", "mio"]);
    let same = run("same", &["--backend", "mio"]);
    let slow_cmd = format!("mio={exe} serve --backend mio --test-max-write 1");
    let slow = run("slow", &["--spawn", &slow_cmd]);
    // Counters only (a huge timing tolerance), at the gate's own 5 %.
    let counters = ["--tolerance", "100"];
    let (code, out) = gate(&base, &same, &counters);
    assert_eq!(code, 0, "the untouched build: {out}");
    let (code, out) = gate(&base, &slow, &counters);
    assert_eq!(code, 1, "the slowed build: {out}");
    assert!(out.contains("server writes/frame"), "{out}");
    let slowed: BenchRun =
        serde_json::from_str(&std::fs::read_to_string(slow.join("results.json")).unwrap()).unwrap();
    // One connection, request-response: every frame goes out a byte per write.
    for m in slowed
        .results
        .iter()
        .filter(|m| m.key.starts_with("rr/") && m.key.ends_with("/1c"))
    {
        assert!(
            m.syscalls.unwrap().server_writes_per_frame > 15.0,
            "{}: {:?}",
            m.key,
            m.syscalls
        );
    }
}

/// The failed measurements of a bench run, one per line, for a panic message.
fn failures(out: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(out.join("results.json")) else {
        return format!("(no results.json in {})", out.display());
    };
    let run: BenchRun = serde_json::from_str(&text).unwrap();
    run.results
        .iter()
        .filter(|m| m.status != Status::Ok)
        .map(|m| {
            format!(
                "{} on {}: {}\n",
                m.key,
                m.target,
                m.reason.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

/// `--ab` judges each round's head over base: a drop that every round shows
/// fails; a drift that moves both builds of a round together passes.
#[test]
fn ab_pairs_fail_a_consistent_drop_and_pass_a_shared_drift() {
    use sockbench::analysis::gate::{GateVerdict as Verdict, Tolerances};
    use sockbench::gate::ab::paired;
    let tol = Tolerances::default();
    // The machine drifts by up to 40 % from round to round; head is 40 %
    // slower than base in the second configuration in every round.
    let drift = [1.0, 0.6, 0.9, 0.7, 1.0];
    let pairs: Vec<(BenchRun, BenchRun)> = drift
        .iter()
        .map(|d| {
            let base = bench_run([STEADY.map(|r| r * d), STEADY.map(|r| r * d)], 1.0);
            let head = bench_run([STEADY.map(|r| r * d), STEADY.map(|r| r * d * 0.6)], 1.0);
            (base, head)
        })
        .collect();
    let rows = paired(&pairs, tol);
    let verdict = |key: &str| {
        rows.iter()
            .find(|r| r.metric.contains(key) && r.metric.contains("head/base"))
            .map(|r| r.verdict)
            .unwrap()
    };
    assert_eq!(verdict("rr/64B/1c"), Verdict::Pass);
    assert_eq!(verdict("rr/64B/16c"), Verdict::Regression);
    // A rise in writes per frame is caught in the pairs too.
    let mut pairs = pairs;
    pairs.last_mut().unwrap().1 = bench_run([STEADY, STEADY], 2.0);
    assert!(
        paired(&pairs, tol)
            .iter()
            .any(|r| r.metric.contains("writes/frame") && r.verdict == Verdict::Regression)
    );
}

/// A target that served its connections one at a time is not gated on its
/// ratio (one connection's round trip against a ceiling serving them all);
/// the same drop on a target that served them all fails.
#[test]
fn a_result_served_one_connection_at_a_time_is_not_gated() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let mut dropped = bench_run([STEADY, STEADY.map(|r| r * 0.03)], 1.0);
    dropped.results[1].starved = 15;
    let cur = write(d.path(), "cur.json", &dropped);
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 0, "{out}");
    dropped.results[1].starved = 0;
    let cur = write(d.path(), "cur.json", &dropped);
    let (code, out) = gate(&base, &cur, &[]);
    assert_eq!(code, 1, "{out}");
}

/// A confirming run clears a timing regression it does not repeat, keeps one
/// it repeats, and is no evidence about a scenario it did not run.
#[test]
fn a_confirming_run_clears_noise_and_keeps_what_it_repeats() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.json", &bench_run([STEADY, STEADY], 1.0));
    let dropped = bench_run([STEADY, STEADY.map(|r| r * 0.6)], 1.0);
    let cur = write(d.path(), "cur.json", &dropped);
    let steady = write(d.path(), "steady.json", &bench_run([STEADY, STEADY], 1.0));
    let again = write(d.path(), "again.json", &dropped);
    let mut other = bench_run([STEADY, STEADY], 1.0);
    for m in &mut other.results {
        m.scenario = Scenario::Udp;
    }
    let other = write(d.path(), "other.json", &other);
    let with = |confirming: &Path| {
        let c = confirming.to_str().unwrap();
        gate(&base, &cur, &["--current", c])
    };
    let (code, out) = with(&steady);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not confirmed by the other run(s): noise"),
        "{out}"
    );
    let (code, out) = with(&again);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("confirmed in all 2 runs"), "{out}");
    let (code, out) = with(&other);
    assert_eq!(
        code, 1,
        "a run without echo cannot clear an echo regression: {out}"
    );
    assert!(
        out.contains("REGRESSION") && out.contains("rr/64B/16c"),
        "{out}"
    );
}

/// `gate --confirm` re-measures the regressed configuration for real (one
/// echo configuration on mio, ~2 s): against a baseline no server reaches
/// the regression is confirmed; against one any server beats, a current
/// run that dropped below it is cleared as noise.
#[test]
fn gate_confirm_re_measures_only_what_regressed() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    let o = sockbench(&[
        "bench",
        "--quick",
        "--no-progress",
        "--backend",
        "mio",
        "--only",
        "echo rr/64B/1c",
        "--out",
        real.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let measured: BenchRun =
        serde_json::from_str(&std::fs::read_to_string(real.join("results.json")).unwrap()).unwrap();
    assert_eq!(measured.results.len(), 1, "--only: one configuration");
    let with_ratios = |reps: [f64; 5]| {
        let mut r = measured.clone();
        r.results[0].ratio = Some(Summary::of(&reps));
        r
    };
    let judge = |base: [f64; 5], cur: [f64; 5], name: &str| {
        let dir = d.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let b = write(&dir, "base.json", &with_ratios(base));
        let c = dir.join("cur");
        std::fs::create_dir_all(&c).unwrap();
        write(&c, "results.json", &with_ratios(cur));
        let r = gate(&b, &c, &["--confirm"]);
        assert!(
            c.join("confirm/results.json").exists(),
            "{name}: no confirming run: {}",
            r.1
        );
        r
    };
    let (code, out) = judge([100.0; 5], [50.0; 5], "unreachable");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("confirmed in all 2 runs"), "{out}");
    assert!(out.contains("--only echo rr/64B/1c"), "{out}");
    let (code, out) = judge([0.02; 5], [0.01; 5], "beaten");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not confirmed by the other run(s): noise"),
        "{out}"
    );
}

#[test]
fn a_ratio_above_its_ceiling_is_a_warning_not_a_pass() {
    let d = tempfile::tempdir().unwrap();
    let above = [1.30, 1.31, 1.29, 1.30, 1.32];
    let base = write(d.path(), "base.json", &bench_run([STEADY, above], 1.0));
    let cur = write(d.path(), "cur.json", &bench_run([STEADY, above], 1.0));
    let summary = d.path().join("s.md");
    let (code, out) = gate(&base, &cur, &["--summary", summary.to_str().unwrap()]);
    // Unchanged, so no regression; but the ceiling under rr/64B/16c is not one.
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("rr/64B/16c mio: suspect ceiling") && !md.contains("rr/64B/1c mio: suspect"),
        "{md}"
    );
}
