//! A global allocator that counts heap allocations of the calling thread
//! while counting is on; off, it costs one relaxed load per allocation.
//! Installed only in `sockbench-codec`, the codec table's process (never in
//! `sockbench serve`), it gives allocations per operation, a deterministic
//! number the CI gate can hold.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

thread_local! {
    // Const-initialized and without a destructor: usable inside the allocator.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// The counting allocator; install with `#[global_allocator]`.
pub struct Counting;

// SAFETY: every method delegates to `System` with the same arguments; the
// counter touches only a thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` via `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: forwarded unchanged; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn bump() {
    if ON.load(Ordering::Relaxed) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

/// Runs `f` and returns how many allocations this thread made in it
/// (0 where the counting allocator is not installed).
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ON.store(true, Ordering::SeqCst);
    let before = COUNT.with(Cell::get);
    let r = f();
    let n = COUNT.with(Cell::get) - before;
    ON.store(false, Ordering::SeqCst);
    (r, n)
}
