//! The raw TCP stream: how fast loopback TCP moves bytes one way, as
//! iperf3 measures it. 128 KiB writes and 128 KiB reads (iperf3's defaults;
//! smaller writes into larger reads ran well below it), default socket
//! buffers, and the rate counted where the bytes arrive, not where they
//! leave.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use crate::bench::driver::Schedule;

/// Bytes per write and per read.
pub const BLOCK: usize = 128 * 1024;

/// MB/s received per repetition, after the schedule's warm-up; the sink on
/// `cpu` when given (the writer stays on the calling thread's CPU).
pub fn tcp_stream(schedule: &Schedule, cpu: Option<usize>) -> std::io::Result<Vec<f64>> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&received);
    let sink = thread::spawn(move || -> std::io::Result<()> {
        if let Some(cpu) = cpu {
            crate::measure::pin::pin_current_thread(cpu);
        }
        let (mut s, _) = l.accept()?;
        let mut b = vec![0u8; BLOCK];
        loop {
            let n = s.read(&mut b)?;
            if n == 0 {
                return Ok(());
            }
            count.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let mut s = TcpStream::connect(addr)?;
    let block = vec![0x5au8; BLOCK];
    let warm_end = Instant::now() + schedule.warmup;
    while Instant::now() < warm_end {
        s.write_all(&block)?;
    }
    let mut out = Vec::with_capacity(schedule.reps);
    for _ in 0..schedule.reps {
        let (t, from) = (Instant::now(), received.load(Ordering::Relaxed));
        while t.elapsed() < schedule.rep {
            s.write_all(&block)?;
        }
        let bytes = received.load(Ordering::Relaxed) - from;
        out.push(bytes as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    drop(s);
    let _ = sink.join();
    Ok(out)
}
