//! A TCP proxy that damages streams the way networks and kernels do:
//! re-segmentation (split and glue at seeded random points), delay and
//! jitter, throttling, and a reset after N bytes. toxiproxy's faults, for
//! anybody's client and server; `conform --under impaired` puts one in
//! front of every case.

pub mod command;
pub mod faults;
mod pump;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use faults::Faults;

/// Counters of a running proxy.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Bytes forwarded, both directions.
    pub bytes: AtomicU64,
    /// Connections reset by `reset_after`.
    pub resets: AtomicU64,
    /// Connections whose upstream could not be reached.
    pub upstream_failed: AtomicU64,
}

/// A running proxy; dropping it stops accepting and ends its connections.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    accept: Option<JoinHandle<()>>,
}

/// How long an upstream connection may take.
const CONNECT: Duration = Duration::from_secs(5);

impl Proxy {
    /// Listens on `listen` and forwards every connection to `to`.
    pub fn start(listen: SocketAddr, to: SocketAddr, faults: Faults) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let accept = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(&listener, to, faults, &s, &c))?;
        Ok(Proxy {
            addr,
            stop,
            counters,
            accept: Some(accept),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    to: SocketAddr,
    faults: Faults,
    stop: &Arc<AtomicBool>,
    counters: &Arc<Counters>,
) {
    let mut n: u64 = 0;
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        n += 1;
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let (stop, counters) = (stop.clone(), counters.clone());
        let seed = faults.seed.wrapping_add(n);
        let _ = thread::Builder::new()
            .name(format!("proxy-{n}"))
            .spawn(move || match TcpStream::connect_timeout(&to, CONNECT) {
                Ok(upstream) => pump::connection(client, upstream, &faults, seed, &stop, &counters),
                Err(_) => {
                    counters.upstream_failed.fetch_add(1, Ordering::Relaxed);
                }
            });
    }
}
