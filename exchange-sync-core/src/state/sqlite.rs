//! The SQLite state store: the embedded default, one file per installation.
//!
//! - **Durable and atomic**: every [`StateStore::apply`] is one SQL transaction, in WAL mode with
//!   `synchronous=NORMAL` (a committed transaction survives a process crash; a power loss may
//!   lose the last transactions but never corrupts the file or leaves half of one).
//! - **Versioned schema**: [`MIGRATIONS`] are applied in order when the store opens, each in its
//!   own transaction that also records it in the `schema_migrations` table; opening is
//!   idempotent, and a file written by a newer version of this library is refused rather than
//!   misread.
//! - **Portable data model**: plain tables with composite primary keys, text columns and
//!   ordinary indexes, no SQLite-only types or triggers, so a PostgreSQL store can use the same
//!   tables and the same statements (upserts are `INSERT ... ON CONFLICT`). Bases, conflict
//!   records and batches of create intents are JSON documents; everything the store looks up by
//!   is a column with an index.
//!   Tables with small rows keyed by text are `WITHOUT ROWID` (clustered on their primary key,
//!   which saves a copy of every key): a storage choice of SQLite's that a PostgreSQL schema
//!   simply leaves out. `entities` keeps its rowid, since its rows carry the base document.
//! - **Off the async runtime**: SQLite calls block, so each runs on tokio's blocking pool
//!   ([`tokio::task::spawn_blocking`]) against one connection behind a mutex.
//!
//! ## Porting to PostgreSQL
//!
//! The tables and statements carry over as they are, with these points to mind (the conformance
//! suite, `state_conformance_tests!` of the `testkit` feature, checks the behavior each protects):
//! - `entity_id` must order by bytes, as Rust orders strings (`COLLATE "C"`), or
//!   [`StateStore::entity_ids`] pages in a different order than the other stores.
//! - `conflicts.seq` becomes an identity column; it only has to grow in commit order per group.
//! - `member_status.initialized` may become a `boolean`; `WITHOUT ROWID` is left out.
//! - The store's rules that SQL constraints do not express (a replica needs its entity, an
//!   entity's replicas go with it, a replica is not also a user's own item, the tombstone rule)
//!   are checked by queries in the same transaction as the write; that an item is the replica
//!   of one entity at most is the unique index `replicas_by_item`.
//! - Replicas are keyed folder first (`group_id, member_id, entity_id`): a pass writes a
//!   folder's copies together, and keyed this way they fill neighbouring pages. The copies of
//!   one entity are found folder by folder (`with_folders!`), which a PostgreSQL port can keep
//!   or replace with an index on `(group_id, entity_id)`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
use crate::item::{ContentHash, Item};
use crate::origin::OriginStamp;
use crate::state::{
    ConflictRecord, EntityRecord, KnownItem, MemberStatus, Ownership, PendingCreate, ReplicaRecord, ReplicaSlot,
    StateStore, StateTransaction, StateWrite,
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

/// Every migration of the schema, oldest first. Append only: a released migration never
/// changes, since databases in the field have already applied it.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "entities, replicas, foreign items, tokens, member status, pending creates, conflicts",
        sql: "
        CREATE TABLE entities (
            group_id   TEXT NOT NULL,
            entity_id  TEXT NOT NULL,
            base       TEXT,
            match_key  TEXT,
            PRIMARY KEY (group_id, entity_id)
        );
        CREATE INDEX entities_by_match_key ON entities (group_id, match_key, entity_id);

        CREATE TABLE replicas (
            group_id      TEXT NOT NULL,
            entity_id     TEXT NOT NULL,
            member_id     TEXT NOT NULL,
            slot          TEXT NOT NULL CHECK (slot IN ('present', 'opted_out')),
            item_id       TEXT,
            version       TEXT,
            content_hash  TEXT,
            ownership     TEXT CHECK (ownership IN ('created', 'adopted')),
            ignored_base  TEXT,
            PRIMARY KEY (group_id, entity_id, member_id),
            FOREIGN KEY (group_id, entity_id) REFERENCES entities (group_id, entity_id) ON DELETE CASCADE,
            CHECK ((item_id IS NOT NULL) = (item_id IS NOT NULL AND version IS NOT NULL
                                         AND content_hash IS NOT NULL AND ownership IS NOT NULL))
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX replicas_by_item ON replicas (group_id, member_id, item_id);

        CREATE TABLE foreign_items (
            group_id   TEXT NOT NULL,
            member_id  TEXT NOT NULL,
            item_id    TEXT NOT NULL,
            version    TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id, item_id)
        ) WITHOUT ROWID;

        CREATE TABLE sync_tokens (
            group_id   TEXT NOT NULL,
            member_id  TEXT NOT NULL,
            token      TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id)
        ) WITHOUT ROWID;

        CREATE TABLE member_status (
            group_id     TEXT NOT NULL,
            member_id    TEXT NOT NULL,
            initialized  INTEGER NOT NULL,
            last_sync    TEXT,
            last_error   TEXT,
            PRIMARY KEY (group_id, member_id)
        ) WITHOUT ROWID;

        CREATE TABLE pending_creates (
            group_id     TEXT NOT NULL,
            entity_id    TEXT NOT NULL,
            member_id    TEXT NOT NULL,
            origin       TEXT NOT NULL,
            recorded_at  TEXT NOT NULL,
            PRIMARY KEY (group_id, entity_id, member_id)
        ) WITHOUT ROWID;
        CREATE INDEX pending_creates_by_member ON pending_creates (group_id, member_id);

        CREATE TABLE conflicts (
            seq          INTEGER NOT NULL PRIMARY KEY,
            group_id     TEXT NOT NULL,
            entity_id    TEXT NOT NULL,
            field        TEXT NOT NULL,
            recorded_at  TEXT NOT NULL,
            record       TEXT NOT NULL
        );
        CREATE INDEX conflicts_by_group ON conflicts (group_id, seq);
    ",
    },
    Migration {
        version: 2,
        description: "pending creates keyed by member first",
        // The intents of one folder's batch are written and cleared together, in entity order:
        // keyed member first, they land on a few neighbouring pages instead of one page each
        // (the write-ahead log then copies far fewer pages per commit).
        sql: "
        CREATE TABLE pending_creates_by_folder (
            group_id     TEXT NOT NULL,
            member_id    TEXT NOT NULL,
            entity_id    TEXT NOT NULL,
            origin       TEXT NOT NULL,
            recorded_at  TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id, entity_id)
        ) WITHOUT ROWID;
        INSERT INTO pending_creates_by_folder (group_id, member_id, entity_id, origin, recorded_at)
            SELECT group_id, member_id, entity_id, origin, recorded_at FROM pending_creates;
        DROP TABLE pending_creates;
        ALTER TABLE pending_creates_by_folder RENAME TO pending_creates;
    ",
    },
    Migration {
        version: 3,
        description: "replicas keyed by member first",
        // A pass writes one folder's copies together, in entity order. Keyed entity first, each
        // copy landed on a page of its own (the entity's copies in every folder share a page),
        // and every commit wrote as many pages to the log as it wrote copies; keyed folder first,
        // a batch of copies fills a few neighbouring pages. The foreign key to `entities` goes
        // with it: its cascade needs an index keyed by entity, which would scatter the writes
        // again. The store deletes an entity's replicas itself (see `RemoveEntity`).
        sql: "
        CREATE TABLE replicas_by_folder (
            group_id      TEXT NOT NULL,
            member_id     TEXT NOT NULL,
            entity_id     TEXT NOT NULL,
            slot          TEXT NOT NULL CHECK (slot IN ('present', 'opted_out')),
            item_id       TEXT,
            version       TEXT,
            content_hash  TEXT,
            ownership     TEXT CHECK (ownership IN ('created', 'adopted')),
            ignored_base  TEXT,
            PRIMARY KEY (group_id, member_id, entity_id),
            CHECK ((item_id IS NOT NULL) = (item_id IS NOT NULL AND version IS NOT NULL
                                         AND content_hash IS NOT NULL AND ownership IS NOT NULL))
        ) WITHOUT ROWID;
        INSERT INTO replicas_by_folder
            (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership, ignored_base)
            SELECT group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership, ignored_base
            FROM replicas;
        DROP TABLE replicas;
        ALTER TABLE replicas_by_folder RENAME TO replicas;
        CREATE UNIQUE INDEX replicas_by_item ON replicas (group_id, member_id, item_id);
    ",
    },
    Migration {
        version: 4,
        description: "create intents stored by batch",
        // A fan-out records an intent for every copy before its request and clears it after the
        // answer: two row writes per copy, about a third of the store's work for a copy. The
        // intents one transaction records in a folder now share a row (a JSON array of entity,
        // origin stamp and time), and clearing them rewrites or deletes that row.
        sql: "
        CREATE TABLE pending_batches (
            group_id   TEXT NOT NULL,
            member_id  TEXT NOT NULL,
            batch      INTEGER NOT NULL,
            intents    TEXT NOT NULL,
            PRIMARY KEY (group_id, member_id, batch)
        ) WITHOUT ROWID;
        INSERT INTO pending_batches (group_id, member_id, batch, intents)
            SELECT group_id, member_id, 1, json_group_array(json_array(entity_id, origin, recorded_at))
            FROM pending_creates GROUP BY group_id, member_id;
        DROP TABLE pending_creates;
    ",
    },
];

/// A [`StateStore`] in a SQLite database file.
///
/// Cloning is cheap and shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Where the database lives, for error messages (`:memory:` for an in-memory one).
    location: Arc<str>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path: PathBuf = path.as_ref().to_owned();
        let location: Arc<str> = path.display().to_string().into();
        let loc = location.clone();
        let conn = blocking(move || {
            let conn = Connection::open(&path).map_err(|e| Error::state(format!("cannot open {loc}"), e))?;
            prepare(conn, &loc)
        })
        .await?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), location })
    }

    /// A private in-memory database (gone when the store is dropped): for tests and dry runs
    /// that want SQLite's exact behavior.
    pub async fn open_in_memory() -> Result<Self> {
        let location: Arc<str> = ":memory:".into();
        let loc = location.clone();
        let conn = blocking(move || {
            let conn =
                Connection::open_in_memory().map_err(|e| Error::state("cannot open an in-memory database", e))?;
            prepare(conn, &loc)
        })
        .await?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), location })
    }

    /// The schema version of the open database (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        self.with_conn(|conn, loc| schema_version(conn, loc)).await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let location = self.location.clone();
        blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::State {
                message: format!("state database {location}: connection lock poisoned by an earlier panic"),
                source: None,
            })?;
            f(&mut guard, &location)
        })
        .await
    }

    /// Runs a read of several statements in one (deferred) transaction, so that it sees one
    /// consistent state even while another process writes to the same file.
    async fn read_consistent<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.with_conn(move |conn, location| {
            let tx = conn
                .transaction()
                .map_err(|e| Error::state(format!("cannot start a read of state database {location}"), e))?;
            // Read only: dropping the transaction (a rollback) ends it like a commit would.
            f(&tx)
        })
        .await
    }
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::state("state store task failed", e))?
}

/// Sets the connection up (pragmas, migrations).
fn prepare(mut conn: Connection, location: &str) -> Result<Connection> {
    let pragma = |e| Error::state(format!("cannot configure state database {location}"), e);
    // Wait for another connection's write (another process on the same file) rather than fail.
    let busy_timeout = std::time::Duration::from_secs(5);
    conn.busy_timeout(busy_timeout).map_err(pragma)?;
    // WAL: readers do not block the writer and a commit is one append. An in-memory database
    // answers "memory", which is fine; a file system without shared memory (some network
    // shares) keeps the rollback journal, which is correct but slower. Switching a new file to
    // WAL while another connection migrates it answers "busy" at once (SQLite does not wait
    // there, to avoid a deadlock), so the switch is retried within the busy timeout.
    let deadline = std::time::Instant::now() + busy_timeout;
    let mode = loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.map_err(pragma)?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(database = location, journal_mode = %mode, "state database could not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(pragma)?;
    // After a large transaction (an initial sync) the WAL file shrinks back to this size at the
    // next checkpoint instead of keeping its peak size on disk.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024).map_err(pragma)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(pragma)?;
    // 32 MiB of page cache (the default is 2 MiB): the replica indexes of a large group stay in
    // memory instead of being read back from the file for every write.
    conn.pragma_update(None, "cache_size", -32 * 1024).map_err(pragma)?;
    // Checkpoint after 8,192 pages of log (32 MiB) instead of SQLite's 1,000: a fan-out writes
    // replicas all over the file, and a page written many times between two checkpoints is
    // copied back once (the checkpoints cost more than the commits with the default).
    conn.pragma_update(None, "wal_autocheckpoint", 8192).map_err(pragma)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn, location)?;
    Ok(conn)
}

fn schema_version(conn: &Connection, location: &str) -> Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |row| row.get(0))
        .map_err(|e| Error::state(format!("cannot read the schema version of state database {location}"), e))
}

/// Applies the migrations the database has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection, location: &str) -> Result<()> {
    let failed = |what: String| move |e| Error::state(format!("state database {location}: {what}"), e);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version      INTEGER NOT NULL PRIMARY KEY,
            description  TEXT NOT NULL,
            applied_at   TEXT NOT NULL
        )",
    )
    .map_err(failed("cannot create the migrations table".into()))?;
    let current = schema_version(conn, location)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(Error::State {
            message: format!(
                "state database {location} has schema version {current}, newer than this library's {latest}: \
                 upgrade the library (the database is left untouched)"
            ),
            source: None,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let what = || format!("migration {} ({})", migration.version, migration.description);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(format!("cannot start {}", what())))?;
        // Another process may have migrated since we looked.
        if schema_version(&tx, location)? >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(failed(format!("{} failed", what())))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![migration.version, migration.description, timestamp(&Utc::now())],
        )
        .map_err(failed(format!("cannot record {}", what())))?;
        tx.commit().map_err(failed(format!("cannot commit {}", what())))?;
        tracing::info!(database = location, version = migration.version, "state schema migrated");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The statements that look things up (each must be an index search: see the tests)

/// A group's conflict records, oldest first.
const CONFLICTS: &str = "SELECT record FROM conflicts WHERE group_id = ?1 ORDER BY seq";

/// A folder's sync token.
const TOKEN: &str = "SELECT token FROM sync_tokens WHERE group_id = ?1 AND member_id = ?2";

/// The entities carrying a match key.
const BY_MATCH_KEY: &str = "SELECT entity_id FROM entities WHERE group_id = ?1 AND match_key = ?2 ORDER BY entity_id";

/// The first page of entity ids.
const ENTITY_IDS_FIRST: &str = "SELECT entity_id FROM entities WHERE group_id = ?1 ORDER BY entity_id LIMIT ?2";

/// A page of entity ids after a given one.
const ENTITY_IDS_AFTER: &str =
    "SELECT entity_id FROM entities WHERE group_id = ?1 AND entity_id > ?2 ORDER BY entity_id LIMIT ?3";

/// An entity's base and match key.
const LOAD_ENTITY: &str = "SELECT base, match_key FROM entities WHERE group_id = ?1 AND entity_id = ?2";

/// The entity whose replica an item of a folder is.
const OWNER_OF_ITEM: &str = "SELECT entity_id FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND item_id = ?3";

/// Prefixes a statement with `folders`: the folders holding replicas in group `?1`.
///
/// Replicas are keyed folder first (a pass writes a folder's copies together), so the copies of
/// one entity are found folder by folder. `folders` lists the folders by skipping through the
/// primary key, one search per folder, instead of reading every replica of the group: a group
/// has hundreds of folders and may have millions of replicas.
macro_rules! with_folders {
    ($sql:literal) => {
        concat!(
            "WITH RECURSIVE folders(member_id) AS MATERIALIZED (
                SELECT (SELECT MIN(member_id) FROM replicas WHERE group_id = ?1)
                UNION ALL
                SELECT (SELECT MIN(r.member_id) FROM replicas r
                        WHERE r.group_id = ?1 AND r.member_id > folders.member_id)
                FROM folders WHERE folders.member_id IS NOT NULL
            ) ",
            $sql
        )
    };
}

/// The folders holding replicas in a group.
const FOLDERS: &str = with_folders!("SELECT member_id FROM folders WHERE member_id IS NOT NULL");

/// The tombstone rule after a replica is removed: the entity goes if it has no base and no copy.
const TOMBSTONE_GONE: &str = with_folders!(
    "DELETE FROM entities WHERE group_id = ?1 AND entity_id = ?2 AND base IS NULL
      AND NOT EXISTS (SELECT 1 FROM folders f JOIN replicas r
                        ON r.group_id = ?1 AND r.member_id = f.member_id AND r.entity_id = ?2
                      WHERE r.item_id IS NOT NULL)"
);

/// The tombstone rule when a folder leaves: tombstones whose only copies were there go.
const MEMBER_TOMBSTONES_GONE: &str = with_folders!(
    "DELETE FROM entities WHERE group_id = ?1 AND base IS NULL
      AND entity_id IN (SELECT r.entity_id FROM replicas r WHERE r.group_id = ?1 AND r.member_id = ?2)
      AND NOT EXISTS (SELECT 1 FROM folders f JOIN replicas r
                        ON r.group_id = ?1 AND r.member_id = f.member_id AND r.entity_id = entities.entity_id
                      WHERE f.member_id <> ?2 AND r.item_id IS NOT NULL)"
);

/// An entity leaves with its replicas in every folder.
const REMOVE_ENTITY_REPLICAS: &str = with_folders!(
    "DELETE FROM replicas WHERE group_id = ?1 AND entity_id = ?2
       AND member_id IN (SELECT member_id FROM folders WHERE member_id IS NOT NULL)"
);

/// Whether an entity exists (a replica needs one).
const ENTITY_EXISTS: &str = "SELECT 1 FROM entities WHERE group_id = ?1 AND entity_id = ?2";

/// Whether a folder has any item recorded as a user's own.
const HAS_FOREIGN_ITEMS: &str = "SELECT EXISTS (SELECT 1 FROM foreign_items WHERE group_id = ?1 AND member_id = ?2)";

/// A folder's item stops being a user's own (it became a replica, or it went).
const REMOVE_FOREIGN: &str = "DELETE FROM foreign_items WHERE group_id = ?1 AND member_id = ?2 AND item_id = ?3";

/// A replica, written over the folder's slot of the entity.
const PUT_REPLICA: &str = "
    INSERT INTO replicas
        (group_id, entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (group_id, member_id, entity_id) DO UPDATE SET
        slot = excluded.slot, item_id = excluded.item_id, version = excluded.version,
        content_hash = excluded.content_hash, ownership = excluded.ownership,
        ignored_base = excluded.ignored_base";

/// A folder's batches of create intents (see [`flush_intents`]).
const FOLDER_PENDING_BATCHES: &str =
    "SELECT batch, intents FROM pending_batches WHERE group_id = ?1 AND member_id = ?2";

/// A new batch of create intents.
const PUT_PENDING_BATCH: &str =
    "INSERT INTO pending_batches (group_id, member_id, batch, intents) VALUES (?1, ?2, ?3, ?4)";

/// A batch of create intents some of which were cleared or recorded again.
const REWRITE_PENDING_BATCH: &str =
    "UPDATE pending_batches SET intents = ?4 WHERE group_id = ?1 AND member_id = ?2 AND batch = ?3";

/// A batch of create intents all of which were cleared or recorded again.
const REMOVE_PENDING_BATCH: &str = "DELETE FROM pending_batches WHERE group_id = ?1 AND member_id = ?2 AND batch = ?3";

/// How many entities lie between two ids (both included): tells whether reading a folder's
/// replicas over that span reads mostly the entities asked for.
const ENTITY_SPAN: &str = "SELECT COUNT(*) FROM entities WHERE group_id = ?1 AND entity_id BETWEEN ?2 AND ?3";

/// The entities between two ids (both included), at most `?4` of them.
const ENTITIES_BETWEEN: &str =
    "SELECT entity_id FROM entities WHERE group_id = ?1 AND entity_id BETWEEN ?2 AND ?3 LIMIT ?4";

/// A folder's slots of the entities between two ids (both included).
const FOLDER_REPLICAS_BETWEEN: &str = "
    SELECT entity_id, slot, item_id, version, content_hash, ownership, ignored_base
    FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND entity_id BETWEEN ?3 AND ?4";

/// A folder's slot of one entity.
const FOLDER_REPLICA: &str = "
    SELECT entity_id, slot, item_id, version, content_hash, ownership, ignored_base
    FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND entity_id = ?3";

/// Every folder a group's state mentions.
const MEMBERS: &str = with_folders!(
    "SELECT member_id FROM folders WHERE member_id IS NOT NULL
    UNION SELECT member_id FROM foreign_items WHERE group_id = ?1
    UNION SELECT member_id FROM sync_tokens WHERE group_id = ?1
    UNION SELECT member_id FROM member_status WHERE group_id = ?1
    UNION SELECT member_id FROM pending_batches WHERE group_id = ?1
    ORDER BY 1"
);

/// How many copies a folder holds.
const REPLICA_COUNT: &str =
    "SELECT COUNT(*) FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND item_id IS NOT NULL";

/// A folder's bookkeeping.
const MEMBER_STATUS: &str =
    "SELECT initialized, last_sync, last_error FROM member_status WHERE group_id = ?1 AND member_id = ?2";

/// A group's create intents, by batch.
const PENDING_CREATES: &str = "SELECT member_id, intents FROM pending_batches WHERE group_id = ?1";

/// What the store knows about one item id of a folder.
const LOOKUP_ITEM: &str = "
    SELECT item_id, version, entity_id FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND item_id = ?3
    UNION ALL
    SELECT item_id, version, NULL FROM foreign_items WHERE group_id = ?1 AND member_id = ?2 AND item_id = ?3";

/// Every item id the store knows in a folder.
const KNOWN_ITEMS: &str = "
    SELECT item_id, version, entity_id FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND item_id IS NOT NULL
    UNION ALL
    SELECT item_id, version, NULL FROM foreign_items WHERE group_id = ?1 AND member_id = ?2
    ORDER BY 1";

/// Every lookup statement, for the test that checks each is an index search.
#[cfg(test)]
const LOOKUPS: &[(&str, &str)] = &[
    ("CONFLICTS", CONFLICTS),
    ("TOKEN", TOKEN),
    ("BY_MATCH_KEY", BY_MATCH_KEY),
    ("ENTITY_IDS_FIRST", ENTITY_IDS_FIRST),
    ("ENTITY_IDS_AFTER", ENTITY_IDS_AFTER),
    ("LOAD_ENTITY", LOAD_ENTITY),
    ("OWNER_OF_ITEM", OWNER_OF_ITEM),
    ("FOLDERS", FOLDERS),
    ("TOMBSTONE_GONE", TOMBSTONE_GONE),
    ("MEMBER_TOMBSTONES_GONE", MEMBER_TOMBSTONES_GONE),
    ("REMOVE_ENTITY_REPLICAS", REMOVE_ENTITY_REPLICAS),
    ("ENTITY_EXISTS", ENTITY_EXISTS),
    ("HAS_FOREIGN_ITEMS", HAS_FOREIGN_ITEMS),
    ("REMOVE_FOREIGN", REMOVE_FOREIGN),
    ("FOLDER_PENDING_BATCHES", FOLDER_PENDING_BATCHES),
    ("REWRITE_PENDING_BATCH", REWRITE_PENDING_BATCH),
    ("REMOVE_PENDING_BATCH", REMOVE_PENDING_BATCH),
    ("ENTITY_SPAN", ENTITY_SPAN),
    ("ENTITIES_BETWEEN", ENTITIES_BETWEEN),
    ("FOLDER_REPLICAS_BETWEEN", FOLDER_REPLICAS_BETWEEN),
    ("FOLDER_REPLICA", FOLDER_REPLICA),
    ("MEMBERS", MEMBERS),
    ("REPLICA_COUNT", REPLICA_COUNT),
    ("MEMBER_STATUS", MEMBER_STATUS),
    ("PENDING_CREATES", PENDING_CREATES),
    ("LOOKUP_ITEM", LOOKUP_ITEM),
    ("KNOWN_ITEMS", KNOWN_ITEMS),
];

// ---------------------------------------------------------------------------------------------
// Conversions between records and columns

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::State { message: format!("state database holds an unreadable {what}"), source: None }
}

fn parse_time(s: &str, what: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt(format!("{what} {s:?}")))
}

fn parse_hash(s: &str, what: &str) -> Result<ContentHash> {
    ContentHash::from_hex(s).ok_or_else(|| corrupt(format!("{what} {s:?}")))
}

fn ownership_name(o: Ownership) -> &'static str {
    match o {
        Ownership::Created => "created",
        Ownership::Adopted => "adopted",
    }
}

fn parse_ownership(s: &str) -> Result<Ownership> {
    match s {
        "created" => Ok(Ownership::Created),
        "adopted" => Ok(Ownership::Adopted),
        other => Err(corrupt(format!("ownership {other:?}"))),
    }
}

/// A `replicas` row as stored (its keys aside).
struct ReplicaRow {
    slot: String,
    item_id: Option<String>,
    version: Option<String>,
    hash: Option<String>,
    ownership: Option<String>,
    ignored_base: Option<String>,
}

impl ReplicaRow {
    fn into_slot(self, entity: &str, member: &MemberId) -> Result<ReplicaSlot> {
        Ok(match (self.slot.as_str(), self.item_id, self.version, self.hash, self.ownership) {
            ("opted_out", ..) => ReplicaSlot::OptedOut,
            ("present", Some(item_id), Some(version), Some(hash), Some(ownership)) => {
                ReplicaSlot::Present(ReplicaRecord {
                    item_id: ItemId::new(item_id),
                    version: Version::new(version),
                    hash: parse_hash(&hash, "content hash")?,
                    ownership: parse_ownership(&ownership)?,
                    ignored_base: self.ignored_base.map(|h| parse_hash(&h, "ignored base hash")).transpose()?,
                })
            }
            (slot, ..) => return Err(corrupt(format!("replica slot {slot:?} of entity {entity} in member {member}"))),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

/// What a write does, for error messages.
fn describe(write: &StateWrite) -> String {
    match write {
        StateWrite::PutEntity { id, .. } => format!("put entity {id}"),
        StateWrite::RemoveEntity { id } => format!("remove entity {id}"),
        StateWrite::PutReplica { entity, member, .. } => format!("put replica of entity {entity} in member {member}"),
        StateWrite::RemoveReplica { entity, member } => {
            format!("remove replica of entity {entity} in member {member}")
        }
        StateWrite::PutForeign { member, id, .. } => format!("record item {id} in member {member} as a user's own"),
        StateWrite::RemoveForeign { member, id } => format!("forget user's own item {id} in member {member}"),
        StateWrite::SetToken { member, .. } => format!("set sync token of member {member}"),
        StateWrite::SetMemberStatus { member, .. } => format!("set status of member {member}"),
        StateWrite::PutPending(p) => format!("record create intent of entity {} in member {}", p.entity, p.member),
        StateWrite::RemovePending { entity, member } => {
            format!("clear create intent of entity {entity} in member {member}")
        }
        StateWrite::AddConflict(c) => format!("record conflict on field {} of entity {}", c.field, c.entity),
        StateWrite::RemoveMember { member } => format!("remove member {member}"),
    }
}

/// A refused write (the store's rules, not SQLite, said no).
fn refused(message: String) -> Error {
    Error::State { message, source: None }
}

fn apply_tx(conn: &mut Connection, location: &str, group: &GroupId, tx: StateTransaction) -> Result<()> {
    let sql = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| Error::state(format!("cannot start a transaction for group {group} in {location}"), e))?;
    let mut statements = TxStatements::new(&sql);
    statements
        .check_entities_in_bulk(group.as_str(), &tx.writes)
        .map_err(|e| Error::state(format!("cannot read the entities of group {group}"), e))?;
    for write in &tx.writes {
        apply_write(&sql, &mut statements, group, write)
            .map_err(|e| Error::state(format!("cannot {} in group {group}", describe(write)), e))
            .and_then(|refusal| match refusal {
                Some(message) => Err(refused(message)),
                None => Ok(()),
            })?;
    }
    flush_intents(&sql, &mut statements, group.as_str())
        .map_err(|e| Error::state(format!("cannot record create intents in group {group}"), e))?;
    drop(statements);
    // Dropping the transaction without commit (on any error above) rolls it back.
    sql.commit().map_err(|e| Error::state(format!("cannot commit a transaction for group {group} in {location}"), e))
}

/// The statements a transaction runs for every copy, prepared once per transaction, and what it
/// learned about folders along the way.
///
/// A fan-out writes millions of copies, each with a few statements. Fetched from the
/// connection's statement cache one by one, every statement hashed its whole SQL text, which cost
/// about a tenth of the state writes; and most folders have no item of a user's own, so the
/// transaction asks once per folder instead of deleting one for every copy.
struct TxStatements<'c> {
    conn: &'c Connection,
    prepared: [Option<rusqlite::CachedStatement<'c>>; Frequent::ALL.len()],
    /// Folders (member ids) with or without items of a user's own, as far as this transaction knows.
    has_foreign_items: std::collections::HashMap<String, bool>,
    /// The create intents this transaction recorded (`Some`) or cleared (`None`), by folder and
    /// entity; written as batches when the transaction ends (see [`flush_intents`]).
    intents: BTreeMap<String, BTreeMap<String, Option<IntentColumns>>>,
    /// The last time written as text, with its text: a window's intents share their time.
    last_time: Option<(DateTime<Utc>, String)>,
    /// The entities known to exist, when the transaction read them in bulk (see
    /// [`TxStatements::check_entities_in_bulk`]); otherwise each replica's entity is looked up.
    existing: Option<HashSet<String>>,
}

/// From how many replicas on a transaction reads their entities in bulk.
const BULK_ENTITY_CHECK: usize = 32;

/// The statements [`TxStatements`] holds.
#[derive(Debug, Clone, Copy)]
enum Frequent {
    EntityExists,
    HasForeignItems,
    RemoveForeign,
    PutReplica,
}

impl Frequent {
    const ALL: [Frequent; 4] =
        [Frequent::EntityExists, Frequent::HasForeignItems, Frequent::RemoveForeign, Frequent::PutReplica];

    fn sql(self) -> &'static str {
        match self {
            Frequent::EntityExists => ENTITY_EXISTS,
            Frequent::HasForeignItems => HAS_FOREIGN_ITEMS,
            Frequent::RemoveForeign => REMOVE_FOREIGN,
            Frequent::PutReplica => PUT_REPLICA,
        }
    }
}

impl<'c> TxStatements<'c> {
    fn new(conn: &'c Connection) -> Self {
        TxStatements {
            conn,
            prepared: Default::default(),
            has_foreign_items: Default::default(),
            intents: BTreeMap::new(),
            last_time: None,
            existing: None,
        }
    }

    /// The prepared statement `which`.
    fn get(&mut self, which: Frequent) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let entry = &mut self.prepared[which as usize];
        let statement = match entry.take() {
            Some(statement) => statement,
            None => self.conn.prepare_cached(which.sql())?,
        };
        Ok(entry.insert(statement))
    }

    /// Whether `member` of `group` may have an item recorded as a user's own.
    fn has_foreign_items(&mut self, group: &str, member: &MemberId) -> rusqlite::Result<bool> {
        if let Some(known) = self.has_foreign_items.get(member.as_str()) {
            return Ok(*known);
        }
        let any: bool =
            self.get(Frequent::HasForeignItems)?.query_row(params![group, member.as_str()], |row| row.get(0))?;
        self.has_foreign_items.insert(member.as_str().to_owned(), any);
        Ok(any)
    }

    /// Reads the entities of many replicas at once, before the transaction's writes.
    ///
    /// Every replica needs its entity, and looking it up per replica was about a sixth of the
    /// store's work for a copy in a fan-out. A fan-out's window puts hundreds of replicas of
    /// neighbouring entities (a folder's copies are written in entity order), so when the span
    /// between the lowest and the highest of them holds few other entities, one range read
    /// answers for all. Only for transactions without writes that remove entities (removing an
    /// entity, a replica, which may take a tombstoned entity with it, or a folder): then an
    /// entity that exists now still exists when its replica is written. An entity not in the set
    /// (one the transaction itself adds, say) is looked up as before.
    fn check_entities_in_bulk(&mut self, group: &str, writes: &[StateWrite]) -> rusqlite::Result<()> {
        let removes = writes.iter().any(|w| {
            matches!(
                w,
                StateWrite::RemoveEntity { .. } | StateWrite::RemoveReplica { .. } | StateWrite::RemoveMember { .. }
            )
        });
        if removes {
            return Ok(());
        }
        let mut replicas = 0;
        let (mut low, mut high): (Option<&str>, Option<&str>) = (None, None);
        for write in writes {
            if let StateWrite::PutReplica { entity, .. } = write {
                replicas += 1;
                let id = entity.as_str();
                low = Some(low.map_or(id, |l| l.min(id)));
                high = Some(high.map_or(id, |h| h.max(id)));
            }
        }
        let (Some(low), Some(high)) = (low, high) else { return Ok(()) };
        if replicas < BULK_ENTITY_CHECK {
            return Ok(());
        }
        // One read of the span, stopped as soon as it holds more than twice the entities asked
        // for (a sparse span: the replicas' entities are then looked up one by one).
        let most = replicas.saturating_mul(2);
        let limit = i64::try_from(most.saturating_add(1)).unwrap_or(i64::MAX);
        let existing = self
            .conn
            .prepare_cached(ENTITIES_BETWEEN)?
            .query_map(params![group, low, high, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<HashSet<String>>>()?;
        if existing.len() <= most {
            self.existing = Some(existing);
        }
        Ok(())
    }

    /// Whether `entity` exists, as far as this transaction's writes go.
    fn entity_exists(&mut self, group: &str, entity: &EntityId) -> rusqlite::Result<bool> {
        if let Some(existing) = &self.existing
            && existing.contains(entity.as_str())
        {
            return Ok(true);
        }
        Ok(self
            .get(Frequent::EntityExists)?
            .query_row(params![group, entity.as_str()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// `t` as stored.
    fn timestamp(&mut self, t: &DateTime<Utc>) -> String {
        match &self.last_time {
            Some((last, text)) if last == t => text.clone(),
            _ => {
                let text = timestamp(t);
                self.last_time = Some((*t, text.clone()));
                text
            }
        }
    }
}

/// A create intent's origin stamp (`None` for the group's own stamp of the entity) and time, as
/// stored.
type IntentColumns = (Option<String>, String);

/// One stored create intent: entity id, origin stamp (`None` for the group's own stamp of the
/// entity, which is what the engine records) and the time it was recorded.
type StoredIntent = (String, Option<String>, String);

/// Writes the create intents a transaction recorded and cleared.
///
/// A folder's intents live in batches, one row each. The intents recorded in one transaction
/// become a new batch; an intent cleared or recorded again leaves the batch it was in, which is
/// rewritten, or deleted once empty. The executor's windows make this one new row and one
/// deleted row per window of a folder, instead of two row writes per copy. A folder has few
/// batches (the windows in flight, and those of creates whose outcome is unknown after a
/// failure), so reading them all here is cheap.
fn flush_intents(tx: &Transaction<'_>, statements: &mut TxStatements<'_>, group: &str) -> rusqlite::Result<()> {
    for (member, changes) in std::mem::take(&mut statements.intents) {
        let batches: Vec<(i64, String)> = tx
            .prepare_cached(FOLDER_PENDING_BATCHES)?
            .query_map(params![group, member], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut last = 0;
        for (batch, text) in batches {
            last = last.max(batch);
            let intents: Vec<StoredIntent> = serde_json::from_str(&text).map_err(json_err)?;
            let kept: Vec<&StoredIntent> =
                intents.iter().filter(|(entity, ..)| !changes.contains_key(entity)).collect();
            if kept.len() == intents.len() {
                continue;
            }
            if kept.is_empty() {
                tx.prepare_cached(REMOVE_PENDING_BATCH)?.execute(params![group, member, batch])?;
            } else {
                let text = serde_json::to_string(&kept).map_err(json_err)?;
                tx.prepare_cached(REWRITE_PENDING_BATCH)?.execute(params![group, member, batch, text])?;
            }
        }
        let recorded: Vec<(&String, &Option<String>, &String)> = changes
            .iter()
            .filter_map(|(entity, intent)| intent.as_ref().map(|(origin, at)| (entity, origin, at)))
            .collect();
        if !recorded.is_empty() {
            let text = serde_json::to_string(&recorded).map_err(json_err)?;
            tx.prepare_cached(PUT_PENDING_BATCH)?.execute(params![group, member, last + 1, text])?;
        }
    }
    Ok(())
}

/// Applies one write. `Ok(Some(reason))` when the store's rules refuse it.
fn apply_write(
    tx: &Transaction<'_>,
    statements: &mut TxStatements<'_>,
    group: &GroupId,
    write: &StateWrite,
) -> rusqlite::Result<Option<String>> {
    let g = group.as_str();
    match write {
        StateWrite::PutEntity { id, base, match_key } => {
            let base = base.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
            tx.prepare_cached(
                "INSERT INTO entities (group_id, entity_id, base, match_key) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (group_id, entity_id) DO UPDATE SET base = excluded.base, match_key = excluded.match_key",
            )?
            .execute(params![g, id.as_str(), base, match_key])?;
        }
        StateWrite::RemoveEntity { id } => {
            tx.prepare_cached(REMOVE_ENTITY_REPLICAS)?.execute(params![g, id.as_str()])?;
            tx.prepare_cached("DELETE FROM entities WHERE group_id = ?1 AND entity_id = ?2")?
                .execute(params![g, id.as_str()])?;
        }
        StateWrite::PutReplica { entity, member, slot } => {
            let (slot_name, replica) = match &slot {
                ReplicaSlot::Present(r) => ("present", Some(r)),
                ReplicaSlot::OptedOut => ("opted_out", None),
            };
            if !statements.entity_exists(g, entity)? {
                return Ok(Some(format!(
                    "cannot put a replica of unknown entity {entity} in member {member} of group {group}"
                )));
            }
            if let Some(r) = replica
                && statements.has_foreign_items(g, member)?
            {
                // The item joins the group: it is no longer a user's own item.
                statements.get(Frequent::RemoveForeign)?.execute(params![g, member.as_str(), r.item_id.as_str()])?;
            }
            // That an item is the replica of one entity only is the unique index's rule: SQLite
            // checks it as it writes, instead of a lookup before every write (a fan-out puts
            // millions of replicas).
            let written = statements.get(Frequent::PutReplica)?.execute(params![
                g,
                entity.as_str(),
                member.as_str(),
                slot_name,
                replica.map(|r| r.item_id.as_str()),
                replica.map(|r| r.version.as_str()),
                replica.map(|r| r.hash.to_hex()),
                replica.map(|r| ownership_name(r.ownership)),
                replica.and_then(|r| r.ignored_base.map(|h| h.to_hex())),
            ]);
            if let Err(e) = written {
                return match (constraint(&e), replica) {
                    (Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE), Some(r)) => {
                        let other: Option<String> = tx
                            .prepare_cached(OWNER_OF_ITEM)?
                            .query_row(params![g, member.as_str(), r.item_id.as_str()], |row| row.get(0))
                            .optional()?;
                        Ok(Some(format!(
                            "cannot put item {} as replica of entity {entity} in member {member} of group {group}: \
                             it is already the replica of entity {}",
                            r.item_id,
                            other.as_deref().unwrap_or("another entity")
                        )))
                    }
                    _ => Err(e),
                };
            }
        }
        StateWrite::RemoveReplica { entity, member } => {
            let removed = tx
                .prepare_cached("DELETE FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND entity_id = ?3")?
                .execute(params![g, member.as_str(), entity.as_str()])?;
            if removed > 0 {
                // The tombstone rule: an entity being deleted goes with its last copy.
                tx.prepare_cached(TOMBSTONE_GONE)?.execute(params![g, entity.as_str()])?;
            }
        }
        StateWrite::PutForeign { member, id, version } => {
            let owner: Option<String> = tx
                .prepare_cached(OWNER_OF_ITEM)?
                .query_row(params![g, member.as_str(), id.as_str()], |row| row.get(0))
                .optional()?;
            if let Some(entity) = owner {
                return Ok(Some(format!(
                    "cannot record item {id} in member {member} of group {group} as a user's own item: it is the \
                     replica of entity {entity} (remove the replica first)"
                )));
            }
            tx.prepare_cached(
                "INSERT INTO foreign_items (group_id, member_id, item_id, version) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (group_id, member_id, item_id) DO UPDATE SET version = excluded.version",
            )?
            .execute(params![g, member.as_str(), id.as_str(), version.as_str()])?;
            statements.has_foreign_items.insert(member.as_str().to_owned(), true);
        }
        StateWrite::RemoveForeign { member, id } => {
            statements.get(Frequent::RemoveForeign)?.execute(params![g, member.as_str(), id.as_str()])?;
        }
        StateWrite::SetToken { member, token: Some(token) } => {
            tx.prepare_cached(
                "INSERT INTO sync_tokens (group_id, member_id, token) VALUES (?1, ?2, ?3)
                 ON CONFLICT (group_id, member_id) DO UPDATE SET token = excluded.token",
            )?
            .execute(params![g, member.as_str(), token.as_str()])?;
        }
        StateWrite::SetToken { member, token: None } => {
            tx.prepare_cached("DELETE FROM sync_tokens WHERE group_id = ?1 AND member_id = ?2")?
                .execute(params![g, member.as_str()])?;
        }
        StateWrite::SetMemberStatus { member, status } => {
            tx.prepare_cached(
                "INSERT INTO member_status (group_id, member_id, initialized, last_sync, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (group_id, member_id) DO UPDATE SET initialized = excluded.initialized,
                    last_sync = excluded.last_sync, last_error = excluded.last_error",
            )?
            .execute(params![
                g,
                member.as_str(),
                i64::from(status.initialized),
                status.last_sync.as_ref().map(timestamp),
                status.last_error
            ])?;
        }
        StateWrite::PutPending(p) => {
            let own = p.origin.group == *group && p.origin.entity == p.entity;
            let origin = (!own).then(|| p.origin.encode());
            let at = statements.timestamp(&p.recorded_at);
            statements
                .intents
                .entry(p.member.as_str().to_owned())
                .or_default()
                .insert(p.entity.as_str().to_owned(), Some((origin, at)));
        }
        StateWrite::RemovePending { entity, member } => {
            statements.intents.entry(member.as_str().to_owned()).or_default().insert(entity.as_str().to_owned(), None);
        }
        StateWrite::AddConflict(c) => {
            let record = serde_json::to_string(&c).map_err(json_err)?;
            tx.prepare_cached(
                "INSERT INTO conflicts (seq, group_id, entity_id, field, recorded_at, record)
                 VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM conflicts), ?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![g, c.entity.as_str(), c.field, timestamp(&c.recorded_at), record])?;
        }
        StateWrite::RemoveMember { member } => {
            let m = member.as_str();
            // Tombstones whose last copy is in this folder go with it (before their slots go,
            // while we can still tell which entities had one here).
            tx.prepare_cached(MEMBER_TOMBSTONES_GONE)?.execute(params![g, m])?;
            statements.intents.remove(m);
            for table in ["replicas", "foreign_items", "sync_tokens", "member_status", "pending_batches"] {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE group_id = ?1 AND member_id = ?2"))?
                    .execute(params![g, m])?;
            }
        }
    }
    Ok(None)
}

/// The extended result code of a constraint violation, if `e` is one.
fn constraint(e: &rusqlite::Error) -> Option<std::os::raw::c_int> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            Some(f.extended_code)
        }
        _ => None,
    }
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

// ---------------------------------------------------------------------------------------------
// Reads

fn read_err(what: String) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| Error::state(format!("cannot read {what}"), e)
}

/// Reads the rows of [`FOLDER_REPLICAS_BETWEEN`] or [`FOLDER_REPLICA`]: entity id and slot columns.
fn folder_replica_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, ReplicaRow)> {
    Ok((
        r.get(0)?,
        ReplicaRow {
            slot: r.get(1)?,
            item_id: r.get(2)?,
            version: r.get(3)?,
            hash: r.get(4)?,
            ownership: r.get(5)?,
            ignored_base: r.get(6)?,
        },
    ))
}

/// One folder's slots of `ids` (entities without a slot there are left out), one search each.
fn folder_slots(
    conn: &Connection,
    group: &GroupId,
    member: &MemberId,
    ids: &[EntityId],
) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
    let what = || format!("slots of {} entities in member {member} of group {group}", ids.len());
    let mut stmt = conn.prepare_cached(FOLDER_REPLICA).map_err(read_err(what()))?;
    let mut out = BTreeMap::new();
    for id in ids {
        let row = stmt
            .query_row(params![group.as_str(), member.as_str(), id.as_str()], folder_replica_row)
            .optional()
            .map_err(read_err(what()))?;
        if let Some((_, row)) = row {
            out.insert(id.clone(), row.into_slot(id.as_str(), member)?);
        }
    }
    Ok(out)
}

/// Loads the records of `ids` (distinct; the missing ones are left out), in the order given.
///
/// Replicas are keyed folder first, so they are read folder by folder: over the span from the
/// lowest to the highest id asked for when the ids fill most of it (a full pass asks for every
/// entity: one sequential read per folder), one entity at a time otherwise (a pass after a few
/// changes asks for a few entities spread over the group).
fn load_entities(conn: &Connection, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>> {
    let g = group.as_str();
    let mut records: Vec<EntityRecord> = Vec::with_capacity(ids.len());
    {
        let mut stmt = conn.prepare_cached(LOAD_ENTITY).map_err(read_err(format!("entities of group {group}")))?;
        for id in ids {
            let what = || format!("entity {id} of group {group}");
            let row: Option<(Option<String>, Option<String>)> = stmt
                .query_row(params![g, id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(read_err(what()))?;
            let Some((base, match_key)) = row else { continue };
            let base: Option<Item> = base
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| Error::state(format!("unreadable base of {}", what()), e))?;
            records.push(EntityRecord { id: id.clone(), base, match_key, replicas: BTreeMap::new() });
        }
    }
    let (Some(low), Some(high)) =
        (records.iter().map(|r| &r.id).min().cloned(), records.iter().map(|r| &r.id).max().cloned())
    else {
        return Ok(records);
    };
    let (low, high) = (low.as_str(), high.as_str());
    let count = records.len();
    let what = || format!("replicas of {count} entities of group {group}");
    let span: i64 = conn
        .prepare_cached(ENTITY_SPAN)
        .and_then(|mut s| s.query_row(params![g, low, high], |r| r.get(0)))
        .map_err(read_err(what()))?;
    let dense = usize::try_from(span).unwrap_or(usize::MAX) <= records.len().saturating_mul(2);
    let folders: Vec<String> = conn
        .prepare_cached(FOLDERS)
        .and_then(|mut s| s.query_map(params![g], |r| r.get(0))?.collect())
        .map_err(read_err(what()))?;
    let index: std::collections::HashMap<String, usize> =
        records.iter().enumerate().map(|(i, r)| (r.id.as_str().to_owned(), i)).collect();
    let found: Vec<EntityId> = records.iter().map(|r| r.id.clone()).collect();
    for folder in folders {
        let member = MemberId::new(folder);
        // Slots by position in `records`.
        let slots: Vec<(usize, ReplicaSlot)> = if dense {
            let rows: Vec<(String, ReplicaRow)> = conn
                .prepare_cached(FOLDER_REPLICAS_BETWEEN)
                .and_then(|mut s| s.query_map(params![g, member.as_str(), low, high], folder_replica_row)?.collect())
                .map_err(read_err(what()))?;
            rows.into_iter()
                // A dense span also holds entities that were not asked for.
                .filter_map(|(entity, row)| index.get(&entity).map(|&i| Ok((i, row.into_slot(&entity, &member)?))))
                .collect::<Result<_>>()?
        } else {
            folder_slots(conn, group, &member, &found)?
                .into_iter()
                .filter_map(|(entity, slot)| index.get(entity.as_str()).map(|&i| (i, slot)))
                .collect()
        };
        for (i, slot) in slots {
            records[i].replicas.insert(member.clone(), slot);
        }
    }
    Ok(records)
}

fn known_item(row: (String, String, Option<String>)) -> KnownItem {
    KnownItem { id: ItemId::new(row.0), version: Version::new(row.1), entity: row.2.map(EntityId::new) }
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn apply(&self, group: &GroupId, tx: StateTransaction) -> Result<()> {
        if tx.is_empty() {
            return Ok(());
        }
        let group = group.clone();
        self.with_conn(move |conn, location| apply_tx(conn, location, &group, tx)).await
    }

    async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>> {
        let group = group.clone();
        let mut seen = HashSet::new();
        let ids: Vec<EntityId> = ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
        self.read_consistent(move |conn| load_entities(conn, &group, &ids)).await
    }

    async fn slots_in(
        &self,
        group: &GroupId,
        member: &MemberId,
        ids: &[EntityId],
    ) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
        let group = group.clone();
        let member = member.clone();
        let ids = ids.to_vec();
        self.read_consistent(move |conn| folder_slots(conn, &group, &member, &ids)).await
    }

    async fn entity_ids(&self, group: &GroupId, after: Option<&EntityId>, limit: usize) -> Result<Vec<EntityId>> {
        let group = group.clone();
        let after = after.cloned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn, _| {
            // Two statements rather than `?2 IS NULL OR ...`, so that both use the primary key
            // as a range.
            let query = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
                conn.prepare_cached(sql).and_then(|mut stmt| {
                    stmt.query_map(params, |r| r.get::<_, String>(0))?.map(|r| r.map(EntityId::new)).collect()
                })
            };
            let ids = match &after {
                Some(after) => query(ENTITY_IDS_AFTER, params![group.as_str(), after.as_str(), limit]),
                None => query(ENTITY_IDS_FIRST, params![group.as_str(), limit]),
            };
            ids.map_err(read_err(format!("entity ids of group {group}")))
        })
        .await
    }

    async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> Result<Vec<(String, EntityId)>> {
        let group = group.clone();
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        self.read_consistent(move |conn| {
            let what = || format!("entities by match key in group {group}");
            let mut stmt = conn.prepare_cached(BY_MATCH_KEY).map_err(read_err(what()))?;
            let mut out = Vec::new();
            for key in keys {
                let ids: Vec<String> = stmt
                    .query_map(params![group.as_str(), key], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(read_err(what()))?;
                out.extend(ids.into_iter().map(|id| (key.clone(), EntityId::new(id))));
            }
            Ok(out)
        })
        .await
    }

    async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> Result<Vec<KnownItem>> {
        let group = group.clone();
        let member = member.clone();
        let mut seen = HashSet::new();
        let ids: Vec<ItemId> = ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
        self.read_consistent(move |conn| {
            let what = || format!("items of member {member} in group {group}");
            let (g, m) = (group.as_str(), member.as_str());
            // Asked for most of the folder (as after creating its copies): one read through
            // the folder's items costs less than a search per id.
            if ids.len() >= 64 {
                let held: i64 = conn
                    .prepare_cached(REPLICA_COUNT)
                    .and_then(|mut s| s.query_row(params![g, m], |r| r.get(0)))
                    .map_err(read_err(what()))?;
                if usize::try_from(held).unwrap_or(usize::MAX) <= ids.len().saturating_mul(2) {
                    let mut all: std::collections::HashMap<String, (String, Option<String>)> = conn
                        .prepare_cached(KNOWN_ITEMS)
                        .and_then(|mut s| {
                            s.query_map(params![g, m], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?.collect()
                        })
                        .map_err(read_err(what()))?;
                    return Ok(ids
                        .iter()
                        .filter_map(|id| {
                            all.remove(id.as_str()).map(|(v, e)| known_item((id.as_str().to_owned(), v, e)))
                        })
                        .collect());
                }
            }
            let mut stmt = conn.prepare_cached(LOOKUP_ITEM).map_err(read_err(what()))?;
            let mut out = Vec::new();
            for id in &ids {
                let found: Option<(String, String, Option<String>)> = stmt
                    .query_row(params![g, m, id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
                    .map_err(read_err(what()))?;
                out.extend(found.map(known_item));
            }
            Ok(out)
        })
        .await
    }

    async fn known_items(&self, group: &GroupId, member: &MemberId) -> Result<Vec<KnownItem>> {
        let group = group.clone();
        let member = member.clone();
        self.with_conn(move |conn, _| {
            let what = || format!("items of member {member} in group {group}");
            let mut stmt = conn.prepare_cached(KNOWN_ITEMS).map_err(read_err(what()))?;
            let items = stmt
                .query_map(params![group.as_str(), member.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.map(|r| r.map(known_item)).collect())
                .map_err(read_err(what()))?;
            Ok(items)
        })
        .await
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let group = group.clone();
        self.with_conn(move |conn, _| {
            conn.prepare_cached(MEMBERS)
                .and_then(|mut s| {
                    s.query_map(params![group.as_str()], |r| r.get::<_, String>(0))?
                        .map(|r| r.map(MemberId::new))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(read_err(format!("members of group {group}")))
        })
        .await
    }

    async fn replica_count(&self, group: &GroupId, member: &MemberId) -> Result<usize> {
        let group = group.clone();
        let member = member.clone();
        self.with_conn(move |conn, _| {
            let count: i64 = conn
                .prepare_cached(REPLICA_COUNT)
                .and_then(|mut s| s.query_row(params![group.as_str(), member.as_str()], |r| r.get(0)))
                .map_err(read_err(format!("replica count of member {member} in group {group}")))?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
        .await
    }

    async fn token(&self, group: &GroupId, member: &MemberId) -> Result<Option<SyncToken>> {
        let group = group.clone();
        let member = member.clone();
        self.with_conn(move |conn, _| {
            let token: Option<String> = conn
                .prepare_cached(TOKEN)
                .and_then(|mut s| s.query_row(params![group.as_str(), member.as_str()], |r| r.get(0)).optional())
                .map_err(read_err(format!("sync token of member {member} in group {group}")))?;
            Ok(token.map(SyncToken::new))
        })
        .await
    }

    async fn member_status(&self, group: &GroupId, member: &MemberId) -> Result<MemberStatus> {
        let group = group.clone();
        let member = member.clone();
        self.with_conn(move |conn, _| {
            let row: Option<(i64, Option<String>, Option<String>)> = conn
                .prepare_cached(MEMBER_STATUS)
                .and_then(|mut s| {
                    s.query_row(params![group.as_str(), member.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .map_err(read_err(format!("status of member {member} in group {group}")))?;
            let Some((initialized, last_sync, last_error)) = row else { return Ok(MemberStatus::default()) };
            Ok(MemberStatus {
                initialized: initialized != 0,
                last_sync: last_sync.map(|t| parse_time(&t, "last sync time")).transpose()?,
                last_error,
            })
        })
        .await
    }

    async fn pending_creates(&self, group: &GroupId) -> Result<Vec<PendingCreate>> {
        let group = group.clone();
        self.with_conn(move |conn, _| {
            let what = || format!("create intents of group {group}");
            let rows: Vec<(String, String)> = conn
                .prepare_cached(PENDING_CREATES)
                .and_then(|mut s| s.query_map(params![group.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(read_err(what()))?;
            let mut pending = Vec::new();
            for (member, text) in rows {
                let intents: Vec<StoredIntent> = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("batch of create intents of member {member}: {e}")))?;
                let member = MemberId::new(member);
                for (entity, origin, recorded_at) in intents {
                    let entity = EntityId::new(entity);
                    let origin = match origin {
                        Some(origin) => {
                            origin.parse::<OriginStamp>().map_err(|_| corrupt(format!("origin stamp {origin:?}")))?
                        }
                        None => OriginStamp::new(group.clone(), entity.clone()),
                    };
                    let recorded_at = parse_time(&recorded_at, "create intent time")?;
                    pending.push(PendingCreate { entity, member: member.clone(), origin, recorded_at });
                }
            }
            pending.sort_by(|a, b| (&a.entity, &a.member).cmp(&(&b.entity, &b.member)));
            Ok(pending)
        })
        .await
    }

    async fn conflicts(&self, group: &GroupId) -> Result<Vec<ConflictRecord>> {
        let group = group.clone();
        self.with_conn(move |conn, _| {
            let what = || format!("conflict records of group {group}");
            let rows: Vec<String> = conn
                .prepare_cached(CONFLICTS)
                .and_then(|mut s| s.query_map(params![group.as_str()], |r| r.get(0))?.collect())
                .map_err(read_err(what()))?;
            rows.iter()
                .map(|json| {
                    serde_json::from_str(json).map_err(|e| Error::state(format!("unreadable record in {}", what()), e))
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod conformance {
    crate::state_conformance_tests!(|| async { super::SqliteStore::open_in_memory().await.unwrap() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::state::conformance::{populate, snapshot};

    fn group() -> GroupId {
        GroupId::new("contacts")
    }

    #[tokio::test]
    async fn reopening_a_file_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let before = {
            let store = SqliteStore::open(&path).await.unwrap();
            populate(&store, &group()).await;
            populate(&store, &GroupId::new("other")).await;
            snapshot(&store, &group()).await
        };
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(snapshot(&store, &group()).await, before);
        assert_eq!(snapshot(&store, &GroupId::new("other")).await, before);
        assert!(before.contains("alice-token-1"), "the snapshot covers tokens: {before}");
    }

    #[tokio::test]
    async fn a_version_1_database_keeps_its_create_intents_through_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
            )
            .unwrap();
            conn.execute_batch(MIGRATIONS[0].sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01T00:00:00Z')", []).unwrap();
            let origin = OriginStamp::new(group(), EntityId::new("e1"));
            conn.execute(
                "INSERT INTO pending_creates (group_id, entity_id, member_id, origin, recorded_at)
                 VALUES (?1, 'e1', 'alice', ?2, '2026-01-01T00:00:00Z')",
                params![group().as_str(), origin.encode()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.last().unwrap().version);
        let pending = store.pending_creates(&group()).await.unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!((pending[0].entity.as_str(), pending[0].member.as_str()), ("e1", "alice"));
        assert_eq!(pending[0].origin, OriginStamp::new(group(), EntityId::new("e1")));
    }

    /// Migration 3 re-keys the replicas: every slot of a version 2 database comes through, and
    /// the rules the dropped foreign key kept still hold.
    #[tokio::test]
    async fn a_version_2_database_keeps_its_replicas_through_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let hash = ContentHash::of(&Item::new(crate::item::ItemKind::Contact)).to_hex();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
            )
            .unwrap();
            for m in &MIGRATIONS[..2] {
                conn.execute_batch(m.sql).unwrap();
                conn.execute("INSERT INTO schema_migrations VALUES (?1, 'old', '2026-01-01T00:00:00Z')", [m.version])
                    .unwrap();
            }
            conn.execute_batch(&format!(
                "INSERT INTO entities (group_id, entity_id) VALUES ('contacts', 'e1'), ('contacts', 'e2');
                 INSERT INTO replicas (group_id, entity_id, member_id, slot, item_id, version, content_hash, ownership)
                 VALUES ('contacts', 'e1', 'alice', 'present', 'a1', 'v1', '{hash}', 'created'),
                        ('contacts', 'e1', 'bob', 'opted_out', NULL, NULL, NULL, NULL),
                        ('contacts', 'e2', 'alice', 'present', 'a2', 'v2', '{hash}', 'adopted');"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.last().unwrap().version);
        let records = store.entities(&group(), &[EntityId::new("e2"), EntityId::new("e1")]).await.unwrap();
        type Slots = Vec<(String, Option<String>)>;
        let slots: Vec<(String, Slots)> = records
            .iter()
            .map(|r| {
                let slots = r
                    .replicas
                    .iter()
                    .map(|(m, s)| (m.as_str().to_owned(), s.replica().map(|r| r.item_id.as_str().to_owned())))
                    .collect();
                (r.id.as_str().to_owned(), slots)
            })
            .collect();
        assert_eq!(
            slots,
            vec![
                ("e2".into(), vec![("alice".into(), Some("a2".into()))]),
                ("e1".into(), vec![("alice".into(), Some("a1".into())), ("bob".into(), None)]),
            ]
        );
        assert_eq!(store.members(&group()).await.unwrap(), vec![MemberId::new("alice"), MemberId::new("bob")]);
        // Removing an entity still removes its replicas, and an item stays one entity's replica.
        store.apply(&group(), vec![StateWrite::RemoveEntity { id: EntityId::new("e1") }].into()).await.unwrap();
        assert_eq!(store.known_items(&group(), &MemberId::new("alice")).await.unwrap().len(), 1);
        let taken = ReplicaSlot::Present(ReplicaRecord {
            item_id: ItemId::new("a2"),
            version: Version::new("v9"),
            hash: ContentHash::of(&Item::new(crate::item::ItemKind::Contact)),
            ownership: Ownership::Created,
            ignored_base: None,
        });
        let err = store
            .apply(
                &group(),
                vec![
                    StateWrite::PutEntity { id: EntityId::new("e3"), base: None, match_key: None },
                    StateWrite::PutReplica { entity: EntityId::new("e3"), member: MemberId::new("alice"), slot: taken },
                ]
                .into(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already the replica of entity e2"), "{err}");
    }

    #[tokio::test]
    async fn migrations_are_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let latest = MIGRATIONS.last().unwrap().version;
        for _ in 0..3 {
            let store = SqliteStore::open(&path).await.unwrap();
            assert_eq!(store.schema_version().await.unwrap(), latest);
        }
        let conn = Connection::open(&path).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
    }

    #[test]
    fn migrations_are_numbered_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "{}", m.description);
        }
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            populate(&store, &group()).await;
        }
        let conn = Connection::open(&path).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 'x')", []).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        let text = err.to_string();
        assert!(text.contains("999") && text.contains("newer"), "{text}");
        let conn = Connection::open(&path).unwrap();
        let entities: i64 = conn.query_row("SELECT COUNT(*) FROM entities", [], |r| r.get(0)).unwrap();
        assert_eq!(entities, 2);
    }

    #[tokio::test]
    async fn a_file_store_runs_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state.db")).await.unwrap();
        let (journal, synchronous, foreign_keys, limit) = store
            .with_conn(|conn, _| {
                let get = |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0));
                Ok((get("journal_mode"), get("synchronous"), get("foreign_keys"), get("journal_size_limit")))
            })
            .await
            .unwrap();
        assert_eq!(limit.unwrap(), rusqlite::types::Value::Integer(64 * 1024 * 1024));
        assert_eq!(journal.unwrap(), rusqlite::types::Value::Text("wal".into()));
        assert_eq!(synchronous.unwrap(), rusqlite::types::Value::Integer(1), "NORMAL");
        assert_eq!(foreign_keys.unwrap(), rusqlite::types::Value::Integer(1));
    }

    /// Every lookup must search an index, never scan a table: state reads stay fast with
    /// hundreds of thousands of replicas.
    #[tokio::test]
    async fn every_lookup_searches_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let plans = store
            .with_conn(|conn, _| {
                let mut plans = Vec::new();
                for (name, sql) in LOOKUPS {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                    let n = stmt.parameter_count();
                    let args: Vec<&dyn rusqlite::ToSql> = (0..n).map(|_| &"x" as &dyn rusqlite::ToSql).collect();
                    let details: Vec<String> = stmt
                        .query_map(args.as_slice(), |r| r.get(3))
                        .unwrap()
                        .collect::<rusqlite::Result<_>>()
                        .unwrap();
                    plans.push((*name, details));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        assert_eq!(plans.len(), LOOKUPS.len());
        // Statements that list a whole group may search by group alone; every other one must
        // narrow its search further (a search by group alone reads every row of the group).
        let group_wide = ["CONFLICTS", "ENTITY_IDS_FIRST", "PENDING_CREATES", "MEMBERS"];
        for (name, details) in plans {
            // `with_folders!` scans its own rows (one per folder) after a seek to the group's
            // first folder (`MIN` over the index: one step, not a read of the group).
            let own_rows = |d: &str| matches!(d, "SCAN CONSTANT ROW" | "SCAN folders" | "SCAN f");
            let first_folder_seek =
                |i: usize| i > 0 && details[i - 1] == "SCALAR SUBQUERY 1" && details[i].contains("replicas USING");
            assert!(details.iter().any(|d| d.starts_with("SEARCH")), "{name} searches: {details:?}");
            assert!(
                !details.iter().any(|d| d.starts_with("SCAN") && !own_rows(d)),
                "{name} must not scan: {details:?}"
            );
            if !group_wide.contains(&name) {
                assert!(
                    !details.iter().enumerate().any(|(i, d)| d.ends_with("(group_id=?)") && !first_folder_seek(i)),
                    "{name} must not read a whole group: {details:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn concurrent_writers_all_land() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    let write =
                        StateWrite::PutEntity { id: EntityId::new(format!("e{t}-{i}")), base: None, match_key: None };
                    store.apply(&group(), vec![write].into()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.entity_ids(&group(), None, 1000).await.unwrap().len(), 160);
    }

    /// Stores opening a new file at the same moment migrate it once between them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simultaneous_opens_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let opens: Vec<_> = (0..4).map(|_| tokio::spawn(SqliteStore::open(path.clone()))).collect();
        for open in opens {
            let store = open.await.unwrap().unwrap();
            assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        }
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    /// Two stores on one file (two processes, say: a service and an admin tool) see each other's
    /// commits and can write at the same time (WAL, with a busy timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = SqliteStore::open(&path).await.unwrap();
        let b = SqliteStore::open(&path).await.unwrap();
        populate(&a, &group()).await;
        assert_eq!(snapshot(&b, &group()).await, snapshot(&a, &group()).await);

        let writer = |store: SqliteStore, prefix: &'static str| {
            tokio::spawn(async move {
                for i in 0..40 {
                    let id = EntityId::new(format!("{prefix}{i}"));
                    store
                        .apply(&group(), vec![StateWrite::PutEntity { id, base: None, match_key: None }].into())
                        .await
                        .unwrap();
                }
            })
        };
        let (x, y) = (writer(a.clone(), "a"), writer(b.clone(), "b"));
        x.await.unwrap();
        y.await.unwrap();
        assert_eq!(a.entity_ids(&group(), None, 1000).await.unwrap().len(), 82);
        assert_eq!(b.entity_ids(&group(), None, 1000).await.unwrap().len(), 82);
    }

    #[tokio::test]
    async fn an_unreadable_row_is_reported_with_what_and_where() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        populate(&store, &group()).await;
        store
            .with_conn(|conn, _| {
                conn.execute("UPDATE entities SET base = '{not json' WHERE entity_id = 'e1'", []).unwrap();
                Ok(())
            })
            .await
            .unwrap();
        let err = store.entities(&group(), &[EntityId::new("e1")]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        let text = err.to_string();
        assert!(text.contains("e1") && text.contains("contacts") && text.contains("base"), "{text}");
    }

    #[tokio::test]
    async fn opening_an_impossible_path_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("state.db");
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
}

/// The two stores implement the same semantics: random transactions (including failing ones)
/// applied to both leave states no reader can tell apart, and succeed or fail together.
#[cfg(test)]
mod agrees_with_memory_store {
    use proptest::prelude::*;

    use super::*;
    use crate::item::ItemKind;
    use crate::state::SideValue;
    use crate::state::conformance::snapshot;
    use crate::state::memory::MemoryStore;

    fn member() -> impl Strategy<Value = MemberId> {
        prop_oneof![Just("hub"), Just("alice@contoso.test"), Just("bob@contoso.test")].prop_map(MemberId::new)
    }

    fn entity() -> impl Strategy<Value = EntityId> {
        (0..4u8).prop_map(|i| EntityId::new(format!("e{i}")))
    }

    fn item_id() -> impl Strategy<Value = ItemId> {
        (0..5u8).prop_map(|i| ItemId::new(format!("i{i}")))
    }

    fn version() -> impl Strategy<Value = Version> {
        (0..3u8).prop_map(|i| Version::new(format!("v{i}")))
    }

    fn content(i: u8) -> Item {
        Item::new(ItemKind::Contact).with("name.given", format!("Name {i}"))
    }

    fn slot() -> impl Strategy<Value = ReplicaSlot> {
        prop_oneof![
            1 => Just(ReplicaSlot::OptedOut),
            4 => (item_id(), version(), 0..2u8, any::<bool>(), proptest::option::of(0..2u8)).prop_map(
                |(item_id, version, c, created, ignored)| {
                    ReplicaSlot::Present(ReplicaRecord {
                        item_id,
                        version,
                        hash: content(c).content_hash(),
                        ownership: if created { Ownership::Created } else { Ownership::Adopted },
                        ignored_base: ignored.map(|c| content(c).content_hash()),
                    })
                }
            ),
        ]
    }

    fn write() -> impl Strategy<Value = StateWrite> {
        let key = proptest::option::of((1..4u8).prop_map(|k| format!("k{k}")));
        prop_oneof![
            4 => (entity(), proptest::option::of(0..2u8), key)
                .prop_map(|(id, base, match_key)| StateWrite::PutEntity { id, base: base.map(content), match_key }),
            1 => entity().prop_map(|id| StateWrite::RemoveEntity { id }),
            6 => (entity(), member(), slot()).prop_map(|(entity, member, slot)| StateWrite::PutReplica { entity, member, slot }),
            4 => (entity(), member()).prop_map(|(entity, member)| StateWrite::RemoveReplica { entity, member }),
            2 => (member(), item_id(), version()).prop_map(|(member, id, version)| StateWrite::PutForeign { member, id, version }),
            1 => (member(), item_id()).prop_map(|(member, id)| StateWrite::RemoveForeign { member, id }),
            1 => (member(), proptest::option::of(0..3u8))
                .prop_map(|(member, t)| StateWrite::SetToken { member, token: t.map(|t| SyncToken::new(format!("t{t}"))) }),
            1 => (member(), any::<bool>()).prop_map(|(member, initialized)| StateWrite::SetMemberStatus {
                member,
                status: MemberStatus { initialized, last_sync: None, last_error: None },
            }),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::PutPending(PendingCreate {
                origin: OriginStamp::new(GroupId::new("g"), entity.clone()),
                entity,
                member,
                recorded_at: DateTime::UNIX_EPOCH,
            })),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::RemovePending { entity, member }),
            1 => (entity(), member()).prop_map(|(entity, member)| StateWrite::AddConflict(ConflictRecord {
                entity,
                field: "name.given".into(),
                base: None,
                winner: SideValue { member, value: None },
                losers: Vec::new(),
                policy: "hub_wins".into(),
                recorded_at: DateTime::UNIX_EPOCH,
            })),
            1 => member().prop_map(|member| StateWrite::RemoveMember { member }),
        ]
    }

    fn transactions() -> impl Strategy<Value = Vec<(bool, Vec<StateWrite>)>> {
        proptest::collection::vec((any::<bool>(), proptest::collection::vec(write(), 1..6)), 1..10)
    }

    proptest! {
        // PROPTEST_CASES raises the number of cases for long runs.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
            ..ProptestConfig::default()
        })]

        #[test]
        fn same_outcomes_same_state(txs in transactions()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let memory = MemoryStore::new();
                let sqlite = SqliteStore::open_in_memory().await.unwrap();
                // Two groups, so that isolation is exercised too.
                let groups = [GroupId::new("g"), GroupId::new("h")];
                for (second, writes) in txs {
                    let g = &groups[usize::from(second)];
                    let m = memory.apply(g, writes.clone().into()).await;
                    let s = sqlite.apply(g, writes.clone().into()).await;
                    prop_assert_eq!(m.is_ok(), s.is_ok(), "memory: {:?}\nsqlite: {:?}\nwrites: {:#?}", m, s, writes);
                    for g in &groups {
                        prop_assert_eq!(snapshot(&memory, g).await, snapshot(&sqlite, g).await, "after {:#?}", writes);
                    }
                }
                Ok(())
            })?;
        }
    }
}
