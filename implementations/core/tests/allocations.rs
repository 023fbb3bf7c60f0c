//! The pipelined echo path allocates nothing per frame once a connection's
//! buffers have grown: counted by a global allocator, not timed, so it
//! holds on any machine.

#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use common::context;
use sockbench_core::{Action, Driver, ServerConfig};
use sockbench_wire::{Encoder, Endian};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` unchanged; the count is a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

/// `frames` echo requests glued together, each with an id and a body.
fn stream(frames: usize, body: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..frames {
        let header = format!(r#"{{"op":"echo","file_size":{body},"id":{i}}}"#);
        Encoder::new(Endian::Little)
            .frame(header.as_bytes(), &vec![7u8; body], &mut out)
            .unwrap();
    }
    out
}

/// Reads `input` in `chunk`-byte pieces, writing every reply; returns the
/// bytes written.
fn serve(d: &mut Driver, input: &[u8], chunk: usize) -> usize {
    let now = Instant::now();
    let mut written = 0;
    for piece in input.chunks(chunk) {
        d.on_read(piece, now);
        loop {
            match d.next(now) {
                Action::Write(b) => {
                    let n = b.len();
                    written += n;
                    d.on_written(n, now);
                }
                Action::Read => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    written
}

#[test]
fn pipelined_echoes_allocate_nothing_in_steady_state() {
    let (_dir, ctx) = context(ServerConfig::default());
    // 1000-byte reads split frames anywhere: in prefixes, headers and
    // bodies, so the held-echo path runs as well as the whole-frame one.
    for (body, chunk) in [(0, 1000), (64, 1000), (64, 7), (16 * 1024, 4096)] {
        let input = stream(100, body);
        let mut d = Driver::new(&ctx, Instant::now());
        let warm = serve(&mut d, &input, chunk);
        let (again, n) = allocations(|| serve(&mut d, &input, chunk));
        assert_eq!(warm, again, "{body} B in {chunk} B reads: same replies");
        assert_eq!(warm, input.len(), "an echo returns the stream");
        assert_eq!(
            n, 0,
            "{body} B bodies in {chunk} B reads: allocations in 100 frames"
        );
    }
}
