//! The machine's scheduling floor: a thread spinning on a CPU, timing each
//! turn of its loop. Every gap is time the CPU was taken from it (another
//! task, an interrupt, or on a virtual machine the hypervisor running
//! another guest). No open-loop percentile can be lower than what such
//! gaps impose: where a few per cent of the time is lost in gaps of
//! milliseconds, a p99 of 1 ms cannot hold.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Gaps shorter than this are the loop itself (and clock reads), not stolen time.
const GAP: Duration = Duration::from_micros(200);

/// What spinning on one CPU saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuFloor {
    /// The CPU (`None`: wherever the scheduler put the thread).
    pub cpu: Option<usize>,
    /// How long it spun, s.
    pub secs: f64,
    /// Gaps over 200 µs.
    pub gaps: u64,
    /// Fraction of the time lost in them.
    pub lost: f64,
    /// The longest, µs.
    pub max_gap_us: f64,
}

/// Spins on `cpu` (or unpinned) for `d` and measures the gaps.
pub fn probe(cpu: Option<usize>, d: Duration) -> CpuFloor {
    let run = move || {
        if let Some(c) = cpu {
            super::pin::pin_current_thread(c);
        }
        let start = Instant::now();
        let mut last = start;
        let (mut gaps, mut lost, mut max) = (0u64, Duration::ZERO, Duration::ZERO);
        loop {
            let now = Instant::now();
            let g = now - last;
            if g > GAP {
                gaps += 1;
                lost += g;
                max = max.max(g);
            }
            last = now;
            if now - start >= d {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        CpuFloor {
            cpu,
            secs,
            gaps,
            lost: lost.as_secs_f64() / secs,
            max_gap_us: max.as_secs_f64() * 1e6,
        }
    };
    // Its own thread, so pinning it leaves the caller where it was.
    std::thread::spawn(run).join().unwrap_or_default()
}

impl CpuFloor {
    /// `CPU 0: 2.4% lost in 97 gaps, longest 12.9 ms`.
    pub fn describe(&self) -> String {
        let cpu = self
            .cpu
            .map_or_else(|| "unpinned".into(), |c| format!("CPU {c}"));
        format!(
            "{cpu}: {:.2}% of {:.1} s lost in {} gaps over 200 µs, the longest {:.1} ms",
            self.lost * 100.0,
            self.secs,
            self.gaps,
            self.max_gap_us / 1e3
        )
    }

    /// True when gaps take more than 1 % of the time: a p99 then includes them.
    pub fn shapes_p99(&self) -> bool {
        self.lost > 0.01
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_spins_for_its_time_and_accounts_for_it() {
        let f = probe(None, Duration::from_millis(30));
        assert!(f.secs >= 0.03 && f.lost >= 0.0 && f.lost <= 1.0, "{f:?}");
        assert!(f.gaps == 0 || f.max_gap_us >= 200.0, "{f:?}");
        assert!(f.describe().starts_with("unpinned: "));
    }
}
