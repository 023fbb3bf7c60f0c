//! The connection task: reads into a `BytesMut`, hands the bytes to a
//! delegating core [`Driver`], and carries out its actions. Upload chunks
//! are split off the read buffer without copying and go to an
//! [`UploadWorker`], so disk writes and fsync never block the runtime. A
//! read's closing run of echoes goes back from the read buffer, in one
//! vectored write with the replies before it.
//!
//! The read buffer is allocated when data arrives, not when the connection
//! opens, and released after `RELEASE_AFTER` without input, so an idle
//! connection holds none.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use sockbench_core::{Action, Admitted, CommitError, Driver, ServerContext, StorageOp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;

use crate::upload::UploadWorker;

/// How long a connection waits for input before it gives its read buffer
/// back.
const RELEASE_AFTER: Duration = Duration::from_millis(500);

/// Serves one connection until its driver says close.
pub async fn connection(
    mut stream: TcpStream,
    ctx: Arc<ServerContext>,
    cancel: CancellationToken,
    _admitted: Admitted,
) {
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("TCP_NODELAY: {e}");
    }
    let mut driver = Driver::delegating(&ctx, Instant::now());
    let mut buf = BytesMut::new();
    let mut upload: Option<UploadWorker> = None;
    loop {
        let deadline =
            tokio::time::Instant::from_std(driver.poll_timeout().unwrap_or_else(Instant::now));
        match driver.next(Instant::now()) {
            Action::Close => break,
            Action::ShutdownWrite => drop(stream.shutdown().await),
            Action::AbortUpload => {
                if let Some(worker) = upload.take() {
                    worker.abort().await;
                }
            }
            Action::Write(bytes) => match timeout_at(deadline, stream.write(bytes)).await {
                Ok(Ok(n)) => driver.on_written(n, Instant::now()),
                Ok(Err(e)) => driver.on_error(&e),
                Err(_) => driver.on_timeout(Instant::now()),
            },
            Action::Read => {
                // Taken after `next`, which may have started the grace period.
                let deadline = driver.poll_timeout().unwrap_or_else(Instant::now);
                let stopping = driver.is_stopping();
                // An upload's body streams, and with several connections
                // open each read takes all there is: large reads mean fewer
                // calls, fewer chunks for an upload's worker, and fewer,
                // larger replies. One connection alone reads less at a time,
                // so its requests and replies overlap.
                let size = match driver.is_storing() || ctx.counters.active() > 1 {
                    true => ctx.config.read_size,
                    false => ctx.config.io_buffer,
                };
                let release = buf.is_empty() && buf.capacity() > 0;
                let wake = match release {
                    true => deadline.min(Instant::now() + RELEASE_AFTER),
                    false => deadline,
                };
                let read = tokio::select! {
                    biased;
                    // The driver reads the stop flag itself on the next turn.
                    () = cancel.cancelled(), if !stopping => continue,
                    r = timeout_at(wake.into(), read_buf(&mut stream, &mut buf, size)) => r,
                };
                match read {
                    Ok(Ok(0)) => driver.on_eof(),
                    Ok(Ok(_)) => feed(&mut driver, &mut stream, &mut buf, &mut upload, &ctx).await,
                    Ok(Err(e)) => driver.on_error(&e),
                    Err(_) if wake < deadline => buf = BytesMut::new(),
                    Err(_) => driver.on_timeout(Instant::now()),
                }
            }
        }
    }
    // Whatever ended the loop, an upload's temporary file is gone before
    // the driver counts the failure on drop.
    if let Some(worker) = upload {
        worker.abort().await;
    }
}

/// Waits until the socket has input, then reads it into `buf`, which gets
/// room for `size` bytes only then.
async fn read_buf(stream: &mut TcpStream, buf: &mut BytesMut, size: usize) -> io::Result<usize> {
    if buf.capacity() == 0 {
        loop {
            stream.readable().await?;
            buf.reserve(size);
            match stream.try_read_buf(buf) {
                // tokio assumes an accepted stream readable, so the first
                // wake can find nothing: the buffer goes back rather than
                // stay with a connection that may stay idle.
                Err(e) if e.kind() == ErrorKind::WouldBlock => *buf = BytesMut::new(),
                r => return r,
            }
        }
    }
    buf.reserve(size);
    stream.read_buf(buf).await
}

/// Writes the pending replies and a run of echoes still in the read buffer
/// in one vectored write; the driver keeps what it did not take.
async fn write_direct(driver: &mut Driver, stream: &mut TcpStream, tail: &[u8]) {
    let deadline = driver.poll_timeout().unwrap_or_else(Instant::now);
    let slices = driver.direct_slices(tail);
    let written = timeout_at(deadline.into(), stream.write_vectored(&slices)).await;
    let now = Instant::now();
    match written {
        Ok(Ok(n)) => driver.on_written_direct(n, tail, now),
        Ok(Err(e)) => {
            driver.keep_direct(tail);
            driver.on_error(&e);
        }
        Err(_) => {
            driver.keep_direct(tail);
            driver.on_timeout(now);
        }
    }
}

/// Hands a read to the driver, carrying out the storage operations it asks for.
async fn feed(
    driver: &mut Driver,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    upload: &mut Option<UploadWorker>,
    ctx: &Arc<ServerContext>,
) {
    let now = Instant::now();
    loop {
        let mut rest = &buf[..];
        let mut tail: &[u8] = &[];
        let op = driver.on_read_delegated_direct(&mut rest, &mut tail, now);
        let used = buf.len() - rest.len();
        // Each arm takes what it needs from `op` before touching `buf`.
        match op {
            None => {
                if !tail.is_empty() {
                    write_direct(driver, stream, tail).await;
                }
                return buf.advance(used);
            }
            Some(StorageOp::Begin { file_name }) => {
                buf.advance(used);
                *upload = Some(UploadWorker::start(&ctx.storage, file_name));
            }
            Some(StorageOp::Write(chunk)) => {
                // The chunk is the last thing consumed: split off, no copy.
                let n = chunk.len();
                let chunk = buf.split_to(used).freeze().slice(used - n..);
                if let Some(worker) = upload.as_mut()
                    && let Err(e) = worker.write(chunk).await
                {
                    *upload = None;
                    driver.storage_failed(&e);
                }
            }
            Some(StorageOp::Commit { expected }) => {
                buf.advance(used);
                if buf.capacity() > ctx.config.io_buffer {
                    // The body's large read buffer is not kept while idle.
                    *buf = BytesMut::from(&buf[..]);
                }
                let result = match upload.take() {
                    Some(worker) => worker.commit(expected).await,
                    None => Err(CommitError::not_open()),
                };
                driver.committed(result);
            }
        }
    }
}
