//! The connection driver's rules with fake time and no sockets: each test
//! moves a clock of its own and plays the back-end's part by hand.

mod common;

use std::time::{Duration, Instant};

use common::{context, parse_replies};
use serde_json::json;
use sockbench_core::{Action, Driver, LINGER_BYTES, LINGER_TIME, ServerConfig, StorageOp};
use sockbench_wire::{Encoder, WireConfig};

const S: Duration = Duration::from_secs(1);

fn frame(header: serde_json::Value, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Encoder::new(WireConfig::default().endian)
        .head(header.to_string().as_bytes(), &mut v)
        .unwrap();
    v.extend_from_slice(body);
    v
}

fn config() -> ServerConfig {
    ServerConfig {
        idle_timeout: 60 * S,
        header_timeout: 10 * S,
        grace: 2 * S,
        io_buffer: 1024,
        ..ServerConfig::default()
    }
}

/// Writes everything the driver has at `now`; returns the bytes and the
/// first action that was not a write.
fn written(d: &mut Driver, now: Instant) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    let next = common::written(d, now, &mut out);
    (out, next)
}

#[test]
fn a_silent_peer_is_closed_at_the_idle_timeout_and_each_byte_moves_it() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    assert_eq!(d.poll_timeout(), Some(t0 + 60 * S));
    d.on_read(&frame(json!({"file_size": 1}), b"a"), t0 + 30 * S);
    assert_eq!(written(&mut d, t0 + 31 * S).1, "Read");
    // The write at 31 s is the last activity.
    assert_eq!(d.poll_timeout(), Some(t0 + 91 * S));
    d.on_timeout(t0 + 90 * S);
    assert_eq!(d.next(t0 + 90 * S), Action::Read, "early: nothing happens");
    d.on_timeout(t0 + 91 * S);
    assert_eq!(d.next(t0 + 91 * S), Action::Close);
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!(tcp.errors, 0, "closed between frames: nothing truncated");
}

#[test]
fn a_header_trickled_byte_by_byte_is_cut_at_the_header_deadline_and_counted() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    let f = frame(json!({"file_size": 0}), b"");
    for (i, byte) in f[..8].iter().enumerate() {
        d.on_read(&[*byte], t0 + S * i as u32);
    }
    // Bytes keep coming, so the idle timeout never fires; the deadline
    // counts from the first byte.
    assert_eq!(d.poll_timeout(), Some(t0 + 10 * S));
    d.on_timeout(t0 + 10 * S);
    assert_eq!(d.next(t0 + 10 * S), Action::Close);
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!(tcp.errors, 1, "the frame cut short is counted");
}

#[test]
fn the_header_deadline_ends_with_the_header_and_restarts_with_the_next() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    let f = frame(json!({"file_size": 4}), b"body");
    let body_at = f.len() - 4;
    d.on_read(&f[..3], t0);
    assert_eq!(d.poll_timeout(), Some(t0 + 10 * S));
    // The header is complete: only the idle timeout is left.
    d.on_read(&f[3..body_at + 1], t0 + 9 * S);
    assert_eq!(d.poll_timeout(), Some(t0 + 69 * S));
    d.on_read(&f[body_at + 1..], t0 + 20 * S);
    d.on_read(&f[..1], t0 + 21 * S);
    assert_eq!(d.poll_timeout(), Some(t0 + 31 * S));
}

#[test]
fn after_a_fatal_error_the_reply_is_sent_then_fin_then_input_is_discarded_for_a_while() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    d.on_read(&[0, 0, 0, 0], t0);
    let (out, next) = written(&mut d, t0);
    assert_eq!(
        parse_replies(WireConfig::default(), &out)[0].kind(),
        "bad_length"
    );
    assert_eq!(next, "ShutdownWrite");
    assert_eq!(d.next(t0), Action::Read, "lingering reads on");
    assert_eq!(d.poll_timeout(), Some(t0 + LINGER_TIME));
    let reads = ctx.counters.snapshot().0.reads;
    d.on_read(&[7; 4096], t0 + S / 2);
    assert_eq!(written(&mut d, t0 + S / 2), (Vec::new(), "Read".into()));
    assert_eq!(
        ctx.counters.snapshot().0.reads,
        reads,
        "discards are not counted"
    );
    d.on_timeout(t0 + LINGER_TIME);
    assert_eq!(d.next(t0 + LINGER_TIME), Action::Close);
}

#[test]
fn lingering_stops_after_its_byte_budget_or_the_peers_fin() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut budget = Driver::new(&ctx, t0);
    budget.on_read(&[0, 0, 0, 0], t0);
    let _ = written(&mut budget, t0);
    budget.on_read(&vec![1; LINGER_BYTES - 1], t0);
    assert_eq!(budget.next(t0), Action::Read);
    budget.on_read(&[1], t0);
    assert_eq!(budget.next(t0), Action::Close);

    let mut fin = Driver::new(&ctx, t0);
    fin.on_read(&[0, 0, 0, 0], t0);
    let _ = written(&mut fin, t0);
    fin.on_eof();
    assert_eq!(fin.next(t0), Action::Close);
}

#[test]
fn reading_pauses_while_replies_back_up_and_resumes_as_they_drain() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    let body = vec![9u8; 4000];
    d.on_read(&frame(json!({"file_size": body.len()}), &body), t0);
    assert!(!d.wants_read(), "over the 1 KiB mark");
    let Action::Write(b) = d.next(t0) else {
        panic!("replies to write")
    };
    let n = b.len() - 1000;
    d.on_written(n, t0);
    assert!(d.wants_read(), "under the mark again");
}

#[test]
fn a_peer_that_reads_no_replies_is_closed_at_the_idle_timeout() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    d.on_read(&frame(json!({"file_size": 1}), b"x"), t0);
    d.on_eof();
    assert!(matches!(d.next(t0), Action::Write(_)), "the reply waits");
    assert_eq!(d.poll_timeout(), Some(t0 + 60 * S));
    d.on_timeout(t0 + 60 * S);
    assert_eq!(d.next(t0 + 60 * S), Action::Close);
}

#[test]
fn on_shutdown_an_idle_connection_closes_at_once_and_a_busy_one_gets_the_grace_period() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut idle = Driver::new(&ctx, t0);
    let mut busy = Driver::new(&ctx, t0);
    let f = frame(json!({"file_size": 8}), b"12345678");
    busy.on_read(&f[..f.len() - 4], t0);
    assert_eq!(written(&mut busy, t0).1, "Read");
    ctx.shutdown.trigger();
    assert_eq!(idle.next(t0 + S), Action::Close);
    assert_eq!(busy.next(t0 + S), Action::Read);
    assert_eq!(busy.poll_timeout(), Some(t0 + 3 * S));
    // The frame completes within the grace period: its reply goes out,
    // then the connection closes.
    busy.on_read(&f[f.len() - 4..], t0 + 2 * S);
    let (out, next) = written(&mut busy, t0 + 2 * S);
    assert_eq!(out, f);
    assert_eq!(next, "Close");

    let mut late = Driver::new(&ctx, t0);
    late.on_read(&f[..5], t0);
    assert_eq!(late.next(t0), Action::Read);
    assert_eq!(late.poll_timeout(), Some(t0 + 2 * S));
    late.on_timeout(t0 + 2 * S);
    assert_eq!(late.next(t0 + 2 * S), Action::Close);
}

#[test]
fn a_delegated_upload_cut_short_is_abandoned_before_its_failure_is_counted() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::delegating(&ctx, t0);
    let f = frame(json!({"file_size": 10, "file_name": "u"}), b"0123456789");
    let mut rest = &f[..f.len() - 4];
    assert!(matches!(
        d.on_read_delegated(&mut rest, t0),
        Some(StorageOp::Begin { file_name }) if file_name == "u"
    ));
    assert!(matches!(
        d.on_read_delegated(&mut rest, t0),
        Some(StorageOp::Write(b"012345"))
    ));
    assert!(d.on_read_delegated(&mut rest, t0).is_none());
    d.on_eof();
    assert_eq!(d.next(t0), Action::AbortUpload);
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!(tcp.uploads_failed, 0, "not counted before the file is gone");
    assert_eq!(d.next(t0), Action::Close);
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!((tcp.errors, tcp.uploads_failed), (1, 1));
}

#[test]
fn writes_are_cut_to_max_write_and_counted() {
    let (_dir, ctx) = context(ServerConfig {
        max_write: Some(5),
        ..config()
    });
    let t0 = Instant::now();
    let mut d = Driver::new(&ctx, t0);
    let f = frame(json!({"file_size": 3}), b"abc");
    d.on_read(&f, t0);
    let (out, _) = written(&mut d, t0);
    assert_eq!(out, f);
    let (tcp, _) = ctx.counters.snapshot();
    assert_eq!((tcp.reads, tcp.writes), (1, f.len().div_ceil(5) as u64));
}

#[test]
fn a_delegated_upload_commits_after_its_last_chunk_without_more_input() {
    let (_dir, ctx) = context(config());
    let t0 = Instant::now();
    let mut d = Driver::delegating(&ctx, t0);
    let f = frame(json!({"file_size": 2, "file_name": "u"}), b"ok");
    let mut rest = &f[..];
    assert!(matches!(
        d.on_read_delegated(&mut rest, t0),
        Some(StorageOp::Begin { .. })
    ));
    assert!(matches!(
        d.on_read_delegated(&mut rest, t0),
        Some(StorageOp::Write(b"ok"))
    ));
    assert!(rest.is_empty());
    assert!(matches!(
        d.on_read_delegated(&mut rest, t0),
        Some(StorageOp::Commit { expected: None })
    ));
}
