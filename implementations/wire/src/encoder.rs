//! Frame encoding, and the header of an error reply.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::config::Endian;
use crate::error::ErrorCode;

/// A header too long for the 4-byte length prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a header of {len} bytes does not fit a 32-bit length prefix")]
pub struct HeaderTooLong {
    /// The header's length in bytes.
    pub len: usize,
}

/// Writes frames in one byte order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Encoder {
    endian: Endian,
}

impl Encoder {
    /// An encoder writing prefixes in `endian` order.
    pub fn new(endian: Endian) -> Self {
        Encoder { endian }
    }

    /// Appends a prefix and header; the body (if any) is the caller's to append.
    pub fn head(&self, header: &[u8], out: &mut Vec<u8>) -> Result<(), HeaderTooLong> {
        let len = u32::try_from(header.len()).map_err(|_| HeaderTooLong { len: header.len() })?;
        out.reserve(4 + header.len());
        out.extend_from_slice(&self.endian.write_u32(len));
        out.extend_from_slice(header);
        Ok(())
    }

    /// Appends a whole frame. The header's `file_size` is the caller's to
    /// make equal `body.len()`; the encoder does not parse it.
    pub fn frame(
        &self,
        header: &[u8],
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), HeaderTooLong> {
        self.head(header, out)?;
        out.extend_from_slice(body);
        Ok(())
    }
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    status: &'static str,
    error: &'static str,
    message: &'a str,
    file_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<&'a str>,
}

/// The header of an error reply:
/// `{"status":"error","error":code,"message":…,"file_size":0}` plus `id` and,
/// for `md5_mismatch`, the computed `md5`.
pub fn error_header(
    code: ErrorCode,
    message: &str,
    id: Option<&RawValue>,
    md5: Option<&str>,
) -> Vec<u8> {
    let reply = ErrorReply {
        status: "error",
        error: code.as_str(),
        message,
        file_size: 0,
        id,
        md5,
    };
    // Serializing plain strings and an already-valid RawValue cannot fail.
    serde_json::to_vec(&reply).unwrap_or_default()
}
