//! Dialects: how a server under test frames, names and answers, when it is
//! not sockbench's own contract. Modelled on tokio-util's
//! `LengthDelimitedCodec` builder (the length field's width, byte order,
//! signedness and what it counts), plus what the lesson's servers vary:
//! the header's field names, the reply to an upload, the echo, how long a
//! connection and the process live, and the UDP echo.
//!
//! A dialect is a TOML file (`--dialect FILE`, docs/dialects.md) or a
//! built-in name ([`BUILTIN`]). [`codec`] writes requests and reads replies
//! in one; [`infer`] finds the dialect of recorded traffic (`sockbench
//! learn`).

pub mod codec;
pub mod infer;

use std::fmt;

use serde::{Deserialize, Serialize};
use sockbench_wire::Endian;

/// The built-in dialects, by name.
pub const BUILTIN: [&str; 2] = ["sockbench", "lesson"];

/// Why a dialect could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DialectError {
    /// Neither a built-in name nor a readable file.
    #[error("--dialect {given}: not a built-in dialect ({}) and not a readable file: {why}", BUILTIN.join(", "))]
    Unknown {
        /// What was given.
        given: String,
        /// Why the file could not be read.
        why: String,
    },
    /// The file is not a valid dialect.
    #[error("{file}: {why}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, from the TOML parser or the checks.
        why: String,
    },
}

/// The length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    /// 4 (`struct 'i'`, `htonl`) or 8 (`'q'`) bytes.
    pub width: u8,
    /// `little` (`'i'` on x86) or `big` (`'!I'`, network order).
    pub order: Order,
    /// Signed (`'i'`, `'q'`): a negative length is refused by our side.
    pub signed: bool,
    /// What it counts: the JSON `header` (then a size field gives the
    /// body), or the whole `payload` (no header at all).
    pub counts: Counts,
}

/// A prefix's byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Least significant byte first.
    Little,
    /// Network order.
    Big,
}

impl Order {
    /// The wire crate's name for it.
    pub fn endian(self) -> Endian {
        match self {
            Order::Little => Endian::Little,
            Order::Big => Endian::Big,
        }
    }
}

/// What a prefix counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counts {
    /// The JSON header that follows; the body's length is a header field.
    Header,
    /// The whole payload: no header, no names, no uploads.
    Payload,
}

/// The header's field names; `None` where the dialect has no such field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// The body's length (`file_size`, `filesize`, `total_size`, ...).
    pub size: Option<String>,
    /// The upload's file name (`file_name`, `filename`).
    pub name: Option<String>,
    /// The body's MD5 in hex (`md5`).
    pub digest: Option<String>,
    /// The operation field (`op`, `cmd`).
    pub op: Option<String>,
    /// The operation's value for an upload (`put`, `upload`).
    pub upload: Option<String>,
    /// The operation's value for an echo (`echo`).
    pub echo: Option<String>,
}

/// What a server sends after an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    /// Nothing: its result is only the file (the lesson's).
    None,
    /// A framed reply in the same dialect.
    Frame,
    /// A bare text line ending in `\n`.
    Line,
}

/// What a server sends back for an echo (TCP or UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Echo {
    /// The same bytes.
    Verbatim,
    /// The body with ASCII letters upper-cased (`data.upper()`).
    Upper,
    /// No echo.
    None,
}

/// How long a connection and the process live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Life {
    /// Many connections, many frames on each.
    Many,
    /// One frame per connection; then the server closes it.
    OneFrame,
    /// One connection (with many frames), then the process exits.
    OneConnection,
}

/// A dialect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dialect {
    /// Its name, for reports and reasons.
    pub name: String,
    /// The whole sockbench contract (error replies, stats, limits): only
    /// the `sockbench` dialect says so, and only then do the contract's
    /// cases run.
    #[serde(default)]
    pub contract: bool,
    /// The length prefix.
    pub prefix: Prefix,
    /// The header's field names.
    #[serde(default)]
    pub fields: Fields,
    /// The server refuses an upload whose digest differs (stores nothing).
    #[serde(default)]
    pub digest_checked: bool,
    /// What follows an upload.
    pub upload_reply: Reply,
    /// The TCP echo.
    pub echo: Echo,
    /// Connection and process life.
    pub life: Life,
    /// The UDP echo.
    pub udp: Echo,
}

impl Dialect {
    /// sockbench's own contract (docs/protocol.md).
    pub fn sockbench() -> Dialect {
        Dialect {
            name: "sockbench".into(),
            contract: true,
            prefix: Prefix {
                width: 4,
                order: Order::Little,
                signed: false,
                counts: Counts::Header,
            },
            fields: Fields {
                size: Some("file_size".into()),
                name: Some("file_name".into()),
                digest: Some("md5".into()),
                op: Some("op".into()),
                upload: Some("upload".into()),
                echo: Some("echo".into()),
            },
            digest_checked: true,
            upload_reply: Reply::Frame,
            echo: Echo::Verbatim,
            life: Life::Many,
            udp: Echo::Verbatim,
        }
    }

    /// The lesson's upload server: `struct.pack('i')`, `file_size` and
    /// `file_name`, an `md5` sent but not checked, no reply, many uploads
    /// per connection, no TCP echo, UDP echoed verbatim.
    pub fn lesson() -> Dialect {
        Dialect {
            name: "lesson".into(),
            contract: false,
            prefix: Prefix {
                width: 4,
                order: Order::Little,
                signed: true,
                counts: Counts::Header,
            },
            fields: Fields {
                size: Some("file_size".into()),
                name: Some("file_name".into()),
                digest: Some("md5".into()),
                op: None,
                upload: None,
                echo: None,
            },
            digest_checked: false,
            upload_reply: Reply::None,
            echo: Echo::None,
            life: Life::Many,
            udp: Echo::Verbatim,
        }
    }

    /// A built-in name or a TOML file.
    pub fn load(given: &str) -> Result<Dialect, DialectError> {
        match given {
            "sockbench" => return Ok(Dialect::sockbench()),
            "lesson" => return Ok(Dialect::lesson()),
            _ => {}
        }
        let text = std::fs::read_to_string(given).map_err(|e| DialectError::Unknown {
            given: given.to_owned(),
            why: e.to_string(),
        })?;
        Dialect::parse(&text).map_err(|why| DialectError::Invalid {
            file: given.to_owned(),
            why,
        })
    }

    /// Reads and checks a dialect's TOML.
    pub fn parse(text: &str) -> Result<Dialect, String> {
        let d: Dialect = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        d.check()?;
        Ok(d)
    }

    /// The dialect as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// What makes a dialect unusable, in its own terms.
    fn check(&self) -> Result<(), String> {
        if !matches!(self.prefix.width, 4 | 8) {
            return Err(format!(
                "prefix.width = {}: a prefix is 4 or 8 bytes",
                self.prefix.width
            ));
        }
        let f = &self.fields;
        match self.prefix.counts {
            Counts::Header if f.size.is_none() => {
                return Err(
                    "prefix.counts = \"header\" needs fields.size: the field that gives the body's length"
                        .into(),
                );
            }
            Counts::Payload if f.size.is_some() || f.name.is_some() || f.digest.is_some() => {
                return Err(
                    "prefix.counts = \"payload\" has no header, so no fields.size, name or digest"
                        .into(),
                );
            }
            _ => {}
        }
        if f.op.is_some() != (f.upload.is_some() || f.echo.is_some()) {
            return Err(
                "fields.op names the operation field; give it with fields.upload and/or fields.echo, its values"
                    .into(),
            );
        }
        if self.digest_checked && f.digest.is_none() {
            return Err("digest_checked = true needs fields.digest".into());
        }
        if self.contract && *self != Dialect::sockbench() {
            return Err(
                "contract = true is the sockbench dialect itself; use --dialect sockbench".into(),
            );
        }
        Ok(())
    }

    /// True when the server stores uploads (it has a name field).
    pub fn uploads(&self) -> bool {
        self.fields.name.is_some()
    }

    /// True when the server echoes TCP frames.
    pub fn echoes(&self) -> bool {
        self.echo != Echo::None
    }

    /// The prefix's byte order.
    pub fn endian(&self) -> Endian {
        self.prefix.order.endian()
    }

    /// Several frames may follow each other on one connection.
    pub fn many_frames(&self) -> bool {
        self.life != Life::OneFrame
    }

    /// Several connections may be made to one process.
    pub fn many_connections(&self) -> bool {
        self.life != Life::OneConnection
    }

    /// What it does, in a line: the reasons of UNSUPPORTED cases quote it.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "a {}-byte {}-endian prefix counting the {}",
            self.prefix.width,
            self.prefix.order.endian(),
            match self.prefix.counts {
                Counts::Header => "JSON header",
                Counts::Payload => "payload (no header)",
            }
        )];
        if let Some(n) = &self.fields.name {
            parts.push(format!(
                "uploads named by `{n}`, answered with {}",
                match self.upload_reply {
                    Reply::None => "nothing",
                    Reply::Frame => "a frame",
                    Reply::Line => "a line",
                }
            ));
        }
        parts.push(match self.echo {
            Echo::None => "no TCP echo".into(),
            Echo::Verbatim => "a verbatim TCP echo".into(),
            Echo::Upper => "an upper-casing TCP echo".into(),
        });
        parts.push(
            match self.life {
                Life::Many => "many frames per connection",
                Life::OneFrame => "one frame per connection",
                Life::OneConnection => "one connection, then exit",
            }
            .into(),
        );
        format!("dialect {}: {}", self.name, parts.join("; "))
    }
}

impl fmt::Display for Echo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Echo::Verbatim => "verbatim",
            Echo::Upper => "upper-casing",
            Echo::None => "no",
        })
    }
}

impl Echo {
    /// What comes back for `sent` (`None`: nothing).
    pub fn apply(self, sent: &[u8]) -> Option<Vec<u8>> {
        match self {
            Echo::Verbatim => Some(sent.to_vec()),
            Echo::Upper => Some(sent.to_ascii_uppercase()),
            Echo::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_round_trip_through_toml() {
        for d in [Dialect::sockbench(), Dialect::lesson()] {
            let text = d.to_toml();
            assert_eq!(Dialect::parse(&text).unwrap(), d, "{text}");
        }
    }

    #[test]
    fn an_inconsistent_dialect_names_its_field() {
        let mut d = Dialect::lesson();
        d.prefix.width = 2;
        assert!(
            Dialect::parse(&d.to_toml())
                .unwrap_err()
                .contains("prefix.width")
        );
        let mut d = Dialect::lesson();
        d.fields.size = None;
        assert!(
            Dialect::parse(&d.to_toml())
                .unwrap_err()
                .contains("fields.size")
        );
        let e = Dialect::parse("name = \"x\"\n").unwrap_err();
        assert!(e.contains("prefix"), "{e}");
        let e = Dialect::parse(&(Dialect::lesson().to_toml() + "colour = 1\n")).unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn an_unknown_name_is_one_clear_error() {
        let e = Dialect::load("no-such-dialect").unwrap_err().to_string();
        assert!(e.contains("sockbench, lesson"), "{e}");
    }
}
