//! `conform --client`: the lesson's clients (fixtures/lesson) against the
//! hostile server. Each correct client passes every case of its task; each
//! broken twin fails the cases that target its bug, named by its finding,
//! and passes the others; a client that never gives up is reported as
//! hanging within the case deadline; fixtures/peers/client.py passes as a
//! session client, and fails when it speaks the wrong byte order.

use std::collections::BTreeSet;
use std::time::Instant;

use sockbench::schema::conform::{ConformRun, Outcome};

mod common;

use common::root;

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
            FETCH,
            &["9.2"],
            &["9.5"],
            Some("split-prefix"),
        ),
        row(
            cmd("recv-header-once"),
            FETCH,
            &["9.3", "9.14"],
            &["9.5"],
            Some("split-header"),
        ),
        row(
            cmd("recv-body-once"),
            FETCH,
            &["9.4", "9.12", "9.15", "9.16"],
            &["9.5"],
            Some("split-body"),
        ),
        row(
            cmd("counts-calls"),
            FETCH,
            &["9.4", "9.6", "9.16"],
            &["9.5", "9.12"],
            Some("split-body"),
        ),
        row(
            cmd("reads-past"),
            FETCH,
            &["9.6"],
            &[],
            Some("reads-past-body"),
        ),
        row(
            cmd("accepts-cut"),
            FETCH,
            &["9.16"],
            &[],
            Some("accepts-cut-reply"),
        ),
        row(cmd("loops-on-eof"), FETCH, &["9.16"], &[], Some("hangs")),
        row(cmd("no-timeout"), FETCH, &["9.17"], &[], Some("hangs")),
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
        "4",
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
    let rows = table();
    let runs: Vec<(ConformRun, String, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = rows.iter().map(|r| s.spawn(|| run(r))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
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
