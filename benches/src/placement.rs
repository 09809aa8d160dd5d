//! Where a benchmark's threads run.
//!
//! By default the engine (or the load driver) and the emulator share every core of the machine,
//! so the engine's own CPU time is taken from the server's. Against a real Exchange server the
//! client runs on other hardware; `--split-cores` models that: the emulator's threads run on
//! the first half of the cores (at least one) and every other thread of the benchmark on the
//! rest, so that the server's limit is the same for the raw load driver and for the engine.
//!
//! Linux only (it sets thread affinities); elsewhere the option changes nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of cores split between the sides; 0 while the cores are not split. Counted once,
/// before the first thread is pinned: afterwards `available_parallelism` answers the calling
/// thread's own share (it follows the affinity mask), which would leave a thread pinned to the
/// client's core unable to move to the server's.
static SPLIT_CORES: AtomicUsize = AtomicUsize::new(0);

/// Splits the cores between the emulator and the rest from now on, and moves the calling
/// thread to the client's cores. Call before any runtime starts: threads inherit it.
pub fn split_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    SPLIT_CORES.store(cores, Ordering::Relaxed);
    pin(Side::Client);
}

/// Whether the cores are split.
pub fn is_split() -> bool {
    SPLIT_CORES.load(Ordering::Relaxed) > 0
}

/// Which side of the split a thread belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The emulator's threads.
    Server,
    /// The engine, the load driver, and everything else.
    Client,
}

/// Moves the calling thread to its side's cores (when the cores are split). Runtimes call it
/// from `on_thread_start`, so their worker and blocking threads follow.
pub fn pin(side: Side) {
    if !is_split() {
        return;
    }
    #[cfg(target_os = "linux")]
    set_affinity(side);
    #[cfg(not(target_os = "linux"))]
    let _ = side;
}

// The one unsafe call of the benchmarks: libc's thread affinity, which no safe crate of ours
// offers for a set of cores.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_affinity(side: Side) {
    let cores = SPLIT_CORES.load(Ordering::Relaxed);
    if cores < 2 {
        return;
    }
    let server = (cores / 2).max(1);
    let range = match side {
        Side::Server => 0..server,
        Side::Client => server..cores,
    };
    // SAFETY: `set` is a plain bit set owned by this frame; sched_setaffinity(0, ...) only
    // reads it and changes the calling thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in range {
            libc::CPU_SET(core, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("warning: cannot set the thread's CPU affinity: {}", std::io::Error::last_os_error());
        }
    }
}
