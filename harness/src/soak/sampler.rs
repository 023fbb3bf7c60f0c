//! Once a second: the server's resident memory, open file descriptors and
//! threads from /proc ([`crate::measure::proc::resources`]), its child
//! processes, zombies included ([`crate::measure::proc::tree`]), and its stats
//! counters over a connection of their own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockbench_wire::WireConfig;

use crate::schema::soak::Sample;

/// Where and what to sample.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    /// The server's process.
    pub pid: u32,
    /// Its TCP address, for stats.
    pub tcp: SocketAddr,
    /// Its byte order.
    pub wire: WireConfig,
    /// Time zero of the samples.
    pub start: Instant,
}

impl Sampler {
    /// One sample; `None` once the process is gone.
    pub fn sample(&self) -> Option<Sample> {
        let held = crate::measure::proc::resources(self.pid)?;
        let t_s = self.start.elapsed().as_secs_f64();
        let (frames, errors) = self.stats().unwrap_or((None, None));
        Some(Sample {
            t_s,
            rss_kib: held.rss / 1024,
            fds: held.fds,
            threads: held.threads,
            children: {
                let tree = crate::measure::proc::tree(self.pid);
                (tree.live + tree.zombies) as u64
            },
            frames,
            errors,
        })
    }

    /// `tcp.frames` and `tcp.errors` from a stats request; the counters are
    /// charted, not judged, so a slow answer only leaves a gap.
    fn stats(&self) -> Option<(Option<u64>, Option<u64>)> {
        let h = crate::target::stats::request(self.tcp, self.wire, Duration::from_secs(2))?;
        let tcp = &h["tcp"];
        Some((tcp["frames"].as_u64(), tcp["errors"].as_u64()))
    }
}
