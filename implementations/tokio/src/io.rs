//! Socket halves that count their system calls in the server's counters.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sockbench_core::{ServerContext, bump};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An I/O object whose successful reads and writes are counted.
pub struct Counted<T> {
    inner: T,
    ctx: Arc<ServerContext>,
}

impl<T> Counted<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, ctx: &Arc<ServerContext>) -> Self {
        Counted {
            inner,
            ctx: Arc::clone(ctx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        // End of stream is not counted: how many connections close, and
        // when, says nothing of how frames are read.
        if let Poll::Ready(Ok(())) = r
            && buf.filled().len() > before
        {
            bump(&this.ctx.counters.reads);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let buf = &buf[..buf
            .len()
            .min(this.ctx.config.max_write.unwrap_or(usize::MAX))];
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            bump(&this.ctx.counters.writes);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
