//! Category 5, Limits and resources: limits hold at their boundaries, and memory
//! never follows a declared length or a peer that does not read.

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::conform::case::{
    Case, CaseError, CaseResult, Ctx, describe, ensure, expect_code, expect_echo, fail,
};
use crate::measure::proc::rss_bytes;

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const MEMORY: &str = "§1 A server never allocates memory in proportion to a declared length: a frame that declares 1 TiB is streamed, or refused, never buffered; a header is buffered as its bytes arrive, not as declared.";
    vec![
        Case::new("5.1", "header-at-limit", "A header of exactly --max-header bytes is accepted.", "§1 A header of exactly --max-header bytes is accepted.", header_at_limit).setup(|s| s.max_header = Some(1024)),
        Case::new("5.2", "header-above-limit", "A header one byte above --max-header is bad_length.", "§4 bad_length: header_len above --max-header.", header_above_limit).setup(|s| s.max_header = Some(1024)),
        Case::new("5.3", "body-at-limit", "A body of exactly --max-body bytes is accepted.", "§1 a body of exactly --max-body bytes is accepted.", body_at_limit).setup(|s| s.max_body = Some(65_536)),
        Case::new("5.4", "body-above-limit", "A body one byte above --max-body is too_large.", "§4 too_large: file_size above --max-body.", body_above_limit).setup(|s| s.max_body = Some(65_536)),
        Case::new("5.5", "echo-streams", "The echo of a 64 MiB frame starts before its body has all been sent.", "§2 echo: Large bodies are streamed through; memory stays bounded.", echo_streams),
        Case::new("5.6", "echo-memory-bounded", "Echoing 64 MiB of a frame that declares 512 GiB keeps the server's memory flat.", MEMORY, echo_memory).process().serial().slow(),
        Case::new("5.7", "upload-memory-bounded", "Uploading 64 MiB of a declared 1 GiB keeps the server's memory flat; the cut upload leaves nothing.", MEMORY, upload_memory).process().serial().slow(),
        Case::new("5.8", "never-reading-client", "A client that sends and never reads makes the server stop reading, not grow.", "§2 memory stays bounded; §4 One client's bad input never stops, slows or corrupts another client's connection.", never_reading).process().serial().slow(),
        Case::new("5.9", "declared-headers-not-allocated", "200 connections declaring 4 MB headers and sending 10 bytes each do not cost 800 MB.", MEMORY, declared_headers).process().concurrent().serial().setup(|s| s.max_header = Some(4_000_000)),
    ]
}

fn header_of_len(len: usize) -> Vec<u8> {
    let base = br#"{"file_size":0,"pad":""}"#.len();
    format!("{{\"file_size\":0,\"pad\":\"{}\"}}", "p".repeat(len - base)).into_bytes()
}

fn header_at_limit(ctx: &mut Ctx<'_>) -> CaseResult {
    let raw = header_of_len(ctx.wire.max_header as usize);
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &ctx.frame_bytes(&raw, b""))?;
    expect_echo(
        &ctx.recv(&mut c, "the echo of a header at the limit")?,
        &raw,
        b"",
    )
}

fn header_above_limit(ctx: &mut Ctx<'_>) -> CaseResult {
    let raw = header_of_len(ctx.wire.max_header as usize + 1);
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &ctx.frame_bytes(&raw, b""))?;
    expect_code(&ctx.recv(&mut c, "a bad_length reply")?, "bad_length")?;
    ctx.expect_close(&mut c)
}

fn limit_body(ctx: &Ctx<'_>) -> Result<usize, CaseError> {
    usize::try_from(ctx.wire.max_body)
        .ok()
        .filter(|&n| n <= 64 << 20)
        .ok_or_else(|| {
            CaseError::Unsupported(format!(
                "--max-body {} is too large to send",
                ctx.wire.max_body
            ))
        })
}

fn body_at_limit(ctx: &mut Ctx<'_>) -> CaseResult {
    let n = limit_body(ctx)?;
    let body = vec![b'b'; n];
    let raw = ctx.header(&json!({"file_size": n}));
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &ctx.frame_bytes(&raw, &body))?;
    expect_echo(
        &ctx.recv(&mut c, "the echo of a body at the limit")?,
        &raw,
        &body,
    )
}

fn body_above_limit(ctx: &mut Ctx<'_>) -> CaseResult {
    let n = limit_body(ctx)? + 1;
    let mut c = ctx.connect()?;
    ctx.send(
        &mut c,
        &ctx.frame_bytes(&ctx.header(&json!({"file_size": n})), b""),
    )?;
    expect_code(&ctx.recv(&mut c, "a too_large reply")?, "too_large")?;
    ctx.expect_close(&mut c)
}

fn echo_streams(ctx: &mut Ctx<'_>) -> CaseResult {
    let c = ctx.connect()?;
    let raw = ctx.header(&json!({"file_size": 64u64 << 20}));
    let head = ctx.frame_bytes(&raw, b"");
    let mut w = c.writer().map_err(|e| CaseError::Harness(e.to_string()))?;
    let mut s = c.reader().map_err(|e| CaseError::Harness(e.to_string()))?;
    w.write_all(&head)
        .and_then(|()| w.write_all(&vec![7u8; 1 << 20]))
        .map_err(|e| fail("the server to read 1 MiB", e.to_string()))?;
    // Only 1 MiB of 64 is sent: a streaming server has started the reply.
    let mut got = Vec::new();
    let deadline = Instant::now() + ctx.wait;
    let mut buf = [0u8; 65536];
    while got.len() < head.len() && Instant::now() < deadline {
        s.stream()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .ok();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    ensure(
        got.len() >= head.len() && got[..head.len()] == head[..],
        "the echo's prefix and header while the body is still being sent",
        || format!("{} bytes of reply after 1 MiB of 64 was sent", got.len()),
    )
}

/// Sends `total` bytes of `frame_head`'s body from another thread while
/// this one drains replies; returns the peak RSS growth seen.
fn stream_and_measure(ctx: &Ctx<'_>, frame_head: Vec<u8>, total: usize) -> Result<u64, CaseError> {
    let pid = ctx
        .pid
        .ok_or_else(|| CaseError::Unsupported("the server's pid is not known".into()))?;
    let base =
        rss_bytes(pid).ok_or_else(|| CaseError::Unsupported("no /proc for the server".into()))?;
    let c = ctx.connect()?;
    let mut w = c.writer().map_err(|e| CaseError::Harness(e.to_string()))?;
    let mut r = c.reader().map_err(|e| CaseError::Harness(e.to_string()))?;
    w.stream()
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok();
    r.stream()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok();
    let writer = thread::spawn(move || -> std::io::Result<()> {
        w.write_all(&frame_head)?;
        let chunk = vec![0x33u8; 1 << 20];
        for _ in 0..total >> 20 {
            w.write_all(&chunk)?;
        }
        Ok(())
    });
    let mut peak = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(90);
    while !writer.is_finished() && Instant::now() < deadline {
        let _ = r.read(&mut buf);
        if let Some(now) = rss_bytes(pid) {
            peak = peak.max(now.saturating_sub(base));
        }
    }
    let sent = writer
        .join()
        .map_err(|_| CaseError::Harness("writer panicked".into()))?;
    sent.map_err(|e| fail("the server to keep reading the body", e.to_string()))?;
    drop(c);
    Ok(peak)
}

fn echo_memory(ctx: &mut Ctx<'_>) -> CaseResult {
    let head = ctx.frame_bytes(&ctx.header(&json!({"file_size": 1u64 << 39})), b"");
    let peak = stream_and_measure(ctx, head, 64 << 20)?;
    ensure(
        peak < 48 << 20,
        "RSS growth under 48 MiB while 64 MiB streams through",
        || format!("RSS grew by {} MiB", peak >> 20),
    )
}

fn upload_memory(ctx: &mut Ctx<'_>) -> CaseResult {
    let listing = |dir: &std::path::Path| -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    // A shared server's storage holds earlier cases' files: compare with it.
    let base = ctx.storage.as_deref().map(listing);
    let head = ctx.frame_bytes(
        &ctx.header(&json!({"file_name": "big.bin", "file_size": 1u64 << 30})),
        b"",
    );
    let peak = stream_and_measure(ctx, head, 64 << 20)?;
    ensure(
        peak < 48 << 20,
        "RSS growth under 48 MiB while 64 MiB is uploaded",
        || format!("RSS grew by {} MiB", peak >> 20),
    )?;
    if let (Some(dir), Some(base)) = (&ctx.storage, base) {
        let deadline = Instant::now() + ctx.wait;
        while Instant::now() < deadline && listing(dir) != base {
            thread::sleep(Duration::from_millis(10));
        }
        let left = listing(dir);
        ensure(left == base, "nothing left of the cut upload", || {
            format!("{left:?} where there was {base:?}")
        })?;
    }
    Ok(())
}

fn never_reading(ctx: &mut Ctx<'_>) -> CaseResult {
    let pid = ctx
        .pid
        .ok_or_else(|| CaseError::Unsupported("the server's pid is not known".into()))?;
    let base = rss_bytes(pid).unwrap_or(0);
    let c = ctx.connect()?;
    let frame = ctx.frame_bytes(
        &ctx.header(&json!({"file_size": 1 << 20})),
        &vec![9u8; 1 << 20],
    );
    let mut w = c.writer().map_err(|e| CaseError::Harness(e.to_string()))?;
    w.stream()
        .set_write_timeout(Some(Duration::from_millis(300)))
        .ok();
    let (mut sent, start) = (0usize, Instant::now());
    while sent < 1 << 30 && start.elapsed() < Duration::from_secs(10) {
        match w.write(&frame) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let growth = rss_bytes(pid).unwrap_or(0).saturating_sub(base);
    ensure(
        sent < 256 << 20,
        "the server to stop reading a client that does not read its replies",
        || format!("it took {} MiB", sent >> 20),
    )?;
    ensure(growth < 48 << 20, "RSS growth under 48 MiB", || {
        format!(
            "RSS grew by {} MiB after {} MiB sent",
            growth >> 20,
            sent >> 20
        )
    })?;
    // A concurrent server serves others meanwhile; a serial one once this
    // client leaves.
    if !ctx.concurrent {
        drop((c, w));
    }
    let mut other = ctx.connect()?;
    let r = ctx.request(&mut other, &json!({"file_size": 1}), b"o")?;
    ensure(r.body == b"o", "another client still served", || {
        describe(&r)
    })
}

fn declared_headers(ctx: &mut Ctx<'_>) -> CaseResult {
    let pid = ctx
        .pid
        .ok_or_else(|| CaseError::Unsupported("the server's pid is not known".into()))?;
    let base = rss_bytes(pid).unwrap_or(0);
    let mut conns = Vec::new();
    for _ in 0..200 {
        let mut c = ctx.connect()?;
        let mut bytes = ctx.wire.endian.write_u32(4_000_000).to_vec();
        bytes.extend_from_slice(b"{\"file_siz");
        ctx.send(&mut c, &bytes)?;
        conns.push(c);
    }
    thread::sleep(Duration::from_millis(300));
    let growth = rss_bytes(pid).unwrap_or(0).saturating_sub(base);
    ensure(
        growth < 100 << 20,
        "RSS growth under 100 MiB (buffering as declared would take 800 MB)",
        || format!("RSS grew by {} MiB", growth >> 20),
    )
}
