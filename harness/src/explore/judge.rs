//! Compares what a server did with what the model predicts. Echoes must
//! match byte for byte; other replies by meaning (status, error code, op,
//! id, bytes, md5, file_name, file_size: the message text is free, and so
//! are a stats reply's counters, which other programs and connections
//! move). Then closes, UDP echoes and, when the storage directory is
//! readable, its final state.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sockbench_wire::Endian;

use super::execute::Seen;
use super::model::{Expect, Reply};
use super::program::Program;
use super::replies::{next_frame, split};

/// A reply slower than this, as the median of a ping-pong on loopback,
/// is a stall: Nagle's algorithm meeting a delayed ACK costs 40 ms a
/// round trip, a correct server well under one.
pub const STALL_MS: f64 = 20.0;
/// Round trips a stall is judged on (their median rides out a VM's
/// occasional scheduling gap).
pub const STALL_SAMPLES: usize = 8;

/// The fields a non-echo reply is compared on.
const MEANING: [&str; 8] = [
    "status",
    "error",
    "op",
    "id",
    "bytes",
    "md5",
    "file_name",
    "file_size",
];

/// A difference between the server and the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// What differs, in one line.
    pub what: String,
    /// The connection, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<usize>,
    /// The action, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<usize>,
    /// What the model predicts.
    pub expected: String,
    /// What the server did.
    pub actual: String,
}

impl Divergence {
    /// The same kind of difference: the same line with the numbers that
    /// shrinking changes (sizes, offsets) left out. Shrinking keeps a
    /// smaller program only when it still shows this.
    pub fn kind(&self) -> String {
        self.what
            .split(|c: char| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .join("#")
    }
}

/// The first divergence, if any.
pub fn judge(
    program: &Program,
    expect: &Expect,
    seen: &Seen,
    endian: Endian,
    storage: Option<&[(String, String)]>,
) -> Option<Divergence> {
    for (c, (exp, got)) in expect.conns.iter().zip(&seen.conns).enumerate() {
        if let Some(e) = &got.refused {
            return Some(div(c, None, "connection refused", "a connection", e));
        }
        let mut rest: &[u8] = &got.bytes;
        for (i, reply) in exp.replies.iter().enumerate() {
            let d = |what: &str, e: String, a: String| Some(div(c, Some(i), what, &e, &a));
            match reply {
                Reply::None => {}
                Reply::Partial(full) => {
                    let n = rest.len().min(full.len());
                    if rest[..n] != full[..n] {
                        return d(
                            "a streamed echo cut short differs from its request",
                            preview(full),
                            preview(rest),
                        );
                    }
                    rest = &rest[n..];
                }
                Reply::Echo(want) | Reply::Frame(want) => {
                    let Some(frame) = next_frame(&mut rest, endian) else {
                        let why = if got.eof {
                            "the server closed the connection before this reply"
                        } else if got.error.is_some() {
                            "the connection failed before this reply"
                        } else {
                            "no reply"
                        };
                        let actual = match (&got.error, rest.is_empty()) {
                            (Some(e), _) => format!("{e}; {} bytes of a reply", rest.len()),
                            (None, true) => "nothing".into(),
                            (None, false) => format!(
                                "{} bytes, not a whole frame: {}",
                                rest.len(),
                                preview(rest)
                            ),
                        };
                        return d(why, describe(want, endian), actual);
                    };
                    if let Reply::Echo(_) = reply {
                        if frame != want.as_slice() {
                            return d(
                                "the echo differs from its request",
                                describe(want, endian),
                                describe(frame, endian),
                            );
                        }
                    } else if let Some(field) = differs(want, frame, endian) {
                        return d(
                            &format!("the reply's {field} differs"),
                            describe(want, endian),
                            describe(frame, endian),
                        );
                    }
                }
            }
        }
        if !rest.is_empty() {
            return Some(div(
                c,
                None,
                "bytes after the last reply",
                "nothing",
                &preview(rest),
            ));
        }
        if exp.closes && !got.eof && got.error.is_none() {
            let why = match exp.fatal {
                Some(_) => "the connection stayed open after a fatal error",
                None => "the connection stayed open after the client's half-close",
            };
            return Some(div(
                c,
                exp.fatal,
                why,
                "the server closes",
                "still open: nothing for a second after the last reply",
            ));
        }
        if !exp.closes && got.eof {
            return Some(div(
                c,
                None,
                "the server closed a connection it should keep",
                "open",
                "closed by the server",
            ));
        }
    }
    if let Some(d) = stall(program, seen) {
        return Some(d);
    }
    for (d, (body, got)) in program.udp.iter().zip(&seen.udp).enumerate() {
        let want = body.bytes();
        match got {
            None => {
                return Some(Divergence {
                    what: format!("no echo of a {}-byte datagram", want.len()),
                    conn: None,
                    action: Some(d),
                    expected: preview(&want),
                    actual: "nothing in 3 tries".into(),
                });
            }
            Some(g) if *g != want => {
                return Some(Divergence {
                    what: format!("the echo of a {}-byte datagram differs", want.len()),
                    conn: None,
                    action: Some(d),
                    expected: format!("{} bytes: {}", want.len(), preview(&want)),
                    actual: format!("{} bytes: {}", g.len(), preview(g)),
                });
            }
            Some(_) => {}
        }
    }
    storage.and_then(|files| storage_differs(&expect.files, files))
}

/// A ping-pong (one small frame per send, each after the reply to the
/// one before) whose
/// median round trip is over [`STALL_MS`]: the replies are right, and late.
fn stall(program: &Program, seen: &Seen) -> Option<Divergence> {
    for (c, (conn, got)) in program.conns.iter().zip(&seen.conns).enumerate() {
        let small = conn
            .actions
            .iter()
            .all(|a| a.sent.is_none() && a.frame(Endian::Little).len() <= 1024);
        // One frame per send, each after the reply to the one before.
        let alone = conn.cuts == super::generate::frame_boundaries(&conn.actions, Endian::Little);
        if conn.depth != 1 || !alone || !small {
            continue;
        }
        let mut rtts: Vec<f64> = got.round_trips_ms.iter().flatten().copied().collect();
        if rtts.len() < STALL_SAMPLES {
            continue;
        }
        rtts.sort_by(f64::total_cmp);
        let median = rtts[rtts.len() / 2];
        if median > STALL_MS {
            return Some(Divergence {
                what:
                    "the replies stall: one request at a time, the median round trip is over 20 ms"
                        .into(),
                conn: Some(c),
                action: None,
                expected: format!("a median round trip under {STALL_MS} ms on loopback"),
                actual: format!(
                    "{median:.1} ms over {} round trips (min {:.1}, max {:.1})",
                    rtts.len(),
                    rtts[0],
                    rtts[rtts.len() - 1]
                ),
            });
        }
    }
    None
}

/// Compares the storage directory's (name, md5) list with the model's.
pub fn storage_differs(
    want: &BTreeMap<String, Vec<String>>,
    files: &[(String, String)],
) -> Option<Divergence> {
    let have: BTreeMap<&str, &str> = files
        .iter()
        .map(|(n, m)| (n.as_str(), m.as_str()))
        .collect();
    let show = |n: &str| {
        let mut s: String = n.chars().take(40).collect();
        if s.len() < n.len() {
            s.push_str(&format!("... ({} bytes)", n.len()));
        }
        format!("{s:?}")
    };
    for (name, md5) in &have {
        match want.get(*name) {
            None => {
                return Some(Divergence {
                    what: "a file the model does not have is in storage".into(),
                    conn: None,
                    action: None,
                    expected: "no such file (nothing stored under this name, no temporary left)"
                        .into(),
                    actual: format!("{} (md5 {md5})", show(name)),
                });
            }
            Some(ok) if !ok.iter().any(|m| m == md5) => {
                return Some(Divergence {
                    what: "a stored file's content differs".into(),
                    conn: None,
                    action: None,
                    expected: format!("{} with md5 {}", show(name), ok.join(" or ")),
                    actual: format!("md5 {md5}"),
                });
            }
            Some(_) => {}
        }
    }
    want.keys()
        .find(|n| !have.contains_key(n.as_str()))
        .map(|n| Divergence {
            what: "an upload that succeeded is not in storage".into(),
            conn: None,
            action: None,
            expected: show(n),
            actual: "no such file".into(),
        })
}

/// Every regular file in `dir`, as (name, md5).
pub fn list_storage(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let data = std::fs::read(e.path())?;
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            super::program::md5_hex(&data),
        ));
    }
    out.sort();
    Ok(out)
}

fn div(c: usize, action: Option<usize>, what: &str, expected: &str, actual: &str) -> Divergence {
    Divergence {
        what: what.into(),
        conn: Some(c),
        action,
        expected: expected.into(),
        actual: actual.into(),
    }
}

fn fields(frame: &[u8], endian: Endian) -> Option<serde_json::Map<String, Value>> {
    let (_, h) = split(frame, endian)?;
    match serde_json::from_slice(h).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The first field of [`MEANING`] that differs, or `header` if either
/// side is not a JSON object.
fn differs(want: &[u8], got: &[u8], endian: Endian) -> Option<String> {
    let (Some(w), Some(g)) = (fields(want, endian), fields(got, endian)) else {
        return Some("header".into());
    };
    MEANING
        .iter()
        .find(|k| {
            let (a, b) = (w.get(**k), g.get(**k));
            // md5 digits in either case are the same digest.
            match (a, b) {
                (Some(Value::String(x)), Some(Value::String(y))) if **k == "md5" => {
                    !x.eq_ignore_ascii_case(y)
                }
                _ => a != b,
            }
        })
        .map(|k| (*k).to_owned())
}

/// A frame for a person: its header, and its body's length.
pub fn describe(frame: &[u8], endian: Endian) -> String {
    match split(frame, endian) {
        Some((n, h)) => {
            let body = frame.len().saturating_sub(4 + n);
            let text = String::from_utf8_lossy(h);
            let text: String = text.chars().take(300).collect();
            if body > 0 {
                format!("{text} + {body}-byte body")
            } else {
                text
            }
        }
        None => preview(frame),
    }
}

/// The first bytes, as text where printable and hex elsewhere.
pub fn preview(bytes: &[u8]) -> String {
    let head: String = bytes
        .iter()
        .take(64)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if bytes.len() > 64 {
        format!("{head}... ({} bytes)", bytes.len())
    } else {
        head
    }
}
