//! Category 3, Upload and MD5: streamed into a temporary file, checked, renamed
//! atomically; plain file names only; nothing partial is ever visible.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::peer::frames::md5_hex;
use serde_json::json;

use crate::conform::case::{
    Case, CaseError, CaseResult, Ctx, describe, ensure, expect_code, expect_ok, fail,
};
use crate::peer::client::Client;

/// The category's cases.
pub fn cases() -> Vec<Case> {
    const OK: &str = "§3 the file is flushed and renamed over <storage>/<file_name> atomically; the reply is {\"op\":\"upload\",\"status\":\"ok\",\"file_name\":…,\"bytes\":N,\"md5\":\"<hex>\",\"file_size\":0}.";
    const MISMATCH: &str = "§3 md5 given and different: the temporary file is removed and the reply is error md5_mismatch (carrying the computed md5). The old file, if any, is kept.";
    const PARTIAL: &str =
        "§3 A connection that ends mid-body leaves no file and no temporary file behind.";
    const NAME: &str = "§3 file_name must be a plain name: non-empty, at most 255 bytes, no / or \\, no NUL, not . or .. . Anything else is error bad_file_name and nothing is written outside the storage directory, ever.";
    vec![
        Case::new("3.1", "upload-ok-reply", "An upload with its MD5 gets the ok reply with every field right.", OK, upload_ok_reply),
        Case::new("3.2", "upload-ok-on-disk", "The stored file holds exactly the body.", OK, upload_ok_on_disk).storage(),
        Case::new("3.3", "implied-upload", "A header with file_name and no op is an upload.", "§1 op missing: \"upload\" when file_name is present.", implied_upload),
        Case::new("3.4", "upload-without-md5", "Without md5 the body is stored and its digest reported.", OK, upload_without_md5),
        Case::new("3.5", "md5-any-case", "An upper-case md5 is accepted.", "§1 md5: string, 32 hex digits (any case).", md5_any_case),
        Case::new("3.6", "md5-mismatch-reply", "A wrong md5 gets md5_mismatch carrying the computed digest.", MISMATCH, md5_mismatch_reply),
        Case::new("3.7", "md5-mismatch-keeps-old-file", "After md5_mismatch the old file is intact and no temporary file is left.", MISMATCH, md5_mismatch_keeps_old).storage(),
        Case::new("3.8", "md5-mismatch-keeps-connection", "md5_mismatch keeps the connection.", "§4 md5_mismatch: reply, keep the connection.", md5_mismatch_keeps_connection),
        Case::new("3.9", "upload-replaces", "A second upload of a name replaces the first.", OK, upload_replaces).storage(),
        Case::new("3.10", "truncated-upload-leaves-nothing", "A connection that ends (FIN) mid-body leaves no file and no temporary file.", PARTIAL, truncated_upload).storage(),
        Case::new("3.11", "reset-upload-leaves-nothing", "A connection reset (RST) mid-body leaves no file and no temporary file.", PARTIAL, reset_upload).storage(),
        Case::new("3.12", "name-dotdot-slash", "file_name \"../x\" is bad_file_name and nothing lands outside.", NAME, name_dotdot_slash),
        Case::new("3.13", "name-with-slash", "file_name \"a/b\" is bad_file_name.", NAME, name_slash),
        Case::new("3.14", "name-dotdot", "file_name \"..\" is bad_file_name.", NAME, name_dotdot),
        Case::new("3.15", "name-dot", "file_name \".\" is bad_file_name.", NAME, name_dot),
        Case::new("3.16", "name-nul", "A file_name with NUL is bad_file_name.", NAME, name_nul),
        Case::new("3.17", "name-backslash", "A file_name with a backslash is bad_file_name.", NAME, name_backslash),
        Case::new("3.18", "name-256-bytes", "A 256-byte file_name is bad_file_name.", NAME, name_256),
        Case::new("3.19", "name-empty", "An empty file_name is bad_file_name.", NAME, name_empty),
        Case::new("3.20", "name-absolute", "An absolute path as file_name is bad_file_name.", NAME, name_absolute),
        Case::new("3.21", "name-255-bytes", "A 255-byte file_name is accepted.", "§3 file_name: at most 255 bytes (bytes, not characters).", name_255),
        Case::new("3.22", "name-unicode", "A non-ASCII file_name is stored under that name.", "§3 file_name must be a plain name (any other UTF-8 is allowed).", name_unicode).storage(),
        Case::new("3.23", "empty-upload", "An upload of 0 bytes stores an empty file.", OK, empty_upload).storage(),
        Case::new("3.24", "atomic-replace", "While an upload is in progress, readers of the target see the old content, never a partial file.", "§3 A reader of <storage>/<file_name> sees the old content or the complete new content, never a partial file.", atomic_replace).storage(),
        Case::new("3.25", "concurrent-same-name", "Six concurrent uploads of one name leave one of them, complete.", "§3 Concurrent uploads of one name leave one of them, complete.", concurrent_same_name).storage().concurrent(),
        Case::new("3.26", "large-file-64-mib", "A 64 MiB upload with its MD5 is stored and its digest reported.", OK, large_file).serial().slow(),
        Case::new("3.27", "upload-needs-a-name", "\"op\":\"upload\" without file_name is bad_file_name.", "§3 \"op\":\"upload\" without file_name is bad_file_name.", upload_needs_name),
        Case::new("3.28", "symlink-not-followed", "A symbolic link already in storage is replaced, never followed.", "§3 a symbolic link already in the storage directory is replaced by the upload, never followed.", symlink_not_followed).storage(),
        Case::new("3.29", "name-limit-counts-bytes", "A file_name of 128 two-byte characters (256 bytes) is bad_file_name; 127 of them (254 bytes) are accepted.", "§3 file_name: at most 255 bytes (bytes, not characters).", name_limit_bytes),
    ]
}

fn upload(
    ctx: &Ctx<'_>,
    c: &mut Client,
    name: &str,
    body: &[u8],
    md5: Option<&str>,
) -> Result<crate::peer::client::Frame, CaseError> {
    let mut h = json!({"op": "upload", "file_name": name, "file_size": body.len()});
    if let Some(m) = md5 {
        h["md5"] = json!(m);
    }
    ctx.request(c, &h, body)
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn expect_file(dir: &Path, name: &str, want: &[u8]) -> CaseResult {
    match std::fs::read(dir.join(name)) {
        Ok(got) => ensure(
            got == want,
            format!("{name} to hold the {} uploaded bytes", want.len()),
            || format!("{name} holds {} bytes (md5 {})", got.len(), md5_hex(&got)),
        ),
        Err(e) => Err(fail(
            format!("{name} in the storage directory"),
            e.to_string(),
        )),
    }
}

/// Fails unless the directory holds `base` (what was there when the case
/// began: a shared server keeps earlier cases' files) plus exactly `want`.
fn expect_files(dir: &Path, base: &[String], want: &[&str]) -> CaseResult {
    let got = files(dir);
    ensure(
        got == with_base(base, want),
        format!("the storage directory to gain exactly {want:?}"),
        || {
            let new: Vec<&String> = got.iter().filter(|n| !base.contains(n)).collect();
            format!("it gained {new:?}")
        },
    )
}

fn with_base(base: &[String], want: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = base
        .iter()
        .cloned()
        .chain(want.iter().map(|s| (*s).to_owned()))
        .collect();
    all.sort();
    all.dedup();
    all
}

fn upload_ok_reply(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let body = b"the quick brown fox";
    let r = ctx.request(&mut c, &json!({"op": "upload", "file_name": "ok.txt", "file_size": body.len(), "md5": md5_hex(body), "id": "u1"}), body)?;
    let want = json!({"op": "upload", "status": "ok", "file_name": "ok.txt", "bytes": body.len(), "md5": md5_hex(body), "file_size": 0, "id": "u1"});
    for (k, v) in want.as_object().into_iter().flatten() {
        ensure(&r.header[k] == v, format!("\"{k}\":{v}"), || describe(&r))?;
    }
    ensure(r.body.is_empty(), "no body", || describe(&r))
}

fn upload_ok_on_disk(ctx: &mut Ctx<'_>) -> CaseResult {
    let base = files(ctx.storage()?);
    let mut c = ctx.connect()?;
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 256) as u8).collect();
    expect_ok(&upload(
        ctx,
        &mut c,
        "disk.bin",
        &body,
        Some(&md5_hex(&body)),
    )?)?;
    let dir = ctx.storage()?;
    expect_file(dir, "disk.bin", &body)?;
    expect_files(dir, &base, &["disk.bin"])
}

fn implied_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"file_name": "implied.txt", "file_size": 3}),
        b"abc",
    )?;
    expect_ok(&r)?;
    ensure(
        r.header["op"] == "upload" && r.body.is_empty(),
        "an upload reply, not an echo",
        || describe(&r),
    )?;
    if let Some(dir) = &ctx.storage {
        expect_file(dir, "implied.txt", b"abc")?;
    }
    Ok(())
}

fn upload_without_md5(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = upload(ctx, &mut c, "nomd5.txt", b"no digest given", None)?;
    expect_ok(&r)?;
    ensure(
        r.header["md5"] == md5_hex(b"no digest given"),
        "the computed md5",
        || describe(&r),
    )
}

fn md5_any_case(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = upload(
        ctx,
        &mut c,
        "upper.txt",
        b"abc",
        Some(&md5_hex(b"abc").to_uppercase()),
    )?;
    expect_ok(&r)
}

fn md5_mismatch_reply(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = upload(ctx, &mut c, "mm.txt", b"actual", Some(&md5_hex(b"claimed")))?;
    expect_code(&r, "md5_mismatch")?;
    ensure(
        r.header["md5"] == md5_hex(b"actual"),
        format!("\"md5\":\"{}\" (the computed digest)", md5_hex(b"actual")),
        || describe(&r),
    )
}

fn md5_mismatch_keeps_old(ctx: &mut Ctx<'_>) -> CaseResult {
    let base = files(ctx.storage()?);
    let mut c = ctx.connect()?;
    expect_ok(&upload(ctx, &mut c, "keep.txt", b"old content", None)?)?;
    expect_code(
        &upload(
            ctx,
            &mut c,
            "keep.txt",
            b"new content",
            Some(&md5_hex(b"other")),
        )?,
        "md5_mismatch",
    )?;
    let dir = ctx.storage()?;
    expect_file(dir, "keep.txt", b"old content")?;
    expect_files(dir, &base, &["keep.txt"])
}

fn md5_mismatch_keeps_connection(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    expect_code(
        &upload(ctx, &mut c, "k.txt", b"abc", Some(&"0".repeat(32)))?,
        "md5_mismatch",
    )?;
    let r = ctx.request(&mut c, &json!({"file_size": 2}), b"on")?;
    ensure(
        r.body == b"on",
        "the next request answered on the same connection",
        || describe(&r),
    )
}

fn upload_replaces(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    expect_ok(&upload(ctx, &mut c, "r.txt", b"first version", None)?)?;
    expect_ok(&upload(ctx, &mut c, "r.txt", b"second", None)?)?;
    expect_file(ctx.storage()?, "r.txt", b"second")
}

/// Waits until the storage directory changes from `before` (the server has
/// started writing), or a second passes.
fn wait_for_progress(dir: &Path, before: &[(String, u64)]) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && listing(dir) == before {
        thread::sleep(Duration::from_millis(5));
    }
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    files(dir)
        .into_iter()
        .map(|n| {
            let len = std::fs::symlink_metadata(dir.join(&n))
                .map(|m| m.len())
                .unwrap_or(0);
            (n, len)
        })
        .collect()
}

/// Waits until the storage directory is `want` again, or the wait ends.
fn expect_files_eventually(
    ctx: &Ctx<'_>,
    dir: &Path,
    base: &[String],
    want: &[&str],
) -> CaseResult {
    let deadline = Instant::now() + ctx.wait;
    while Instant::now() < deadline && files(dir) != with_base(base, want) {
        thread::sleep(Duration::from_millis(10));
    }
    expect_files(dir, base, want)
}

fn cut_upload(ctx: &mut Ctx<'_>, reset: bool) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    let base = files(&dir);
    let mut c = ctx.connect()?;
    let body = vec![0x5au8; 300_000];
    let bytes = ctx.frame_bytes(
        &ctx.header(&json!({"file_name": "cut.bin", "file_size": body.len()})),
        &body,
    );
    let before = listing(&dir);
    ctx.send(&mut c, &bytes[..150_000])?;
    wait_for_progress(&dir, &before);
    if reset {
        c.reset();
    } else {
        c.finish_sending()
            .map_err(|e| fail("a half-close", e.to_string()))?;
        ctx.expect_close(&mut c)?;
    }
    expect_files_eventually(ctx, &dir, &base, &[])
}

fn truncated_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    cut_upload(ctx, false)
}

fn reset_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    cut_upload(ctx, true)
}

fn bad_name(ctx: &Ctx<'_>, name: &str) -> CaseResult {
    let base = ctx.storage.as_deref().map(files).unwrap_or_default();
    let outside_before = ctx
        .storage
        .as_deref()
        .and_then(Path::parent)
        .map(files)
        .unwrap_or_default();
    let mut c = ctx.connect()?;
    let r = ctx.request(
        &mut c,
        &json!({"op": "upload", "file_name": name, "file_size": 4, "id": "n"}),
        b"evil",
    )?;
    expect_code(&r, "bad_file_name")?;
    if let Some(dir) = &ctx.storage {
        expect_files(dir, &base, &[])?;
        let outside = dir.parent().map(files).unwrap_or_default();
        ensure(
            outside == outside_before,
            "nothing written next to the storage directory",
            || format!("{outside:?} where there was {outside_before:?}"),
        )?;
    }
    // Drained, not fatal: the connection goes on.
    let r = ctx.request(&mut c, &json!({"file_size": 1}), b"!")?;
    ensure(
        r.body == b"!",
        "the next request answered on the same connection",
        || describe(&r),
    )
}

fn name_dotdot_slash(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "../x")
}

fn name_slash(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "a/b")
}

fn name_dotdot(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "..")
}

fn name_dot(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, ".")
}

fn name_nul(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "a\0b")
}

fn name_backslash(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "a\\b")
}

fn name_256(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, &"n".repeat(256))
}

fn name_empty(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, "")
}

fn name_absolute(ctx: &mut Ctx<'_>) -> CaseResult {
    // Inside the case's own directory, so a server that joins paths writes
    // nowhere it should not.
    let name = match ctx.storage.as_deref().and_then(Path::parent) {
        Some(case_dir) => case_dir.join("absolute-x").display().to_string(),
        None => "/nonexistent-sockbench-dir/x".to_owned(),
    };
    bad_name(ctx, &name)
}

fn name_255(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let name = "n".repeat(255);
    expect_ok(&upload(ctx, &mut c, &name, b"long", None)?)?;
    if let Some(dir) = &ctx.storage {
        expect_file(dir, &name, b"long")?;
    }
    Ok(())
}

fn name_unicode(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let name = "caf\u{e9} \u{65e5}\u{672c}.txt";
    expect_ok(&upload(ctx, &mut c, name, b"utf8", None)?)?;
    expect_file(ctx.storage()?, name, b"utf8")
}

fn empty_upload(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = upload(ctx, &mut c, "empty.bin", b"", Some(&md5_hex(b"")))?;
    expect_ok(&r)?;
    ensure(r.header["bytes"] == 0, "\"bytes\":0", || describe(&r))?;
    expect_file(ctx.storage()?, "empty.bin", b"")
}

fn atomic_replace(ctx: &mut Ctx<'_>) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    let base = files(&dir);
    let mut c = ctx.connect()?;
    let old = vec![b'o'; 100_000];
    expect_ok(&upload(ctx, &mut c, "atomic.bin", &old, None)?)?;
    let new = vec![b'n'; 400_000];
    let bytes = ctx.frame_bytes(
        &ctx.header(&json!({"file_name": "atomic.bin", "file_size": new.len()})),
        &new,
    );
    let before = listing(&dir);
    ctx.send(&mut c, &bytes[..200_000])?;
    wait_for_progress(&dir, &before);
    let seen = std::fs::read(dir.join("atomic.bin")).unwrap_or_default();
    ensure(
        seen == old,
        "the old content while the new one is half sent",
        || {
            format!(
                "a reader saw {} bytes ({}…)",
                seen.len(),
                String::from_utf8_lossy(&seen[..seen.len().min(8)])
            )
        },
    )?;
    ctx.send(&mut c, &bytes[200_000..])?;
    expect_ok(&ctx.recv(&mut c, "the upload reply")?)?;
    expect_file(&dir, "atomic.bin", &new)?;
    expect_files(&dir, &base, &["atomic.bin"])
}

fn concurrent_same_name(ctx: &mut Ctx<'_>) -> CaseResult {
    let base = files(ctx.storage()?);
    let contents: Vec<Vec<u8>> = (0..6u8)
        .map(|i| vec![b'a' + i; 300_000 + usize::from(i)])
        .collect();
    let mut conns = Vec::new();
    for data in &contents {
        let mut c = ctx.connect()?;
        let bytes = ctx.frame_bytes(
            &ctx.header(&json!({"file_name": "same.bin", "file_size": data.len()})),
            data,
        );
        // Everything but the last byte now; the last bytes all together below.
        ctx.send(&mut c, &bytes[..bytes.len() - 1])?;
        conns.push((c, bytes));
    }
    for (c, bytes) in conns.iter_mut() {
        ctx.send(c, &bytes[bytes.len() - 1..])?;
    }
    for (i, (c, _)) in conns.iter_mut().enumerate() {
        expect_ok(&ctx.recv(c, &format!("the reply to upload {i}"))?)?;
    }
    let dir = ctx.storage()?;
    let got = std::fs::read(dir.join("same.bin")).unwrap_or_default();
    ensure(
        contents.contains(&got),
        "same.bin to be one of the six uploads, complete",
        || format!("it holds {} bytes", got.len()),
    )?;
    expect_files(dir, &base, &["same.bin"])
}

fn large_file(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let body: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 24) as u8)
        .collect();
    let digest = md5_hex(&body);
    c.send(
        &json!({"file_name": "large.bin", "file_size": body.len(), "md5": digest}),
        &body,
    )
    .map_err(|e| fail("the server to read 64 MiB", e.to_string()))?;
    let r = c
        .recv(Duration::from_secs(60))
        .map_err(|e| fail("the upload reply", e.to_string()))?;
    expect_ok(&r)?;
    ensure(
        r.header["md5"] == digest.as_str() && r.header["bytes"] == body.len(),
        format!("md5 {digest} and 64 MiB"),
        || describe(&r),
    )?;
    if let Some(dir) = &ctx.storage {
        let on_disk = std::fs::read(dir.join("large.bin"))
            .map_err(|e| fail("large.bin on disk", e.to_string()))?;
        ensure(
            md5_hex(&on_disk) == digest,
            "the file on disk to have the same md5",
            || format!("{} bytes, md5 {}", on_disk.len(), md5_hex(&on_disk)),
        )?;
    }
    Ok(())
}

fn upload_needs_name(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let r = ctx.request(&mut c, &json!({"op": "upload", "file_size": 2}), b"no")?;
    expect_code(&r, "bad_file_name")
}

fn symlink_not_followed(ctx: &mut Ctx<'_>) -> CaseResult {
    let dir = ctx.storage()?.to_owned();
    let outside = dir
        .parent()
        .ok_or_else(|| CaseError::Harness("storage has no parent".into()))?
        .join("victim.txt");
    std::fs::write(&outside, b"keep me").map_err(|e| CaseError::Harness(e.to_string()))?;
    std::os::unix::fs::symlink(&outside, dir.join("link.txt"))
        .map_err(|e| CaseError::Harness(e.to_string()))?;
    let mut c = ctx.connect()?;
    expect_ok(&upload(ctx, &mut c, "link.txt", b"overwrite?", None)?)?;
    let victim = std::fs::read(&outside).unwrap_or_default();
    ensure(
        victim == b"keep me",
        "the link's target outside storage untouched",
        || format!("it now holds {:?}", String::from_utf8_lossy(&victim)),
    )?;
    expect_file(&dir, "link.txt", b"overwrite?")
}

/// Found by `sockbench explore` (fixtures/broken/name_chars.py): a limit
/// counted in characters.
fn name_limit_bytes(ctx: &mut Ctx<'_>) -> CaseResult {
    bad_name(ctx, &"\u{e9}".repeat(128))?;
    let mut c = ctx.connect()?;
    let name = "\u{e9}".repeat(127);
    expect_ok(&upload(ctx, &mut c, &name, b"bytes", None)?)?;
    if let Some(dir) = &ctx.storage {
        expect_file(dir, &name, b"bytes")?;
    }
    Ok(())
}
