//! The raw UDP echo: each datagram sent back to where it came from. Two
//! ways, because neither is best everywhere: a batch per system call each
//! way (`recvmmsg`, `sendmmsg`) does the fewest calls, but returns its
//! echoes in bursts of up to 64 that the prober's receiver, sharing a CPU
//! with the sender, can drop; a datagram per call paces them (a threaded
//! server answering that way beat the batched echo at 1472 B; see
//! docs/reports.md).
//! The UDP scenario sweeps both and keeps the faster.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::udp::batch::{self, BATCH, Peers};

/// A UDP socket on an ephemeral loopback port served by a thread of its
/// own: the raw echo ([`UdpCeiling`]) or a sink that receives and discards
/// (the far end of the sender's one-way rate). Stops when dropped.
pub struct UdpLoop {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// The raw UDP echo.
pub type UdpCeiling = UdpLoop;
/// The sink of the one-way rate.
pub type UdpSink = UdpLoop;

impl UdpLoop {
    /// Starts the raw echo, batched, on `cpu` when given.
    pub fn start(cpu: Option<usize>) -> std::io::Result<UdpLoop> {
        UdpLoop::spawn("ceiling-udp", cpu, echo)
    }

    /// Starts the raw echo a datagram per system call, on `cpu` when given.
    pub fn start_plain(cpu: Option<usize>) -> std::io::Result<UdpLoop> {
        UdpLoop::spawn("ceiling-udp-plain", cpu, |s, stop| {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    // Dropped on a full buffer, as the batched echo does.
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        })
    }

    /// Starts a sink, on `cpu` when given.
    pub fn sink(cpu: Option<usize>) -> std::io::Result<UdpLoop> {
        UdpLoop::spawn("ceiling-udp-sink", cpu, |s, stop| {
            let mut bufs = vec![vec![0u8; 65_536]; BATCH];
            let mut lens = [0usize; BATCH];
            while !stop.load(Ordering::SeqCst) {
                let _ = batch::recv(s, &mut bufs, &mut lens, None);
            }
        })
    }

    fn spawn(
        name: &str,
        cpu: Option<usize>,
        serve: fn(&UdpSocket, &AtomicBool),
    ) -> std::io::Result<UdpLoop> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let _ = socket2::SockRef::from(&s).set_recv_buffer_size(8 << 20);
        let _ = socket2::SockRef::from(&s).set_send_buffer_size(8 << 20);
        // Bounds each wait so the flag is seen.
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = s.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new().name(name.into()).spawn(move || {
            if let Some(cpu) = cpu {
                crate::measure::pin::pin_current_thread(cpu);
            }
            serve(&s, &flag)
        })?;
        Ok(UdpLoop { addr, stop })
    }
}

impl Drop for UdpLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn echo(s: &UdpSocket, stop: &AtomicBool) {
    let mut bufs = vec![vec![0u8; 65_536]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut peers = Peers::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(n) = batch::recv(s, &mut bufs, &mut lens, Some(&mut peers)) else {
            continue;
        };
        let msgs: Vec<&[u8]> = (0..n)
            .map(|i| &bufs[i][..lens[i].min(bufs[i].len())])
            .collect();
        // A full send buffer drops the rest of the batch, as the network
        // would: the echo never blocks its receiving on a send.
        let mut done = 0;
        while done < n {
            match batch::send(s, &msgs[done..], Some((&peers, done))) {
                Ok(k) if k > 0 => done += k,
                _ => break,
            }
        }
    }
}
