//! A `tokio_util` [`Decoder`] that drives a [`Session`] over the read buffer,
//! so `FramedRead` does the buffering and the end-of-stream handling.
//!
//! Items are what the connection task must do next: write replies, or run a
//! storage operation off the runtime. Body chunks for uploads are split off
//! the read buffer without copying.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use sockbench_core::{CommitError, ServerContext, Session, Step, StorageOp, Stored};
use tokio_util::codec::Decoder;

/// What the connection task must do next.
#[derive(Debug)]
pub enum Item {
    /// Replies to write, in order.
    Output(Vec<u8>),
    /// Start an upload of this (validated) name.
    Begin(String),
    /// Append this body chunk to the upload.
    Write(Bytes),
    /// Commit the upload and report with [`SessionCodec::committed`].
    Commit(Option<[u8; 16]>),
    /// A fatal error was replied (in an earlier `Output`): close.
    Close,
    /// A frame head began arriving in pieces. `FramedRead::next` keeps
    /// reading until an item comes, so without this the read's timeout,
    /// chosen before the head began, would stay the idle timeout and a
    /// slowloris could trickle a header for as long as it liked.
    HeadStarted,
}

/// A session behind the `Decoder` trait.
#[derive(Debug)]
pub struct SessionCodec {
    session: Session,
    header_timeout: std::time::Duration,
    /// When the frame head being read began.
    head_since: Option<Instant>,
    read_size: usize,
    out: Vec<u8>,
    closing: bool,
    ended: bool,
}

impl SessionCodec {
    /// A codec for a new connection.
    pub fn new(ctx: &Arc<ServerContext>) -> Self {
        SessionCodec {
            session: Session::new(Arc::clone(ctx)),
            header_timeout: ctx.config.header_timeout,
            head_since: None,
            read_size: ctx.config.io_buffer,
            out: Vec::new(),
            closing: false,
            ended: false,
        }
    }

    /// Reports a failed `Begin` or `Write`.
    pub fn storage_failed(&mut self, e: &io::Error) {
        self.session.storage_failed(e);
    }

    /// Reports a commit's result; its reply comes out of the next `decode`.
    pub fn committed(&mut self, result: Result<Stored, CommitError>) {
        self.session.committed(result, &mut self.out);
    }

    /// When the frame head being read must be complete, if one is.
    pub fn head_deadline(&self) -> Option<Instant> {
        self.head_since.map(|t| t + self.header_timeout)
    }

    /// True between frames with nothing outstanding.
    pub fn at_boundary(&self) -> bool {
        self.session.at_boundary() && self.out.is_empty()
    }

    /// Ends the stream where it is (EOF, timeout, shutdown): a partial frame
    /// is counted and discarded. Idempotent.
    pub fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.session.eof();
        }
    }

    fn take_output(&mut self) -> Option<Item> {
        (!self.out.is_empty()).then(|| Item::Output(std::mem::take(&mut self.out)))
    }
}

impl Decoder for SessionCodec {
    type Item = Item;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if self.closing {
            src.clear();
            return Ok(self.take_output().or_else(|| {
                let first = !self.ended;
                self.ended = true;
                first.then_some(Item::Close)
            }));
        }
        let mut rest = &src[..];
        let step = self.session.feed(&mut rest, &mut self.out);
        let used = src.len() - rest.len();
        match step {
            Step::NeedInput => {
                src.advance(used);
                let started = self.head_since.is_none() && self.session.in_head();
                self.head_since = if self.session.in_head() {
                    Some(self.head_since.unwrap_or_else(Instant::now))
                } else {
                    None
                };
                // FramedRead reclaims consumed space only once the buffer is
                // full, so the next read could get a sliver and split a frame
                // across two reads. An emptied buffer reclaims without copying.
                src.reserve(self.read_size);
                Ok(self
                    .take_output()
                    .or_else(|| started.then_some(Item::HeadStarted)))
            }
            Step::Storage(StorageOp::Write(chunk)) => {
                // The chunk is the last thing consumed: split it off, no copy.
                let n = chunk.len();
                let mut consumed = src.split_to(used);
                Ok(Some(Item::Write(consumed.split_off(used - n).freeze())))
            }
            Step::Storage(StorageOp::Begin { file_name }) => {
                src.advance(used);
                Ok(Some(Item::Begin(file_name)))
            }
            Step::Storage(StorageOp::Commit { expected }) => {
                src.advance(used);
                Ok(Some(Item::Commit(expected)))
            }
            Step::Close => {
                src.clear();
                self.closing = true;
                Ok(Some(self.take_output().unwrap_or(Item::Close)))
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        self.end();
        Ok(None)
    }
}
