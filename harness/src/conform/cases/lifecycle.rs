//! Category 8, Lifecycle: the ready line, SIGTERM and SIGINT, and nothing left behind.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::json;

use crate::conform::case::{Case, CaseResult, Condition, Ctx, ensure, expect_ok, fail};

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const READY: &str = "§6 When both sockets are listening it prints exactly one JSON line on stdout and flushes it: {\"backend\":…,\"tcp\":…,\"udp\":…,\"pid\":…}. Logs go to stderr.";
    const STOP: &str = "§6 SIGINT or SIGTERM: stop accepting, finish the frames already received (a short grace period), remove temporary files, exit 0.";
    vec![
        Case::new("8.1", "ready-line", "The ready line names the back-end, both addresses and the server's own pid.", READY, ready_line).lifecycle(),
        Case::new("8.2", "ready-means-listening", "Both addresses of the ready line answer at once.", READY, ready_listening).lifecycle(),
        Case::new("8.3", "sigterm-idle", "SIGTERM when idle: exit 0 promptly.", STOP, |c| stop_idle(c, Signal::TERM)).lifecycle(),
        Case::new("8.4", "sigint-idle", "SIGINT when idle: exit 0 promptly.", STOP, |c| stop_idle(c, Signal::INT)).lifecycle(),
        Case::new("8.5", "sigterm-mid-upload", "SIGTERM during an upload: exit 0, no temporary file, no partial target.", STOP, sigterm_mid_upload).lifecycle().storage(),
        Case::new("8.6", "sigterm-open-connections", "SIGTERM with 20 idle connections open: they are closed and the server exits 0.", STOP, sigterm_open_connections).lifecycle(),
        Case::new("8.7", "stored-files-survive", "Files acknowledged before SIGTERM stay; only they remain.", "§3 an ok means the file is complete and durable under its name; §6 remove temporary files.", stored_files_survive).lifecycle().storage(),
        Case::new("8.8", "stdout-one-line", "Nothing but the ready line is printed on stdout, even at exit.", READY, stdout_one_line).lifecycle(),
                Case::new("8.9", "stops-accepting", "After exit the TCP port refuses connections.", STOP, stops_accepting).lifecycle().not_under(Condition::Impaired, "it checks the server's port refuses connections, and the proxy's port accepts them"),
        Case::new("8.10", "kill-9-after-ok", "kill -9 right after an upload's ok: the file on disk is complete and its MD5 matches.", "§3 An ok means the file is complete and durable under its name.", kill_after_ok).lifecycle().storage(),
    ]
}

fn exit_within(ctx: &mut Ctx<'_>, sig: Signal, limit: Duration) -> CaseResult {
    let server = ctx.server()?;
    server.signal(sig);
    match server.wait_exit(limit) {
        Some(status) => ensure(
            status.success(),
            format!("exit status 0 after {sig:?}"),
            || status.to_string(),
        ),
        None => Err(fail(
            format!("exit within {limit:?} of {sig:?}"),
            "still running",
        )),
    }
}

fn ready_line(ctx: &mut Ctx<'_>) -> CaseResult {
    let server = ctx.server()?;
    let pid = server.pid();
    let ready = server.ready.clone();
    ensure(
        !ready.backend.is_empty(),
        "a non-empty backend name",
        || format!("{ready:?}"),
    )?;
    ensure(
        ready.pid == pid,
        format!("\"pid\":{pid} (the process the harness started)"),
        || format!("\"pid\":{}", ready.pid),
    )?;
    ensure(
        ready.tcp.port() != 0 && ready.udp.port() != 0,
        "the actual ports, not 0",
        || format!("{ready:?}"),
    )
}

fn ready_listening(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    expect_ok(&ctx.request(&mut c, &json!({"op": "stats", "file_size": 0}), b"")?)?;
    ctx.udp_echo(b"ready?").map(|_| ())
}

fn stop_idle(ctx: &mut Ctx<'_>, sig: Signal) -> CaseResult {
    exit_within(ctx, sig, Duration::from_secs(5))
}

fn sigterm_mid_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    let mut c = ctx.connect()?;
    let bytes = ctx.frame_bytes(
        &ctx.header(&json!({"file_name": "term.bin", "file_size": 1 << 20})),
        &vec![4u8; 1 << 20],
    );
    ctx.send(&mut c, &bytes[..300_000])?;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0
    {
        thread::sleep(Duration::from_millis(5));
    }
    exit_within(ctx, Signal::TERM, Duration::from_secs(10))?;
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    ensure(left.is_empty(), "an empty storage directory", || {
        format!("left {left:?}")
    })
}

fn sigterm_open_connections(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(ctx.connect()?);
    }
    exit_within(ctx, Signal::TERM, Duration::from_secs(10))?;
    for (i, c) in conns.iter_mut().enumerate() {
        ctx.expect_close(c)
            .map_err(|e| e.context(&format!("idle connection {i}")))?;
    }
    Ok(())
}

fn stored_files_survive(ctx: &mut Ctx<'_>) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    let mut c = ctx.connect()?;
    expect_ok(&ctx.request(
        &mut c,
        &json!({"file_name": "kept.txt", "file_size": 4}),
        b"kept",
    )?)?;
    let _ = ctx.request(
        &mut c,
        &json!({"file_name": "bad.txt", "file_size": 3, "md5": "0".repeat(32)}),
        b"bad",
    )?;
    drop(c);
    exit_within(ctx, Signal::TERM, Duration::from_secs(10))?;
    let left: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ensure(
        left == ["kept.txt"],
        "exactly [\"kept.txt\"] in storage",
        || format!("{left:?}"),
    )?;
    let content = std::fs::read(dir.join("kept.txt")).unwrap_or_default();
    ensure(content == b"kept", "kept.txt intact", || {
        format!("{content:?}")
    })
}

fn stdout_one_line(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    ctx.request(&mut c, &json!({"file_size": 1}), b"x")?;
    drop(c);
    exit_within(ctx, Signal::TERM, Duration::from_secs(10))?;
    thread::sleep(Duration::from_millis(50));
    let extra = ctx.server()?.extra_stdout();
    ensure(
        extra.is_empty(),
        "no stdout line after the ready line",
        || format!("{extra:?}"),
    )
}

fn stops_accepting(ctx: &mut Ctx<'_>) -> CaseResult {
    let tcp = ctx.tcp;
    exit_within(ctx, Signal::TERM, Duration::from_secs(10))?;
    match TcpStream::connect_timeout(&tcp, Duration::from_secs(1)) {
        Err(_) => Ok(()),
        Ok(_) => Err(fail(
            "connection refused after exit",
            "a connection was accepted",
        )),
    }
}

fn kill_after_ok(ctx: &mut Ctx<'_>) -> CaseResult {
    use md5::{Digest, Md5};
    let dir = ctx.storage()?.to_owned();
    let body: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let digest = sockbench_wire::md5_hex(&Md5::digest(&body).into());
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "durable.bin", "file_size": body.len(), "md5": digest}),
        &body,
    )?;
    expect_ok(&r)?;
    let server = ctx.server()?;
    server.signal(Signal::KILL);
    ensure(
        server.wait_exit(Duration::from_secs(5)).is_some(),
        "the server killed",
        || "still running".into(),
    )?;
    let on_disk = std::fs::read(dir.join("durable.bin")).unwrap_or_default();
    let got = sockbench_wire::md5_hex(&Md5::digest(&on_disk).into());
    ensure(
        got == digest,
        format!("durable.bin complete after kill -9 (md5 {digest})"),
        || format!("{} bytes, md5 {got}", on_disk.len()),
    )
}
