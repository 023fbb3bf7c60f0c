//! One suite, every back-end: the whole conformance catalogue against each
//! of our back-ends, one test per back-end, with the outcome of every case
//! printed when one fails. The list below is checked against the harness's
//! single list of back-ends, so a new back-end cannot go untested.

use std::path::Path;
use std::process::Command;

use sockbench::conform::cases::catalogue;
use sockbench::schema::conform::{ConformRun, Outcome};

fn run_catalogue(backend: &str) {
    run_catalogue_on(backend, "ipv4");
}

fn run_catalogue_on(backend: &str, family: &str) {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(["conform", "--backend", backend, "--family", family])
        .args(["--no-progress", "--out"])
        .arg(out.path())
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("sockbench runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let text = std::fs::read_to_string(out.path().join("results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}); stdout:\n{stdout}"));
    let run: ConformRun = serde_json::from_str(&text).expect("results.json parses");
    // Our back-ends leave no zombie, spin no CPU and break no rule.
    assert!(run.findings.is_empty(), "{backend}: {:?}", run.findings);
    let table: Vec<String> = run
        .results
        .iter()
        .map(|r| format!("{:<6} {}", r.case, r.outcome.as_str()))
        .collect();
    let b = sockbench::serve::backends::find(backend).expect("a back-end of the harness");
    if let Err(why) = b.probe() {
        // Unavailable here: every case says so, none passes or fails.
        for r in &run.results {
            assert_eq!(r.outcome, Outcome::Unsupported, "{backend} {}", r.case);
            assert!(r.reason.as_deref().is_some_and(|t| t.contains(&why.0)));
        }
        assert!(o.status.success(), "{stdout}");
        eprintln!("{backend} is unavailable here ({why}): its cases are UNSUPPORTED");
        return;
    }
    // Only a back-end that serves one connection at a time may decline a
    // case (those that need several at once).
    let concurrent = b.capabilities().concurrent;
    let bad: Vec<&String> = run
        .results
        .iter()
        .zip(&table)
        .filter(|(r, _)| r.outcome != Outcome::Pass)
        .filter(|(r, _)| concurrent || r.outcome != Outcome::Unsupported)
        .map(|(_, line)| line)
        .collect();
    assert!(
        bad.is_empty() && o.status.success(),
        "{backend}: {} case(s) not passed: {bad:?}\nevery case:\n{}\n{stdout}",
        bad.len(),
        table.join("\n")
    );
    assert_eq!(
        run.results.len(),
        catalogue().len(),
        "{backend}: every case ran"
    );
}

macro_rules! every_backend {
    ($($backend:ident),* $(,)?) => {
        $(
            #[test]
            fn $backend() {
                run_catalogue(stringify!($backend));
            }
        )*

        #[test]
        fn the_list_here_is_the_harness_list_of_back_ends() {
            assert_eq!([$(stringify!($backend)),*].as_slice(), sockbench::serve::backends::names());
        }
    };
}

every_backend!(blocking, threaded, mio, tokio, uring, percore);

/// Every case holds over IPv6 too (the oversize limit follows the family):
/// once, on the back-end every other shares its session with.
#[test]
fn mio_over_ipv6() {
    run_catalogue_on("mio", "ipv6");
}

/// Where io_uring is missing (forced here through the probe's lever):
/// `serve` refuses in one line with exit 2, `conform` reports every case
/// UNSUPPORTED with the reason and still exits 0, and `bench` measures the
/// others and lists the back-end as not measured.
#[test]
fn an_unavailable_back_end_is_refused_in_one_line_and_never_fails_a_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sockbench"))
            .args(args)
            .env(sockbench_uring::FORCE_UNAVAILABLE, "forced by the test")
            .current_dir(&root)
            .output()
            .expect("sockbench runs")
    };
    let o = run(&["serve", "--backend", "uring", "--tcp", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("uring") && err.contains("forced by the test"),
        "{err}"
    );

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let o = run(&[
        "conform",
        "--backend",
        "uring,mio",
        "--cases",
        "1.1,2.6",
        "--no-progress",
        "--out",
        dir,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let results: ConformRun = serde_json::from_str(&text).unwrap();
    for r in &results.results {
        match r.target.as_str() {
            "uring" => {
                assert_eq!(r.outcome, Outcome::Unsupported, "{}", r.case);
                assert!(
                    r.reason
                        .as_deref()
                        .unwrap_or("")
                        .contains("forced by the test")
                );
            }
            _ => assert_eq!(r.outcome, Outcome::Pass, "{} {}", r.target, r.case),
        }
    }

    let o = run(&[
        "bench",
        "--backend",
        "uring,mio",
        "--scenario",
        "echo",
        "--only",
        "echo rr/64B/1c",
        "--quick",
        "--no-pin",
        "--no-progress",
        "--no-anchors",
        "--reps",
        "5",
        "--rep-ms",
        "20",
        "--warmup-ms",
        "10",
        "--out",
        dir,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let bench: sockbench::schema::bench::BenchRun = serde_json::from_str(&text).unwrap();
    assert_eq!(bench.unavailable.len(), 1);
    assert!(bench.unavailable[0].reason.contains("forced by the test"));
    assert!(bench.targets.iter().all(|t| t.name != "uring"));
    assert!(bench.results.iter().any(|m| m.target == "mio"));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("**uring not measured**"), "{md}");
}
