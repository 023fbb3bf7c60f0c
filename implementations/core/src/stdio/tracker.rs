//! The live connections of a thread-based server, so that shutdown can
//! wake threads blocked in reads: idle connections are closed at once, the
//! rest after the grace period.

use std::collections::HashMap;
use std::net::{Shutdown as Both, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread;
use std::time::Instant;

use crate::server::ServerContext;

/// The live connections of a thread-based server, so shutdown can close
/// idle ones at once and the rest after the grace period.
#[derive(Debug)]
pub struct Tracker {
    live: Mutex<Live>,
    changed: Condvar,
}

/// The next key, and each live connection's stream and idle flag.
type Live = (u64, HashMap<u64, (Arc<TcpStream>, Arc<AtomicBool>)>);

/// A connection's registration; dropping it deregisters.
#[derive(Debug)]
pub struct Tracked {
    tracker: Arc<Tracker>,
    key: u64,
    /// True while the connection is between frames, waiting for input.
    pub idle: Arc<AtomicBool>,
}

impl Tracker {
    /// A tracker wired to `ctx`'s shutdown.
    pub fn new(ctx: &Arc<ServerContext>) -> Arc<Tracker> {
        let tracker = Arc::new(Tracker {
            live: Mutex::new((0, HashMap::new())),
            changed: Condvar::new(),
        });
        let weak: Weak<Tracker> = Arc::downgrade(&tracker);
        let grace = ctx.config.grace;
        ctx.shutdown.on_trigger(move || {
            let Some(t) = weak.upgrade() else { return };
            t.close(true);
            let _ = thread::Builder::new().name("grace".into()).spawn(move || {
                let deadline = Instant::now() + grace;
                if !t.wait_empty(deadline) {
                    t.close(false);
                }
            });
        });
        tracker
    }

    /// Registers a connection until the returned guard drops.
    pub fn register(self: &Arc<Self>, stream: &Arc<TcpStream>) -> Tracked {
        let idle = Arc::new(AtomicBool::new(false));
        let mut live = self.lock();
        let key = live.0;
        live.0 += 1;
        live.1.insert(key, (Arc::clone(stream), Arc::clone(&idle)));
        Tracked {
            tracker: Arc::clone(self),
            key,
            idle,
        }
    }

    /// Connections alive now.
    pub fn len(&self) -> usize {
        self.lock().1.len()
    }

    /// True when no connection is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no connection is alive or `deadline` passes; true if none is.
    pub fn wait_empty(&self, deadline: Instant) -> bool {
        let mut live = self.lock();
        while !live.1.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .changed
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn close(&self, only_idle: bool) {
        for (stream, idle) in self.lock().1.values() {
            if !only_idle || idle.load(SeqCst) {
                let _ = stream.shutdown(Both::Both);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tracker.lock().1.remove(&self.key);
        self.tracker.changed.notify_all();
    }
}
