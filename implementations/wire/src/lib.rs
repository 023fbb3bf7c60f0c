//! Sans-IO framing for the sockbench protocol: no sockets, no clock, no files.
//!
//! A TCP connection carries frames in each direction:
//!
//! ```text
//!  0       4                    4+header_len             4+header_len+file_size
//!  +-------+--------------------+------------------------+
//!  | len   | header: UTF-8 JSON | body: file_size bytes  |
//!  | u32   | {"file_size":N,...}| (0 allowed)            |
//!  +-------+--------------------+------------------------+
//!    little-endian by default (`Endian::Big` for network order)
//! ```
//!
//! [`Decoder`] accepts the stream in any chunking (one byte at a time, or
//! many frames glued together) and yields [`Event`]s: a frame's parsed
//! [`Header`] (its raw bytes stay in the decoder, [`Decoder::raw_header`]),
//! then its body as slices of the input, then `End`; or, for glued small
//! frames, [`Decoder::peek_frame`] takes a whole one at a time. It enforces
//! [`WireConfig`]'s limits and reports the protocol's fatal errors as a
//! [`DecodeError`] carrying an [`ErrorCode`]. [`Encoder`] writes frames.
#![deny(missing_docs, missing_debug_implementations)]

mod config;
mod decoder;
mod encoder;
mod error;
mod header;
pub mod vectors;

pub use config::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, Endian, UnknownEndian, WireConfig};
pub use decoder::{Decoder, Event, Position};
pub use encoder::{Encoder, HeaderTooLong, error_header};
pub use error::{DecodeError, ErrorCode, UnknownErrorCode};
pub use header::{Header, Op, OpField, Span, Text, md5_hex, parse_md5_hex};
pub use serde_json::value::RawValue;
