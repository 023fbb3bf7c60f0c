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
use super::process::NO_ADDRESS;
use crate::measure::units::parse_size;

/// What to test: `--backend`, `--spawn`, or `--tcp` with its details.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("address").args(["tcp", "udp"]).multiple(true))]
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
    /// Its UDP address; without it the UDP cases and scenarios are not
    /// run. Alone (no --tcp), a UDP-only target: conform and explore.
    #[arg(long, value_name = "ADDR")]
    pub udp: Option<String>,
    /// Its storage directory, so uploads can be inspected.
    #[arg(long, requires = "address")]
    pub storage: Option<PathBuf>,
    /// Its process id, for memory and resource measurements.
    #[arg(long, requires = "address")]
    pub pid: Option<u32>,
    /// It serves one connection at a time.
    #[arg(long, requires = "address")]
    pub not_concurrent: bool,
    /// Its column name (default: the address as given).
    #[arg(long, requires = "address")]
    pub name: Option<String>,
    /// Its byte order.
    #[arg(long, requires = "address", default_value = "little")]
    pub endian: Endian,
    /// Its --max-header.
    #[arg(long, requires = "address", default_value_t = u64::from(DEFAULT_MAX_HEADER), value_parser = parse_size)]
    pub max_header: u64,
    /// How the target frames, names and answers: `sockbench` (the
    /// contract), `lesson` (the course's upload server), or a TOML file
    /// (docs/dialects.md; `sockbench learn` writes one). Our back-ends
    /// always speak `sockbench`.
    #[arg(long, value_name = "NAME|FILE", default_value = "sockbench")]
    pub dialect: String,
    /// Its --max-body.
    #[arg(long, requires = "address", default_value_t = DEFAULT_MAX_BODY, value_parser = parse_size)]
    pub max_body: u64,
}

/// What is asked of an address target before anything runs, so that a
/// typo is one line and exit 2 rather than a page of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// Something listens there, seen in /proc/net on this machine (no
    /// connection is spent: a one-shot server has only one).
    Reach,
    /// It answers a one-byte echo with the same byte.
    Echo,
}

impl TargetArgs {
    /// True when no target is named.
    pub fn is_empty(&self) -> bool {
        self.backend.is_empty() && self.spawn.is_empty() && self.tcp.is_none() && self.udp.is_none()
    }

    /// The dialect named by `--dialect`.
    pub fn dialect(&self) -> Result<crate::dialect::Dialect> {
        Ok(crate::dialect::Dialect::load(&self.dialect)?)
    }

    /// The dialect, refused unless it is the contract: for the commands
    /// that do not speak other dialects yet.
    pub fn contract_only(&self, command: &str) -> Result<()> {
        if !self.dialect()?.contract {
            bail!(
                "{command} speaks only the sockbench dialect so far; --dialect {} is for conform",
                self.dialect
            );
        }
        Ok(())
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
        let Some(text) = self.tcp.as_ref().or(self.udp.as_ref()) else {
            return Ok(None);
        };
        let udp = match &self.udp {
            Some(u) => Some(lookup("--udp", u)?),
            None => None,
        };
        let wire = self.wire()?;
        let tcp = match &self.tcp {
            Some(t) => lookup("--tcp", t)?,
            None if check == Preflight::Echo => {
                bail!(
                    "--udp alone is a UDP-only target, which only conform and explore check; give --tcp too"
                )
            }
            None => NO_ADDRESS,
        };
        match check {
            Preflight::Reach if tcp != NO_ADDRESS => super::listening(tcp)?,
            Preflight::Reach => {}
            Preflight::Echo => super::echo_preflight(tcp, wire)?,
        }
        // A UDP-only target with nothing bound is unreachable; beside a
        // TCP port, a closed UDP port is the target's failure, case by
        // case, with the ICMP error as evidence.
        if let Some(u) = udp
            && tcp == NO_ADDRESS
        {
            super::bound(u)?;
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
            0 => bail!(
                "a target is required: give --backend NAME, --spawn 'CMD' or --tcp ADDR (or --udp ADDR)"
            ),
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
