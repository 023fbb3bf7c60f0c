//! CPU time and memory of processes and threads, from /proc (Linux),
//! read through procfs; the process's own open-file limit.

use procfs::process::Process;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

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
    // Status only: the conform memory cases poll this, and counting the
    // descriptors (a directory listing) is the soak's business.
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    Some(process.status().ok()?.vmrss? * 1024)
}

/// What a long-running process holds at one instant: the soak's leak
/// signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Resident set size in bytes.
    pub rss: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

/// Samples what process `pid` holds; `None` when it is gone.
pub fn resources(pid: u32) -> Option<Resources> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let status = process.status().ok()?;
    Some(Resources {
        rss: status.vmrss.unwrap_or(0) * 1024,
        fds: process.fd_count().ok()? as u64,
        threads: status.threads,
    })
}

/// `pid` and every process descended from it, parents first: a server
/// that forks per connection, or a wrapper that runs the real one.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = procfs::process::all_processes()
        .map(|all| {
            all.filter_map(|p| {
                let stat = p.ok()?.stat().ok()?;
                Some((
                    u32::try_from(stat.pid).ok()?,
                    u32::try_from(stat.ppid).ok()?,
                ))
            })
            .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    tree
}

/// What a process tree holds beside its root: descendants exited but not
/// reaped (zombies), and live ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tree {
    /// Descendants in state Z.
    pub zombies: usize,
    /// Descendants alive.
    pub live: usize,
}

/// The descendants of `pid`, counted by state.
pub fn tree(pid: u32) -> Tree {
    let mut t = Tree::default();
    for p in process_tree(pid).into_iter().skip(1) {
        let state = Process::new(p as i32)
            .ok()
            .and_then(|p| p.stat().ok())
            .map(|s| s.state);
        match state {
            Some('Z') => t.zombies += 1,
            Some(_) => t.live += 1,
            None => {}
        }
    }
    t
}

/// CPU seconds of `pid` and its descendants, nanosecond resolution for
/// live threads.
pub fn tree_cpu(pid: u32) -> f64 {
    process_tree(pid)
        .into_iter()
        .filter_map(sample)
        .map(|s| s.cpu_precise_s)
        .sum()
}

/// The socket inodes held open by the processes `pids`.
fn socket_inodes(pids: &[u32]) -> std::collections::HashSet<u64> {
    pids.iter()
        .filter_map(|&pid| Process::new(i32::try_from(pid).ok()?).ok()?.fd().ok())
        .flat_map(|fds| {
            fds.filter_map(|fd| match fd.ok()?.target {
                procfs::process::FDTarget::Socket(inode) => Some(inode),
                _ => None,
            })
        })
        .collect()
}

/// The local address of a TCP socket listening on `port` on this machine,
/// read from /proc/net/tcp and tcp6: how a plain program's readiness is
/// seen without spending a connection (a one-shot server's only `accept`).
/// With `owner`, only a socket held by that process or its descendants
/// counts: another program listening on the port (a port handed out twice
/// in parallel runs) is not this one being ready.
pub fn tcp_listening(port: u16, owner: Option<u32>) -> Option<std::net::SocketAddr> {
    let v4 = procfs::net::tcp().unwrap_or_default();
    let v6 = procfs::net::tcp6().unwrap_or_default();
    let held = owner.map(|pid| socket_inodes(&process_tree(pid)));
    v4.into_iter()
        .chain(v6)
        .find(|e| {
            e.state == procfs::net::TcpState::Listen
                && e.local_address.port() == port
                && held.as_ref().is_none_or(|h| h.contains(&e.inode))
        })
        .map(|e| e.local_address)
}

/// The local address of a UDP socket bound to `port` on this machine
/// (/proc/net/udp and udp6); with `owner`, held by it or its descendants.
pub fn udp_bound(port: u16, owner: Option<u32>) -> Option<std::net::SocketAddr> {
    let v4 = procfs::net::udp().unwrap_or_default();
    let v6 = procfs::net::udp6().unwrap_or_default();
    let held = owner.map(|pid| socket_inodes(&process_tree(pid)));
    v4.into_iter()
        .chain(v6)
        .find(|e| {
            e.local_address.port() == port && held.as_ref().is_none_or(|h| h.contains(&e.inode))
        })
        .map(|e| e.local_address)
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
        let r = resources(std::process::id()).unwrap();
        assert!(r.rss > 0 && r.fds >= 3 && r.threads >= 1, "{r:?}");
        assert!(resources(u32::MAX).is_none());
    }

    #[test]
    fn a_listener_counts_only_for_the_process_tree_that_holds_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let uport = u.local_addr().unwrap().port();
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let other = child.id();
        let tree = process_tree(me);
        let found = [
            tcp_listening(port, None).is_some(),
            tcp_listening(port, Some(me)).is_some(),
            tcp_listening(port, Some(other)).is_some(),
            udp_bound(uport, Some(me)).is_some(),
            udp_bound(uport, Some(other)).is_some(),
        ];
        let _ = child.kill();
        let _ = child.wait();
        // A child that holds none of our sockets is another program: the
        // port being listened on is not it being ready.
        assert_eq!(found, [true, true, false, true, false]);
        assert_eq!(tree[0], me);
        assert!(tree.contains(&other), "{tree:?}");
    }
}
