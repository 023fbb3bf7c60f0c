//! A child process: one that obeys the `serve` contract (it prints one JSON
//! ready line, logs to stderr, and stops on SIGTERM), or a plain program
//! given its ports as arguments, seen ready in /proc/net. The child is always
//! reaped: on drop it is killed if still alive, and every live child is
//! registered so that any exit path (Ctrl-C, the watchdog) can kill them.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::process::{Pid, Signal, kill_process};

use crate::measure::proc;
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

/// Registers a child that is not a [`Spawned`] (a client under test), so
/// that the exit paths kill it too; [`untrack`] it once reaped.
pub fn track(pid: u32) {
    children().get_or_insert_with(HashSet::new).insert(pid);
}

/// Deregisters a child [`track`]ed, before its pid can be reused.
pub fn untrack(pid: u32) {
    if let Some(set) = children().as_mut() {
        set.remove(&pid);
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

/// The address a ready line holds for a socket the target does not have.
pub const NO_ADDRESS: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// How long a plain program has between SIGTERM and SIGKILL.
const PLAIN_GRACE: Duration = Duration::from_secs(2);

/// A running child server.
pub struct Spawned {
    child: Child,
    /// Its ready line.
    pub ready: ReadyLine,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    extra_stdout: Arc<Mutex<Vec<String>>>,
    command: String,
    /// A plain program: asked to stop with SIGTERM before SIGKILL.
    plain: bool,
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
    pub fn start(command: Command, timeout: Duration) -> Result<Spawned> {
        let (mut spawned, rx) = Spawned::spawn(command, false)?;
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

    /// Starts a plain program (no ready line) and waits up to `timeout`
    /// until a socket listens on `tcp_port` and one is bound to `udp_port`,
    /// as /proc/net shows them: no connection is spent on the check. The
    /// ready line it gets holds those addresses.
    pub fn start_plain(
        command: Command,
        tcp_port: Option<u16>,
        udp_port: Option<u16>,
        timeout: Duration,
    ) -> Result<Spawned> {
        let (mut spawned, _first_line) = Spawned::spawn(command, true)?;
        let deadline = Instant::now() + timeout;
        let loopback = |a: SocketAddr| -> SocketAddr {
            if a.is_ipv6() {
                (std::net::Ipv6Addr::LOCALHOST, a.port()).into()
            } else {
                (std::net::Ipv4Addr::LOCALHOST, a.port()).into()
            }
        };
        loop {
            let owner = Some(spawned.pid());
            let tcp = tcp_port.map(|p| proc::tcp_listening(p, owner));
            let udp = udp_port.map(|p| proc::udp_bound(p, owner));
            if tcp.is_none_or(|t| t.is_some()) && udp.is_none_or(|u| u.is_some()) {
                spawned.ready.tcp = tcp.flatten().map_or(NO_ADDRESS, loopback);
                spawned.ready.udp = udp.flatten().map_or(NO_ADDRESS, loopback);
                spawned.ready.pid = spawned.pid();
                return Ok(spawned);
            }
            if !spawned.is_running() {
                let status = spawned.wait_exit(Duration::ZERO);
                bail!(
                    "{} exited ({}) before it listened{}",
                    spawned.command,
                    status.map_or("?".into(), |s| s.to_string()),
                    spawned.stderr_note()
                );
            }
            if Instant::now() >= deadline {
                let what = [
                    tcp_port.map(|p| format!("TCP port {p} listening")),
                    udp_port.map(|p| format!("UDP port {p} bound")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and ");
                bail!(
                    "{} was started with its ports as arguments but had no {what} within {timeout:?}{}",
                    spawned.command,
                    spawned.stderr_note()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child with its stderr kept and its stdout drained; the channel
    /// gets its first stdout line.
    fn spawn(mut command: Command, plain: bool) -> Result<(Spawned, mpsc::Receiver<String>)> {
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
        let spawned = Spawned {
            child,
            ready: ReadyLine {
                backend: String::new(),
                tcp: NO_ADDRESS,
                udp: NO_ADDRESS,
                pid: 0,
                concurrent: true,
            },
            stderr,
            extra_stdout,
            command: shown,
            plain,
        };
        Ok((spawned, rx))
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
        // A plain program is asked first, as its author would stop it;
        // contract servers are killed outright, as before (their graceful
        // stop is a lifecycle case of its own).
        if self.plain && self.is_running() {
            self.signal(Signal::TERM);
            let _ = self.wait_exit(PLAIN_GRACE);
        }
        if self.is_running() {
            self.kill();
        } else {
            let _ = self.child.wait();
        }
    }
}

/// An outside tool's server (iperf3 -s, sockperf server): no ready line,
/// its output discarded, killed and reaped when dropped.
#[derive(Debug)]
pub struct ToolServer(Child);

impl ToolServer {
    /// Starts `cmd` quietly.
    pub fn start(mut cmd: Command) -> std::io::Result<ToolServer> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(ToolServer(cmd.spawn()?))
    }
}

impl Drop for ToolServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
