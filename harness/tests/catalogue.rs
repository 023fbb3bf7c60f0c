//! One suite, every back-end: the whole conformance catalogue against each
//! of our back-ends, one test per back-end, with the outcome of every case
//! printed when one fails. The list below is checked against the harness's
//! single list of back-ends, so a new back-end cannot go untested.

use std::path::Path;
use std::process::Command;

use sockbench::conform::cases::catalogue;
use sockbench::schema::conform::{ConformRun, Outcome};

fn run_catalogue(backend: &str) {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(["conform", "--backend", backend, "--no-progress", "--out"])
        .arg(out.path())
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("sockbench runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let text = std::fs::read_to_string(out.path().join("results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}); stdout:\n{stdout}"));
    let run: ConformRun = serde_json::from_str(&text).expect("results.json parses");
    let table: Vec<String> = run
        .results
        .iter()
        .map(|r| format!("{:<6} {}", r.case, r.outcome.as_str()))
        .collect();
    // Only a back-end that serves one connection at a time may decline a
    // case (those that need several at once).
    let concurrent = sockbench::backends::find(backend)
        .expect("a back-end of the harness")
        .capabilities()
        .concurrent;
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
            assert_eq!([$(stringify!($backend)),*].as_slice(), sockbench::backends::names());
        }
    };
}

every_backend!(blocking, threaded, mio, tokio);
