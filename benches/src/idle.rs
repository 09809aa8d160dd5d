//! Benchmark 6: idle cost. Many groups, nothing changing: what the service spends in CPU and
//! requests while it only keeps its streaming subscriptions alive, and whether keeping them alive
//! ever costs a resync or a pass.
//!
//! Three variants (see `docs/benchmarks.md`):
//!
//! - **real lifetimes** (row 6): Exchange's timings (connections asked for 30 minutes, heartbeats
//!   every 30 s) for longer than any fixed client timeout (the whole-request timeout is 120 s): a
//!   connection cut by one of them shows as a reconnection and a resync;
//! - **a day in miniature** (row 6d): every streaming timing of the server scaled down by the same
//!   factor (`EmulatorConfig::streaming_minute`, `heartbeat_interval`), so that a day's connection
//!   renewals (48 per connection at 30 minutes) and heartbeats fall inside the run; each renewal
//!   must cost one request and nothing else;
//! - **a connection cut** (row 6c): the same, with every streaming connection cut once mid-life
//!   without `ConnectionStatus Closed` (a real gap): each group must resync exactly once.
//!
//! Hints are counted on their way to the service ([`crate::hints`]); passes by their trigger
//! from the service's progress events; renewals, cuts and reconnections by the emulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync::{EwsFolders, ProgressEvent, SyncService, Trigger};
use exchange_sync_core::state::sqlite::SqliteStore;
use tokio::sync::broadcast;

use crate::hints::CountingFolders;
use crate::measurement::{Check, Measurement, Meter};
use crate::resources::{self, CpuTimes};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// The minutes a streaming connection asks for (the client's default, and Exchange's maximum).
const LIFETIME_MINUTES: u32 = 30;

/// How an idle run goes.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Groups (one reader each, on the same public folder: two watched folders per group).
    pub groups: usize,
    /// Length of the measured idle time.
    pub idle: Duration,
    /// The server's `ConnectionTimeout` minute (60 s is Exchange's own).
    pub minute: Duration,
    /// The server's heartbeat interval.
    pub heartbeat: Duration,
    /// When to cut every streaming connection, from the start of the idle time.
    pub cut_at: Option<Duration>,
}

impl Idle {
    /// How many times faster than Exchange the server's streaming clock runs.
    fn scale(&self) -> f64 {
        60.0 / self.minute.as_secs_f64()
    }
}

/// The resident memory an idle service may gain over the idle time, MiB: it keeps nothing per
/// renewal or heartbeat, so what it gains is the allocator's noise, not growth.
const RSS_GROWTH_MIB: f64 = 16.0;

/// How many times memory and CPU are sampled over the idle time (besides its start).
const SAMPLES: u32 = 10;

/// Memory and CPU at one moment of the idle time.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the idle time started.
    at: Duration,
    /// Resident memory of the process, MiB.
    rss_mib: f64,
    /// CPU used so far.
    cpu: CpuTimes,
}

impl Sample {
    fn now(at: Duration) -> Sample {
        Sample { at, rss_mib: resources::rss_mib(), cpu: resources::cpu_now() }
    }
}

/// Whether memory and CPU stay flat: resident memory at the start, at the end and its range, and
/// the engine's and the emulator's CPU in the first and in the second half of the idle time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Flatness {
    rss_start: f64,
    rss_end: f64,
    rss_min: f64,
    rss_max: f64,
    /// (engine, emulator) CPU seconds of the first half.
    first_half: (f64, f64),
    /// The same for the second half.
    second_half: (f64, f64),
}

impl Flatness {
    /// From samples in time order (at least the start and the end).
    fn of(samples: &[Sample]) -> Option<Flatness> {
        let (first, last) = (samples.first()?, samples.last()?);
        let middle = last.at / 2;
        let mid = samples.iter().min_by_key(|s| s.at.abs_diff(middle))?;
        let cpu = |a: &Sample, b: &Sample| {
            let d = b.cpu.since(a.cpu);
            (d.client().as_secs_f64(), d.emulator.as_secs_f64())
        };
        let rss = samples.iter().map(|s| s.rss_mib);
        Some(Flatness {
            rss_start: first.rss_mib,
            rss_end: last.rss_mib,
            rss_min: rss.clone().fold(f64::INFINITY, f64::min),
            rss_max: rss.fold(0.0, f64::max),
            first_half: cpu(first, mid),
            second_half: cpu(mid, last),
        })
    }

    /// Resident memory gained over the idle time, MiB (never negative).
    fn rss_growth(&self) -> f64 {
        (self.rss_end - self.rss_start).max(0.0)
    }

    fn describe(&self) -> String {
        format!(
            "RSS {:.1} MiB at the start, {:.1} at the end (range {:.1}-{:.1}); CPU s engine {:.2} then {:.2}, emulator \
             {:.2} then {:.2} (first half, second half)",
            self.rss_start,
            self.rss_end,
            self.rss_min,
            self.rss_max,
            self.first_half.0,
            self.second_half.0,
            self.first_half.1,
            self.second_half.1
        )
    }
}

/// Passes started, by trigger and by group, from the progress events received so far.
#[derive(Debug, Default)]
struct Passes {
    by_trigger: BTreeMap<String, u64>,
    by_group: BTreeMap<String, u64>,
}

impl Passes {
    fn drain(&mut self, events: &mut broadcast::Receiver<ProgressEvent>) -> Result<(), BoxError> {
        loop {
            match events.try_recv() {
                Ok(ProgressEvent::PassStarted { group, trigger }) => {
                    *self.by_trigger.entry(trigger_name(trigger)).or_default() += 1;
                    *self.by_group.entry(group).or_default() += 1;
                }
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Empty) => return Ok(()),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    return Err(format!("{n} progress events missed: passes cannot be counted").into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn total(&self) -> u64 {
        self.by_trigger.values().sum()
    }

    fn of(&self, trigger: Trigger) -> u64 {
        self.by_trigger.get(&trigger_name(trigger)).copied().unwrap_or(0)
    }

    fn describe(&self) -> String {
        if self.by_trigger.is_empty() {
            return "none".into();
        }
        self.by_trigger.iter().map(|(t, n)| format!("{n} {t}")).collect::<Vec<_>>().join(", ")
    }
}

fn trigger_name(t: Trigger) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{t:?}"))
}

/// Runs one idle variant.
pub fn run(name: &str, o: &Idle) -> Result<Measurement, BoxError> {
    let tenant = Tenant::start_with(o.groups, 10, |c| {
        c.streaming_minute = o.minute;
        c.heartbeat_interval = o.heartbeat;
    })?;
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let groups_config = (0..o.groups).map(|g| tenant::reader_group(&format!("group-{g}"), g, 1)).collect();
        let config = tenant::config(&tenant.url(), groups_config, Duration::from_millis(200));
        let (folders, hints) = CountingFolders::new(Arc::new(EwsFolders::connect(&config).await?));
        let store = Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?);
        let service = SyncService::new(config, folders, store)?;
        // Room for every event of the initial passes and of a resync of every group.
        let mut events = service.subscribe();
        let running = tokio::spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let mut finished = std::collections::BTreeSet::new();
        while finished.len() < o.groups {
            if let ProgressEvent::PassFinished { report } = events.recv().await? {
                finished.insert(report.group);
            }
        }
        // Let the start settle: the passes that echo the initial sync's writes, and those of
        // folders whose subscriptions joined a streaming connection after it opened (it reopens
        // with them, which asks its folders for a resync), until no event came for a while.
        let quiet = if o.idle < Duration::from_secs(10) { Duration::from_secs(1) } else { Duration::from_secs(3) };
        let limit = Instant::now() + Duration::from_secs(120);
        while Instant::now() < limit {
            match tokio::time::timeout(quiet, events.recv()).await {
                Err(_) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err("the service stopped".into()),
                Ok(_) => {}
            }
        }
        events = events.resubscribe();
        let mut passes = Passes::default();
        let hints_before = hints.now();
        let meter = Meter::start(&tenant);
        let started = Instant::now();
        let mut cut = 0;
        let mut cut_passes = None;
        let mut samples = vec![Sample::now(Duration::ZERO)];
        let every = (o.idle / SAMPLES).max(Duration::from_millis(500));
        while started.elapsed() < o.idle {
            let mut next = (o.idle - started.elapsed()).min(Duration::from_millis(500));
            if let Some(at) = o.cut_at.filter(|_| cut_passes.is_none()) {
                next = next.min(at.saturating_sub(started.elapsed()));
            }
            tokio::time::sleep(next).await;
            passes.drain(&mut events)?;
            if let Some(at) = o.cut_at
                && cut_passes.is_none()
                && started.elapsed() >= at
            {
                cut_passes = Some(passes.total());
                cut = tenant.emulator.cut_streams();
            }
            let due = samples.last().map_or(Duration::ZERO, |s| s.at) + every;
            if started.elapsed() >= due || started.elapsed() >= o.idle {
                samples.push(Sample::now(started.elapsed()));
            }
        }
        let mut m = meter.finish(&tenant, name, String::new(), 0);
        let flat = Flatness::of(&samples).ok_or("no memory sample was taken")?;
        let stats = tenant.stats();
        let before = meter.stats();
        let (changed, resyncs) = {
            let now = hints.now();
            (now.0 - hints_before.0, now.1 - hints_before.1)
        };
        service.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(15), running).await;

        let renewed = stats.streams_closed - before.streams_closed;
        let opened = stats.streams_opened - before.streams_opened;
        let dropped = stats.streams_dropped - before.streams_dropped;
        let was_cut = stats.streams_cut - before.streams_cut;
        let scale = o.scale();
        let hours = o.idle.as_secs_f64() * scale / 3600.0;
        let connections = stats.streams_open;
        let watched = 2 * o.groups as u64;
        let lifetime = o.minute.as_secs_f64() * f64::from(LIFETIME_MINUTES);
        m.size = if scale > 1.0 {
            format!(
                "{} groups, {:.0} s = {:.0} h at {:.0}x (lifetime {lifetime:.1} s, heartbeat {} ms)",
                o.groups,
                o.idle.as_secs_f64(),
                hours,
                scale,
                o.heartbeat.as_millis()
            )
        } else {
            format!("{} groups, idle {} s", o.groups, o.idle.as_secs())
        };
        m.note = format!(
            "{watched} watched folders on {connections} streaming connections; {renewed} renewals, {opened} \
             connections opened, {dropped} dropped by the client, {was_cut} cut; hints: {resyncs} resync, {changed} \
             changed; passes: {}; per idle hour{}: {:.1} requests, {:.3} CPU s engine, {:.3} CPU s emulator; {}",
            passes.describe(),
            if scale > 1.0 { " (scaled)" } else { "" },
            m.requests as f64 / hours,
            m.cpu_client_s / hours,
            m.cpu_emulator_s / hours,
            flat.describe(),
        );
        // Targets: counts only. Every request of an idle service is a streaming connection
        // opened again after the server closed one (after a cut, the resync passes' requests
        // come too); renewals near the start and the end of the run may have their other half
        // outside it, hence the slack of one per connection.
        let mut checks = vec![
            Check::exactly("streaming connections dropped by the client", dropped, 0),
            Check::exactly("changed hints (nothing changed)", changed, 0),
        ];
        match o.cut_at {
            None => {
                checks.push(Check::exactly(
                    "requests other than streaming connections opened",
                    m.requests.saturating_sub(opened),
                    0,
                ));
                checks.push(Check::at_most("connections opened", opened, renewed + connections));
                checks.push(Check::exactly("resync hints", resyncs, 0));
                checks.push(Check::exactly("passes", passes.total(), 0));
                // A run longer than a lifetime must see its renewals (a day in miniature, or a
                // real-time run of more than 30 minutes); one of a few minutes cannot. Every
                // connection opened before the idle time, so each ends at least once in a run
                // longer than its lifetime; in a run of many lifetimes, the client's pause
                // before it reconnects stretches each period a little.
                let lifetimes = (o.idle.as_secs_f64() / lifetime).floor() as u64;
                if lifetimes >= 1 {
                    let expected = if lifetimes >= 2 { (lifetimes - 1) * connections } else { connections };
                    checks.push(Check::at_least("renewals", renewed, expected.max(1)));
                }
                checks.push(Check::holds(
                    "resident memory gained over the idle time",
                    format!("{:.1} MiB", flat.rss_growth()),
                    format!("<= {RSS_GROWTH_MIB:.0} MiB"),
                    flat.rss_growth() <= RSS_GROWTH_MIB,
                ));
            }
            Some(_) => {
                checks.push(Check::exactly("connections cut", was_cut, cut));
                checks.push(Check::at_most("connections opened", opened, renewed + 2 * connections));
                checks.push(Check::exactly("passes before the cut", cut_passes.unwrap_or(0), 0));
                checks.push(Check::exactly("resync hints (one per watched folder)", resyncs, watched));
                checks.push(Check::exactly(
                    "resync passes (one per group)",
                    passes.of(Trigger::Resync),
                    o.groups as u64,
                ));
                let once = passes.by_group.values().filter(|n| **n == 1).count();
                checks.push(Check::holds(
                    "groups that resynced exactly once",
                    format!("{once} of {}", o.groups),
                    format!("{} of {}", o.groups, o.groups),
                    once == o.groups && passes.by_group.len() == o.groups,
                ));
                checks.push(Check::exactly("other passes", passes.total() - passes.of(Trigger::Resync), 0));
            }
        }
        m.checks = checks;
        Ok(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: u64, rss_mib: f64, engine_s: f64, emulator_s: f64) -> Sample {
        let cpu = CpuTimes {
            total: Duration::from_secs_f64(engine_s + emulator_s),
            emulator: Duration::from_secs_f64(emulator_s),
        };
        Sample { at: Duration::from_secs(secs), rss_mib, cpu }
    }

    #[test]
    fn flatness_splits_cpu_at_the_middle_sample_and_spans_memory() {
        let samples = [
            sample(0, 40.0, 1.0, 0.5),
            sample(10, 44.0, 1.5, 0.5),
            sample(20, 39.0, 2.0, 0.75),
            sample(30, 41.0, 2.25, 1.0),
            sample(40, 42.0, 2.5, 1.0),
        ];
        let f = Flatness::of(&samples).expect("samples");
        assert_eq!((f.rss_start, f.rss_end, f.rss_min, f.rss_max), (40.0, 42.0, 39.0, 44.0));
        assert_eq!(f.first_half, (1.0, 0.25));
        assert_eq!(f.second_half, (0.5, 0.25));
        assert_eq!(f.rss_growth(), 2.0);
        let shrinking = Flatness::of(&[sample(0, 50.0, 0.0, 0.0), sample(1, 45.0, 0.0, 0.0)]).expect("samples");
        assert_eq!(shrinking.rss_growth(), 0.0, "memory given back is no growth");
        assert!(Flatness::of(&[]).is_none());
    }
}
