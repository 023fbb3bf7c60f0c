//! The target wing: a server (or, later, a client) under test, from the
//! command line to a running process. Every command goes through here.
//!
//! - [`TargetSpec`]: a target as given (one of our back-ends, a command
//!   obeying the serve contract, or an address), resolved by [`resolve`];
//! - [`args::TargetArgs`]: the one set of target flags every command takes;
//! - [`server::Server`]: a started target with its sandboxed storage, its
//!   ready line, its `stats` and its resources: the only place a server
//!   process is started;
//! - [`process::Spawned`]: the child process itself, always reaped;
//! - [`stats`]: the `stats` request, once.

pub mod args;
pub mod process;
pub mod server;
pub mod stats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sockbench_wire::WireConfig;

pub use process::{kill_all_children, kill_children_on_signal};

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

    /// A plain program: a `--spawn` command with `{tcp_port}`,
    /// `{udp_port}` or `{storage}` in it, which needs no ready line.
    pub fn is_plain(&self) -> bool {
        !self.placeholders().is_empty()
    }

    /// The placeholders a plain program's command line uses.
    pub fn placeholders(&self) -> Vec<&'static str> {
        match self {
            TargetSpec::Spawn { argv, .. } => PLACEHOLDERS
                .into_iter()
                .filter(|p| argv.iter().any(|a| a.contains(p)))
                .collect(),
            _ => Vec::new(),
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

/// The placeholders of a plain program's command line.
pub const PLACEHOLDERS: [&str; 3] = ["{tcp_port}", "{udp_port}", "{storage}"];

/// `argv` with its placeholders filled in, and every argument that names
/// an existing file relative to the working directory made absolute: the
/// program runs in its storage directory, where `server.py` is not.
pub fn substitute(
    argv: &[String],
    tcp_port: Option<u16>,
    udp_port: Option<u16>,
    storage: &Path,
) -> Vec<String> {
    let cwd = std::env::current_dir().unwrap_or_default();
    argv.iter()
        .map(|a| {
            let mut a = a.replace("{storage}", &storage.to_string_lossy());
            if let Some(p) = tcp_port {
                a = a.replace("{tcp_port}", &p.to_string());
            }
            if let Some(p) = udp_port {
                a = a.replace("{udp_port}", &p.to_string());
            }
            absolute_in(&cwd, a)
        })
        .collect()
}

/// `arg` made absolute when it names an existing file relative to `cwd`
/// (and is not a flag): the program runs elsewhere, where `server.py` is
/// not.
pub fn absolute_in(cwd: &Path, arg: String) -> String {
    let path = Path::new(&arg);
    if path.is_relative() && !arg.starts_with('-') && cwd.join(path).exists() {
        cwd.join(path).to_string_lossy().into_owned()
    } else {
        arg
    }
}

/// How long a preflight or a liveness probe waits for a TCP connection.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a TCP connection to `addr` opens within [`REACH_TIMEOUT`]: the
/// probe that tells a target that stopped answering from one that
/// answered wrongly.
pub fn reach(addr: SocketAddr) -> Result<(), crate::error::Error> {
    std::net::TcpStream::connect_timeout(&addr, REACH_TIMEOUT)
        .map(drop)
        .map_err(|e| crate::error::Error::Unreachable {
            addr,
            reason: e.to_string(),
        })
}

/// Whether something listens at `addr`, seen without a connection where
/// the address is this machine's (/proc/net): the preflight of commands
/// given an address, which must not spend a one-shot server's only
/// `accept`. Elsewhere, a connection tells.
pub fn listening(addr: SocketAddr) -> Result<(), crate::error::Error> {
    if !addr.ip().is_loopback() {
        return reach(addr);
    }
    match crate::measure::proc::tcp_listening(addr.port(), None) {
        Some(_) => Ok(()),
        None => Err(crate::error::Error::Unreachable {
            addr,
            reason: "connection refused: nothing listens on that port (seen in /proc/net/tcp, without connecting)".into(),
        }),
    }
}

/// Whether a UDP socket is bound at the loopback address `addr`.
pub fn bound(addr: SocketAddr) -> Result<(), crate::error::Error> {
    if !addr.ip().is_loopback() || crate::measure::proc::udp_bound(addr.port(), None).is_some() {
        return Ok(());
    }
    Err(crate::error::Error::Unreachable {
        addr,
        reason: "no UDP socket is bound to that port (/proc/net/udp)".into(),
    })
}

/// Whether `addr` answers a one-byte echo with the same byte within 5 s:
/// the preflight of commands that load an address (bench, soak, load).
pub fn echo_preflight(addr: SocketAddr, wire: WireConfig) -> Result<(), crate::error::Error> {
    use crate::error::Error;
    let t = Duration::from_secs(5);
    let mut c =
        crate::peer::client::Client::connect(addr, wire, t).map_err(|e| Error::Unreachable {
            addr,
            reason: e.to_string(),
        })?;
    let r = c
        .request(&serde_json::json!({"op": "echo", "file_size": 1}), b"x", t)
        .map_err(|e| Error::Unreachable {
            addr,
            reason: format!("it does not answer an echo: {e}"),
        })?;
    if r.body != b"x" {
        return Err(Error::Misbehaved {
            what: format!("{addr} answered an echo with other bytes"),
        });
    }
    Ok(())
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
/// label the column is named after the file name of the last argument
/// that looks like a path (not a flag, not a placeholder).
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
            .find(|a| {
                !a.starts_with('-')
                    && !PLACEHOLDERS.iter().any(|p| a.contains(p))
                    && (a.contains('.') || a.contains('/'))
            })
            .or_else(|| argv.iter().rev().find(|a| !a.starts_with('-')))
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
        TargetSpec::Spawn { argv, .. } if !spec.is_plain() => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            Some(c)
        }
        _ => None,
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
