//! The dialect of recorded traffic, by exhaustive exact checking: every
//! prefix width, byte order and meaning is tried, and those kept under
//! which every byte the client sent parses into whole frames whose size
//! field equals its body's length. The fields are then named by their
//! roles. Nothing is guessed from frequencies: where two readings fit, the
//! answer is "ambiguous", with both, and a request for one more exchange.

use std::collections::BTreeMap;

use crate::peer::frames::md5_hex;
use serde_json::Value;

use super::{Counts, Dialect, Echo, Fields, Life, Order, Prefix, Reply, codec};

/// One TCP connection as the recording proxy saw it.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// What the client sent.
    pub to_server: Vec<u8>,
    /// What the server sent.
    pub to_client: Vec<u8>,
    /// The server closed its side before the client closed its own.
    pub server_closed_first: bool,
}

/// What `learn` saw.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The connections, in order.
    pub conns: Vec<Conn>,
    /// The file the client was given (`{file}`): its path as given.
    pub file_path: String,
    /// Its content.
    pub file: Vec<u8>,
    /// The server process exited after the client's connections.
    pub server_exited: bool,
    /// A server was there at all (`learn --client` alone has none).
    pub server_seen: bool,
}

/// A dialect and how sure each line of it is.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The dialect.
    pub dialect: Dialect,
    /// Per field (`prefix.width`, `fields.size`, ...): how sure, and why.
    pub notes: Vec<(String, String)>,
}

/// Why no single dialect came out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InferError {
    /// Nothing crossed the wire.
    #[error("the client sent nothing: nothing to learn from")]
    Nothing,
    /// No reading parses what was sent.
    #[error(
        "no length-prefixed reading fits the {0} bytes the client sent (tried 4 and 8 bytes, little and big, counting a JSON header or the payload)"
    )]
    NoFit(usize),
    /// Two or more readings fit.
    #[error(
        "{0}; run the client once more with another file (learn --file) so that one reading remains"
    )]
    Ambiguous(String),
}

/// A frame as read: its header object (none without a header) and body.
type Parsed = (Option<serde_json::Map<String, Value>>, Vec<u8>);

/// One reading of the client's bytes.
#[derive(Debug, Clone)]
struct Reading {
    width: u8,
    order: Order,
    counts: Counts,
    size: Option<String>,
    /// Per connection, its frames: (header object or none, body).
    frames: Vec<Vec<Parsed>>,
}

/// The dialect of `ex`, named `name`.
pub fn infer(ex: &Exchange, name: &str) -> Result<Learned, InferError> {
    let total: usize = ex.conns.iter().map(|c| c.to_server.len()).sum();
    if total == 0 {
        return Err(InferError::Nothing);
    }
    let mut readings = Vec::new();
    for width in [4u8, 8] {
        for order in [Order::Little, Order::Big] {
            readings.extend(header_readings(ex, width, order));
        }
    }
    // A payload reading fits almost anything framed; it is the answer only
    // when no header reading is.
    if readings.is_empty() {
        for width in [4u8, 8] {
            for order in [Order::Little, Order::Big] {
                readings.extend(payload_reading(ex, width, order));
            }
        }
    }
    match readings.len() {
        0 => Err(InferError::NoFit(total)),
        1 => Ok(name_fields(ex, readings.remove(0), name)),
        _ => Err(InferError::Ambiguous(format!(
            "{} readings fit: {}",
            readings.len(),
            readings.iter().map(describe).collect::<Vec<_>>().join("; ")
        ))),
    }
}

fn describe(r: &Reading) -> String {
    format!(
        "a {}-byte {}-endian prefix counting the {}{}",
        r.width,
        r.order.endian(),
        match r.counts {
            Counts::Header => "header",
            Counts::Payload => "payload",
        },
        r.size
            .as_ref()
            .map(|s| format!(", size field {s}"))
            .unwrap_or_default()
    )
}

fn probe(width: u8, order: Order, counts: Counts, size: Option<String>) -> Dialect {
    let mut d = Dialect::lesson();
    d.prefix = Prefix {
        width,
        order,
        signed: false,
        counts,
    };
    d.fields = Fields {
        size,
        ..Fields::default()
    };
    d
}

/// Splits `bytes` into (prefix value, rest) frames under a header reading
/// with size field `size`; `None` unless they parse to the last byte.
fn parse_headers(d: &Dialect, size: &str, mut bytes: &[u8]) -> Option<Vec<Parsed>> {
    let w = usize::from(d.prefix.width);
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = usize::try_from(codec::read_prefix(d, bytes)?.ok()?).ok()?;
        let head = bytes.get(w..w.checked_add(n)?)?;
        let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(head) else {
            return None;
        };
        let body_len = usize::try_from(m.get(size)?.as_u64()?).ok()?;
        let body = bytes.get(w + n..(w + n).checked_add(body_len)?)?;
        out.push((Some(m), body.to_vec()));
        bytes = &bytes[w + n + body_len..];
    }
    Some(out)
}

fn header_readings(ex: &Exchange, width: u8, order: Order) -> Vec<Reading> {
    // The size field's candidates: the integer fields of the first header
    // under this prefix.
    let d = probe(width, order, Counts::Header, None);
    let Some(first) = ex.conns.iter().find(|c| !c.to_server.is_empty()) else {
        return Vec::new();
    };
    let w = usize::from(width);
    let Some(Ok(n)) = codec::read_prefix(&d, &first.to_server) else {
        return Vec::new();
    };
    let Some(head) = usize::try_from(n)
        .ok()
        .and_then(|n| first.to_server.get(w..w.checked_add(n)?))
    else {
        return Vec::new();
    };
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(head) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in &m {
        if v.as_u64().is_none() {
            continue;
        }
        let frames: Option<Vec<_>> = ex
            .conns
            .iter()
            .map(|c| parse_headers(&d, key, &c.to_server))
            .collect();
        if let Some(frames) = frames {
            out.push(Reading {
                width,
                order,
                counts: Counts::Header,
                size: Some(key.clone()),
                frames,
            });
        }
    }
    out
}

fn payload_reading(ex: &Exchange, width: u8, order: Order) -> Option<Reading> {
    let d = probe(width, order, Counts::Payload, None);
    let w = usize::from(width);
    let mut frames = Vec::new();
    for c in &ex.conns {
        let mut bytes = &c.to_server[..];
        let mut mine = Vec::new();
        while !bytes.is_empty() {
            let n = usize::try_from(codec::read_prefix(&d, bytes)?.ok()?).ok()?;
            let body = bytes.get(w..w.checked_add(n)?)?;
            mine.push((None, body.to_vec()));
            bytes = &bytes[w + n..];
        }
        frames.push(mine);
    }
    Some(Reading {
        width,
        order,
        counts: Counts::Payload,
        size: None,
        frames,
    })
}

/// Names the header's fields by role and reads the replies.
fn name_fields(ex: &Exchange, r: Reading, name: &str) -> Learned {
    let mut notes: Vec<(String, String)> = Vec::new();
    let mut note = |k: &str, v: String| notes.push((k.to_owned(), v));
    let frames: Vec<_> = r.frames.iter().flatten().collect();
    let nframes = frames.len();
    note(
        "prefix",
        format!(
            "sure: the only reading under which all {} bytes the client sent parse as {nframes} whole frame(s)",
            ex.conns.iter().map(|c| c.to_server.len()).sum::<usize>()
        ),
    );
    // Signedness shows only in a length with its top bit set; the lesson's
    // convention otherwise: 'i' and 'q' (little) are signed, '!I' and htonl
    // (big) are not.
    let signed = r.order == Order::Little;
    note(
        "prefix.signed",
        format!(
            "assumed {}: no length was large enough to show it ({})",
            if signed { "signed" } else { "unsigned" },
            if signed {
                "struct 'i' and 'q' are signed"
            } else {
                "'!I' and htonl are unsigned"
            }
        ),
    );
    let mut fields = Fields {
        size: r.size.clone(),
        ..Fields::default()
    };
    if let Some(size) = &r.size {
        note(
            "fields.size",
            format!("sure: `{size}` equals the body's length in all {nframes} frame(s)"),
        );
    }
    let base = std::path::Path::new(&ex.file_path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digest = md5_hex(&ex.file);
    let heads: Vec<_> = frames.iter().filter_map(|(h, _)| h.as_ref()).collect();
    let mut constants: BTreeMap<String, String> = BTreeMap::new();
    if let Some(h0) = heads.first() {
        for (k, v) in h0.iter() {
            if Some(k) == r.size.as_ref() {
                continue;
            }
            let Some(s) = v.as_str() else { continue };
            let same_everywhere = heads.iter().all(|h| h.get(k) == Some(v));
            if s == base || s == ex.file_path {
                fields.name = Some(k.clone());
                note(
                    "fields.name",
                    format!(
                        "sure: `{k}` carries the file's {}",
                        if s == base { "name" } else { "path as given" }
                    ),
                );
            } else if s.eq_ignore_ascii_case(&digest) {
                fields.digest = Some(k.clone());
                note(
                    "fields.digest",
                    format!("sure: `{k}` equals the body's MD5"),
                );
            } else if k.to_ascii_lowercase().contains("md5") || is_hex32(s) {
                fields.digest = Some(k.clone());
                note(
                    "fields.digest",
                    format!(
                        "likely: `{k}` looks like a digest but is not the body's MD5 ({s:?}): a placeholder"
                    ),
                );
            } else if same_everywhere {
                constants.insert(k.clone(), s.to_owned());
            }
        }
    }
    let uploads = fields.name.is_some();
    if let Some((k, v)) = constants.iter().next() {
        fields.op = Some(k.clone());
        if uploads {
            fields.upload = Some(v.clone());
        } else {
            fields.echo = Some(v.clone());
        }
        note(
            "fields.op",
            format!(
                "likely: `{k}` is {v:?} in every frame, the operation{}",
                if constants.len() > 1 {
                    format!(
                        " (also constant, ignored: {})",
                        constants
                            .keys()
                            .skip(1)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
    let mut d = probe(r.width, r.order, r.counts, None);
    d.name = name.to_owned();
    d.prefix.signed = signed;
    d.fields = fields;
    d.digest_checked = false;
    if d.fields.digest.is_some() {
        note(
            "digest_checked",
            "assumed false: a refusal is not seen in one good upload; set it to true if the server refuses a wrong digest".into(),
        );
    }
    // The replies.
    let replies: Vec<&[u8]> = ex.conns.iter().map(|c| &c.to_client[..]).collect();
    let replied = replies.iter().any(|r| !r.is_empty());
    d.upload_reply = Reply::None;
    d.echo = Echo::None;
    if !ex.server_seen {
        note(
            "upload_reply",
            "assumed none: learn listened silently, so no server answered".into(),
        );
    } else if uploads {
        d.upload_reply = if !replied {
            Reply::None
        } else if replies.iter().all(|b| b.is_empty() || parses_whole(&d, b)) {
            Reply::Frame
        } else if replies.iter().all(|b| b.is_empty() || b.ends_with(b"\n")) {
            Reply::Line
        } else {
            Reply::Frame
        };
        note(
            "upload_reply",
            format!(
                "seen: {}",
                match d.upload_reply {
                    Reply::None => "the server sent nothing back".to_owned(),
                    Reply::Frame => "the server answered with a frame".to_owned(),
                    Reply::Line => "the server answered with a text line".to_owned(),
                }
            ),
        );
        note(
            "echo",
            "assumed none: the client uploaded, so no echo was seen".into(),
        );
    } else {
        let sent: Vec<u8> = ex.conns.iter().flat_map(|c| c.to_server.clone()).collect();
        let got: Vec<u8> = ex.conns.iter().flat_map(|c| c.to_client.clone()).collect();
        d.echo = Echo::Verbatim;
        let upper = echoed_all(&d, &r, Echo::Upper);
        d.echo = if got == sent {
            Echo::Verbatim
        } else if Some(&got) == upper.as_ref() {
            Echo::Upper
        } else {
            Echo::None
        };
        note(
            "echo",
            match d.echo {
                Echo::Verbatim => "seen: every frame came back unchanged".into(),
                Echo::Upper => "seen: every frame came back with its body upper-cased".into(),
                Echo::None if got.is_empty() => "seen: nothing came back".into(),
                Echo::None => format!(
                    "unclear: {} bytes came back that are not the frames sent, verbatim or upper-cased",
                    got.len()
                ),
            },
        );
    }
    d.life = if ex.server_exited {
        note(
            "life",
            "seen: the server exited after the client's connection".into(),
        );
        Life::OneConnection
    } else if ex.server_seen
        && ex.conns.iter().all(|c| c.server_closed_first)
        && r.frames.iter().all(|f| f.len() == 1)
    {
        note(
            "life",
            "likely: the server closed every connection after its one frame".into(),
        );
        Life::OneFrame
    } else {
        note(
            "life",
            "assumed many: nothing showed the server closing or exiting early".into(),
        );
        Life::Many
    };
    d.udp = Echo::Verbatim;
    note(
        "udp",
        "assumed verbatim: learn records TCP only; set none or upper as the server does".into(),
    );
    Learned { dialect: d, notes }
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parses_whole(d: &Dialect, mut b: &[u8]) -> bool {
    while !b.is_empty() {
        match codec::frame_len(d, b) {
            Some(Ok(n)) => b = &b[n..],
            _ => return false,
        }
    }
    true
}

/// The client's frames re-encoded as `echo` would send them back.
fn echoed_all(d: &Dialect, r: &Reading, echo: Echo) -> Option<Vec<u8>> {
    let mut d = d.clone();
    d.echo = echo;
    let mut out = Vec::new();
    for c in &r.frames {
        for (head, body) in c {
            let mut frame = match head {
                Some(h) => {
                    let h = serde_json::to_vec(h).ok()?;
                    let mut f = codec::prefix(&d, h.len() as u64);
                    f.extend(h);
                    f
                }
                None => codec::prefix(&d, body.len() as u64),
            };
            frame.extend(echo.apply(body)?);
            out.extend(frame);
        }
    }
    Some(out)
}

/// The dialect as TOML with a comment per line saying how sure it is.
pub fn annotated(l: &Learned) -> String {
    let mut out = format!(
        "# Written by `sockbench learn` from what crossed the wire.\n# {}\n",
        l.dialect.summary()
    );
    let text = l.dialect.to_toml();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_owned();
            if let Some((_, why)) = l.notes.iter().find(|(k, _)| *k == section) {
                out.push_str(&format!("\n# {why}\n"));
            } else {
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        let full = if section.is_empty() {
            key.to_owned()
        } else {
            format!("{section}.{key}")
        };
        out.push_str(line);
        if let Some((_, why)) = l.notes.iter().find(|(k, _)| *k == full) {
            out.push_str(&format!("  # {why}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload_bytes(d: &Dialect, name: &str, body: &[u8], digest: &str) -> Vec<u8> {
        codec::upload(d, name, body, digest).unwrap()
    }

    #[test]
    fn the_lesson_dialect_is_learned_exactly() {
        let d = Dialect::lesson();
        let file = b"abc\x00\xff".repeat(300);
        let ex = Exchange {
            conns: vec![Conn {
                to_server: upload_bytes(&d, "sample.bin", &file, "0000"),
                ..Conn::default()
            }],
            file_path: "/tmp/x/sample.bin".into(),
            file,
            server_exited: false,
            server_seen: true,
        };
        let l = infer(&ex, "lesson").unwrap();
        assert_eq!(l.dialect, d, "{}", annotated(&l));
        let text = annotated(&l);
        assert_eq!(Dialect::parse(&text).unwrap(), d);
        assert!(text.contains("# sure: `file_size` equals"), "{text}");
    }

    #[test]
    fn put_with_filesize_and_a_big_endian_payload_echo_are_told_apart() {
        let mut d = Dialect::lesson();
        d.name = "put".into();
        d.fields = Fields {
            size: Some("filesize".into()),
            name: Some("filename".into()),
            digest: None,
            op: Some("cmd".into()),
            upload: Some("put".into()),
            echo: None,
        };
        d.life = Life::OneConnection;
        let file = vec![7u8; 2000];
        let ex = Exchange {
            conns: vec![Conn {
                to_server: upload_bytes(&d, "f.bin", &file, ""),
                ..Conn::default()
            }],
            file_path: "f.bin".into(),
            file,
            server_exited: true,
            server_seen: true,
        };
        assert_eq!(infer(&ex, "put").unwrap().dialect, d);

        let mut e = Dialect::lesson();
        e.name = "be".into();
        e.prefix = Prefix {
            width: 4,
            order: Order::Big,
            signed: false,
            counts: Counts::Payload,
        };
        e.fields = Fields::default();
        e.echo = Echo::Upper;
        let sent = [
            codec::echo(&e, b"hello").unwrap(),
            codec::echo(&e, b"world!").unwrap(),
        ]
        .concat();
        let back = [
            codec::echoed(&e, &codec::echo(&e, b"hello").unwrap()).unwrap(),
            codec::echoed(&e, &codec::echo(&e, b"world!").unwrap()).unwrap(),
        ]
        .concat();
        let ex = Exchange {
            conns: vec![Conn {
                to_server: sent,
                to_client: back,
                server_closed_first: false,
            }],
            file_path: "lines.txt".into(),
            file: b"hello\nworld!\n".to_vec(),
            server_exited: false,
            server_seen: true,
        };
        assert_eq!(infer(&ex, "be").unwrap().dialect, e);
    }

    #[test]
    fn two_fitting_size_fields_are_ambiguous_not_guessed() {
        let h = br#"{"file_name":"a","file_size":3,"total":3}"#;
        let mut bytes = (h.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(h);
        bytes.extend_from_slice(b"xyz");
        let ex = Exchange {
            conns: vec![Conn {
                to_server: bytes,
                ..Conn::default()
            }],
            file_path: "a".into(),
            file: b"xyz".to_vec(),
            server_seen: true,
            ..Exchange::default()
        };
        let e = infer(&ex, "x").unwrap_err();
        assert!(
            matches!(&e, InferError::Ambiguous(s) if s.contains("file_size") && s.contains("total")),
            "{e}"
        );
        assert_eq!(
            infer(&Exchange::default(), "x").unwrap_err(),
            InferError::Nothing
        );
    }
}
