//! Ceilings, measured in the same run as the results they bound: the same
//! bytes moved with no framing at all (an unframed echo, a raw UDP echo, a
//! raw TCP stream) and MD5 of the same bytes on one core. Ratios to these
//! survive a noisy machine; absolute numbers do not.

use anyhow::Context as _;
use std::time::Instant;

mod store;
mod stream;
mod tcp_echo;
mod udp_echo;

pub use store::{Stored, store};
pub use stream::{BLOCK as STREAM_BLOCK, tcp_stream};
pub use tcp_echo::{EchoCeiling, Strategy};
pub use udp_echo::{UdpCeiling, UdpSink};

/// The ceilings, run apart from the bench process like every target (an
/// in-process echo shares the driver's address space and ran up to 1.2x
/// slower than the framed servers it was to bound): `sockbench ceiling`
/// started on the server's CPU, its TCP side an unframed echo of
/// `strategy` that writes back whole frames of `align` bytes (the bench's
/// frames all have one length; 0 for none), its UDP side the raw UDP echo.
/// Stops when dropped.
pub fn spawn(
    exe: &std::path::Path,
    strategy: Strategy,
    align: usize,
    pin: Option<crate::measure::pin::Pinning>,
) -> anyhow::Result<Ceiling> {
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["ceiling", "--strategy", strategy.flag(), "--align"])
        .arg(align.to_string());
    let server = crate::target::server::Server::start_command("ceiling", cmd, pin)?;
    let udp = server
        .udp()
        .context("the ceiling announced no UDP address")?;
    Ok(Ceiling {
        tcp: server.tcp(),
        udp,
        _server: server,
    })
}

/// A running ceiling process: its unframed TCP echo and raw UDP echo.
#[derive(Debug)]
pub struct Ceiling {
    /// The unframed TCP echo.
    pub tcp: std::net::SocketAddr,
    /// The raw UDP echo.
    pub udp: std::net::SocketAddr,
    _server: crate::target::server::Server,
}

/// `sockbench ceiling`: starts both echoes, prints the ready line, and
/// serves until killed.
pub fn serve(strategy: &str, align: usize) -> anyhow::Result<std::process::ExitCode> {
    let kind = Strategy::parse(strategy).ok_or_else(|| {
        anyhow::anyhow!("unknown ceiling strategy {strategy:?} (loop, loop64, threads, sequential)")
    })?;
    // Threads inherit the CPU the bench pinned this process to.
    let tcp = EchoCeiling::start_with(kind, align, None)?;
    // The event loop's UDP echo is batched; the others answer a datagram
    // per call (see udp_echo.rs for why both).
    let udp = if kind == Strategy::EventLoop {
        UdpCeiling::start(None)?
    } else {
        UdpCeiling::start_plain(None)?
    };
    let ready = crate::serve::ready::ReadyLine {
        backend: format!("ceiling-{}", kind.flag()),
        tcp: tcp.addr,
        udp: udp.addr,
        pid: std::process::id(),
        concurrent: true,
    };
    println!("{}", serde_json::to_string(&ready)?);
    loop {
        std::thread::park();
    }
}

/// The bytes of an upload: `block` repeated up to `total`.
pub fn stream_of(block: &[u8], total: u64) -> impl Iterator<Item = &[u8]> {
    let full = total / block.len() as u64;
    let rest = (total % block.len() as u64) as usize;
    (0..full)
        .map(move |_| block)
        .chain(std::iter::once(&block[..rest]).filter(|b| !b.is_empty()))
}

/// MD5 of the upload's bytes on one core, by the implementation the
/// servers use (the fastest here, see `sockbench_core::digest`): MB/s per
/// repetition (one warm-up pass first), and the digest.
pub fn md5(block: &[u8], total: u64, reps: usize) -> (Vec<f64>, [u8; 16]) {
    let digest = |_: ()| {
        let mut h = sockbench_core::digest::Md5::new();
        for piece in stream_of(block, total) {
            h.update(piece);
        }
        h.finish().unwrap_or_default()
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
        let want: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&all).into();
        assert_eq!(d, want);
    }
}
