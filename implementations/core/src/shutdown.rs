//! The stop signal of a server: set once (SIGINT/SIGTERM), seen by every
//! part of every back-end, each of which registers how it must be woken.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

type Hook = Box<dyn FnOnce() + Send>;

/// A one-way switch from serving to stopping, with wake-up hooks.
#[derive(Default)]
pub struct Shutdown {
    triggered: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish_non_exhaustive()
    }
}

impl Shutdown {
    /// Stops the server: runs every hook once. Later calls do nothing.
    pub fn trigger(&self) {
        if self.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        let hooks = std::mem::take(&mut *self.lock());
        for hook in hooks {
            hook();
        }
    }

    /// True once [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Runs `hook` when the server stops (at once if it already has): the
    /// way a part blocked in a system call asks to be woken.
    pub fn on_trigger(&self, hook: impl FnOnce() + Send + 'static) {
        let mut hooks = self.lock();
        // Checked under the lock, so a hook is never registered after the
        // hooks were taken without also being run.
        if self.is_triggered() {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Hook>> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_whether_registered_before_or_after() {
        let s = Shutdown::default();
        let n = Arc::new(AtomicUsize::new(0));
        let m = Arc::clone(&n);
        s.on_trigger(move || {
            m.fetch_add(1, Ordering::SeqCst);
        });
        s.trigger();
        s.trigger();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let m = Arc::clone(&n);
        s.on_trigger(move || {
            m.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
    }
}
