//! The streaming decoder: bytes in, in any chunking; frame events out.
//!
//! ```text
//!              4 prefix bytes              header_len bytes, parsed
//!   +--------+ --------------> +--------+ ----------------------> +------------------+
//!   | Prefix |                 | Header |                         | Body{remaining}  |--+ Body(chunk)
//!   +--------+ <-------------- +--------+                         +------------------+<-+ while remaining > 0
//!       ^   \      (never)         |                                   |
//!       |    \ len 0 or > max      | not UTF-8/JSON, bad field,        | remaining == 0: End
//!       |     v                    v file_size > max                   |
//!       |   +---------------------------+                              |
//!       |   | Failed(error), sticky     |                              |
//!       |   +---------------------------+                              |
//!       +--------------------------------------------------------------+
//! ```
//!
//! The decoder copies at most one header (bounded by `max_header`, grown as
//! bytes arrive rather than by the declared length) and never buffers a body:
//! body chunks are slices of the caller's input. The header's buffer is kept
//! from frame to frame, so in steady state decoding allocates nothing.

use crate::config::WireConfig;
use crate::error::{DecodeError, ErrorCode};
use crate::header::Header;

/// What the decoder found next in the input.
#[derive(Debug)]
pub enum Event<'a> {
    /// A frame's prefix and header are complete; its body follows. The
    /// header's raw bytes are [`Decoder::raw_header`] until the next frame's
    /// header begins.
    Head(Header),
    /// The next piece of the current frame's body: a slice of the input.
    Body(&'a [u8]),
    /// The current frame's body is complete (also sent for an empty body).
    End,
}

/// Where the decoder is within the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Between frames: the stream may end here cleanly.
    Boundary,
    /// Inside a frame's 4-byte prefix.
    Prefix,
    /// Inside a frame's header.
    Header,
    /// Inside a frame's body, with this many bytes to come.
    Body(u64),
    /// After a fatal error.
    Failed,
}

#[derive(Debug)]
enum State {
    Prefix,
    Header { len: usize },
    Body { remaining: u64 },
    Failed(DecodeError),
}

/// A streaming frame decoder. See the module docs for its state machine.
#[derive(Debug)]
pub struct Decoder {
    config: WireConfig,
    state: State,
    prefix: [u8; 4],
    prefix_have: usize,
    /// The current frame's header (complete from its `Head` event on).
    header: Vec<u8>,
}

/// A header buffer grown past this is released when the next header starts,
/// so one large header does not stay with an idle connection.
const HEADER_KEEP: usize = 4096;

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new(config: WireConfig) -> Self {
        Decoder {
            config,
            state: State::Prefix,
            prefix: [0; 4],
            prefix_have: 0,
            header: Vec::new(),
        }
    }

    /// The configuration this decoder enforces.
    pub fn config(&self) -> &WireConfig {
        &self.config
    }

    /// Decodes the next event from `input`, advancing it past what was used.
    ///
    /// `Ok(None)` means every byte was used and more are needed; an `End`
    /// that is due is returned even when `input` is empty, so loop until
    /// `None`. A fatal error is sticky: every later call returns it again.
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<Event<'a>>, DecodeError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Prefix => {
                    let Some(len) = self.take_prefix(input) else {
                        return Ok(None);
                    };
                    self.state = State::Header {
                        len: self.check_header_len(len)?,
                    };
                    if self.header.capacity() > HEADER_KEEP {
                        self.header = Vec::new();
                    }
                    self.header.clear();
                }
                State::Header { len } => {
                    let parsed = if self.header.is_empty() && input.len() >= len {
                        // The whole header is at hand: parse it where it is.
                        // (Read back at once from the fresh copy, it cost a
                        // stall per frame: the loads outran the copy's stores.)
                        let (raw, rest) = input.split_at(len);
                        *input = rest;
                        self.header.extend_from_slice(raw);
                        Header::parse(raw)
                    } else if self.take_header(input, len) {
                        Header::parse(&self.header)
                    } else {
                        return Ok(None);
                    };
                    let header = parsed.map_err(|e| self.fail(e))?;
                    if !self.body_ok(&header) {
                        let e = DecodeError::new(
                            ErrorCode::TooLarge,
                            format!(
                                "file_size {} is above the limit of {} bytes",
                                header.file_size, self.config.max_body
                            ),
                        )
                        .with_id(header.id.and_then(|s| s.to_raw_value(&self.header)));
                        return Err(self.fail(e));
                    }
                    self.state = State::Body {
                        remaining: header.file_size,
                    };
                    return Ok(Some(Event::Head(header)));
                }
                State::Body { remaining: 0 } => {
                    self.state = State::Prefix;
                    return Ok(Some(Event::End));
                }
                State::Body { ref mut remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                    let (chunk, rest) = input.split_at(n);
                    *input = rest;
                    *remaining -= n as u64;
                    return Ok(Some(Event::Body(chunk)));
                }
            }
        }
    }

    /// A whole, valid frame at the start of `input` while the decoder is
    /// between frames: its header and its length in bytes. The decoder does
    /// not move: the caller skips the bytes itself, or decodes them as usual
    /// (which it must when this says `None`: an incomplete or broken frame is
    /// `decode`'s to report). The shortcut for glued small frames: one call
    /// and no copy per frame instead of three events and a header copy.
    pub fn peek_frame(&self, input: &[u8]) -> Option<(Header, usize)> {
        if self.position() != Position::Boundary {
            return None;
        }
        let (prefix, rest) = input.split_first_chunk::<4>()?;
        let len = self.config.endian.read_u32(*prefix);
        if !self.header_len_ok(len) {
            return None;
        }
        let raw = rest.get(..len as usize)?;
        let header = Header::parse(raw).ok()?;
        let total = (4 + raw.len() as u64).checked_add(header.file_size)?;
        (self.body_ok(&header) && total <= input.len() as u64).then_some((header, total as usize))
    }

    /// The raw bytes of the current frame's header, from its `Head` event
    /// until the next frame's prefix is complete (what an echo sends back).
    pub fn raw_header(&self) -> &[u8] {
        &self.header
    }

    /// Where the decoder stands; `Boundary` is the only clean place for a stream to end.
    pub fn position(&self) -> Position {
        match self.state {
            State::Prefix if self.prefix_have == 0 => Position::Boundary,
            State::Prefix => Position::Prefix,
            State::Header { .. } => Position::Header,
            State::Body { remaining } => Position::Body(remaining),
            State::Failed(_) => Position::Failed,
        }
    }

    fn take_prefix(&mut self, input: &mut &[u8]) -> Option<u32> {
        if self.prefix_have == 0 && input.len() >= 4 {
            let (p, rest) = input.split_at(4);
            *input = rest;
            return Some(self.config.endian.read_u32([p[0], p[1], p[2], p[3]]));
        }
        let n = (4 - self.prefix_have).min(input.len());
        self.prefix[self.prefix_have..self.prefix_have + n].copy_from_slice(&input[..n]);
        *input = &input[n..];
        self.prefix_have += n;
        if self.prefix_have < 4 {
            return None;
        }
        self.prefix_have = 0;
        Some(self.config.endian.read_u32(self.prefix))
    }

    /// The limits, one place for `decode` and `peek_frame`.
    fn header_len_ok(&self, len: u32) -> bool {
        len != 0 && len <= self.config.max_header
    }

    fn body_ok(&self, header: &Header) -> bool {
        header.file_size <= self.config.max_body
    }

    fn check_header_len(&mut self, len: u32) -> Result<usize, DecodeError> {
        if !self.header_len_ok(len) {
            let e = DecodeError::new(
                ErrorCode::BadLength,
                format!(
                    "header_len {len} is outside 1..={} ({} prefix)",
                    self.config.max_header, self.config.endian
                ),
            );
            return Err(self.fail(e));
        }
        // A u32 always fits a usize on the platforms this crate builds for.
        Ok(len as usize)
    }

    /// Copies header bytes; true once all `len` are in.
    fn take_header(&mut self, input: &mut &[u8], len: usize) -> bool {
        let n = (len - self.header.len()).min(input.len());
        self.header.extend_from_slice(&input[..n]);
        *input = &input[n..];
        self.header.len() == len
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = State::Failed(e.clone());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::Encoder;

    fn frame(header: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(Default::default())
            .frame(header.as_bytes(), body, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn empty_body_yields_head_then_end() {
        let bytes = frame(r#"{"file_size":0}"#, b"");
        let mut d = Decoder::new(WireConfig::default());
        let mut input = &bytes[..];
        assert!(matches!(d.decode(&mut input), Ok(Some(Event::Head(_)))));
        assert!(matches!(d.decode(&mut input), Ok(Some(Event::End))));
        assert!(matches!(d.decode(&mut input), Ok(None)));
        assert_eq!(d.position(), Position::Boundary);
    }

    #[test]
    fn position_tracks_every_part_of_a_frame() {
        let bytes = frame(r#"{"file_size":3}"#, b"abc");
        let mut d = Decoder::new(WireConfig::default());
        let mut input = &bytes[..2];
        assert!(d.decode(&mut input).unwrap().is_none());
        assert_eq!(d.position(), Position::Prefix);
        let mut input = &bytes[2..6];
        assert!(d.decode(&mut input).unwrap().is_none());
        assert_eq!(d.position(), Position::Header);
        let mut input = &bytes[6..bytes.len() - 1];
        assert!(matches!(d.decode(&mut input), Ok(Some(Event::Head(_)))));
        assert!(matches!(d.decode(&mut input), Ok(Some(Event::Body(b"ab")))));
        assert_eq!(d.position(), Position::Body(1));
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = Decoder::new(WireConfig::default());
        let mut input = &[0u8, 0, 0, 0, b'{'][..];
        assert_eq!(d.decode(&mut input).unwrap_err().code, ErrorCode::BadLength);
        let mut more = &b"anything"[..];
        assert_eq!(d.decode(&mut more).unwrap_err().code, ErrorCode::BadLength);
        assert_eq!(d.position(), Position::Failed);
    }
}
