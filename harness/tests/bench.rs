//! `sockbench bench` end to end, shortened: every scenario on one back-end
//! writes all three outputs with every cell filled, and `sockbench report`
//! regenerates them from results.json.

use std::path::Path;
use std::process::{Command, Output};

use sockbench::schema::bench::{BenchRun, Scenario, Status};

fn sockbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .unwrap()
}

/// Short windows; no pinning, because the tests of this file run in
/// parallel and pinning would put every driver on one core and every server
/// on the other.
const SHORT: [&str; 11] = [
    "--quick",
    "--no-pin",
    "--no-progress",
    "--reps",
    "5",
    "--rep-ms",
    "20",
    "--warmup-ms",
    "10",
    "--upload",
    "4M",
];

#[test]
fn every_scenario_fills_every_cell_and_the_report_regenerates() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    // The capacity search has its own test below.
    let mut args = vec![
        "bench",
        "--backend",
        "mio",
        "--idle",
        "300",
        "--out",
        dir,
        "--scenario",
        "echo,upload,udp,many,codec",
    ];
    args.extend(SHORT);
    let o = sockbench(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run: BenchRun =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(run.schema, "sockbench-bench/1");
    assert!(!run.machine.kernel.is_empty() && run.machine.cpus > 0);
    // 24 echo configurations, 2 uploads, 2 UDP sizes, 1 many-connections.
    assert_eq!(run.results.len(), 24 + 2 + 2 + 1);
    for m in &run.results {
        assert_eq!(
            m.status,
            Status::Ok,
            "{} {}: {:?}",
            m.scenario,
            m.key,
            m.reason
        );
        assert_eq!(m.reps.len(), 5, "{} {}", m.scenario, m.key);
        // The median, not the minimum: a 20 ms window on a shared machine
        // can fall wholly inside a stall of the server and count nothing.
        assert!(m.value.median > 0.0, "{} {} is zero", m.scenario, m.key);
        // A UDP rate the sender set, not the server (this one's or its
        // ceiling's), bounds the server from below: it must say so and carry
        // no ratio; every other result has one.
        let sender_set = m.notes.iter().any(|n| n.starts_with("no ratio"));
        if m.limited_by.is_some() || sender_set {
            assert!(
                m.ratio.is_none() && m.scenario == Scenario::Udp,
                "{} {}",
                m.scenario,
                m.key
            );
            assert!(sender_set, "{} {}: {:?}", m.scenario, m.key, m.notes);
        } else {
            let ratio = m
                .ratio
                .unwrap_or_else(|| panic!("{} {} has no ratio to a ceiling", m.scenario, m.key));
            assert!(ratio.median > 0.0);
        }
        let server = m
            .server
            .unwrap_or_else(|| panic!("{} {} has no server CPU", m.scenario, m.key));
        assert!(
            server.cpu_s > 0.0 && server.peak_rss_bytes > 0,
            "{} {}",
            m.scenario,
            m.key
        );
        if m.scenario != Scenario::Upload {
            assert!(
                m.latency
                    .is_some_and(|l| l.count > 0 && l.p50_us > 0.0 && l.p999_us >= l.p50_us)
            );
        }
        if m.scenario == Scenario::Echo {
            let s = m.syscalls.unwrap();
            assert!(
                s.server_reads_per_frame > 0.0 && s.driver_reads_per_frame > 0.0,
                "{}: {s:?}",
                m.key
            );
            assert!(m.driver_cpu_us_per_frame > 0.0);
        }
        if m.scenario == Scenario::Udp {
            assert!(m.curve.len() >= 2, "a loss curve");
        }
        if m.scenario == Scenario::Upload {
            // The server's work per GB beside the store loop's.
            assert!(
                m.notes
                    .iter()
                    .any(|n| n.contains("against the store loop's") && n.contains("efficiency")),
                "{}: {:?}",
                m.key,
                m.notes
            );
        }
    }
    for c in &run.ceilings {
        assert_eq!(c.status, Status::Ok, "ceiling {}: {:?}", c.key, c.reason);
        assert!(c.value.median > 0.0);
        if c.key.starts_with("store/") {
            assert!(c.cpu_s_per_gb.is_some_and(|x| x > 0.0), "{}", c.key);
            // Measured before and after the targets, both kept.
            assert_eq!(c.reps.len(), 10, "{}: {:?}", c.key, c.reps);
            assert!(
                c.notes
                    .iter()
                    .any(|n| n.contains("before and after the targets")),
                "{:?}",
                c.notes
            );
        }
    }
    assert_eq!(run.codec.len(), 6);
    assert!(
        run.codec
            .iter()
            .all(|c| c.ours_ns.median > 0.0 && c.alternative_ns.median > 0.0)
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for section in [
        "## Ceilings",
        "## Echo",
        "## Upload",
        "## UDP",
        "## Many",
        "## Codec",
    ] {
        assert!(md.contains(section), "report.md lacks {section}");
    }
    assert!(
        md.contains("The store loop's own thread: 4MiB/fsync"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.matches("<svg").count() >= 8, "charts in index.html");
    // `sockbench report` regenerates the same Markdown from the JSON.
    std::fs::remove_file(out.path().join("report.md")).unwrap();
    let o = sockbench(&[
        "report",
        "--in",
        out.path().join("results.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out.path().join("report.md")).unwrap(),
        md
    );
}

#[test]
fn blocking_is_marked_not_applicable_for_many_and_starved_in_echo() {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "bench",
        "--backend",
        "blocking",
        "--scenario",
        "many,echo",
        "--idle",
        "50",
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend(SHORT);
    let o = sockbench(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: BenchRun =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    let many = run
        .results
        .iter()
        .find(|m| m.scenario == Scenario::Many)
        .unwrap();
    assert_eq!(many.status, Status::NotApplicable);
    let starved = run.find(Scenario::Echo, "rr/64B/16c", "blocking").unwrap();
    assert!(
        starved
            .notes
            .iter()
            .any(|n| n.contains("15 of 16 connections completed nothing")),
        "{:?}",
        starved.notes
    );
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let o = sockbench(&["bench", "--reps", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least five repetitions"));
    let o = sockbench(&["bench", "--scenario", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown scenario"));
    let o = sockbench(&["report", "--in", "/nonexistent/results.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/results.json"));
}

/// The netem mode either runs (root, iproute2, a kernel with netem) or says
/// in one line what is missing and exits non-zero; either way it leaves no
/// namespace behind. `none` needs no netem qdisc, so with root it always
/// crosses the namespaces for real.
#[test]
fn netem_mode_runs_or_refuses_in_one_line_and_cleans_up() {
    let left = || {
        let o = Command::new("ip").args(["netns", "list"]).output();
        o.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("sockbench-srv-"))
                .count()
        })
        .unwrap_or(0)
    };
    let before = left();
    for spec in ["none", "loss=2%,delay=1ms"] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec![
            "bench",
            "--backend",
            "mio",
            "--netem",
            spec,
            "--out",
            out.path().to_str().unwrap(),
        ];
        args.extend(SHORT);
        let o = sockbench(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            let run: BenchRun = serde_json::from_str(
                &std::fs::read_to_string(out.path().join("results.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(run.netem.len(), 2, "one result per datagram size");
            for n in &run.netem {
                assert!(
                    n.netem.iter().all(|p| p.sent > 0 && p.received > 0),
                    "{spec}: {n:?}"
                );
                if spec == "none" {
                    assert_eq!(
                        n.netem_loss.max, 0.0,
                        "no impairment, no loss across the veth"
                    );
                }
            }
        } else {
            assert_eq!(o.status.code(), Some(2), "{spec}: {stderr}");
            let line = stderr
                .lines()
                .find(|l| l.starts_with("sockbench bench:"))
                .unwrap_or_default();
            assert!(
                line.contains("netem") || line.contains("root") || line.contains("iproute2"),
                "{spec}: {stderr}"
            );
            // With root and iproute2 present, `none` must not fail.
            if spec == "none" {
                assert!(!line.contains("qdisc"), "{stderr}");
            }
        }
        assert_eq!(left(), before, "{spec}: a namespace was left behind");
    }
}

/// The headline: a capacity for each configuration asked for, its knee, its ratio
/// to the ceiling's capacity and the server's CPU there. The target is one
/// any server meets at some rate on a shared machine (p90 within 50 ms), so
/// every cell must be filled.
#[test]
fn the_capacity_scenario_finds_a_capacity_and_draws_its_knee() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let o = sockbench(&[
        "bench",
        "--backend",
        "mio",
        // The smallest and the largest of the four configurations.
        "--only",
        "capacity 64B/16c",
        "--only",
        "capacity 16KiB/256c",
        "--slo",
        "p90=50ms",
        "--quick",
        "--no-pin",
        "--no-progress",
        "--out",
        dir,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: BenchRun =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(
        run.results.len(),
        2,
        "64 B at 16 and 16 KiB at 256 connections"
    );
    assert!(!run.floor.is_empty(), "the scheduling floor is measured");
    for m in &run.results {
        assert_eq!(
            (m.scenario.as_str(), m.status.as_str()),
            ("capacity", "ok"),
            "{:?}",
            m.reason
        );
        assert!(m.value.median > 0.0, "{}: {:?}", m.key, m.notes);
        assert!(m.ratio.is_some(), "{}: {:?}", m.key, m.notes);
        assert!(
            m.server.is_some_and(|u| u.cpu_us_per_frame > 0.0),
            "{}",
            m.key
        );
        let passed: Vec<f64> = m
            .knee
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.offered)
            .collect();
        assert!(
            passed
                .iter()
                .any(|&r| r == m.value.median.round() || (r - m.value.median).abs() / r < 0.05),
            "{}: capacity {} is one of its passing steps {passed:?}",
            m.key,
            m.value.median
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("## Capacity at p90 ≤ 50 ms (open loop)"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(
        html.contains("Knee, 64B/16c"),
        "a knee chart per configuration"
    );
}
