//! The request logic of one connection, without I/O.
//!
//! A [`Session`] takes the bytes a peer sent and appends reply bytes to an
//! output buffer. When a request needs the disk it stops and hands the
//! driver a [`StorageOp`]; the driver performs it (synchronously, on a
//! thread pool, however its I/O model likes) and reports back. So the four
//! back-ends share every protocol decision and differ only in how bytes and
//! storage operations move.
//!
//! ```text
//!  driver                         Session
//!    | feed(input, out) ----------> decode; echo/stats/errors go to `out`
//!    | <-- Step::Storage(Begin)     upload starts: create the temporary file
//!    | storage_failed(e)? --------> (only on failure: reply io_error at End)
//!    | feed(rest, out) -----------> body chunk
//!    | <-- Step::Storage(Write(c))  append c to the file
//!    | feed(rest, out) -----------> End of body
//!    | <-- Step::Storage(Commit)    check md5, fsync, rename
//!    | committed(result, out) ----> reply ok / md5_mismatch / io_error
//!    | feed(rest, out) ...
//!    | <-- Step::NeedInput          read more
//!    | <-- Step::Close              fatal error replied: flush `out`, close
//! ```

use std::io;
use std::sync::Arc;

use serde::Serialize;
use sockbench_wire::{
    Decoder, Encoder, ErrorCode, Event, Header, Op, Position, RawValue, Span, error_header,
    md5_hex, parse_md5_hex,
};

use crate::counters::{Counters, ProcessUse, TcpStats, UdpStats};
use crate::server::ServerContext;
use crate::storage::{BadFileName, CommitError, Stored, validate_file_name};

/// What the driver must do next.
#[derive(Debug)]
pub enum Step<'a> {
    /// Every input byte was used; read more.
    NeedInput,
    /// Perform this storage operation, then report back (see [`StorageOp`]).
    Storage(StorageOp<'a>),
    /// A fatal error was replied: flush the output, then close the connection.
    Close,
}

/// A disk operation of an upload, for the driver to perform.
#[derive(Debug)]
pub enum StorageOp<'a> {
    /// Create the temporary file for `file_name` (already validated). On
    /// failure call [`Session::storage_failed`].
    Begin {
        /// The target name inside the storage directory.
        file_name: String,
    },
    /// Append this piece of the body. On failure call [`Session::storage_failed`].
    Write(&'a [u8]),
    /// The body is complete: commit with this expected digest and always
    /// call [`Session::committed`] before feeding more input.
    Commit {
        /// The digest the header asked for.
        expected: Option<[u8; 16]>,
    },
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Between frames.
    Clean,
    /// Inside a frame: the partial frame is discarded (and any upload must be dropped).
    Truncated,
}

/// A reply due when the current frame's body ends.
#[derive(Debug)]
enum Reply {
    Stats,
    Error(ErrorCode, String),
}

/// Echo frames up to this size (prefix, header and body) are answered only
/// once complete, so a peer that cuts one short gets no reply at all; larger
/// ones are streamed through as they arrive, to keep memory bounded.
pub const ECHO_HOLD: u64 = 64 * 1024;

#[derive(Debug)]
enum Frame {
    /// An echo. While `held`, its head is not yet in the output and its
    /// body so far is in `Session::hold`; then the body streams through.
    Echo {
        held: bool,
    },
    Upload {
        file_name: String,
        expected: Option<[u8; 16]>,
        failure: Option<String>,
    },
    Discard(Reply),
}

/// One connection's protocol state. See the module docs for the driver's part.
#[derive(Debug)]
pub struct Session {
    ctx: Arc<ServerContext>,
    decoder: Decoder,
    encoder: Encoder,
    /// The request whose body is being read, with its id in the decoder's
    /// raw header (which stays until the next frame's header begins).
    frame: Option<(Frame, Option<Span>)>,
    /// An upload waiting for [`Session::committed`], with its id.
    committing: Option<(String, Option<Span>)>,
    /// The body of a held echo, kept across frames.
    hold: Vec<u8>,
    closed: bool,
    /// Input and output lengths not yet added to the byte counters.
    marks: (usize, usize),
}

impl Session {
    /// A session at the start of a connection.
    pub fn new(ctx: Arc<ServerContext>) -> Self {
        Session {
            decoder: Decoder::new(ctx.config.wire),
            encoder: Encoder::new(ctx.config.wire.endian),
            ctx,
            frame: None,
            committing: None,
            hold: Vec::new(),
            closed: false,
            marks: (0, 0),
        }
    }

    /// Consumes input and appends replies to `out` until input runs out, a
    /// storage operation is needed, or the connection must close.
    pub fn feed<'a>(&mut self, input: &mut &'a [u8], out: &mut Vec<u8>) -> Step<'a> {
        self.feed_with(input, out, None)
    }

    /// As [`Session::feed`], except that when the replies to this input end
    /// with a run of whole echo frames, the run is not copied to `out`: on
    /// [`Step::NeedInput`], `tail` is that run, a piece of the input that is
    /// its own reply and is due after everything in `out`. A back-end that
    /// writes it straight from its read buffer saves the copy of every
    /// pipelined body.
    pub fn feed_direct<'a>(
        &mut self,
        input: &mut &'a [u8],
        out: &mut Vec<u8>,
        tail: &mut &'a [u8],
    ) -> Step<'a> {
        self.feed_with(input, out, Some(tail))
    }

    fn feed_with<'a>(
        &mut self,
        input: &mut &'a [u8],
        out: &mut Vec<u8>,
        tail: Option<&mut &'a [u8]>,
    ) -> Step<'a> {
        self.marks = (input.len(), out.len());
        let (step, direct) = self.step(input, out, tail.is_some());
        if let Some(tail) = tail {
            *tail = direct;
        }
        self.count_bytes(input.len(), out.len() + direct.len());
        self.marks.1 = out.len();
        step
    }

    /// Adds the bytes used and written since the marks to the counters, in
    /// one batch per read rather than per frame.
    fn count_bytes(&mut self, input_left: usize, out_len: usize) {
        let (in_mark, out_mark) = self.marks;
        self.ctx
            .counters
            .bytes((in_mark - input_left) as u64, (out_len - out_mark) as u64);
        self.marks = (input_left, out_len);
    }

    /// The step, and the unflushed run of echoes that ends the replies
    /// (empty unless `direct` and the step is `NeedInput`).
    fn step<'a>(
        &mut self,
        input: &mut &'a [u8],
        out: &mut Vec<u8>,
        direct: bool,
    ) -> (Step<'a>, &'a [u8]) {
        debug_assert!(self.committing.is_none(), "feed() before committed()");
        if self.closed {
            // Nothing after a fatal error is trusted or answered.
            *input = &[];
            return (Step::Close, &[]);
        }
        let mut run = Run::new(input);
        let step = self.frames(input, out, &mut run);
        if direct && matches!(step, Step::NeedInput) {
            return (step, run.take());
        }
        run.flush(out);
        (step, &[])
    }

    /// Decodes and answers frames. A whole small echo only extends `run`,
    /// which is written out lazily: when another frame writes a reply, the
    /// run goes in before it, so replies keep their order.
    fn frames<'a>(
        &mut self,
        input: &mut &'a [u8],
        out: &mut Vec<u8>,
        run: &mut Run<'a>,
    ) -> Step<'a> {
        loop {
            if let Some((header, len)) = self.decoder.peek_frame(input)
                && header.resolved_op() == Ok(Op::Echo)
                && len as u64 <= ECHO_HOLD
            {
                // Its reply is its bytes.
                self.counters().frame();
                let at = run.offset(input);
                *input = &input[len..];
                run.add(at, at + len, out);
                continue;
            }
            if matches!(self.frame, Some((Frame::Discard(Reply::Stats), _))) {
                // A stats reply counts every reply before it.
                run.flush(out);
            }
            let mark = out.len();
            let step = self.event(input, out);
            if out.len() > mark {
                run.flush_at(mark, out);
            }
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// Decodes one event and answers it; `None`: go on decoding.
    fn event<'a>(&mut self, input: &mut &'a [u8], out: &mut Vec<u8>) -> Option<Step<'a>> {
        let event = match self.decoder.decode(input) {
            Ok(Some(event)) => event,
            Ok(None) => return Some(Step::NeedInput),
            Err(e) => {
                self.error_reply(e.code, &e.message, e.id.as_deref(), None, out);
                self.closed = true;
                *input = &[];
                return Some(Step::Close);
            }
        };
        match event {
            Event::Head(header) => {
                self.counters().frame();
                if let Some(step) = self.start(header, out) {
                    return Some(step);
                }
            }
            Event::Body(chunk) => match &mut self.frame {
                Some((Frame::Echo { held }, _)) => {
                    if !*held {
                        out.extend_from_slice(chunk);
                    } else if self.hold.is_empty() && self.decoder.position() == Position::Body(0) {
                        // The whole body came in one piece: no need to hold it.
                        let _ = self.encoder.head(self.decoder.raw_header(), out);
                        out.extend_from_slice(chunk);
                        *held = false;
                    } else {
                        self.hold.extend_from_slice(chunk);
                    }
                }
                Some((Frame::Upload { failure: None, .. }, _)) => {
                    return Some(Step::Storage(StorageOp::Write(chunk)));
                }
                _ => {} // drained
            },
            Event::End => {
                if let Some(step) = self.finish(input.len(), out) {
                    return Some(step);
                }
            }
        }
        None
    }

    fn start<'a>(&mut self, header: Header, out: &mut Vec<u8>) -> Option<Step<'a>> {
        let raw = self.decoder.raw_header();
        let frame = match header.resolved_op() {
            Err(name) => Frame::Discard(Reply::Error(
                ErrorCode::UnknownOp,
                format!(
                    "unknown op {:?} (expected echo, upload or stats)",
                    name.get(raw)
                ),
            )),
            Ok(Op::Echo) if 4 + raw.len() as u64 + header.file_size <= ECHO_HOLD => {
                Frame::Echo { held: true }
            }
            Ok(Op::Echo) => {
                // `raw` came through the decoder, so it fits a u32 prefix.
                let _ = self.encoder.head(raw, out);
                Frame::Echo { held: false }
            }
            Ok(Op::Stats) => Frame::Discard(Reply::Stats),
            Ok(Op::Upload) => match upload_request(
                header.file_name.map(|t| t.get(raw).into_owned()),
                header.md5.map(|t| t.get(raw)).as_deref(),
            ) {
                Ok((file_name, expected)) => {
                    let op = StorageOp::Begin {
                        file_name: file_name.clone(),
                    };
                    self.frame = Some((
                        Frame::Upload {
                            file_name,
                            expected,
                            failure: None,
                        },
                        header.id,
                    ));
                    return Some(Step::Storage(op));
                }
                Err((code, message)) => {
                    self.counters().upload(false);
                    Frame::Discard(Reply::Error(code, message))
                }
            },
        };
        self.frame = Some((frame, header.id));
        None
    }

    fn finish<'a>(&mut self, input_left: usize, out: &mut Vec<u8>) -> Option<Step<'a>> {
        let (frame, id) = self.frame.take()?;
        match frame {
            Frame::Echo { held: false } => {}
            Frame::Echo { held: true } => {
                let _ = self.encoder.head(self.decoder.raw_header(), out);
                out.extend_from_slice(&self.hold);
                // Kept, like the driver's output buffer: at most ECHO_HOLD.
                self.hold.clear();
            }
            Frame::Discard(Reply::Stats) => {
                // The reply counts the request's own bytes and every reply before it.
                self.count_bytes(input_left, out.len());
                self.stats_reply(self.id(id), out);
            }
            Frame::Discard(Reply::Error(code, message)) => {
                self.error_reply(code, &message, self.id(id), None, out)
            }
            Frame::Upload {
                failure: Some(message),
                ..
            } => {
                self.counters().upload(false);
                self.error_reply(ErrorCode::IoError, &message, self.id(id), None, out);
            }
            Frame::Upload {
                file_name,
                expected,
                failure: None,
            } => {
                self.committing = Some((file_name, id));
                return Some(Step::Storage(StorageOp::Commit { expected }));
            }
        }
        None
    }

    /// Reports that a `Begin` or `Write` failed: the driver drops the upload
    /// (removing its temporary file), the body is drained, and `io_error` is
    /// replied when it ends.
    pub fn storage_failed(&mut self, error: &io::Error) {
        if let Some((
            Frame::Upload {
                file_name, failure, ..
            },
            _,
        )) = &mut self.frame
        {
            failure.get_or_insert_with(|| format!("storing {file_name:?}: {error}"));
        }
    }

    /// Reports the result of a `Commit` and appends its reply.
    pub fn committed(&mut self, result: Result<Stored, CommitError>, out: &mut Vec<u8>) {
        let Some((file_name, id)) = self.committing.take() else {
            debug_assert!(false, "committed() without a Commit");
            return;
        };
        let before = out.len();
        match result {
            Ok(stored) => {
                self.counters().upload(true);
                let reply = UploadOk {
                    op: "upload",
                    status: "ok",
                    file_name: &file_name,
                    bytes: stored.bytes,
                    md5: md5_hex(&stored.md5),
                    file_size: 0,
                    id: self.id(id),
                };
                self.json_reply(&reply, out);
            }
            Err(CommitError::Mismatch { computed }) => {
                self.counters().upload(false);
                let hex = md5_hex(&computed);
                let message = format!("md5 of the body is {hex}, not the one in the header");
                self.error_reply(
                    ErrorCode::Md5Mismatch,
                    &message,
                    self.id(id),
                    Some(&hex),
                    out,
                );
            }
            Err(CommitError::Io(e)) => {
                self.counters().upload(false);
                let message = format!("storing {file_name:?}: {e}");
                self.error_reply(ErrorCode::IoError, &message, self.id(id), None, out);
            }
        }
        self.counters().bytes(0, (out.len() - before) as u64);
    }

    /// Reports the end of the stream. A truncated frame is counted as an
    /// error; the driver must drop any upload in progress.
    pub fn eof(&mut self) -> Eof {
        match self.decoder.position() {
            Position::Boundary | Position::Failed => Eof::Clean,
            _ => {
                self.counters().error();
                if matches!(self.frame, Some((Frame::Upload { .. }, _))) {
                    self.counters().upload(false);
                }
                self.frame = None;
                self.hold = Vec::new();
                Eof::Truncated
            }
        }
    }

    /// True between frames, with no reply outstanding: closing now loses nothing.
    pub fn at_boundary(&self) -> bool {
        self.decoder.position() == Position::Boundary && self.committing.is_none()
    }

    /// True while inside a frame's prefix or header.
    pub fn in_head(&self) -> bool {
        matches!(self.decoder.position(), Position::Prefix | Position::Header)
    }

    /// True once a fatal error has been replied.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn counters(&self) -> &Counters {
        &self.ctx.counters
    }

    /// A request's id, read from its header (still the decoder's raw header).
    fn id(&self, span: Option<Span>) -> Option<&RawValue> {
        span?.raw_value(self.decoder.raw_header())
    }

    fn error_reply(
        &self,
        code: ErrorCode,
        message: &str,
        id: Option<&RawValue>,
        md5: Option<&str>,
        out: &mut Vec<u8>,
    ) {
        self.counters().error();
        let header = error_header(code, message, id, md5);
        let _ = self.encoder.head(&header, out);
    }

    fn stats_reply(&self, id: Option<&RawValue>, out: &mut Vec<u8>) {
        let (tcp, udp) = self.counters().snapshot();
        let reply = StatsOk {
            op: "stats",
            status: "ok",
            file_size: 0,
            backend: self.ctx.backend,
            tcp,
            udp,
            process: self.ctx.config.process.and_then(|probe| probe()),
            id,
        };
        self.json_reply(&reply, out);
    }

    fn json_reply(&self, reply: &impl Serialize, out: &mut Vec<u8>) {
        // Serializing these plain structs cannot fail.
        let header = serde_json::to_vec(reply).unwrap_or_default();
        let _ = self.encoder.head(&header, out);
    }
}

/// Whole echo frames met in one input, answered by copying them back in one
/// piece: an echo's reply is byte for byte its request, so a run of them
/// costs one copy instead of three per frame.
struct Run<'a> {
    input: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> Run<'a> {
    fn new(input: &'a [u8]) -> Self {
        Run {
            input,
            start: 0,
            end: 0,
        }
    }

    /// Where `rest`, a tail of the input, begins.
    fn offset(&self, rest: &[u8]) -> usize {
        self.input.len() - rest.len()
    }

    /// Adds the frame at `start..end`; a run that does not reach it is written first.
    fn add(&mut self, start: usize, end: usize, out: &mut Vec<u8>) {
        if self.end != start {
            self.flush(out);
            self.start = start;
        }
        self.end = end;
    }

    /// Writes the run.
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.take());
    }

    /// Writes the run at `at`, before replies that came after it.
    fn flush_at(&mut self, at: usize, out: &mut Vec<u8>) {
        let run = self.take();
        if !run.is_empty() {
            out.splice(at..at, run.iter().copied());
        }
    }

    /// The run's bytes, which it no longer holds.
    fn take(&mut self) -> &'a [u8] {
        let run = &self.input[self.start..self.end];
        self.start = self.end;
        run
    }
}

/// A non-fatal error reply: its code and message.
type ErrorReply = (ErrorCode, String);

/// Checks an upload's name and digest fields; `Err` is the non-fatal error reply.
fn upload_request(
    file_name: Option<String>,
    md5: Option<&str>,
) -> Result<(String, Option<[u8; 16]>), ErrorReply> {
    let file_name = file_name.ok_or(BadFileName::Missing);
    let file_name = file_name
        .and_then(|n| validate_file_name(&n).map(|()| n))
        .map_err(|e| (ErrorCode::BadFileName, e.to_string()))?;
    let expected = match md5 {
        None => None,
        Some(s) => Some(
            parse_md5_hex(s)
                .ok_or_else(|| (ErrorCode::BadMd5, format!("md5 {s:?} is not 32 hex digits")))?,
        ),
    };
    Ok((file_name, expected))
}

#[derive(Serialize)]
struct UploadOk<'a> {
    op: &'static str,
    status: &'static str,
    file_name: &'a str,
    bytes: u64,
    md5: String,
    file_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct StatsOk<'a> {
    op: &'static str,
    status: &'static str,
    file_size: u64,
    backend: &'a str,
    tcp: TcpStats,
    udp: UdpStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<ProcessUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
}
