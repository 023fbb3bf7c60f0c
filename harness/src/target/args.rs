//! The target flags, declared once and flattened into every command that
//! measures or checks a server (bench, conform, explore, replay, soak,
//! load): our back-ends, commands obeying the serve contract, or a server
//! already listening at an address, with what is known about it.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use sockbench_wire::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, Endian, WireConfig};

use super::TargetSpec;
use crate::measure::units::parse_size;

/// What to test: `--backend`, `--spawn`, or `--tcp` with its details.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Our back-ends, each started as `sockbench serve`: `all` or names.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "NAME")]
    pub backend: Vec<String>,
    /// A command that obeys the serve contract, e.g. 'python3 server.py'
    /// (repeatable); `LABEL=CMD` names its column.
    #[arg(long, value_name = "CMD")]
    pub spawn: Vec<String>,
    /// A server already listening at this TCP address (HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    /// Its UDP address; without it the UDP cases and scenarios are not run.
    #[arg(long, value_name = "ADDR", requires = "tcp")]
    pub udp: Option<String>,
    /// Its storage directory, so uploads can be inspected.
    #[arg(long, requires = "tcp")]
    pub storage: Option<PathBuf>,
    /// Its process id, for memory and resource measurements.
    #[arg(long, requires = "tcp")]
    pub pid: Option<u32>,
    /// It serves one connection at a time.
    #[arg(long, requires = "tcp")]
    pub not_concurrent: bool,
    /// Its column name (default: the address as given).
    #[arg(long, requires = "tcp")]
    pub name: Option<String>,
    /// Its byte order.
    #[arg(long, requires = "tcp", default_value = "little")]
    pub endian: Endian,
    /// Its --max-header.
    #[arg(long, requires = "tcp", default_value_t = u64::from(DEFAULT_MAX_HEADER), value_parser = parse_size)]
    pub max_header: u64,
    /// Its --max-body.
    #[arg(long, requires = "tcp", default_value_t = DEFAULT_MAX_BODY, value_parser = parse_size)]
    pub max_body: u64,
}

/// What is asked of an address target before anything runs, so that a
/// typo is one line and exit 2 rather than a page of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// A TCP connection opens.
    Reach,
    /// It answers a one-byte echo with the same byte.
    Echo,
}

impl TargetArgs {
    /// True when no target is named.
    pub fn is_empty(&self) -> bool {
        self.backend.is_empty() && self.spawn.is_empty() && self.tcp.is_none()
    }

    /// The byte order and limits given for the address target.
    pub fn wire(&self) -> Result<WireConfig> {
        Ok(WireConfig {
            endian: self.endian,
            max_header: u32::try_from(self.max_header)
                .ok()
                .filter(|&n| n > 0)
                .context("--max-header must be in 1..=4294967295")?,
            max_body: self.max_body,
        })
    }

    /// The address target, resolved and checked as `check` says.
    pub fn address(&self, check: Preflight) -> Result<Option<TargetSpec>> {
        let Some(text) = &self.tcp else {
            return Ok(None);
        };
        let tcp = lookup("--tcp", text)?;
        let udp = match &self.udp {
            Some(u) => Some(lookup("--udp", u)?),
            None => None,
        };
        let wire = self.wire()?;
        match check {
            Preflight::Reach => super::reach(tcp)?,
            Preflight::Echo => super::echo_preflight(tcp, wire)?,
        }
        Ok(Some(TargetSpec::Address {
            label: self.name.clone().unwrap_or_else(|| text.clone()),
            tcp,
            udp,
            storage: self.storage.clone(),
            pid: self.pid,
            concurrent: !self.not_concurrent,
            wire,
        }))
    }

    /// Every target named, resolved the same way by every command
    /// ([`super::resolve`]); `default_backends` stands in when none is.
    pub fn resolve(&self, check: Preflight, default_backends: &[&str]) -> Result<Vec<TargetSpec>> {
        let address = self.address(check)?;
        let names: Vec<String> = if self.is_empty() {
            default_backends.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.backend.clone()
        };
        super::resolve(&names, &self.spawn, address)
    }

    /// The one target of a command that runs one at a time.
    pub fn one(&self, check: Preflight, command: &str) -> Result<TargetSpec> {
        let mut all = self.resolve(check, &[])?;
        match all.len() {
            0 => bail!("a target is required: give --backend NAME, --spawn 'CMD' or --tcp ADDR"),
            1 => Ok(all.remove(0)),
            _ => bail!("{command} runs one server at a time: name one target"),
        }
    }
}

/// `HOST:PORT` to its first address.
fn lookup(flag: &str, text: &str) -> Result<SocketAddr> {
    text.to_socket_addrs()
        .with_context(|| format!("{flag} {text}"))?
        .next()
        .with_context(|| format!("{flag} {text}: no address"))
}
