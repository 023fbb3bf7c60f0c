//! The provided buffer ring: receive buffers the kernel picks when data
//! arrives, not when a receive is armed, so an idle connection holds none.
//! One ring of `count` buffers of `size` bytes per worker, under one group
//! id; a buffer goes back to the ring as soon as its bytes were handed on.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, cqueue, squeue};

/// The buffer group of the first ring of each worker's (groups are per
/// ring, so the ids repeat across workers).
pub const GROUP: u16 = 0;

/// Registered receive buffers.
pub struct BufRing {
    entries: *mut BufRingEntry,
    data: *mut u8,
    // The memory behind the two pointers, unmapped on drop.
    _entries_map: Mapping,
    _data_map: Mapping,
    count: u16,
    size: usize,
    tail: u16,
    group: u16,
}

impl BufRing {
    /// Allocates `count` (a power of two) buffers of `size` bytes and
    /// registers them with `ring`. The memory is touched only as the kernel
    /// fills buffers, so unused ones cost no resident memory.
    pub fn register(
        ring: &IoUring<squeue::Entry, cqueue::Entry>,
        group: u16,
        count: u16,
        size: usize,
    ) -> io::Result<BufRing> {
        assert!(count.is_power_of_two());
        let entries_map = Mapping::new(usize::from(count) * size_of::<BufRingEntry>())?;
        let data_map = Mapping::new(usize::from(count) * size)?;
        let (entries, data) = (entries_map.ptr().cast::<BufRingEntry>(), data_map.ptr());
        let mut bufs = BufRing {
            entries,
            data,
            _entries_map: entries_map,
            _data_map: data_map,
            count,
            size,
            tail: 0,
            group,
        };
        // SAFETY: `entries` is page-aligned, zeroed and lives until drop,
        // which comes after the ring is gone (see `Worker`'s field order).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?;
        }
        for bid in 0..count {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, just filled by the kernel.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size);
        // SAFETY: in bounds (checked), and the kernel wrote it before it
        // posted the completion that named it; it is not handed out again
        // until `recycle`.
        unsafe { std::slice::from_raw_parts(self.data.add(usize::from(bid) * self.size), len) }
    }

    /// Returns buffer `bid` to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// Each buffer's size: the largest read a receive can return.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many buffers it has.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Its buffer group id, for a receive's `buf_group`.
    pub fn group(&self) -> u16 {
        self.group
    }

    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` < count; the kernel reads entries only up to the
        // published tail, and this one is past it.
        let entry = unsafe { &mut *self.entries.add(slot) };
        // SAFETY: in bounds of the data allocation.
        entry.set_addr(unsafe { self.data.add(usize::from(bid) * self.size) } as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field is the first entry's reserved field, a u16
        // the kernel reads; the release store orders the entries before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
}

/// Anonymous memory straight from `mmap`: page-aligned and zero without
/// being written, so a page is resident only once the kernel fills it. (A
/// zeroed allocation from the heap may be cleared with `memset`, which
/// makes every buffer resident at start.)
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Mapping { ptr, len })
    }

    fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length, and unmapped only here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
