//! What conform runs against: our back-ends, any command obeying the serve
//! contract, or an address already listening. For the first two a fresh
//! server is started for every case, configured as the case asks, with its
//! own storage directory: cases never share state and run in parallel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sockbench_wire::{Endian, WireConfig};

use super::case::{Case, Setup};
use crate::schema::conform::TargetInfo;
pub use crate::target::TargetSpec;
use crate::target::{Spawned, command_for};

/// How a conform report describes a target.
pub fn info(spec: &TargetSpec, exe: &Path) -> TargetInfo {
    let (kind, detail) = spec.describe(exe);
    TargetInfo {
        name: spec.name(),
        kind: kind.into(),
        detail,
        stopped_after: None,
        condition: None,
        base: None,
    }
}

/// A target ready for one case.
pub struct Instance {
    /// TCP address.
    pub tcp: SocketAddr,
    /// The TCP address the case connects to: `tcp`, or a proxy in front.
    pub case_tcp: SocketAddr,
    /// UDP address, when the target has one.
    pub udp: Option<SocketAddr>,
    /// Byte order and limits in force.
    pub wire: WireConfig,
    /// Readable storage directory.
    pub storage: Option<PathBuf>,
    /// Server pid.
    pub pid: Option<u32>,
    /// Concurrent, as declared.
    pub concurrent: bool,
    /// The child, when spawned.
    pub spawned: Option<Spawned>,
    /// Holds the case's directory until the case ends.
    pub dir: Option<tempfile::TempDir>,
}

/// Why a target could not be readied for a case.
#[derive(Debug)]
pub enum NotReady {
    /// The case cannot be asked of this target.
    Unsupported(String),
    /// The target failed to start: the case fails.
    Failed(String),
    /// The harness failed.
    Harness(String),
}

/// How long a spawned server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Readies `spec` for `case`: checks what the case needs, and for spawned
/// targets starts a server configured by the case's setup.
pub fn instantiate(spec: &TargetSpec, case: &Case, exe: &Path) -> Result<Instance, NotReady> {
    let needs = case.needs;
    match spec {
        TargetSpec::Address {
            tcp,
            udp,
            storage,
            pid,
            concurrent,
            wire,
            ..
        } => {
            if needs.lifecycle || case.setup.ours_only() {
                return Err(NotReady::Unsupported(
                    "the server was not started by the harness".into(),
                ));
            }
            if needs.storage && storage.is_none() {
                return Err(NotReady::Unsupported(
                    "the storage directory is not known (give --storage)".into(),
                ));
            }
            if needs.process && pid.is_none() {
                return Err(NotReady::Unsupported(
                    "the server's pid is not known (give --pid)".into(),
                ));
            }
            if needs.concurrency && !concurrent {
                return Err(NotReady::Unsupported(
                    "the target is declared not concurrent".into(),
                ));
            }
            if case.setup.endian != wire.endian {
                return Err(NotReady::Unsupported(format!(
                    "the case needs a {}-endian server",
                    case.setup.endian
                )));
            }
            if case.setup.ipv6 && !(tcp.is_ipv6() && udp.is_none_or(|u| u.is_ipv6())) {
                return Err(NotReady::Unsupported(
                    "the case needs a server on IPv6".into(),
                ));
            }
            Ok(Instance {
                tcp: *tcp,
                case_tcp: *tcp,
                udp: *udp,
                wire: *wire,
                storage: storage.clone(),
                pid: *pid,
                concurrent: *concurrent,
                spawned: None,
                dir: None,
            })
        }
        TargetSpec::Spawn { .. } if case.setup.ours_only() => Err(NotReady::Unsupported(
            "the case sets timeouts with flags only sockbench's own serve takes".into(),
        )),
        TargetSpec::Backend(name)
            if let Some(Err(why)) = crate::serve::backends::find(name).map(|b| b.probe()) =>
        {
            Err(NotReady::Unsupported(format!(
                "the {name} back-end is unavailable here: {why}"
            )))
        }
        TargetSpec::Backend(_) | TargetSpec::Spawn { .. } => {
            let dir = tempfile::Builder::new()
                .prefix("sockbench-conform-")
                .tempdir()
                .map_err(|e| NotReady::Harness(format!("cannot create a case directory: {e}")))?;
            let storage = dir.path().join("storage");
            std::fs::create_dir(&storage).map_err(|e| NotReady::Harness(e.to_string()))?;
            let mut cmd = command_for(spec, exe)
                .ok_or_else(|| NotReady::Harness("not a spawnable target".into()))?;
            cmd.arg("--storage").arg(&storage);
            cmd.args(setup_flags(&case.setup));
            let spawned = Spawned::start(cmd, READY_TIMEOUT)
                .map_err(|e| NotReady::Failed(format!("{e:#}")))?;
            let ready = spawned.ready.clone();
            if needs.concurrency && !ready.concurrent {
                return Err(NotReady::Unsupported(
                    "the target declares \"concurrent\":false".into(),
                ));
            }
            let wire = WireConfig {
                endian: case.setup.endian,
                max_header: case
                    .setup
                    .max_header
                    .unwrap_or(sockbench_wire::DEFAULT_MAX_HEADER),
                max_body: case
                    .setup
                    .max_body
                    .unwrap_or(sockbench_wire::DEFAULT_MAX_BODY),
            };
            Ok(Instance {
                tcp: ready.tcp,
                case_tcp: ready.tcp,
                udp: Some(ready.udp),
                wire,
                storage: Some(storage),
                pid: Some(spawned.pid()),
                concurrent: ready.concurrent,
                spawned: Some(spawned),
                dir: Some(dir),
            })
        }
    }
}

/// The contract's flags that configure a server as `setup` asks.
pub fn setup_flags(setup: &Setup) -> Vec<String> {
    let mut flags = Vec::new();
    if setup.endian == Endian::Big {
        flags.extend(["--endian".into(), "big".into()]);
    }
    if let Some(n) = setup.max_header {
        flags.extend(["--max-header".into(), n.to_string()]);
    }
    if let Some(n) = setup.max_body {
        flags.extend(["--max-body".into(), n.to_string()]);
    }
    for (flag, ms) in [
        ("--header-timeout", setup.header_timeout_ms),
        ("--idle-timeout", setup.idle_timeout_ms),
    ] {
        if let Some(ms) = ms {
            flags.extend([flag.into(), format!("{:.3}", ms as f64 / 1000.0)]);
        }
    }
    if setup.ipv6 {
        flags.extend([
            "--tcp".into(),
            "[::1]:0".into(),
            "--udp".into(),
            "[::1]:0".into(),
        ]);
    }
    flags
}
