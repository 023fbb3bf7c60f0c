//! The `sockbench proxy` command: one proxy, a ready line, run until
//! interrupted (or for `--for`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::faults::{Span, parse_delay, parse_slice};
use super::{Faults, Proxy};
use crate::measure::units::{parse_size, positive_duration};

/// Flags of `sockbench proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Where clients connect (port 0: any free port; the ready line says which).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The server every connection is forwarded to.
    #[arg(long, value_name = "ADDR")]
    pub to: SocketAddr,
    /// Re-segment: write pieces of seeded random sizes, `N` or `LO-HI`
    /// bytes (e.g. `1-64`); a short tail waits up to --glue for more.
    #[arg(long, value_parser = parse_slice, value_name = "SPEC")]
    pub slice: Option<Span<usize>>,
    /// How long a short tail waits to be glued to the next read.
    #[arg(long, default_value = "2ms", value_parser = crate::measure::units::duration)]
    pub glue: Duration,
    /// Wait before forwarding each burst (what one read brought): `5ms`,
    /// or jitter `0-5ms`.
    #[arg(long, value_parser = parse_delay, value_name = "SPEC")]
    pub delay: Option<Span<Duration>>,
    /// Bytes per second per direction (suffixes K, M).
    #[arg(long, value_parser = parse_size, value_name = "RATE")]
    pub throttle: Option<u64>,
    /// Reset both sides of a connection once N bytes went through it.
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub reset_after: Option<u64>,
    /// Seed of the cuts and the jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this long (default: run until interrupted).
    #[arg(long = "for", value_parser = positive_duration, value_name = "DURATION")]
    pub run_for: Option<Duration>,
}

/// Runs the proxy. Unusable input (an unreachable `--to`, a busy
/// `--listen`) is an error, exit 2, before anything is accepted.
pub fn main(args: ProxyArgs) -> Result<ExitCode> {
    crate::target::reach(args.to)?;
    if args.throttle == Some(0) {
        anyhow::bail!("--throttle must be above 0 bytes per second");
    }
    let faults = Faults {
        slice: args.slice,
        glue: args.glue,
        delay: args.delay,
        throttle: args.throttle,
        reset_after: args.reset_after,
        seed: args.seed,
    };
    let proxy = Proxy::start(args.listen, args.to, faults)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "{}",
        serde_json::json!({"proxy": proxy.addr().to_string(), "to": args.to.to_string()})
    );
    match args.run_for {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::park();
        },
    }
    let c = proxy.counters();
    eprintln!(
        "sockbench proxy: {} connection(s), {} byte(s), {} reset(s), {} upstream failure(s)",
        c.connections.load(std::sync::atomic::Ordering::Relaxed),
        c.bytes.load(std::sync::atomic::Ordering::Relaxed),
        c.resets.load(std::sync::atomic::Ordering::Relaxed),
        c.upstream_failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
