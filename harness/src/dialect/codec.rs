//! Requests written in a dialect, and its replies read: sans-IO, bytes in
//! and bytes out, so conform's cases and `learn`'s inference share it.

use serde_json::{Map, Value};

use super::{Counts, Dialect, Reply};

/// The prefix for a length of `n` bytes.
pub fn prefix(d: &Dialect, n: u64) -> Vec<u8> {
    match (d.prefix.width, d.prefix.order) {
        (8, super::Order::Little) => n.to_le_bytes().to_vec(),
        (8, super::Order::Big) => n.to_be_bytes().to_vec(),
        (_, super::Order::Little) => (n as u32).to_le_bytes().to_vec(),
        (_, super::Order::Big) => (n as u32).to_be_bytes().to_vec(),
    }
}

/// Reads a prefix at the start of `buf`: `None` until it is whole; an
/// error for a negative length in a signed dialect.
pub fn read_prefix(d: &Dialect, buf: &[u8]) -> Option<Result<u64, String>> {
    let w = usize::from(d.prefix.width);
    let bytes = buf.get(..w)?;
    let v = match (w, d.prefix.order) {
        (8, super::Order::Little) => u64::from_le_bytes(bytes.try_into().ok()?),
        (8, super::Order::Big) => u64::from_be_bytes(bytes.try_into().ok()?),
        (_, super::Order::Little) => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
        (_, super::Order::Big) => u64::from(u32::from_be_bytes(bytes.try_into().ok()?)),
    };
    let negative = d.prefix.signed && v >> (w * 8 - 1) & 1 == 1;
    Some(if negative {
        Err(format!(
            "a negative {w}-byte length ({})",
            crate::peer::wirelog::hex(bytes)
        ))
    } else {
        Ok(v)
    })
}

/// A header object with the dialect's names for these roles, in the order
/// the lesson's clients write them: operation, name, size, digest.
fn header(
    d: &Dialect,
    op: Option<&str>,
    name: Option<&str>,
    size: u64,
    digest: Option<&str>,
) -> Vec<u8> {
    let f = &d.fields;
    let mut m = Map::new();
    if let (Some(field), Some(v)) = (&f.op, op) {
        m.insert(field.clone(), Value::from(v));
    }
    if let (Some(field), Some(v)) = (&f.name, name) {
        m.insert(field.clone(), Value::from(v));
    }
    if let Some(field) = &f.size {
        m.insert(field.clone(), Value::from(size));
    }
    if let (Some(field), Some(v)) = (&f.digest, digest) {
        m.insert(field.clone(), Value::from(v));
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// An upload of `body` as `name`, with `digest` (the body's MD5 unless a
/// case sends a wrong one) where the dialect has a digest field. `None`
/// when the dialect stores nothing.
pub fn upload(d: &Dialect, name: &str, body: &[u8], digest: &str) -> Option<Vec<u8>> {
    if !d.uploads() || d.prefix.counts == Counts::Payload {
        return None;
    }
    let h = header(
        d,
        d.fields.upload.as_deref(),
        Some(name),
        body.len() as u64,
        Some(digest),
    );
    Some(framed(d, &h, body))
}

/// An echo request for `body`; `None` when the dialect has no echo.
pub fn echo(d: &Dialect, body: &[u8]) -> Option<Vec<u8>> {
    if !d.echoes() {
        return None;
    }
    Some(match d.prefix.counts {
        Counts::Payload => {
            let mut out = prefix(d, body.len() as u64);
            out.extend_from_slice(body);
            out
        }
        Counts::Header => {
            let h = header(d, d.fields.echo.as_deref(), None, body.len() as u64, None);
            framed(d, &h, body)
        }
    })
}

/// What the server sends back for the echo request `request`: the same
/// frame, its body transformed as the dialect says.
pub fn echoed(d: &Dialect, request: &[u8]) -> Option<Vec<u8>> {
    let len = match frame_len(d, request) {
        Some(Ok(n)) if n == request.len() => n,
        _ => return None,
    };
    let body_at = len - body_len(d, request)?;
    let mut out = request[..body_at].to_vec();
    out.extend(d.echo.apply(&request[body_at..])?);
    Some(out)
}

fn framed(d: &Dialect, header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = prefix(d, header.len() as u64);
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

/// The length of the whole frame at the start of `buf`: `None` until it
/// has arrived, an error when it cannot be a frame of this dialect.
pub fn frame_len(d: &Dialect, buf: &[u8]) -> Option<Result<usize, String>> {
    let w = usize::from(d.prefix.width);
    let n = match read_prefix(d, buf)? {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let Ok(n) = usize::try_from(n) else {
        return Some(Err(format!("a length of {n} bytes")));
    };
    match d.prefix.counts {
        Counts::Payload => (buf.len() >= w + n).then_some(Ok(w + n)),
        Counts::Header => {
            let head = buf.get(w..w + n)?;
            match header_size(d, head) {
                Ok(size) => {
                    let total = w + n + size;
                    (buf.len() >= total).then_some(Ok(total))
                }
                Err(e) => Some(Err(e)),
            }
        }
    }
}

/// The body's length of the whole frame `frame`.
fn body_len(d: &Dialect, frame: &[u8]) -> Option<usize> {
    let w = usize::from(d.prefix.width);
    let n = read_prefix(d, frame)?.ok()? as usize;
    match d.prefix.counts {
        Counts::Payload => Some(n),
        Counts::Header => header_size(d, frame.get(w..w + n)?).ok(),
    }
}

/// The size field of a header.
fn header_size(d: &Dialect, head: &[u8]) -> Result<usize, String> {
    let field = d.fields.size.as_deref().unwrap_or("file_size");
    let v: Value = serde_json::from_slice(head).map_err(|e| {
        format!(
            "a header that is not JSON ({e}): {}",
            String::from_utf8_lossy(&head[..head.len().min(80)])
        )
    })?;
    v.get(field)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "a header without the integer field {field}: {}",
                String::from_utf8_lossy(&head[..head.len().min(200)])
            )
        })
}

/// How many bytes of `buf` make the reply to an upload: `None` until it
/// is whole (and always for a dialect that sends none).
pub fn upload_reply_len(d: &Dialect, buf: &[u8]) -> Option<Result<usize, String>> {
    match d.upload_reply {
        Reply::None => None,
        Reply::Frame => frame_len(d, buf),
        Reply::Line => buf.iter().position(|&b| b == b'\n').map(|i| Ok(i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Echo, Life, Order, Prefix};
    use super::*;

    fn c_echo() -> Dialect {
        Dialect {
            name: "c-echo".into(),
            contract: false,
            prefix: Prefix {
                width: 4,
                order: Order::Big,
                signed: false,
                counts: Counts::Payload,
            },
            fields: Default::default(),
            digest_checked: false,
            upload_reply: Reply::None,
            echo: Echo::Upper,
            life: Life::Many,
            udp: Echo::None,
        }
    }

    #[test]
    fn an_upload_in_the_lesson_dialect_is_what_struct_pack_i_writes() {
        let d = Dialect::lesson();
        let f = upload(&d, "a.txt", b"hello", "0123").unwrap();
        let h = br#"{"file_name":"a.txt","file_size":5,"md5":"0123"}"#;
        assert_eq!(&f[..4], &(h.len() as u32).to_le_bytes());
        assert_eq!(&f[4..4 + h.len()], h);
        assert_eq!(&f[4 + h.len()..], b"hello");
        assert_eq!(frame_len(&d, &f), Some(Ok(f.len())));
        assert_eq!(frame_len(&d, &f[..f.len() - 1]), None);
        assert!(echo(&d, b"x").is_none(), "the lesson's server has no echo");
    }

    #[test]
    fn a_payload_dialect_frames_without_a_header_and_upper_cases_its_echo() {
        let d = c_echo();
        let f = echo(&d, b"from a").unwrap();
        assert_eq!(f, b"\0\0\0\x06from a");
        assert_eq!(echoed(&d, &f).unwrap(), b"\0\0\0\x06FROM A");
        assert!(upload(&d, "x", b"", "").is_none());
    }

    #[test]
    fn signed_and_eight_byte_prefixes_read_as_declared() {
        let mut d = Dialect::lesson();
        assert!(read_prefix(&d, &[0xff, 0xff, 0xff, 0xff]).unwrap().is_err());
        d.prefix.signed = false;
        assert_eq!(
            read_prefix(&d, &[0xff; 4]).unwrap(),
            Ok(u64::from(u32::MAX))
        );
        d.prefix.width = 8;
        d.prefix.order = Order::Big;
        assert_eq!(prefix(&d, 7), [0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(read_prefix(&d, &prefix(&d, 7)), Some(Ok(7)));
        assert_eq!(read_prefix(&d, &[0; 7]), None);
    }

    #[test]
    fn a_header_without_the_size_field_is_named() {
        let d = Dialect::lesson();
        let h = br#"{"total_size":3}"#;
        let mut f = prefix(&d, h.len() as u64);
        f.extend_from_slice(h);
        let e = frame_len(&d, &f).unwrap().unwrap_err();
        assert!(e.contains("file_size") && e.contains("total_size"), "{e}");
    }
}
