//! `sockbench serve`: bind, announce, serve until SIGINT/SIGTERM, clean up.

pub mod backends;
pub mod ready;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGINT, SIGTERM, SIGXFSZ};
use sockbench_core::sockets::{Sharing, bind_tcp, bind_udp};
use sockbench_core::{Server, ServerConfig, ServerContext, Storage};

use crate::serve::ready::ReadyLine;

/// Everything `serve` needs, as parsed from its flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Back-end name.
    pub backend: String,
    /// TCP address to bind.
    pub tcp: SocketAddr,
    /// UDP address to bind.
    pub udp: SocketAddr,
    /// Storage directory; `None`: a fresh temporary one removed at exit.
    pub storage: Option<PathBuf>,
    /// Server settings.
    pub config: ServerConfig,
}

/// Runs a server until it is told to stop; `Ok` means a clean exit (0).
pub fn serve(opts: ServeOptions) -> Result<()> {
    let Some(backend) = backends::find(&opts.backend) else {
        bail!(
            "unknown back-end {:?} (expected one of: {})",
            opts.backend,
            backends::names().join(", ")
        );
    };
    let (dir, _temp) = match &opts.storage {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create storage directory {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("sockbench-storage-")
                .tempdir()
                .context("cannot create a temporary storage directory")?;
            (t.path().to_owned(), Some(t))
        }
    };
    if let Err(why) = backend.probe() {
        return Err(crate::error::Error::Unavailable {
            what: format!("back-end {}", backend.name()),
            why: why.to_string(),
        }
        .into());
    }
    let sharing = match backend.capabilities().reuse_port {
        true => Sharing::ReusePort,
        false => Sharing::Exclusive,
    };
    let tcp = bind_tcp(opts.tcp, sharing)
        .with_context(|| format!("cannot listen on TCP {}", opts.tcp))?;
    let udp =
        bind_udp(opts.udp, sharing).with_context(|| format!("cannot bind UDP {}", opts.udp))?;
    warn_stale_temporaries(&dir);
    let ctx = ServerContext::new(
        backend.name(),
        opts.config.clone(),
        Storage::new(&dir, opts.config.fsync),
    );
    install_signals(&ctx)?;

    let ready = ReadyLine {
        backend: backend.name().to_owned(),
        tcp: tcp.local_addr()?,
        udp: udp.local_addr()?,
        pid: std::process::id(),
        concurrent: backend.capabilities().concurrent,
    };
    let mut stdout = io::stdout().lock();
    serde_json::to_writer(&mut stdout, &ready)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    drop(stdout);
    log::info!(
        "{} serving tcp {} udp {}, storage {}",
        ready.backend,
        ready.tcp,
        ready.udp,
        dir.display()
    );

    let result = backend.run(Server {
        tcp,
        udp,
        ctx: Arc::clone(&ctx),
    });
    let swept = ctx.storage.remove_temporaries();
    if swept > 0 {
        log::info!("removed {swept} unfinished upload(s)");
    }
    result.with_context(|| format!("back-end {} failed", backend.name()))?;
    log::info!("{} stopped", backend.name());
    Ok(())
}

/// A server killed during an upload leaves its temporary file. They are not
/// deleted at startup (a user may have uploaded a file of that name); they
/// are reported, so a person can.
fn warn_stale_temporaries(dir: &std::path::Path) {
    let stale: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect::<Vec<String>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            n.starts_with(sockbench_core::TEMP_PREFIX) && n.ends_with(sockbench_core::TEMP_SUFFIX)
        })
        .collect();
    if !stale.is_empty() {
        log::warn!(
            "{} looks like {} unfinished upload(s) of a killed server: {}",
            dir.display(),
            stale.len(),
            stale.join(", ")
        );
    }
}

fn install_signals(ctx: &Arc<ServerContext>) -> Result<()> {
    // Past RLIMIT_FSIZE a write must fail with EFBIG (an io_error reply),
    // not kill the server.
    signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false)))?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let ctx = Arc::clone(ctx);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig}: stopping (grace {:?})", ctx.config.grace);
                ctx.shutdown.trigger();
            }
        })?;
    Ok(())
}
