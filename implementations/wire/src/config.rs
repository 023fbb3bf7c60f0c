//! Byte order of the length prefix and the decoder's limits.

use std::fmt;
use std::str::FromStr;

/// Byte order of the 4-byte length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Endian {
    /// Little-endian, the protocol default (Python's `struct.pack('i', n)` on x86).
    #[default]
    Little,
    /// Network order (Python's `struct.pack('!I', n)`).
    Big,
}

impl Endian {
    /// Reads a prefix written in this byte order.
    pub fn read_u32(self, bytes: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    /// Writes a prefix in this byte order.
    pub fn write_u32(self, n: u32) -> [u8; 4] {
        match self {
            Endian::Little => n.to_le_bytes(),
            Endian::Big => n.to_be_bytes(),
        }
    }

    /// The name used by `--endian`: `little` or `big`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endian::Little => "little",
            Endian::Big => "big",
        }
    }
}

impl fmt::Display for Endian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no byte order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown byte order {0:?} (expected `little` or `big`)")]
pub struct UnknownEndian(pub String);

impl FromStr for Endian {
    type Err = UnknownEndian;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "little" | "le" => Ok(Endian::Little),
            "big" | "be" | "network" => Ok(Endian::Big),
            other => Err(UnknownEndian(other.to_owned())),
        }
    }
}

/// Default `--max-header`: 64 KiB.
pub const DEFAULT_MAX_HEADER: u32 = 65_536;
/// Default `--max-body`: 1 TiB.
pub const DEFAULT_MAX_BODY: u64 = 1 << 40;

/// Framing parameters shared by both peers of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireConfig {
    /// Byte order of the length prefix.
    pub endian: Endian,
    /// Largest accepted `header_len`, in bytes.
    pub max_header: u32,
    /// Largest accepted `file_size`, in bytes.
    pub max_body: u64,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            endian: Endian::Little,
            max_header: DEFAULT_MAX_HEADER,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl WireConfig {
    /// Limits for a client reading replies: any header a u32 can describe, any body.
    ///
    /// A client still never buffers a body; it only trusts the server more.
    pub fn permissive(endian: Endian) -> Self {
        WireConfig {
            endian,
            max_header: u32::MAX,
            max_body: u64::MAX,
        }
    }
}
