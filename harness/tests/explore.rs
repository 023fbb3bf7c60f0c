//! `sockbench explore` and `replay` end to end: correct servers show no
//! divergence; each server in fixtures/broken whose bug lives in a
//! combination (it passes the catalogue's original cases), and the one
//! whose replies stall, is found, shrunk to a few actions, and replayed by
//! both `replay` and the standalone repro.py; the other broken servers are
//! found too; bad input is one line and exit 2.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sockbench::target::process::Spawned;

mod common;

use common::root;

fn sockbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockbench"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("sockbench runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture(name: &str) -> String {
    format!(
        "{name}={} {}",
        common::python(),
        root().join("fixtures/broken").join(name).display()
    )
}

#[test]
fn correct_servers_show_no_divergence() {
    let peer = format!(
        "peer={} {}",
        common::python(),
        root().join("fixtures/peers/server.py").display()
    );
    // A back-end this machine cannot run has its refusal checked instead.
    let mut runs: Vec<Vec<String>> = sockbench::serve::backends::names()
        .into_iter()
        .filter(|b| common::available(b))
        .map(|b| vec!["--backend".to_owned(), b.to_owned()])
        .collect();
    runs.push(vec!["--spawn".into(), peer]);
    for target in runs {
        let out = tempfile::tempdir().unwrap();
        let mut args: Vec<&str> = vec!["explore"];
        args.extend(target.iter().map(String::as_str));
        let dir = out.path().to_str().unwrap();
        args.extend([
            "--seed",
            "7",
            "--time",
            "4",
            "--programs",
            "150",
            "--out",
            dir,
        ]);
        let o = sockbench(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{target:?} diverged:\n{t}");
        assert!(t.contains("no divergence"), "{t}");
        let programs: u64 = t
            .split(" programs,")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            programs >= 10,
            "{target:?} ran only {programs} programs:\n{t}"
        );
        assert!(
            t.contains("cuts: ") && t.contains("upload"),
            "coverage is printed: {t}"
        );
        assert!(!out.path().join("repro.json").exists());
    }
}

#[test]
fn each_combination_bug_and_the_stall_is_found_shrunk_and_replayed() {
    let mio = Spawned::backend(
        Path::new(env!("CARGO_BIN_EXE_sockbench")),
        "mio",
        &["--no-fsync"],
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let (tcp, udp) = (mio.ready.tcp.to_string(), mio.ready.udp.to_string());
    // The three whose bugs live in combinations (they pass the catalogue's
    // original cases) and the one whose replies are right but late.
    for (name, what) in [
        ("stale_id.py", "id differs"),
        ("name_chars.py", "error differs"),
        ("glued_after_upload.py", ""),
        ("two_writes.py", "stall"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().to_str().unwrap();
        let spawn = fixture(name);
        let o = sockbench(&[
            "explore",
            "--spawn",
            &spawn,
            "--seed",
            "1",
            "--time",
            "60",
            "--shrink-time",
            "10",
            "--out",
            dir,
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name} was not found:\n{t}");
        assert!(t.contains("DIVERGENCE") && t.contains(what), "{name}:\n{t}");
        let repro: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("repro.json")).unwrap())
                .unwrap();
        let actions = repro["shrunk"][0].as_u64().unwrap();
        assert!(
            actions <= 10,
            "{name}: shrunk only to {actions} actions:\n{t}"
        );
        assert!(
            repro["reproduced"].as_u64().unwrap() >= 1,
            "{name}: {repro}"
        );
        let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
        assert!(
            md.contains("## Wire log") && md.contains("expected:"),
            "{md}"
        );

        let file = out.path().join("repro.json");
        let file = file.to_str().unwrap();
        let again = sockbench(&["replay", file, "--spawn", &spawn]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "{name}: replay:\n{}",
            text(&again)
        );
        let fixed = sockbench(&["replay", file, "--backend", "mio"]);
        assert_eq!(
            fixed.status.code(),
            Some(0),
            "{name}: replay on mio:\n{}",
            text(&fixed)
        );

        // The standalone script: against the broken server, then a correct one.
        let py = out.path().join("repro.py");
        let broken = Spawned::start(
            {
                let mut c = Command::new("python3");
                c.arg(root().join("fixtures/broken").join(name))
                    .arg("--no-fsync");
                c
            },
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        let run_py = |tcp: &str, udp: &str| {
            Command::new("python3")
                .arg(&py)
                .args(["--tcp", tcp, "--udp", udp])
                .output()
                .unwrap()
        };
        let b = run_py(&broken.ready.tcp.to_string(), &broken.ready.udp.to_string());
        assert_eq!(b.status.code(), Some(1), "{name}: repro.py:\n{}", text(&b));
        assert!(String::from_utf8_lossy(&b.stdout).contains("REPRODUCED"));
        let good = run_py(&tcp, &udp);
        assert_eq!(
            good.status.code(),
            Some(0),
            "{name}: repro.py on mio:\n{}",
            text(&good)
        );
    }
}

#[test]
fn every_other_broken_server_is_found() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/broken/manifest.json")).unwrap(),
    )
    .unwrap();
    let covered = [
        "stale_id.py",
        "name_chars.py",
        "glued_after_upload.py",
        "two_writes.py",
    ];
    let others: Vec<&str> = manifest["servers"]
        .as_array()
        .unwrap()
        .iter()
        // The leak fixtures answer every request right: soak's, not explore's.
        .filter(|s| s.get("soak_leaks").is_none())
        .map(|s| s["file"].as_str().unwrap())
        .filter(|f| !covered.contains(f))
        .collect();
    assert!(others.len() >= 6, "{others:?}");
    for name in others {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().to_str().unwrap();
        let spawn = fixture(name);
        let o = sockbench(&[
            "explore",
            "--spawn",
            &spawn,
            "--seed",
            "1",
            "--time",
            "60",
            "--shrink-time",
            "3",
            "--out",
            dir,
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name} was not found:\n{t}");
        assert!(out.path().join("repro.py").exists(), "{name}");
        // A server that dies is said to have died, with why, not taken
        // for the refusals that follow.
        if name == "dies_on_binary.py" {
            assert!(
                t.contains("process-died") && t.contains("UnicodeDecodeError"),
                "{t}"
            );
        }
        let file = out.path().join("repro.json");
        let file = file.to_str().unwrap();
        let again = sockbench(&["replay", file, "--spawn", &spawn]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "{name}: replay:\n{}",
            text(&again)
        );
        let fixed = sockbench(&["replay", file, "--backend", "mio"]);
        assert_eq!(
            fixed.status.code(),
            Some(0),
            "{name}: replay on mio:\n{}",
            text(&fixed)
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for (args, says) in [
        (
            vec!["explore", "--tcp", "127.0.0.1:1"],
            "127.0.0.1:1 cannot be reached",
        ),
        (vec!["explore", "--backend", "nosuch"], "unknown back-end"),
        (vec!["explore"], "required"),
        (
            vec!["replay", "Cargo.toml", "--backend", "mio"],
            "not an explore repro.json",
        ),
        (
            vec!["replay", "/nonexistent/repro.json", "--backend", "mio"],
            "cannot read",
        ),
    ] {
        let o = sockbench(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
}
