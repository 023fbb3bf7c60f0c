//! The raw UDP echo: each datagram sent back to where it came from, a
//! batch per system call each way (`recvmmsg`, `sendmmsg`). A server that
//! answers each datagram with its own system calls does strictly more.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::udp::batch::{self, BATCH, Peers};

/// A running raw UDP echo on an ephemeral loopback port. Stops when dropped.
pub struct UdpCeiling {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpCeiling {
    /// Starts it, on `cpu` when given.
    pub fn start(cpu: Option<usize>) -> std::io::Result<UdpCeiling> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let _ = socket2::SockRef::from(&s).set_recv_buffer_size(8 << 20);
        let _ = socket2::SockRef::from(&s).set_send_buffer_size(8 << 20);
        // Bounds each wait so the flag is seen.
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = s.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name("ceiling-udp".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    crate::bench::pin::pin_current_thread(cpu);
                }
                echo(&s, &flag)
            })?;
        Ok(UdpCeiling { addr, stop })
    }
}

impl Drop for UdpCeiling {
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

/// A UDP socket that receives and discards, in batches: the far end of the
/// sender's one-way rate. Stops when dropped.
pub struct UdpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpSink {
    /// Starts it, on `cpu` when given.
    pub fn start(cpu: Option<usize>) -> std::io::Result<UdpSink> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let _ = socket2::SockRef::from(&s).set_recv_buffer_size(8 << 20);
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = s.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name("ceiling-udp-sink".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    crate::bench::pin::pin_current_thread(cpu);
                }
                let mut bufs = vec![vec![0u8; 65_536]; BATCH];
                let mut lens = [0usize; BATCH];
                while !flag.load(Ordering::SeqCst) {
                    let _ = batch::recv(&s, &mut bufs, &mut lens, None);
                }
            })?;
        Ok(UdpSink { addr, stop })
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
