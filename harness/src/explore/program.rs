//! A program: what `explore` sends, over which connections, cut where.
//!
//! Everything is data (serde), so a program is its own repro: `repro.json`
//! holds it, `replay` runs it again, and `repro.py` rebuilds the same bytes
//! from it. Bodies are a length and a fill byte, not bytes: a 4 MiB body
//! costs two numbers in the file.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sockbench_wire::Endian;

/// A sequence of actions over TCP connections and UDP, and how they meet
/// the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// The connections, each a byte stream of frames.
    pub conns: Vec<Conn>,
    /// UDP datagrams, each echoed and checked.
    pub udp: Vec<Body>,
    /// The order of sends: which connection's next segment (or end), or
    /// which datagram, goes next.
    pub schedule: Vec<Slot>,
}

/// One TCP connection's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conn {
    /// The frames, in order.
    pub actions: Vec<Action>,
    /// Offsets in the connection's byte stream where one send ends and the
    /// next begins (strictly increasing, inside the stream).
    pub cuts: Vec<u64>,
    /// Pause after the segment that ends at the cut of the same index, ms.
    pub pauses: Vec<u8>,
    /// Frames sent ahead of their replies: before sending action i, the
    /// replies of actions up to i - depth must have arrived.
    pub depth: usize,
    /// How the client ends the connection.
    pub end: End,
}

/// How a connection ends on the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// Wait for the replies, then close.
    Close,
    /// Shut down writing right after the last byte: the server must answer
    /// what it got and close.
    HalfClose,
    /// Wait for the replies, then reset (SO_LINGER 0).
    Reset,
}

/// One step of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// The next segment of this connection (its end after the last one).
    Tcp(usize),
    /// This datagram.
    Udp(usize),
}

/// Deterministic bytes: `len` bytes of the pattern `(i * 31 + fill) mod 256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// Length in bytes.
    pub len: u64,
    /// Where the pattern starts.
    pub fill: u8,
}

impl Body {
    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        (0..self.len)
            .map(|i| (i.wrapping_mul(31) as u8).wrapping_add(self.fill))
            .collect()
    }
}

/// The md5 field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Md5 {
    /// Absent.
    None,
    /// The body's digest, in this case (true: upper case).
    Right(bool),
    /// Thirty-two hex digits that are not the body's digest.
    Wrong,
    /// Not thirty-two hex digits.
    Malformed(String),
}

/// One frame sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What it exercises, for coverage (`echo`, `upload_wrong_md5`, ...).
    pub kind: String,
    /// The header, or the raw bytes of a malformed one.
    pub head: Head,
    /// The body.
    pub body: Body,
    /// Frame bytes actually sent when the connection is cut short inside
    /// this (last) frame; `None`: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
}

/// A request header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// A well-formed JSON object, rendered with `file_size` = the body's
    /// length unless `file_size` overrides it.
    Fields {
        /// `op`, when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        /// `file_name`, when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
        /// `md5`.
        md5: Md5,
        /// `id`, when present: any JSON value, `null` included (which a
        /// plain `Option` would read back as absent).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        id: Option<Value>,
        /// Other fields, kept in this order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        extra: Vec<(String, Value)>,
        /// A declared size other than the body's (too large, say).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_size: Option<Value>,
    },
    /// Header bytes as given (bad JSON, not an object), with the prefix
    /// declaring `prefix` bytes when set (bad length), else their length.
    Raw {
        /// The header text.
        text: String,
        /// The declared length, when it is not the text's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<u32>,
    },
}

impl Action {
    /// The header bytes and the length the prefix declares.
    pub fn header(&self) -> (Vec<u8>, u32) {
        match &self.head {
            Head::Raw { text, prefix } => {
                let bytes = text.as_bytes().to_vec();
                let n = prefix.unwrap_or(bytes.len() as u32);
                (bytes, n)
            }
            Head::Fields {
                op,
                file_name,
                md5,
                id,
                extra,
                file_size,
            } => {
                let mut fields: Vec<(String, Value)> = Vec::new();
                if let Some(op) = op {
                    fields.push(("op".into(), Value::from(op.as_str())));
                }
                if let Some(n) = file_name {
                    fields.push(("file_name".into(), Value::from(n.as_str())));
                }
                let digest = || md5_hex(&self.body.bytes());
                match md5 {
                    Md5::None => {}
                    Md5::Right(upper) => {
                        let d = digest();
                        let d = if *upper { d.to_uppercase() } else { d };
                        fields.push(("md5".into(), Value::from(d)));
                    }
                    Md5::Wrong => {
                        // The right digest with its first digit changed.
                        let mut d = digest().into_bytes();
                        d[0] = if d[0] == b'0' { b'1' } else { b'0' };
                        fields.push(("md5".into(), Value::from(String::from_utf8_lossy(&d))));
                    }
                    Md5::Malformed(s) => fields.push(("md5".into(), Value::from(s.as_str()))),
                }
                if let Some(id) = id {
                    fields.push(("id".into(), id.clone()));
                }
                fields.extend(extra.iter().cloned());
                let size = file_size.clone().unwrap_or(Value::from(self.body.len));
                fields.push(("file_size".into(), size));
                let text = render(&fields);
                let n = text.len() as u32;
                (text.into_bytes(), n)
            }
        }
    }

    /// The whole frame as it goes on the wire (before any truncation).
    pub fn frame(&self, endian: Endian) -> Vec<u8> {
        let (header, n) = self.header();
        let mut out = match endian {
            Endian::Little => n.to_le_bytes(),
            Endian::Big => n.to_be_bytes(),
        }
        .to_vec();
        out.extend_from_slice(&header);
        if let Head::Fields {
            file_size: None, ..
        } = self.head
        {
            out.extend_from_slice(&self.body.bytes());
        }
        out
    }

    /// The bytes sent: the frame, cut at `sent`.
    pub fn wire(&self, endian: Endian) -> Vec<u8> {
        let mut f = self.frame(endian);
        if let Some(n) = self.sent {
            f.truncate(n as usize);
        }
        f
    }
}

/// A field that is present, whatever its value: `null` is `Some(Null)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A JSON object with its fields in the given order (serde_json's map
/// would sort them, and the order is part of what an echo returns).
fn render(fields: &[(String, Value)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

pub use crate::peer::frames::md5_hex;

impl Program {
    /// One connection's byte stream.
    pub fn stream(&self, conn: usize, endian: Endian) -> Vec<u8> {
        self.conns[conn]
            .actions
            .iter()
            .flat_map(|a| a.wire(endian))
            .collect()
    }

    /// Frames, bytes and cuts, for the report.
    pub fn size(&self) -> (usize, u64, usize) {
        let actions = self.conns.iter().map(|c| c.actions.len()).sum::<usize>() + self.udp.len();
        let bytes = self
            .conns
            .iter()
            .flat_map(|c| &c.actions)
            .map(|a| a.sent.unwrap_or(a.frame(Endian::Little).len() as u64))
            .sum::<u64>()
            + self.udp.iter().map(|d| d.len).sum::<u64>();
        let cuts = self.conns.iter().map(|c| c.cuts.len()).sum();
        (actions, bytes, cuts)
    }

    /// Drops schedule slots that no longer point anywhere and adds an end
    /// slot for any connection that lost its own; keeps the rest in order.
    /// Shrinking calls this after every edit.
    pub fn normalize(&mut self, endian: Endian) {
        for c in 0..self.conns.len() {
            let len = self.stream(c, endian).len() as u64;
            let conn = &mut self.conns[c];
            let keep: Vec<(u64, u8)> = conn
                .cuts
                .iter()
                .zip(conn.pauses.iter().chain(std::iter::repeat(&0)))
                .filter(|(cut, _)| **cut > 0 && **cut < len)
                .map(|(c, p)| (*c, *p))
                .collect();
            conn.cuts = keep.iter().map(|k| k.0).collect();
            conn.pauses = keep.iter().map(|k| k.1).collect();
        }
        let mut seen = vec![0usize; self.conns.len()];
        let mut udp_seen = vec![false; self.udp.len()];
        let mut out = Vec::new();
        for slot in &self.schedule {
            match *slot {
                // Segments = cuts + 1, then the end.
                Slot::Tcp(c) if c < self.conns.len() && seen[c] < self.conns[c].cuts.len() + 2 => {
                    seen[c] += 1;
                    out.push(*slot);
                }
                Slot::Udp(d) if d < self.udp.len() && !udp_seen[d] => {
                    udp_seen[d] = true;
                    out.push(*slot);
                }
                _ => {}
            }
        }
        for (c, n) in seen.iter_mut().enumerate() {
            while *n < self.conns[c].cuts.len() + 2 {
                *n += 1;
                out.push(Slot::Tcp(c));
            }
        }
        for (d, s) in udp_seen.iter().enumerate() {
            if !s {
                out.push(Slot::Udp(d));
            }
        }
        self.schedule = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(len: u64) -> Action {
        Action {
            kind: "echo".into(),
            head: Head::Fields {
                op: None,
                file_name: None,
                md5: Md5::None,
                id: Some(Value::from(7)),
                extra: vec![("z".into(), Value::Null), ("a".into(), Value::from(1))],
                file_size: None,
            },
            body: Body { len, fill: 3 },
            sent: None,
        }
    }

    #[test]
    fn a_header_keeps_its_field_order_and_declares_its_body() {
        let a = echo(5);
        let (h, n) = a.header();
        assert_eq!(
            String::from_utf8(h).unwrap(),
            r#"{"id":7,"z":null,"a":1,"file_size":5}"#
        );
        let f = a.frame(Endian::Little);
        assert_eq!(f.len(), 4 + n as usize + 5);
        assert_eq!(&f[..4], &n.to_le_bytes());
        assert_eq!(&f[4 + n as usize..], &[3, 34, 65, 96, 127]);
        assert_eq!(&a.frame(Endian::Big)[..4], &n.to_be_bytes());
    }

    #[test]
    fn a_program_survives_its_json_with_a_null_id() {
        let mut a = echo(3);
        if let Head::Fields { id, .. } = &mut a.head {
            *id = Some(Value::Null);
        }
        let p = Program {
            conns: vec![Conn {
                actions: vec![a, echo(0)],
                cuts: vec![5],
                pauses: vec![0],
                depth: 2,
                end: End::HalfClose,
            }],
            udp: vec![Body { len: 9, fill: 1 }],
            schedule: vec![Slot::Tcp(0), Slot::Udp(0), Slot::Tcp(0), Slot::Tcp(0)],
        };
        let back: Program = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn normalize_repairs_a_schedule_after_an_edit() {
        let mut p = Program {
            conns: vec![
                Conn {
                    actions: vec![echo(10), echo(10)],
                    cuts: vec![3, 1000],
                    pauses: vec![1, 2],
                    depth: 1,
                    end: End::Close,
                },
                Conn {
                    actions: vec![echo(1)],
                    cuts: vec![],
                    pauses: vec![],
                    depth: 1,
                    end: End::Reset,
                },
            ],
            udp: vec![],
            schedule: vec![Slot::Tcp(0), Slot::Udp(0), Slot::Tcp(2), Slot::Tcp(0)],
        };
        p.normalize(Endian::Little);
        // The cut past the stream's end is gone with its pause; every
        // connection has cuts + 1 segments and one end.
        assert_eq!(
            (p.conns[0].cuts.clone(), p.conns[0].pauses.clone()),
            (vec![3], vec![1])
        );
        assert_eq!(
            p.schedule,
            vec![
                Slot::Tcp(0),
                Slot::Tcp(0),
                Slot::Tcp(0),
                Slot::Tcp(1),
                Slot::Tcp(1)
            ]
        );
    }
}
