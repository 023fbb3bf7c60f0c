//! Async tasks on a multi-thread tokio runtime: a task per connection, one
//! for UDP echo, the accept loop on the runtime too. `--workers` sets the
//! worker count (default: one per core).
//!
//! The connection task reads through `FramedRead` with [`codec::SessionCodec`]
//! (the shared `Session` behind tokio-util's `Decoder` trait) and writes each
//! batch of replies with one `write_all`. Uploads go to a blocking worker
//! ([`upload::UploadWorker`]), so disk writes and fsync never block the
//! runtime's workers.

mod codec;
mod io;
mod upload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sockbench_core::stdio::{ActiveGuard, UDP_BUFFER};
use sockbench_core::{
    Backend, Capabilities, CommitError, Server, ServerContext, add, bump, unbump,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::{sleep_until, timeout};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::{Item, SessionCodec};
use crate::io::Counted;
use crate::upload::UploadWorker;

/// The `tokio` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Backend for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { concurrent: true }
    }

    fn run(&self, server: Server) -> std::io::Result<()> {
        let workers = server
            .ctx
            .config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("tokio-worker")
            .enable_all()
            .build()?;
        let result = rt.block_on(serve(server));
        // Tasks still alive past the grace period are dropped here; their
        // uploads are abandoned and removed.
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

async fn serve(server: Server) -> std::io::Result<()> {
    let Server { tcp, udp, ctx } = server;
    tcp.set_nonblocking(true)?;
    udp.set_nonblocking(true)?;
    let listener = TcpListener::from_std(tcp)?;
    let udp = UdpSocket::from_std(udp)?;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    ctx.shutdown.on_trigger(move || c.cancel());

    let tasks = TaskTracker::new();
    tasks.spawn(udp_echo(udp, Arc::clone(&ctx), cancel.clone()));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let active = ActiveGuard::new(&ctx);
                if active.over_cap() {
                    bump(&ctx.counters.refused);
                    drop(stream);
                    continue;
                }
                tasks.spawn(connection(stream, Arc::clone(&ctx), cancel.clone(), active));
            }
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(listener);
    tasks.close();
    let limit = ctx.config.grace + Duration::from_secs(1);
    if timeout(limit, tasks.wait()).await.is_err() {
        log::warn!(
            "{} task(s) still running after the grace period",
            tasks.len()
        );
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    ctx: Arc<ServerContext>,
    cancel: CancellationToken,
    _active: ActiveGuard,
) {
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("TCP_NODELAY: {e}");
    }
    let (rd, wr) = stream.into_split();
    let mut wr = Counted::new(wr, &ctx);
    let mut framed = FramedRead::with_capacity(
        Counted::new(rd, &ctx),
        SessionCodec::new(&ctx),
        ctx.config.io_buffer,
    );
    let idle = ctx.config.idle_timeout;
    let mut upload: Option<UploadWorker> = None;
    // Once shutdown begins: the end of this connection's grace period.
    let mut stop_by: Option<Instant> = None;
    loop {
        if stop_by.is_some() && framed.decoder().at_boundary() {
            break;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled(), if stop_by.is_none() => {
                stop_by = Some(Instant::now() + ctx.config.grace);
                continue;
            }
            _ = sleep_until(stop_by.map_or(far, tokio::time::Instant::from_std)), if stop_by.is_some() => break,
                        next = timeout(read_limit(framed.decoder(), idle), framed.next()) => next,
        };
        let item = match next {
            Err(_) => {
                log::debug!("closing a connection idle for {idle:?}");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                log::debug!("read failed: {e}");
                break;
            }
            Ok(Some(Ok(item))) => item,
        };
        match item {
            Item::Output(bytes) => {
                if !matches!(timeout(idle, wr.write_all(&bytes)).await, Ok(Ok(()))) {
                    log::debug!("write failed or timed out");
                    break;
                }
            }
            Item::Begin(file_name) => upload = Some(UploadWorker::start(&ctx.storage, file_name)),
            Item::Write(chunk) => {
                if let Some(worker) = upload.as_mut()
                    && let Err(e) = worker.write(chunk).await
                {
                    upload = None;
                    framed.decoder_mut().storage_failed(&e);
                }
            }
            Item::Commit(expected) => {
                let result = match upload.take() {
                    Some(worker) => worker.commit(expected).await,
                    None => Err(CommitError::Io(std::io::Error::other(
                        "upload was not open",
                    ))),
                };
                framed.decoder_mut().committed(result);
            }
            // The loop's next read is timed by the header deadline.
            Item::HeadStarted => {}
            Item::Close => {
                // Let the error reply arrive: FIN, then discard input briefly.
                let _ = wr.shutdown().await;
                let mut sink = vec![0u8; 16 * 1024];
                let mut budget: usize = 4 << 20;
                let rd = framed.get_mut();
                let lingering = async {
                    while let Ok(n) = rd.read(&mut sink).await {
                        if n == 0 || n >= budget {
                            break;
                        }
                        budget -= n;
                    }
                };
                let _ = timeout(Duration::from_secs(1), lingering).await;
                break;
            }
        }
    }
    // Whatever ended the loop, a frame in progress is discarded: the upload's
    // temporary file is gone before the failure is counted, as in the
    // synchronous back-ends.
    if let Some(worker) = upload {
        worker.abort().await;
    }
    framed.decoder_mut().end();
}

/// The idle timeout, or less while a frame head is being read.
fn read_limit(codec: &SessionCodec, idle: Duration) -> Duration {
    codec.head_deadline().map_or(idle, |d| {
        d.saturating_duration_since(Instant::now()).min(idle)
    })
}

async fn udp_echo(socket: UdpSocket, ctx: Arc<ServerContext>, cancel: CancellationToken) {
    let c = &ctx.counters;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => {
                bump(&c.datagrams_in);
                add(&c.udp_bytes_in, n as u64);
                bump(&c.datagrams_out);
                if let Err(e) = socket.send_to(&buf[..n], from).await {
                    unbump(&c.datagrams_out);
                    log::debug!("udp send to {from}: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                log::warn!("udp receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
