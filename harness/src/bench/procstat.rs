//! CPU time and memory of processes and threads, from /proc (Linux).

use std::path::Path;

/// CPU and memory of a server process at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User CPU seconds (clock-tick resolution).
    pub user_s: f64,
    /// System CPU seconds (clock-tick resolution).
    pub sys_s: f64,
    /// CPU seconds of live threads, nanosecond resolution (schedstat).
    pub cpu_precise_s: f64,
    /// Peak resident set size in bytes (VmHWM).
    pub peak_rss: u64,
    /// Resident set size now.
    pub rss: u64,
}

const TICKS_PER_S: f64 = 100.0;

/// Samples process `pid`; `None` when it is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let base = format!("/proc/{pid}");
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // Fields after the parenthesized command name, which may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / TICKS_PER_S;
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    let (user_s, sys_s) = (ticks(11), ticks(12));
    let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |k| k * 1024)
    };
    Some(ProcSample {
        user_s,
        sys_s,
        cpu_precise_s: tasks_cpu(Path::new(&base)),
        peak_rss: kib("VmHWM:"),
        rss: kib("VmRSS:"),
    })
}

/// This process's CPU and peak memory, for the `process` object of our
/// servers' `stats` replies.
pub fn own_use() -> Option<sockbench_core::ProcessUse> {
    let s = sample(std::process::id())?;
    Some(sockbench_core::ProcessUse {
        cpu_user_s: s.user_s,
        cpu_sys_s: s.sys_s,
        rss_peak_kib: s.peak_rss / 1024,
    })
}

/// Sum of the on-CPU time of every live thread, in seconds.
fn tasks_cpu(base: &Path) -> f64 {
    let Ok(tasks) = std::fs::read_dir(base.join("task")) else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID: exact, where
/// schedstat lags by up to a scheduler tick for a running thread).
pub fn this_thread_cpu() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_and_thread() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss > 0 && s.peak_rss >= s.rss);
        let before = this_thread_cpu();
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::black_box(t.elapsed());
        }
        assert!(
            this_thread_cpu() - before >= 0.005,
            "20 ms of spinning shows as CPU"
        );
        assert!(sample(u32::MAX).is_none());
    }
}
