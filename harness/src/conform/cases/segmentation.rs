//! Category 2, Segmentation: TCP is a byte stream, so a server must decode frames
//! split at any byte and glued together in any number.

use std::io::Write;
use std::thread;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::json;
use sockbench_wire::Endian;

use crate::conform::case::{Case, CaseResult, Ctx, describe, ensure, expect_echo, expect_ok, fail};
use crate::peer::client::Client;

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const STREAM: &str = "§1 TCP is a byte stream: a peer must accept frames glued together in one read (\"sticky packets\") and split across reads at any byte, including inside the prefix and the header.";
    vec![
        Case::new(
            "2.1",
            "byte-by-byte",
            "A frame written one byte per write, with pauses, is decoded.",
            STREAM,
            byte_by_byte,
        ),
        Case::new(
            "2.2",
            "split-inside-prefix",
            "Frames split after 1, 2 and 3 bytes of the prefix are decoded.",
            STREAM,
            split_inside_prefix,
        ),
        Case::new(
            "2.3",
            "split-inside-header",
            "Frames split at several points inside the header are decoded.",
            STREAM,
            split_inside_header,
        ),
        Case::new(
            "2.4",
            "split-header-body",
            "A pause between the header and the body does not matter.",
            STREAM,
            split_header_body,
        ),
        Case::new(
            "2.5",
            "chop-sizes",
            "A stream of frames written in chops of a seeded sample of sizes 1..2048 decodes to the same replies.",
            STREAM,
            chop_sizes,
        ),
        Case::new(
            "2.6",
            "coalesced-10",
            "Ten frames in one write get ten replies.",
            STREAM,
            coalesced_10,
        ),
        Case::new(
            "2.7",
            "coalesced-1000",
            "A thousand small frames in one write get a thousand replies, in order.",
            STREAM,
            coalesced_1000,
        ),
        Case::new(
            "2.8",
            "coalesced-mixed",
            "Empty, small and 100 KiB frames glued in one write are each answered.",
            STREAM,
            coalesced_mixed,
        ),
        Case::new(
            "2.9",
            "seeded-slicer",
            "A stream cut by a seeded slicer (average 100 bytes, ±90, 0-3 ms pauses) decodes intact.",
            STREAM,
            seeded_slicer,
        ),
        Case::new(
            "2.10",
            "pipelining-depth-256",
            "256 requests in flight before the first reply is read.",
            "§1 Clients may pipeline: send many frames without waiting. Replies come back in request order.",
            pipelining_depth,
        ),
        Case::new(
            "2.11",
            "straddling-writes",
            "Each write holds the end of one frame and the start of the next.",
            STREAM,
            straddling_writes,
        ),
        Case::new(
            "2.12",
            "large-body-odd-chunks",
            "A 4 MiB echo sent in 7,919-byte writes while reading comes back intact.",
            STREAM,
            large_body_odd_chunks,
        ),
        Case::new(
            "2.13",
            "big-endian-stream",
            "With --endian big, split and glued frames use network order both ways.",
            "§1 --endian big switches every peer to network order ('!I').",
            big_endian_stream,
        )
        .setup(|s| s.endian = Endian::Big),
        Case::new(
            "2.14",
            "every-split-point",
            "A small frame is split into two writes at every possible offset.",
            STREAM,
            every_split_point,
        ),
        Case::new(
            "2.15",
            "glued-behind-a-large-upload",
            "A frame glued to the tail of a 100 KiB upload body is answered too.",
            STREAM,
            glued_behind_upload,
        ),
    ]
}

fn frame(ctx: &Ctx<'_>, i: usize, len: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let raw = ctx.header(&json!({"file_size": len, "id": i}));
    let body: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
    let bytes = ctx.frame_bytes(&raw, &body);
    (raw, body, bytes)
}

/// Writes `pieces` with `pause` between them, then checks one echo per frame.
fn send_pieces_expect(
    ctx: &Ctx<'_>,
    c: &mut Client,
    pieces: &[&[u8]],
    pause: Duration,
    frames: &[(Vec<u8>, Vec<u8>)],
) -> CaseResult {
    for p in pieces {
        ctx.send(c, p)?;
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    for (i, (raw, body)) in frames.iter().enumerate() {
        let r = ctx.recv(c, &format!("the echo of frame {i}"))?;
        expect_echo(&r, raw, body)?;
    }
    Ok(())
}

fn byte_by_byte(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let (raw, body, bytes) = frame(ctx, 1, 9);
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    send_pieces_expect(
        ctx,
        &mut c,
        &pieces,
        Duration::from_millis(2),
        &[(raw, body)],
    )
}

fn split_inside_prefix(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    for k in 1..=3 {
        let (raw, body, bytes) = frame(ctx, k, 5);
        send_pieces_expect(
            ctx,
            &mut c,
            &[&bytes[..k], &bytes[k..]],
            Duration::from_millis(20),
            &[(raw, body)],
        )?;
    }
    Ok(())
}

fn split_inside_header(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let (raw, body, bytes) = frame(ctx, 7, 4);
    for at in [5, 4 + raw.len() / 2, 4 + raw.len() - 1] {
        let pieces = [&bytes[..at], &bytes[at..]];
        send_pieces_expect(
            ctx,
            &mut c,
            &pieces,
            Duration::from_millis(20),
            &[(raw.clone(), body.clone())],
        )?;
    }
    Ok(())
}

fn split_header_body(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let (raw, body, bytes) = frame(ctx, 3, 300);
    let at = 4 + raw.len();
    send_pieces_expect(
        ctx,
        &mut c,
        &[&bytes[..at], &bytes[at..]],
        Duration::from_millis(30),
        &[(raw, body)],
    )
}

/// (raw header, body) of each frame.
type Frames = Vec<(Vec<u8>, Vec<u8>)>;

fn stream_of(ctx: &Ctx<'_>, sizes: &[usize]) -> (Frames, Vec<u8>) {
    let mut frames = Vec::new();
    let mut all = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (raw, body, bytes) = frame(ctx, i, n);
        frames.push((raw, body));
        all.extend(bytes);
    }
    (frames, all)
}

fn chop_sizes(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut chops: Vec<usize> = vec![1, 2, 3, 4, 5, 7, 2047, 2048];
    chops.extend((0..16).map(|_| ctx.rng.random_range(1..=2048)));
    let sizes: Vec<usize> = (0..12).map(|i| [0, 1, 17, 300, 1500][i % 5]).collect();
    for chop in chops {
        let mut c = ctx.connect()?;
        let (frames, all) = stream_of(ctx, &sizes);
        let pieces: Vec<&[u8]> = all.chunks(chop).collect();
        send_pieces_expect(ctx, &mut c, &pieces, Duration::ZERO, &frames)
            .map_err(|e| e.context(&format!("with chops of {chop} bytes")))?;
    }
    Ok(())
}

fn coalesced(ctx: &Ctx<'_>, sizes: &[usize]) -> CaseResult {
    let mut c = ctx.connect()?;
    let (frames, all) = stream_of(ctx, sizes);
    let mut writer = c.writer().map_err(|e| fail("a socket", e.to_string()))?;
    // Read while writing: a large glued write must not deadlock on full buffers.
    let sender = thread::spawn(move || writer.write_all(&all));
    for (i, (raw, body)) in frames.iter().enumerate() {
        let r = ctx.recv(&mut c, &format!("reply {i} of {}", frames.len()))?;
        expect_echo(&r, raw, body)?;
    }
    sender
        .join()
        .map_err(|_| fail("the writer", "panicked"))?
        .map_err(|e| fail("the server to read the glued frames", e.to_string()))
}

fn coalesced_10(ctx: &mut Ctx<'_>) -> CaseResult {
    coalesced(ctx, &[5; 10])
}

fn coalesced_1000(ctx: &mut Ctx<'_>) -> CaseResult {
    coalesced(ctx, &[3; 1000])
}

fn coalesced_mixed(ctx: &mut Ctx<'_>) -> CaseResult {
    coalesced(ctx, &[0, 1, 0, 100 * 1024, 7, 0, 65_000, 2])
}

fn seeded_slicer(ctx: &mut Ctx<'_>) -> CaseResult {
    let sizes: Vec<usize> = (0..50).map(|_| ctx.rng.random_range(0..400)).collect();
    let (frames, all) = stream_of(ctx, &sizes);
    let mut c = ctx.connect()?;
    let mut at = 0;
    while at < all.len() {
        let n = (100i64 + ctx.rng.random_range(-90..=90)).max(1) as usize;
        let end = (at + n).min(all.len());
        ctx.send(&mut c, &all[at..end])?;
        at = end;
        let pause = ctx.rng.random_range(0..=3);
        thread::sleep(Duration::from_millis(pause));
    }
    for (i, (raw, body)) in frames.iter().enumerate() {
        let r = ctx.recv(&mut c, &format!("reply {i} of 50"))?;
        expect_echo(&r, raw, body)?;
    }
    Ok(())
}

fn pipelining_depth(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let mut frames = Vec::new();
    for i in 0..256 {
        let (raw, body, bytes) = frame(ctx, i, i % 13);
        ctx.send(&mut c, &bytes)?;
        frames.push((raw, body));
    }
    for (i, (raw, body)) in frames.iter().enumerate() {
        let r = ctx.recv(&mut c, &format!("reply {i} of 256"))?;
        expect_echo(&r, raw, body)?;
    }
    Ok(())
}

fn straddling_writes(ctx: &mut Ctx<'_>) -> CaseResult {
    let sizes = [10usize, 20, 30, 40, 50, 60];
    let (frames, all) = stream_of(ctx, &sizes);
    // Cut each frame in the middle: every write but the first and last spans two frames.
    let mut cuts = vec![0];
    let mut at = 0;
    for (raw, body) in &frames {
        let len = 4 + raw.len() + body.len();
        cuts.push(at + len / 2);
        at += len;
    }
    cuts.push(all.len());
    let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &all[w[0]..w[1]]).collect();
    let mut c = ctx.connect()?;
    send_pieces_expect(ctx, &mut c, &pieces, Duration::from_millis(5), &frames)
}

fn large_body_odd_chunks(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let (raw, body, bytes) = frame(ctx, 9, 4 << 20);
    let mut writer = c.writer().map_err(|e| fail("a socket", e.to_string()))?;
    let sender = thread::spawn(move || bytes.chunks(7919).try_for_each(|p| writer.write_all(p)));
    let r = c
        .recv(Duration::from_secs(60))
        .map_err(|e| fail("the 4 MiB echo", e.to_string()))?;
    sender
        .join()
        .map_err(|_| fail("the writer", "panicked"))?
        .map_err(|e| fail("the server to read the body", e.to_string()))?;
    expect_echo(&r, &raw, &body)
}

fn big_endian_stream(ctx: &mut Ctx<'_>) -> CaseResult {
    ensure(
        ctx.wire.endian == Endian::Big,
        "a big-endian target",
        || "little".into(),
    )?;
    let mut c = ctx.connect()?;
    let (frames, all) = stream_of(ctx, &[3, 0, 700]);
    let pieces = [&all[..2], &all[2..30], &all[30..]];
    send_pieces_expect(ctx, &mut c, &pieces, Duration::from_millis(10), &frames)?;
    let r = ctx.request(&mut c, &json!({"op": "stats", "file_size": 0}), b"")?;
    ensure(r.is_ok(), "a stats reply framed in network order", || {
        describe(&r)
    })
}

fn every_split_point(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let (raw, body, bytes) = frame(ctx, 5, 6);
    let mut order: Vec<usize> = (1..bytes.len()).collect();
    order.shuffle(&mut ctx.rng);
    for at in order {
        send_pieces_expect(
            ctx,
            &mut c,
            &[&bytes[..at], &bytes[at..]],
            Duration::from_millis(3),
            &[(raw.clone(), body.clone())],
        )
        .map_err(|e| e.context(&format!("split at byte {at}")))?;
    }
    Ok(())
}

/// Found by `sockbench explore` (fixtures/broken/glued_after_upload.py):
/// the last write carries the end of a 100 KiB upload and a whole small
/// echo, so the server's last read of the body holds the next frame too.
fn glued_behind_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let md5 = {
        use md5::Digest;
        sockbench_wire::md5_hex(&md5::Md5::digest(&body).into())
    };
    let head = ctx
        .header(&json!({"file_name": "glued.bin", "md5": md5, "file_size": body.len(), "id": 1}));
    let upload = ctx.frame_bytes(&head, &body);
    let (raw, small_body, small) = frame(ctx, 2, 5);
    let split = upload.len() - 10;
    let mut tail = upload[split..].to_vec();
    tail.extend_from_slice(&small);
    ctx.send(&mut c, &upload[..split])?;
    thread::sleep(Duration::from_millis(30));
    ctx.send(&mut c, &tail)?;
    expect_ok(&ctx.recv(&mut c, "the upload's reply")?)?;
    let r = ctx.recv(&mut c, "the echo glued behind the upload")?;
    expect_echo(&r, &raw, &small_body)
}
