//! The fast path: one pass over a header of the common shape, without
//! serde. It accepts a strict subset of JSON: one object whose keys and
//! string values have no escapes and no control characters, and whose values
//! are such strings, unsigned integers below 10^19, `true`, `false` or
//! `null`. On anything else (escapes, other numbers, nesting, any syntax
//! error) it returns `None` and the full parser decides, so it never has to
//! be right about an error, only about the inputs it accepts, where it must
//! find exactly what the full parser finds.

use super::{Found, Span, Text, Value};

/// Fills `found` with the header's known fields; `None` when the full
/// parser must decide (and `found` is then to be thrown away).
pub(super) fn scan(b: &[u8], found: &mut Found) -> Option<()> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key_end = string(b, i)?;
            let key = &b[i + 1..key_end - 1];
            i = ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
            let (value, end) = value(b, i)?;
            found.put(key, value, Span::new(i, end));
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (ws(b, i) == b.len()).then_some(())
}

#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The end (past the closing quote) of a string starting at `i` that has no
/// escape and no control character.
#[inline(always)]
fn string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = b[i + 1..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = i + 1 + len;
    (b[end] == b'"').then_some(end + 1)
}

/// A value starting at `i` and where it ends.
#[inline(always)]
fn value(b: &[u8], i: usize) -> Option<(Value, usize)> {
    let literal = |word: &[u8], kind| {
        b[i..]
            .starts_with(word)
            .then_some((Value::Other(kind), i + word.len()))
    };
    match *b.get(i)? {
        b'"' => {
            let end = string(b, i)?;
            let text = Text {
                token: Span::new(i, end),
                escaped: false,
            };
            Some((Value::Str(text), end))
        }
        b'0'..=b'9' => {
            let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            let end = i + digits;
            // A leading zero, a fraction or an exponent: the full parser's.
            if (digits > 1 && b[i] == b'0')
                || digits > 19
                || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
            {
                return None;
            }
            let n = b[i..end]
                .iter()
                .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
            Some((Value::UInt(n), end))
        }
        b't' => literal(b"true", "boolean"),
        b'f' => literal(b"false", "boolean"),
        b'n' => literal(b"null", "null"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_common_shape() {
        let mut f = Found::default();
        scan(
            br#" { "op":"echo", "file_size" : 64 ,"id":7,"x":null,"y":true } "#,
            &mut f,
        )
        .unwrap();
        assert_eq!(f.file_size, Some(Value::UInt(64)));
        assert_eq!(f.id, Some(Span::new(39, 40)));
        assert!(scan(b"{}", &mut Found::default()).is_some());
    }

    #[test]
    fn gives_up_on_everything_else() {
        for raw in [
            r#"{"file_size":1,}"#,
            r#"{"file_size":01}"#,
            r#"{"file_size":1.0}"#,
            r#"{"file_size":1e3}"#,
            r#"{"file_size":-1}"#,
            r#"{"file_size":12345678901234567890}"#,
            r#"{"file\u005fsize":1}"#,
            r#"{"file_size":1,"x":[1]}"#,
            r#"{"file_size":1,"x":{}}"#,
            r#"{"file_size":1,"x":"a\"b"}"#,
            "{\"file_size\":1,\"x\":\"\t\"}",
            r#"{"file_size":1,"x":truex}"#,
            r#"{"file_size":1,"x":tru}"#,
            r#"{"file_size":1} x"#,
            r#"{"file_size":1"#,
            r#"{"file_size" 1}"#,
            r#"[1]"#,
            "",
        ] {
            assert!(
                scan(raw.as_bytes(), &mut Found::default()).is_none(),
                "{raw}"
            );
        }
    }
}
