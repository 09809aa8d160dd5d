//! The PostgreSQL state store: one database that several workers share, for organisations that
//! outgrow one process with an SQLite file, or that need the sync to survive the loss of a server.
//!
//! - **Same model as SQLite**: the tables of the SQLite store's latest schema (see
//!   [`crate::state::sqlite`], "Porting to PostgreSQL"), with every id column `COLLATE "C"` so
//!   that ids order by bytes, as Rust orders strings; identity columns for conflict records and
//!   admin requests; a `boolean` for `initialized`. Create intents are rows (PostgreSQL writes a
//!   batch of rows with one statement, which is what SQLite's batches of intents were for).
//! - **Versioned schema**: [`MIGRATIONS`] are applied in order when the store opens, under a
//!   transaction-scoped advisory lock (workers starting together migrate once), each recorded in
//!   `schema_migrations`; a schema written by a newer version of this library is refused.
//! - **One schema per store**: every connection of the pool has `search_path` set to the
//!   store's schema ([`PostgresOptions::schema`]), so several installations, or several tests at
//!   once, share one database without seeing each other.
//! - **One SQL transaction per state transaction**: [`StateStore::apply`] runs its writes in
//!   one transaction; the create intents of a transaction and long runs of replica writes (a
//!   fan-out's window) go to the server as multi-row statements over arrays (`unnest`), not as
//!   a statement per row.
//! - **Leases instead of a file lock**: a store opened with a [`WorkerIdentity`] writes a group
//!   only while it holds the group's lease (a row of `leases`: owner, expiry by the database's
//!   clock, and a fencing token that grows with every takeover). Every write transaction first
//!   takes the group's fence (a transaction-scoped advisory lock, shared) and checks that the
//!   lease row still names this worker with the token it took; a takeover takes the fence
//!   exclusively, so it waits for the write transactions under way and none starts while it
//!   changes the owner. A worker that was paused past its lease's expiry, while another took the
//!   group over, is refused with [`Error::LeaseLost`] and writes nothing. Without an identity (admin commands,
//!   tests, a single process) writes are not fenced.
//! - **Groups spread over the live workers**: each worker writes a heartbeat (a row of
//!   `workers`) with its lease renewals and counts as live while it is younger than its lease. A
//!   free group goes to a worker under its fair share, and a worker over its share is told which
//!   groups to give back ([`LeaseRenewal::surplus`]); the rules are in [`crate::state::share`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};
use crate::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
use crate::item::Item;
use crate::origin::OriginStamp;
use crate::state::columns::{SlotColumns, StoredSlot, corrupt, describe, parse_time, timestamp};
use crate::state::{
    AdminRequest, ConflictRecord, EntityRecord, FolderIdentity, KnownItem, LeaseInfo, LeaseRenewal, MemberStatus,
    PendingCreate, PostedRequest, ReplicaSlot, StateStore, StateTransaction, StateWrite, share,
};

/// One schema migration: a version number and the statements that bring the schema from the
/// previous version to it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The schema version after this migration (1, 2, ...; no gaps).
    pub version: i64,
    /// What the migration does, recorded with it.
    pub description: &'static str,
    /// The SQL statements, run in one transaction.
    pub sql: &'static str,
}

/// Every migration of the PostgreSQL schema, oldest first. Append only: a released migration
/// never changes, since databases in the field have already applied it.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the state of the SQLite store's schema 6: entities, replicas, users' own items, tokens, \
                      member status, create intents, conflicts, admin requests, group records",
        sql: r#"
        CREATE TABLE entities (
            group_id       TEXT COLLATE "C" NOT NULL,
            entity_id      TEXT COLLATE "C" NOT NULL,
            base           TEXT,
            match_key      TEXT COLLATE "C",
            earlier_bases  TEXT,
            PRIMARY KEY (group_id, entity_id)
        );
        CREATE INDEX entities_by_match_key ON entities (group_id, match_key, entity_id);

        CREATE TABLE replicas (
            group_id      TEXT COLLATE "C" NOT NULL,
            member_id     TEXT COLLATE "C" NOT NULL,
            entity_id     TEXT COLLATE "C" NOT NULL,
            slot          TEXT NOT NULL,
            item_id       TEXT COLLATE "C",
            version       TEXT,
            content_hash  TEXT,
            ownership     TEXT CHECK (ownership IN ('created', 'adopted')),
            ignored_base  TEXT,
            PRIMARY KEY (group_id, member_id, entity_id),
            CHECK (CASE slot
                WHEN 'present' THEN item_id IS NOT NULL AND version IS NOT NULL AND content_hash IS NOT NULL
                                    AND ownership IS NOT NULL
                WHEN 'personal' THEN item_id IS NOT NULL AND version IS NOT NULL AND content_hash IS NULL
                                     AND ownership IS NULL AND ignored_base IS NULL
                WHEN 'opted_out' THEN item_id IS NULL AND version IS NULL AND content_hash IS NULL
                                      AND ownership IS NULL AND ignored_base IS NULL
                ELSE FALSE
            END)
        );
        CREATE UNIQUE INDEX replicas_by_item ON replicas (group_id, member_id, item_id);
        -- The copies of one entity in every folder (SQLite walks the folders instead).
        CREATE INDEX replicas_by_entity ON replicas (group_id, entity_id);

        CREATE TABLE foreign_items (
            group_id   TEXT COLLATE "C" NOT NULL,
            member_id  TEXT COLLATE "C" NOT NULL,
            item_id    TEXT COLLATE "C" NOT NULL,
            version    TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id, item_id)
        );

        CREATE TABLE sync_tokens (
            group_id   TEXT COLLATE "C" NOT NULL,
            member_id  TEXT COLLATE "C" NOT NULL,
            token      TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id)
        );

        CREATE TABLE member_status (
            group_id     TEXT COLLATE "C" NOT NULL,
            member_id    TEXT COLLATE "C" NOT NULL,
            initialized  BOOLEAN NOT NULL,
            last_sync    TEXT,
            folder_id    TEXT,
            folder_path  TEXT,
            condition    TEXT NOT NULL,
            last_error   TEXT,
            PRIMARY KEY (group_id, member_id),
            CHECK ((folder_id IS NULL) = (folder_path IS NULL))
        );

        CREATE TABLE pending_creates (
            group_id     TEXT COLLATE "C" NOT NULL,
            member_id    TEXT COLLATE "C" NOT NULL,
            entity_id    TEXT COLLATE "C" NOT NULL,
            origin       TEXT NOT NULL,
            recorded_at  TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id, entity_id)
        );

        CREATE TABLE conflicts (
            seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            group_id     TEXT COLLATE "C" NOT NULL,
            entity_id    TEXT COLLATE "C" NOT NULL,
            field        TEXT NOT NULL,
            recorded_at  TEXT NOT NULL,
            record       TEXT NOT NULL
        );
        CREATE INDEX conflicts_by_group ON conflicts (group_id, seq);

        CREATE TABLE admin_requests (
            id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            group_id   TEXT COLLATE "C" NOT NULL,
            request    TEXT NOT NULL,
            posted_at  TEXT NOT NULL
        );
        CREATE INDEX admin_requests_by_group ON admin_requests (group_id, id);

        CREATE TABLE group_records (
            group_id    TEXT COLLATE "C" NOT NULL,
            key         TEXT COLLATE "C" NOT NULL,
            value       TEXT NOT NULL,
            updated_at  TEXT NOT NULL,
            PRIMARY KEY (group_id, key)
        );
    "#,
    },
    Migration {
        version: 2,
        description: "leases: which worker owns which group, until when, with which fencing token",
        sql: r#"
        CREATE TABLE leases (
            group_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
            owner        TEXT NOT NULL,
            token        BIGINT NOT NULL,
            acquired_at  TIMESTAMPTZ NOT NULL,
            expires_at   TIMESTAMPTZ NOT NULL
        );
    "#,
    },
    Migration {
        version: 3,
        description: "workers: each worker's heartbeat and how many groups its configuration lists, to spread \
                      the groups evenly over the live workers",
        sql: r#"
        CREATE TABLE workers (
            name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
            groups      BIGINT NOT NULL,
            last_seen   TIMESTAMPTZ NOT NULL,
            expires_at  TIMESTAMPTZ NOT NULL
        );
    "#,
    },
    Migration {
        version: 4,
        description: "replicas keep a tenth of each page free, so that an updated copy's row stays on its page",
        // An incremental pass rewrites the replicas of the changed entities with a new version
        // and hash. On a full page the new row version goes to another page, and every index
        // of the table (three, with long keys) gets an entry for it; with room on the page it
        // is a heap-only update that touches no index. Pages written from now on keep the room.
        sql: r#"
        ALTER TABLE replicas SET (fillfactor = 90);
    "#,
    },
    Migration {
        version: 5,
        description: "replicas keyed by entity, then folder: one index for an entity's copies and each copy",
        // An incremental pass loads the copies of the changed entities (by entity) and then
        // writes each of them (by folder and entity). Keyed by folder first, the writes descended
        // other index pages than the load had read, cold ones in a large state: a page read for
        // nearly every copy written. Keyed by entity first, the load and the writes share their
        // index pages, and the index by entity alone is no longer needed. The folder's queries
        // (its items, its count, removing a folder) go through the index by item, which leads
        // with the folder too.
        sql: r#"
        ALTER TABLE replicas DROP CONSTRAINT replicas_pkey, ADD PRIMARY KEY (group_id, entity_id, member_id);
        DROP INDEX replicas_by_entity;
    "#,
    },
];

/// Who a store writes as, when several workers share the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// The worker's name, unique among the workers sharing the database (e.g. the host name and
    /// a number). A restarted worker may reuse its name: it takes its groups back like any
    /// other worker, once their leases expired.
    pub name: String,
    /// How long a lease lasts without renewal. A worker renews its leases well before (at a
    /// third of this); a dead worker's groups wait this long for another worker. A worker's
    /// heartbeat lasts as long: it counts as live while its last one is younger than this.
    pub lease: Duration,
    /// How many groups the worker's configuration lists (the workers normally share one). The
    /// groups are spread over the live workers by it: each carries about `groups / workers`
    /// (see [`crate::state::share`]).
    pub groups: usize,
}

/// A live worker, as the database knows it ([`PostgresStore::live_workers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its name ([`WorkerIdentity::name`]).
    pub name: String,
    /// How many groups its configuration lists.
    pub groups: usize,
    /// How many leases it holds.
    pub held: usize,
    /// Its last heartbeat, by the database's clock.
    pub last_seen: chrono::DateTime<Utc>,
}

/// How to open a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema holding the store's tables (created if needed): one installation per schema.
    /// Letters, digits and underscores only.
    pub schema: String,
    /// The password, when the URL carries none (read from the environment or a file by the
    /// caller: a configuration file should not hold it). Never logged.
    pub password: Option<String>,
    /// The largest number of connections the store opens.
    pub max_connections: usize,
    /// The worker this store writes as (`None`: writes are not fenced by leases).
    pub worker: Option<WorkerIdentity>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { schema: "exchange_sync".into(), password: None, max_connections: 8, worker: None }
    }
}

/// A [`StateStore`] in a PostgreSQL database. Cloning is cheap and shares the pool and the
/// leases held.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// Host, port, database and schema, for messages (never the password).
    location: String,
    worker: Option<WorkerIdentity>,
    /// The groups whose leases this store holds, with their fencing tokens.
    held: Mutex<HashMap<GroupId, i64>>,
    /// Held while this store decides whether to take a free group and takes it: the group
    /// loops of one worker ask at once, and each must count the groups the others just took,
    /// or together they would overshoot the worker's share.
    taking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.shared.location)
            .field("worker", &self.shared.worker)
            .finish_non_exhaustive()
    }
}

/// Whether `schema` is a plain identifier (it is spliced into SQL).
fn valid_schema(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
}

/// Describes a connection configuration for messages: hosts, port, database, never a password.
fn describe_config(config: &tokio_postgres::Config, schema: &str) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}:{port}/{} (schema {schema})",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    )
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`, or the
    /// key-value form), creates the schema and brings it up to date.
    ///
    /// The URL may carry the password; [`PostgresOptions::password`] is the better place for it.
    /// Neither ever appears in an error or a log line.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        if !valid_schema(&options.schema) {
            return Err(Error::Config {
                message: format!(
                    "PostgreSQL schema name {:?}: use lower-case letters, digits and underscores (not first)",
                    options.schema
                ),
            });
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|_| Error::Config {
            // The parser's message may quote the URL, password and all.
            message: "the PostgreSQL state URL cannot be read: expected postgres://user@host:port/database".into(),
        })?;
        if let Some(password) = &options.password {
            config.password(password.as_bytes());
        }
        let mut settings = format!("-c search_path={}", options.schema);
        if let Some(worker) = &options.worker {
            // A worker paused in the middle of a transaction (SIGSTOP, a frozen VM) holds its
            // locks, the group's fence among them, and the worker taking its groups over
            // would wait for it forever: the server ends such a transaction (and its session)
            // after half a lease, and no statement of a worker waits for a lock longer than a
            // lease. A healthy worker never sits in a transaction: it sends a transaction's
            // statements one after the other.
            let lease_ms = worker.lease.as_millis().max(2);
            settings.push_str(&format!(
                " -c idle_in_transaction_session_timeout={} -c lock_timeout={lease_ms}",
                lease_ms / 2
            ));
        }
        config.options(settings);
        config.application_name("exchange-sync");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let location = describe_config(&config, &options.schema);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|e| Error::state(format!("cannot set up connections to {location}"), e))?;
        let store = PostgresStore {
            shared: Arc::new(Shared {
                pool,
                location,
                worker: options.worker,
                held: Mutex::new(HashMap::new()),
                taking: tokio::sync::Mutex::new(()),
            }),
        };
        store.migrate(&options.schema).await?;
        if store.shared.worker.is_some() {
            // Live from the start: the others make room for this worker before its first renewal.
            store.heartbeat().await?;
        }
        Ok(store)
    }

    /// Where the store is, for messages (no password).
    pub fn location(&self) -> &str {
        &self.shared.location
    }

    /// The worker this store writes as, if any.
    pub fn worker(&self) -> Option<&WorkerIdentity> {
        self.shared.worker.as_ref()
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.shared
            .pool
            .get()
            .await
            .map_err(|e| Error::state(format!("cannot connect to state database {}", self.shared.location), e))
    }

    /// The schema version of the database (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(|e| self.err("cannot read the schema version", e))?;
        Ok(row.get(0))
    }

    fn err(&self, what: &str, e: tokio_postgres::Error) -> Error {
        Error::state(format!("state database {}: {what}", self.shared.location), e)
    }

    /// Applies the migrations the schema has not seen yet, in one transaction under an advisory
    /// lock (workers that start together wait for the first).
    async fn migrate(&self, schema: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err("cannot start the schema migration", e))?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('exchange-sync schema ' || $1))", &[&schema])
            .await
            .map_err(|e| self.err("cannot lock the schema for migration", e))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                version      BIGINT NOT NULL PRIMARY KEY,
                description  TEXT NOT NULL,
                applied_at   TIMESTAMPTZ NOT NULL DEFAULT now()
             )"
        ))
        .await
        .map_err(|e| self.err("cannot create the schema and its migrations table", e))?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(|e| self.err("cannot read the schema version", e))?
            .get(0);
        let latest = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > latest {
            return Err(Error::State {
                message: format!(
                    "state database {} has schema version {current}, newer than this library's {latest}: upgrade \
                     the library (the database is left untouched)",
                    self.shared.location
                ),
                source: None,
            });
        }
        for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
            let what = format!("migration {} ({}) failed", migration.version, migration.description);
            tx.batch_execute(migration.sql).await.map_err(|e| self.err(&what, e))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                &[&migration.version, &migration.description],
            )
            .await
            .map_err(|e| self.err(&what, e))?;
            tracing::info!(database = %self.shared.location, version = migration.version, "state schema migrated");
        }
        tx.commit().await.map_err(|e| self.err("cannot commit the schema migration", e))
    }

    // -----------------------------------------------------------------------------------------
    // Leases

    fn identity(&self) -> Result<&WorkerIdentity> {
        self.shared.worker.as_ref().ok_or_else(|| Error::Config {
            message: format!(
                "state database {}: leases need a worker identity (the `worker` setting)",
                self.shared.location
            ),
        })
    }

    fn lease_secs(lease: Duration) -> f64 {
        lease.as_secs_f64().max(0.001)
    }

    /// Takes the lease of `group` when it is free or expired and this worker should carry it
    /// (see [`crate::state::share`]; a takeover increments the fencing token), or renews it when
    /// this store holds it. Answers whether this store holds it now; `Ok(false)` when another
    /// worker does, or when the group is left to a worker under its share.
    async fn acquire_lease_impl(&self, group: &GroupId) -> Result<bool> {
        let me = self.identity()?.clone();
        if let Some(token) = self.held_token(group) {
            if self.renew(group, &me, token).await? {
                return Ok(true);
            }
            self.forget_lease(group);
        }
        // How long the group has been free: `None` when it never had a lease.
        let lease = self
            .client()
            .await?
            .query_opt(
                "SELECT expires_at > now(), EXTRACT(EPOCH FROM now() - expires_at)::float8
                 FROM leases WHERE group_id = $1",
                &[&group.as_str()],
            )
            .await
            .map_err(|e| self.err(&format!("cannot read the lease of group {group}"), e))?;
        let free_for = match lease {
            Some(row) if row.get::<_, bool>(0) => return Ok(false),
            Some(row) => Some(Duration::from_secs_f64(row.get::<_, f64>(1).max(0.0))),
            None => None,
        };
        // No connection is held while waiting here: the worker holding the lock needs one.
        let _taking = self.shared.taking.lock().await;
        let census = self.census().await?;
        if !census.may_take(free_for) {
            tracing::debug!(group = %group, worker = %me.name, share = census.share(), held = census.mine,
                live_held = ?census.held, free_ms = free_for.map(|f| f.as_millis()),
                "a free group left to a worker under its share");
            return Ok(false);
        }
        let mut client = self.client().await?;
        let taking = |e| self.err(&format!("cannot take the lease of group {group}"), e);
        let tx = client.transaction().await.map_err(taking)?;
        // Alone behind the fence: the write transactions of the previous owner that are under way
        // end first (a paused one is ended by the server after half a lease).
        tx.execute(HOLD_FENCE, &[&group.as_str()]).await.map_err(taking)?;
        let row = tx
            .query_opt(
                "INSERT INTO leases (group_id, owner, token, acquired_at, expires_at)
                 VALUES ($1, $2, 1, now(), now() + make_interval(secs => $3))
                 ON CONFLICT (group_id) DO UPDATE SET owner = excluded.owner, token = leases.token + 1,
                    acquired_at = now(), expires_at = excluded.expires_at
                 WHERE leases.expires_at < now()
                 RETURNING token",
                &[&group.as_str(), &me.name, &Self::lease_secs(me.lease)],
            )
            .await
            .map_err(taking)?;
        tx.commit().await.map_err(taking)?;
        match row {
            Some(row) => {
                let token: i64 = row.get(0);
                tracing::info!(group = %group, worker = %me.name, token, "lease taken");
                self.lock_held().insert(group.clone(), token);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn renew(&self, group: &GroupId, me: &WorkerIdentity, token: i64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => $4)
                 WHERE group_id = $1 AND owner = $2 AND token = $3",
                &[&group.as_str(), &me.name, &token, &Self::lease_secs(me.lease)],
            )
            .await
            .map_err(|e| self.err(&format!("cannot renew the lease of group {group}"), e))?;
        if n == 0 {
            tracing::warn!(group = %group, worker = %me.name, token, "lease lost: another worker took the group");
        }
        Ok(n > 0)
    }

    /// Writes this worker's heartbeat (then renews every lease this store holds); answers the
    /// groups whose leases were lost (another worker took them over after they expired: their
    /// work must stop) and those beyond this worker's fair share, a few at a time (see
    /// [`share::Census::surplus`]).
    async fn renew_leases_impl(&self) -> Result<LeaseRenewal> {
        let me = self.identity()?.clone();
        // The heartbeat first: it then ends before the leases, so when a worker dies the others
        // count it out by the time its groups are free.
        self.heartbeat().await?;
        let held: Vec<(GroupId, i64)> = self.lock_held().iter().map(|(g, t)| (g.clone(), *t)).collect();
        let mut renewal = LeaseRenewal::default();
        for (group, token) in held {
            if !self.renew(&group, &me, token).await? {
                self.forget_lease(&group);
                renewal.lost.push(group);
            }
        }
        let census = self.census().await?;
        let release = census.surplus();
        if release > 0 {
            // The last groups by id: the same ones renewal after renewal, until they are given up.
            let mut mine = self.held_leases();
            mine.reverse();
            mine.truncate(release);
            tracing::info!(worker = %me.name, share = census.share(), held = census.mine, live_workers = census.held.len(),
                release, "over its fair share: giving groups back between their passes");
            renewal.surplus = mine;
        }
        Ok(renewal)
    }

    /// Tells the other workers this one is alive (until a lease from now), and how many groups
    /// its configuration lists.
    async fn heartbeat(&self) -> Result<()> {
        let me = self.identity()?;
        let groups = i64::try_from(me.groups).unwrap_or(i64::MAX);
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO workers (name, groups, last_seen, expires_at)
                 VALUES ($1, $2, now(), now() + make_interval(secs => $3))
                 ON CONFLICT (name) DO UPDATE SET groups = excluded.groups, last_seen = excluded.last_seen,
                    expires_at = excluded.expires_at",
                &[&me.name, &groups, &Self::lease_secs(me.lease)],
            )
            .await
            .map_err(|e| self.err(&format!("cannot write the heartbeat of worker {}", me.name), e))?;
        Ok(())
    }

    /// The live workers (heartbeat younger than their lease), each with how many groups its
    /// configuration lists and how many leases it holds; this worker among them even when its
    /// own heartbeat is late.
    pub async fn live_workers(&self) -> Result<Vec<WorkerInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT w.name, w.groups, COALESCE(h.held, 0), w.last_seen
                 FROM workers w
                 LEFT JOIN (SELECT owner, COUNT(*) AS held FROM leases WHERE expires_at > now() GROUP BY owner) h
                   ON h.owner = w.name
                 WHERE w.expires_at > now()
                 ORDER BY w.name",
                &[],
            )
            .await
            .map_err(|e| self.err("cannot read the live workers", e))?;
        let mut workers: Vec<WorkerInfo> = rows
            .iter()
            .map(|r| WorkerInfo {
                name: r.get(0),
                groups: usize::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                held: usize::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                last_seen: r.get(3),
            })
            .collect();
        if let Some(me) = &self.shared.worker
            && !workers.iter().any(|w| w.name == me.name)
        {
            workers.push(WorkerInfo {
                name: me.name.clone(),
                groups: me.groups,
                held: self.lock_held().len(),
                last_seen: Utc::now(),
            });
        }
        Ok(workers)
    }

    /// What this worker weighs a free group by: the live workers' shares and holdings.
    async fn census(&self) -> Result<share::Census> {
        let me = self.identity()?.clone();
        let workers = self.live_workers().await?;
        Ok(share::Census {
            groups: workers.iter().map(|w| w.groups).max().unwrap_or(me.groups),
            mine: workers.iter().find(|w| w.name == me.name).map_or(0, |w| w.held),
            held: workers.iter().map(|w| w.held).collect(),
            patience: me.lease / 3,
        })
    }

    /// Gives a lease up (a worker shutting down, or giving back a group beyond its share between
    /// two passes): another worker may take the group at once.
    async fn release_lease_impl(&self, group: &GroupId) -> Result<()> {
        let me = self.identity()?.clone();
        let Some(token) = self.held_token(group) else { return Ok(()) };
        self.forget_lease(group);
        let client = self.client().await?;
        client
            .execute(
                "UPDATE leases SET expires_at = now() - interval '1 microsecond'
                 WHERE group_id = $1 AND owner = $2 AND token = $3",
                &[&group.as_str(), &me.name, &token],
            )
            .await
            .map_err(|e| self.err(&format!("cannot release the lease of group {group}"), e))?;
        Ok(())
    }

    /// The groups whose leases this store holds.
    pub fn held_leases(&self) -> Vec<GroupId> {
        let mut groups: Vec<GroupId> = self.lock_held().keys().cloned().collect();
        groups.sort();
        groups
    }

    /// Every lease in the database: which worker owns which group (for `status`).
    async fn leases_impl(&self) -> Result<Vec<LeaseInfo>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT group_id, owner, token, expires_at, expires_at < now() FROM leases ORDER BY group_id", &[])
            .await
            .map_err(|e| self.err("cannot read the leases", e))?;
        Ok(rows
            .iter()
            .map(|r| LeaseInfo {
                group: GroupId::new(r.get::<_, String>(0)),
                owner: r.get(1),
                token: r.get(2),
                expires_at: r.get(3),
                expired: r.get(4),
            })
            .collect())
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, i64>> {
        // The map is only ever left consistent (single inserts and removes): a panic elsewhere
        // while it was locked does not make it wrong.
        self.shared.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn held_token(&self, group: &GroupId) -> Option<i64> {
        self.lock_held().get(group).copied()
    }

    fn forget_lease(&self, group: &GroupId) {
        self.lock_held().remove(group);
    }

    // -----------------------------------------------------------------------------------------
    // Reads in one snapshot

    /// Runs reads in one repeatable-read, read-only transaction: one consistent state even while
    /// a worker writes.
    async fn snapshot_client(&self) -> Result<deadpool_postgres::Client> {
        self.client().await
    }
}

/// The group's fence: a transaction-scoped advisory lock whose key comes from the schema and the
/// group. Write transactions share it and a takeover holds it alone, so a write transaction that
/// found its lease valid commits before another worker's takeover, or not at all. The lease row
/// itself is not locked: a row lock taken by every transaction would be written to the row (and
/// to a multixact when several folders commit at once), where the advisory lock stays in memory.
macro_rules! group_fence {
    ($lock:literal) => {
        concat!("SELECT ", $lock, "(hashtextextended('exchange-sync lease ' || current_schema() || ' ' || $1, 0))")
    };
}
const SHARE_FENCE: &str = group_fence!("pg_advisory_xact_lock_shared");
const HOLD_FENCE: &str = group_fence!("pg_advisory_xact_lock");

/// The fencing check a write transaction makes once it shares the group's fence: whether the
/// lease row still names this worker and token. A statement of its own, so that its snapshot is
/// taken after the fence was granted and sees any takeover committed before.
const CHECK_LEASE: &str = "SELECT owner, token FROM leases WHERE group_id = $1";

/// Reads a slot from the columns `slot, item_id, version, content_hash, ownership, ignored_base`
/// starting at `at`.
fn slot_from_row(row: &tokio_postgres::Row, at: usize, entity: &str, member: &str) -> Result<ReplicaSlot> {
    StoredSlot {
        slot: row.get(at),
        item_id: row.get(at + 1),
        version: row.get(at + 2),
        hash: row.get(at + 3),
        ownership: row.get(at + 4),
        ignored_base: row.get(at + 5),
    }
    .into_slot(entity, member)
}

/// Why one write failed: the store's rules refused it, or the database failed.
enum WriteError {
    Refused(String),
    Db(tokio_postgres::Error),
    Json(serde_json::Error),
}

impl From<tokio_postgres::Error> for WriteError {
    fn from(e: tokio_postgres::Error) -> Self {
        WriteError::Db(e)
    }
}

impl From<serde_json::Error> for WriteError {
    fn from(e: serde_json::Error) -> Self {
        WriteError::Json(e)
    }
}

type WriteResult = std::result::Result<(), WriteError>;

/// From how many consecutive replica writes a transaction writes them with one statement.
const BULK_REPLICAS: usize = 16;
/// Into how many parts, each on a connection of its own, a large load of entities is split.
const LOAD_PARTS: usize = 4;

/// The create intents a transaction recorded (`Some`) or cleared (`None`), by folder and entity;
/// written together when the transaction ends.
type Intents = BTreeMap<String, BTreeMap<String, Option<(String, String)>>>;

const ENTITY_EXISTS: &str = "SELECT 1 FROM entities WHERE group_id = $1 AND entity_id = $2";
const OWNER_OF_ITEM: &str = "SELECT entity_id FROM replicas WHERE group_id = $1 AND member_id = $2 AND item_id = $3";
const REMOVE_FOREIGN: &str = "DELETE FROM foreign_items WHERE group_id = $1 AND member_id = $2 AND item_id = $3";
const PUT_REPLICA: &str = "
    INSERT INTO replicas
        (group_id, entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (group_id, member_id, entity_id) DO UPDATE SET
        slot = excluded.slot, item_id = excluded.item_id, version = excluded.version,
        content_hash = excluded.content_hash, ownership = excluded.ownership,
        ignored_base = excluded.ignored_base";
const REMOVE_ENTITY_REPLICAS: &str = "DELETE FROM replicas WHERE group_id = $1 AND entity_id = $2";
const TOMBSTONE_GONE: &str = "DELETE FROM entities WHERE group_id = $1 AND entity_id = $2 AND base IS NULL
      AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.group_id = $1 AND r.entity_id = $2 AND r.slot = 'present')";
const MEMBER_TOMBSTONES_GONE: &str = "DELETE FROM entities e WHERE e.group_id = $1 AND e.base IS NULL
      AND e.entity_id IN (SELECT r.entity_id FROM replicas r WHERE r.group_id = $1 AND r.member_id = $2)
      AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.group_id = $1 AND r.entity_id = e.entity_id
                      AND r.member_id <> $2 AND r.slot = 'present')
    RETURNING e.entity_id";

const BULK_ENTITIES_EXIST: &str = "SELECT entity_id FROM entities WHERE group_id = $1 AND entity_id = ANY($2)";
/// Whether an item written fills another entity's slot in its folder. An item that already fills
/// the slot written (an updated copy) fills no other (the item index is unique), so only the
/// others are looked up by item: the slot's own row is read through the primary key, which the
/// write that follows reads anyway, and an incremental pass's updates never descend the item
/// index (long keys, cold pages in a large state).
const BULK_ITEM_CLASH: &str = "
    WITH moved AS MATERIALIZED (
        SELECT w.entity_id, w.member_id, w.item_id
        FROM unnest($2::text[], $3::text[], $4::text[]) AS w(entity_id, member_id, item_id)
        LEFT JOIN replicas s ON s.group_id = $1 AND s.member_id = w.member_id AND s.entity_id = w.entity_id
        WHERE w.item_id IS NOT NULL AND s.item_id IS DISTINCT FROM w.item_id
    )
    SELECT 1 FROM moved
    JOIN replicas r ON r.group_id = $1 AND r.member_id = moved.member_id AND r.item_id = moved.item_id
    WHERE r.entity_id <> moved.entity_id LIMIT 1";
const BULK_REMOVE_FOREIGN: &str = "
    DELETE FROM foreign_items f USING unnest($2::text[], $3::text[]) AS w(member_id, item_id)
    WHERE f.group_id = $1 AND f.member_id = w.member_id AND f.item_id = w.item_id";
/// Rewrites in place the slots that keep their item (an incremental pass's updates: a new
/// version and hash of the same item), answering which. Such a write needs none of the checks a
/// slot written afresh needs: its row names the entity (which therefore exists), its item fills
/// no other slot (the item index is unique) and is no user's own item (a slot's item never is).
/// A plain update of the row also leaves out the row lock an upsert takes before it updates.
const BULK_REWRITE_REPLICAS: &str = "
    UPDATE replicas r SET slot = w.slot, version = w.version, content_hash = w.content_hash,
        ownership = w.ownership, ignored_base = w.ignored_base
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS w(entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base, n)
    WHERE r.group_id = $1 AND r.entity_id = w.entity_id AND r.member_id = w.member_id
      AND r.item_id IS NOT DISTINCT FROM w.item_id
    RETURNING w.n";
const BULK_PUT_REPLICAS: &str = "
    INSERT INTO replicas
        (group_id, entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base)
    SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                             $8::text[], $9::text[])
    ON CONFLICT (group_id, member_id, entity_id) DO UPDATE SET
        slot = excluded.slot, item_id = excluded.item_id, version = excluded.version,
        content_hash = excluded.content_hash, ownership = excluded.ownership,
        ignored_base = excluded.ignored_base";

const PUT_MEMBER_STATUSES: &str = "
    INSERT INTO member_status
        (group_id, member_id, initialized, last_sync, folder_id, folder_path, condition, last_error)
    SELECT $1, * FROM unnest($2::text[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    ON CONFLICT (group_id, member_id) DO UPDATE SET initialized = excluded.initialized,
        last_sync = excluded.last_sync, folder_id = excluded.folder_id,
        folder_path = excluded.folder_path, condition = excluded.condition,
        last_error = excluded.last_error";

/// A folder's status as the columns of `member_status` (after the group).
struct StatusColumns<'a> {
    member: &'a str,
    initialized: bool,
    last_sync: Option<String>,
    folder_id: Option<&'a str>,
    folder_path: Option<&'a str>,
    condition: String,
    last_error: Option<String>,
}

impl<'a> StatusColumns<'a> {
    fn of(member: &'a MemberId, status: &'a MemberStatus) -> serde_json::Result<Self> {
        Ok(StatusColumns {
            member: member.as_str(),
            initialized: status.initialized,
            last_sync: status.last_sync.as_ref().map(timestamp),
            folder_id: status.folder.as_ref().map(|f| f.id.as_str()),
            folder_path: status.folder.as_ref().map(|f| f.path.as_str()),
            condition: serde_json::to_string(&status.condition)?,
            last_error: status.last_error(),
        })
    }
}

/// Writes the statuses of a run of distinct folders (the statuses a pass records at its end,
/// one per folder of the group) with one statement; one statement cannot write a row twice, so
/// a folder that comes twice in a run goes in a statement of its own.
async fn put_statuses(
    tx: &deadpool_postgres::Transaction<'_>,
    group: &GroupId,
    run: &[(&MemberId, &MemberStatus)],
) -> WriteResult {
    let mut columns = Vec::with_capacity(run.len());
    for (member, status) in run {
        columns.push(StatusColumns::of(member, status)?);
    }
    let members: Vec<&str> = columns.iter().map(|c| c.member).collect();
    let initialized: Vec<bool> = columns.iter().map(|c| c.initialized).collect();
    let last_sync: Vec<Option<&str>> = columns.iter().map(|c| c.last_sync.as_deref()).collect();
    let folder_ids: Vec<Option<&str>> = columns.iter().map(|c| c.folder_id).collect();
    let folder_paths: Vec<Option<&str>> = columns.iter().map(|c| c.folder_path).collect();
    let conditions: Vec<&str> = columns.iter().map(|c| c.condition.as_str()).collect();
    let errors: Vec<Option<&str>> = columns.iter().map(|c| c.last_error.as_deref()).collect();
    let put = tx.prepare_cached(PUT_MEMBER_STATUSES).await?;
    tx.execute(
        &put,
        &[&group.as_str(), &members, &initialized, &last_sync, &folder_ids, &folder_paths, &conditions, &errors],
    )
    .await?;
    Ok(())
}

/// Writes a run of replica slots with one statement per step: rewrites in place the slots that
/// keep their item (an incremental pass's updates); for the others (the fan-out's new copies)
/// checks that every entity exists, that no item fills another entity's slot, forgets the items
/// as users' own, and upserts the slots from arrays. Answers `false` when the run is not one it
/// can write at once (an item that another slot names: the writes then go one by one, which says
/// exactly which failed); what it wrote before it found out is then written again, to the same
/// values, and no rewrite moves an item, so the checks of the writes one by one find the same.
async fn put_replicas_in_bulk(
    tx: &deadpool_postgres::Transaction<'_>,
    group: &GroupId,
    run: &[(&EntityId, &MemberId, &ReplicaSlot)],
) -> std::result::Result<bool, WriteError> {
    let g = group.as_str();
    // Distinct slots and distinct items, or the order of the writes matters.
    let mut keys = HashSet::new();
    let mut items = HashSet::new();
    for (entity, member, slot) in run {
        if !keys.insert((entity.as_str(), member.as_str())) {
            return Ok(false);
        }
        if let Some(item) = slot.item_id()
            && !items.insert((member.as_str(), item.as_str()))
        {
            return Ok(false);
        }
    }
    let all = ReplicaArrays::of(run.iter());
    // The ordinals (from 1) of the writes rewritten in place.
    let rewritten: HashSet<i64> = all.query(tx, BULK_REWRITE_REPLICAS, group).await?.iter().map(|r| r.get(0)).collect();
    if rewritten.len() == run.len() {
        return Ok(true);
    }
    let rest: Vec<_> = run.iter().zip(1i64..).filter(|(_, n)| !rewritten.contains(n)).map(|(w, _)| w).collect();
    let arrays = if rewritten.is_empty() { all } else { ReplicaArrays::of(rest.iter().copied()) };
    let (entities, members, item_ids) = (&arrays.entities, &arrays.members, &arrays.item_ids);
    // Prepared once per connection (each statement unprepared costs a second round trip), and
    // the two checks sent together: the connection pipelines them, one round trip for both.
    let existing = tx.prepare_cached(BULK_ENTITIES_EXIST).await?;
    let clash = tx.prepare_cached(BULK_ITEM_CLASH).await?;
    let existing_params: [&(dyn ToSql + Sync); 2] = [&g, entities];
    let clash_params: [&(dyn ToSql + Sync); 4] = [&g, entities, members, item_ids];
    let (existing, clash) =
        futures::try_join!(tx.query(&existing, &existing_params), tx.query_opt(&clash, &clash_params))?;
    let existing: HashSet<String> = existing.iter().map(|r| r.get(0)).collect();
    if let Some((entity, member, _)) = rest.iter().find(|(e, ..)| !existing.contains(e.as_str())) {
        return Err(WriteError::Refused(format!(
            "cannot put a replica of unknown entity {entity} in member {member} of group {group}"
        )));
    }
    // An item already filling the slot of an entity other than the one written: one by one.
    if clash.is_some() {
        return Ok(false);
    }
    let forget = tx.prepare_cached(BULK_REMOVE_FOREIGN).await?;
    tx.execute(&forget, &[&g, members, item_ids]).await?;
    arrays.query(tx, BULK_PUT_REPLICAS, group).await?;
    Ok(true)
}

/// A run of replica writes as the columns of `replicas` (after the group), one array each: the
/// parameters of the multi-row statements.
struct ReplicaArrays<'a> {
    entities: Vec<&'a str>,
    members: Vec<&'a str>,
    slots: Vec<&'static str>,
    item_ids: Vec<Option<&'a str>>,
    versions: Vec<Option<&'a str>>,
    hashes: Vec<Option<String>>,
    ownerships: Vec<Option<&'static str>>,
    ignored: Vec<Option<String>>,
}

impl<'a> ReplicaArrays<'a> {
    fn of<'r>(run: impl Iterator<Item = &'r (&'a EntityId, &'a MemberId, &'a ReplicaSlot)>) -> Self
    where
        'a: 'r,
    {
        let mut arrays = ReplicaArrays {
            entities: Vec::new(),
            members: Vec::new(),
            slots: Vec::new(),
            item_ids: Vec::new(),
            versions: Vec::new(),
            hashes: Vec::new(),
            ownerships: Vec::new(),
            ignored: Vec::new(),
        };
        for (entity, member, slot) in run {
            let c = SlotColumns::of(slot);
            arrays.entities.push(entity.as_str());
            arrays.members.push(member.as_str());
            arrays.slots.push(c.slot);
            arrays.item_ids.push(c.item_id);
            arrays.versions.push(c.version);
            arrays.hashes.push(c.hash);
            arrays.ownerships.push(c.ownership);
            arrays.ignored.push(c.ignored_base);
        }
        arrays
    }

    /// Runs `statement`, whose parameters are the group and these arrays in column order.
    async fn query(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        statement: &str,
        group: &GroupId,
    ) -> std::result::Result<Vec<tokio_postgres::Row>, WriteError> {
        let statement = tx.prepare_cached(statement).await?;
        let params: [&(dyn ToSql + Sync); 9] = [
            &group.as_str(),
            &self.entities,
            &self.members,
            &self.slots,
            &self.item_ids,
            &self.versions,
            &self.hashes,
            &self.ownerships,
            &self.ignored,
        ];
        Ok(tx.query(&statement, &params).await?)
    }
}

/// Applies one write in the transaction.
async fn apply_write(
    tx: &deadpool_postgres::Transaction<'_>,
    intents: &mut Intents,
    group: &GroupId,
    write: &StateWrite,
) -> WriteResult {
    let g = group.as_str();
    match write {
        StateWrite::PutEntity { id, base, match_key } => {
            let base = base.as_ref().map(serde_json::to_string).transpose()?;
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO entities (group_id, entity_id, base, match_key) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (group_id, entity_id) DO UPDATE SET base = excluded.base,
                        match_key = excluded.match_key",
                )
                .await?;
            tx.execute(&stmt, &[&g, &id.as_str(), &base, match_key]).await?;
        }
        StateWrite::RemoveEntity { id } => {
            tx.execute(REMOVE_ENTITY_REPLICAS, &[&g, &id.as_str()]).await?;
            tx.execute("DELETE FROM entities WHERE group_id = $1 AND entity_id = $2", &[&g, &id.as_str()]).await?;
        }
        StateWrite::PutReplica { entity, member, slot } => {
            let exists = tx.prepare_cached(ENTITY_EXISTS).await?;
            if tx.query_opt(&exists, &[&g, &entity.as_str()]).await?.is_none() {
                return Err(WriteError::Refused(format!(
                    "cannot put a replica of unknown entity {entity} in member {member} of group {group}"
                )));
            }
            let c = SlotColumns::of(slot);
            if let Some(item) = c.item_id {
                let owner = tx.prepare_cached(OWNER_OF_ITEM).await?;
                if let Some(row) = tx.query_opt(&owner, &[&g, &member.as_str(), &item]).await? {
                    let other: String = row.get(0);
                    if other != entity.as_str() {
                        return Err(WriteError::Refused(format!(
                            "cannot put item {item} in the slot of entity {entity} in member {member} of group \
                             {group}: it already fills the slot of entity {other}"
                        )));
                    }
                }
                let remove = tx.prepare_cached(REMOVE_FOREIGN).await?;
                tx.execute(&remove, &[&g, &member.as_str(), &item]).await?;
            }
            let put = tx.prepare_cached(PUT_REPLICA).await?;
            tx.execute(
                &put,
                &[
                    &g,
                    &entity.as_str(),
                    &member.as_str(),
                    &c.slot,
                    &c.item_id,
                    &c.version,
                    &c.hash,
                    &c.ownership,
                    &c.ignored_base,
                ],
            )
            .await?;
        }
        StateWrite::RemoveReplica { entity, member } => {
            let removed = tx
                .execute(
                    "DELETE FROM replicas WHERE group_id = $1 AND member_id = $2 AND entity_id = $3",
                    &[&g, &member.as_str(), &entity.as_str()],
                )
                .await?;
            // The tombstone rule: an entity being deleted goes with its last copy, and so do its
            // other slots (opted out, personal).
            if removed > 0 && tx.execute(TOMBSTONE_GONE, &[&g, &entity.as_str()]).await? > 0 {
                tx.execute(REMOVE_ENTITY_REPLICAS, &[&g, &entity.as_str()]).await?;
            }
        }
        StateWrite::PutForeign { member, id, version } => {
            if let Some(row) = tx.query_opt(OWNER_OF_ITEM, &[&g, &member.as_str(), &id.as_str()]).await? {
                let entity: String = row.get(0);
                return Err(WriteError::Refused(format!(
                    "cannot record item {id} in member {member} of group {group} as a user's own item: it fills \
                     the slot of entity {entity} (remove the slot first)"
                )));
            }
            tx.execute(
                "INSERT INTO foreign_items (group_id, member_id, item_id, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (group_id, member_id, item_id) DO UPDATE SET version = excluded.version",
                &[&g, &member.as_str(), &id.as_str(), &version.as_str()],
            )
            .await?;
        }
        StateWrite::RemoveForeign { member, id } => {
            tx.execute(REMOVE_FOREIGN, &[&g, &member.as_str(), &id.as_str()]).await?;
        }
        StateWrite::SetToken { member, token: Some(token) } => {
            tx.execute(
                "INSERT INTO sync_tokens (group_id, member_id, token) VALUES ($1, $2, $3)
                 ON CONFLICT (group_id, member_id) DO UPDATE SET token = excluded.token",
                &[&g, &member.as_str(), &token.as_str()],
            )
            .await?;
        }
        StateWrite::SetToken { member, token: None } => {
            tx.execute("DELETE FROM sync_tokens WHERE group_id = $1 AND member_id = $2", &[&g, &member.as_str()])
                .await?;
        }
        StateWrite::SetMemberStatus { member, status } => put_statuses(tx, group, &[(member, status)]).await?,
        StateWrite::PutPending(p) => {
            intents
                .entry(p.member.as_str().to_owned())
                .or_default()
                .insert(p.entity.as_str().to_owned(), Some((p.origin.encode(), timestamp(&p.recorded_at))));
        }
        StateWrite::RemovePending { entity, member } => {
            intents.entry(member.as_str().to_owned()).or_default().insert(entity.as_str().to_owned(), None);
        }
        StateWrite::AddConflict(c) => {
            let record = serde_json::to_string(&c)?;
            tx.execute(
                "INSERT INTO conflicts (group_id, entity_id, field, recorded_at, record) VALUES ($1, $2, $3, $4, $5)",
                &[&g, &c.entity.as_str(), &c.field, &timestamp(&c.recorded_at), &record],
            )
            .await?;
        }
        StateWrite::PutEarlierBases { entity, bases } => {
            let bases = (!bases.is_empty()).then(|| serde_json::to_string(bases)).transpose()?;
            let updated = tx
                .execute(
                    "UPDATE entities SET earlier_bases = $3 WHERE group_id = $1 AND entity_id = $2",
                    &[&g, &entity.as_str(), &bases],
                )
                .await?;
            if updated == 0 {
                return Err(WriteError::Refused(format!(
                    "cannot set earlier bases of unknown entity {entity} in group {group}"
                )));
            }
        }
        StateWrite::RemoveRequest { id } => {
            // Ids beyond PostgreSQL's integers name no request.
            if let Ok(id) = i64::try_from(*id) {
                tx.execute("DELETE FROM admin_requests WHERE group_id = $1 AND id = $2", &[&g, &id]).await?;
            }
        }
        StateWrite::PutRecord { key, value: Some(value) } => {
            tx.execute(
                "INSERT INTO group_records (group_id, key, value, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (group_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&g, key, value, &timestamp(&Utc::now())],
            )
            .await?;
        }
        StateWrite::PutRecord { key, value: None } => {
            tx.execute("DELETE FROM group_records WHERE group_id = $1 AND key = $2", &[&g, key]).await?;
        }
        StateWrite::RemoveMember { member } => {
            let m = member.as_str();
            // Tombstones whose last copy is in this folder go with it (before their slots go,
            // while we can still tell which entities had one here), and their slots elsewhere.
            let gone: Vec<String> =
                tx.query(MEMBER_TOMBSTONES_GONE, &[&g, &m]).await?.iter().map(|r| r.get(0)).collect();
            if !gone.is_empty() {
                tx.execute("DELETE FROM replicas WHERE group_id = $1 AND entity_id = ANY($2)", &[&g, &gone]).await?;
            }
            intents.remove(m);
            for table in ["replicas", "foreign_items", "sync_tokens", "member_status", "pending_creates"] {
                tx.execute(&format!("DELETE FROM {table} WHERE group_id = $1 AND member_id = $2"), &[&g, &m]).await?;
            }
        }
    }
    Ok(())
}

/// Writes the create intents a transaction recorded and cleared: one statement each way per
/// folder.
async fn flush_intents(tx: &deadpool_postgres::Transaction<'_>, group: &GroupId, intents: Intents) -> WriteResult {
    let g = group.as_str();
    for (member, changes) in intents {
        let cleared: Vec<&str> = changes.iter().filter(|(_, i)| i.is_none()).map(|(e, _)| e.as_str()).collect();
        if !cleared.is_empty() {
            tx.execute(
                "DELETE FROM pending_creates WHERE group_id = $1 AND member_id = $2 AND entity_id = ANY($3)",
                &[&g, &member, &cleared],
            )
            .await?;
        }
        let mut entities = Vec::new();
        let mut origins = Vec::new();
        let mut times = Vec::new();
        for (entity, intent) in &changes {
            if let Some((origin, at)) = intent {
                entities.push(entity.as_str());
                origins.push(origin.as_str());
                times.push(at.as_str());
            }
        }
        if !entities.is_empty() {
            tx.execute(
                "INSERT INTO pending_creates (group_id, member_id, entity_id, origin, recorded_at)
                 SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[])
                 ON CONFLICT (group_id, member_id, entity_id) DO UPDATE SET origin = excluded.origin,
                    recorded_at = excluded.recorded_at",
                &[&g, &member, &entities, &origins, &times],
            )
            .await?;
        }
    }
    Ok(())
}

impl PostgresStore {
    /// One state transaction as one SQL transaction, fenced by the group's lease when the store
    /// writes as a worker.
    async fn apply_tx(&self, group: &GroupId, tx: StateTransaction) -> Result<()> {
        let location = &self.shared.location;
        let mut client = self.client().await?;
        let sql = client
            .transaction()
            .await
            .map_err(|e| self.err(&format!("cannot start a transaction for group {group}"), e))?;
        if let Some(me) = &self.shared.worker {
            let Some(token) = self.held_token(group) else {
                return Err(Error::LeaseLost {
                    group: group.clone(),
                    message: format!("worker {} does not hold the lease of group {group} in {location}", me.name),
                });
            };
            let check = |e| self.err(&format!("cannot check the lease of group {group}"), e);
            let fence = sql.prepare_cached(SHARE_FENCE).await.map_err(check)?;
            let statement = sql.prepare_cached(CHECK_LEASE).await.map_err(check)?;
            // Sent together, run one after the other: the check's snapshot follows the fence.
            let g = group.as_str();
            let params: [&(dyn ToSql + Sync); 1] = [&g];
            let (_, row) = futures::try_join!(sql.query_one(&fence, &params), sql.query_opt(&statement, &params))
                .map_err(check)?;
            let holder: Option<(String, i64)> = row.map(|r| (r.get(0), r.get(1)));
            if holder.as_ref() != Some(&(me.name.clone(), token)) {
                self.forget_lease(group);
                let now = match holder {
                    Some((owner, t)) => format!("worker {owner} holds it with fencing token {t}"),
                    None => "nobody holds it".to_owned(),
                };
                tracing::error!(group = %group, worker = %me.name, token, "write refused: the group's lease was lost");
                return Err(Error::LeaseLost {
                    group: group.clone(),
                    message: format!(
                        "worker {} lost the lease of group {group} (its fencing token {token}); {now}: nothing was \
                         written, and this worker stops working on the group",
                        me.name
                    ),
                });
            }
        }
        let mut intents = Intents::new();
        let writes = &tx.writes;
        let mut i = 0;
        let mut sequential_until = 0;
        while i < writes.len() {
            // A run of replica writes (a fan-out's window: each copy's slot, then its create
            // intent cleared) goes at once when it can. Intents only touch the transaction's
            // buffer of intents, so they may be taken in order beside the replicas.
            let span = writes[i..]
                .iter()
                .take_while(|w| {
                    matches!(
                        w,
                        StateWrite::PutReplica { .. } | StateWrite::PutPending(_) | StateWrite::RemovePending { .. }
                    )
                })
                .count();
            let run: Vec<(&EntityId, &MemberId, &ReplicaSlot)> = writes[i..i + span]
                .iter()
                .filter_map(|w| match w {
                    StateWrite::PutReplica { entity, member, slot } => Some((entity, member, slot)),
                    _ => None,
                })
                .collect();
            if run.len() >= BULK_REPLICAS && i >= sequential_until {
                match put_replicas_in_bulk(&sql, group, &run).await {
                    Ok(true) => {
                        for write in &writes[i..i + span] {
                            if !matches!(write, StateWrite::PutReplica { .. }) {
                                apply_write(&sql, &mut intents, group, write)
                                    .await
                                    .map_err(|e| self.write_error(group, &describe(write), e))?;
                            }
                        }
                        i += span;
                        continue;
                    }
                    // One by one, without asking again for every write of the span.
                    Ok(false) => sequential_until = i + span,
                    Err(e) => return Err(self.write_error(group, &format!("put {} replicas", run.len()), e)),
                }
            }
            // A run of folder statuses (a pass's end) goes at once when no folder comes twice.
            let statuses: Vec<(&MemberId, &MemberStatus)> = writes[i..]
                .iter()
                .map_while(|w| match w {
                    StateWrite::SetMemberStatus { member, status } => Some((member, status)),
                    _ => None,
                })
                .collect();
            if statuses.len() > 1 && statuses.iter().map(|(m, _)| *m).collect::<HashSet<_>>().len() == statuses.len() {
                put_statuses(&sql, group, &statuses).await.map_err(|e| {
                    self.write_error(group, &format!("record the status of {} folders", statuses.len()), e)
                })?;
                i += statuses.len();
                continue;
            }
            let write = &writes[i];
            apply_write(&sql, &mut intents, group, write)
                .await
                .map_err(|e| self.write_error(group, &describe(write), e))?;
            i += 1;
        }
        flush_intents(&sql, group, intents).await.map_err(|e| self.write_error(group, "record create intents", e))?;
        sql.commit().await.map_err(|e| self.err(&format!("cannot commit a transaction for group {group}"), e))
    }

    /// Entities with their copies, in the order of `ids` (distinct), read in one snapshot.
    async fn load_entities(&self, group: &GroupId, ids: &[&str]) -> Result<Vec<EntityRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let g = group.as_str();
        let what = || format!("{} entities of group {group}", ids.len());
        let mut client = self.snapshot_client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(self.read_err(what()))?;
        let rows = tx
            .query(
                "SELECT entity_id, base, match_key, earlier_bases FROM entities
                 WHERE group_id = $1 AND entity_id = ANY($2)",
                &[&g, &ids],
            )
            .await
            .map_err(self.read_err(what()))?;
        let mut records: HashMap<String, EntityRecord> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.get(0);
            let base: Option<String> = row.get(1);
            let earlier: Option<String> = row.get(3);
            let base: Option<Item> = base
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| Error::state(format!("unreadable base of entity {id} of group {group}"), e))?;
            let earlier: Option<Vec<Item>> = earlier
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| Error::state(format!("unreadable earlier bases of entity {id} of group {group}"), e))?;
            let mut record = EntityRecord::new(EntityId::new(id.clone()), base, row.get(2));
            record.earlier_bases = earlier.unwrap_or_default();
            records.insert(id, record);
        }
        let slots = tx
            .query(
                "SELECT entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base
                 FROM replicas WHERE group_id = $1 AND entity_id = ANY($2)",
                &[&g, &ids],
            )
            .await
            .map_err(self.read_err(what()))?;
        for row in &slots {
            let entity: String = row.get(0);
            let member: String = row.get(1);
            let slot = slot_from_row(row, 2, &entity, &member)?;
            if let Some(record) = records.get_mut(&entity) {
                record.replicas.insert(MemberId::new(member), slot);
            }
        }
        Ok(ids.iter().filter_map(|id| records.remove(*id)).collect())
    }

    fn write_error(&self, group: &GroupId, what: &str, e: WriteError) -> Error {
        match e {
            WriteError::Refused(message) => Error::State { message, source: None },
            WriteError::Db(e) => self.err(&format!("cannot {what} in group {group}"), e),
            WriteError::Json(e) => Error::state(format!("cannot {what} in group {group}"), e),
        }
    }

    fn read_err(&self, what: String) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        move |e| self.err(&format!("cannot read {what}"), e)
    }
}

/// Reads a folder's status from the columns `initialized, last_sync, folder_id, folder_path,
/// condition` starting at `at`; `what` names it in an error.
fn status_from_row(row: &tokio_postgres::Row, at: usize, what: &str) -> Result<MemberStatus> {
    let folder = match (row.get::<_, Option<String>>(at + 2), row.get::<_, Option<String>>(at + 3)) {
        (Some(id), Some(path)) => Some(FolderIdentity { id, path }),
        _ => None,
    };
    let condition: String = row.get(at + 4);
    Ok(MemberStatus {
        initialized: row.get(at),
        last_sync: row.get::<_, Option<String>>(at + 1).map(|t| parse_time(&t, "last sync time")).transpose()?,
        folder,
        condition: serde_json::from_str(&condition)
            .map_err(|e| Error::state(format!("unreadable condition in {what}"), e))?,
    })
}

fn known_item(row: &tokio_postgres::Row) -> KnownItem {
    KnownItem {
        id: ItemId::new(row.get::<_, String>(0)),
        version: Version::new(row.get::<_, String>(1)),
        entity: row.get::<_, Option<String>>(2).map(EntityId::new),
    }
}

/// Parameters as the driver takes them.
type Params<'a> = [&'a (dyn ToSql + Sync)];

#[async_trait]
impl StateStore for PostgresStore {
    #[tracing::instrument(level = "debug", skip(self, tx), fields(group = %group, writes = tx.writes.len()))]
    async fn apply(&self, group: &GroupId, tx: StateTransaction) -> Result<()> {
        if tx.is_empty() {
            return Ok(());
        }
        self.apply_tx(group, tx).await
    }

    async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>> {
        let mut seen = HashSet::new();
        let ids: Vec<&str> = ids.iter().filter(|id| seen.insert(*id)).map(EntityId::as_str).collect();
        if ids.len() < LOAD_PARTS * 2 {
            return self.load_entities(group, &ids).await;
        }
        // A pass loads its changed entities with all their copies (50 entities of a group of
        // 3,000 folders: 150,000 rows on as many pages). One query is one server process reading
        // those pages one after the other; parts on connections of their own read them side by
        // side. Each part is one snapshot, and so is each entity: only the group's lease holder
        // writes its entities and copies, and it does not while it loads them.
        let parts = ids.chunks(ids.len().div_ceil(LOAD_PARTS)).map(|part| self.load_entities(group, part));
        Ok(futures::future::try_join_all(parts).await?.into_iter().flatten().collect())
    }

    async fn slots_in(
        &self,
        group: &GroupId,
        member: &MemberId,
        ids: &[EntityId],
    ) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
        let ids: Vec<&str> = ids.iter().map(EntityId::as_str).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT entity_id, slot, item_id, version, content_hash, ownership, ignored_base
                 FROM replicas WHERE group_id = $1 AND member_id = $2 AND entity_id = ANY($3)",
                &[&group.as_str(), &member.as_str(), &ids],
            )
            .await
            .map_err(self.read_err(format!("slots of {} entities in member {member} of group {group}", ids.len())))?;
        rows.iter()
            .map(|row| {
                let entity: String = row.get(0);
                let slot = slot_from_row(row, 1, &entity, member.as_str())?;
                Ok((EntityId::new(entity), slot))
            })
            .collect()
    }

    async fn entity_ids(&self, group: &GroupId, after: Option<&EntityId>, limit: usize) -> Result<Vec<EntityId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let g = group.as_str();
        let rows = match after {
            Some(after) => {
                client
                    .query(
                        "SELECT entity_id FROM entities WHERE group_id = $1 AND entity_id > $2
                         ORDER BY entity_id LIMIT $3",
                        &[&g, &after.as_str(), &limit],
                    )
                    .await
            }
            None => {
                client
                    .query(
                        "SELECT entity_id FROM entities WHERE group_id = $1 ORDER BY entity_id LIMIT $2",
                        &[&g, &limit],
                    )
                    .await
            }
        }
        .map_err(self.read_err(format!("entity ids of group {group}")))?;
        Ok(rows.iter().map(|r| EntityId::new(r.get::<_, String>(0))).collect())
    }

    async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> Result<Vec<(String, EntityId)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT match_key, entity_id FROM entities WHERE group_id = $1 AND match_key = ANY($2)
                 ORDER BY match_key, entity_id",
                &[&group.as_str(), &keys],
            )
            .await
            .map_err(self.read_err(format!("entities by match key in group {group}")))?;
        Ok(rows.iter().map(|r| (r.get(0), EntityId::new(r.get::<_, String>(1)))).collect())
    }

    async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> Result<Vec<KnownItem>> {
        let mut seen = HashSet::new();
        let ids: Vec<&str> = ids.iter().filter(|id| seen.insert(*id)).map(ItemId::as_str).collect();
        let client = self.client().await?;
        let params: &Params<'_> = &[&group.as_str(), &member.as_str(), &ids];
        let rows = client
            .query(
                "SELECT item_id, version, entity_id FROM replicas
                   WHERE group_id = $1 AND member_id = $2 AND item_id = ANY($3)
                 UNION ALL
                 SELECT item_id, version, NULL FROM foreign_items
                   WHERE group_id = $1 AND member_id = $2 AND item_id = ANY($3)",
                params,
            )
            .await
            .map_err(self.read_err(format!("items of member {member} in group {group}")))?;
        let mut found: HashMap<String, KnownItem> =
            rows.iter().map(|r| (r.get::<_, String>(0), known_item(r))).collect();
        Ok(ids.iter().filter_map(|id| found.remove(*id)).collect())
    }

    async fn known_items(&self, group: &GroupId, member: &MemberId) -> Result<Vec<KnownItem>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT item_id, version, entity_id FROM replicas
                   WHERE group_id = $1 AND member_id = $2 AND item_id IS NOT NULL
                 UNION ALL
                 SELECT item_id, version, NULL FROM foreign_items WHERE group_id = $1 AND member_id = $2
                 ORDER BY 1",
                &[&group.as_str(), &member.as_str()],
            )
            .await
            .map_err(self.read_err(format!("items of member {member} in group {group}")))?;
        Ok(rows.iter().map(known_item).collect())
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT member_id FROM replicas WHERE group_id = $1
                 UNION SELECT member_id FROM foreign_items WHERE group_id = $1
                 UNION SELECT member_id FROM sync_tokens WHERE group_id = $1
                 UNION SELECT member_id FROM member_status WHERE group_id = $1
                 UNION SELECT member_id FROM pending_creates WHERE group_id = $1
                 ORDER BY 1",
                &[&group.as_str()],
            )
            .await
            .map_err(self.read_err(format!("members of group {group}")))?;
        Ok(rows.iter().map(|r| MemberId::new(r.get::<_, String>(0))).collect())
    }

    async fn replica_count(&self, group: &GroupId, member: &MemberId) -> Result<usize> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM replicas WHERE group_id = $1 AND member_id = $2 AND slot = 'present'",
                &[&group.as_str(), &member.as_str()],
            )
            .await
            .map_err(self.read_err(format!("replica count of member {member} in group {group}")))?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn token(&self, group: &GroupId, member: &MemberId) -> Result<Option<SyncToken>> {
        let what = || format!("sync token of member {member} in group {group}");
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT token FROM sync_tokens WHERE group_id = $1 AND member_id = $2")
            .await
            .map_err(self.read_err(what()))?;
        let row =
            client.query_opt(&statement, &[&group.as_str(), &member.as_str()]).await.map_err(self.read_err(what()))?;
        Ok(row.map(|r| SyncToken::new(r.get::<_, String>(0))))
    }

    async fn member_status(&self, group: &GroupId, member: &MemberId) -> Result<MemberStatus> {
        let mut statuses = self.member_statuses(group, std::slice::from_ref(member)).await?;
        Ok(statuses.remove(member).unwrap_or_default())
    }

    async fn member_statuses(&self, group: &GroupId, members: &[MemberId]) -> Result<BTreeMap<MemberId, MemberStatus>> {
        let what = || match members {
            [member] => format!("status of member {member} in group {group}"),
            _ => format!("statuses of {} members in group {group}", members.len()),
        };
        let ids: Vec<&str> = members.iter().map(MemberId::as_str).collect();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT member_id, initialized, last_sync, folder_id, folder_path, condition
                 FROM member_status WHERE group_id = $1 AND member_id = ANY($2)",
            )
            .await
            .map_err(self.read_err(what()))?;
        let rows = client.query(&statement, &[&group.as_str(), &ids]).await.map_err(self.read_err(what()))?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let member: String = row.get(0);
            let status = status_from_row(row, 1, &format!("status of member {member} in group {group}"))?;
            found.insert(member, status);
        }
        Ok(members.iter().map(|m| (m.clone(), found.remove(m.as_str()).unwrap_or_default())).collect())
    }

    async fn pending_creates(&self, group: &GroupId) -> Result<Vec<PendingCreate>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT entity_id, member_id, origin, recorded_at FROM pending_creates WHERE group_id = $1
                 ORDER BY entity_id, member_id",
                &[&group.as_str()],
            )
            .await
            .map_err(self.read_err(format!("create intents of group {group}")))?;
        rows.iter()
            .map(|r| {
                let origin: String = r.get(2);
                let at: String = r.get(3);
                Ok(PendingCreate {
                    entity: EntityId::new(r.get::<_, String>(0)),
                    member: MemberId::new(r.get::<_, String>(1)),
                    origin: origin.parse::<OriginStamp>().map_err(|_| corrupt(format!("origin stamp {origin:?}")))?,
                    recorded_at: parse_time(&at, "create intent time")?,
                })
            })
            .collect()
    }

    async fn conflicts(&self, group: &GroupId) -> Result<Vec<ConflictRecord>> {
        let what = || format!("conflict records of group {group}");
        let client = self.client().await?;
        let rows = client
            .query("SELECT record FROM conflicts WHERE group_id = $1 ORDER BY seq", &[&group.as_str()])
            .await
            .map_err(self.read_err(what()))?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| Error::state(format!("unreadable record in {}", what()), e))
            })
            .collect()
    }

    async fn groups(&self) -> Result<Vec<GroupId>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT group_id FROM entities
                 UNION SELECT DISTINCT group_id FROM replicas
                 UNION SELECT DISTINCT group_id FROM foreign_items
                 UNION SELECT DISTINCT group_id FROM sync_tokens
                 UNION SELECT DISTINCT group_id FROM member_status
                 UNION SELECT DISTINCT group_id FROM pending_creates
                 UNION SELECT DISTINCT group_id FROM conflicts
                 UNION SELECT DISTINCT group_id FROM admin_requests
                 UNION SELECT DISTINCT group_id FROM group_records
                 ORDER BY 1",
                &[],
            )
            .await
            .map_err(self.read_err(format!("the groups of state database {}", self.shared.location)))?;
        Ok(rows.iter().map(|r| GroupId::new(r.get::<_, String>(0))).collect())
    }

    async fn post_request(&self, group: &GroupId, request: AdminRequest) -> Result<u64> {
        let json = serde_json::to_string(&request)
            .map_err(|e| Error::state(format!("cannot write an admin request for group {group}"), e))?;
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO admin_requests (group_id, request, posted_at) VALUES ($1, $2, $3) RETURNING id",
                &[&group.as_str(), &json, &timestamp(&Utc::now())],
            )
            .await
            .map_err(|e| self.err(&format!("cannot post an admin request for group {group}"), e))?;
        let id: i64 = row.get(0);
        u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))
    }

    async fn requests(&self, group: &GroupId) -> Result<Vec<PostedRequest>> {
        let what = || format!("admin requests of group {group}");
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, request, posted_at FROM admin_requests WHERE group_id = $1 ORDER BY id",
                &[&group.as_str()],
            )
            .await
            .map_err(self.read_err(what()))?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                Ok(PostedRequest {
                    id: u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))?,
                    request: serde_json::from_str(r.get::<_, &str>(1))
                        .map_err(|e| Error::state(format!("unreadable request {id} in {}", what()), e))?,
                    posted_at: parse_time(r.get::<_, &str>(2), "admin request time")?,
                })
            })
            .collect()
    }

    /// One query for every group (on `admin_requests_by_group`; the table holds only requests
    /// not yet carried out), whoever owns them: the groups another worker owns are its to run.
    async fn newest_requests(&self) -> Result<BTreeMap<GroupId, u64>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT group_id, MAX(id) FROM admin_requests GROUP BY group_id", &[])
            .await
            .map_err(self.read_err(format!("the admin requests of state database {}", self.shared.location)))?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(1);
                let id = u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))?;
                Ok((GroupId::new(r.get::<_, String>(0)), id))
            })
            .collect()
    }

    /// Without a worker identity the store is not fenced, and owns every group.
    #[tracing::instrument(level = "debug", skip(self), fields(group = %group))]
    async fn acquire_lease(&self, group: &GroupId) -> Result<bool> {
        if self.shared.worker.is_none() {
            return Ok(true);
        }
        self.acquire_lease_impl(group).await
    }

    async fn renew_leases(&self) -> Result<LeaseRenewal> {
        if self.shared.worker.is_none() {
            return Ok(LeaseRenewal::default());
        }
        self.renew_leases_impl().await
    }

    async fn release_lease(&self, group: &GroupId) -> Result<()> {
        if self.shared.worker.is_none() {
            return Ok(());
        }
        self.release_lease_impl(group).await
    }

    async fn leave_workers(&self) -> Result<()> {
        let Some(me) = &self.shared.worker else { return Ok(()) };
        let client = self.client().await?;
        client
            .execute("DELETE FROM workers WHERE name = $1", &[&me.name])
            .await
            .map_err(|e| self.err(&format!("cannot remove worker {} from the live workers", me.name), e))?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<LeaseInfo>> {
        self.leases_impl().await
    }

    fn lease_duration(&self) -> Option<Duration> {
        self.shared.worker.as_ref().map(|w| w.lease)
    }

    async fn record(&self, group: &GroupId, key: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT value FROM group_records WHERE group_id = $1 AND key = $2", &[&group.as_str(), &key])
            .await
            .map_err(self.read_err(format!("record {key} of group {group}")))?;
        Ok(row.map(|r| r.get(0)))
    }
}
