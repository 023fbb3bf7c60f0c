//! Session behaviour beyond the vectors: pipelining, counters, uploads and
//! their failures, and independence from segmentation.

mod common;

use common::{context, drive, driver, flush, names_in, parse_replies, read};
use proptest::prelude::*;
use serde_json::json;
use sockbench_core::{Action, Driver, ServerConfig};
use sockbench_wire::{Encoder, Endian, WireConfig};
use std::time::Instant;

fn frame(header: serde_json::Value, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(Endian::Little)
        .frame(&serde_json::to_vec(&header).unwrap(), body, &mut out)
        .unwrap();
    out
}

fn md5_of(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    sockbench_wire::md5_hex(&Md5::digest(data).into())
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (dir, ctx) = context(ServerConfig::default());
    let mut input = frame(json!({"file_size": 3, "id": 1}), b"abc");
    input.extend(frame(
        json!({"file_size": 4, "file_name": "f", "md5": md5_of(b"data"), "id": 2}),
        b"data",
    ));
    input.extend(frame(
        json!({"op": "bogus", "file_size": 2, "id": 3}),
        b"zz",
    ));
    input.extend(frame(json!({"op": "stats", "file_size": 0, "id": 4}), b""));
    input.extend(frame(json!({"file_size": 0, "id": 5}), b""));
    let mut conn = driver(&ctx);
    let (out, closed) = drive(&mut conn, &input, usize::MAX);
    assert!(!closed);
    let r = parse_replies(WireConfig::default(), &out);
    let kinds: Vec<String> = r.iter().map(|r| r.kind()).collect();
    assert_eq!(kinds, ["echo", "ok", "unknown_op", "stats", "echo"]);
    let ids: Vec<_> = r.iter().map(|r| r.header["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(r[1].header["md5"], md5_of(b"data"));
    assert_eq!(r[1].header["bytes"], 4);
    assert_eq!(r[1].header["file_size"], 0);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
    // The stats reply saw the frames before it and itself.
    let stats = &r[3].header;
    assert_eq!(stats["backend"], "test");
    assert_eq!(stats["tcp"]["frames"], 4);
    assert_eq!(stats["tcp"]["uploads_ok"], 1);
    assert_eq!(stats["tcp"]["errors"], 1);
}

#[test]
fn echo_of_a_large_body_streams_through_in_bounded_pieces() {
    let (_dir, ctx) = context(ServerConfig::default());
    let body: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    let input = frame(json!({"file_size": body.len()}), &body);
    let mut conn = driver(&ctx);
    let mut out = Vec::new();
    let mut all = Vec::new();
    for piece in input.chunks(64 * 1024) {
        assert!(!read(&mut conn, piece, &mut out));
        // Each read's output is about one read's worth: nothing accumulates.
        assert!(out.len() <= 64 * 1024 + 64, "output grew to {}", out.len());
        all.append(&mut out);
    }
    assert_eq!(all, input);
}

#[test]
fn md5_mismatch_keeps_the_old_file_and_the_connection() {
    let (dir, ctx) = context(ServerConfig::default());
    std::fs::write(dir.path().join("f"), b"old").unwrap();
    let mut input = frame(
        json!({"file_size": 3, "file_name": "f", "md5": md5_of(b"xyz")}),
        b"new",
    );
    input.extend(frame(json!({"file_size": 1}), b"!"));
    let (out, closed) = drive(&mut driver(&ctx), &input, 2);
    assert!(!closed);
    let r = parse_replies(WireConfig::default(), &out);
    assert_eq!(r[0].kind(), "md5_mismatch");
    assert_eq!(r[0].header["md5"], md5_of(b"new"));
    assert_eq!(r[1].kind(), "echo");
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"old");
    assert_eq!(names_in(dir.path()), ["f"]);
}

#[test]
fn truncated_upload_leaves_nothing_and_counts_an_error() {
    let (dir, ctx) = context(ServerConfig::default());
    let input = frame(json!({"file_size": 100, "file_name": "t"}), &[1u8; 100]);
    let mut conn = driver(&ctx);
    let mut out = Vec::new();
    assert!(!read(&mut conn, &input[..60], &mut out));
    assert_eq!(
        names_in(dir.path()).len(),
        1,
        "the temporary file exists mid-body"
    );
    conn.on_eof();
    assert!(flush(&mut conn, &mut out), "the connection closes");
    assert!(out.is_empty(), "no reply to a truncated frame");
    assert!(names_in(dir.path()).is_empty());
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!((tcp.errors, tcp.uploads_failed), (1, 1));
}

#[test]
fn storage_removed_before_commit_is_an_io_error_and_the_connection_goes_on() {
    let (dir, ctx) = context(ServerConfig::default());
    let input = frame(
        json!({"file_size": 4, "file_name": "f", "id": "u"}),
        b"data",
    );
    let mut conn = driver(&ctx);
    let mut out = Vec::new();
    read(&mut conn, &input[..input.len() - 1], &mut out);
    std::fs::remove_dir_all(dir.path()).unwrap();
    read(&mut conn, &input[input.len() - 1..], &mut out);
    read(&mut conn, &frame(json!({"file_size": 0}), b""), &mut out);
    let r = parse_replies(WireConfig::default(), &out);
    assert_eq!(r[0].kind(), "io_error");
    assert_eq!(r[0].header["id"], "u");
    assert!(r[0].header["message"].as_str().unwrap().contains("\"f\""));
    assert_eq!(r[1].kind(), "echo");
}

#[test]
fn upload_without_file_name_is_bad_file_name() {
    let (_dir, ctx) = context(ServerConfig::default());
    let input = frame(json!({"op": "upload", "file_size": 1}), b"x");
    let (out, _) = drive(&mut driver(&ctx), &input, usize::MAX);
    assert_eq!(
        parse_replies(WireConfig::default(), &out)[0].kind(),
        "bad_file_name"
    );
}

#[test]
fn nothing_after_a_fatal_error_is_answered() {
    let (_dir, ctx) = context(ServerConfig::default());
    let mut input = vec![0, 0, 0, 0];
    input.extend(frame(json!({"file_size": 0}), b""));
    let mut conn = driver(&ctx);
    let mut out = Vec::new();
    assert!(
        read(&mut conn, &input, &mut out),
        "a fatal error ends the connection"
    );
    // Lingering: what the peer still sends is read and discarded.
    assert!(!read(&mut conn, &input, &mut out));
    let r = parse_replies(WireConfig::default(), &out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind(), "bad_length");
}

#[test]
fn big_endian_sessions_answer_in_big_endian() {
    let config = ServerConfig {
        wire: WireConfig {
            endian: Endian::Big,
            ..WireConfig::default()
        },
        ..ServerConfig::default()
    };
    let (_dir, ctx) = context(config);
    let h = br#"{"op":"stats","file_size":0}"#;
    let mut input = (h.len() as u32).to_be_bytes().to_vec();
    input.extend_from_slice(h);
    let (out, _) = drive(&mut driver(&ctx), &input, usize::MAX);
    let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, out.len() - 4);
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..3000);
    (body, 0..6u8, any::<u16>()).prop_map(|(b, kind, id)| match kind {
        0 | 1 => frame(json!({"file_size": b.len(), "id": id}), &b),
        2 => frame(
            json!({"file_size": b.len(), "file_name": format!("f{}", id % 3), "md5": md5_of(&b)}),
            &b,
        ),
        3 => frame(
            json!({"file_size": b.len(), "file_name": "g", "md5": "0".repeat(32)}),
            &b,
        ),
        4 => frame(json!({"file_size": b.len(), "op": "nope", "id": id}), &b),
        _ => frame(json!({"file_size": b.len(), "file_name": "../up"}), &b),
    })
}

/// A back-end as uring is: each read's run of echoes goes out from the
/// read buffer behind the pending output, in one write that takes at most
/// `take` bytes; a write of the driver's output is lent and completes (as
/// partially) only after the next read was fed.
fn drive_direct(d: &mut Driver, input: &[u8], chunk: usize, take: usize) -> (Vec<u8>, bool) {
    let now = Instant::now();
    let mut out = Vec::new();
    let mut lent: Option<Vec<u8>> = None;
    for piece in input.chunks(chunk.max(1)) {
        let tail = d.on_read_direct(piece, now);
        match lent.take() {
            Some(offered) => {
                // A send is in flight: the run is copied, then it completes.
                d.keep_direct(tail);
                let k = offered.len().min(take);
                out.extend_from_slice(&offered[..k]);
                d.on_written(k, now);
            }
            None => {
                let [pending, _] = d.direct_slices(tail);
                let both = [&pending[..], tail].concat();
                let k = both.len().min(take);
                out.extend_from_slice(&both[..k]);
                d.on_written_direct(k, tail, now);
            }
        }
        loop {
            match d.next(now) {
                Action::Write(b) => {
                    lent = Some(b.to_vec());
                    d.lend_output();
                    break;
                }
                Action::AbortUpload => {}
                Action::Read => break,
                _ => return (out, true),
            }
        }
    }
    if let Some(offered) = lent {
        out.extend_from_slice(&offered);
        d.on_written(offered.len(), now);
    }
    d.on_eof();
    let closed = flush(d, &mut out);
    debug_assert!(closed, "the stream ended");
    (out, false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Writing runs of echoes from the read buffer, lending the output to
    /// writes in flight and writes that fall short send the same bytes, in
    /// the same order, as copying everything into the driver.
    #[test]
    fn direct_and_lent_writes_send_what_copying_sends(
        reqs in prop::collection::vec(request(), 1..10),
        small in prop::collection::vec(0..3000usize, 0..40),
        chunk in 1usize..9000,
        take in 1usize..20_000,
    ) {
        // Runs of small echoes between the generated requests.
        let mut input = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            for &n in small.iter().skip(i * 4).take(4) {
                input.extend(frame(json!({"file_size": n}), &vec![i as u8; n]));
            }
            input.extend_from_slice(r);
        }
        let (_d1, ctx) = context(ServerConfig::default());
        let (whole, closed) = drive(&mut driver(&ctx), &input, usize::MAX);
        prop_assert!(!closed);
        let (_d2, ctx) = context(ServerConfig::default());
        let (direct, closed) = drive_direct(&mut driver(&ctx), &input, chunk, take);
        prop_assert!(!closed);
        prop_assert_eq!(direct.len(), whole.len());
        prop_assert!(direct == whole, "the replies differ");
    }

    /// Replies, stored files and counters do not depend on how the stream was cut.
    #[test]
    fn segmentation_never_changes_the_outcome(
        reqs in prop::collection::vec(request(), 1..8),
        chunk in 1usize..700,
    ) {
        let input: Vec<u8> = reqs.concat();
        let run = |chunk: usize| {
            let (dir, ctx) = context(ServerConfig::default());
            let (out, closed) = drive(&mut driver(&ctx), &input, chunk);
            let files: Vec<(String, Vec<u8>)> = names_in(dir.path())
                .into_iter()
                .map(|n| { let c = std::fs::read(dir.path().join(&n)).unwrap(); (n, c) })
                .collect();
            let (mut tcp, _) = ctx.counters.snapshot();
            // Socket calls follow the cutting, by design.
            (tcp.reads, tcp.writes) = (0, 0);
            (out, closed, files, tcp)
        };
        let whole = run(usize::MAX);
        prop_assert!(!whole.1);
        prop_assert_eq!(parse_replies(WireConfig::default(), &whole.0).len(), reqs.len());
        prop_assert_eq!(run(chunk), whole);
    }
}
