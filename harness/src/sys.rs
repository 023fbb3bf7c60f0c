//! Process-level settings.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard limit, as servers and load
/// generators with thousands of sockets need; returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    if current < maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: maximum,
                maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current
}

/// Resident set size of a process in bytes, from /proc (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    Some(process.status().ok()?.vmrss? * 1024)
}
