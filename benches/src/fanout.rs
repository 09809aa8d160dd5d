//! Benchmarks 1, 4 and 7: the initial fan-out of the public folder to one-way members, then an
//! incremental pass after 1% of the contacts changed on the hub. One `run_once` pass each, state
//! in SQLite on disk, as the service runs them, or (row 1p) in a PostgreSQL database on loopback,
//! as workers sharing a database run them.

use std::sync::Arc;
use std::time::Duration;

use exchange_sync::{EwsFolders, RunOptions, RunReport, SyncService};
use exchange_sync_core::StateStore;
use exchange_sync_core::field;
use exchange_sync_core::state::postgres::{PostgresOptions, PostgresStore, WorkerIdentity};
use exchange_sync_core::state::sqlite::SqliteStore;

use crate::measurement::{Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// Created and updated copies over every member of every group, the number of errors, and the
/// first error's message (shown in the results table, so that a failed run says why).
pub(crate) fn totals(report: &RunReport) -> (u64, u64, usize, String) {
    let mut created = 0;
    let mut updated = 0;
    let mut errors = 0;
    let mut first = String::new();
    for g in &report.groups {
        let t = g.totals();
        created += t.created as u64;
        updated += t.updated as u64;
        errors += t.errors.len() + g.errors.len();
        if let Some(e) = g.errors.iter().chain(t.errors.iter()).next().filter(|_| first.is_empty()) {
            first = format!(": {} ({})", e.message, e.kind);
        }
    }
    (created, updated, errors, first)
}

/// Fans `contacts` out to `mailboxes` members (`name`), then changes 1% of the contacts on the
/// hub and syncs again (`name` + " incremental", when `incremental`).
///
/// With `postgres` (a server's URL), the state is a fresh schema of that database, written as a
/// worker holding the group's lease (every write transaction checks the lease, as in production).
pub fn run(
    name: &str,
    contacts: usize,
    mailboxes: usize,
    incremental: bool,
    postgres: Option<&str>,
) -> Result<Vec<Measurement>, BoxError> {
    let tenant = Tenant::start(mailboxes, contacts)?;
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let config = tenant::config(&tenant.url(), vec![tenant::reader_group("bench", 0, mailboxes)], Duration::ZERO);
        let folders = Arc::new(EwsFolders::connect(&config).await?);
        let store: Arc<dyn StateStore> = match postgres {
            Some(url) => {
                let options = PostgresOptions {
                    schema: format!("bench_{}", std::process::id()),
                    worker: Some(WorkerIdentity { name: "bench".into(), lease: Duration::from_secs(60), groups: 1 }),
                    ..PostgresOptions::default()
                };
                Arc::new(PostgresStore::connect(url, options).await?)
            }
            None => Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?),
        };
        let service = SyncService::new(config, folders.clone(), store)?;
        let size = format!("{contacts} contacts x {mailboxes} mailboxes");
        let mut out = Vec::new();

        let meter = Meter::start(&tenant);
        let report = service.run_once(RunOptions::default()).await?;
        let (created, _, errors, first) = totals(&report);
        let mut m = meter.finish(&tenant, name, size.clone(), created);
        let expected = (contacts * mailboxes) as u64;
        if created != expected || errors > 0 {
            m.note = format!("expected {expected} copies, created {created}, {errors} errors{first}");
        }
        out.push(m);

        if incremental {
            let changed = (contacts / 100).max(1);
            let hub = folders.open_public_folder(tenant::CONNECTION, tenant::PUBLIC_FOLDER).await?;
            let address = ews_emulator::store::public_folder_mailbox("contoso.test");
            let ids: Vec<String> = tenant
                .emulator
                .store()
                .items_in(&address, tenant::PUBLIC_FOLDER)
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.id)
                .collect();
            let step = (ids.len() / changed).max(1);
            for id in ids.iter().step_by(step).take(changed) {
                hub.update(id, |i| i.set(field::JOB_TITLE, "Changed for the incremental benchmark")).await?;
            }
            let meter = Meter::start(&tenant);
            let report = service.run_once(RunOptions::default()).await?;
            let (_, updated, errors, first) = totals(&report);
            let mut m = meter.finish(
                &tenant,
                &format!("{name} incremental (1%)"),
                format!("{changed} changed, {size}"),
                updated,
            );
            let expected = (changed * mailboxes) as u64;
            if updated != expected || errors > 0 {
                m.note = format!("expected {expected} updates, made {updated}, {errors} errors{first}");
            }
            out.push(m);
        }
        Ok(out)
    })
}
