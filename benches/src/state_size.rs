//! Benchmark 9: the state of a large organisation. One group copies a public folder of
//! `contacts` contacts to `mailboxes` mailboxes (3,000 x 5,000 = 15,000,000 replicas at the
//! issue's size); its state is generated straight into the store through the store's own write
//! path (no sync), then 1% of the hub's contacts change and one incremental pass of the engine
//! runs against that state: the time of the pass, the process's peak memory during it, and the
//! size of the database.
//!
//! The servers' side is [`SyntheticFolder`]s: items computed from their number, with ids and
//! versions of Exchange's length, only written items kept. What runs is the engine's pass as the
//! service runs it ([`GroupSync::run`]): folder statuses and tokens read, every member's change
//! feed and the hub's listing read, the changed entities and their replicas loaded, the plan made,
//! the updates written folder by folder with their state, the statuses recorded.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use exchange_sync_core::engine::GroupSync;
use exchange_sync_core::state::postgres::{PostgresOptions, PostgresStore, WorkerIdentity};
use exchange_sync_core::state::sqlite::SqliteStore;
use exchange_sync_core::state::{FolderCondition, FolderIdentity, MemberStatus, Ownership};
use exchange_sync_core::{
    Connector, EntityId, Member, MemberId, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction, StateWrite,
    SyncGroup, field,
};

use crate::measurement::Measurement;
use crate::resources;
use crate::synthetic_folder::{self, Role, SyntheticFolder};
use crate::tenant;

type BoxError = Box<dyn std::error::Error>;

/// Entities (with their hub replica) per transaction while generating.
const ENTITIES_PER_TRANSACTION: usize = 1_000;

/// The store under test.
enum Location<'a> {
    Sqlite(&'a Path),
    Postgres { url: &'a str, schema: String },
}

impl Location<'_> {
    async fn open(&self, worker: bool) -> Result<Arc<dyn StateStore>, BoxError> {
        Ok(match self {
            Location::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
            Location::Postgres { url, schema } => {
                let options = PostgresOptions {
                    schema: schema.clone(),
                    worker: worker.then(|| WorkerIdentity {
                        name: "bench".into(),
                        lease: Duration::from_secs(600),
                        groups: 1,
                    }),
                    ..PostgresOptions::default()
                };
                Arc::new(PostgresStore::connect(url, options).await?)
            }
        })
    }

    /// The database's size on disk in bytes: the SQLite file with its write-ahead log, or every
    /// table of the schema with its indexes and TOAST data.
    async fn size(&self) -> Result<u64, BoxError> {
        match self {
            Location::Sqlite(path) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let wal = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                Ok(std::fs::metadata(path)?.len() + wal)
            }
            Location::Postgres { url, schema } => {
                let client = postgres_client(url).await?;
                let row = client
                    .query_one(
                        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                        &[schema],
                    )
                    .await?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
            }
        }
    }
}

async fn postgres_client(url: &str) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("benchmark's PostgreSQL connection: {e}");
        }
    });
    Ok(client)
}

/// The member id of mailbox `i`'s folder.
fn member_id(i: usize) -> MemberId {
    MemberId::new(format!("{}/contacts/company contacts", tenant::mailbox(i)))
}

/// The group, its folders and its entities.
struct Organisation {
    group: SyncGroup,
    hub: Arc<SyntheticFolder>,
    members: Vec<Arc<SyntheticFolder>>,
    entities: Arc<[EntityId]>,
}

impl Organisation {
    fn new(mailboxes: usize, contacts: usize) -> Organisation {
        let hub_id = MemberId::new(format!("public/{}", tenant::PUBLIC_FOLDER.to_lowercase()));
        let mut group = SyncGroup::new("company-contacts", hub_id.clone());
        group.match_key = vec![field::EMAIL1.to_owned()];
        let prefix = synthetic_folder::id_prefix(0);
        let entities: Arc<[EntityId]> = (0..contacts)
            .map(|i| EntityId::derive(&group.id, &hub_id, &exchange_sync_core::ItemId::new(format!("{prefix}{i:08}"))))
            .collect();
        let folder = |role, path: String, number| {
            Arc::new(SyntheticFolder::new(role, path, number, group.id.clone(), Arc::clone(&entities)))
        };
        let hub = folder(Role::Hub, hub_id.to_string(), 0);
        let members: Vec<_> = (0..mailboxes).map(|i| folder(Role::Member, member_id(i).to_string(), i + 1)).collect();
        for i in 0..mailboxes {
            group = group.with_member(Member::new(member_id(i), exchange_sync_core::Direction::one_way()));
        }
        Organisation { group, hub, members, entities }
    }

    fn connectors(&self) -> BTreeMap<MemberId, Arc<dyn Connector>> {
        let mut c: BTreeMap<MemberId, Arc<dyn Connector>> = BTreeMap::new();
        c.insert(self.group.hub.clone(), self.hub.clone());
        for (i, m) in self.members.iter().enumerate() {
            c.insert(member_id(i), m.clone());
        }
        c
    }

    fn status(folder: &SyntheticFolder) -> MemberStatus {
        MemberStatus {
            initialized: true,
            last_sync: Some(Utc::now()),
            folder: Some(FolderIdentity { id: folder.id(), path: folder.describe() }),
            condition: FolderCondition::Clean,
        }
    }

    /// Writes the state a completed initial sync leaves: every entity with its base and its copy
    /// in every folder, each folder initialized with its token. One transaction per member folder
    /// (its 5,000 copies in entity order, as the engine writes a fan-out's).
    async fn generate(&self, store: &dyn StateStore) -> Result<(), BoxError> {
        let g = &self.group.id;
        let contacts = self.entities.len();
        let hashes: Vec<_> = (0..contacts).map(|i| synthetic_folder::contact(i).content_hash()).collect();
        let present = |folder: &SyntheticFolder, i: usize, ownership| {
            ReplicaSlot::Present(ReplicaRecord {
                item_id: folder.item_id(i),
                version: folder.version_at(i, 0),
                hash: hashes[i],
                ownership,
                ignored_base: None,
            })
        };
        let mut order: Vec<usize> = (0..contacts).collect();
        order.sort_by(|a, b| self.entities[*a].cmp(&self.entities[*b]));
        for chunk in order.chunks(ENTITIES_PER_TRANSACTION) {
            let mut tx = StateTransaction::new();
            for &i in chunk {
                let base = synthetic_folder::contact(i);
                let match_key = self.group.match_key_of(&base);
                tx.push(StateWrite::PutEntity { id: self.entities[i].clone(), base: Some(base), match_key });
            }
            for &i in chunk {
                let slot = present(&self.hub, i, Ownership::Adopted);
                tx.push(StateWrite::PutReplica {
                    entity: self.entities[i].clone(),
                    member: self.group.hub.clone(),
                    slot,
                });
            }
            store.apply(g, tx).await?;
        }
        let status = Self::status(&self.hub);
        store.apply(g, vec![StateWrite::SetMemberStatus { member: self.group.hub.clone(), status }].into()).await?;
        for (n, folder) in self.members.iter().enumerate() {
            let member = member_id(n);
            let mut tx = StateTransaction::new();
            for &i in &order {
                let slot = present(folder, i, Ownership::Created);
                tx.push(StateWrite::PutReplica { entity: self.entities[i].clone(), member: member.clone(), slot });
            }
            tx.push(StateWrite::SetToken { member: member.clone(), token: Some(SyntheticFolder::initial_token()) });
            tx.push(StateWrite::SetMemberStatus { member, status: Self::status(folder) });
            store.apply(g, tx).await?;
            if (n + 1) % 500 == 0 {
                eprintln!("  state generated for {} of {} members", n + 1, self.members.len());
            }
        }
        Ok(())
    }
}

/// Generates the state of `mailboxes` x `contacts` into a fresh store (SQLite in a temporary
/// directory, or with `postgres` a fresh schema of that database), then runs `passes`
/// incremental passes, each after another 1% of the contacts changed (other contacts each time,
/// so that no pass finds its replicas warm from the one before). Answers a row for the
/// generation and one per pass.
pub fn run(
    name: &str,
    mailboxes: usize,
    contacts: usize,
    postgres: Option<&str>,
    passes: usize,
) -> Result<Vec<Measurement>, BoxError> {
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("state.sqlite");
    let location = match postgres {
        Some(url) => Location::Postgres { url, schema: format!("bench_state_{}", std::process::id()) },
        None => Location::Sqlite(&file),
    };
    let org = Organisation::new(mailboxes, contacts);
    let replicas = (mailboxes + 1) * contacts;
    let size = format!("{contacts} contacts x {mailboxes} mailboxes");
    let store_name = if postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    let result = runtime.block_on(async {
        let mut out = Vec::new();

        // Generation, through the store's write path.
        let cpu = resources::cpu_now();
        let started = Instant::now();
        {
            let store = location.open(false).await?;
            org.generate(store.as_ref()).await?;
        }
        if let Location::Postgres { url, schema } = &location {
            // What autovacuum does to a table that grew: statistics and the visibility map
            // (index-only scans), here at once instead of some minutes later.
            let client = postgres_client(url).await?;
            for table in ["entities", "replicas", "sync_tokens", "member_status"] {
                client.batch_execute(&format!("VACUUM (ANALYZE) {schema}.{table}")).await?;
            }
        }
        let generated_in = started.elapsed().as_secs_f64();
        let generated_size = location.size().await?;
        out.push(Measurement {
            name: format!("{name}: generated"),
            size: size.clone(),
            items: replicas as u64,
            seconds: generated_in,
            peak_rss_mib: resources::peak_rss_mib(),
            cpu_client_s: resources::cpu_now().since(cpu).client().as_secs_f64(),
            note: format!("{store_name}, {:.0} MiB", mib(generated_size)),
            ..Measurement::default()
        });

        // The incremental pass, on a store opened afresh, with the peak memory counted from here.
        resources::reset_peak_rss();
        let store = location.open(true).await?;
        if !store.acquire_lease(&org.group.id).await? {
            return Err(format!("cannot take the lease of group {}", org.group.id).into());
        }
        let changed = (contacts / 100).max(1);
        let step = (contacts / changed).max(1);
        let sync = GroupSync::new(org.group.clone(), store.clone(), org.connectors())?;
        for pass in 0..passes.max(1) {
            for i in (pass % step..contacts).step_by(step).take(changed) {
                org.hub.change(i);
            }
            let written_before: usize = org.members.iter().map(|m| m.written()).sum();
            let server_cpu = resources::cpu_of_processes("postgres");
            let cpu = resources::cpu_now();
            let started = Instant::now();
            let report = sync.run().await?;
            let seconds = started.elapsed().as_secs_f64();
            let cpu = resources::cpu_now().since(cpu);
            let server_cpu = resources::cpu_of_processes("postgres").saturating_sub(server_cpu);
            let peak = resources::peak_rss_mib();
            let updated = report.written();
            let written_to_members = org.members.iter().map(|m| m.written()).sum::<usize>() - written_before;
            let expected = changed * mailboxes;
            let database = location.size().await?;
            let mut note = format!("{store_name}, {:.0} MiB after the pass", mib(database));
            if !server_cpu.is_zero() {
                note.push_str(&format!(", server CPU {:.2} s", server_cpu.as_secs_f64()));
            }
            // Contacts changed again in a later pass (more passes than the step) are written
            // again, not newly: only the engine's count says then.
            let newly = pass < step;
            if updated != expected || (newly && written_to_members != expected) || !report.is_clean() {
                note = format!(
                    "expected {expected} updates, made {updated} ({written_to_members} new in the folders), clean: \
                     {}; {note}",
                    report.is_clean()
                );
            }
            let label = if pass == 0 { String::new() } else { format!(", pass {}", pass + 1) };
            out.push(Measurement {
                name: format!("{name} incremental (1%){label}"),
                size: format!("{changed} changed, {size}"),
                items: updated as u64,
                seconds,
                peak_rss_mib: peak,
                cpu_client_s: cpu.client().as_secs_f64(),
                note,
                ..Measurement::default()
            });
        }
        store.release_lease(&org.group.id).await?;
        drop(sync);
        drop(store);
        Ok::<_, BoxError>(out)
    });
    // A 15,000,000-replica schema takes gigabytes: it goes whatever the run's outcome.
    if let Location::Postgres { url, schema } = &location {
        runtime.block_on(async {
            match postgres_client(url).await {
                Ok(client) => {
                    if let Err(e) = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await {
                        eprintln!("could not drop the benchmark's schema {schema}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop the benchmark's schema {schema}: {e}"),
            }
        });
    }
    result
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
