//! Category 6, Concurrency and faults: stalled, reset, vanishing and garbage-sending
//! clients never stop, slow or corrupt anyone else.

use std::io::Read;
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::conform::case::{
    Case, CaseError, CaseResult, Condition, Ctx, describe, ensure, expect_echo, expect_ok, fail,
};
use crate::peer::client::Client;

/// How long 6.18 waits for the new client's reply (the case's own deadline is 120 s).
const PATIENT: Duration = Duration::from_secs(30);

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const ISOLATION: &str =
        "§4 One client's bad input never stops, slows or corrupts another client's connection.";
    const DISK: &str = "§4 io_error: the disk failed (full, permission): remove the temporary file, reply, keep the connection.";
    const TRUNCATED: &str = "§4 End of stream mid-frame gets no reply: the partial frame is discarded, a partial upload is removed, the server counts an error and goes on serving everyone else.";
    const SLOWLORIS: &str = "§4 One client's bad input never stops, slows or corrupts another client's connection: a client that holds a connection without finishing a frame is cut off.";
    vec![
        Case::new("6.1", "stall-in-prefix", "A client stalled inside a prefix does not delay another.", ISOLATION, stall_prefix).concurrent(),
        Case::new("6.2", "stall-in-header", "A client stalled inside a header does not delay another.", ISOLATION, stall_header).concurrent(),
        Case::new("6.3", "stall-in-body", "A client stalled inside an upload body does not delay another, and finishes later intact.", ISOLATION, stall_body).concurrent(),
        Case::new("6.4", "many-connections", "1,000 connections open at once each get their echo.", "§1 A connection carries a sequence of frames (a concurrent server serves many).", many_connections).concurrent().serial(),
        Case::new("6.5", "reset-mid-header", "A reset inside a header is survived; the next client is served.", TRUNCATED, reset_mid_header),
        Case::new("6.6", "reset-mid-body", "A reset inside an echo body is survived; the next client is served.", TRUNCATED, reset_mid_body),
        Case::new("6.7", "garbage-beside-good", "Clients sending garbage beside a good client do not disturb its replies.", ISOLATION, garbage_beside_good).concurrent(),
        Case::new("6.8", "idle-beside-active", "50 idle connections beside an active one; all still work after.", ISOLATION, idle_beside_active).concurrent(),
        Case::new("6.9", "connect-and-leave", "Connections that close without sending anything are harmless.", TRUNCATED, connect_and_leave),
        Case::new("6.10", "half-close", "After the client's FIN, replies to every frame sent still arrive, then the close.", "§1 Replies come back in request order; §4 End of stream between frames is clean.", half_close),
        Case::new("6.11", "sequential-connections", "100 connections one after another, each echoing.", "§1 A connection carries a sequence of frames in each direction.", sequential_connections),
        Case::new("6.12", "truncation-counted", "A frame cut short is counted in tcp.errors, and gets no reply.", TRUNCATED, truncation_counted),
        Case::new("6.13", "slow-reader", "A client that reads a 4 MiB echo slowly gets it intact.", "§2 echo: Large bodies are streamed through.", slow_reader),
                Case::new("6.14", "concurrent-uploads", "Eight concurrent uploads of different names are all stored.", "§3 upload, under concurrency.", concurrent_uploads).concurrent().storage(),
        Case::new("6.15", "disk-full", "An upload that outgrows the disk (RLIMIT_FSIZE) gets io_error, leaves no temporary file, and the server goes on.", DISK, disk_full).storage().process(),
        Case::new("6.16", "storage-removed", "With the storage directory removed while serving, an upload gets io_error and the server goes on.", DISK, storage_removed).storage(),
        Case::new("6.17", "slow-gigabyte-declarations", "1,000 connections each declaring a 1 GiB echo and trickling bytes keep the server's memory growth under 64 MiB.", "§1 A server never allocates memory in proportion to a declared length; §4 one client's bad input never stops another.", slow_declarations).concurrent().process().serial().slow(),
        Case::new("6.18", "ten-thousand-idle", "10,000 idle connections held open; a new client is still served.", ISOLATION, ten_thousand_idle).not_under(Condition::Impaired, "through the proxy its 10,000 connections are 30,000 descriptors in the harness, above the usual limit of 20,000").not_under(Condition::Idle, "it holds 10,000 idle connections itself; with the condition's they pass the file limits of a usual machine").concurrent().serial().slow(),
        Case::new("6.19", "header-deadline", "A header trickled a byte every 100 ms is cut off by --header-timeout (0.5 s) and counted in tcp.errors (sockbench's own flag).", SLOWLORIS, header_deadline).setup(|s| s.header_timeout_ms = Some(500)),
        Case::new("6.20", "idle-timeout", "A connection silent for --idle-timeout (1 s), between frames or mid-prefix, is closed, not before (sockbench's own flag).", SLOWLORIS, idle_timeout).setup(|s| { s.idle_timeout_ms = Some(1000); s.header_timeout_ms = Some(60_000) }),
    ]
}

fn stalled_then_served(ctx: &Ctx<'_>, stall: &[u8]) -> CaseResult {
    let mut stalled = ctx.connect()?;
    ctx.send(&mut stalled, stall)?;
    thread::sleep(Duration::from_millis(50));
    let mut other = ctx.connect()?;
    for i in 0..10 {
        let r = ctx.request(&mut other, &json!({"file_size": 2, "id": i}), b"go")?;
        ensure(
            r.header["id"] == i,
            "the other client's echo, within the wait",
            || describe(&r),
        )?;
    }
    Ok(())
}

fn stall_prefix(ctx: &mut Ctx<'_>) -> CaseResult {
    stalled_then_served(ctx, &ctx.wire.endian.write_u32(15)[..2])
}

fn stall_header(ctx: &mut Ctx<'_>) -> CaseResult {
    let bytes = ctx.frame_bytes(br#"{"file_size":0,"x":1}"#, b"");
    stalled_then_served(ctx, &bytes[..9])
}

fn stall_body(ctx: &mut Ctx<'_>) -> CaseResult {
    let body = vec![1u8; 1000];
    let bytes = ctx.frame_bytes(
        &ctx.header(&json!({"file_name": "stalled.bin", "file_size": 1000})),
        &body,
    );
    let mut stalled = ctx.connect()?;
    ctx.send(&mut stalled, &bytes[..bytes.len() - 500])?;
    thread::sleep(Duration::from_millis(50));
    let mut other = ctx.connect()?;
    expect_ok(&ctx.request(
        &mut other,
        &json!({"file_name": "other.bin", "file_size": 2}),
        b"ok",
    )?)?;
    ctx.send(&mut stalled, &bytes[bytes.len() - 500..])?;
    expect_ok(&ctx.recv(&mut stalled, "the stalled upload's reply once it finished")?)
}

fn many_connections(ctx: &mut Ctx<'_>) -> CaseResult {
    crate::measure::proc::raise_fd_limit();
    let mut conns: Vec<Client> = Vec::with_capacity(1000);
    for i in 0..1000 {
        conns.push(
            ctx.connect()
                .map_err(|e| e.context(&format!("connection {i}")))?,
        );
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&json!({"file_size": 4, "id": i}), &(i as u32).to_le_bytes())
            .map_err(|e| fail(format!("to send on connection {i}"), e.to_string()))?;
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let r = ctx.recv(c, &format!("the echo on connection {i}"))?;
        ensure(
            r.header["id"] == i && r.body == (i as u32).to_le_bytes(),
            format!("connection {i}'s own echo"),
            || describe(&r),
        )?;
    }
    Ok(())
}

fn reset_then_served(
    ctx: &Ctx<'_>,
    cut: usize,
    header: &serde_json::Value,
    body: &[u8],
) -> CaseResult {
    let mut c = ctx.connect()?;
    let bytes = ctx.frame_bytes(&ctx.header(header), body);
    ctx.send(&mut c, &bytes[..cut])?;
    thread::sleep(Duration::from_millis(20));
    c.reset();
    let mut next = ctx.connect()?;
    let r = ctx.request(&mut next, &json!({"file_size": 4}), b"next")?;
    ensure(r.body == b"next", "the next client served", || describe(&r))
}

fn reset_mid_header(ctx: &mut Ctx<'_>) -> CaseResult {
    reset_then_served(
        ctx,
        8,
        &json!({"file_size": 10, "pad": "xxxxxxxxxxxx"}),
        &[0; 10],
    )
}

fn reset_mid_body(ctx: &mut Ctx<'_>) -> CaseResult {
    reset_then_served(
        ctx,
        200_000,
        &json!({"file_size": 400_000}),
        &vec![2u8; 400_000],
    )
}

fn garbage_beside_good(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut good = ctx.connect()?;
    let mut garbage: Vec<Client> = Vec::new();
    for i in 0..50 {
        if i % 5 == 0 {
            let mut g = ctx.connect()?;
            let junk: Vec<u8> = (0..64).map(|j| (i * 7 + j * 13) as u8 | 0x80).collect();
            let _ = g.send_raw(&junk);
            garbage.push(g);
        }
        let body = vec![i as u8; i * 10];
        let raw = ctx.header(&json!({"file_size": body.len(), "id": i}));
        ctx.send(&mut good, &ctx.frame_bytes(&raw, &body))?;
        expect_echo(
            &ctx.recv(&mut good, &format!("the good client's echo {i}"))?,
            &raw,
            &body,
        )?;
    }
    Ok(())
}

fn idle_beside_active(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(ctx.connect()?);
    }
    let mut active = ctx.connect()?;
    for i in 0..100 {
        let body = vec![b'a'; i * 7];
        let raw = ctx.header(&json!({"file_size": body.len()}));
        ctx.send(&mut active, &ctx.frame_bytes(&raw, &body))?;
        expect_echo(
            &ctx.recv(&mut active, "the active client's echo")?,
            &raw,
            &body,
        )?;
    }
    for (i, c) in idle.iter_mut().enumerate() {
        let r = ctx.request(c, &json!({"file_size": 1, "id": i}), b"i")?;
        ensure(
            r.header["id"] == i,
            format!("idle connection {i} still served"),
            || describe(&r),
        )?;
    }
    Ok(())
}

fn connect_and_leave(ctx: &mut Ctx<'_>) -> CaseResult {
    for _ in 0..20 {
        drop(ctx.connect()?);
    }
    let mut c = ctx.connect()?;
    let r = ctx.request(&mut c, &json!({"file_size": 3}), b"hey")?;
    ensure(
        r.body == b"hey",
        "an echo after 20 empty connections",
        || describe(&r),
    )
}

fn half_close(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let mut frames = Vec::new();
    let mut all = Vec::new();
    for i in 0..5 {
        let raw = ctx.header(&json!({"file_size": i, "id": i}));
        let body = vec![b'h'; i];
        all.extend(ctx.frame_bytes(&raw, &body));
        frames.push((raw, body));
    }
    ctx.send(&mut c, &all)?;
    c.finish_sending()
        .map_err(|e| fail("a half-close", e.to_string()))?;
    for (i, (raw, body)) in frames.iter().enumerate() {
        expect_echo(
            &ctx.recv(&mut c, &format!("reply {i} after the client's FIN"))?,
            raw,
            body,
        )?;
    }
    ctx.expect_close(&mut c)
}

fn sequential_connections(ctx: &mut Ctx<'_>) -> CaseResult {
    for i in 0..100 {
        let mut c = ctx.connect()?;
        let r = ctx.request(&mut c, &json!({"file_size": 1, "id": i}), b"s")?;
        ensure(
            r.header["id"] == i,
            format!("connection {i}'s echo"),
            || describe(&r),
        )?;
    }
    Ok(())
}

fn truncation_counted(ctx: &mut Ctx<'_>) -> CaseResult {
    let before = ctx.stats()?["tcp"]["errors"].as_u64().unwrap_or(0);
    let mut c = ctx.connect()?;
    let bytes = ctx.frame_bytes(&ctx.header(&json!({"file_size": 100})), &[5u8; 100]);
    ctx.send(&mut c, &bytes[..60])?;
    c.finish_sending()
        .map_err(|e| fail("a half-close", e.to_string()))?;
    ctx.expect_close(&mut c)?;
    let after = ctx.stats_until(|s| s["tcp"]["errors"].as_u64().unwrap_or(0) > before)?;
    let errors = after["tcp"]["errors"].as_u64().unwrap_or(0);
    ensure(
        errors == before + 1,
        format!("tcp.errors to grow by one from {before}"),
        || format!("it is {errors}"),
    )
}

fn slow_reader(ctx: &mut Ctx<'_>) -> CaseResult {
    let c = ctx.connect()?;
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 241) as u8).collect();
    let raw = ctx.header(&json!({"file_size": body.len()}));
    let bytes = ctx.frame_bytes(&raw, &body);
    let mut w = c.writer().map_err(|e| CaseError::Harness(e.to_string()))?;
    let writer = thread::spawn(move || std::io::Write::write_all(&mut w, &bytes));
    let mut r = c.reader().map_err(|e| CaseError::Harness(e.to_string()))?;
    r.stream().set_read_timeout(Some(ctx.wait)).ok();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let want = 4 + raw.len() + body.len();
    let mut reads = 0;
    while got.len() < want {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(fail("the rest of the slow echo", e.to_string())),
        }
        reads += 1;
        if reads % 16 == 0 {
            thread::sleep(Duration::from_millis(20));
        }
    }
    writer
        .join()
        .map_err(|_| CaseError::Harness("writer panicked".into()))?
        .map_err(|e| fail("the server to read the body", e.to_string()))?;
    ensure(
        got.len() == want && got[4 + raw.len()..] == body[..],
        "the whole echo, intact",
        || format!("{} of {want} bytes", got.len()),
    )
}

fn concurrent_uploads(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut conns = Vec::new();
    for i in 0..8u8 {
        let mut c = ctx.connect()?;
        let body = vec![b'0' + i; 200_000];
        let bytes = ctx.frame_bytes(
            &ctx.header(&json!({"file_name": format!("c{i}.bin"), "file_size": body.len()})),
            &body,
        );
        ctx.send(&mut c, &bytes[..100_000])?;
        conns.push((c, bytes, body));
    }
    for (c, bytes, _) in conns.iter_mut() {
        ctx.send(c, &bytes[100_000..])?;
    }
    let dir = ctx.storage()?.to_owned();
    for (i, (c, _, body)) in conns.iter_mut().enumerate() {
        expect_ok(&ctx.recv(c, &format!("upload {i}'s reply"))?)?;
        let on_disk = std::fs::read(dir.join(format!("c{i}.bin"))).unwrap_or_default();
        ensure(&on_disk == body, format!("c{i}.bin complete"), || {
            format!("{} bytes", on_disk.len())
        })?;
    }
    Ok(())
}

fn temporaries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".part") || n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn disk_full(ctx: &mut Ctx<'_>) -> CaseResult {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let pid = ctx
        .pid
        .and_then(|p| Pid::from_raw(p as i32))
        .ok_or_else(|| CaseError::Unsupported("the server's pid is not known".into()))?;
    let dir = ctx.storage()?.to_owned();
    // The server's files may not grow past 64 KiB from now on.
    let limit = Rlimit {
        current: Some(64 * 1024),
        maximum: Some(64 * 1024),
    };
    prlimit(Some(pid), Resource::Fsize, limit)
        .map_err(|e| CaseError::Harness(format!("prlimit: {e}")))?;
    let mut c = ctx.connect()?;
    let big = vec![3u8; 1 << 20];
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "full.bin", "file_size": big.len(), "id": "full"}),
        &big,
    )?;
    crate::conform::case::expect_code(&r, "io_error")?;
    ensure(
        r.header["id"] == "full",
        "the io_error reply to carry the id",
        || describe(&r),
    )?;
    let left = temporaries(&dir);
    ensure(
        left.is_empty() && !dir.join("full.bin").exists(),
        "no temporary and no partial file",
        || format!("found {left:?}"),
    )?;
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "small.bin", "file_size": 1000}),
        &[1u8; 1000],
    )?;
    expect_ok(&r).map_err(|e| e.context("a small upload after the disk filled"))?;
    let r = ctx.request(&mut c, &json!({"file_size": 2}), b"on")?;
    ensure(r.body == b"on", "the connection goes on", || describe(&r))
}

fn storage_removed(ctx: &mut Ctx<'_>) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    std::fs::remove_dir_all(&dir).map_err(|e| CaseError::Harness(e.to_string()))?;
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "gone.bin", "file_size": 5000}),
        &[4u8; 5000],
    )?;
    crate::conform::case::expect_code(&r, "io_error")?;
    let r = ctx.request(&mut c, &json!({"file_size": 3}), b"yes")?;
    ensure(r.body == b"yes", "the connection goes on", || describe(&r))?;
    // One connection at a time, for servers that serve one at a time.
    drop(c);
    let mut other = ctx.connect()?;
    let r = ctx.request(&mut other, &json!({"op": "stats", "file_size": 0}), b"")?;
    expect_ok(&r).map_err(|e| e.context("another client after the storage vanished"))
}

fn slow_declarations(ctx: &mut Ctx<'_>) -> CaseResult {
    let pid = ctx
        .pid
        .ok_or_else(|| CaseError::Unsupported("the server's pid is not known".into()))?;
    let base = crate::measure::proc::rss_bytes(pid).unwrap_or(0);
    crate::measure::proc::raise_fd_limit();
    let head = ctx.frame_bytes(&ctx.header(&json!({"file_size": 1u64 << 30})), b"");
    let mut conns = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut c = ctx
            .connect()
            .map_err(|e| e.context(&format!("connection {i}")))?;
        ctx.send(&mut c, &head)?;
        conns.push(c);
    }
    let mut peak = 0u64;
    // Three slow rounds of 1 KiB on every connection.
    for _ in 0..3 {
        for c in conns.iter_mut() {
            ctx.send(c, &[7u8; 1024])?;
        }
        thread::sleep(Duration::from_millis(200));
        peak = peak.max(
            crate::measure::proc::rss_bytes(pid)
                .unwrap_or(0)
                .saturating_sub(base),
        );
    }
    ensure(
        peak < 64 << 20,
        "memory growth under 64 MiB for 1,000 connections declaring 1 GiB each",
        || format!("RSS grew by {} MiB", peak >> 20),
    )?;
    drop(conns);
    let mut c = ctx.connect()?;
    let r = ctx.request(&mut c, &json!({"file_size": 1}), b"z")?;
    ensure(r.body == b"z", "a new client served afterwards", || {
        describe(&r)
    })
}

fn ten_thousand_idle(ctx: &mut Ctx<'_>) -> CaseResult {
    crate::measure::proc::raise_fd_limit();
    let mut idle = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        match std::net::TcpStream::connect_timeout(&ctx.tcp, ctx.wait) {
            Ok(s) => idle.push(s),
            Err(e) => {
                return Err(fail(
                    "10,000 idle connections accepted",
                    format!("connection {i}: {e}"),
                ));
            }
        }
        // Stay under the listen backlog: let the server accept as we go.
        if i % 1000 == 999 {
            thread::sleep(Duration::from_millis(100));
        }
    }
    let mut c = ctx.connect()?;
    // Served at all is the point, not served fast: a thread-per-connection
    // server on a busy machine may still be starting its 10,000 threads.
    let header = json!({"file_size": 4, "id": "after"});
    let r = ctx.request_within(&mut c, &header, b"live", ctx.wait.max(PATIENT))?;
    ensure(
        r.body == b"live",
        "a new client served beside 10,000 idle ones",
        || describe(&r),
    )
}

/// A slowloris: each byte well inside the idle timeout, the header never
/// finished in time.
fn header_deadline(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let frame = ctx.frame_bytes(
        &ctx.header(&json!({"file_size": 0, "pad": "slowly, slowly, slowly"})),
        b"",
    );
    let start = std::time::Instant::now();
    for (i, b) in frame.iter().enumerate() {
        // After the server's close, a write fails (or the next read sees it).
        if c.send_raw(std::slice::from_ref(b)).is_err() {
            break;
        }
        if i + 1 == frame.len() {
            return Err(fail(
                "the connection cut off within about 0.5 s of the header's first byte",
                format!(
                    "all {} bytes accepted over {:?}",
                    frame.len(),
                    start.elapsed()
                ),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    ctx.expect_close(&mut c)?;
    let st = ctx.stats_until(|v| v["tcp"]["errors"] == 1)?;
    ensure(
        st["tcp"]["errors"] == 1,
        "tcp.errors 1 (a frame cut short)",
        || st["tcp"].to_string(),
    )
}

/// Closed after the idle timeout, and not well before it, whether the
/// silence falls between frames or inside a length prefix (where the far
/// header deadline must not stand in for it).
fn idle_timeout(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut between = ctx.connect()?;
    let mut mid_prefix = ctx.connect()?;
    mid_prefix
        .send_raw(&[9, 0])
        .map_err(|e| fail("two bytes of a prefix sent", e.to_string()))?;
    // The second wait is short: a close during the first shows at once.
    for (c, quiet) in [(&mut between, 600), (&mut mid_prefix, 10)] {
        ctx.expect_silence(
            c,
            Duration::from_millis(quiet),
            "the connection open for the first 0.6 s",
        )?;
    }
    ctx.expect_close(&mut between)?;
    ctx.expect_close(&mut mid_prefix)
}
