//! A started target: the one type every command measures or checks a
//! server through, and the only place a server process is started.
//!
//! ```text
//!   TargetSpec ──start(Launch)──> Server
//!     Backend(name)   unavailable here? ─> StartError::Unavailable
//!     Spawn{argv}     sandbox/ (temp) ─┬─ storage/  --storage, the cwd later
//!                                      └─ the child, its ready line
//!     Address{tcp..}  nothing started; the addresses as given
//! ```
//!
//! A spawned server gets a fresh sandbox directory with its storage inside
//! it, removed when the `Server` drops; the child is killed and reaped on
//! drop too ([`Spawned`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sockbench_core::{ProcessUse, TcpStats, UdpStats};
use sockbench_wire::WireConfig;

use super::process::{NO_ADDRESS, Spawned};
use super::{TargetSpec, command_for};
use crate::measure::pin::Pinning;
use crate::measure::proc::{self, ProcSample, Resources};

/// How long a started server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a `stats` request may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a target.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Names the sandbox directory (`sockbench-PURPOSE-...`).
    pub purpose: &'static str,
    /// Serve-contract flags after `--storage` (`--no-fsync`, a case's
    /// setup); an address target cannot take any.
    pub flags: Vec<String>,
    /// Run the server on the bench's server CPU.
    pub pin: Option<Pinning>,
}

impl Launch {
    /// A launch for `purpose` with no flags.
    pub fn new(purpose: &'static str) -> Launch {
        Launch {
            purpose,
            ..Launch::default()
        }
    }

    /// Adds serve-contract flags.
    pub fn flags<I, S>(mut self, flags: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// Pins the server as `pin` says.
    pub fn pinned(mut self, pin: Option<Pinning>) -> Launch {
        self.pin = pin;
        self
    }
}

/// Why a target did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// This machine cannot run the back-end (io_uring disabled, say).
    #[error("the {name} back-end is unavailable here: {why}")]
    Unavailable {
        /// The back-end.
        name: String,
        /// The reason its probe gave.
        why: String,
    },
    /// A server already running cannot be started with flags.
    #[error("{name} is already running and cannot be restarted with {flags}")]
    Restart {
        /// The target.
        name: String,
        /// The flags asked for.
        flags: String,
    },
    /// The sandbox directory could not be made.
    #[error("cannot create a directory for {name}: {source}")]
    Sandbox {
        /// The target.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A plain program takes no serve-contract flags.
    #[error("{name} is a plain program and cannot be started with {flags}")]
    Flags {
        /// The target.
        name: String,
        /// The flags asked for.
        flags: String,
    },
    /// The process did not start or printed no ready line.
    #[error("{name} did not start: {reason}")]
    Failed {
        /// The target.
        name: String,
        /// What happened, with the end of its stderr.
        reason: String,
    },
}

/// A target ready to be measured or checked.
#[derive(Debug)]
pub struct Server {
    tcp: SocketAddr,
    udp: Option<SocketAddr>,
    wire: WireConfig,
    storage: Option<PathBuf>,
    pid: Option<u32>,
    concurrent: bool,
    child: Option<Spawned>,
    sandbox: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `spec` (`exe` is sockbench, for our back-ends) as `launch`
    /// says; an address target is only described.
    pub fn start(spec: &TargetSpec, exe: &Path, launch: &Launch) -> Result<Server, StartError> {
        let name = spec.name();
        if let TargetSpec::Address {
            tcp,
            udp,
            storage,
            pid,
            concurrent,
            wire,
            ..
        } = spec
        {
            if !launch.flags.is_empty() {
                return Err(StartError::Restart {
                    name,
                    flags: launch.flags.join(" "),
                });
            }
            return Ok(Server {
                tcp: *tcp,
                udp: *udp,
                wire: *wire,
                storage: storage.clone(),
                pid: *pid,
                concurrent: *concurrent,
                child: None,
                sandbox: None,
            });
        }
        if let TargetSpec::Backend(backend) = spec
            && let Some(why) = crate::serve::backends::unavailable(backend)
        {
            return Err(StartError::Unavailable { name, why });
        }
        let sandbox = tempfile::Builder::new()
            .prefix(&format!("sockbench-{}-", launch.purpose))
            .tempdir()
            .map_err(|source| StartError::Sandbox {
                name: name.clone(),
                source,
            })?;
        let storage = sandbox.path().join("storage");
        std::fs::create_dir(&storage).map_err(|source| StartError::Sandbox {
            name: name.clone(),
            source,
        })?;
        if spec.is_plain() {
            return Server::start_plain(spec, launch, sandbox, storage);
        }
        // Every target but an address (handled above) has a command.
        let Some(mut cmd) = command_for(spec, exe) else {
            return Err(StartError::Failed {
                name,
                reason: "not a target the harness can start".into(),
            });
        };
        cmd.arg("--storage").arg(&storage).args(&launch.flags);
        if let Some(p) = launch.pin {
            p.pin_server(&mut cmd);
        }
        let child = Spawned::start(cmd, READY_TIMEOUT).map_err(|e| StartError::Failed {
            name: name.clone(),
            reason: format!("{e:#}"),
        })?;
        let ready = child.ready.clone();
        // The ready line's pid is the server's own, where a wrapper (a
        // shell, a launcher) started it; else the child we started.
        let pid = if ready.pid != 0 {
            ready.pid
        } else {
            child.pid()
        };
        Ok(Server {
            tcp: ready.tcp,
            udp: Some(ready.udp),
            wire: WireConfig::default(),
            storage: Some(storage),
            pid: Some(pid),
            concurrent: ready.concurrent,
            child: Some(child),
            sandbox: Some(sandbox),
        })
    }

    /// A plain program: free ports chosen for its `{tcp_port}` and
    /// `{udp_port}`, its storage as `{storage}` and as its working
    /// directory (so `open(name)` lands where the cases look), ready when
    /// /proc/net shows its sockets.
    fn start_plain(
        spec: &TargetSpec,
        launch: &Launch,
        sandbox: tempfile::TempDir,
        storage: PathBuf,
    ) -> Result<Server, StartError> {
        let name = spec.name();
        if !launch.flags.is_empty() {
            return Err(StartError::Flags {
                name,
                flags: launch.flags.join(" "),
            });
        }
        let TargetSpec::Spawn { argv, .. } = spec else {
            return Err(StartError::Failed {
                name,
                reason: "not a plain program".into(),
            });
        };
        let failed = |reason: String| StartError::Failed {
            name: name.clone(),
            reason,
        };
        let uses = |p: &str| argv.iter().any(|a| a.contains(p));
        let tcp_port = match uses("{tcp_port}") {
            true => Some(free_port(false).map_err(|e| failed(format!("no free TCP port: {e}")))?),
            false => None,
        };
        let udp_port = match uses("{udp_port}") {
            true => Some(free_port(true).map_err(|e| failed(format!("no free UDP port: {e}")))?),
            false => None,
        };
        let argv = super::substitute(argv, tcp_port, udp_port, &storage);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&storage);
        if let Some(p) = launch.pin {
            p.pin_server(&mut cmd);
        }
        let child = Spawned::start_plain(cmd, tcp_port, udp_port, READY_TIMEOUT)
            .map_err(|e| failed(format!("{e:#}")))?;
        let ready = child.ready.clone();
        Ok(Server {
            tcp: ready.tcp,
            udp: udp_port.map(|_| ready.udp),
            wire: WireConfig::default(),
            storage: Some(storage),
            pid: Some(ready.pid),
            concurrent: true,
            child: Some(child),
            sandbox: Some(sandbox),
        })
    }

    /// Starts a helper server of the harness's own (a ceiling, a server in
    /// a network namespace) from its whole command line; it obeys the
    /// serve contract's ready line and has no storage.
    pub fn start_command(
        name: &str,
        mut cmd: Command,
        pin: Option<Pinning>,
    ) -> Result<Server, StartError> {
        if let Some(p) = pin {
            p.pin_server(&mut cmd);
        }
        let child = Spawned::start(cmd, READY_TIMEOUT).map_err(|e| StartError::Failed {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        let ready = child.ready.clone();
        Ok(Server {
            tcp: ready.tcp,
            udp: Some(ready.udp),
            wire: WireConfig::default(),
            storage: None,
            pid: Some(child.pid()),
            concurrent: ready.concurrent,
            child: Some(child),
            sandbox: None,
        })
    }

    /// The TCP address ([`NO_ADDRESS`] for a UDP-only target, which only
    /// conform and explore accept; see [`Server::has_tcp`]).
    pub fn tcp(&self) -> SocketAddr {
        self.tcp
    }

    /// False for a UDP-only target.
    pub fn has_tcp(&self) -> bool {
        self.tcp != NO_ADDRESS
    }

    /// The sandbox directory a started server's storage sits in: a write
    /// to `../x` from the storage lands here, where the cases look.
    pub fn sandbox(&self) -> Option<&Path> {
        self.sandbox.as_ref().map(tempfile::TempDir::path)
    }

    /// The UDP address, when the target has one.
    pub fn udp(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The byte order and limits an address target was given; the
    /// contract's defaults for a started one (its flags may say otherwise).
    pub fn wire(&self) -> WireConfig {
        self.wire
    }

    /// The storage directory, when the harness may read it.
    pub fn storage(&self) -> Option<&Path> {
        self.storage.as_deref()
    }

    /// The server's process id, when known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether it serves connections concurrently (its ready line, or
    /// what the command line said of an address).
    pub fn concurrent(&self) -> bool {
        self.concurrent
    }

    /// True when the harness started it.
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// The child process, when the harness started it.
    pub fn child(&mut self) -> Option<&mut Spawned> {
        self.child.as_mut()
    }

    /// False once a started server's process has exited; an address
    /// target is taken to be running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_none_or(Spawned::is_running)
    }

    /// The last part of a started server's stderr ("" otherwise).
    pub fn stderr_tail(&self) -> String {
        self.child
            .as_ref()
            .map(Spawned::stderr_tail)
            .unwrap_or_default()
    }

    /// Its counters, by a stats request on a new connection; `None` when
    /// it does not answer within 10 s.
    pub fn stats(&self) -> Option<(TcpStats, UdpStats)> {
        super::stats::counters(&self.stats_header()?)
    }

    /// The optional `process` object of its stats reply.
    pub fn process_use(&self) -> Option<ProcessUse> {
        super::stats::process_use(&self.stats_header()?)
    }

    fn stats_header(&self) -> Option<serde_json::Value> {
        super::stats::request(self.tcp, self.wire, STATS_TIMEOUT)
    }

    /// Its CPU and memory now: from /proc for a process on this machine,
    /// from the optional `process` object of its stats reply otherwise;
    /// `None` without either.
    pub fn sample(&self) -> Option<ProcSample> {
        match (&self.child, self.pid) {
            (Some(_), Some(pid)) => proc::sample(pid),
            _ => self.process_use().map(|u| ProcSample {
                user_s: u.cpu_user_s,
                sys_s: u.cpu_sys_s,
                cpu_precise_s: u.cpu_user_s + u.cpu_sys_s,
                peak_rss: u.rss_peak_kib * 1024,
                rss: u.rss_peak_kib * 1024,
            }),
        }
    }

    /// What its process holds now (memory, descriptors, threads), when
    /// its pid is known and it runs here.
    pub fn resources(&self) -> Option<Resources> {
        proc::resources(self.pid?)
    }
}

/// A port free on loopback now, for a plain program to listen on. Another
/// process could take it before the program does; the start then fails
/// with the program's own error, which names the port.
fn free_port(udp: bool) -> std::io::Result<u16> {
    // Parallel cases each ask for a port; the kernel may hand the same one
    // to two of them between its release and the program's bind. A port
    // given out recently is not given again.
    static GIVEN: std::sync::Mutex<std::collections::VecDeque<u16>> =
        std::sync::Mutex::new(std::collections::VecDeque::new());
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    for _ in 0..64 {
        let port = if udp {
            std::net::UdpSocket::bind(any)?.local_addr()?.port()
        } else {
            std::net::TcpListener::bind(any)?.local_addr()?.port()
        };
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            if given.len() >= 1024 {
                given.pop_front();
            }
            given.push_back(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "every port the kernel offered was handed out recently",
    ))
}
