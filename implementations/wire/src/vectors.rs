//! The golden-vector format of `fixtures/wire/vectors.json` (see its README):
//! byte streams and what a conforming peer makes of them.

use serde::Deserialize;

use crate::config::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, Endian, WireConfig};

/// A piece of a byte stream as written in a vector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Segment {
    /// A little-endian 4-byte prefix.
    U32le(u32),
    /// A big-endian 4-byte prefix.
    U32be(u32),
    /// UTF-8 text.
    Text(String),
    /// Bytes in hex.
    Hex(String),
    /// `count` copies of `fill`, written `{"fill": b, "count": n}`.
    #[serde(untagged)]
    Fill {
        /// The byte repeated.
        fill: u8,
        /// How many times.
        count: usize,
    },
}

/// Why a vector file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// Not JSON, or not the shape of a vector file.
    #[error("vector file: {0}")]
    Json(#[from] serde_json::Error),
    /// Another format tag.
    #[error("vector file format {found:?}, expected {FORMAT:?}")]
    Format {
        /// The file's tag.
        found: String,
    },
    /// A hex segment that is not pairs of hex digits.
    #[error("hex segment {hex:?}: {why}")]
    Hex {
        /// The segment.
        hex: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An `endian` that is neither little nor big.
    #[error(transparent)]
    Endian(#[from] crate::config::UnknownEndian),
}

/// Concatenates segments into bytes; `Err` names a bad hex string.
pub fn assemble(segments: &[Segment]) -> Result<Vec<u8>, VectorError> {
    let mut out = Vec::new();
    for s in segments {
        match s {
            Segment::U32le(n) => out.extend_from_slice(&n.to_le_bytes()),
            Segment::U32be(n) => out.extend_from_slice(&n.to_be_bytes()),
            Segment::Text(t) => out.extend_from_slice(t.as_bytes()),
            Segment::Hex(h) => {
                let bad = |why| VectorError::Hex {
                    hex: h.clone(),
                    why,
                };
                if h.len() % 2 != 0 {
                    return Err(bad("odd length"));
                }
                for pair in h.as_bytes().chunks_exact(2) {
                    let s = std::str::from_utf8(pair).map_err(|_| bad("not ASCII"))?;
                    out.push(u8::from_str_radix(s, 16).map_err(|_| bad("not hex digits"))?);
                }
            }
            Segment::Fill { fill, count } => out.resize(out.len() + count, *fill),
        }
    }
    Ok(out)
}

/// The optional `config` of a vector; absent fields take the protocol defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorConfig {
    /// `little` or `big`.
    pub endian: Option<String>,
    /// `--max-header`.
    pub max_header: Option<u32>,
    /// `--max-body`.
    pub max_body: Option<u64>,
}

impl VectorConfig {
    /// The wire configuration this vector runs under.
    pub fn wire(&self) -> Result<WireConfig, VectorError> {
        let endian = match &self.endian {
            None => Endian::Little,
            Some(e) => e.parse()?,
        };
        Ok(WireConfig {
            endian,
            max_header: self.max_header.unwrap_or(DEFAULT_MAX_HEADER),
            max_body: self.max_body.unwrap_or(DEFAULT_MAX_BODY),
        })
    }
}

/// One expected frame.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFrame {
    /// The raw header text.
    pub header: String,
    /// The body, as segments.
    pub body: Vec<Segment>,
}

/// What a vector's stream must produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Frames decoded before any error.
    pub frames: Vec<ExpectedFrame>,
    /// The fatal error code the decoder ends with.
    pub error: Option<String>,
    /// Where the stream stops: `boundary`, `prefix`, `header`, `body`, `failed`.
    pub end: String,
    /// A server's replies in order: `echo`, `ok`, `stats`, an error code, `close`.
    pub replies: Vec<String>,
}

/// One golden vector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// A short unique name.
    pub name: String,
    /// The contract rule it checks, quoted.
    pub rule: String,
    /// The stream.
    pub input: Vec<Segment>,
    /// Wire settings, when not the defaults.
    #[serde(default)]
    pub config: VectorConfig,
    /// `missing` when the server's storage must be unusable.
    pub storage: Option<String>,
    /// The expected outcome.
    pub expect: Expect,
}

#[derive(Deserialize)]
struct File {
    format: String,
    vectors: Vec<Vector>,
}

/// The format tag this reader understands.
pub const FORMAT: &str = "sockbench-wire-vectors/1";

/// Parses a vector file's text.
pub fn parse(json: &str) -> Result<Vec<Vector>, VectorError> {
    let file: File = serde_json::from_str(json)?;
    if file.format != FORMAT {
        return Err(VectorError::Format { found: file.format });
    }
    Ok(file.vectors)
}
