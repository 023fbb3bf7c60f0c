//! The connection task: reads into a `BytesMut`, hands the bytes to a
//! delegating core [`Driver`], and carries out its actions. Upload chunks
//! are split off the read buffer without copying and go to an
//! [`UploadWorker`], so disk writes and fsync never block the runtime.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use sockbench_core::{Action, Admitted, CommitError, Driver, ServerContext, StorageOp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;

use crate::upload::UploadWorker;

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
    let mut buf = BytesMut::with_capacity(ctx.config.io_buffer);
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
                // An upload's body streams: large reads mean fewer calls and
                // fewer chunks for its worker. Other reads stay small, so an
                // idle connection holds little.
                buf.reserve(if driver.is_storing() {
                    ctx.config.read_size
                } else {
                    ctx.config.io_buffer
                });
                let read = tokio::select! {
                    biased;
                    // The driver reads the stop flag itself on the next turn.
                    () = cancel.cancelled(), if !stopping => continue,
                    r = timeout_at(deadline.into(), stream.read_buf(&mut buf)) => r,
                };
                match read {
                    Ok(Ok(0)) => driver.on_eof(),
                    Ok(Ok(_)) => feed(&mut driver, &mut buf, &mut upload, &ctx).await,
                    Ok(Err(e)) => driver.on_error(&e),
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

/// Hands a read to the driver, carrying out the storage operations it asks for.
async fn feed(
    driver: &mut Driver,
    buf: &mut BytesMut,
    upload: &mut Option<UploadWorker>,
    ctx: &Arc<ServerContext>,
) {
    let now = Instant::now();
    loop {
        let mut rest = &buf[..];
        let op = driver.on_read_delegated(&mut rest, now);
        let used = buf.len() - rest.len();
        // Each arm takes what it needs from `op` before touching `buf`.
        match op {
            None => return buf.advance(used),
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
