//! Our codec beside the ordinary alternative a Rust user would write:
//! tokio-util's `LengthDelimitedCodec` for the prefix plus serde_json into a
//! header struct, buffering each body whole. The same operations run under
//! criterion (`cargo bench --bench codec`) and in `sockbench bench`.
//!
//! Each operation is timed in steady state, as on a connection: both
//! decoders (and the alternative's `BytesMut`) live across calls, so what
//! is measured is the per-frame cost, not a decoder's construction.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sockbench_wire::{Decoder, Encoder, Endian, Event, Header, WireConfig};
use tokio_util::codec::{Decoder as _, Encoder as _, LengthDelimitedCodec};

/// One call of an operation: returns a checksum so the work cannot be
/// optimized away. It keeps its state (a decoder, a buffer) between calls.
pub type Codec = Box<dyn FnMut(&[u8]) -> usize>;

/// One operation, measured for both codecs on the same input.
pub struct CodecOp {
    /// What it does.
    pub name: &'static str,
    /// Its input bytes.
    pub input: Vec<u8>,
    /// Our codec, with fresh state.
    pub ours: fn() -> Codec,
    /// The alternative, with fresh state.
    pub alternative: fn() -> Codec,
}

/// The header a user would declare for the alternative.
#[derive(Debug, Serialize, Deserialize)]
pub struct AltHeader {
    /// Body length.
    pub file_size: u64,
    /// Operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Upload name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
}

fn length_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .little_endian()
        .max_frame_length(64 * 1024)
        .new_codec()
}

/// The alternative decoder: prefix and header by LengthDelimitedCodec and
/// serde_json, then the whole body buffered.
#[derive(Default)]
pub struct AltDecoder {
    pending: Option<AltHeader>,
}

impl AltDecoder {
    /// Next (header, body), or `None` when more bytes are needed.
    pub fn decode(
        &mut self,
        codec: &mut LengthDelimitedCodec,
        src: &mut BytesMut,
    ) -> Option<(AltHeader, Bytes)> {
        if self.pending.is_none() {
            let raw = codec.decode(src).ok()??;
            self.pending = Some(serde_json::from_slice(&raw).ok()?);
        }
        let size = self.pending.as_ref()?.file_size as usize;
        if src.len() < size {
            return None;
        }
        let body = src.split_to(size).freeze();
        Some((self.pending.take()?, body))
    }
}

fn frame(body: usize) -> Vec<u8> {
    let header = serde_json::to_vec(&AltHeader {
        file_size: body as u64,
        op: Some("echo".into()),
        file_name: None,
        md5: None,
        id: Some(7.into()),
    })
    .unwrap_or_default();
    let mut out = Vec::new();
    let _ = Encoder::new(Endian::Little).frame(&header, &vec![0xabu8; body], &mut out);
    out
}

/// As the session decodes: whole frames through `peek_frame`, the rest
/// (here, a frame cut by the end of the input) as events.
fn ours_decode() -> Codec {
    let mut d = Decoder::new(WireConfig::default());
    Box::new(move |input| {
        let mut rest = input;
        let mut sum = 0;
        while let Some((h, len)) = d.peek_frame(rest) {
            sum += 2 * h.file_size as usize + 1;
            rest = &rest[len..];
        }
        while let Ok(Some(ev)) = d.decode(&mut rest) {
            sum += match ev {
                Event::Head(h) => h.file_size as usize,
                Event::Body(b) => b.len(),
                Event::End => 1,
            };
        }
        sum
    })
}

fn alt_decode() -> Codec {
    let mut codec = length_codec();
    let mut src = BytesMut::new();
    let mut d = AltDecoder::default();
    Box::new(move |input| {
        // The copy stands for the socket read a FramedRead does into its buffer.
        src.clear();
        src.extend_from_slice(input);
        let mut sum = 0;
        while let Some((h, body)) = d.decode(&mut codec, &mut src) {
            sum += h.file_size as usize + body.len() + 1;
        }
        sum
    })
}

/// The header both encoders serialize: building it is part of the work timed.
fn echo_header(len: usize) -> AltHeader {
    AltHeader {
        file_size: len as u64,
        op: Some("echo".into()),
        file_name: None,
        md5: None,
        id: Some(7.into()),
    }
}

fn ours_encode() -> Codec {
    Box::new(|input| {
        let header = echo_header(input.len());
        let raw = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + raw.len() + input.len());
        let _ = Encoder::new(Endian::Little).frame(&raw, input, &mut out);
        out.len()
    })
}

fn alt_encode() -> Codec {
    Box::new(|input| {
        let header = echo_header(input.len());
        let raw = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = BytesMut::new();
        let _ = length_codec().encode(Bytes::from(raw), &mut out);
        out.extend_from_slice(input);
        out.len()
    })
}

fn ours_header() -> Codec {
    Box::new(|input| Header::parse(input).map_or(0, |h| h.file_size as usize))
}

fn alt_header() -> Codec {
    Box::new(|input| serde_json::from_slice::<AltHeader>(input).map_or(0, |h| h.file_size as usize))
}

/// The operations compared.
pub fn ops() -> Vec<CodecOp> {
    let header = br#"{"op":"upload","file_name":"report.pdf","file_size":1048576,"md5":"900150983cd24fb0d6963f7d28e17f72","id":42}"#.to_vec();
    vec![
        CodecOp {
            name: "decode one 64 B frame",
            input: frame(64),
            ours: ours_decode,
            alternative: alt_decode,
        },
        CodecOp {
            name: "decode one 64 KiB frame",
            input: frame(64 * 1024 - 100),
            ours: ours_decode,
            alternative: alt_decode,
        },
        CodecOp {
            name: "decode 100 glued 64 B frames",
            input: frame(64).repeat(100),
            ours: ours_decode,
            alternative: alt_decode,
        },
        CodecOp {
            name: "encode one 64 B frame",
            input: vec![1u8; 64],
            ours: ours_encode,
            alternative: alt_encode,
        },
        CodecOp {
            name: "encode one 64 KiB frame",
            input: vec![1u8; 64 * 1024 - 100],
            ours: ours_encode,
            alternative: alt_encode,
        },
        CodecOp {
            name: "parse an upload header",
            input: header,
            ours: ours_header,
            alternative: alt_header,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_agree_on_every_input() {
        for op in ops() {
            let (mut ours, mut alt) = ((op.ours)(), (op.alternative)());
            // Twice: the state a call leaves must serve the next one.
            let (a, b) = (ours(&op.input), alt(&op.input));
            assert_eq!((a, b), (ours(&op.input), alt(&op.input)), "{}", op.name);
            assert!(a > 0, "{}: ours did nothing", op.name);
            if op.name.starts_with("decode") || op.name.starts_with("parse") {
                assert_eq!(a, b, "{}", op.name);
            } else {
                assert_eq!(a, b, "{}: encoded lengths", op.name);
            }
        }
    }
}
