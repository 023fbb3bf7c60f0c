//! The JSON header of a frame: parsing, classification of bad headers, and
//! the fields the protocol knows.
//!
//! Parsing never fails on a type: every known field is read as "any JSON
//! value" and judged afterwards, so a header that is both ill-typed and not
//! JSON is always `bad_json` (the stream is not JSON at all), and one that is
//! JSON but ill-typed is always `bad_header`, whatever the field order.
//!
//! A parsed [`Header`] owns nothing: its strings and `id` are [`Span`]s of
//! the raw header, so decoding a frame allocates nothing. Two parsers find
//! the fields. [`fast`] scans the common shape in one pass (strings without
//! escapes, unsigned integers, literals) and gives up on anything else;
//! [`full`] (serde_json) then decides, and it alone ever reports a syntax
//! error. Both hand the same [`Found`] to one judge, [`Found::judge`], so the
//! rules and error codes have one owner whichever parser ran.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use serde_json::value::RawValue;

use crate::error::{DecodeError, ErrorCode};

mod fast;
mod full;

/// An operation the protocol defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reply with the request frame itself.
    Echo,
    /// Store the body as `file_name`.
    Upload,
    /// Reply with the server's counters.
    Stats,
}

impl Op {
    /// The name used in the `op` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Echo => "echo",
            Op::Upload => "upload",
            Op::Stats => "stats",
        }
    }

    /// The operation a name denotes, if any.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::from_bytes(name.as_bytes())
    }

    fn from_bytes(name: &[u8]) -> Option<Op> {
        match name {
            b"echo" => Some(Op::Echo),
            b"upload" => Some(Op::Upload),
            b"stats" => Some(Op::Stats),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A byte range of the raw header, never empty (a JSON value has a byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    /// Non-zero, so that an `Option<Span>` needs no tag of its own.
    end: NonZeroU32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Headers are at most u32::MAX bytes (the prefix is a u32).
        Span {
            start: start as u32,
            end: NonZeroU32::new(end as u32).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// The bytes of `raw` this span covers (empty if `raw` is not the
    /// header it was parsed from and is too short).
    pub fn of<'r>(&self, raw: &'r [u8]) -> &'r [u8] {
        raw.get(self.start as usize..self.end.get() as usize)
            .unwrap_or_default()
    }

    /// The JSON value at this span, borrowed from `raw`.
    pub fn raw_value<'r>(&self, raw: &'r [u8]) -> Option<&'r RawValue> {
        serde_json::from_slice(self.of(raw)).ok()
    }

    /// The JSON value at this span, owned (for an error that outlives `raw`).
    pub fn to_raw_value(&self, raw: &[u8]) -> Option<Box<RawValue>> {
        self.raw_value(raw).map(RawValue::to_owned)
    }
}

/// A JSON string of the header: its token (quotes included) and whether it
/// has escapes to undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    token: Span,
    escaped: bool,
}

impl Text {
    /// The string's value: borrowed from `raw` unless it had escapes.
    pub fn get<'r>(&self, raw: &'r [u8]) -> Cow<'r, str> {
        match self.unescaped(raw) {
            Some(inner) => String::from_utf8_lossy(inner),
            // The parser already decoded it once, so this cannot fail on the
            // header it came from.
            None => Cow::Owned(serde_json::from_slice(self.token.of(raw)).unwrap_or_default()),
        }
    }

    /// The string's bytes, when it has no escapes.
    fn unescaped<'r>(&self, raw: &'r [u8]) -> Option<&'r [u8]> {
        let token = self.token.of(raw);
        (!self.escaped).then(|| {
            token
                .get(1..token.len().saturating_sub(1))
                .unwrap_or_default()
        })
    }
}

/// The `op` field as the peer wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpField {
    /// No `op` field.
    Missing,
    /// One of the protocol's operations.
    Known(Op),
    /// A string that names no operation.
    Unknown(Text),
}

/// The fields of a header the protocol gives meaning to; the rest is
/// ignored. Strings and the id are spans of the raw header it was parsed
/// from, which the accessors take back.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Body length in bytes.
    pub file_size: u64,
    /// The `op` field.
    pub op: OpField,
    /// The `file_name` field.
    pub file_name: Option<Text>,
    /// The `md5` field, unvalidated (see [`parse_md5_hex`]).
    pub md5: Option<Text>,
    /// The raw JSON of the `id` field, copied into replies.
    pub id: Option<Span>,
}

impl Header {
    /// Parses and classifies a header: `bad_json` for bytes that are not a
    /// UTF-8 JSON text, `bad_header` for JSON that breaks the field rules.
    #[inline]
    pub fn parse(raw: &[u8]) -> Result<Header, DecodeError> {
        // ASCII is UTF-8, and `is_ascii` checks a word at a time.
        if !raw.is_ascii() {
            utf8(raw)?;
        }
        let mut found = Found::default();
        match fast::scan(raw, &mut found) {
            Some(()) => found.judge(raw),
            None => full::parse(utf8(raw)?)?.judge(raw),
        }
    }

    /// [`Header::parse`] without the fast path: serde_json alone. The two
    /// must agree on every input (the property tests and the fuzz target
    /// check it).
    #[doc(hidden)]
    pub fn parse_full(raw: &[u8]) -> Result<Header, DecodeError> {
        full::parse(utf8(raw)?)?.judge(raw)
    }

    /// The requested operation: `op`, or when it is missing, `upload` if
    /// `file_name` is present and `echo` otherwise. `Err` is an unknown name.
    pub fn resolved_op(&self) -> Result<Op, Text> {
        match self.op {
            OpField::Known(op) => Ok(op),
            OpField::Unknown(name) => Err(name),
            OpField::Missing if self.file_name.is_some() => Ok(Op::Upload),
            OpField::Missing => Ok(Op::Echo),
        }
    }

    /// The `id` field's JSON, borrowed from `raw`.
    pub fn id<'r>(&self, raw: &'r [u8]) -> Option<&'r RawValue> {
        self.id?.raw_value(raw)
    }
}

fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw)
        .map_err(|e| DecodeError::new(ErrorCode::BadJson, format!("header is not UTF-8: {e}")))
}

/// Parses an `md5` field: exactly 32 hex digits, either case.
pub fn parse_md5_hex(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// Formats a digest as 32 lowercase hex digits.
pub fn md5_hex(digest: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in digest {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Known fields as a parser found them, before their types are judged.
#[derive(Default)]
struct Found {
    file_size: Option<Value>,
    op: Option<Value>,
    file_name: Option<Value>,
    md5: Option<Value>,
    id: Option<Span>,
    duplicate: Option<&'static str>,
}

/// A JSON value, reduced to what the rules need to know about it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    UInt(u64),
    NegInt,
    Float(f64),
    Str(Text),
    Other(&'static str),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::UInt(_) | Value::NegInt | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Other(kind) => kind,
        }
    }
}

impl Found {
    /// Records a known field, noting the first one seen twice.
    #[inline]
    fn put(&mut self, key: &[u8], value: Value, span: Span) {
        // By length first: each candidate is then one fixed-size compare.
        let (slot, name) = match key.len() {
            9 if key == b"file_size" => (&mut self.file_size, "file_size"),
            2 if key == b"op" => (&mut self.op, "op"),
            9 if key == b"file_name" => (&mut self.file_name, "file_name"),
            3 if key == b"md5" => (&mut self.md5, "md5"),
            2 if key == b"id" => {
                if self.id.replace(span).is_some() {
                    self.duplicate.get_or_insert("id");
                }
                return;
            }
            _ => return,
        };
        if slot.replace(value).is_some() {
            self.duplicate.get_or_insert(name);
        }
    }

    /// Applies the field rules: `bad_header`, with the id, when one is broken.
    #[inline]
    fn judge(&self, raw: &[u8]) -> Result<Header, DecodeError> {
        // Every field well typed, none twice: the header of nearly every frame.
        let text = |v: Option<Value>| match v {
            None => Some(None),
            Some(Value::Str(t)) => Some(Some(t)),
            Some(_) => None,
        };
        if let (None, Some(Value::UInt(file_size)), Some(file_name), Some(md5)) = (
            self.duplicate,
            self.file_size,
            text(self.file_name),
            text(self.md5),
        ) {
            let op = match self.op {
                None => Some(OpField::Missing),
                Some(Value::Str(s)) => Some(match s.unescaped(raw).and_then(Op::from_bytes) {
                    Some(op) => OpField::Known(op),
                    None => match Op::from_name(&s.get(raw)) {
                        Some(op) => OpField::Known(op),
                        None => OpField::Unknown(s),
                    },
                }),
                Some(_) => None,
            };
            if let Some(op) = op {
                return Ok(Header {
                    file_size,
                    op,
                    file_name,
                    md5,
                    id: self.id,
                });
            }
        }
        self.judge_broken(raw)
    }

    /// [`Found::judge`] for a header that breaks a rule: which one, and the error.
    #[cold]
    fn judge_broken(&self, raw: &[u8]) -> Result<Header, DecodeError> {
        let id = self.id;
        let bad = |message: String| DecodeError::new(ErrorCode::BadHeader, message);
        let result = (|| {
            if let Some(name) = self.duplicate {
                return Err(bad(format!("field `{name}` appears twice")));
            }
            let file_size = match self.file_size {
                None => return Err(bad("file_size is missing".into())),
                Some(Value::UInt(n)) => n,
                Some(Value::NegInt) => return Err(bad("file_size is negative".into())),
                Some(Value::Float(f)) if f < 0.0 => {
                    return Err(bad(format!("file_size is negative ({f})")));
                }
                Some(Value::Float(f)) => {
                    return Err(bad(format!(
                        "file_size must be an integer in 0..2^64, got {f}"
                    )));
                }
                Some(other) => {
                    return Err(bad(format!(
                        "file_size must be a number, got a {}",
                        other.kind()
                    )));
                }
            };
            let op = match self.op {
                None => OpField::Missing,
                Some(Value::Str(s)) => match s
                    .unescaped(raw)
                    .map_or_else(|| Op::from_name(&s.get(raw)), Op::from_bytes)
                {
                    Some(op) => OpField::Known(op),
                    None => OpField::Unknown(s),
                },
                Some(other) => {
                    return Err(bad(format!("op must be a string, got a {}", other.kind())));
                }
            };
            let file_name = string_field("file_name", self.file_name)?;
            let md5 = string_field("md5", self.md5)?;
            Ok(Header {
                file_size,
                op,
                file_name,
                md5,
                id,
            })
        })();
        result.map_err(|e| e.with_id(id.and_then(|s| s.to_raw_value(raw))))
    }
}

fn string_field(field: &'static str, value: Option<Value>) -> Result<Option<Text>, DecodeError> {
    match value {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => Err(DecodeError::new(
            ErrorCode::BadHeader,
            format!("{field} must be a string, got a {}", other.kind()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> ErrorCode {
        Header::parse(raw.as_bytes()).unwrap_err().code
    }

    #[test]
    fn op_is_implied_by_file_name() {
        let h = Header::parse(br#"{"file_size":1,"file_name":"a"}"#).unwrap();
        assert_eq!(h.resolved_op(), Ok(Op::Upload));
        let h = Header::parse(br#"{"file_size":1}"#).unwrap();
        assert_eq!(h.resolved_op(), Ok(Op::Echo));
        let raw = br#"{"file_size":1,"op":"nope"}"#;
        let h = Header::parse(raw).unwrap();
        assert_eq!(h.resolved_op().map_err(|t| t.get(raw)), Err("nope".into()));
    }

    #[test]
    fn fields_are_spans_of_the_raw_header() {
        for raw in [
            &br#"{"op":"upload","file_name":"a b.txt","md5":"00","file_size":3,"id":[1,"x"]}"#[..],
            br#"{"op":"upload","file_name":"a b.txt","md5":"00","file_size":3,"id":[1,"x"]}"#,
        ] {
            for h in [
                Header::parse(raw).unwrap(),
                Header::parse_full(raw).unwrap(),
            ] {
                assert_eq!(h.file_name.unwrap().get(raw), "a b.txt");
                assert_eq!(h.md5.unwrap().get(raw), "00");
                assert_eq!(h.id(raw).unwrap().get(), r#"[1,"x"]"#);
                assert_eq!(h.resolved_op(), Ok(Op::Upload));
            }
        }
    }

    #[test]
    fn a_lone_surrogate_is_bad_json_in_a_known_field_only() {
        assert_eq!(code(r#"{"file_size":1,"op":"\ud800"}"#), ErrorCode::BadJson);
        assert!(Header::parse(br#"{"file_size":1,"x":"\ud800"}"#).is_ok());
    }

    #[test]
    fn type_errors_are_bad_header_and_syntax_errors_win() {
        assert_eq!(code(r#"{"file_size":"3"}"#), ErrorCode::BadHeader);
        assert_eq!(code(r#"{"file_size":1.5}"#), ErrorCode::BadHeader);
        assert_eq!(code(r#"{"file_size":-1}"#), ErrorCode::BadHeader);
        assert_eq!(
            code(r#"{"file_size":18446744073709551616}"#),
            ErrorCode::BadHeader
        );
        assert_eq!(code(r#"{"file_size":1,"op":7}"#), ErrorCode::BadHeader);
        assert_eq!(
            code(r#"{"file_size":1,"file_size":2}"#),
            ErrorCode::BadHeader
        );
        assert_eq!(code(r#"[1,2]"#), ErrorCode::BadHeader);
        // Ill-typed *and* truncated: the stream is not JSON, whatever came first.
        assert_eq!(code(r#"{"file_size":"3","#), ErrorCode::BadJson);
        assert_eq!(code("{\"file_size\":1} x"), ErrorCode::BadJson);
    }

    #[test]
    fn escaped_keys_are_the_same_key() {
        let h = Header::parse(br#"{"file\u005fsize":9}"#).unwrap();
        assert_eq!(h.file_size, 9);
    }

    #[test]
    fn bad_header_keeps_the_id() {
        let e = Header::parse(br#"{"id":[1,"x"],"file_size":true}"#).unwrap_err();
        assert_eq!(e.id.unwrap().get(), r#"[1,"x"]"#);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let raw = format!("{{\"file_size\":1,\"x\":{}}}", "[".repeat(60_000));
        assert_eq!(code(&raw), ErrorCode::BadJson);
    }

    #[test]
    fn md5_hex_round_trip() {
        let d = parse_md5_hex("900150983CD24FB0D6963F7D28E17F72").unwrap();
        assert_eq!(md5_hex(&d), "900150983cd24fb0d6963f7d28e17f72");
        assert!(parse_md5_hex("900150983cd24fb0d6963f7d28e17f7").is_none());
        assert!(parse_md5_hex("900150983cd24fb0d6963f7d28e17fzz").is_none());
        assert!(parse_md5_hex("é00150983cd24fb0d6963f7d28e17f7").is_none());
    }
}
