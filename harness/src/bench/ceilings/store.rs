//! The upload's floor: the work an upload cannot avoid, with no framing.
//! A loop on the server's CPU receives the bytes of one connection until
//! its end of stream, digests them (MD5) and writes them to a temporary
//! file in a storage directory, then, as the protocol asks, fsyncs it (with
//! fsync), renames it into place, fsyncs the directory, and answers with
//! the 16-byte digest. 1 MiB reads: fewer calls than any back-end makes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use sockbench_core::digest::Md5;

use super::stream_of;

/// Bytes per read.
const READ: usize = 1 << 20;

/// MB/s per repetition of uploading `total` bytes (`block` repeated) to the
/// store loop, after one warm-up upload; its thread on `cpu` when given.
/// `digest` is checked against every answer.
pub fn store(
    block: &[u8],
    total: u64,
    digest: [u8; 16],
    reps: usize,
    fsync: bool,
    cpu: Option<usize>,
) -> io::Result<Vec<f64>> {
    let dir = tempfile::Builder::new()
        .prefix("sockbench-store-")
        .tempdir()?;
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let path = dir.path().to_owned();
    let server = thread::spawn(move || -> io::Result<()> {
        if let Some(cpu) = cpu {
            crate::bench::pin::pin_current_thread(cpu);
        }
        let mut buf = vec![0u8; READ];
        for _ in 0..=reps {
            let (s, _) = l.accept()?;
            serve(s, &path, &mut buf, fsync)?;
        }
        Ok(())
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
    if result.is_err() {
        // The loop may wait for uploads that will not come: empty ones end it.
        for _ in 0..=reps {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        let _ = server.join();
        return result;
    }
    server
        .join()
        .map_err(|_| io::Error::other("the store loop panicked"))??;
    result
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
        let rates = store(&block, total, digest, 2, false, None).unwrap();
        assert_eq!(rates.len(), 2);
        assert!(rates.iter().all(|r| *r > 0.0));
        // A wrong expectation is caught, not measured.
        assert!(store(&block, total, [0; 16], 1, false, None).is_err());
    }
}
