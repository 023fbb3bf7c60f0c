//! Where a run happened: enough to tell two runs' machines apart.

use procfs::{CpuInfo, Current, Meminfo};
use serde::{Deserialize, Serialize};

/// The machine, kernel and toolchain of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// The machine's logical CPUs online (not just those this process may
    /// use: the bench pins itself to one).
    pub cpus: usize,
    /// A virtual machine or container, when detectable: `kvm`, `kvm, docker
    /// container`, `none`; empty when unknown.
    #[serde(default)]
    pub virtualization: String,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// `rustc --version`, when available.
    pub rustc: String,
    /// The git revision of the working tree, when available.
    pub git_revision: String,
}

impl Machine {
    /// Reads /proc (through procfs) and asks rustc and git; missing facts are left empty.
    pub fn probe() -> Machine {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let cpuinfo = CpuInfo::current().ok();
        let cpu = cpuinfo
            .as_ref()
            .and_then(|c| c.model_name(0))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let memory_bytes = Meminfo::current().map_or(0, |m| m.mem_total);
        Machine {
            hostname: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            cpu,
            cpus: online_cpus(&read("/sys/devices/system/cpu/online"))
                .filter(|&n| n > 0)
                .unwrap_or_else(|| cpuinfo.as_ref().map_or(0, CpuInfo::num_cores)),
            virtualization: virtualization(cpuinfo.as_ref()),
            memory_bytes,
            rustc: command_line("rustc", &["--version"]),
            git_revision: command_line("git", &["rev-parse", "--short=12", "HEAD"]),
        }
    }
}

/// Counts the CPUs of a kernel CPU list such as `0-3,8,10-11`.
fn online_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()? + 1 - a.trim().parse::<usize>().ok()?,
            None => {
                part.trim().parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// systemd-detect-virt's answers where it is installed; else the CPU's
/// hypervisor flag and the container runtimes' marker files.
fn virtualization(cpuinfo: Option<&CpuInfo>) -> String {
    let ask = |flag: &str| command_line("systemd-detect-virt", &[flag]);
    let (mut vm, mut container) = (ask("--vm"), ask("--container"));
    let flags = cpuinfo.and_then(|c| c.flags(0)).unwrap_or_default();
    if vm.is_empty() && flags.contains(&"hypervisor") {
        vm = "virtual machine".into();
    }
    if container.is_empty() {
        if std::path::Path::new("/.dockerenv").exists() {
            container = "docker".into();
        } else if std::path::Path::new("/run/.containerenv").exists() {
            container = "podman".into();
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !vm.is_empty() {
        parts.push(vm);
    }
    if !container.is_empty() {
        parts.push(format!("{container} container"));
    }
    parts.join(", ")
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_every_cpu() {
        assert_eq!(online_cpus("0-1"), Some(2));
        assert_eq!(online_cpus("0"), Some(1));
        assert_eq!(online_cpus("0-3,8,10-11\n"), Some(7));
        assert_eq!(online_cpus("x"), None);
    }

    #[test]
    fn a_pinned_process_still_reports_the_machines_cpus() {
        let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Pinned as the bench pins itself (this test's own thread only).
        crate::measure::pin::pin_current_thread(0);
        let m = Machine::probe();
        assert!(
            m.cpus >= usable,
            "{} CPUs reported, {usable} usable before pinning",
            m.cpus
        );
    }
}
