//! Benchmark 5: real-time latency. The service runs (streaming notifications); an editor
//! (two-way member) edits a contact the way a phone does (UpdateItem on its own mailbox); the
//! clock stops when the pass that carries the edit has written it to the hub and to every other
//! member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync::config::{MemberConfig, TargetFolder};
use exchange_sync::{EwsFolders, PassOutcome, ProgressEvent, SyncService};
use exchange_sync_core::field;
use exchange_sync_core::state::sqlite::SqliteStore;
use tokio::sync::broadcast;

use crate::measurement::{Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// The debounce the service runs with in this benchmark.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// Waits until passes finished after now have updated `copies` copies in total.
async fn until_updated(events: &mut broadcast::Receiver<ProgressEvent>, copies: usize) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut updated = 0;
    while updated < copies {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Err(_) => return Err(format!("only {updated} of {copies} copies updated in 60 s").into()),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(ProgressEvent::PassFinished { report })) => updated += report.totals().updated,
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// `samples` edits on one editor of a group with `others` one-way members over `contacts`.
pub fn run(name: &str, contacts: usize, others: usize, samples: usize) -> Result<Measurement, BoxError> {
    let tenant = Tenant::start(others + 1, contacts)?;
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let mut group = tenant::reader_group("latency", 1, others);
        group.members.insert(0, MemberConfig::two_way(tenant::mailbox(0)));
        let config = tenant::config(&tenant.url(), vec![group], DEBOUNCE);
        let folders = Arc::new(EwsFolders::connect(&config).await?);
        let store = Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?);
        let service = SyncService::new(config, folders.clone(), store)?;
        let mut events = service.subscribe();
        let running = tokio::spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        loop {
            if let ProgressEvent::PassFinished { report } = events.recv().await? {
                if report.outcome != PassOutcome::Synced {
                    return Err(format!("initial sync failed: {report}").into());
                }
                break;
            }
        }
        let editor = folders
            .open_mailbox_folder(tenant::CONNECTION, &tenant::mailbox(0), &TargetFolder::default(), false)
            .await?;
        let ids: Vec<String> = editor.items().await?.into_iter().map(|i| i.id).collect();
        if ids.is_empty() {
            return Err("the editor has no copies".into());
        }
        // Let the echoes of the initial sync settle.
        tokio::time::sleep(Duration::from_secs(1)).await;
        events = events.resubscribe();

        let meter = Meter::start(&tenant);
        let mut latencies = Vec::with_capacity(samples);
        for k in 0..samples {
            let id = &ids[(k * 7919) % ids.len()];
            let started = Instant::now();
            editor.update(id, |i| i.set(field::JOB_TITLE, format!("Edit {k}"))).await?;
            until_updated(&mut events, others + 1).await?;
            latencies.push(started.elapsed());
            // A pause between edits, so that each one is a burst of its own.
            tokio::time::sleep(Duration::from_millis(300)).await;
            events = events.resubscribe();
        }
        let busy = meter.elapsed();
        service.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
        latencies.sort();
        let mut m = meter.finish(
            &tenant,
            name,
            format!("{contacts} contacts, 1 editor + {others} readers, {samples} edits"),
            samples as u64,
        );
        m.seconds = busy.as_secs_f64();
        m.p50_ms = Some(percentile(&latencies, 0.50));
        m.p99_ms = Some(percentile(&latencies, 0.99));
        m.note = format!("debounce {} ms", DEBOUNCE.as_millis());
        Ok(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), 50.0);
        assert_eq!(percentile(&d, 0.99), 99.0);
        assert_eq!(percentile(&d[..1], 0.99), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
