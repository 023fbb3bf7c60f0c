//! The lesson's code as written (fixtures/lesson): each correct server
//! passes every case its dialect can express; each broken twin fails the
//! cases that target its bug and passes the others; `learn` infers each
//! pair's dialect, and the inferred file judges as the hand-written one;
//! one-shot servers, UDP-only targets and address targets are run as the
//! issue promised.

use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sockbench::schema::conform::{ConformRun, Outcome};

mod common;

use common::root;

fn lesson(file: &str) -> String {
    root()
        .join("fixtures/lesson")
        .join(file)
        .display()
        .to_string()
}

fn py(args: &str) -> String {
    let (file, rest) = args.split_once(' ').unwrap_or((args, ""));
    format!("{} {} {rest}", common::python(), lesson(file))
}

/// Runs conform and returns each case's outcome (and what it said).
fn conform(args: &[&str]) -> (ConformRun, BTreeMap<String, (Outcome, String)>) {
    let out = tempfile::tempdir().unwrap();
    let o = common::run_out("conform", args, out.path());
    let text = std::fs::read_to_string(out.path().join("results.json"))
        .unwrap_or_else(|_| panic!("no results.json: {}", String::from_utf8_lossy(&o.stderr)));
    let run: ConformRun = serde_json::from_str(&text).unwrap();
    let by = run
        .results
        .iter()
        .map(|r| {
            let said = r.actual.clone().or(r.reason.clone()).unwrap_or_default();
            (r.case.clone(), (r.outcome, said))
        })
        .collect();
    (run, by)
}

fn with(outcome: Outcome, by: &BTreeMap<String, (Outcome, String)>) -> Vec<String> {
    by.iter()
        .filter(|(_, (o, _))| *o == outcome)
        .map(|(id, _)| id.clone())
        .collect()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const UPLOAD_FORMS: [&str; 7] = ["2.16", "2.17", "2.18", "3.30", "3.31", "3.32", "3.34"];
const ECHO_FORMS: [&str; 3] = ["2.19", "2.20", "2.21"];

/// (server args, dialect, the cases it must pass).
fn correct() -> Vec<(&'static str, String, Vec<String>)> {
    vec![
        (
            "upload_server.py {tcp_port}",
            "lesson".into(),
            ids(&UPLOAD_FORMS),
        ),
        (
            "upload_server.py {tcp_port} --put",
            lesson("put.toml"),
            ids(&UPLOAD_FORMS),
        ),
        (
            "echo_server.py {tcp_port}",
            lesson("be-echo.toml"),
            ids(&ECHO_FORMS),
        ),
        (
            "echo_server.py {tcp_port} --upper",
            lesson("be-echo-upper.toml"),
            ids(&ECHO_FORMS),
        ),
        // A child per connection, reaped.
        (
            "echo_server.py {tcp_port} --fork",
            lesson("be-echo.toml"),
            ids(&ECHO_FORMS),
        ),
    ]
}

#[test]
fn each_correct_lesson_server_passes_every_case_its_dialect_expresses() {
    for (server, dialect, pass) in correct() {
        let (run, by) = conform(&["--spawn", &py(server), "--dialect", &dialect]);
        assert_eq!(with(Outcome::Pass, &by), pass, "{server}: {by:?}");
        let rest: Vec<_> = by
            .iter()
            .filter(|(id, (o, _))| !pass.contains(id) && *o != Outcome::Unsupported)
            .collect();
        assert!(rest.is_empty(), "{server}: {rest:?}");
        assert!(run.findings.is_empty(), "{server}: {:?}", run.findings);
        // An UNSUPPORTED case says why in the dialect's terms.
        let (_, why) = &by["1.1"];
        assert!(why.contains("dialect "), "{server}: {why}");
        assert_eq!(run.results.len(), run.cases.len());
    }
}

/// A broken twin: its command, its dialect, the finding it must be named
/// by first, the cases it must fail, the cases it may fail.
type Twin = (
    String,
    String,
    &'static str,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// Held by the two tests that load both CPUs: the broken servers (among
/// them `--bug spins`, whose finding is a CPU share of 50 % or more, which a
/// dozen clients alongside would starve) and the clients.
static CPUS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn each_broken_twin_fails_its_targeted_cases_and_passes_the_others() {
    let _cpus = CPUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // (server args, dialect, the cases its bug must fail, the cases whose
    // outcome depends on timing and either is accepted).
    let put = lesson("put.toml");
    let echo = lesson("be-echo.toml");
    let twins: Vec<Twin> = vec![
        (
            "upload_server.py {tcp_port} --bug split-prefix".into(),
            "lesson".into(),
            "split-prefix",
            vec!["2.16"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --bug split-header".into(),
            "lesson".into(),
            "split-header",
            vec!["2.16"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --bug reads-past".into(),
            "lesson".into(),
            "reads-past-body",
            vec!["2.17"],
            vec![],
        ),
        // A 1 MiB body meets a short read most of the time: 3.30 may fail too.
        (
            "upload_server.py {tcp_port} --bug counts-calls".into(),
            "lesson".into(),
            "upload-truncated",
            vec!["2.18"],
            vec!["3.30"],
        ),
        (
            "upload_server.py {tcp_port} --bug path".into(),
            "lesson".into(),
            "path-escape",
            vec!["3.32"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --bug partial".into(),
            "lesson".into(),
            "partial-file",
            vec!["3.31"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --bug decodes-text".into(),
            "lesson".into(),
            "upload-wrong",
            vec!["3.34"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --put --bug split-prefix".into(),
            put.clone(),
            "split-prefix",
            vec!["2.16"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --put --bug reads-past".into(),
            put.clone(),
            "reads-past-body",
            vec!["2.17"],
            vec![],
        ),
        (
            "upload_server.py {tcp_port} --put --bug path".into(),
            put.clone(),
            "path-escape",
            vec!["3.32"],
            vec![],
        ),
        (
            "echo_server.py {tcp_port} --bug split-prefix".into(),
            echo.clone(),
            "split-prefix",
            vec!["2.19"],
            vec![],
        ),
        (
            "echo_server.py {tcp_port} --bug reads-past".into(),
            echo.clone(),
            "reads-past-body",
            vec!["2.20"],
            vec![],
        ),
        (
            "echo_server.py {tcp_port} --bug counts-calls".into(),
            echo.clone(),
            "split-body",
            vec!["2.21"],
            vec![],
        ),
        // The process ends on a binary body: the finding says how, with
        // the traceback's last line.
        (
            "upload_server.py {tcp_port} --bug crashes".into(),
            "lesson".into(),
            "process-died",
            vec!["3.34"],
            vec![],
        ),
        // A cut upload leaves a thread spinning on recv() == b"" (and its
        // partial .part file behind).
        (
            "upload_server.py {tcp_port} --bug spins".into(),
            "lesson".into(),
            "spins-when-idle",
            vec!["3.31"],
            vec![],
        ),
        // Every case passes; every connection leaves a zombie.
        (
            "echo_server.py {tcp_port} --bug zombies".into(),
            echo.clone(),
            "child-leak",
            vec![],
            vec![],
        ),
    ];
    let forms = [&UPLOAD_FORMS[..], &ECHO_FORMS[..]].concat().join(",");
    for (server, dialect, finding, must, may) in twins {
        let (run, by) = conform(&[
            "--spawn",
            &py(&server),
            "--dialect",
            &dialect,
            "--cases",
            &forms,
        ]);
        let failed: Vec<String> = with(Outcome::Fail, &by)
            .into_iter()
            .filter(|id| !may.contains(&id.as_str()))
            .collect();
        assert_eq!(failed, ids(&must), "{server}: {by:?}");
        // The bug is named first, with evidence.
        let first = run.findings.first();
        assert_eq!(
            first.map(|f| f.id.as_str()),
            Some(finding),
            "{server}: {:?}",
            run.findings
        );
        let f = first.unwrap();
        assert!(
            !f.evidence.actual.is_empty() && !f.cases.is_empty(),
            "{f:?}"
        );
        match finding {
            "process-died" => assert!(
                f.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("UnicodeDecodeError")),
                "the traceback's last line: {f:?}"
            ),
            "child-leak" => assert!(f.detail.as_deref().is_some_and(|d| d.contains("zombie"))),
            _ => {}
        }
        for (id, (o, said)) in &by {
            assert!(
                matches!(o, Outcome::Pass | Outcome::Unsupported | Outcome::Fail),
                "{server} {id}: {o:?} {said}"
            );
        }
    }
}

#[test]
fn a_write_to_dotdot_is_reported_where_it_landed_on_a_server_that_never_replies() {
    let (_, by) = conform(&[
        "--spawn",
        &py("upload_server.py {tcp_port} --bug path"),
        "--dialect",
        "lesson",
        "--cases",
        "3.32",
    ]);
    let (o, said) = &by["3.32"];
    assert_eq!(*o, Outcome::Fail);
    assert!(said.contains("written outside it, at /"), "{said}");
    assert!(said.contains("/escape-"), "{said}");
    assert!(
        !said.contains("storage/.."),
        "said once, at its plain path: {said}"
    );

    // By address, `../x` lands beside the storage given: said, and the
    // provoked file removed from the user's directory.
    let outer = tempfile::tempdir().unwrap();
    let storage = outer.path().join("storage");
    std::fs::create_dir(&storage).unwrap();
    let port = free_tcp();
    let _server = start("upload_server.py {port} --bug path", port, &storage);
    wait_listening(port);
    let tcp = format!("127.0.0.1:{port}");
    let (_, by) = conform(&[
        "--tcp",
        &tcp,
        "--storage",
        &storage.to_string_lossy(),
        "--dialect",
        "lesson",
        "--cases",
        "3.32",
    ]);
    let (o, said) = &by["3.32"];
    assert_eq!(*o, Outcome::Fail);
    assert!(said.contains("written outside it, at /"), "{said}");
    let left: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["storage"], "the escaped file is removed");
}

#[test]
fn a_one_shot_server_gets_the_catalogue_case_by_case() {
    let (run, by) = conform(&[
        "--spawn",
        &py("upload_server.py {tcp_port} --put --once"),
        "--dialect",
        &lesson("put.toml"),
    ]);
    assert_eq!(with(Outcome::Pass, &by), ids(&UPLOAD_FORMS), "{by:?}");
    assert_eq!(with(Outcome::Fail, &by), Vec::<String>::new());
    let notes = &run.targets[0].notes;
    assert!(
        notes.iter().any(|n| n.contains("one-shot server")),
        "said once: {notes:?}"
    );
}

/// A program of ours started on a free port, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &str, port: u16, dir: &Path) -> Running {
    let argv: Vec<String> = py(args)
        .replace("{port}", &port.to_string())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let by = Instant::now() + Duration::from_secs(10);
    while sockbench::measure::proc::tcp_listening(port, None).is_none() {
        assert!(Instant::now() < by, "port {port} never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_server_given_by_address_gets_no_connection_beyond_the_cases() {
    // A one-shot server: a preflight connection would use up its only
    // accept, and the case would find nobody listening.
    // accept, and the case would find nobody listening. The server writes
    // into its working directory, given as the storage.
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp();
    let _server = start("upload_server.py {port} --once", port, dir.path());
    wait_listening(port);
    let tcp = format!("127.0.0.1:{port}");
    let storage = dir.path().to_string_lossy().into_owned();
    let (_, by) = conform(&[
        "--tcp",
        &tcp,
        "--storage",
        &storage,
        "--dialect",
        "lesson",
        "--cases",
        "2.17",
    ]);
    assert_eq!(by["2.17"].0, Outcome::Pass, "{by:?}");
    // A port nobody listens on is one line, exit 2, and no connection.
    let out = tempfile::tempdir().unwrap();
    let o = common::run_out(
        "conform",
        &["--tcp", "127.0.0.1:1", "--dialect", "lesson"],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn udp_alone_works_for_conform_by_address_and_by_placeholder() {
    let port = free_udp();
    let dir = tempfile::tempdir().unwrap();
    let _echo = start("udp_echo.py {port}", port, dir.path());
    let by = Instant::now() + Duration::from_secs(10);
    while sockbench::measure::proc::udp_bound(port, None).is_none() {
        assert!(Instant::now() < by);
        std::thread::sleep(Duration::from_millis(10));
    }
    let udp = format!("127.0.0.1:{port}");
    let (_, by) = conform(&["--udp", &udp, "--dialect", "lesson", "--cases", "7.*,2.16"]);
    for id in ["7.1", "7.2", "7.3", "7.4", "7.5", "7.7", "7.8", "7.9"] {
        assert_eq!(by[id].0, Outcome::Pass, "{id}: {:?}", by[id]);
    }
    assert_eq!(by["2.16"].0, Outcome::Unsupported);
    assert!(by["2.16"].1.contains("UDP-only"), "{:?}", by["2.16"]);

    // Spawned with {udp_port}: the twins' bugs are caught by their cases.
    for (bug, cases) in [
        ("", vec![]),
        ("--bug buffer-1024", vec!["7.3", "7.4", "7.5", "7.7"]),
        ("--bug drops-empty", vec!["7.1"]),
    ] {
        let cmd = py(&format!("udp_echo.py {{udp_port}} {bug}"));
        let (_, by) = conform(&["--spawn", &cmd, "--dialect", "lesson", "--cases", "7.*"]);
        assert_eq!(with(Outcome::Fail, &by), ids(&cases), "{bug}: {by:?}");
    }
    // An upper-casing UDP echo passes in a dialect that says so.
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper.toml");
    let text = sockbench::dialect::Dialect::lesson()
        .to_toml()
        .replace("udp = \"verbatim\"", "udp = \"upper\"");
    std::fs::write(&upper, text).unwrap();
    let cmd = py("udp_echo.py {udp_port} --upper");
    let (_, by) = conform(&[
        "--spawn",
        &cmd,
        "--dialect",
        &upper.to_string_lossy(),
        "--cases",
        "7.1,7.2,7.5,7.9",
    ]);
    assert_eq!(with(Outcome::Pass, &by).len(), 4, "{by:?}");
    let (_, by) = conform(&["--spawn", &cmd, "--dialect", "lesson", "--cases", "7.9"]);
    assert_eq!(
        by["7.9"].0,
        Outcome::Fail,
        "verbatim expected, upper-cased came back"
    );
}

#[test]
fn explore_takes_a_udp_only_target_and_finds_the_truncation() {
    for (bug, code) in [("", 0), ("--bug buffer-1024", 1)] {
        let port = free_udp();
        let dir = tempfile::tempdir().unwrap();
        let _echo = start(&format!("udp_echo.py {{port}} {bug}"), port, dir.path());
        let by = Instant::now() + Duration::from_secs(10);
        while sockbench::measure::proc::udp_bound(port, None).is_none() {
            assert!(Instant::now() < by);
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = tempfile::tempdir().unwrap();
        let udp = format!("127.0.0.1:{port}");
        let o = Command::new(common::exe())
            .args(["explore", "--udp", &udp, "--time", "3", "--seed", "5"])
            .args(["--shrink-time", "5", "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(code), "{bug}: {text}");
        if code == 1 {
            assert!(text.contains("1024 bytes"), "{text}");
        }
    }
}

#[test]
fn load_speaks_a_verbatim_echo_dialect_and_refuses_one_it_cannot_compare() {
    let run = |dialect: &str, server: &str| {
        Command::new(common::exe())
            .args(["load", "--spawn", &py(server), "--dialect", dialect])
            .args(["--rate", "200", "--duration", "1s", "--warmup", "200ms"])
            .args(["--connections", "2", "--json"])
            .output()
            .unwrap()
    };
    let o = run(&lesson("be-echo.toml"), "echo_server.py {tcp_port}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["received"].as_u64().unwrap_or(0) > 100, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    // A server that answers other bytes than the dialect says is caught.
    let o = run(&lesson("be-echo.toml"), "echo_server.py {tcp_port} --upper");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["errors"].as_u64().unwrap_or(0) > 0, "{v}");
    let o = run(
        &lesson("be-echo-upper.toml"),
        "echo_server.py {tcp_port} --upper",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("verbatim"));
}

fn learn(server: &str, client: &str, out: &Path) -> std::process::Output {
    Command::new(common::exe())
        .args([
            "learn",
            "--server",
            &py(server),
            "--client",
            &py(client),
            "--out",
            &out.to_string_lossy(),
        ])
        .output()
        .unwrap()
}

#[test]
fn learn_infers_each_pairs_dialect_and_it_judges_as_the_hand_written_one() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [
        (
            "upload_server.py {tcp_port}",
            "upload_client.py {tcp_port} {file}",
            "lesson".to_owned(),
        ),
        (
            "upload_server.py {tcp_port} --put",
            "upload_client.py {tcp_port} {file} --put",
            lesson("put.toml"),
        ),
        (
            "echo_server.py {tcp_port}",
            "echo_client.py {tcp_port} {file}",
            lesson("be-echo.toml"),
        ),
        (
            "echo_server.py {tcp_port} --upper",
            "echo_client.py {tcp_port} {file}",
            lesson("be-echo-upper.toml"),
        ),
    ];
    for (i, (server, client, hand)) in pairs.iter().enumerate() {
        let out = dir.path().join(format!("d{i}.toml"));
        let o = learn(server, client, &out);
        assert!(
            o.status.success(),
            "{server}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("# sure:"),
            "a line per field says how sure: {text}"
        );
        let mut learned = sockbench::dialect::Dialect::load(&out.to_string_lossy()).unwrap();
        let want = sockbench::dialect::Dialect::load(hand).unwrap();
        // What a recording cannot see: the name given, and UDP.
        learned.name = want.name.clone();
        learned.udp = want.udp;
        assert_eq!(learned, want, "{server}:\n{text}");
        // The inferred file judges the server as the hand-written one does.
        let cases = "2.16,2.17,2.19,2.20,3.30,1.1";
        let (_, a) = conform(&[
            "--spawn",
            &py(server),
            "--dialect",
            &out.to_string_lossy(),
            "--cases",
            cases,
        ]);
        let (_, b) = conform(&["--spawn", &py(server), "--dialect", hand, "--cases", cases]);
        let outcomes = |m: &BTreeMap<String, (Outcome, String)>| -> Vec<Outcome> {
            m.values().map(|v| v.0).collect()
        };
        assert_eq!(outcomes(&a), outcomes(&b), "{server}");
    }
}

#[test]
fn learn_feeds_an_interactive_client_its_input_and_listens_silently_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let stdin = dir.path().join("input.txt");
    std::fs::write(&stdin, "{file}\n").unwrap();
    let out = dir.path().join("d.toml");
    let o = Command::new(common::exe())
        .args([
            "learn",
            "--client",
            &py("upload_client.py {tcp_port} --ask"),
        ])
        .arg("--stdin")
        .arg(&stdin)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("listened silently"), "{err}");
    let mut learned = sockbench::dialect::Dialect::load(&out.to_string_lossy()).unwrap();
    learned.name = "lesson".into();
    assert_eq!(learned, sockbench::dialect::Dialect::lesson());
}

#[test]
fn learn_says_when_nothing_fits_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.toml");
    // A client that connects to nothing and sends nothing.
    let o = Command::new(common::exe())
        .args([
            "learn",
            "--client",
            &format!("{} -c pass {{tcp_port}}", common::python()),
            "--out",
            &out.to_string_lossy(),
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sent nothing"));
    assert!(!out.exists());
}

#[test]
fn a_case_that_passes_when_run_again_is_flaky_and_fails_the_run_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let server = py(&format!(
        "echo_server.py {{tcp_port}} --flaky-mark {}",
        mark.display()
    ));
    let echo = lesson("be-echo.toml");
    for allow in [false, true] {
        let _ = std::fs::remove_file(&mark);
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["--spawn", &server, "--dialect", &echo, "--cases", "2.21"];
        if allow {
            args.push("--allow-flaky");
        }
        let o = common::run_out("conform", &args, out.path());
        let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
        let run: ConformRun = serde_json::from_str(&text).unwrap();
        let r = &run.results[0];
        // Both outcomes are kept: the first is the verdict.
        assert_eq!((r.outcome, r.rerun), (Outcome::Fail, Some(Outcome::Pass)));
        assert_eq!(run.findings.len(), 1, "{:?}", run.findings);
        assert_eq!(run.findings[0].id, "flaky");
        assert!(run.findings[0].evidence.actual.contains("then PASS"));
        assert_eq!(
            o.status.code(),
            Some(if allow { 0 } else { 1 }),
            "allow {allow}"
        );
    }
}

#[test]
fn findings_speak_chinese_or_english_in_the_summary_and_both_reports() {
    for (lang, heading, title) in [
        ("zh-CN", "## 发现的问题", "回显的数据报被改动了"),
        (
            "en",
            "## Findings",
            "Datagrams come back changed (upper-cased)",
        ),
    ] {
        let out = tempfile::tempdir().unwrap();
        let server = py("udp_echo.py {udp_port} --upper");
        let o = common::run_out(
            "conform",
            &["--spawn", &server, "--dialect", "lesson", "--lang", lang],
            out.path(),
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
        let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
        assert!(stdout.contains(title), "{lang}: {stdout}");
        assert!(md.contains(heading) && md.contains(title), "{lang}: {md}");
        assert!(html.contains(&format!("<html lang={lang}>")) && html.contains(title));
        // The evidence shows text as text: "FROM A" for "from a".
        assert!(
            stdout.contains("\"FROM A\"") || md.contains("\"FROM A\""),
            "{md}"
        );
        for text in [&*stdout, &md, &html] {
            // A message missing from a catalogue would print its id.
            for id in ["ui.", ".title", ".advice", "%{"] {
                assert!(!text.contains(id), "{lang}: {id} in {text}");
            }
            // No bidi isolation marks.
            assert!(!text.contains(['\u{2068}', '\u{2069}']));
        }
    }
}

/// `conform --client`: the lesson's clients against the hostile server.
/// Each correct client passes every case of its task; each broken twin
/// fails the cases that target its bug, named by its finding, and passes
/// the others; a client that never gives up is reported as hanging within
/// the case deadline; fixtures/peers/client.py passes as a session client,
/// and fails when it speaks the wrong byte order.
mod clients {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use sockbench::schema::conform::{ConformRun, Outcome};

    use super::common::{self, root};

    /// The case deadline the runs use: above the fixtures' 3 s socket timeout.
    const DEADLINE_S: u64 = 5;

    fn py(file: &str, rest: &str) -> String {
        format!(
            "{} {} {rest}",
            common::python(),
            root().join(file).display()
        )
    }

    struct Row {
        /// The client command (placeholders left in).
        client: String,
        /// conform flags beyond --client.
        flags: &'static [&'static str],
        /// Cases that must fail.
        fails: &'static [&'static str],
        /// Cases whose outcome depends on the kernel's buffers, not on the bug.
        may_fail: &'static [&'static str],
        /// The first finding (none for a correct client).
        finding: Option<&'static str>,
    }

    fn row(
        client: String,
        flags: &'static [&'static str],
        fails: &'static [&'static str],
        may_fail: &'static [&'static str],
        finding: Option<&'static str>,
    ) -> Row {
        Row {
            client,
            flags,
            fails,
            may_fail,
            finding,
        }
    }

    const FETCH: &[&str] = &[
        "--client-task",
        "fetch",
        "--dialect",
        "fixtures/lesson/cmd.toml",
        "--stdin",
        "fixtures/lesson/cmd-input.txt",
    ];
    /// A twin whose bug is elsewhere skips the 64 MiB body: beside a
    /// dozen clients at once on two CPUs it measures the machine (the
    /// correct client and recv-body-once still run it).
    const FETCH_SMALL: &[&str] = &[
        "--client-task",
        "fetch",
        "--dialect",
        "fixtures/lesson/cmd.toml",
        "--stdin",
        "fixtures/lesson/cmd-input.txt",
        "--exclude",
        "9.12",
    ];
    const UPLOAD: &[&str] = &["--client-task", "upload", "--dialect", "lesson"];
    const PUT: &[&str] = &[
        "--client-task",
        "upload",
        "--dialect",
        "fixtures/lesson/put.toml",
    ];
    const ECHO: &[&str] = &[
        "--client-task",
        "echo",
        "--dialect",
        "fixtures/lesson/be-echo.toml",
    ];
    const UDP: &[&str] = &[
        "--client-task",
        "echo",
        "--client-udp",
        "--dialect",
        "lesson",
    ];

    fn table() -> Vec<Row> {
        let cmd = |bug: &str| {
            py(
                "fixtures/lesson/cmd_client.py",
                &format!("{{tcp_port}} --bug {bug}"),
            )
        };
        vec![
            // Correct clients.
            row(
                py("fixtures/lesson/cmd_client.py", "{tcp_port}"),
                FETCH,
                &[],
                &[],
                None,
            ),
            row(
                py("fixtures/lesson/cmd_client.py", "{tcp_port} --out {out}"),
                &[
                    "--client-task",
                    "fetch",
                    "--client-output",
                    "file",
                    "--dialect",
                    "fixtures/lesson/cmd.toml",
                    "--stdin",
                    "fixtures/lesson/cmd-input.txt",
                    "--cases",
                    "9.1,9.4,9.6,9.7,9.12",
                ],
                &[],
                &[],
                None,
            ),
            row(
                py("fixtures/lesson/upload_client.py", "{tcp_port} {file}"),
                UPLOAD,
                &[],
                &[],
                None,
            ),
            row(
                py(
                    "fixtures/lesson/upload_client.py",
                    "{tcp_port} {file} --put",
                ),
                PUT,
                &[],
                &[],
                None,
            ),
            row(
                py("fixtures/lesson/echo_client.py", "{tcp_port} {file}"),
                ECHO,
                &[],
                &[],
                None,
            ),
            row(
                py("fixtures/lesson/udp_client.py", "{udp_port} {file}"),
                UDP,
                &[],
                &[],
                None,
            ),
            row(
                py(
                    "fixtures/peers/client.py",
                    "--tcp 127.0.0.1:{tcp_port} --udp 127.0.0.1:{udp_port}",
                ),
                &["--client-task", "session"],
                &[],
                &[],
                None,
            ),
            // Broken twins.
            row(
                cmd("recv-prefix-once"),
                FETCH_SMALL,
                &["9.2", "9.33"],
                &["9.5"],
                Some("split-prefix"),
            ),
            row(
                cmd("recv-header-once"),
                FETCH_SMALL,
                &["9.3", "9.14", "9.33"],
                &["9.5"],
                Some("split-header"),
            ),
            row(
                cmd("recv-body-once"),
                FETCH,
                &["9.4", "9.12", "9.15", "9.16", "9.33"],
                &["9.5"],
                Some("split-body"),
            ),
            row(
                cmd("counts-calls"),
                FETCH_SMALL,
                &["9.4", "9.6", "9.16", "9.33"],
                &["9.5"],
                Some("split-body"),
            ),
            row(
                cmd("reads-past"),
                FETCH_SMALL,
                &["9.6"],
                &[],
                Some("reads-past-body"),
            ),
            row(
                cmd("accepts-cut"),
                FETCH_SMALL,
                &["9.16"],
                &[],
                Some("accepts-cut-reply"),
            ),
            row(
                cmd("loops-on-eof"),
                FETCH_SMALL,
                &["9.16"],
                &[],
                Some("hangs"),
            ),
            row(
                cmd("no-timeout"),
                FETCH_SMALL,
                &["9.17"],
                &[],
                Some("hangs"),
            ),
            row(
                py(
                    "fixtures/lesson/upload_client.py",
                    "{tcp_port} {file} --bug send-once",
                ),
                UPLOAD,
                &["9.19"],
                &["9.18"],
                Some("upload-truncated"),
            ),
            row(
                py(
                    "fixtures/lesson/upload_client.py",
                    "{tcp_port} {file} --bug md5-placeholder",
                ),
                UPLOAD,
                &["9.18", "9.19"],
                &[],
                Some("upload-wrong"),
            ),
            row(
                py(
                    "fixtures/lesson/echo_client.py",
                    "{tcp_port} {file} --bug recv-once",
                ),
                ECHO,
                &["9.23", "9.25"],
                &["9.26"],
                Some("split-prefix"),
            ),
            row(
                py(
                    "fixtures/lesson/udp_client.py",
                    "{udp_port} {file} --bug buf-1024",
                ),
                UDP,
                &["9.29"],
                &[],
                Some("udp-truncates"),
            ),
            // Its checks, in the wrong byte order, fail against ours.
            row(
                py(
                    "fixtures/peers/client.py",
                    "--tcp 127.0.0.1:{tcp_port} --udp 127.0.0.1:{udp_port} --endian big",
                ),
                &["--client-task", "session"],
                &["9.31", "9.32"],
                &[],
                Some("session-fails"),
            ),
        ]
    }

    fn run(r: &Row) -> (ConformRun, String, f64) {
        let out = tempfile::tempdir().unwrap();
        let deadline = DEADLINE_S.to_string();
        let mut args = vec![
            "--client",
            r.client.as_str(),
            "--client-timeout",
            deadline.as_str(),
            "--seed",
            "7",
            "--rerun",
            "0",
            "--jobs",
            "3",
        ];
        args.extend_from_slice(r.flags);
        let start = Instant::now();
        let o = common::run_out("conform", &args, out.path());
        let took = start.elapsed().as_secs_f64();
        let run: ConformRun = common::results_of(out.path(), &o);
        (run, String::from_utf8_lossy(&o.stdout).into_owned(), took)
    }

    #[test]
    fn each_correct_client_passes_and_each_twin_is_caught_by_its_case() {
        let _cpus = super::CPUS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rows = table();
        // Six runs at once: most of a client case is pauses and waiting
        // for deadlines, but not all of it.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut runs: Vec<(usize, (ConformRun, String, f64))> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let Some(r) = rows.get(i) else { break };
                            mine.push((i, run(r)));
                        }
                        mine
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        runs.sort_by_key(|(i, _)| *i);
        let runs: Vec<(ConformRun, String, f64)> = runs.into_iter().map(|(_, r)| r).collect();
        let mut wrong = Vec::new();
        for (r, (res, stdout, took)) in rows.iter().zip(&runs) {
            let failed: BTreeSet<&str> = res
                .results
                .iter()
                .filter(|x| !matches!(x.outcome, Outcome::Pass | Outcome::Unsupported))
                .map(|x| x.case.as_str())
                .collect();
            let must: BTreeSet<&str> = r.fails.iter().copied().collect();
            let may: BTreeSet<&str> = r.may_fail.iter().copied().collect();
            let passed = res
                .results
                .iter()
                .filter(|x| x.outcome == Outcome::Pass)
                .count();
            let first = res.findings.first().map(|f| f.id.as_str());
            if !must.is_subset(&failed)
                || !failed.iter().all(|c| must.contains(c) || may.contains(c))
                || first != r.finding
                || (r.finding.is_none() && passed == 0)
            {
                wrong.push(format!(
                "{}\n  failed {failed:?}, want {must:?} (maybe {may:?}); first finding {first:?}, want {:?}\n{stdout}",
                r.client, r.finding
            ));
            }
            // No run waits on a hanging client beyond its deadline.
            assert!(
                *took < (res.cases.len() as f64 + 2.0) * (DEADLINE_S as f64 + 3.0),
                "{} took {took:.1}s",
                r.client
            );
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));

        let by = |bug: &str, case: &str| {
            let i = rows.iter().position(|r| r.client.contains(bug)).unwrap();
            let res = &runs[i].0;
            res.results.iter().find(|x| x.case == case).unwrap().clone()
        };
        // recv(4) once: the evidence says what the client did with 1 byte.
        let r = by("recv-prefix-once", "9.2");
        let said = format!("{:?} {:?}", r.actual, r.stderr_tail);
        assert!(said.contains("struct.error"), "{said}");
        assert!(!r.wire_log.is_empty(), "the wire log is the evidence");
        // Explored, the same bug is shrunk to a cut inside the prefix.
        let r = by("recv-prefix-once", "9.33");
        assert_eq!(r.finding.as_deref(), Some("split-prefix"), "{:?}", r.actual);
        assert!(
            r.actual
                .as_deref()
                .is_some_and(|a| a.contains("(in the prefix)")),
            "{:?}",
            r.actual
        );
        // A client that never gives up: reported at the deadline, not waited on.
        let r = by("no-timeout", "9.17");
        assert_eq!(r.finding.as_deref(), Some("hangs"));
        assert!(
            r.duration_ms < (DEADLINE_S as f64 + 3.0) * 1000.0,
            "{} ms",
            r.duration_ms
        );
        // The truncated upload names how much arrived.
        let r = by("send-once", "9.19");
        assert!(
            r.finding_detail
                .as_deref()
                .is_some_and(|d| d.ends_with(" of 4194304 bytes")),
            "{:?}",
            r.finding_detail
        );
    }

    #[test]
    fn a_client_run_needs_its_task_and_reads_its_stdin_once() {
        let out = tempfile::tempdir().unwrap();
        let o = common::run_out("conform", &["--client", "true"], out.path());
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--client-task"), "{err}");
        // Exit 127 is "not supported", not a failure.
        let o = common::run_out(
            "conform",
            &[
                "--client",
                "sh -c 'exit 127'",
                "--client-task",
                "fetch",
                "--cases",
                "9.1",
                "--dialect",
                "fixtures/lesson/cmd.toml",
            ],
            out.path(),
        );
        let run: ConformRun = common::results_of(out.path(), &o);
        assert_eq!(
            run.results[0].outcome,
            Outcome::Unsupported,
            "{:?}",
            run.results[0]
        );
        assert!(o.status.success());
    }
}
