#![no_main]
//! Whole Ethernet frames into the reference firmware on the simulated board; see
//! `src/stack.rs`.
//!
//! Every run boots a new board, which leaks its register blocks and DMA region (the
//! firmware holds them as `&'static`, as on the target): tens of KiB a run, gigabytes
//! over millions of runs. This allocator takes them back: it notes the zeroed 16-byte-
//! aligned allocations made during a run (the simulator's `leak_zeroed`, nothing else
//! in a run asks for those) and frees those still live once the run has dropped the
//! firmware and the board.

use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

struct Reclaim;

const SLOTS: usize = 32;
static TRACKING: AtomicBool = AtomicBool::new(false);
static PTR: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static SIZE: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

fn tracked(l: &Layout) -> bool {
    l.align() == 16 && TRACKING.load(Relaxed)
}

fn forget(p: *mut u8) {
    for slot in &PTR {
        if slot.load(Relaxed) == p as usize {
            slot.store(0, Relaxed);
        }
    }
}

// SAFETY: every call goes to `System` with the caller's layout; the bookkeeping only
// remembers addresses (single-threaded: libFuzzer runs inputs on one thread).
unsafe impl GlobalAlloc for Reclaim {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        unsafe { System.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() && tracked(&l) {
            let i = PTR
                .iter()
                .position(|s| s.load(Relaxed) == 0)
                .expect("too many boards in one run");
            PTR[i].store(p as usize, Relaxed);
            SIZE[i].store(l.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if l.align() == 16 {
            forget(p);
        }
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if l.align() == 16 {
            forget(p);
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Reclaim = Reclaim;

/// Frees what the run leaked.
fn reclaim() {
    TRACKING.store(false, Relaxed);
    for (p, n) in PTR.iter().zip(&SIZE) {
        let addr = p.swap(0, Relaxed);
        if addr != 0 {
            let l = Layout::from_size_align(n.load(Relaxed), 16).unwrap();
            // SAFETY: allocated by `alloc_zeroed` with this layout, not freed since
            // (`dealloc` forgets what it frees), and unreachable: the board and the
            // firmware that used it were dropped.
            unsafe { System.dealloc(addr as *mut u8, l) };
        }
    }
}

fuzz_target!(|data: &[u8]| {
    TRACKING.store(true, Relaxed);
    mzw1_wss_fuzz::stack::run(data);
    reclaim();
});
