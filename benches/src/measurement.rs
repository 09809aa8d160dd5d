//! One row of the results: what a benchmark did and what it cost, as the child process that ran
//! it reports it to the suite (one JSON line on stdout, prefixed by [`LINE_PREFIX`]).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::resources::{self, CpuTimes};
use crate::tenant::Tenant;

/// Marks the result lines among whatever else a child prints.
pub const LINE_PREFIX: &str = "BENCH-RESULT ";

/// What one benchmark measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// The benchmark (table row name).
    pub name: String,
    /// The size it ran at, in words (e.g. "10000 contacts x 100 mailboxes").
    pub size: String,
    /// Items written (or changes propagated).
    pub items: u64,
    /// Wall-clock seconds of the measured part.
    pub seconds: f64,
    /// EWS requests the emulator answered during the measured part.
    pub requests: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Peak resident memory of the whole process (emulator included), MiB.
    pub peak_rss_mib: f64,
    /// CPU seconds of the client side (engine, load driver or Python).
    pub cpu_client_s: f64,
    /// CPU seconds of the emulator.
    pub cpu_emulator_s: f64,
    /// Latency percentiles in milliseconds, for the real-time benchmark.
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p99_ms: Option<f64>,
    /// Anything else worth a footnote.
    pub note: String,
    /// Targets this benchmark checks itself (counts, never timings): the suite prints each with
    /// its verdict, and a missed one fails the suite.
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// One target a benchmark checked: what was measured against what it should be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked, in words.
    pub what: String,
    /// The measured value, in words.
    pub value: String,
    /// The target, in words.
    pub target: String,
    /// Whether the value meets the target.
    pub met: bool,
}

impl Check {
    /// A count that must stay at or below `max`.
    pub fn at_most(what: impl Into<String>, value: u64, max: u64) -> Check {
        Check { what: what.into(), value: value.to_string(), target: format!("<= {max}"), met: value <= max }
    }

    /// A count that must be exactly `expected`.
    pub fn exactly(what: impl Into<String>, value: u64, expected: u64) -> Check {
        Check { what: what.into(), value: value.to_string(), target: format!("= {expected}"), met: value == expected }
    }

    /// A count that must be at least `min`.
    pub fn at_least(what: impl Into<String>, value: u64, min: u64) -> Check {
        Check { what: what.into(), value: value.to_string(), target: format!(">= {min}"), met: value >= min }
    }

    /// Something that must hold, said in words.
    pub fn holds(what: impl Into<String>, value: impl Into<String>, target: impl Into<String>, met: bool) -> Check {
        Check { what: what.into(), value: value.into(), target: target.into(), met }
    }
}

impl Measurement {
    /// Items per second.
    pub fn items_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.items as f64 / self.seconds } else { 0.0 }
    }

    /// Prints the result line the suite reads.
    pub fn emit(&self) {
        match serde_json::to_string(self) {
            Ok(json) => println!("{LINE_PREFIX}{json}"),
            Err(e) => eprintln!("cannot encode a measurement: {e}"),
        }
    }
}

/// Starts measuring: time, emulator counters and CPU now.
pub struct Meter {
    started: Instant,
    stats: ews_emulator::RequestStats,
    cpu: CpuTimes,
}

impl Meter {
    /// Takes the starting point.
    pub fn start(tenant: &Tenant) -> Meter {
        Meter { started: Instant::now(), stats: tenant.stats(), cpu: resources::cpu_now() }
    }

    /// The emulator's counters at the start.
    pub fn stats(&self) -> ews_emulator::RequestStats {
        self.stats
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The measurement from the start to now.
    pub fn finish(&self, tenant: &Tenant, name: &str, size: String, items: u64) -> Measurement {
        let seconds = self.started.elapsed().as_secs_f64();
        let stats = tenant.stats();
        let cpu = resources::cpu_now().since(self.cpu);
        Measurement {
            name: name.to_owned(),
            size,
            items,
            seconds,
            requests: stats.requests - self.stats.requests,
            bytes_in: stats.bytes_in - self.stats.bytes_in,
            bytes_out: stats.bytes_out - self.stats.bytes_out,
            peak_rss_mib: resources::peak_rss_mib(),
            cpu_client_s: cpu.client().as_secs_f64(),
            cpu_emulator_s: cpu.emulator.as_secs_f64(),
            ..Measurement::default()
        }
    }
}
