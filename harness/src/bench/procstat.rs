//! CPU time and memory of processes and threads, from /proc (Linux),
//! read through procfs.

use procfs::process::Process;

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

/// Samples process `pid`; `None` when it is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    // The kernel's clock ticks, not an assumed 100 per second.
    let tick = procfs::ticks_per_second() as f64;
    // Every live thread's on-CPU time, to the nanosecond.
    let precise: u64 = process
        .tasks()
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok()?.schedstat().ok())
                .map(|s| s.sum_exec_runtime)
                .sum()
        })
        .unwrap_or(0);
    Some(ProcSample {
        user_s: stat.utime as f64 / tick,
        sys_s: stat.stime as f64 / tick,
        cpu_precise_s: precise as f64 / 1e9,
        peak_rss: status.vmhwm.unwrap_or(0) * 1024,
        rss: status.vmrss.unwrap_or(0) * 1024,
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
