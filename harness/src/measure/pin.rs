//! CPU pinning: the load driver on one CPU, the server on another. On a
//! 2-core machine the scheduler's choice of who shares a core with whom
//! otherwise moves results from run to run far more than pinned runs
//! move (docs/performance.md), and that is what makes ratios gateable.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPUs a run uses: (driver, server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinning {
    /// The load driver's CPU (and the bench process's).
    pub driver: usize,
    /// The server's CPU (child servers and in-process ceilings).
    pub server: usize,
}

impl Pinning {
    /// The first two CPUs this process may run on; `None` with fewer than two.
    pub fn detect() -> Option<Pinning> {
        let allowed = sched_getaffinity(None).ok()?;
        let mut cpus = (0..CpuSet::MAX_CPU).filter(|&c| allowed.is_set(c));
        Some(Pinning {
            driver: cpus.next()?,
            server: cpus.next()?,
        })
    }

    /// Pins the calling thread (and the threads it will start) to the driver's CPU.
    pub fn pin_driver(&self) {
        pin_current_thread(self.driver);
    }

    /// Makes `cmd`'s process run on the server's CPU from its first instruction.
    pub fn pin_server(&self, cmd: &mut Command) {
        let cpu = self.server;
        #[allow(unsafe_code)]
        // SAFETY: the closure runs between fork and exec and only makes the
        // sched_setaffinity system call, which is async-signal-safe; it
        // allocates nothing (CpuSet is a plain array on the stack).
        unsafe {
            cmd.pre_exec(move || {
                let mut set = CpuSet::new();
                set.set(cpu);
                sched_setaffinity(None, &set).map_err(std::io::Error::from)
            });
        }
    }

    /// A label for the report.
    pub fn describe(&self) -> String {
        format!(
            "load driver on CPU {}, server on CPU {}",
            self.driver, self.server
        )
    }
}

/// Pins the calling thread to `cpu` (best effort).
pub fn pin_current_thread(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    let _ = sched_setaffinity(None, &set);
}
