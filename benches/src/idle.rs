//! Benchmark 6: idle cost. Many groups, nothing changing: what the service spends in CPU and
//! requests while it only keeps its streaming subscriptions alive.

use std::sync::Arc;
use std::time::Duration;

use exchange_sync::{EwsFolders, ProgressEvent, SyncService};
use exchange_sync_core::state::sqlite::SqliteStore;

use crate::measurement::{Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// `groups` groups (one reader each, on the same public folder) idle for `idle`.
pub fn run(name: &str, groups: usize, idle: Duration) -> Result<Measurement, BoxError> {
    let tenant = Tenant::start(groups, 10)?;
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let groups_config = (0..groups).map(|g| tenant::reader_group(&format!("group-{g}"), g, 1)).collect();
        let config = tenant::config(&tenant.url(), groups_config, Duration::from_millis(200));
        let folders = Arc::new(EwsFolders::connect(&config).await?);
        let store = Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?);
        let service = SyncService::new(config, folders, store)?;
        let mut events = service.subscribe();
        let running = tokio::spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let mut finished = 0;
        while finished < groups {
            if let ProgressEvent::PassFinished { .. } = events.recv().await? {
                finished += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let meter = Meter::start(&tenant);
        tokio::time::sleep(idle).await;
        let streams = tenant.stats().streams_open;
        let mut m = meter.finish(&tenant, name, format!("{groups} groups, idle {} s", idle.as_secs()), 0);
        service.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
        let per_ten_minutes = 600.0 / idle.as_secs_f64();
        m.note = format!(
            "per 10 min: {:.0} requests, {:.2} CPU s (engine); {} watched folders on {streams} streaming connections",
            m.requests as f64 * per_ten_minutes,
            m.cpu_client_s * per_ten_minutes,
            2 * groups
        );
        Ok(m)
    })
}
