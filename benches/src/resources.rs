//! What a benchmark costs the machine: CPU time split between the engine and the emulator
//! (told apart by thread name), and the peak resident memory of the process.
//!
//! Linux only: it reads `/proc/self`. Elsewhere every figure is zero.

use std::time::Duration;

/// Name prefix of the emulator's runtime threads (its CPU time is reported apart).
pub const EMULATOR_THREADS: &str = "emulator";

/// Clock ticks per second of `/proc` CPU times (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far, in total and by the emulator's threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    /// Every thread of the process (exited threads included).
    pub total: Duration,
    /// The emulator's runtime threads.
    pub emulator: Duration,
}

impl CpuTimes {
    /// The CPU time used since `earlier`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            total: self.total.saturating_sub(earlier.total),
            emulator: self.emulator.saturating_sub(earlier.emulator),
        }
    }

    /// Everything but the emulator: the engine (or the load driver) and its HTTP client.
    pub fn client(self) -> Duration {
        self.total.saturating_sub(self.emulator)
    }
}

/// user + system ticks from a `stat` line (fields 14 and 15, counted after the command name).
fn ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn from_ticks(t: u64) -> Duration {
    Duration::from_secs_f64(t as f64 / TICKS_PER_SECOND)
}

/// The CPU time of the process and of its emulator threads now.
pub fn cpu_now() -> CpuTimes {
    let total = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| ticks(&s)).unwrap_or(0);
    let mut emulator = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with(EMULATOR_THREADS) {
                emulator += std::fs::read_to_string(task.path().join("stat")).ok().and_then(|s| ticks(&s)).unwrap_or(0);
            }
        }
    }
    CpuTimes { total: from_ticks(total), emulator: from_ticks(emulator) }
}

/// The CPU time used so far by the processes of this machine named `name` (a local database
/// server's processes: what the server spent on a benchmark, when it runs on the same machine).
/// Processes that ended are not counted, so it is a lower bound across their exits.
pub fn cpu_of_processes(name: &str) -> Duration {
    let mut total = 0;
    if let Ok(processes) = std::fs::read_dir("/proc") {
        for process in processes.flatten() {
            let comm = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                total += std::fs::read_to_string(process.path().join("stat")).ok().and_then(|s| ticks(&s)).unwrap_or(0);
            }
        }
    }
    from_ticks(total)
}

/// A `kB` line of `/proc/self/status`, in MiB.
fn status_mib(key: &str) -> f64 {
    kib_line(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), key)
}

/// A `kB` line of a status text, in MiB.
fn kib_line(status: &str, key: &str) -> f64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of the process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Starts counting the peak resident memory ([`peak_rss_mib`]) afresh from the current size
/// (Linux's `clear_refs`), so that a benchmark's measured part is not charged with what its
/// preparation used and freed.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak resident memory: {e}");
    }
}

/// Resident memory of the process now (VmRSS), in MiB: sampled over a long run, it shows
/// whether memory stays flat.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_read_after_a_name_with_spaces() {
        let line = "42 (tokio worker) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 4 0 1 2 3";
        assert_eq!(ticks(line), Some(280));
    }

    #[test]
    fn this_process_uses_memory() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_rss_mib() > 0.0);
            // From one reading: other tests' threads allocate meanwhile, so a second reading of
            // the current size may exceed an earlier reading of the peak.
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            assert!(kib_line(&status, "VmHWM:") >= kib_line(&status, "VmRSS:"), "{status}");
        }
    }
}
