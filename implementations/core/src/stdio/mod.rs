//! std::net building blocks for the thread-based back-ends (`blocking`,
//! `threaded`): a blocking read/write loop carrying out a [`Driver`]'s
//! actions, the UDP echo thread, the accept loop, and shutdown wake-ups for
//! threads blocked in system calls ([`Tracker`]).

mod tracker;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown as Both, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use tracker::{Tracked, Tracker};

use crate::admission::{AcceptFailure, Admitted, accept_failed};
use crate::driver::{Action, Driver};
use crate::server::ServerContext;
use crate::udp::{RecvFailure, UDP_BUFFER, UdpEcho};

/// A socket timeout this close to the wanted one is kept: setting it on
/// every read would cost a system call per read, and waking a little early
/// or late only moves a close by as much.
const SLACK: Duration = Duration::from_millis(20);

/// Serves one TCP connection with a [`Driver`] until it closes.
pub fn serve_connection(
    stream: TcpStream,
    ctx: &Arc<ServerContext>,
    tracker: &Arc<Tracker>,
    admitted: Admitted,
) {
    let _admitted = admitted;
    // Shared with the tracker rather than cloned: a clone would cost a
    // second file descriptor per connection.
    let stream = Arc::new(stream);
    let tracked = tracker.register(&stream);
    let mut stream: &TcpStream = &stream;
    // The write timeout stands for the driver's deadline while a write
    // blocks: a peer that reads nothing for the idle timeout is cut off.
    let configured = stream.set_nodelay(true).and_then(|()| {
        stream.set_write_timeout(Some(ctx.config.idle_timeout))?;
        stream.set_read_timeout(Some(ctx.config.idle_timeout))
    });
    if let Err(e) = configured {
        log::debug!("cannot configure connection: {e}");
        return;
    }
    let mut timeout = ctx.config.idle_timeout;
    let mut driver = Driver::new(ctx, Instant::now());
    let mut buf = vec![0u8; ctx.config.read_size];
    loop {
        // Published before the driver looks at the stop flag: the shutdown
        // hook either sees idle and closes the socket, or the driver sees
        // the flag.
        tracked.idle.store(driver.is_idle(), SeqCst);
        let now = Instant::now();
        match driver.next(now) {
            Action::Close => break,
            Action::ShutdownWrite => {
                let _ = stream.shutdown(Both::Write);
            }
            Action::AbortUpload => {}
            Action::Write(bytes) => match stream.write(bytes) {
                Ok(n) => driver.on_written(n, Instant::now()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => driver.on_error(&e),
            },
            Action::Read => {
                let wanted = driver
                    .poll_timeout()
                    .map_or(ctx.config.idle_timeout, |t| {
                        t.saturating_duration_since(now)
                    })
                    .max(Duration::from_millis(1));
                if wanted.abs_diff(timeout) > SLACK {
                    timeout = wanted;
                    let _ = stream.set_read_timeout(Some(timeout));
                }
                match stream.read(&mut buf) {
                    Ok(0) => driver.on_eof(),
                    Ok(n) => {
                        tracked.idle.store(false, SeqCst);
                        let now = Instant::now();
                        // The read's closing run of echoes goes back from
                        // `buf` with the replies before it, in one call.
                        let tail = driver.on_read_direct(&buf[..n], now);
                        if !tail.is_empty() {
                            match stream.write_vectored(&driver.direct_slices(tail)) {
                                Ok(n) => driver.on_written_direct(n, tail, Instant::now()),
                                Err(e) => {
                                    driver.keep_direct(tail);
                                    if e.kind() != ErrorKind::Interrupted {
                                        driver.on_error(&e);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        driver.on_timeout(Instant::now());
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => driver.on_error(&e),
                }
            }
        }
    }
}

/// Accepts until shutdown, handing each connection to `handle`.
pub fn accept_loop(
    listener: &TcpListener,
    ctx: &ServerContext,
    mut handle: impl FnMut(TcpStream),
) -> io::Result<()> {
    wake_on_shutdown(listener, ctx)?;
    while !ctx.shutdown.is_triggered() {
        match listener.accept() {
            Ok((stream, _)) if ctx.shutdown.is_triggered() => drop(stream),
            Ok((stream, _)) => handle(stream),
            Err(e) => {
                if accept_failed(&e) == AcceptFailure::Backoff {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    Ok(())
}

/// The address a socket bound to `addr` can be reached at from this host.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn wake_on_shutdown(listener: &TcpListener, ctx: &ServerContext) -> io::Result<()> {
    // A thread blocked in accept() wakes when a connection arrives.
    let addr = reachable(listener.local_addr()?);
    ctx.shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    });
    Ok(())
}

/// Spawns the UDP echo thread.
pub fn spawn_udp_echo(socket: UdpSocket, ctx: Arc<ServerContext>) -> io::Result<JoinHandle<()>> {
    let addr = reachable(socket.local_addr()?);
    ctx.shutdown.on_trigger(move || {
        // A thread blocked in recv_from() wakes when a datagram arrives.
        let any: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
        };
        if let Ok(s) = UdpSocket::bind(any) {
            let _ = s.send_to(&[], addr);
        }
    });
    // In case the wake-up datagram is lost.
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    thread::Builder::new()
        .name("udp-echo".into())
        .spawn(move || udp_echo(&socket, &ctx))
}

fn udp_echo(socket: &UdpSocket, ctx: &ServerContext) {
    let echo = UdpEcho(&ctx.counters);
    let mut buf = vec![0u8; UDP_BUFFER];
    while !ctx.shutdown.is_triggered() {
        match socket.recv_from(&mut buf) {
            Ok(_) if ctx.shutdown.is_triggered() => break,
            Ok((n, from)) => echo
                .received(n, from)
                .sent(&socket.send_to(&buf[..n], from)),
            Err(e) => {
                if echo.recv_failed(&e) == RecvFailure::Backoff {
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}
