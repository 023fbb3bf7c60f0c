//! The protocol's error codes and the decoder's fatal error.

use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;

/// An error code of the protocol: the `error` field of an error reply.
///
/// The set is closed for protocol v1, so matching on it is exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// `header_len` is 0 or above the header limit.
    BadLength,
    /// The header is not UTF-8 or not JSON.
    BadJson,
    /// The header is not an object, or a known field is missing or of the wrong type.
    BadHeader,
    /// `file_size` is above the body limit.
    TooLarge,
    /// `op` names no operation.
    UnknownOp,
    /// `file_name` is not one plain file name.
    BadFileName,
    /// `md5` is not 32 hex digits.
    BadMd5,
    /// The body's digest differs from the `md5` field.
    Md5Mismatch,
    /// The server's disk failed (full, permission, removed directory).
    IoError,
}

impl ErrorCode {
    /// Every code, in the order of the protocol's error table.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadLength,
        ErrorCode::BadJson,
        ErrorCode::BadHeader,
        ErrorCode::TooLarge,
        ErrorCode::UnknownOp,
        ErrorCode::BadFileName,
        ErrorCode::BadMd5,
        ErrorCode::Md5Mismatch,
        ErrorCode::IoError,
    ];

    /// The code as it appears on the wire, e.g. `"bad_length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadLength => "bad_length",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadHeader => "bad_header",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::BadFileName => "bad_file_name",
            ErrorCode::BadMd5 => "bad_md5",
            ErrorCode::Md5Mismatch => "md5_mismatch",
            ErrorCode::IoError => "io_error",
        }
    }

    /// True for the codes after which the server replies and closes: the
    /// stream can no longer be framed, so nothing after the error is trusted.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::BadLength | ErrorCode::BadJson | ErrorCode::BadHeader | ErrorCode::TooLarge
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the protocol's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

/// A fatal decoding error: after it the byte stream cannot be framed any more.
///
/// Carries the request's `id` when the header was JSON and had one, so the
/// error reply can still be correlated.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct DecodeError {
    /// The protocol code the peer is told.
    pub code: ErrorCode,
    /// A human explanation, sent as the reply's `message`.
    pub message: String,
    /// The raw JSON of the request's `id`, when it could be read.
    pub id: Option<Box<RawValue>>,
}

impl DecodeError {
    /// An error without a request id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DecodeError {
            code,
            message: message.into(),
            id: None,
        }
    }

    /// The same error carrying the request's id.
    pub fn with_id(mut self, id: Option<Box<RawValue>>) -> Self {
        self.id = id;
        self
    }
}
