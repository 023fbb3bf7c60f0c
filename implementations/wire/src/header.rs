//! The JSON header of a frame: parsing, classification of bad headers, and
//! the fields the protocol knows.
//!
//! Parsing never fails on a type: every known field is read as "any JSON
//! value" and judged afterwards, so a header that is both ill-typed and not
//! JSON is always `bad_json` (the stream is not JSON at all), and one that is
//! JSON but ill-typed is always `bad_header`, whatever the field order.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{DecodeError, ErrorCode};

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
        match name {
            "echo" => Some(Op::Echo),
            "upload" => Some(Op::Upload),
            "stats" => Some(Op::Stats),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `op` field as the peer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpField {
    /// No `op` field.
    Missing,
    /// One of the protocol's operations.
    Known(Op),
    /// A string that names no operation.
    Unknown(String),
}

/// The fields of a header the protocol gives meaning to; the rest is ignored.
#[derive(Debug, Clone)]
pub struct Header {
    /// Body length in bytes.
    pub file_size: u64,
    /// The `op` field.
    pub op: OpField,
    /// The `file_name` field.
    pub file_name: Option<String>,
    /// The `md5` field, unvalidated (see [`parse_md5_hex`]).
    pub md5: Option<String>,
    /// The raw JSON of the `id` field, copied into replies.
    pub id: Option<Box<RawValue>>,
}

impl Header {
    /// Parses and classifies a header: `bad_json` for bytes that are not a
    /// UTF-8 JSON text, `bad_header` for JSON that breaks the field rules.
    pub fn parse(raw: &[u8]) -> Result<Header, DecodeError> {
        let text = std::str::from_utf8(raw).map_err(|e| {
            DecodeError::new(ErrorCode::BadJson, format!("header is not UTF-8: {e}"))
        })?;
        let top: Top<'_> = serde_json::from_str(text).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::BadHeader,
                _ => ErrorCode::BadJson,
            };
            DecodeError::new(code, format!("header is not JSON: {e}"))
        })?;
        let Top::Object(fields) = top else {
            return Err(DecodeError::new(
                ErrorCode::BadHeader,
                "header must be a JSON object",
            ));
        };
        fields.validate()
    }

    /// The requested operation: `op`, or when it is missing, `upload` if
    /// `file_name` is present and `echo` otherwise. `Err` carries an unknown name.
    pub fn resolved_op(&self) -> Result<Op, &str> {
        match &self.op {
            OpField::Known(op) => Ok(*op),
            OpField::Unknown(name) => Err(name),
            OpField::Missing if self.file_name.is_some() => Ok(Op::Upload),
            OpField::Missing => Ok(Op::Echo),
        }
    }
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

/// The top-level JSON value: an object's known fields, or something else.
enum Top<'de> {
    Object(Fields<'de>),
    NotObject,
}

/// Known fields as found, before their types are judged.
#[derive(Default)]
struct Fields<'de> {
    file_size: Option<Any<'de>>,
    op: Option<Any<'de>>,
    file_name: Option<Any<'de>>,
    md5: Option<Any<'de>>,
    id: Option<Box<RawValue>>,
    duplicate: Option<&'static str>,
}

/// Any JSON value, reduced to what the rules need to know about it.
enum Any<'de> {
    UInt(u64),
    NegInt,
    Float(f64),
    Str(Cow<'de, str>),
    Other(&'static str),
}

impl Any<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Any::UInt(_) | Any::NegInt | Any::Float(_) => "number",
            Any::Str(_) => "string",
            Any::Other(kind) => kind,
        }
    }
}

impl<'de> Fields<'de> {
    fn validate(self) -> Result<Header, DecodeError> {
        let id = self.id;
        let bad = |message: String| DecodeError::new(ErrorCode::BadHeader, message);
        let result = (|| {
            if let Some(name) = self.duplicate {
                return Err(bad(format!("field `{name}` appears twice")));
            }
            let file_size = match self.file_size {
                None => return Err(bad("file_size is missing".into())),
                Some(Any::UInt(n)) => n,
                Some(Any::NegInt) => return Err(bad("file_size is negative".into())),
                Some(Any::Float(f)) if f < 0.0 => {
                    return Err(bad(format!("file_size is negative ({f})")));
                }
                Some(Any::Float(f)) => {
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
                Some(Any::Str(s)) => match Op::from_name(&s) {
                    Some(op) => OpField::Known(op),
                    None => OpField::Unknown(s.into_owned()),
                },
                Some(other) => {
                    return Err(bad(format!("op must be a string, got a {}", other.kind())));
                }
            };
            let file_name =
                string_field("file_name", self.file_name).map_err(|e| bad(e.to_string()))?;
            let md5 = string_field("md5", self.md5).map_err(|e| bad(e.to_string()))?;
            Ok((file_size, op, file_name, md5))
        })();
        match result {
            Ok((file_size, op, file_name, md5)) => Ok(Header {
                file_size,
                op,
                file_name,
                md5,
                id,
            }),
            Err(e) => Err(e.with_id(id)),
        }
    }
}

/// A known field holding something other than a string.
#[derive(Debug, thiserror::Error)]
#[error("{field} must be a string, got a {got}")]
struct NotAString {
    field: &'static str,
    got: &'static str,
}

fn string_field(field: &'static str, value: Option<Any<'_>>) -> Result<Option<String>, NotAString> {
    match value {
        None => Ok(None),
        Some(Any::Str(s)) => Ok(Some(s.into_owned())),
        Some(other) => Err(NotAString {
            field,
            got: other.kind(),
        }),
    }
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

/// Generates the `visit_*` methods of a visitor whose answer for scalars is fixed.
macro_rules! scalar_visits {
    ($($method:ident($ty:ty) => $value:expr;)*) => {
        $(fn $method<E: de::Error>(self, _v: $ty) -> Result<Self::Value, E> {
            Ok($value)
        })*
    };
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    scalar_visits! {
        visit_bool(bool) => Top::NotObject;
        visit_i64(i64) => Top::NotObject;
        visit_u64(u64) => Top::NotObject;
        visit_f64(f64) => Top::NotObject;
        visit_str(&str) => Top::NotObject;
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = Fields::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let (slot, name) = match key.as_ref() {
                "file_size" => (&mut f.file_size, "file_size"),
                "op" => (&mut f.op, "op"),
                "file_name" => (&mut f.file_name, "file_name"),
                "md5" => (&mut f.md5, "md5"),
                "id" => {
                    let id = map.next_value::<Box<RawValue>>()?;
                    if f.id.replace(id).is_some() {
                        f.duplicate.get_or_insert("id");
                    }
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value::<Any<'de>>()?;
            if slot.replace(value).is_some() {
                f.duplicate.get_or_insert(name);
            }
        }
        Ok(Top::Object(f))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(Key)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Deserialize<'de> for Any<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Any<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalar_visits! {
        visit_bool(bool) => Any::Other("boolean");
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Any::UInt(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Any::NegInt, Any::UInt))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Any::Float(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Any::Other("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Any::Other("array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Any::Other("object"))
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
        let h = Header::parse(br#"{"file_size":1,"op":"nope"}"#).unwrap();
        assert_eq!(h.resolved_op(), Err("nope"));
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
