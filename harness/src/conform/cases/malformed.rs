//! Category 4, Malformed input: every error code, the close after fatal ones, and
//! nothing answered after a fatal error.

use std::time::Duration;

use serde_json::json;
use sockbench_wire::Endian;

use crate::conform::case::{Case, CaseResult, Ctx, describe, ensure, expect_code};

const BAD_HEADER: &str = "§4 bad_header: header is not an object; file_size missing, negative, fractional, or not a number; a known field of the wrong type. Reply, close.";
const BAD_JSON: &str = "§4 bad_json: header is not UTF-8 or not JSON. Reply, close.";

/// Defines a case function that sends `header` (exact bytes, prefix added)
/// and expects the fatal error `code` followed by the close.
macro_rules! fatal_header {
    ($($name:ident: $header:expr => $code:literal;)*) => {$(
        fn $name(ctx: &mut Ctx<'_>) -> CaseResult {
            let raw: &[u8] = $header;
            fatal(ctx, &ctx.frame_bytes(raw, b""), $code)
        }
    )*};
}

/// The category's cases.
pub fn cases() -> Vec<Case> {
    let mut all = lengths_json_and_sizes();
    all.extend(types_and_kept_errors());
    all
}

/// 4.1-4.13: bad lengths, bad JSON, headers that are not objects, bad sizes.
fn lengths_json_and_sizes() -> Vec<Case> {
    vec![
        Case::new(
            "4.1",
            "bad-length-zero",
            "header_len 0 is bad_length, then close.",
            "§4 bad_length: header_len is 0 or above --max-header. Reply, close.",
            bad_length_zero,
        ),
        Case::new(
            "4.2",
            "bad-length-above-max",
            "header_len of max_header + 1 is bad_length, then close.",
            "§4 bad_length: header_len above --max-header.",
            bad_length_above_max,
        ),
        Case::new(
            "4.3",
            "bad-length-huge",
            "header_len 0xFFFFFFFF is refused at once, without waiting for 4 GiB.",
            "§1 A server never allocates memory in proportion to a declared length; §4 bad_length.",
            bad_length_huge,
        ),
        Case::new(
            "4.4",
            "bad-json-not-json",
            "A header that is not JSON is bad_json.",
            BAD_JSON,
            bad_json_text,
        ),
        Case::new(
            "4.5",
            "bad-json-not-utf8",
            "A header that is not UTF-8 is bad_json.",
            BAD_JSON,
            bad_json_utf8,
        ),
        Case::new(
            "4.6",
            "bad-json-trailing",
            "A JSON object followed by garbage is bad_json.",
            BAD_JSON,
            bad_json_trailing,
        ),
        Case::new(
            "4.7",
            "bad-json-truncated",
            "A cut-off JSON object is bad_json.",
            BAD_JSON,
            bad_json_truncated,
        ),
        Case::new(
            "4.8",
            "bad-header-array",
            "A JSON array header is bad_header.",
            BAD_HEADER,
            bad_header_array,
        ),
        Case::new(
            "4.9",
            "bad-header-scalar",
            "A JSON number header is bad_header.",
            BAD_HEADER,
            bad_header_scalar,
        ),
        Case::new(
            "4.10",
            "bad-header-no-file-size",
            "A header without file_size is bad_header.",
            BAD_HEADER,
            bad_header_missing,
        ),
        Case::new(
            "4.11",
            "bad-header-negative",
            "file_size -1 is bad_header.",
            BAD_HEADER,
            bad_header_negative,
        ),
        Case::new(
            "4.12",
            "bad-header-fractional",
            "file_size 1.5 is bad_header.",
            BAD_HEADER,
            bad_header_fractional,
        ),
        Case::new(
            "4.13",
            "bad-header-size-string",
            "file_size \"3\" is bad_header.",
            BAD_HEADER,
            bad_header_string,
        ),
    ]
}

/// 4.14-4.26: known fields of the wrong type, then the errors that keep
/// the connection, the error shape, and the close after fatal errors.
fn types_and_kept_errors() -> Vec<Case> {
    vec![
        Case::new(
            "4.14",
            "bad-header-op-type",
            "op 7 is bad_header.",
            BAD_HEADER,
            bad_header_op,
        ),
        Case::new(
            "4.15",
            "bad-header-name-type",
            "file_name [\"a\"] is bad_header.",
            BAD_HEADER,
            bad_header_name,
        ),
        Case::new(
            "4.16",
            "bad-header-md5-type",
            "md5 123 is bad_header.",
            BAD_HEADER,
            bad_header_md5,
        ),
        Case::new(
            "4.17",
            "too-large",
            "file_size of max_body + 1 is too_large, then close.",
            "§4 too_large: file_size above --max-body. Reply, close.",
            too_large,
        )
        .setup(|s| s.max_body = Some(65_536)),
        Case::new(
            "4.18",
            "too-large-huge",
            "file_size 2^63 is refused at once, without waiting for the body.",
            "§1 a frame that declares 1 TiB is streamed, or refused, never buffered; §4 too_large.",
            too_large_huge,
        )
        .setup(|s| s.max_body = Some(65_536)),
        Case::new(
            "4.19",
            "unknown-op-keeps",
            "An unknown op drains its body, replies unknown_op and keeps the connection.",
            "§4 unknown_op: drain the body, reply, keep the connection.",
            unknown_op,
        ),
        Case::new(
            "4.20",
            "bad-md5-keeps",
            "A malformed md5 drains the body, replies bad_md5 and keeps the connection.",
            "§4 bad_md5: md5 is not 32 hex digits. Drain the body, reply, keep the connection.",
            bad_md5,
        ),
        Case::new(
            "4.21",
            "error-reply-shape",
            "Error replies carry status, error, message and file_size 0.",
            "§4 An error reply is a frame whose header is {\"status\":\"error\",\"error\":\"<code>\",\"message\":\"<human text>\",\"file_size\":0}.",
            error_shape,
        ),
        Case::new(
            "4.22",
            "error-carries-id",
            "A fatal error reply copies the id when the header could be read.",
            "§4 (plus id when the request had one and it could be read).",
            error_carries_id,
        ),
        Case::new(
            "4.23",
            "nothing-after-fatal",
            "A valid frame glued after a fatal one is not answered; the connection closes.",
            "§4 nothing sent after the fatal frame is answered.",
            nothing_after_fatal,
        ),
        Case::new(
            "4.24",
            "other-byte-order",
            "A big-endian prefix sent to a little-endian server is bad_length.",
            "§1 header_len := 4 bytes, unsigned 32-bit, LITTLE-endian by default.",
            other_byte_order,
        ),
        Case::new(
            "4.25",
            "null-is-wrong-type",
            "file_size null is bad_header.",
            "§1 null is a value of the wrong type for file_size, op, file_name and md5.",
            bad_header_null,
        ),
        Case::new(
            "4.26",
            "md5-wrong-length",
            "A 31-digit md5 is bad_md5.",
            "§4 bad_md5: md5 is not 32 hex digits.",
            md5_wrong_length,
        ),
    ]
}

/// Sends `bytes`, expects the error `code`, then the close.
fn fatal(ctx: &Ctx<'_>, bytes: &[u8], code: &str) -> CaseResult {
    let mut c = ctx.connect()?;
    ctx.send(&mut c, bytes)?;
    let r = ctx.recv(&mut c, &format!("a {code} error reply"))?;
    expect_code(&r, code)?;
    ctx.expect_close(&mut c)
}

fn bad_length_zero(ctx: &mut Ctx<'_>) -> CaseResult {
    fatal(ctx, &[0, 0, 0, 0, b'{', b'}'], "bad_length")
}

fn bad_length_above_max(ctx: &mut Ctx<'_>) -> CaseResult {
    let n = ctx.wire.max_header.saturating_add(1);
    let mut bytes = ctx.wire.endian.write_u32(n).to_vec();
    bytes.extend_from_slice(b"{\"file_size\":0");
    fatal(ctx, &bytes, "bad_length")
}

fn bad_length_huge(ctx: &mut Ctx<'_>) -> CaseResult {
    fatal(ctx, &[0xff; 4], "bad_length")
}

fatal_header! {
    bad_json_text: b"hello, server" => "bad_json";
    bad_json_utf8: b"{\"file_size\":0,\"x\":\"\xff\xfe\"}" => "bad_json";
    bad_json_trailing: b"{\"file_size\":0} {}" => "bad_json";
    bad_json_truncated: b"{\"file_size\":0" => "bad_json";
    bad_header_array: b"[\"file_size\",0]" => "bad_header";
    bad_header_scalar: b"42" => "bad_header";
    bad_header_missing: b"{\"op\":\"echo\"}" => "bad_header";
    bad_header_negative: b"{\"file_size\":-1}" => "bad_header";
    bad_header_fractional: b"{\"file_size\":1.5}" => "bad_header";
    bad_header_string: b"{\"file_size\":\"3\"}" => "bad_header";
    bad_header_op: b"{\"file_size\":0,\"op\":7}" => "bad_header";
    bad_header_name: b"{\"file_size\":0,\"file_name\":[\"a\"]}" => "bad_header";
    bad_header_md5: b"{\"file_size\":0,\"file_name\":\"m\",\"md5\":123}" => "bad_header";
    bad_header_null: b"{\"file_size\":null}" => "bad_header";
}

fn too_large(ctx: &mut Ctx<'_>) -> CaseResult {
    let n = ctx.wire.max_body.saturating_add(1);
    let raw = ctx.header(&json!({"file_size": n}));
    fatal(ctx, &ctx.frame_bytes(&raw, b"some"), "too_large")
}

fn too_large_huge(ctx: &mut Ctx<'_>) -> CaseResult {
    let raw = ctx.header(&json!({"file_size": 1u64 << 63}));
    fatal(ctx, &ctx.frame_bytes(&raw, b""), "too_large")
}

fn kept_after(ctx: &Ctx<'_>, header: serde_json::Value, body: &[u8], code: &str) -> CaseResult {
    let mut c = ctx.connect()?;
    // The error frame and a good one in one write: the body must be drained exactly.
    let mut bytes = ctx.frame_bytes(&ctx.header(&header), body);
    bytes.extend(ctx.frame_bytes(br#"{"file_size":3,"id":"after"}"#, b"yes"));
    ctx.send(&mut c, &bytes)?;
    expect_code(&ctx.recv(&mut c, &format!("a {code} reply"))?, code)?;
    let r = ctx.recv(&mut c, "the next request's echo on the same connection")?;
    ensure(
        r.header["id"] == "after" && r.body == b"yes",
        "the echo of the following frame",
        || describe(&r),
    )
}

fn unknown_op(ctx: &mut Ctx<'_>) -> CaseResult {
    kept_after(
        ctx,
        json!({"op": "shell", "file_size": 10, "cmd": "ls"}),
        b"0123456789",
        "unknown_op",
    )
}

fn bad_md5(ctx: &mut Ctx<'_>) -> CaseResult {
    kept_after(
        ctx,
        json!({"file_name": "m.txt", "md5": "zz".repeat(16), "file_size": 5}),
        b"abcde",
        "bad_md5",
    )
}

fn md5_wrong_length(ctx: &mut Ctx<'_>) -> CaseResult {
    kept_after(
        ctx,
        json!({"file_name": "m.txt", "md5": "a".repeat(31), "file_size": 1}),
        b"a",
        "bad_md5",
    )
}

fn error_shape(ctx: &mut Ctx<'_>) -> CaseResult {
    let check = |r: &crate::peer::client::Frame| -> CaseResult {
        ensure(
            r.header["status"] == "error"
                && r.header["error"].is_string()
                && r.header["file_size"] == 0,
            "status \"error\", a string error code and file_size 0",
            || describe(r),
        )?;
        ensure(
            r.header["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a non-empty message",
            || describe(r),
        )?;
        ensure(r.body.is_empty(), "no body", || describe(r))
    };
    let mut c = ctx.connect()?;
    check(&ctx.request(&mut c, &json!({"op": "nope", "file_size": 0}), b"")?)?;
    // One connection at a time, for servers that serve one at a time.
    drop(c);
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &ctx.frame_bytes(b"not json", b""))?;
    check(&ctx.recv(&mut c, "a bad_json reply")?)
}

fn error_carries_id(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    ctx.send(
        &mut c,
        &ctx.frame_bytes(br#"{"id":"fatal-1","file_size":"x"}"#, b""),
    )?;
    let r = ctx.recv(&mut c, "a bad_header reply")?;
    expect_code(&r, "bad_header")?;
    ensure(
        r.header["id"] == "fatal-1",
        "\"id\":\"fatal-1\" in the reply",
        || describe(&r),
    )
}

fn nothing_after_fatal(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut c = ctx.connect()?;
    let mut bytes = ctx.frame_bytes(b"{not json", b"");
    bytes.extend(ctx.frame_bytes(br#"{"file_size":2,"id":"ghost"}"#, b"no"));
    ctx.send(&mut c, &bytes)?;
    expect_code(&ctx.recv(&mut c, "a bad_json reply")?, "bad_json")?;
    ctx.expect_close(&mut c)
}

fn other_byte_order(ctx: &mut Ctx<'_>) -> CaseResult {
    if ctx.wire.endian != Endian::Little {
        return Err(crate::conform::case::CaseError::Unsupported(
            "the target is big-endian".into(),
        ));
    }
    let raw = br#"{"file_size":0}"#;
    let mut bytes = (raw.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(raw);
    let mut c = ctx.connect()?;
    ctx.send(&mut c, &bytes)?;
    let r = c.recv(Duration::from_secs(5));
    match r {
        Ok(r) => expect_code(&r, "bad_length").and_then(|()| ctx.expect_close(&mut c)),
        Err(e) => Err(crate::conform::case::fail(
            "a bad_length reply (0x0F000000 bytes declared)",
            e.to_string(),
        )),
    }
}
