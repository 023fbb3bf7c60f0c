//! The complete parser: serde_json decides every input the fast path gives
//! up on, and it alone reports syntax errors (`bad_json`).
//!
//! Known fields are read as borrowed [`RawValue`]s, so their spans are exact
//! whatever their type, and classified afterwards: a field's type never
//! stops the parse, which is what lets a syntax error anywhere win over it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Found, Span, Text, Value};
use crate::error::{DecodeError, ErrorCode};

/// Parses `text` (the whole header) into its known fields.
pub(super) fn parse(text: &str) -> Result<Found, DecodeError> {
    let syntax = |e: serde_json::Error| {
        let code = match e.classify() {
            serde_json::error::Category::Data => ErrorCode::BadHeader,
            _ => ErrorCode::BadJson,
        };
        DecodeError::new(code, format!("header is not JSON: {e}"))
    };
    let Top::Object(fields) = serde_json::from_str::<Top<'_>>(text).map_err(syntax)? else {
        return Err(DecodeError::new(
            ErrorCode::BadHeader,
            "header must be a JSON object",
        ));
    };
    let mut found = Found::default();
    for (key, raw) in fields {
        let span = span_in(text, raw);
        let value = classify(raw, span).map_err(syntax)?;
        found.put(key.as_bytes(), value, span);
    }
    Ok(found)
}

fn span_in(text: &str, raw: &RawValue) -> Span {
    // `raw` borrows from `text`: its offset is the distance between the two.
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    Span::new(start, start + raw.get().len())
}

/// What a known field's JSON is. A string with escapes is decoded once here
/// so that a lone surrogate is the syntax error it is for serde_json.
fn classify(raw: &RawValue, span: Span) -> Result<Value, serde_json::Error> {
    let json = raw.get();
    Ok(match json.as_bytes().first() {
        Some(b'"') => {
            let escaped = json.contains('\\');
            if escaped {
                serde_json::from_str::<String>(json)?;
            }
            Value::Str(Text {
                token: span,
                escaped,
            })
        }
        Some(b't' | b'f') => Value::Other("boolean"),
        Some(b'n') => Value::Other("null"),
        Some(b'[') => Value::Other("array"),
        Some(b'{') => Value::Other("object"),
        _ => serde_json::from_str::<Number>(json)?.0,
    })
}

/// The top-level JSON value: an object's known fields, or something else.
enum Top<'de> {
    Object(Vec<(Cow<'de, str>, &'de RawValue)>),
    NotObject,
}

const KNOWN: [&str; 5] = ["file_size", "op", "file_name", "md5", "id"];

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if KNOWN.contains(&key.as_ref()) {
                fields.push((key, map.next_value::<&'de RawValue>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Top::Object(fields))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor).map(Key)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
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

/// A JSON number as the rules see it.
struct Number(Value);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor).map(Number)
    }
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Value::NegInt, Value::UInt))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Float(v))
    }
}
