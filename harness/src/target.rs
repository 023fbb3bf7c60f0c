//! A server under test started as a child process that obeys the `serve`
//! contract: it prints one JSON ready line, logs to stderr, and stops on
//! SIGTERM. The child is always reaped: on drop it is killed if still alive.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::process::{Pid, Signal, kill_process};
use sockbench_wire::WireConfig;

use crate::serve::ready::ReadyLine;

/// How much of a child's stderr is kept for error messages and evidence.
const STDERR_TAIL: usize = 16 * 1024;

/// Every child alive now, so that any exit path (Ctrl-C, the watchdog) can
/// kill them all; `Drop` covers the others, panics included.
static CHILDREN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn children() -> std::sync::MutexGuard<'static, Option<HashSet<u32>>> {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills every child server still alive (for exit paths that skip `Drop`).
pub fn kill_all_children() {
    for pid in children().take().unwrap_or_default() {
        if let Some(pid) = Pid::from_raw(pid as i32) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// On SIGINT or SIGTERM: kill every child, then exit with 130.
pub fn kill_children_on_signal() -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                kill_all_children();
                eprintln!("sockbench: stopped by signal {sig}; child servers killed");
                std::process::exit(130);
            }
        })?;
    Ok(())
}

/// A target as given on the command line.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// One of our back-ends, run as `sockbench serve --backend NAME`.
    Backend(String),
    /// A command obeying the serve contract; flags are appended per case.
    Spawn {
        /// Column name.
        label: String,
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// A server already listening, shared by every case (run serially).
    Address {
        /// Column name.
        label: String,
        /// Its TCP address.
        tcp: SocketAddr,
        /// Its UDP address, when it has one.
        udp: Option<SocketAddr>,
        /// Its storage directory, if the harness may read it.
        storage: Option<PathBuf>,
        /// Its process id, for memory measurements.
        pid: Option<u32>,
        /// Whether it serves connections concurrently.
        concurrent: bool,
        /// Its byte order and limits.
        wire: WireConfig,
    },
}

impl TargetSpec {
    /// The column name.
    pub fn name(&self) -> String {
        match self {
            TargetSpec::Backend(n) => n.clone(),
            TargetSpec::Spawn { label, .. } | TargetSpec::Address { label, .. } => label.clone(),
        }
    }

    /// True when the harness starts a server per case.
    pub fn spawns(&self) -> bool {
        !matches!(self, TargetSpec::Address { .. })
    }

    /// Its kind (`backend`, `spawn`, `address`) and command line or addresses.
    /// Paths under the working directory are shown relative to it, so a
    /// committed report names `target/release/sockbench`, not the checkout
    /// that made it.
    pub fn describe(&self, exe: &Path) -> (&'static str, String) {
        match self {
            TargetSpec::Backend(n) => (
                "backend",
                format!("{} serve --backend {n}", relative(&exe.to_string_lossy())),
            ),
            TargetSpec::Spawn { argv, .. } => (
                "spawn",
                argv.iter()
                    .map(|a| relative(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            TargetSpec::Address { tcp, udp, .. } => (
                "address",
                match udp {
                    Some(udp) => format!("tcp {tcp}, udp {udp}"),
                    None => format!("tcp {tcp}, no udp"),
                },
            ),
        }
    }
}

/// How long a preflight or a liveness probe waits for a TCP connection.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a TCP connection to `addr` opens within [`REACH_TIMEOUT`]: the
/// preflight of commands given an address, and the probe that tells a target
/// that stopped answering from one that answered wrongly.
pub fn reach(addr: SocketAddr) -> Result<(), crate::error::Error> {
    std::net::TcpStream::connect_timeout(&addr, REACH_TIMEOUT)
        .map(drop)
        .map_err(|e| crate::error::Error::Target(format!("{addr} cannot be reached: {e}")))
}

/// `arg` relative to the working directory when it is an absolute path
/// under it; otherwise as it is.
pub fn relative(arg: &str) -> String {
    let Ok(cwd) = std::env::current_dir() else {
        return arg.to_owned();
    };
    match Path::new(arg).strip_prefix(&cwd) {
        Ok(rest) if Path::new(arg).is_absolute() && !rest.as_os_str().is_empty() => {
            rest.to_string_lossy().into_owned()
        }
        _ => arg.to_owned(),
    }
}

/// The targets a command line names, resolved the same way by every
/// command: `--backend` names (`all` for each of ours, in report order),
/// then the `--spawn` commands, then an address target. Column names must
/// be distinct.
pub fn resolve(
    backends: &[String],
    spawns: &[String],
    address: Option<TargetSpec>,
) -> Result<Vec<TargetSpec>> {
    let known = crate::serve::backends::names();
    let mut out = Vec::new();
    for name in backends {
        if name == "all" {
            out.extend(known.iter().map(|n| TargetSpec::Backend((*n).into())));
        } else if known.contains(&name.as_str()) {
            out.push(TargetSpec::Backend(name.clone()));
        } else {
            bail!(
                "unknown back-end {name:?} (expected all or one of: {})",
                known.join(", ")
            );
        }
    }
    for cmd in spawns {
        out.push(parse_spawn(cmd)?);
    }
    out.extend(address);
    let mut names: Vec<String> = out.iter().map(TargetSpec::name).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("two targets share a name; name spawned ones with --spawn 'LABEL=CMD'");
    }
    Ok(out)
}

/// Parses `--spawn 'CMD ARGS'` or `--spawn 'LABEL=CMD ARGS'`; without a
/// label the column is named after the last non-flag argument's file name.
pub fn parse_spawn(text: &str) -> Result<TargetSpec> {
    let (label, cmd) = match text.split_once('=') {
        Some((l, c)) if !l.contains(' ') && !l.is_empty() => (Some(l.to_owned()), c),
        _ => (None, text),
    };
    let argv = shlex::split(cmd)
        .filter(|a| !a.is_empty())
        .with_context(|| format!("cannot parse --spawn {cmd:?}"))?;
    let label = label.unwrap_or_else(|| {
        let last = argv
            .iter()
            .rev()
            .find(|a| !a.starts_with('-'))
            .unwrap_or(&argv[0]);
        Path::new(last)
            .file_name()
            .map_or_else(|| last.clone(), |f| f.to_string_lossy().into_owned())
    });
    Ok(TargetSpec::Spawn { label, argv })
}

/// The command that starts a spawnable target (flags are appended by the caller).
pub fn command_for(spec: &TargetSpec, exe: &Path) -> Option<Command> {
    match spec {
        TargetSpec::Backend(name) => {
            let mut c = Command::new(exe);
            c.args(["serve", "--backend", name]);
            Some(c)
        }
        TargetSpec::Spawn { argv, .. } => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            Some(c)
        }
        TargetSpec::Address { .. } => None,
    }
}

/// A running child server.
pub struct Spawned {
    child: Child,
    /// Its ready line.
    pub ready: ReadyLine,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    extra_stdout: Arc<Mutex<Vec<String>>>,
    command: String,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned")
            .field("command", &self.command)
            .field("ready", &self.ready)
            .finish()
    }
}

impl Spawned {
    /// Starts `command` and waits up to `timeout` for its ready line.
    pub fn start(mut command: Command, timeout: Duration) -> Result<Spawned> {
        let shown = format!("{command:?}");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        children()
            .get_or_insert_with(HashSet::new)
            .insert(child.id());
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || keep_tail(err, &tail));
        }
        let (tx, rx) = mpsc::channel();
        let extra_stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let extra = Arc::clone(&extra_stdout);
            thread::spawn(move || {
                let mut lines = BufReader::new(out).lines();
                if let Some(Ok(first)) = lines.next() {
                    let _ = tx.send(first);
                }
                // Keep draining so the child never blocks on a full pipe;
                // the contract allows one stdout line, so keep a few extras.
                for line in lines.map_while(Result::ok) {
                    let mut extra = extra.lock().unwrap_or_else(PoisonError::into_inner);
                    if extra.len() < 20 {
                        extra.push(line);
                    }
                }
            });
        }
        let mut spawned = Spawned {
            child,
            ready: ReadyLine {
                backend: String::new(),
                tcp: ([0, 0, 0, 0], 0).into(),
                udp: ([0, 0, 0, 0], 0).into(),
                pid: 0,
                concurrent: true,
            },
            stderr,
            extra_stdout,
            command: shown,
        };
        let line = match rx.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "{} printed no ready line within {timeout:?}{}",
                    spawned.command,
                    spawned.stderr_note()
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = spawned.wait_exit(Duration::from_secs(2));
                bail!(
                    "{} exited ({}) before its ready line{}",
                    spawned.command,
                    status.map_or("still running".into(), |s| s.to_string()),
                    spawned.stderr_note()
                )
            }
        };
        spawned.ready = serde_json::from_str(&line).map_err(|e| {
            anyhow!(
                "{}: the ready line {line:?} is not the contract's JSON object: {e}",
                spawned.command
            )
        })?;
        Ok(spawned)
    }

    /// Starts `exe serve --backend NAME ARGS...`.
    pub fn backend(
        exe: &std::path::Path,
        name: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Spawned> {
        let mut c = Command::new(exe);
        c.args(["serve", "--backend", name]).args(args);
        Spawned::start(c, timeout)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; SIGKILL after that.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(Signal::TERM);
        if let Some(status) = self.wait_exit(timeout) {
            return Ok(status);
        }
        self.kill();
        bail!(
            "{} did not exit within {timeout:?} of SIGTERM{}",
            self.command,
            self.stderr_note()
        )
    }

    /// Sends a signal, ignoring a child that is already gone.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, sig);
        }
    }

    /// Kills and reaps the child.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the child exits within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => return None,
            }
        }
    }

    /// True while the child runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Lines the child printed on stdout after its ready line (up to 20).
    pub fn extra_stdout(&self) -> Vec<String> {
        self.extra_stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last part of the child's stderr.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned()
    }

    fn stderr_note(&self) -> String {
        let tail = self.stderr_tail();
        let last = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if last.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends: {last}")
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Deregistered before the wait frees the pid for reuse.
        if let Some(set) = children().as_mut() {
            set.remove(&self.child.id());
        }
        if self.is_running() {
            self.kill();
        } else {
            let _ = self.child.wait();
        }
    }
}

fn keep_tail(mut from: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(STDERR_TAIL);
        t.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_working_directory_are_shown_relative() {
        let cwd = std::env::current_dir().unwrap();
        let exe = cwd.join("target/release/sockbench");
        assert_eq!(relative(&exe.to_string_lossy()), "target/release/sockbench");
        assert_eq!(relative("/usr/bin/python3"), "/usr/bin/python3");
        assert_eq!(relative("--backend"), "--backend");
        let (_, shown) = TargetSpec::Backend("mio".into()).describe(&exe);
        assert_eq!(shown, "target/release/sockbench serve --backend mio");
    }
}
