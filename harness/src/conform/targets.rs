//! What conform runs against: our back-ends, any command obeying the serve
//! contract, or an address already listening. For the first two a fresh
//! server is started for every case, configured as the case asks, with its
//! own storage directory: cases never share state and run in parallel.

use std::net::SocketAddr;
use std::path::Path;

use sockbench_wire::{Endian, WireConfig};

use super::case::{Case, Setup, Speaks};
use crate::dialect::Dialect;
use crate::schema::conform::TargetInfo;
pub use crate::target::TargetSpec;
use crate::target::process::NO_ADDRESS;
use crate::target::server::{Launch, Server, StartError};

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
        dialect: None,
        notes: Vec::new(),
    }
}

/// A target ready for one case: the started (or given) server, the
/// address the case connects to, and the byte order and limits in force.
#[derive(Debug)]
pub struct Instance {
    /// The server.
    pub server: Server,
    /// The TCP address the case connects to: the server's, or a proxy in front.
    pub case_tcp: SocketAddr,
    /// Byte order and limits in force.
    pub wire: WireConfig,
    /// The dialect the case speaks to it.
    pub dialect: Dialect,
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

/// The dialect a target speaks: our back-ends speak the contract whatever
/// `--dialect` says; it names the others'.
pub fn dialect_of(spec: &TargetSpec, given: &Dialect) -> Dialect {
    match spec {
        TargetSpec::Backend(_) => Dialect::sockbench(),
        _ => given.clone(),
    }
}

/// Why `case` cannot be asked of `spec` speaking `dialect`, before
/// anything starts: the dialect cannot express it, a plain program cannot
/// be configured for it, or the target has no TCP.
fn unfit(spec: &TargetSpec, case: &Case, dialect: &Dialect) -> Option<String> {
    if case.speaks == Speaks::Contract && !dialect.contract {
        return Some(format!(
            "the case checks a rule of the sockbench contract ({}), which {} does not have",
            contract_part(case),
            dialect.summary()
        ));
    }
    let udp_only = matches!(spec, TargetSpec::Address { tcp, .. } if *tcp == NO_ADDRESS)
        || (spec.is_plain() && spec.placeholders().iter().all(|p| *p != "{tcp_port}"));
    if udp_only && (case.category() != 7 || case.speaks == Speaks::Contract) {
        return Some(match case.category() {
            7 => "the case asks the server's stats over TCP; the target is UDP-only".into(),
            _ => "the target is UDP-only (no TCP port was given)".into(),
        });
    }
    if spec.is_plain() {
        if case.needs.lifecycle {
            return Some(
                "a plain program is not held to the serve contract's signals and exit status"
                    .into(),
            );
        }
        let flags = setup_flags(&case.setup);
        if !flags.is_empty() {
            return Some(format!(
                "the case starts the server with {}, which a plain program does not take",
                flags.join(" ")
            ));
        }
        if case.category() == 7 && !spec.placeholders().contains(&"{udp_port}") {
            return Some("no UDP port was given: put {udp_port} in the command line".into());
        }
    }
    None
}

/// What of the contract a case's category leans on, for its reason.
fn contract_part(case: &Case) -> &'static str {
    match case.category() {
        1 => "the op field and its echo of the whole frame",
        2 => "the echo of the whole frame",
        3 => "the upload's reply, error codes and stats",
        4 => "error replies to malformed input",
        5 => "the limits --max-header and --max-body and their errors",
        6 => "error replies and stats under faults",
        7 => "stats counting datagrams",
        _ => "the ready line, signals and exit status",
    }
}

/// Readies `spec` for `case`: checks what the case needs, and for spawned
/// targets starts a server configured by the case's setup.
pub fn instantiate(
    spec: &TargetSpec,
    case: &Case,
    exe: &Path,
    given: &Dialect,
) -> Result<Instance, NotReady> {
    let dialect = dialect_of(spec, given);
    if let Some(why) = unfit(spec, case, &dialect) {
        return Err(NotReady::Unsupported(why));
    }
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
        let needs = case.needs;
        let why = if needs.lifecycle || case.setup.ours_only() {
            Some("the server was not started by the harness".to_owned())
        } else if needs.storage && storage.is_none() {
            Some("the storage directory is not known (give --storage)".to_owned())
        } else if needs.process && pid.is_none() {
            Some("the server's pid is not known (give --pid)".to_owned())
        } else if needs.concurrency && !concurrent {
            Some("the target is declared not concurrent".to_owned())
        } else if case.setup.endian != wire.endian && case.category() != 7 && dialect.contract {
            Some(format!(
                "the case needs a {}-endian server",
                case.setup.endian
            ))
        } else if case.setup.ipv6 && !(tcp.is_ipv6() && udp.is_none_or(|u| u.is_ipv6())) {
            Some("the case needs a server on IPv6".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(NotReady::Unsupported(why));
        }
    }
    if matches!(spec, TargetSpec::Spawn { .. }) && case.setup.ours_only() {
        return Err(NotReady::Unsupported(
            "the case sets timeouts with flags only sockbench's own serve takes".into(),
        ));
    }
    let mut launch = Launch::new("conform");
    if spec.spawns() {
        launch = launch.flags(setup_flags(&case.setup));
    }
    let server = Server::start(spec, exe, &launch).map_err(|e| match e {
        StartError::Unavailable { .. } => NotReady::Unsupported(e.to_string()),
        StartError::Sandbox { .. } => NotReady::Harness(e.to_string()),
        e => NotReady::Failed(e.to_string()),
    })?;
    if !spec.spawns() {
        return Ok(Instance {
            case_tcp: server.tcp(),
            wire: server.wire(),
            server,
            dialect,
        });
    }
    if case.needs.concurrency && !server.concurrent() {
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
        case_tcp: server.tcp(),
        wire,
        server,
        dialect,
    })
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
