//! A [`Session`] driven with synchronous storage: the glue every
//! thread-based or event-loop back-end shares.

use std::sync::Arc;
use std::time::Instant;

use crate::server::ServerContext;
use crate::session::{Eof, Session, Step, StorageOp};
use crate::storage::{CommitError, Upload};

/// What the driver does after handing bytes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Flush the output, then close: a fatal error was replied.
    Close,
}

/// A session plus the upload it may have open, with storage done inline.
#[derive(Debug)]
pub struct Connection {
    session: Session,
    ctx: Arc<ServerContext>,
    upload: Option<Upload>,
    /// When the frame head being read began.
    head_since: Option<Instant>,
}

impl Connection {
    /// A new connection of the server `ctx`.
    pub fn new(ctx: &Arc<ServerContext>) -> Self {
        Connection {
            session: Session::new(Arc::clone(ctx)),
            ctx: Arc::clone(ctx),
            upload: None,
            head_since: None,
        }
    }

    /// Handles bytes read from the peer, appending replies to `out`.
    pub fn on_read(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        let mut rest = input;
        loop {
            match self.session.feed(&mut rest, out) {
                Step::NeedInput => {
                    self.head_since = if self.session.in_head() {
                        Some(self.head_since.unwrap_or_else(Instant::now))
                    } else {
                        None
                    };
                    return Flow::Continue;
                }
                Step::Close => {
                    self.upload = None;
                    return Flow::Close;
                }
                Step::Storage(op) => self.storage(op, out),
            }
        }
    }

    fn storage(&mut self, op: StorageOp<'_>, out: &mut Vec<u8>) {
        match op {
            StorageOp::Begin { file_name } => match self.ctx.storage.begin(&file_name) {
                Ok(upload) => self.upload = Some(upload),
                Err(e) => self.session.storage_failed(&e),
            },
            StorageOp::Write(data) => {
                if let Some(upload) = &mut self.upload
                    && let Err(e) = upload.write(data)
                {
                    self.upload = None;
                    self.session.storage_failed(&e);
                }
            }
            StorageOp::Commit { expected } => {
                let result = match self.upload.take() {
                    Some(upload) => upload.commit(expected),
                    None => Err(CommitError::Io(std::io::Error::other(
                        "upload was not open",
                    ))),
                };
                self.session.committed(result, out);
            }
        }
    }

    /// Handles the end of the stream: a partial upload is removed.
    pub fn on_eof(&mut self) -> Eof {
        self.upload = None;
        self.session.eof()
    }

    /// When the frame head being read must be complete, if one is.
    pub fn head_deadline(&self) -> Option<Instant> {
        self.head_since.map(|t| t + self.ctx.config.header_timeout)
    }

    /// True between frames with nothing outstanding.
    pub fn at_boundary(&self) -> bool {
        self.session.at_boundary()
    }
}
