//! Category 1, Framing basics: echo is the request frame itself, ids travel, replies
//! keep request order, stats has its shape.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::conform::case::{
    Case, CaseResult, Condition, Ctx, describe, ensure, expect_code, expect_echo, expect_ok, fail,
};

/// The category's cases.
/// Why a case that counts the server's work is not asked under load.
pub const COUNTS: &str = "it counts the server's frames, and the background load adds its own";

pub fn cases() -> Vec<Case> {
    const ECHO: &str = "§2 echo: the reply is the request frame itself, byte for byte: the same 4-byte prefix, the same header bytes, the same body.";
    vec![
        Case::new("1.1", "echo-empty-body", "An empty-body frame is echoed verbatim.", "§1 body := exactly header.file_size bytes (0 allowed); §2 echo.", echo_empty),
        Case::new("1.2", "echo-small-body", "A small frame is echoed byte for byte.", ECHO, echo_small),
        Case::new("1.3", "echo-binary-body", "A body with every byte value is echoed intact.", ECHO, echo_binary),
        Case::new("1.4", "echo-unicode-header", "Non-ASCII UTF-8 in the header comes back as the same bytes.", "§1 header := UTF-8 JSON; §2 echo: the same header bytes.", echo_unicode),
        Case::new("1.5", "echo-keeps-header-bytes", "Whitespace, key order and escapes of the header are kept (no re-serialization).", "§2 echo: the same header bytes; §1 anything else: ignored (and kept, for echo).", echo_keeps_bytes),
        Case::new("1.6", "id-copied", "Stats, upload and error replies copy the request's id, whatever JSON it is.", "§2 Every reply that is not an echo has file_size 0 (no body) and copies id.", id_copied),
        Case::new("1.7", "op-defaults-to-echo", "A header with neither op nor file_name is an echo.", "§1 op missing: \"upload\" when file_name is present, else \"echo\".", op_defaults_to_echo),
        Case::new("1.8", "replies-in-request-order", "Pipelined mixed requests are answered in request order.", "§1 Clients may pipeline: send many frames without waiting. Replies come back in request order.", replies_in_order),
        Case::new("1.9", "stats-shape", "The stats reply carries every counter the contract lists.", "§2 stats: the reply header carries the server's counters.", stats_shape),
        Case::new("1.10", "stats-counts-frames", "The frames counter grows by the frames received.", "§2 stats: tcp.frames counts request frames.", stats_counts).not_under(Condition::Load, COUNTS),
        Case::new("1.11", "echo-large-header", "A 60,000-byte header (under the default limit) is echoed.", "§1 Limits: --max-header 65536 bytes by default.", echo_large_header),
        Case::new("1.12", "echo-1-mib", "A 1 MiB body is echoed intact.", ECHO, echo_1_mib),
        Case::new("1.13", "no-nagle-stall", "Request-response round trips are not held back by Nagle's algorithm (a reply in two small writes waits ~40 ms for a delayed ACK).", "§6 (serve) each reply is written without needless small writes, with TCP_NODELAY.", no_nagle_stall).serial(),
        Case::new("1.14", "stats-body-drained", "A body sent with stats is read and discarded; the connection goes on.", "§2 A body sent with stats is read and discarded.", stats_body_drained),
        Case::new("1.15", "explicit-echo-ignores-upload-fields", "\"op\":\"echo\" with file_name and a bad md5 is still an echo.", "§2 file_name and md5 on an explicit \"op\":\"echo\" are ordinary fields: echoed, not checked.", explicit_echo),
        Case::new("1.16", "no-id-after-an-id", "A reply to a request without id has no id, even after one with an id on the same connection.", "§2 Every reply that is not an echo copies id (plus id when the request had one): a request without one gets none.", no_id_after_id),
        Case::new("1.17", "null-id-copied", "\"id\":null is an id like any other: copied into the reply.", "§1 id: any JSON value, copied into the reply.", null_id_copied),
        Case::new("1.18", "empty-op-is-unknown", "\"op\":\"\" is not a missing op: unknown_op, and the connection goes on.", "§1 op missing: the default; §4 unknown_op: op is not one of the three.", empty_op),
    ]
}

fn echo_raw(ctx: &Ctx<'_>, raw: &[u8], body: &[u8]) -> CaseResult {
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &ctx.frame_bytes(raw, body))?;
    let r = ctx.recv(&mut c, "the echo")?;
    expect_echo(&r, raw, body)
}

fn echo_empty(ctx: &mut Ctx<'_>) -> CaseResult {
    echo_raw(ctx, br#"{"file_size":0}"#, b"")
}

fn echo_small(ctx: &mut Ctx<'_>) -> CaseResult {
    echo_raw(ctx, br#"{"op":"echo","file_size":5,"id":1}"#, b"hello")
}

fn echo_binary(ctx: &mut Ctx<'_>) -> CaseResult {
    let body: Vec<u8> = (0..1024u32).map(|i| (i % 256) as u8).collect();
    echo_raw(ctx, br#"{"file_size":1024}"#, &body)
}

fn echo_unicode(ctx: &mut Ctx<'_>) -> CaseResult {
    echo_raw(
        ctx,
        "{\"file_size\":3,\"name\":\"caf\u{e9} \u{2603} \u{65e5}\u{672c}\"}".as_bytes(),
        b"abc",
    )
}

fn echo_keeps_bytes(ctx: &mut Ctx<'_>) -> CaseResult {
    echo_raw(
        ctx,
        b"{ \"z\" : [1, 2.50, true],\n  \"file_size\" :2 , \"u\":\"\\u00e9\\n\" }",
        b"ok",
    )
}

fn id_copied(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let id = json!({"k": [1, "two", null], "n": 3.5});
    let r = ctx.request(
        &mut c,
        &json!({"op": "stats", "file_size": 0, "id": id}),
        b"",
    )?;
    ensure(
        r.header.get("id") == Some(&id),
        format!("the stats reply to carry \"id\":{id}"),
        || describe(&r),
    )?;
    ensure(
        r.header["file_size"] == 0,
        "\"file_size\":0 in the stats reply",
        || describe(&r),
    )?;
    let r = ctx.request(
        &mut c,
        &json!({"op": "nope", "file_size": 0, "id": "e"}),
        b"",
    )?;
    expect_code(&r, "unknown_op")?;
    ensure(
        r.header["id"] == "e",
        "the error reply to carry \"id\":\"e\"",
        || describe(&r),
    )?;
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "id-copied.txt", "file_size": 1, "id": 7}),
        b"x",
    )?;
    expect_ok(&r)?;
    ensure(
        r.header["id"] == 7,
        "the upload reply to carry \"id\":7",
        || describe(&r),
    )
}

fn op_defaults_to_echo(ctx: &mut Ctx<'_>) -> CaseResult {
    echo_raw(
        ctx,
        br#"{"file_size":3,"md5":"not checked for echo"}"#,
        b"def",
    )
}

fn replies_in_order(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let reqs = [
        (json!({"file_size": 1, "id": 0}), b"a".to_vec()),
        (json!({"op": "stats", "file_size": 0, "id": 1}), vec![]),
        (
            json!({"op": "nope", "file_size": 2, "id": 2}),
            b"zz".to_vec(),
        ),
        (
            json!({"file_name": "order.bin", "file_size": 3, "id": 3}),
            b"xyz".to_vec(),
        ),
        (json!({"file_size": 0, "id": 4}), vec![]),
    ];
    let all: Vec<u8> = reqs
        .iter()
        .flat_map(|(h, b)| ctx.frame_bytes(&ctx.header(h), b))
        .collect();
    ctx.send(&mut c, &all)?;
    for i in 0..reqs.len() {
        let r = ctx.recv(&mut c, &format!("reply {i} of 5"))?;
        ensure(
            r.header["id"] == i,
            format!("reply {i} to carry \"id\":{i} (request order)"),
            || describe(&r),
        )?;
    }
    Ok(())
}

fn stats_shape(ctx: &mut Ctx<'_>) -> CaseResult {
    let s = ctx.stats()?;
    for (k, want) in [
        ("op", json!("stats")),
        ("status", json!("ok")),
        ("file_size", json!(0)),
    ] {
        ensure(s[k] == want, format!("\"{k}\":{want}"), || {
            format!("stats reply {s}")
        })?;
    }
    ensure(s["backend"].is_string(), "a string \"backend\"", || {
        format!("stats reply {s}")
    })?;
    for k in [
        "connections",
        "frames",
        "bytes_in",
        "bytes_out",
        "errors",
        "uploads_ok",
        "uploads_failed",
    ] {
        ensure(s["tcp"][k].is_u64(), format!("a number tcp.{k}"), || {
            format!("stats reply {s}")
        })?;
    }
    for k in ["datagrams_in", "datagrams_out", "bytes_in"] {
        ensure(s["udp"][k].is_u64(), format!("a number udp.{k}"), || {
            format!("stats reply {s}")
        })?;
    }
    Ok(())
}

fn stats_counts(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let stats = json!({"op": "stats", "file_size": 0});
    let before = ctx.request(&mut c, &stats, b"")?.header["tcp"]["frames"]
        .as_u64()
        .unwrap_or(0);
    for i in 0..3 {
        ctx.request(&mut c, &json!({"file_size": 1, "id": i}), b".")?;
    }
    let after = ctx.request(&mut c, &stats, b"")?.header["tcp"]["frames"]
        .as_u64()
        .unwrap_or(0);
    ensure(
        after == before + 4,
        format!("tcp.frames to grow by 4 (3 echoes and a stats), from {before}"),
        || format!("it grew by {}", after as i64 - before as i64),
    )
}

fn echo_large_header(ctx: &mut Ctx<'_>) -> CaseResult {
    let raw = format!("{{\"file_size\":2,\"pad\":\"{}\"}}", "p".repeat(60_000));
    echo_raw(ctx, raw.as_bytes(), b"hi")
}

fn echo_1_mib(ctx: &mut Ctx<'_>) -> CaseResult {
    let body: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    echo_raw(ctx, br#"{"file_size":1048576}"#, &body)
}

fn no_nagle_stall(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let mut rtts = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        let r = ctx.request(
            &mut c,
            &json!({"file_size": 16, "id": i}),
            b"0123456789abcdef",
        )?;
        rtts.push(t.elapsed());
        ensure(r.body.len() == 16, "the echo", || describe(&r))?;
    }
    // The first round trips run in quick-ACK mode; delayed ACKs start after.
    let mut tail = rtts[10..].to_vec();
    tail.sort();
    let median = tail[tail.len() / 2];
    ensure(
        median < Duration::from_millis(20),
        "a median round trip far below the 40 ms delayed-ACK stall",
        || format!("median {median:?} over 20 round trips (all: {rtts:?})"),
    )
}

fn stats_body_drained(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(&mut c, &json!({"op": "stats", "file_size": 5}), b"12345")?;
    ensure(
        r.header["op"] == "stats" && r.is_ok(),
        "a stats reply",
        || describe(&r),
    )?;
    let r = ctx.request(&mut c, &json!({"file_size": 2, "id": "next"}), b"ok")?;
    ensure(
        r.body == b"ok" && r.header["id"] == "next",
        "the next request's echo",
        || describe(&r),
    )
}

fn explicit_echo(ctx: &mut Ctx<'_>) -> CaseResult {
    let raw = br#"{"op":"echo","file_name":"../not-a-file","md5":"zz","file_size":2}"#;
    echo_raw(ctx, raw, b"ee")?;
    match &ctx.storage {
        Some(dir) if dir.join("../not-a-file").exists() => Err(fail(
            "nothing written for an echo",
            "a file ../not-a-file appeared",
        )),
        _ => Ok(()),
    }
}

/// Found by `sockbench explore` (fixtures/broken/stale_id.py): state left
/// over from the previous request.
fn no_id_after_id(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"op": "stats", "file_size": 0, "id": 41}),
        b"",
    )?;
    ensure(
        r.header.get("id") == Some(&json!(41)),
        "the first reply to carry \"id\":41",
        || describe(&r),
    )?;
    for (what, header) in [
        ("stats", json!({"op": "stats", "file_size": 0})),
        ("unknown_op", json!({"op": "nope", "file_size": 0})),
    ] {
        let r = ctx.request(&mut c, &header, b"")?;
        ensure(
            r.header.get("id").is_none(),
            format!("the {what} reply to a request without id to have none"),
            || describe(&r),
        )?;
    }
    Ok(())
}

/// Found by `sockbench explore` in the seed's Python peer, which read a
/// null id as no id.
fn null_id_copied(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"op": "stats", "file_size": 0, "id": null}),
        b"",
    )?;
    ensure(
        r.header.get("id") == Some(&serde_json::Value::Null),
        "the stats reply to carry \"id\":null",
        || describe(&r),
    )
}

/// Found by `sockbench explore` in the seed's Python peer, which took an
/// empty op for a missing one and echoed.
fn empty_op(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(&mut c, &json!({"op": "", "file_size": 2, "id": 3}), b"ab")?;
    expect_code(&r, "unknown_op")?;
    let r = ctx.request(&mut c, &json!({"file_size": 1}), b"z")?;
    expect_echo(&r, br#"{"file_size":1}"#, b"z")
}
