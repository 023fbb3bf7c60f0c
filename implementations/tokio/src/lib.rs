//! Async tasks on a multi-thread tokio runtime of `--workers` threads: a
//! task per connection, one for UDP echo, one accepting.
//!
//! The connection task ([`conn`]) carries out a core `Driver`'s actions
//! with async reads and writes; each batch of replies goes out in one
//! write. Uploads go to a blocking worker ([`upload::UploadWorker`]), so
//! disk writes and fsync never block the runtime's workers.

mod conn;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use sockbench_core::{
    AcceptFailure, Backend, Capabilities, RecvFailure, Server, ServerContext, UDP_BUFFER, UdpEcho,
    accept_failed, admit,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `tokio` back-end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Backend for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::CONCURRENT
    }

    fn run(&self, server: Server) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(server.ctx.config.threads())
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
                // Refused: the stream is dropped, closing it (see `admit`).
                if let Ok(admitted) = admit(&ctx) {
                    let ctx = Arc::clone(&ctx);
                    tasks.spawn(conn::connection(stream, ctx, cancel.clone(), admitted));
                }
            }
            Err(e) => {
                if accept_failed(&e) == AcceptFailure::Backoff {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
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

async fn udp_echo(socket: UdpSocket, ctx: Arc<ServerContext>, cancel: CancellationToken) {
    let echo = UdpEcho(&ctx.counters);
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => echo
                .received(n, from)
                .sent(&socket.send_to(&buf[..n], from).await),
            Err(e) => {
                if echo.recv_failed(&e) == RecvFailure::Backoff {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}
