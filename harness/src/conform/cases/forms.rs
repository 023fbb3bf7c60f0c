//! The lesson's checks in every dialect: the sticky-packet cases in upload
//! and echo forms, written and read through `Ctx::dialect`, judged by the
//! echo or by the disk (whether or not the server replies). They run
//! against sockbench's own contract too, so every back-end is held to them.

use std::thread;
use std::time::Duration;

use crate::peer::frames::md5_hex;

use super::super::disk::{Disk, Snapshot};
use crate::conform::case::{Case, CaseError, CaseResult, Ctx, difference, fail, show};
use crate::dialect::{Dialect, codec};
use crate::peer::client::Client;

const STREAM: &str = "§1 TCP is a byte stream: a peer must accept frames glued together in one read (\"sticky packets\") and split across reads at any byte, including inside the prefix and the header.";
const STORED: &str = "§2 upload: the body is stored as the file named, byte for byte; a reader sees the old content or the complete new content, never a partial file.";
const NAMES: &str = "§2 upload: anything but a plain name is refused, and nothing is written outside the storage directory, ever.";

/// The pause between two pieces of a split write: long enough for the
/// server's read to return the first piece alone.
const PAUSE: Duration = Duration::from_millis(3);

/// Category 2's forms: split, glued and byte-wise, as uploads and echoes.
pub fn segmentation() -> Vec<Case> {
    vec![
        Case::new(
            "2.16",
            "upload-split-every-byte",
            "Uploads split at every byte of their prefix and header are each stored exactly.",
            STREAM,
            upload_split_every_byte,
        )
        .any_dialect("uploads")
        .storage(),
        Case::new(
            "2.17",
            "uploads-glued",
            "Three uploads in one write are stored as three exact files.",
            STREAM,
            uploads_glued,
        )
        .any_dialect("uploads, many frames per connection")
        .storage(),
        Case::new(
            "2.18",
            "upload-body-bytewise",
            "An upload whose 1,500-byte body comes one byte per write is stored exactly.",
            STREAM,
            upload_body_bytewise,
        )
        .any_dialect("uploads")
        .storage(),
        Case::new(
            "2.19",
            "echo-split-every-byte",
            "An echo split at every byte of its prefix and header comes back whole, each time.",
            STREAM,
            echo_split_every_byte,
        )
        .any_dialect("a TCP echo"),
        Case::new(
            "2.20",
            "echoes-glued",
            "Three echo requests in one write get three replies, in order.",
            STREAM,
            echoes_glued,
        )
        .any_dialect("a TCP echo, many frames per connection"),
        Case::new(
            "2.21",
            "echo-body-bytewise",
            "An echo whose 1,500-byte body comes one byte per write comes back whole.",
            STREAM,
            echo_body_bytewise,
        )
        .any_dialect("a TCP echo"),
    ]
}

/// Category 3's forms: sizes, a cut connection, names, the digest, binary.
pub fn upload() -> Vec<Case> {
    vec![
        Case::new(
            "3.30",
            "upload-sizes",
            "Bodies of 0, 1, 1,023, 1,024, 1,025 and 100,000 bytes and 1 MiB are each stored exactly.",
            STORED,
            upload_sizes,
        )
        .any_dialect("uploads")
        .storage(),
        Case::new(
            "3.31",
            "upload-cut-leaves-nothing",
            "A connection cut in the middle of a body leaves no file, partial or temporary.",
            STORED,
            upload_cut,
        )
        .any_dialect("uploads")
        .storage(),
        Case::new(
            "3.32",
            "upload-names",
            "A 255-byte name is stored; `../x` and an absolute name write nothing outside the storage directory.",
            NAMES,
            upload_names,
        )
        .any_dialect("uploads")
        .storage(),
        Case::new(
            "3.33",
            "upload-digest-checked",
            "A body whose digest differs is not stored; the same upload with the right digest is.",
            "§2 upload: md5 given and different: nothing is stored.",
            upload_digest_checked,
        )
        .any_dialect("uploads, digest_checked")
        .storage(),
        Case::new(
            "3.34",
            "upload-binary-body",
            "A body of every byte value, invalid UTF-8 included, is stored exactly.",
            STORED,
            upload_binary_body,
        )
        .any_dialect("uploads")
        .storage(),
    ]
}

/// Printable bytes, different per `salt`: what most cases send, so a
/// server that decodes text is only caught by the binary case.
fn text(n: usize, salt: usize) -> Vec<u8> {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|i| A[(i * 7 + salt) % A.len()]).collect()
}

fn no_uploads(d: &Dialect) -> CaseError {
    CaseError::Unsupported(format!(
        "{}: it stores nothing (no name field)",
        d.summary()
    ))
}

fn no_echo(d: &Dialect) -> CaseError {
    CaseError::Unsupported(format!("{}: the case needs a TCP echo", d.summary()))
}

fn one_frame_only(d: &Dialect) -> CaseError {
    CaseError::Unsupported(format!(
        "{}: with one frame per connection nothing can be glued",
        d.summary()
    ))
}

/// How an upload's bytes are written.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// In one write.
    Whole,
    /// Split in two at this byte, with a pause.
    At(usize),
    /// The prefix and header in one write, then the body a byte at a time.
    BodyBytewise,
}

fn write(ctx: &Ctx<'_>, c: &mut Client, bytes: &[u8], how: Write, body_len: usize) -> CaseResult {
    match how {
        Write::Whole => ctx.send(c, bytes),
        Write::At(at) => {
            ctx.send(c, &bytes[..at])?;
            thread::sleep(PAUSE);
            ctx.send(c, &bytes[at..])
        }
        Write::BodyBytewise => {
            let head = bytes.len() - body_len;
            ctx.send(c, &bytes[..head])?;
            for (i, b) in bytes[head..].chunks(1).enumerate() {
                ctx.send(c, b)?;
                // A pause now and then, so the server's reads come short.
                if i % 64 == 63 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(())
        }
    }
}

/// A case's uploads: the connection (one for the case, or one per upload
/// when the dialect serves one frame per connection), the disk, and what
/// the storage must hold.
struct Uploads {
    disk: Disk,
    want: Snapshot,
    conn: Option<Client>,
}

impl Uploads {
    fn start(ctx: &Ctx<'_>) -> Result<Uploads, CaseError> {
        if !ctx.dialect.uploads() {
            return Err(no_uploads(&ctx.dialect));
        }
        let disk = Disk::of(ctx)?;
        let want = disk.files();
        Ok(Uploads {
            disk,
            want,
            conn: None,
        })
    }

    /// The connection for the next upload.
    fn conn(&mut self, ctx: &Ctx<'_>) -> Result<&mut Client, CaseError> {
        if self.conn.is_none() || !ctx.dialect.many_frames() {
            self.conn = Some(ctx.connect()?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| CaseError::Harness("no connection".into()))
    }

    fn frame(ctx: &Ctx<'_>, name: &str, body: &[u8], digest: &str) -> Result<Vec<u8>, CaseError> {
        codec::upload(&ctx.dialect, name, body, digest).ok_or_else(|| no_uploads(&ctx.dialect))
    }

    /// Sends one upload as `how` says, then waits until the storage holds
    /// it exactly (and everything before it), and reads the reply the
    /// dialect sends.
    fn send(&mut self, ctx: &mut Ctx<'_>, name: &str, body: &[u8], how: Write) -> CaseResult {
        let bytes = Uploads::frame(ctx, name, body, &md5_hex(body))?;
        let c = self.conn(ctx)?;
        write(ctx, c, &bytes, how, body.len())?;
        self.want.insert(name.into(), body.to_vec());
        self.check(
            ctx,
            &format!("{name} stored exactly ({} bytes)", body.len()),
            1,
        )
    }

    /// Waits for the storage to hold what was sent, then reads `replies`
    /// replies where the dialect sends them.
    fn check(&mut self, ctx: &mut Ctx<'_>, what: &str, replies: usize) -> CaseResult {
        let want = self.want.clone();
        self.disk.expect(ctx, self.conn.as_mut(), &want, what)?;
        for _ in 0..replies {
            self.reply(ctx)?;
        }
        Ok(())
    }

    /// What the storage holds once the server has dealt with the last
    /// upload: after its reply, in a dialect that sends one; else once
    /// `stored` holds or the directory settles (transient temporary files
    /// come and go meanwhile).
    fn outcome(
        &mut self,
        ctx: &mut Ctx<'_>,
        stored: impl Fn(&Snapshot) -> bool,
    ) -> Result<super::super::disk::Look, CaseError> {
        if ctx.dialect.upload_reply != crate::dialect::Reply::None {
            self.reply(ctx)?;
            return self.disk.settle(ctx, self.conn.as_mut(), |_| true);
        }
        self.disk.settle(ctx, self.conn.as_mut(), stored)
    }

    fn reply(&mut self, ctx: &Ctx<'_>) -> CaseResult {
        let d = ctx.dialect.clone();
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        if d.upload_reply == crate::dialect::Reply::None {
            return Ok(());
        }
        c.recv_raw(ctx.wait, |b| codec::upload_reply_len(&d, b))
            .map(drop)
            .map_err(|e| {
                fail(
                    format!("the reply to an upload ({})", d.summary()),
                    e.to_string(),
                )
            })
    }
}

fn upload_split_every_byte(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    let name = |at: usize| format!("split-{at:03}.txt");
    let first = Uploads::frame(ctx, &name(0), &text(40, 0), &md5_hex(&text(40, 0)))?;
    let head = first.len() - 40;
    for at in 1..=head {
        let body = text(40, at);
        u.send(ctx, &name(at), &body, Write::At(at))
            .map_err(|e| split(ctx, at, e).context(&format!("split after byte {at} of {head}")))?;
    }
    Ok(())
}

/// A failure after a write split at byte `at`: inside the prefix, a read
/// of the prefix was assumed complete; past it, a read of the header (or,
/// with no header, of the payload).
fn split(ctx: &Ctx<'_>, at: usize, e: CaseError) -> CaseError {
    let d = &ctx.dialect;
    let id = if at < usize::from(d.prefix.width) {
        "split-prefix"
    } else if d.fields.size.is_some() {
        "split-header"
    } else {
        "split-body"
    };
    e.finding(id, None)
}

fn uploads_glued(ctx: &mut Ctx<'_>) -> CaseResult {
    if !ctx.dialect.many_frames() {
        return Err(one_frame_only(&ctx.dialect));
    }
    let mut u = Uploads::start(ctx)?;
    let mut all = Vec::new();
    for (i, n) in [10usize, 2000, 5].into_iter().enumerate() {
        let name = format!("glued-{i}.txt");
        let body = text(n, i);
        all.extend(Uploads::frame(ctx, &name, &body, &md5_hex(&body))?);
        u.want.insert(name.into(), body);
    }
    let c = u.conn(ctx)?;
    ctx.send(c, &all)?;
    u.check(ctx, "three files, each exactly as sent", 3)
}

fn upload_body_bytewise(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    u.send(ctx, "bytewise.txt", &text(1500, 3), Write::BodyBytewise)
}

fn upload_sizes(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    for (i, n) in [0usize, 1, 1023, 1024, 1025, 100_000, 1 << 20]
        .into_iter()
        .enumerate()
    {
        u.send(ctx, &format!("size-{n}.txt"), &text(n, i), Write::Whole)?;
    }
    Ok(())
}

fn upload_cut(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    let body = text(100_000, 5);
    let bytes = Uploads::frame(ctx, "cut.txt", &body, &md5_hex(&body))?;
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &bytes[..bytes.len() - 50_000])?;
    thread::sleep(PAUSE);
    let _ = c.finish_sending();
    drop(c);
    let before = u.want.clone();
    let look = u.disk.settle(ctx, None, |_| false)?;
    u.conn = None;
    if look.files == before {
        return Ok(());
    }
    Err(fail(
        "no file left by the cut upload (the storage as it was)",
        super::super::disk::describe(&before, &look),
    ))
}

fn upload_names(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    // A long name first: a plain name the contract allows.
    let long = format!("{}.txt", "n".repeat(251));
    u.send(ctx, &long, &text(20, 1), Write::Whole)?;
    // Where an absolute name points: inside the sandbox where there is
    // one, else a directory of our own; made first, so a server that opens
    // the name as a path succeeds and is seen.
    let own = tempfile::tempdir().map_err(|e| CaseError::Harness(e.to_string()))?;
    let abs_dir = match &ctx.sandbox {
        Some(sb) => sb.join("abs"),
        None => own.path().join("abs"),
    };
    std::fs::create_dir_all(&abs_dir).map_err(|e| CaseError::Harness(e.to_string()))?;
    let up = format!("../escape-{}.txt", ctx.rng_tag());
    let abs = abs_dir.join("x.txt");
    u.disk.escapes = vec![u.disk.storage.join(&up), abs.clone()];
    for (i, name) in [up.clone(), abs.to_string_lossy().into_owned()]
        .into_iter()
        .enumerate()
    {
        let body = text(30, 10 + i);
        let bytes = Uploads::frame(ctx, &name, &body, &md5_hex(&body))?;
        let c = u.conn(ctx)?;
        ctx.send(c, &bytes)?;
        let before = u.want.clone();
        // Stored inside under some name, refused, or written outside: the
        // last fails at once, naming where it landed.
        let look = u
            .outcome(ctx, |s| {
                s.iter().any(|(p, c)| !before.contains_key(p) && c == &body)
            })
            .map_err(|e| e.context(&format!("the upload named {name:?}")))?;
        for (path, content) in look.files {
            if !before.contains_key(&path) && content != body {
                return Err(fail(
                    format!("the upload named {name:?} refused, or stored whole inside"),
                    format!(
                        "{} holds {} bytes of the {} sent",
                        path.display(),
                        content.len(),
                        body.len()
                    ),
                ));
            }
            u.want.insert(path, content);
        }
    }
    Ok(())
}

fn upload_digest_checked(ctx: &mut Ctx<'_>) -> CaseResult {
    if !ctx.dialect.digest_checked {
        return Err(CaseError::Unsupported(format!(
            "{}: the digest is sent but not checked (digest_checked = false)",
            ctx.dialect.summary()
        )));
    }
    let mut u = Uploads::start(ctx)?;
    let body = text(500, 2);
    let wrong = "0".repeat(32);
    let bytes = Uploads::frame(ctx, "digest.txt", &body, &wrong)?;
    let c = u.conn(ctx)?;
    ctx.send(c, &bytes)?;
    let before = u.want.clone();
    let look = u.outcome(ctx, |_| false)?;
    if look.files != before {
        return Err(fail(
            "nothing stored for a body whose digest differs",
            super::super::disk::describe(&before, &look),
        ));
    }
    u.send(ctx, "digest.txt", &body, Write::Whole)
}

fn upload_binary_body(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut u = Uploads::start(ctx)?;
    let mut body: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    body.extend_from_slice(&[0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xff, 0xfe, 0x00]);
    u.send(ctx, "binary.bin", &body, Write::Whole)
}

/// The echo of `frame` read and compared with what the dialect sends back.
fn expect_echo(ctx: &Ctx<'_>, c: &mut Client, frame: &[u8]) -> CaseResult {
    let d = &ctx.dialect;
    let want = codec::echoed(d, frame).ok_or_else(|| no_echo(d))?;
    let got = c
        .recv_raw(ctx.wait, |b| codec::frame_len(d, b))
        .map_err(|e| {
            fail(
                format!("the echo of a {}-byte frame", frame.len()),
                e.to_string(),
            )
        })?;
    if got == want {
        return Ok(());
    }
    let expected = format!(
        "the {} echo: {} bytes, {}",
        d.echo,
        want.len(),
        show(&want, 60)
    );
    // A server that reads the request as raw bytes sends our prefix back
    // inside its own frame.
    let width = usize::from(d.prefix.width);
    if got.len() > width && frame.len() > width && got[width..].starts_with(&frame[..width]) {
        return Err(fail(
            expected,
            format!(
                "{} bytes whose payload begins with the request's own {width}-byte prefix: {}",
                got.len(),
                show(&got[width..], 60)
            ),
        )
        .finding("not-framed", None));
    }
    let (why, named) = difference(&want, &got);
    let e = fail(expected, why);
    Err(match named {
        Some(("truncated", _)) => e.finding("split-body", None),
        _ => e,
    })
}

fn echo_frame(ctx: &Ctx<'_>, body: &[u8]) -> Result<Vec<u8>, CaseError> {
    codec::echo(&ctx.dialect, body).ok_or_else(|| no_echo(&ctx.dialect))
}

fn echo_split_every_byte(ctx: &mut Ctx<'_>) -> CaseResult {
    let frame = echo_frame(ctx, &text(20, 1))?;
    let head = frame.len() - 20;
    let mut c = ctx.connect()?;
    for at in 1..=head {
        if !ctx.dialect.many_frames() && at > 1 {
            c = ctx.connect()?;
        }
        write(ctx, &mut c, &frame, Write::At(at), 20)?;
        expect_echo(ctx, &mut c, &frame).map_err(|e| {
            split(ctx, at, e).context(&format!("split after byte {at} of {}", frame.len()))
        })?;
    }
    Ok(())
}

fn echoes_glued(ctx: &mut Ctx<'_>) -> CaseResult {
    if !ctx.dialect.echoes() {
        return Err(no_echo(&ctx.dialect));
    }
    if !ctx.dialect.many_frames() {
        return Err(one_frame_only(&ctx.dialect));
    }
    let frames: Vec<Vec<u8>> = [7usize, 1500, 3]
        .into_iter()
        .enumerate()
        .map(|(i, n)| echo_frame(ctx, &text(n, i)))
        .collect::<Result<_, _>>()?;
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &frames.concat())?;
    for (i, f) in frames.iter().enumerate() {
        expect_echo(ctx, &mut c, f).map_err(|e| e.context(&format!("frame {i} of 3")))?;
    }
    Ok(())
}

fn echo_body_bytewise(ctx: &mut Ctx<'_>) -> CaseResult {
    let frame = echo_frame(ctx, &text(1500, 4))?;
    let mut c = ctx.connect()?;
    write(ctx, &mut c, &frame, Write::BodyBytewise, 1500)?;
    expect_echo(ctx, &mut c, &frame)
}
