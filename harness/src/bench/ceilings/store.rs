//! The upload's floor: the work an upload cannot avoid, with no framing.
//! A loop on the server's CPU receives the bytes of one connection until
//! its end of stream, digests them (MD5) and writes them to a temporary
//! file in a storage directory, then, as the protocol asks, fsyncs it (with
//! fsync), renames it into place, fsyncs the directory, and answers with
//! the 16-byte digest. Its thread's CPU time is measured beside the rate:
//! the rate swings with the client and the page cache's writeback on a
//! shared machine, the work per GB much less.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use sockbench_core::digest::Md5;

use crate::measure::proc::this_thread_cpu;

use super::stream_of;

/// Bytes per read, each tried in turn; a ceiling is the best of them.
/// 256 KiB, the servers' `read_size`, costs the least CPU per GB (a read
/// that outgrows the core's L2 is fetched again from farther for MD5 and
/// for the write's copy); 1 MiB reads can be the faster with fsync, where
/// 256 KiB alone left servers above their ceiling (docs/performance.md).
const READS: [usize; 2] = [256 * 1024, 1 << 20];

/// What the store loop measured: the rates of the read size whose best
/// repetition was fastest, and the least CPU per GB of any.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// MB/s per repetition.
    pub rates: Vec<f64>,
    /// The read size those rates were measured with.
    pub read: usize,
    /// The loop's CPU seconds per GB over the measured repetitions.
    pub cpu_s_per_gb: f64,
}

/// Uploads `total` bytes (`block` repeated) to the store loop `reps` times
/// with each of [`READS`], after one warm-up upload each; its thread on
/// `cpu` when given. `digest` is checked against every answer.
pub fn store(
    block: &[u8],
    total: u64,
    digest: [u8; 16],
    reps: usize,
    fsync: bool,
    cpu: Option<usize>,
) -> io::Result<Stored> {
    let runs: Vec<Stored> = READS
        .map(|read| store_with(read, block, total, digest, reps, fsync, cpu))
        .into_iter()
        .collect::<io::Result<_>>()?;
    let cpu_s_per_gb = runs
        .iter()
        .map(|r| r.cpu_s_per_gb)
        .fold(f64::INFINITY, f64::min);
    let top = |r: &Stored| r.rates.iter().copied().fold(0.0, f64::max);
    let fastest = runs
        .into_iter()
        .max_by(|a, b| top(a).total_cmp(&top(b)))
        .expect("READS is not empty");
    Ok(Stored {
        cpu_s_per_gb,
        ..fastest
    })
}

fn store_with(
    read: usize,
    block: &[u8],
    total: u64,
    digest: [u8; 16],
    reps: usize,
    fsync: bool,
    cpu: Option<usize>,
) -> io::Result<Stored> {
    let dir = tempfile::Builder::new()
        .prefix("sockbench-store-")
        .tempdir()?;
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let path = dir.path().to_owned();
    let server = thread::spawn(move || -> io::Result<f64> {
        if let Some(cpu) = cpu {
            crate::measure::pin::pin_current_thread(cpu);
        }
        let mut buf = vec![0u8; read];
        let mut cpu_s = 0.0;
        for rep in 0..=reps {
            let (s, _) = l.accept()?;
            // Accepting is waiting, not work; the warm-up is not measured.
            let t0 = this_thread_cpu();
            serve(s, &path, &mut buf, fsync)?;
            if rep > 0 {
                cpu_s += this_thread_cpu() - t0;
            }
        }
        Ok(cpu_s)
    });
    let upload = || -> io::Result<Duration> {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        for piece in stream_of(block, total) {
            s.write_all(piece)?;
        }
        s.shutdown(Shutdown::Write)?;
        let mut got = [0u8; 16];
        s.read_exact(&mut got)?;
        if got != digest {
            return Err(io::Error::other("the store loop computed another digest"));
        }
        Ok(t.elapsed())
    };
    let result: io::Result<Vec<f64>> = (|| {
        upload()?;
        (0..reps)
            .map(|_| upload().map(|t| total as f64 / t.as_secs_f64() / 1e6))
            .collect()
    })();
    let rates = match result {
        Ok(rates) => rates,
        Err(e) => {
            // The loop may wait for uploads that will not come: empty ones end it.
            for _ in 0..=reps {
                let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            }
            let _ = server.join();
            return Err(e);
        }
    };
    let cpu_s = server
        .join()
        .map_err(|_| io::Error::other("the store loop panicked"))??;
    Ok(Stored {
        rates,
        read,
        cpu_s_per_gb: cpu_s / (total as f64 * reps as f64 / 1e9),
    })
}

/// One upload: receive to the end, digest and write as it comes, commit.
fn serve(mut s: TcpStream, dir: &Path, buf: &mut [u8], fsync: bool) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let tmp = dir.join(".upload.tmp");
    let mut file = File::create(&tmp)?;
    let mut hasher = Md5::new();
    loop {
        let n = s.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    if fsync {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&tmp, dir.join("upload.bin"))?;
    if fsync {
        File::open(dir)?.sync_all()?;
    }
    s.write_all(&hasher.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_loop_answers_the_digest_and_a_rate() {
        let block: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let total = 2_500_000;
        // md-5, not the servers' OpenSSL: one implementation checks the other.
        use md5::Digest as _;
        let mut h = md5::Md5::new();
        stream_of(&block, total).for_each(|p| h.update(p));
        let digest: [u8; 16] = h.finalize().into();
        let stored = store(&block, total, digest, 2, false, None).unwrap();
        assert_eq!(stored.rates.len(), 2);
        assert!(READS.contains(&stored.read), "{stored:?}");
        assert!(stored.rates.iter().all(|r| *r > 0.0));
        // MD5 alone is about 1.3 s/GB here: digesting 5 MB cannot be free,
        // nor take seconds.
        assert!(
            stored.cpu_s_per_gb > 0.1 && stored.cpu_s_per_gb < 100.0,
            "{stored:?}"
        );
        // A wrong expectation is caught, not measured.
        assert!(store(&block, total, [0; 16], 1, false, None).is_err());
    }
}
