//! Ceilings, measured in the same run as the results they bound: the same
//! bytes moved with no framing at all (an unframed echo, a raw UDP echo, a
//! raw TCP stream) and MD5 of the same bytes on one core. Ratios to these
//! survive a noisy machine; absolute numbers do not.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::driver::Schedule;

/// An in-process echo with no framing: one mio event loop writes each read
/// straight back. On a shared 2-core machine one event loop is the fastest
/// way to move these bytes (no thread switches), which is what makes it a
/// ceiling: a framed server can only add work to it. Stops when dropped.
pub struct EchoCeiling {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
}

impl EchoCeiling {
    /// Starts it on an ephemeral loopback port, on `cpu` when given.
    pub fn start(cpu: Option<usize>) -> std::io::Result<EchoCeiling> {
        let mut listener =
            mio::net::TcpListener::bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
        let addr = listener.local_addr()?;
        let poll = mio::Poll::new()?;
        poll.registry().register(
            &mut listener,
            mio::Token(usize::MAX),
            mio::Interest::READABLE,
        )?;
        let waker = Arc::new(mio::Waker::new(
            poll.registry(),
            mio::Token(usize::MAX - 1),
        )?);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name("ceiling-echo".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    super::pin::pin_current_thread(cpu);
                }
                unframed_echo(poll, listener, &flag)
            })?;
        Ok(EchoCeiling { addr, stop, waker })
    }
}

impl Drop for EchoCeiling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// A connection of the unframed echo: bytes read but not yet written back.
struct Echoing {
    s: mio::net::TcpStream,
    pending: Vec<u8>,
    sent: usize,
}

fn unframed_echo(mut poll: mio::Poll, listener: mio::net::TcpListener, stop: &AtomicBool) {
    use std::io::ErrorKind::{Interrupted, WouldBlock};
    let mut events = mio::Events::with_capacity(1024);
    let mut conns: slab::Slab<Echoing> = slab::Slab::new();
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::SeqCst) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(200)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            match ev.token().0 {
                usize::MAX => {
                    while let Ok((mut s, _)) = listener.accept() {
                        let _ = s.set_nodelay(true);
                        let e = conns.vacant_entry();
                        let token = mio::Token(e.key());
                        if poll
                            .registry()
                            .register(
                                &mut s,
                                token,
                                mio::Interest::READABLE | mio::Interest::WRITABLE,
                            )
                            .is_ok()
                        {
                            e.insert(Echoing {
                                s,
                                pending: Vec::new(),
                                sent: 0,
                            });
                        }
                    }
                }
                k if k == usize::MAX - 1 => {}
                k => {
                    let Some(c) = conns.get_mut(k) else { continue };
                    let mut dead = false;
                    // Write back what is owed, then read while nothing is owed.
                    'io: loop {
                        while c.sent < c.pending.len() {
                            match c.s.write(&c.pending[c.sent..]) {
                                Ok(n) => c.sent += n,
                                Err(e) if e.kind() == WouldBlock => break 'io,
                                Err(e) if e.kind() == Interrupted => {}
                                Err(_) => {
                                    dead = true;
                                    break 'io;
                                }
                            }
                        }
                        c.pending.clear();
                        c.sent = 0;
                        match c.s.read(&mut buf) {
                            Ok(0) => {
                                dead = true;
                                break;
                            }
                            Ok(n) => match c.s.write(&buf[..n]) {
                                Ok(w) if w == n => {}
                                Ok(w) => c.pending.extend_from_slice(&buf[w..n]),
                                Err(e) if e.kind() == WouldBlock => {
                                    c.pending.extend_from_slice(&buf[..n])
                                }
                                Err(_) => {
                                    dead = true;
                                    break;
                                }
                            },
                            Err(e) if e.kind() == WouldBlock => break,
                            Err(e) if e.kind() == Interrupted => {}
                            Err(_) => {
                                dead = true;
                                break;
                            }
                        }
                    }
                    if dead {
                        conns.remove(k);
                    }
                }
            }
        }
    }
}

/// An in-process raw UDP echo. Stops when dropped.
pub struct UdpCeiling {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpCeiling {
    /// Starts it on an ephemeral loopback port, on `cpu` when given.
    pub fn start(cpu: Option<usize>) -> std::io::Result<UdpCeiling> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let _ = socket2::SockRef::from(&s).set_recv_buffer_size(4 << 20);
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = s.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name("ceiling-udp".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    super::pin::pin_current_thread(cpu);
                }
                let mut b = vec![0u8; 65_536];
                while !flag.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = s.recv_from(&mut b) {
                        let _ = s.send_to(&b[..n], from);
                    }
                }
            })?;
        Ok(UdpCeiling { addr, stop })
    }
}

impl Drop for UdpCeiling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Raw loopback TCP: 64 KiB writes into a reader that discards them.
/// Returns MB/s per repetition.
pub fn tcp_stream(schedule: &Schedule, cpu: Option<usize>) -> std::io::Result<Vec<f64>> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let sink = thread::spawn(move || -> std::io::Result<()> {
        if let Some(cpu) = cpu {
            super::pin::pin_current_thread(cpu);
        }
        let (mut s, _) = l.accept()?;
        let mut b = vec![0u8; 256 * 1024];
        while s.read(&mut b)? > 0 {}
        Ok(())
    });
    let mut s = TcpStream::connect(addr)?;
    let block = vec![0x5au8; 64 * 1024];
    let warm_end = Instant::now() + schedule.warmup;
    while Instant::now() < warm_end {
        s.write_all(&block)?;
    }
    let mut out = Vec::with_capacity(schedule.reps);
    for _ in 0..schedule.reps {
        let (t, mut bytes) = (Instant::now(), 0u64);
        while t.elapsed() < schedule.rep {
            s.write_all(&block)?;
            bytes += block.len() as u64;
        }
        out.push(bytes as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    drop(s);
    let _ = sink.join();
    Ok(out)
}

/// The bytes of an upload: `block` repeated up to `total`.
pub fn stream_of(block: &[u8], total: u64) -> impl Iterator<Item = &[u8]> {
    let full = total / block.len() as u64;
    let rest = (total % block.len() as u64) as usize;
    (0..full)
        .map(move |_| block)
        .chain(std::iter::once(&block[..rest]).filter(|b| !b.is_empty()))
}

/// MD5 of the upload's bytes on one core: MB/s per repetition (one warm-up
/// pass first), and the digest.
pub fn md5(block: &[u8], total: u64, reps: usize) -> (Vec<f64>, [u8; 16]) {
    let digest = |_: ()| {
        let mut h = Md5::new();
        for piece in stream_of(block, total) {
            h.update(piece);
        }
        let d: [u8; 16] = h.finalize().into();
        d
    };
    let d = digest(());
    let out = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(digest(()));
            total as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    (out, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_of_covers_exactly_total() {
        let block = [1u8; 10];
        assert_eq!(
            stream_of(&block, 35).map(<[u8]>::len).collect::<Vec<_>>(),
            [10, 10, 10, 5]
        );
        assert_eq!(stream_of(&block, 20).count(), 2);
        assert_eq!(stream_of(&block, 0).count(), 0);
    }

    #[test]
    fn md5_of_the_stream_is_md5_of_the_bytes() {
        let block: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let (reps, d) = md5(&block, 2500, 2);
        assert_eq!(reps.len(), 2);
        let all: Vec<u8> = block.iter().cycle().take(2500).copied().collect();
        let want: [u8; 16] = Md5::digest(&all).into();
        assert_eq!(d, want);
    }
}
