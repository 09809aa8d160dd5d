//! The SQLite state store: the embedded default, one file per installation.
//!
//! - **Durable and atomic**: every [`StateStore::apply`] is one SQL transaction, in WAL mode with
//!   `synchronous=NORMAL` (a committed transaction survives a process crash; a power loss may
//!   lose the last transactions but never corrupts the file or leaves half of one).
//! - **Versioned schema**: the migrations (`MIGRATIONS`) are applied in order when the store opens, each in its
//!   own transaction that also records it in the `schema_migrations` table; opening is
//!   idempotent, and a file written by a newer version of this library is refused rather than
//!   misread.
//! - **Portable data model**: plain tables with composite primary keys, text columns and
//!   ordinary indexes, no SQLite-only types or triggers, so a PostgreSQL store can use the same
//!   tables and the same statements (upserts are `INSERT ... ON CONFLICT`). Bases and earlier
//!   bases, conflict records, batches of create intents, a folder's condition and admin requests
//!   are JSON documents; everything the store looks up by is a column with an index.
//!   Tables with small rows keyed by text are `WITHOUT ROWID` (clustered on their primary key,
//!   which saves a copy of every key): a storage choice of SQLite's that a PostgreSQL schema
//!   simply leaves out. `entities` keeps its rowid, since its rows carry the base document.
//! - **Off the async runtime**: SQLite calls block, so each runs on tokio's blocking pool
//!   ([`tokio::task::spawn_blocking`]) against one connection behind a mutex.
//! - **One writer per state**: [`SqliteStore::open`] holds an exclusive OS lock on
//!   `<file>.lock` for the store's lifetime, and a second writer is refused at once;
//!   [`SqliteStore::open_reader`] reads beside it (and posts admin requests) without the lock.
//!
//! ## Porting to PostgreSQL
//!
//! The PostgreSQL store (module `state::postgres`, feature `postgres`) is this port.
//! The tables and statements carry over as they are, with these points to mind (the conformance
//! suite, `state_conformance_tests!` of the `testkit` feature, checks the behavior each protects):
//! - `entity_id` must order by bytes, as Rust orders strings (`COLLATE "C"`), or
//!   [`StateStore::entity_ids`] pages in a different order than the other stores.
//! - `conflicts.seq` becomes an identity column; it only has to grow in commit order per group.
//!   `admin_requests.id` (`AUTOINCREMENT`: never reused, even after the last request is removed)
//!   becomes an identity column too.
//! - `member_status.initialized` may become a `boolean`; `WITHOUT ROWID` is left out.
//! - The store's rules that SQL constraints do not express (a slot needs its entity, an
//!   entity's slots go with it, an item in a slot is not also a user's own item, the tombstone
//!   rule) are checked by queries in the same transaction as the write; that an item fills the
//!   slot of one entity at most (a copy, or a user's item standing in: `personal`) is the unique
//!   index `replicas_by_item`. What each slot kind holds is a `CHECK` constraint.
//! - The writer's file lock becomes a lease in the database (a row naming the holder, renewed
//!   while it runs, taken over once expired), since several hosts share a database server.
//! - The schema's migrations are SQLite's own (migration 5 rebuilds tables to change a `CHECK`
//!   constraint and merges member ids with window functions and `json_each`); a PostgreSQL
//!   store starts from the schema they leave.
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
use crate::item::Item;
use crate::origin::OriginStamp;
use crate::state::columns::{StoredSlot, corrupt, describe, ownership_name, parse_time, timestamp};
use crate::state::{
    AdminRequest, ConflictRecord, EntityRecord, FolderIdentity, KnownItem, MemberStatus, PendingCreate, PostedRequest,
    ReplicaSlot, StateStore, StateTransaction, StateWrite,
};

/// One schema migration: a version number and the statements that bring the schema from the
/// previous version to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The schema version after this migration (1, 2, ...; no gaps).
    pub version: i64,
    /// What the migration does, recorded with it.
    pub description: &'static str,
    /// The SQL statements, run in one transaction.
    pub sql: &'static str,
}

/// Every migration of the schema, oldest first. Append only: a released migration never
/// changes, since databases in the field have already applied it.
pub(crate) const MIGRATIONS: &[Migration] = &[
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
    Migration {
        version: 5,
        description: "folder identity and condition, earlier bases, personal slots, admin requests, \
                      mailbox ids in lower case",
        // See `MIGRATION_5` for what it does with member ids that differ only by case.
        sql: MIGRATION_5,
    },
    Migration {
        version: 6,
        description: "group records: what the service keeps for readers beside it",
        sql: "
        CREATE TABLE group_records (
            group_id    TEXT NOT NULL,
            key         TEXT NOT NULL,
            value       TEXT NOT NULL,
            updated_at  TEXT NOT NULL,
            PRIMARY KEY (group_id, key)
        ) WITHOUT ROWID;
    ",
    },
];

/// Migration 5.
///
/// **Schema.** `entities` gains `earlier_bases` (a JSON array of items, NULL when there are
/// none). `replicas` accepts the `personal` slot (a user's item standing in for an entity: item
/// id and version, nothing else); a CHECK constraint cannot be altered in SQLite, so the table is
/// rebuilt (the table migration 3 left is `replicas`, with its one index `replicas_by_item`),
/// and gains the partial index `replicas_personal`, which holds personal slots alone; slots of
/// entities that no longer exist (earlier versions left a deleted entity's opted-out slots
/// behind) are not copied.
/// `member_status` is rebuilt with the folder's identity (`folder_id`, `folder_path`) and its
/// condition (`condition`, a JSON document: nothing looks a status up by it); `last_error` stays,
/// the condition's text as written, for people reading the file. A row of an earlier version
/// had only that text, which meant "check the folder completely at the next pass": its
/// condition becomes `interrupted` and the text is kept. `admin_requests` is new.
///
/// **Mailbox ids in lower case.** Folders in mailboxes are keyed by the mailbox address, which
/// Exchange compares without regard to case; ids that differed only by case were taken for two
/// members of one folder, and every entity got a copy in it for each. Every member id that
/// contains `@` becomes its lower-case form (SQLite's `lower` folds ASCII letters, which is
/// what an SMTP address of Exchange on premises holds), in every table and in the conflict
/// records. Where several ids of one group become one (the *variants* of that folder), their
/// state is merged; the variants are preferred in this order: the one already in lower case,
/// then by id in byte order.
/// - *Slots*: one per entity is kept: a present copy the group adopted (the user's own item
///   that joined the group) before a copy the group created, either before an opted-out slot;
///   among equals the preferred variant's. Should two entities' kept slots name the same item,
///   the same order picks one (then the entity id). The other slots go. A created copy whose
///   slot went is nothing to the state any more: it carries the group's origin stamp, and the
///   engine finds it as a duplicate when it looks at the folder. An adopted copy whose slot
///   went (the user had two items that both joined) is recorded as the user's own item, never
///   touched again, unless the kept slots name it.
/// - *Users' own items*: all of them are kept, once each (the preferred variant's version),
///   except those the kept slots name.
/// - *Sync tokens* go: the next pass lists the folder from the start, which is how it meets the
///   copies whose slots went.
/// - *Status*: one row, not initialized and `interrupted`, with the latest last sync time, and
///   a `last_error` text naming the merged ids (and their texts): the next pass treats the folder
///   as an initial sync, checking every entity and taking no item it finds there for a new one
///   of the group's.
/// - *Create intents*: one per entity, the preferred variant's, in one batch.
/// - *Conflict records* keep every value; their member ids are lowered like all others.
///
/// The data steps are SQLite's (window functions, `json_each`); a PostgreSQL store starts from
/// the schema they leave and has no such rows to merge.
const MIGRATION_5: &str = r#"
    ALTER TABLE entities ADD COLUMN earlier_bases TEXT;

    CREATE TABLE admin_requests (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id   TEXT NOT NULL,
        request    TEXT NOT NULL,
        posted_at  TEXT NOT NULL
    );
    CREATE INDEX admin_requests_by_group ON admin_requests (group_id, id);

    -- Every mailbox id of the state: the id it becomes, its place among the ids becoming the
    -- same one (1: preferred), and whether there are several (`merged`).
    CREATE TEMP TABLE m5_ids (
        group_id    TEXT NOT NULL,
        member_id   TEXT NOT NULL,
        folder      TEXT NOT NULL,
        preference  INTEGER NOT NULL,
        merged      INTEGER NOT NULL,
        PRIMARY KEY (group_id, member_id)
    );
    INSERT INTO m5_ids (group_id, member_id, folder, preference, merged)
        SELECT group_id, member_id, lower(member_id),
            row_number() OVER (PARTITION BY group_id, lower(member_id)
                               ORDER BY member_id <> lower(member_id), member_id),
            count(*) OVER (PARTITION BY group_id, lower(member_id)) > 1
        FROM (SELECT group_id, member_id FROM replicas
              UNION SELECT group_id, member_id FROM foreign_items
              UNION SELECT group_id, member_id FROM sync_tokens
              UNION SELECT group_id, member_id FROM member_status
              UNION SELECT group_id, member_id FROM pending_batches)
        WHERE instr(member_id, '@') > 0;

    -- Replicas: the new table, every slot of a folder with one id (renamed where it was not in
    -- lower case), then the kept slots of merged folders. Slots of entities that are gone are
    -- left behind (earlier versions left a deleted entity's opted-out slots). The slot kinds are checked by the
    -- CASE, not by `slot IN (...)`: SQLite tests an IN list of more than two values through a
    -- b-tree it builds for every row written, which cost a fan-out a third of its time.
    CREATE TABLE replicas_v5 (
        group_id      TEXT NOT NULL,
        member_id     TEXT NOT NULL,
        entity_id     TEXT NOT NULL,
        slot          TEXT NOT NULL,
        item_id       TEXT,
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
    ) WITHOUT ROWID;
    INSERT INTO replicas_v5
        (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership, ignored_base)
        SELECT r.group_id, COALESCE(m.folder, r.member_id), r.entity_id, r.slot, r.item_id, r.version,
               r.content_hash, r.ownership, r.ignored_base
        FROM replicas r LEFT JOIN m5_ids m ON m.group_id = r.group_id AND m.member_id = r.member_id
        WHERE m.merged IS NOT 1
          AND EXISTS (SELECT 1 FROM entities e WHERE e.group_id = r.group_id AND e.entity_id = r.entity_id);
    CREATE TEMP TABLE m5_slots AS
        SELECT s.*,
            s.choice = 1 AND (s.item_id IS NULL OR row_number() OVER (
                PARTITION BY s.group_id, s.member_id, s.item_id, s.choice = 1
                ORDER BY s.rank, s.preference, s.entity_id) = 1) AS kept
        FROM (SELECT r.group_id, m.folder AS member_id, r.entity_id, r.slot, r.item_id, r.version,
                     r.content_hash, r.ownership, r.ignored_base, m.preference,
                     CASE WHEN r.slot = 'present' AND r.ownership = 'adopted' THEN 0
                          WHEN r.slot = 'present' THEN 1 ELSE 2 END AS rank,
                     row_number() OVER (
                         PARTITION BY r.group_id, m.folder, r.entity_id
                         ORDER BY CASE WHEN r.slot = 'present' AND r.ownership = 'adopted' THEN 0
                                       WHEN r.slot = 'present' THEN 1 ELSE 2 END,
                                  m.preference) AS choice
              FROM replicas r JOIN m5_ids m ON m.group_id = r.group_id AND m.member_id = r.member_id
              WHERE m.merged
                AND EXISTS (SELECT 1 FROM entities e WHERE e.group_id = r.group_id
                            AND e.entity_id = r.entity_id)) s;
    INSERT INTO replicas_v5
        (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership, ignored_base)
        SELECT group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership, ignored_base
        FROM m5_slots WHERE kept;
    DROP TABLE replicas;
    ALTER TABLE replicas_v5 RENAME TO replicas;
    CREATE UNIQUE INDEX replicas_by_item ON replicas (group_id, member_id, item_id);
    -- A folder's personal slots (few): its copies are counted as its items less these.
    CREATE INDEX replicas_personal ON replicas (group_id, member_id, slot) WHERE slot = 'personal';

    -- Users' own items.
    UPDATE foreign_items SET member_id = lower(member_id)
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids
                                        WHERE NOT merged AND member_id <> folder);
    CREATE TEMP TABLE m5_foreign AS
        SELECT f.group_id, m.folder AS member_id, f.item_id, f.version,
            row_number() OVER (PARTITION BY f.group_id, m.folder, f.item_id ORDER BY m.preference) AS choice
        FROM foreign_items f JOIN m5_ids m ON m.group_id = f.group_id AND m.member_id = f.member_id
        WHERE m.merged;
    DELETE FROM foreign_items
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids WHERE merged);
    INSERT INTO foreign_items (group_id, member_id, item_id, version)
        SELECT f.group_id, f.member_id, f.item_id, f.version FROM m5_foreign f
        WHERE f.choice = 1 AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.group_id = f.group_id
                                           AND r.member_id = f.member_id AND r.item_id = f.item_id);
    INSERT INTO foreign_items (group_id, member_id, item_id, version)
        SELECT s.group_id, s.member_id, s.item_id, s.version FROM m5_slots s
        WHERE NOT s.kept AND s.slot = 'present' AND s.ownership = 'adopted'
          AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.group_id = s.group_id
                          AND r.member_id = s.member_id AND r.item_id = s.item_id)
        ON CONFLICT (group_id, member_id, item_id) DO NOTHING;

    -- Sync tokens.
    UPDATE sync_tokens SET member_id = lower(member_id)
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids
                                        WHERE NOT merged AND member_id <> folder);
    DELETE FROM sync_tokens
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids WHERE merged);

    -- Member status.
    CREATE TABLE member_status_v5 (
        group_id     TEXT NOT NULL,
        member_id    TEXT NOT NULL,
        initialized  INTEGER NOT NULL,
        last_sync    TEXT,
        folder_id    TEXT,
        folder_path  TEXT,
        condition    TEXT NOT NULL,
        last_error   TEXT,
        PRIMARY KEY (group_id, member_id),
        CHECK ((folder_id IS NULL) = (folder_path IS NULL))
    ) WITHOUT ROWID;
    INSERT INTO member_status_v5 (group_id, member_id, initialized, last_sync, condition, last_error)
        SELECT s.group_id, COALESCE(m.folder, s.member_id), s.initialized, s.last_sync,
               CASE WHEN s.last_error IS NULL THEN '{"condition":"clean"}'
                    ELSE '{"condition":"interrupted"}' END,
               s.last_error
        FROM member_status s LEFT JOIN m5_ids m ON m.group_id = s.group_id AND m.member_id = s.member_id
        WHERE m.merged IS NOT 1;
    INSERT INTO member_status_v5 (group_id, member_id, initialized, last_sync, condition, last_error)
        SELECT m.group_id, m.folder, 0, MAX(s.last_sync), '{"condition":"interrupted"}',
               'member ids ' || group_concat(m.member_id, ', ' ORDER BY m.preference)
               || ' merged into one by schema migration 5'
               || COALESCE(': ' || group_concat(s.last_error, '; ' ORDER BY m.preference), '')
        FROM m5_ids m LEFT JOIN member_status s ON s.group_id = m.group_id AND s.member_id = m.member_id
        WHERE m.merged
        GROUP BY m.group_id, m.folder;
    DROP TABLE member_status;
    ALTER TABLE member_status_v5 RENAME TO member_status;

    -- Create intents.
    UPDATE pending_batches SET member_id = lower(member_id)
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids
                                        WHERE NOT merged AND member_id <> folder);
    CREATE TEMP TABLE m5_intents AS
        SELECT p.group_id, m.folder AS member_id, i.value AS intent,
            row_number() OVER (PARTITION BY p.group_id, m.folder, json_extract(i.value, '$[0]')
                               ORDER BY m.preference, p.batch DESC) AS choice
        FROM pending_batches p
        JOIN m5_ids m ON m.group_id = p.group_id AND m.member_id = p.member_id,
        json_each(p.intents) i
        WHERE m.merged;
    DELETE FROM pending_batches
        WHERE (group_id, member_id) IN (SELECT group_id, member_id FROM m5_ids WHERE merged);
    INSERT INTO pending_batches (group_id, member_id, batch, intents)
        SELECT group_id, member_id, 1, json_group_array(json(intent))
        FROM m5_intents WHERE choice = 1 GROUP BY group_id, member_id;

    -- Conflict records: the member ids of the winning and the losing values.
    UPDATE conflicts SET record = json_set(record,
        '$.winner.member',
            CASE WHEN instr(json_extract(record, '$.winner.member'), '@') > 0
                 THEN lower(json_extract(record, '$.winner.member'))
                 ELSE json_extract(record, '$.winner.member') END,
        '$.losers', json((SELECT json_group_array(json_set(l.value, '$.member',
                              CASE WHEN instr(json_extract(l.value, '$.member'), '@') > 0
                                   THEN lower(json_extract(l.value, '$.member'))
                                   ELSE json_extract(l.value, '$.member') END) ORDER BY l.key)
                          FROM json_each(record, '$.losers') l)))
    WHERE EXISTS (SELECT 1 FROM (SELECT json_extract(record, '$.winner.member') AS member
                                 UNION ALL
                                 SELECT json_extract(l.value, '$.member') FROM json_each(record, '$.losers') l)
                  WHERE instr(member, '@') > 0 AND member <> lower(member));

    DROP TABLE temp.m5_ids;
    DROP TABLE temp.m5_slots;
    DROP TABLE temp.m5_foreign;
    DROP TABLE temp.m5_intents;
"#;

/// A [`StateStore`] in a SQLite database file.
///
/// Opened with [`SqliteStore::open`], the store is the state's one writer (design rule 12): it
/// holds an exclusive lock on the file for as long as it (or a clone) lives, and a second
/// writer is refused. [`SqliteStore::open_reader`] opens the same file beside it, to read and to
/// post admin requests. Cloning is cheap and shares the connection (and the lock).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

/// What the clones of a store share.
#[derive(Debug)]
struct Shared {
    /// The connection (declared before the lock: it closes first).
    conn: Mutex<Connection>,
    /// Where the database lives, for error messages (`:memory:` for an in-memory one).
    location: Arc<str>,
    /// Whether the store was opened for reading beside the writer.
    reader: bool,
    /// The writer's lock on the state (none for readers and in-memory databases).
    _lock: Option<WriterLock>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` as its one writer, and brings its schema
    /// up to date.
    ///
    /// Takes an exclusive lock on `<path>.lock` (created next to the database) first: while any
    /// clone of the store lives, another `open` of the same file, in this process or any other,
    /// fails at once with an [`Error::State`] that names the process holding it. The lock is the
    /// operating system's: it goes with the store, or with the process however it ends, so a
    /// crashed service never keeps the next one from starting.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path: PathBuf = path.as_ref().to_owned();
        let location: Arc<str> = path.display().to_string().into();
        let loc = location.clone();
        let (conn, lock) = blocking(move || {
            let lock = WriterLock::acquire(&path, &loc)?;
            let conn = Connection::open(&path).map_err(|e| Error::state(format!("cannot open {loc}"), e))?;
            Ok((prepare(conn, &loc)?, lock))
        })
        .await?;
        Ok(SqliteStore::new(conn, location, false, Some(lock)))
    }

    /// Opens an existing database for reading beside its writer (a running service): for
    /// `status`, `conflicts`, a dry run.
    ///
    /// Takes no lock. Every read works, each on a consistent snapshot (WAL mode lets readers and
    /// the writer go on side by side); [`StateStore::post_request`] works too, the one write an
    /// admin command makes (SQLite serialises it with the writer's transactions). Any other write
    /// ([`StateStore::apply`] of a non-empty transaction) is refused. A reader never creates,
    /// migrates or reconfigures the file: one whose schema is older or newer than this library's
    /// is refused (the writer migrates it when it opens it).
    pub async fn open_reader(path: impl AsRef<Path>) -> Result<Self> {
        let path: PathBuf = path.as_ref().to_owned();
        let location: Arc<str> = path.display().to_string().into();
        let loc = location.clone();
        let conn = blocking(move || {
            if !path.exists() {
                return Err(Error::State {
                    message: format!(
                        "no state database at {loc}: nothing has written state there yet (a reader never creates one)"
                    ),
                    source: None,
                });
            }
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(&path, flags)
                .map_err(|e| Error::state(format!("cannot open {loc} for reading"), e))?;
            prepare_reader(conn, &loc)
        })
        .await?;
        Ok(SqliteStore::new(conn, location, true, None))
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
        Ok(SqliteStore::new(conn, location, false, None))
    }

    fn new(conn: Connection, location: Arc<str>, reader: bool, lock: Option<WriterLock>) -> Self {
        SqliteStore { shared: Arc::new(Shared { conn: Mutex::new(conn), location, reader, _lock: lock }) }
    }

    /// Whether the store was opened for reading ([`SqliteStore::open_reader`]).
    pub fn is_reader(&self) -> bool {
        self.shared.reader
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
        let shared = self.shared.clone();
        blocking(move || {
            let mut guard = shared.conn.lock().map_err(|_| Error::State {
                message: format!("state database {}: connection lock poisoned by an earlier panic", shared.location),
                source: None,
            })?;
            f(&mut guard, &shared.location)
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

// ---------------------------------------------------------------------------------------------
// One writer per state

/// The writer's exclusive lock on a state database: an OS file lock on `<database>.lock`, which
/// also holds who took it (process id, host, time) for the message a second writer gets.
///
/// The lock file is never removed (removing a lock file races with a process opening it); its
/// text only means something while the lock is held.
#[derive(Debug)]
struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    /// Takes the lock of the database at `path` (`location` names it in messages), or says who
    /// holds it.
    fn acquire(path: &Path, location: &str) -> Result<WriterLock> {
        use std::io::{Read, Seek, Write};
        let lock_path = lock_path(path);
        let shown = lock_path.display();
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock_path).map_err(
                |e| Error::state(format!("cannot open the lock file {shown} of state database {location}"), e),
            )?;
        let locked = file.try_lock();
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes its details right after it takes the lock: a writer that
                // lost a race to it waits a moment for them. Where the lock also forbids reading
                // (Windows locks are mandatory), the holder stays unnamed.
                let mut holder = Ok(String::new());
                for _ in 0..10 {
                    let mut text = String::new();
                    holder = file.rewind().and_then(|()| file.read_to_string(&mut text)).map(|_| text);
                    if !matches!(&holder, Ok(text) if text.trim().is_empty()) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let holder = match holder {
                    Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
                    Ok(_) => "another process (it has not written its details yet)".to_owned(),
                    Err(_) => format!("another process (it holds {shown})"),
                };
                return Err(Error::State {
                    message: format!(
                        "state database {location} is in use by {holder}: a state has one writer at a time. Stop \
                         the running service first; to confirm a guard stop while it runs, use the confirm command"
                    ),
                    source: None,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::state(
                    format!("cannot lock {shown} to write state database {location} (one writer per state)"),
                    e,
                ));
            }
        }
        let holder = format!(
            "process {} on host {} since {}",
            std::process::id(),
            host_name(),
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(holder.as_bytes()));
        if let Err(e) = written {
            // The lock holds regardless; only the message of a second writer is poorer.
            tracing::warn!(lock = %shown, error = %e, "cannot record the state writer in its lock file");
        }
        Ok(WriterLock { _file: file })
    }
}

/// The lock file of the database at `path`: `<path>.lock`, beside it. The directory is resolved
/// (links followed) where it exists, so that two paths to one database share one lock.
fn lock_path(path: &Path) -> PathBuf {
    let resolved = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    let mut name = resolved.unwrap_or_else(|| path.to_owned()).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// This machine's name, for the lock file (best effort: it only goes into messages).
fn host_name() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
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

/// Sets a reader's connection up: settings of this connection only, nothing that writes to the
/// file (no journal mode, no migration), and a schema this library reads.
fn prepare_reader(conn: Connection, location: &str) -> Result<Connection> {
    let pragma = |e| Error::state(format!("cannot configure the reader of state database {location}"), e);
    // Reads never wait for the writer in WAL mode (a reader keeps its snapshot); this bounds the
    // wait of a posted request for the writer's transaction to end, and that of a read in a
    // file without WAL, where a commit takes the whole file for a moment.
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(pragma)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(pragma)?;
    // Checkpoints are the writer's: a reader's commit (a posted request) never starts one.
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(pragma)?;
    conn.set_prepared_statement_cache_capacity(64);
    let has_migrations: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| Error::state(format!("cannot read the schema of state database {location}"), e))?;
    let current = if has_migrations { schema_version(&conn, location)? } else { 0 };
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current != latest {
        let (age, what) = if current < latest {
            (
                "older",
                "a reader does not migrate it: the service (or a run) does when it opens the state to write; start \
                 it once with this version",
            )
        } else {
            ("newer", "upgrade the library (the database is left untouched)")
        };
        return Err(Error::State {
            message: format!(
                "state database {location} has schema version {current}, {age} than this library's {latest}: {what}"
            ),
            source: None,
        });
    }
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

/// An entity's base, match key and earlier bases.
const LOAD_ENTITY: &str = "SELECT base, match_key, earlier_bases FROM entities WHERE group_id = ?1 AND entity_id = ?2";

/// The entity whose slot an item of a folder fills (a copy, or a user's item standing in).
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

/// The tombstone rule after a slot is removed: the entity goes if it has no base and no copy
/// (opted-out and personal slots are not copies); its remaining slots go with it.
const TOMBSTONE_GONE: &str = with_folders!(
    "DELETE FROM entities WHERE group_id = ?1 AND entity_id = ?2 AND base IS NULL
      AND NOT EXISTS (SELECT 1 FROM folders f JOIN replicas r
                        ON r.group_id = ?1 AND r.member_id = f.member_id AND r.entity_id = ?2
                      WHERE r.slot = 'present')"
);

/// The tombstone rule when a folder leaves: tombstones whose only copies were there go (their
/// slots in other folders go after them: the ids are returned).
const MEMBER_TOMBSTONES_GONE: &str = with_folders!(
    "DELETE FROM entities WHERE group_id = ?1 AND base IS NULL
      AND entity_id IN (SELECT r.entity_id FROM replicas r WHERE r.group_id = ?1 AND r.member_id = ?2)
      AND NOT EXISTS (SELECT 1 FROM folders f JOIN replicas r
                        ON r.group_id = ?1 AND r.member_id = f.member_id AND r.entity_id = entities.entity_id
                      WHERE f.member_id <> ?2 AND r.slot = 'present')
    RETURNING entity_id"
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

/// An upsert of a folder's slot of an entity, with what a conflict with the slot's row sets.
macro_rules! put_replica {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO replicas
                (group_id, entity_id, member_id, slot, item_id, version, content_hash, ownership, ignored_base)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            ON CONFLICT (group_id, member_id, entity_id) DO UPDATE SET ",
            $on_conflict
        )
    };
}

/// A replica, written over the folder's slot of the entity.
const PUT_REPLICA: &str = put_replica!(
    "slot = excluded.slot, item_id = excluded.item_id, version = excluded.version,
     content_hash = excluded.content_hash, ownership = excluded.ownership, ignored_base = excluded.ignored_base"
);

/// A replica written over the folder's slot of the entity when the slot holds the same item
/// (an update of a copy: a new version and content), or into an empty slot; changes nothing
/// when the slot holds another item or kind, which [`PUT_REPLICA`] then writes. The columns of
/// the item index and the personal index are not assigned, so SQLite rewrites only the row:
/// assigning them, even to the values they hold, deletes and inserts both index entries, a
/// second descent through the item index (keys of Exchange's long item ids) for every updated
/// copy.
const PUT_REPLICA_KEPT: &str = put_replica!(
    "version = excluded.version, content_hash = excluded.content_hash, ownership = excluded.ownership,
     ignored_base = excluded.ignored_base
     WHERE slot = excluded.slot AND item_id IS excluded.item_id"
);

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

/// How many copies a folder holds: the items its slots name, less those of personal slots.
/// Both counts read only an index (`replicas_by_item`, and `replicas_personal`, which holds
/// the personal slots alone); counting `slot = 'present'` read every row of the folder.
const REPLICA_COUNT: &str = "
    SELECT (SELECT COUNT(*) FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND item_id IS NOT NULL)
         - (SELECT COUNT(*) FROM replicas WHERE group_id = ?1 AND member_id = ?2 AND slot = 'personal')";

/// A folder's bookkeeping.
const MEMBER_STATUS: &str = "SELECT initialized, last_sync, folder_id, folder_path, condition
    FROM member_status WHERE group_id = ?1 AND member_id = ?2";

/// A group's admin requests, oldest first.
const REQUESTS: &str = "SELECT id, request, posted_at FROM admin_requests WHERE group_id = ?1 ORDER BY id";

/// The newest admin request of every group that has one: read from `admin_requests_by_group`
/// alone (the table holds only requests not yet carried out: usually none).
const NEWEST_REQUESTS: &str = "SELECT group_id, MAX(id) FROM admin_requests GROUP BY group_id";

/// Lists the groups of one table (`g_<table>`), one search per group (as [`with_folders!`]
/// lists folders).
macro_rules! groups_of {
    ($table:literal) => {
        concat!(
            "g_",
            $table,
            "(group_id) AS (
                SELECT (SELECT MIN(group_id) FROM ",
            $table,
            ")
                UNION ALL
                SELECT (SELECT MIN(t.group_id) FROM ",
            $table,
            " t WHERE t.group_id > g.group_id)
                FROM g_",
            $table,
            " g WHERE g.group_id IS NOT NULL
            )"
        )
    };
}

/// Every group the store holds anything for.
const GROUPS: &str = concat!(
    "WITH RECURSIVE ",
    groups_of!("entities"),
    ", ",
    groups_of!("replicas"),
    ", ",
    groups_of!("foreign_items"),
    ", ",
    groups_of!("sync_tokens"),
    ", ",
    groups_of!("member_status"),
    ", ",
    groups_of!("pending_batches"),
    ", ",
    groups_of!("conflicts"),
    ", ",
    groups_of!("admin_requests"),
    ", ",
    groups_of!("group_records"),
    " SELECT group_id FROM g_entities WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_replicas WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_foreign_items WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_sync_tokens WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_member_status WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_pending_batches WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_conflicts WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_admin_requests WHERE group_id IS NOT NULL
    UNION SELECT group_id FROM g_group_records WHERE group_id IS NOT NULL
    ORDER BY 1"
);

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
    ("REQUESTS", REQUESTS),
    ("GROUPS", GROUPS),
    ("PENDING_CREATES", PENDING_CREATES),
    ("LOOKUP_ITEM", LOOKUP_ITEM),
    ("KNOWN_ITEMS", KNOWN_ITEMS),
];

// ---------------------------------------------------------------------------------------------
// Conversions between records and columns

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
        let ReplicaRow { slot, item_id, version, hash, ownership, ignored_base } = self;
        StoredSlot { slot, item_id, version, hash, ownership, ignored_base }.into_slot(entity, member.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

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
    PutReplicaKept,
}

impl Frequent {
    const ALL: [Frequent; 5] = [
        Frequent::EntityExists,
        Frequent::HasForeignItems,
        Frequent::RemoveForeign,
        Frequent::PutReplica,
        Frequent::PutReplicaKept,
    ];

    fn sql(self) -> &'static str {
        match self {
            Frequent::EntityExists => ENTITY_EXISTS,
            Frequent::HasForeignItems => HAS_FOREIGN_ITEMS,
            Frequent::RemoveForeign => REMOVE_FOREIGN,
            Frequent::PutReplica => PUT_REPLICA,
            Frequent::PutReplicaKept => PUT_REPLICA_KEPT,
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
                ReplicaSlot::Personal { .. } => ("personal", None),
            };
            if !statements.entity_exists(g, entity)? {
                return Ok(Some(format!(
                    "cannot put a replica of unknown entity {entity} in member {member} of group {group}"
                )));
            }
            let item = slot.item_id();
            if let Some(item) = item
                && statements.has_foreign_items(g, member)?
            {
                // The item joins the group, or stands in for an entity: it is no longer only a
                // user's own item.
                statements.get(Frequent::RemoveForeign)?.execute(params![g, member.as_str(), item.as_str()])?;
            }
            let version = match &slot {
                ReplicaSlot::Present(r) => Some(r.version.as_str()),
                ReplicaSlot::Personal { version, .. } => Some(version.as_str()),
                ReplicaSlot::OptedOut => None,
            };
            // That an item fills the slot of one entity only is the unique index's rule: SQLite
            // checks it as it writes, instead of a lookup before every write (a fan-out puts
            // millions of replicas).
            let hash = replica.map(|r| r.hash.to_hex());
            let ignored_base = replica.and_then(|r| r.ignored_base.map(|h| h.to_hex()));
            let values = params![
                g,
                entity.as_str(),
                member.as_str(),
                slot_name,
                item.map(ItemId::as_str),
                version,
                hash,
                replica.map(|r| ownership_name(r.ownership)),
                ignored_base,
            ];
            // The slot's item and kind kept (an updated copy) or a new slot: the row alone;
            // otherwise the whole slot with its index entries.
            let mut written = statements.get(Frequent::PutReplicaKept)?.execute(values);
            if matches!(written, Ok(0)) {
                written = statements.get(Frequent::PutReplica)?.execute(values);
            }
            if let Err(e) = written {
                return match (constraint(&e), item) {
                    (Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE), Some(item)) => {
                        let other: Option<String> = tx
                            .prepare_cached(OWNER_OF_ITEM)?
                            .query_row(params![g, member.as_str(), item.as_str()], |row| row.get(0))
                            .optional()?;
                        Ok(Some(format!(
                            "cannot put item {item} in the slot of entity {entity} in member {member} of group \
                             {group}: it already fills the slot of entity {}",
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
            // The tombstone rule: an entity being deleted goes with its last copy, and so do its
            // other slots (opted out, personal).
            if removed > 0 && tx.prepare_cached(TOMBSTONE_GONE)?.execute(params![g, entity.as_str()])? > 0 {
                tx.prepare_cached(REMOVE_ENTITY_REPLICAS)?.execute(params![g, entity.as_str()])?;
            }
        }
        StateWrite::PutForeign { member, id, version } => {
            let owner: Option<String> = tx
                .prepare_cached(OWNER_OF_ITEM)?
                .query_row(params![g, member.as_str(), id.as_str()], |row| row.get(0))
                .optional()?;
            if let Some(entity) = owner {
                return Ok(Some(format!(
                    "cannot record item {id} in member {member} of group {group} as a user's own item: it fills \
                     the slot of entity {entity} (remove the slot first)"
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
            let condition = serde_json::to_string(&status.condition).map_err(json_err)?;
            tx.prepare_cached(
                "INSERT INTO member_status
                    (group_id, member_id, initialized, last_sync, folder_id, folder_path, condition, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (group_id, member_id) DO UPDATE SET initialized = excluded.initialized,
                    last_sync = excluded.last_sync, folder_id = excluded.folder_id,
                    folder_path = excluded.folder_path, condition = excluded.condition,
                    last_error = excluded.last_error",
            )?
            .execute(params![
                g,
                member.as_str(),
                i64::from(status.initialized),
                status.last_sync.as_ref().map(timestamp),
                status.folder.as_ref().map(|f| f.id.as_str()),
                status.folder.as_ref().map(|f| f.path.as_str()),
                condition,
                status.last_error()
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
        StateWrite::PutEarlierBases { entity, bases } => {
            let bases = (!bases.is_empty()).then(|| serde_json::to_string(bases)).transpose().map_err(json_err)?;
            let updated = tx
                .prepare_cached("UPDATE entities SET earlier_bases = ?3 WHERE group_id = ?1 AND entity_id = ?2")?
                .execute(params![g, entity.as_str(), bases])?;
            if updated == 0 {
                return Ok(Some(format!("cannot set earlier bases of unknown entity {entity} in group {group}")));
            }
        }
        StateWrite::RemoveRequest { id } => {
            // Ids beyond SQLite's integers name no request.
            if let Ok(id) = i64::try_from(*id) {
                tx.prepare_cached("DELETE FROM admin_requests WHERE group_id = ?1 AND id = ?2")?
                    .execute(params![g, id])?;
            }
        }
        StateWrite::PutRecord { key, value: Some(value) } => {
            tx.prepare_cached(
                "INSERT INTO group_records (group_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (group_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )?
            .execute(params![g, key, value, timestamp(&Utc::now())])?;
        }
        StateWrite::PutRecord { key, value: None } => {
            tx.prepare_cached("DELETE FROM group_records WHERE group_id = ?1 AND key = ?2")?
                .execute(params![g, key])?;
        }
        StateWrite::RemoveMember { member } => {
            let m = member.as_str();
            // Tombstones whose last copy is in this folder go with it (before their slots go,
            // while we can still tell which entities had one here), and their slots elsewhere.
            let gone: Vec<String> = tx
                .prepare_cached(MEMBER_TOMBSTONES_GONE)?
                .query_map(params![g, m], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for entity in gone {
                tx.prepare_cached(REMOVE_ENTITY_REPLICAS)?.execute(params![g, entity])?;
            }
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
            let row: Option<(Option<String>, Option<String>, Option<String>)> = stmt
                .query_row(params![g, id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(read_err(what()))?;
            let Some((base, match_key, earlier)) = row else { continue };
            let base: Option<Item> = base
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| Error::state(format!("unreadable base of {}", what()), e))?;
            let earlier_bases: Option<Vec<Item>> = earlier
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| Error::state(format!("unreadable earlier bases of {}", what()), e))?;
            let mut record = EntityRecord::new(id.clone(), base, match_key);
            record.earlier_bases = earlier_bases.unwrap_or_default();
            records.push(record);
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
        if self.shared.reader {
            return Err(Error::State {
                message: format!(
                    "cannot write state of group {group}: state database {} is open for reading only; its writer \
                     is the process that holds its lock (a running service), and admin commands reach it by \
                     posting requests",
                    self.shared.location
                ),
                source: None,
            });
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
            let what = || format!("status of member {member} in group {group}");
            type Row = (i64, Option<String>, Option<String>, Option<String>, String);
            let row: Option<Row> = conn
                .prepare_cached(MEMBER_STATUS)
                .and_then(|mut s| {
                    s.query_row(params![group.as_str(), member.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(read_err(what()))?;
            let Some((initialized, last_sync, folder_id, folder_path, condition)) = row else {
                return Ok(MemberStatus::default());
            };
            let folder = match (folder_id, folder_path) {
                (Some(id), Some(path)) => Some(FolderIdentity { id, path }),
                _ => None,
            };
            Ok(MemberStatus {
                initialized: initialized != 0,
                last_sync: last_sync.map(|t| parse_time(&t, "last sync time")).transpose()?,
                folder,
                condition: serde_json::from_str(&condition)
                    .map_err(|e| Error::state(format!("unreadable condition in {}", what()), e))?,
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

    async fn groups(&self) -> Result<Vec<GroupId>> {
        self.with_conn(move |conn, location| {
            conn.prepare_cached(GROUPS)
                .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0).map(GroupId::new))?.collect())
                .map_err(read_err(format!("the groups of state database {location}")))
        })
        .await
    }

    async fn post_request(&self, group: &GroupId, request: AdminRequest) -> Result<u64> {
        let group = group.clone();
        let json = serde_json::to_string(&request)
            .map_err(|e| Error::state(format!("cannot write an admin request for group {group}"), e))?;
        self.with_conn(move |conn, location| {
            let failed = |e| Error::state(format!("cannot post an admin request for group {group} in {location}"), e);
            // Immediate: a writer's transaction in progress is waited for (the busy timeout) at
            // the start, not at the commit.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
            tx.execute(
                "INSERT INTO admin_requests (group_id, request, posted_at) VALUES (?1, ?2, ?3)",
                params![group.as_str(), json, timestamp(&Utc::now())],
            )
            .map_err(failed)?;
            let id = tx.last_insert_rowid();
            tx.commit().map_err(failed)?;
            u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))
        })
        .await
    }

    async fn requests(&self, group: &GroupId) -> Result<Vec<PostedRequest>> {
        let group = group.clone();
        self.with_conn(move |conn, _| {
            let what = || format!("admin requests of group {group}");
            let rows: Vec<(i64, String, String)> = conn
                .prepare_cached(REQUESTS)
                .and_then(|mut s| {
                    s.query_map(params![group.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
                })
                .map_err(read_err(what()))?;
            rows.into_iter()
                .map(|(id, request, posted_at)| {
                    Ok(PostedRequest {
                        id: u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))?,
                        request: serde_json::from_str(&request)
                            .map_err(|e| Error::state(format!("unreadable request {id} in {}", what()), e))?,
                        posted_at: parse_time(&posted_at, "admin request time")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn newest_requests(&self) -> Result<BTreeMap<GroupId, u64>> {
        self.with_conn(move |conn, location| {
            let rows: Vec<(String, i64)> = conn
                .prepare_cached(NEWEST_REQUESTS)
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(read_err(format!("the admin requests of state database {location}")))?;
            rows.into_iter()
                .map(|(group, id)| {
                    let id = u64::try_from(id).map_err(|_| corrupt(format!("admin request id {id}")))?;
                    Ok((GroupId::new(group), id))
                })
                .collect()
        })
        .await
    }

    async fn record(&self, group: &GroupId, key: &str) -> Result<Option<String>> {
        let (group, key) = (group.clone(), key.to_owned());
        self.with_conn(move |conn, _| {
            conn.prepare_cached("SELECT value FROM group_records WHERE group_id = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![group.as_str(), key], |r| r.get(0)).optional())
                .map_err(read_err(format!("record {key} of group {group}")))
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
    use crate::item::ContentHash;
    use crate::state::conformance::{populate, snapshot};
    use crate::state::{FolderCondition, Ownership, ReplicaRecord};

    fn group() -> GroupId {
        GroupId::new("contacts")
    }

    /// A database file at `path` as this library's version with schema `version` left it:
    /// migrations 1 to `version` applied and recorded, nothing else.
    fn old_database(path: &Path, version: i64) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL,
             applied_at TEXT NOT NULL)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, 'old', '2026-01-01T00:00:00Z')", [m.version])
                .unwrap();
        }
        conn
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
        assert!(err.to_string().contains("already fills the slot of entity e2"), "{err}");
    }

    /// Inserts a schema 4 `replicas` row: `kind` is `created`, `adopted` or `opted_out`.
    fn old_slot(conn: &Connection, member: &str, entity: &str, kind: &str, item: &str) {
        let hash = ContentHash::of(&Item::new(crate::item::ItemKind::Contact)).to_hex();
        let present = kind != "opted_out";
        conn.execute(
            "INSERT INTO replicas (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership)
             VALUES ('contacts', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                member,
                entity,
                if present { "present" } else { "opted_out" },
                present.then_some(item),
                present.then(|| format!("v-{item}")),
                present.then_some(&hash),
                present.then_some(kind),
            ],
        )
        .unwrap();
    }

    /// A conflict record as stored, with these member ids as winner and losers.
    fn old_conflict(winner: &str, losers: &[&str]) -> String {
        serde_json::to_string(&ConflictRecord {
            entity: EntityId::new("e1"),
            field: "phone.mobile".into(),
            base: None,
            winner: crate::state::SideValue { member: MemberId::new(winner), value: None },
            losers: losers
                .iter()
                .map(|m| crate::state::SideValue {
                    member: MemberId::new(*m),
                    value: Some(crate::item::FieldValue::Text(format!("{m}'s"))),
                })
                .collect(),
            policy: "hub_wins".into(),
            recorded_at: DateTime::UNIX_EPOCH,
        })
        .unwrap()
    }

    /// Migration 5 on a schema 4 database without case variants: every row comes through; a
    /// status's error text (which meant "check the folder completely next pass") becomes the
    /// condition `interrupted` and the text stays; mailbox ids not in lower case are lowered in
    /// every table (the hub's id is no mailbox and stays), in each group on its own.
    #[tokio::test]
    async fn a_version_4_database_comes_through_migration_5_in_lower_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let untouched_conflict = old_conflict("hub", &["alice@contoso.test"]);
        {
            let conn = old_database(&path, 4);
            conn.execute_batch(
                "INSERT INTO entities (group_id, entity_id, base, match_key) VALUES
                    ('contacts', 'e1', NULL, 'Key@Contoso.test'), ('contacts', 'e2', NULL, NULL),
                    ('other', 'e1', NULL, NULL);
                 INSERT INTO foreign_items VALUES ('contacts', 'Bob@Contoso.test', 'mine', 'mv');
                 INSERT INTO sync_tokens VALUES ('contacts', 'Bob@Contoso.test', 'bob-token'),
                                                ('contacts', 'hub', 'hub-token'),
                                                ('other', 'CAROL@contoso.test', 'carol-token');
                 INSERT INTO member_status VALUES
                    ('contacts', 'Bob@Contoso.test', 1, '2026-01-01T00:00:00.000000000Z', 'throttled: busy'),
                    ('contacts', 'hub', 1, '2026-01-02T00:00:00.000000000Z', NULL);
                 INSERT INTO pending_batches VALUES
                    ('contacts', 'Bob@Contoso.test', 3, '[[\"e2\",null,\"2026-01-01T00:00:00Z\"]]');",
            )
            .unwrap();
            for (seq, record) in
                [old_conflict("Bob@Contoso.test", &["hub", "ALICE@contoso.test"]), untouched_conflict.clone()]
                    .iter()
                    .enumerate()
            {
                conn.execute(
                    "INSERT INTO conflicts (seq, group_id, entity_id, field, recorded_at, record)
                     VALUES (?1, 'contacts', 'e1', 'phone.mobile', '1970-01-01T00:00:00Z', ?2)",
                    params![seq + 1, record],
                )
                .unwrap();
            }
            old_slot(&conn, "hub", "e1", "adopted", "h1");
            old_slot(&conn, "Bob@Contoso.test", "e1", "created", "b1");
            old_slot(&conn, "Bob@Contoso.test", "e2", "opted_out", "");
            // An opted-out slot of an entity that went (earlier versions left these behind).
            old_slot(&conn, "dave@contoso.test", "gone", "opted_out", "");
            conn.execute(
                "INSERT INTO replicas (group_id, member_id, entity_id, slot, item_id, version, content_hash, ownership)
                 SELECT 'other', 'CAROL@contoso.test', 'e1', slot, item_id, version, content_hash, ownership
                 FROM replicas WHERE member_id = 'hub'",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        let (bob, hub) = (MemberId::new("bob@contoso.test"), MemberId::new("hub"));
        assert_eq!(
            store.members(&group()).await.unwrap(),
            vec![bob.clone(), hub.clone()],
            "dave@contoso.test held only a slot of an entity that went"
        );
        let e1 = store.entities(&group(), &[EntityId::new("e1")]).await.unwrap().remove(0);
        assert_eq!(e1.replicas.keys().cloned().collect::<Vec<_>>(), vec![bob.clone(), hub.clone()]);
        assert_eq!(e1.match_key.as_deref(), Some("Key@Contoso.test"), "match keys are no member ids");
        assert!(e1.earlier_bases.is_empty());
        let e2 = store.entities(&group(), &[EntityId::new("e2")]).await.unwrap().remove(0);
        assert_eq!(e2.replicas.get(&bob), Some(&ReplicaSlot::OptedOut));
        assert_eq!(
            store.known_items(&group(), &bob).await.unwrap().iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            vec!["b1", "mine"]
        );
        assert_eq!(store.token(&group(), &bob).await.unwrap(), Some(SyncToken::new("bob-token")));
        assert_eq!(store.token(&group(), &hub).await.unwrap(), Some(SyncToken::new("hub-token")));
        let status = store.member_status(&group(), &bob).await.unwrap();
        assert_eq!(
            (status.initialized, &status.condition, &status.folder),
            (true, &FolderCondition::Interrupted, &None)
        );
        assert!(status.last_sync.is_some());
        assert_eq!(store.member_status(&group(), &hub).await.unwrap().condition, FolderCondition::Clean);
        assert_eq!(store.pending_creates(&group()).await.unwrap()[0].member, bob);
        assert_eq!(store.conflicts(&group()).await.unwrap().len(), 2);
        let carol = MemberId::new("carol@contoso.test");
        assert_eq!(store.members(&GroupId::new("other")).await.unwrap(), vec![carol.clone()]);
        assert_eq!(store.token(&GroupId::new("other"), &carol).await.unwrap(), Some(SyncToken::new("carol-token")));
        // The migration's scratch tables are gone.
        let scratch: i64 = store
            .with_conn(|conn, _| {
                Ok(conn.query_row("SELECT COUNT(*) FROM sqlite_temp_master", [], |r| r.get(0)).unwrap())
            })
            .await
            .unwrap();
        assert_eq!(scratch, 0);
        // The new kinds of state have their place.
        store
            .apply(
                &group(),
                vec![
                    StateWrite::PutReplica {
                        entity: EntityId::new("e2"),
                        member: bob.clone(),
                        slot: ReplicaSlot::Personal { item_id: ItemId::new("theirs"), version: Version::new("1") },
                    },
                    StateWrite::PutEarlierBases {
                        entity: EntityId::new("e2"),
                        bases: vec![Item::new(crate::item::ItemKind::Contact)],
                    },
                ]
                .into(),
            )
            .await
            .unwrap();
        drop(store);

        let conn = Connection::open(&path).unwrap();
        let text: Option<String> = conn
            .query_row("SELECT last_error FROM member_status WHERE member_id = 'bob@contoso.test'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(text.as_deref(), Some("throttled: busy"), "the old text is kept");
        let records: Vec<String> = conn
            .prepare("SELECT record FROM conflicts ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let lowered: ConflictRecord = serde_json::from_str(&records[0]).unwrap();
        assert_eq!(lowered.winner.member.as_str(), "bob@contoso.test");
        assert_eq!(
            lowered.losers.iter().map(|l| (l.member.as_str(), l.value.clone())).collect::<Vec<_>>(),
            vec![
                ("hub", Some(crate::item::FieldValue::Text("hub's".into()))),
                ("alice@contoso.test", Some(crate::item::FieldValue::Text("ALICE@contoso.test's".into()))),
            ],
            "ids lowered, values kept"
        );
        assert_eq!(records[1], untouched_conflict, "a record without ids to lower is left as it was");
    }

    /// Migration 5 merges the state of mailbox ids that differ only by case (the bug made them
    /// two members of one folder, and every entity got a copy there for each), keeping every
    /// item the user owns known: see [`MIGRATION_5`] for the rules checked here.
    #[tokio::test]
    async fn case_variants_of_a_mailbox_merge_into_one_member() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (lower, upper) = ("alice@contoso.test", "Alice@Contoso.test");
        {
            let conn = old_database(&path, 4);
            for e in ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"] {
                conn.execute("INSERT INTO entities (group_id, entity_id) VALUES ('contacts', ?1)", [e]).unwrap();
                old_slot(&conn, "hub", e, "adopted", &format!("h-{e}"));
            }
            // e1: the bug's duplicate, a created copy for each id.
            old_slot(&conn, lower, "e1", "created", "a1");
            old_slot(&conn, upper, "e1", "created", "b1");
            // e2: the user's own item adopted under one id, a created copy under the other.
            old_slot(&conn, lower, "e2", "created", "a2");
            old_slot(&conn, upper, "e2", "adopted", "u2");
            // e3: opted out under one id, a copy under the other.
            old_slot(&conn, lower, "e3", "opted_out", "");
            old_slot(&conn, upper, "e3", "created", "b3");
            // e4: a copy under the upper-case id only.
            old_slot(&conn, upper, "e4", "created", "b4");
            // e5: two items of the user, each adopted under one id.
            old_slot(&conn, lower, "e5", "adopted", "u5");
            old_slot(&conn, upper, "e5", "adopted", "u5x");
            // e6: one item, the slot of e6 under both ids.
            old_slot(&conn, lower, "e6", "created", "same");
            old_slot(&conn, upper, "e6", "adopted", "same");
            // e7, e8: one item, the slot of e7 under one id and of e8 under the other.
            old_slot(&conn, lower, "e7", "created", "x");
            old_slot(&conn, upper, "e8", "created", "x");
            conn.execute_batch(&format!(
                "INSERT INTO foreign_items VALUES
                    ('contacts', '{lower}', 'f1', 'lower-v'), ('contacts', '{upper}', 'f1', 'upper-v'),
                    ('contacts', '{upper}', 'f2', 'v'), ('contacts', '{lower}', 'u2', 'v');
                 INSERT INTO sync_tokens VALUES ('contacts', '{lower}', 'lower-token'),
                                                ('contacts', '{upper}', 'upper-token');
                 INSERT INTO member_status VALUES
                    ('contacts', '{lower}', 1, '2026-01-01T00:00:00.000000000Z', NULL),
                    ('contacts', '{upper}', 1, '2026-01-02T00:00:00.000000000Z', 'boom');
                 INSERT INTO pending_batches VALUES
                    ('contacts', '{lower}', 1, '[[\"e9\",null,\"2026-01-01T00:00:00Z\"]]'),
                    ('contacts', '{upper}', 1, '[[\"e9\",null,\"2026-01-02T00:00:00Z\"]]'),
                    ('contacts', '{upper}', 2, '[[\"e10\",null,\"2026-01-03T00:00:00Z\"]]');
                 INSERT INTO member_status VALUES ('other', '{upper}', 0, NULL, NULL);
                 INSERT INTO sync_tokens VALUES ('other', '{upper}', 'other-token');"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let alice = MemberId::new(lower);
        let hub = MemberId::new("hub");
        assert_eq!(store.members(&group()).await.unwrap(), vec![alice.clone(), hub.clone()]);

        // One slot per entity, chosen as documented; every item the user owns stays known.
        let ids: Vec<EntityId> = (1..=10).map(|i| EntityId::new(format!("e{i}"))).collect();
        let slots = store.slots_in(&group(), &alice, &ids).await.unwrap();
        let described: BTreeMap<&str, (Option<&str>, Option<Ownership>)> = slots
            .iter()
            .map(|(e, s)| (e.as_str(), (s.item_id().map(ItemId::as_str), s.replica().map(|r| r.ownership))))
            .collect();
        assert_eq!(
            described,
            BTreeMap::from([
                ("e1", (Some("a1"), Some(Ownership::Created))),
                ("e2", (Some("u2"), Some(Ownership::Adopted))),
                ("e3", (Some("b3"), Some(Ownership::Created))),
                ("e4", (Some("b4"), Some(Ownership::Created))),
                ("e5", (Some("u5"), Some(Ownership::Adopted))),
                ("e6", (Some("same"), Some(Ownership::Adopted))),
                ("e7", (Some("x"), Some(Ownership::Created))),
            ])
        );
        let known: Vec<(String, String, Option<String>)> = store
            .known_items(&group(), &alice)
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.id.to_string(), k.version.to_string(), k.entity.map(|e| e.to_string())))
            .collect();
        let entry = |id: &str, v: &str, e: Option<&str>| (id.to_owned(), v.to_owned(), e.map(str::to_owned));
        assert_eq!(
            known,
            vec![
                entry("a1", "v-a1", Some("e1")),
                entry("b3", "v-b3", Some("e3")),
                entry("b4", "v-b4", Some("e4")),
                entry("f1", "lower-v", None),
                entry("f2", "v", None),
                entry("same", "v-same", Some("e6")),
                entry("u2", "v-u2", Some("e2")),
                entry("u5", "v-u5", Some("e5")),
                entry("u5x", "v-u5x", None),
                entry("x", "v-x", Some("e7")),
            ],
            "b1 and a2 (created copies that lost their slot) are for the engine to find by their stamp"
        );
        assert_eq!(store.replica_count(&group(), &alice).await.unwrap(), 7);
        assert_eq!(store.replica_count(&group(), &hub).await.unwrap(), 10);

        // No token: the folder is listed from the start. Its status asks for an initial pass.
        assert_eq!(store.token(&group(), &alice).await.unwrap(), None);
        let status = store.member_status(&group(), &alice).await.unwrap();
        assert!(!status.initialized);
        assert_eq!(status.condition, FolderCondition::Interrupted);
        assert_eq!(status.last_sync.map(|t| t.to_rfc3339()).as_deref(), Some("2026-01-02T00:00:00+00:00"));
        let pending = store.pending_creates(&group()).await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|p| (p.entity.as_str(), p.member.as_str(), p.recorded_at.to_rfc3339()))
                .collect::<Vec<_>>(),
            vec![("e10", lower, "2026-01-03T00:00:00+00:00".into()), ("e9", lower, "2026-01-01T00:00:00+00:00".into())]
        );
        // Another group with one of the ids: renamed there, nothing merged.
        let other = GroupId::new("other");
        assert_eq!(store.members(&other).await.unwrap(), vec![alice.clone()]);
        assert_eq!(store.token(&other, &alice).await.unwrap(), Some(SyncToken::new("other-token")));

        // The merged state keeps the store's rules.
        let err = store
            .apply(
                &group(),
                vec![StateWrite::PutForeign {
                    member: alice.clone(),
                    id: ItemId::new("a1"),
                    version: Version::new("v"),
                }]
                .into(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("fills the slot of entity e1"), "{err}");
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let text: String = conn
            .query_row(
                "SELECT last_error FROM member_status WHERE group_id = 'contacts' AND member_id = ?1",
                [lower],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            text,
            format!("member ids {lower}, {upper} merged into one by schema migration 5: boom"),
            "the merge is told where an admin reads the file"
        );
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
        // The mass-delete guard counts a folder's copies before every pass: from indexes alone.
        let (_, count) = plans.iter().find(|(name, _)| *name == "REPLICA_COUNT").unwrap();
        assert!(
            count.iter().filter(|d| d.starts_with("SEARCH")).all(|d| d.contains("COVERING INDEX")),
            "REPLICA_COUNT reads indexes only: {count:?}"
        );
        // Statements that list a whole group may search by group alone; every other one must
        // narrow its search further (a search by group alone reads every row of the group).
        let group_wide = ["CONFLICTS", "ENTITY_IDS_FIRST", "PENDING_CREATES", "MEMBERS", "REQUESTS"];
        for (name, details) in plans {
            // `with_folders!` scans its own rows (one per folder) after a seek to the group's
            // first folder (`MIN` over the index: one step, not a read of the group), and
            // `groups_of!` its own (one per group: `g`, `g_<table>`).
            let own_rows = |d: &str| {
                matches!(d, "SCAN CONSTANT ROW" | "SCAN folders" | "SCAN f" | "SCAN g") || d.starts_with("SCAN g_")
            };
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

    /// Stores opening a new file at the same moment: one of them becomes its writer and migrates
    /// it, once; the others are refused at once, naming the writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simultaneous_opens_make_one_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let opens: Vec<_> = (0..4).map(|_| tokio::spawn(SqliteStore::open(path.clone()))).collect();
        let mut writers = Vec::new();
        for open in opens {
            match open.await.unwrap() {
                Ok(store) => writers.push(store),
                // Refused: the winner's details may not be written yet when a loser reads them.
                Err(e) => assert!(e.to_string().contains("state.db is in use by"), "{e}"),
            }
        }
        assert_eq!(writers.len(), 1);
        assert_eq!(writers[0].schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    /// One writer per state: a second `open` of a file (here, in the same process) is refused at
    /// once with a message that says who holds it and what to do, as long as any clone of the
    /// first store lives; once the first is dropped, the file opens again. Another path to the
    /// same file is the same file.
    #[tokio::test]
    async fn a_second_writer_is_refused_and_told_who_holds_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let first = SqliteStore::open(&path).await.unwrap();
        populate(&first, &group()).await;
        let clone = first.clone();
        drop(first);

        let started = std::time::Instant::now();
        for other in [path.clone(), dir.path().join(".").join("state.db")] {
            let err = SqliteStore::open(&other).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::State);
            assert!(!err.is_retryable());
            let text = err.to_string();
            for part in [
                "state.db is in use by",
                &format!("process {} on host ", std::process::id()),
                " since ",
                "Stop the running service first",
                "use the confirm command",
            ] {
                assert!(text.contains(part), "{part:?} in {text}");
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "refused at once");
        assert!(dir.path().join("state.db.lock").exists());

        drop(clone);
        let again = SqliteStore::open(&path).await.unwrap();
        assert!(snapshot(&again, &group()).await.contains("alice-token-1"));
    }

    /// A reader beside the writer: it reads what the writer committed, each read a consistent
    /// snapshot while the writer goes on (never half a transaction), and it neither blocks the
    /// writer nor writes, except the admin requests it posts, which the writer sees and removes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_beside_the_writer_reads_snapshots_and_posts_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let writer = SqliteStore::open(&path).await.unwrap();
        populate(&writer, &group()).await;
        let reader = SqliteStore::open_reader(&path).await.unwrap();
        assert!(reader.is_reader() && !writer.is_reader());
        assert_eq!(snapshot(&reader, &group()).await, snapshot(&writer, &group()).await);
        assert_eq!(reader.groups().await.unwrap(), vec![group()]);

        // Writes other than requests are refused, and change nothing.
        let before = snapshot(&writer, &group()).await;
        let err = reader
            .apply(&group(), vec![StateWrite::SetToken { member: MemberId::new("hub"), token: None }].into())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        let text = err.to_string();
        assert!(text.contains("contacts") && text.contains("reading only") && text.contains("state.db"), "{text}");
        reader.apply(&group(), StateTransaction::new()).await.expect("an empty transaction writes nothing");
        assert_eq!(snapshot(&writer, &group()).await, before);

        // The writer commits transactions of 50 entities, each with its hub copy, while the
        // reader reads and posts: every entity it reads has its copy, and no write waits long.
        let hub = MemberId::new("hub");
        let base = Item::new(crate::item::ItemKind::Contact);
        let writing = {
            let writer = writer.clone();
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut slowest = std::time::Duration::ZERO;
                for t in 0..40 {
                    let mut writes = Vec::new();
                    for i in 0..50 {
                        let id = EntityId::new(format!("w{t:02}-{i:02}"));
                        writes.push(StateWrite::PutEntity {
                            id: id.clone(),
                            base: Some(base.clone()),
                            match_key: None,
                        });
                        writes.push(StateWrite::PutReplica {
                            entity: id,
                            member: hub.clone(),
                            slot: ReplicaSlot::Present(ReplicaRecord {
                                item_id: ItemId::new(format!("h{t}-{i}")),
                                version: Version::new("v1"),
                                hash: base.content_hash(),
                                ownership: Ownership::Created,
                                ignored_base: None,
                            }),
                        });
                    }
                    let started = std::time::Instant::now();
                    writer.apply(&group(), writes.into()).await.unwrap();
                    slowest = slowest.max(started.elapsed());
                }
                slowest
            })
        };
        let mut posted = Vec::new();
        while !writing.is_finished() {
            let ids = reader.entity_ids(&group(), Some(&EntityId::new("w")), usize::MAX).await.unwrap();
            for record in reader.entities(&group(), &ids).await.unwrap() {
                assert!(record.replicas.contains_key(&hub), "{} read without its copy", record.id);
            }
            if posted.len() < 5 {
                posted.push(reader.post_request(&group(), AdminRequest::ConfirmDeletions).await.unwrap());
            }
        }
        let slowest = writing.await.unwrap();
        assert!(slowest < std::time::Duration::from_secs(3), "a write waited {slowest:?}");
        assert_eq!(reader.entity_ids(&group(), Some(&EntityId::new("w")), usize::MAX).await.unwrap().len(), 2000);

        // The writer sees the posted requests, in order, and removes them as it carries them out.
        posted.push(reader.post_request(&group(), AdminRequest::Resync { member: Some(hub.clone()) }).await.unwrap());
        let seen = writer.requests(&group()).await.unwrap();
        assert_eq!(seen.iter().map(|r| r.id).collect::<Vec<_>>(), posted);
        assert_eq!(seen.last().unwrap().request, AdminRequest::Resync { member: Some(hub) });
        let done: Vec<StateWrite> = posted.iter().map(|&id| StateWrite::RemoveRequest { id }).collect();
        writer.apply(&group(), done.into()).await.unwrap();
        assert!(reader.requests(&group()).await.unwrap().is_empty());
    }

    /// A reader never creates, migrates or reconfigures a file: a missing file, one of an older
    /// schema (migrated when the writer opens it) and one of a newer schema are refused, and
    /// left as they were. A reader opens beside a writer, but does not keep one from opening.
    #[tokio::test]
    async fn a_reader_never_creates_or_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let err = SqliteStore::open_reader(&path).await.unwrap_err();
        assert!(err.to_string().contains("no state database at") && err.to_string().contains("state.db"), "{err}");
        assert!(!path.exists());

        old_database(&path, 4);
        let err = SqliteStore::open_reader(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        let text = err.to_string();
        assert!(text.contains("schema version 4, older than") && text.contains("does not migrate"), "{text}");
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4, "left as it was");

        let reader_first = SqliteStore::open_reader(dir.path().join("missing.db")).await;
        assert!(reader_first.is_err());
        {
            let writer = SqliteStore::open(&path).await.unwrap();
            assert_eq!(writer.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
            let reader = SqliteStore::open_reader(&path).await.unwrap();
            drop(writer);
            // A reader does not hold the state: a writer may open beside it.
            let writer = SqliteStore::open(&path).await.unwrap();
            assert_eq!(reader.schema_version().await.unwrap(), writer.schema_version().await.unwrap());
        }

        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 'x')", [])
            .unwrap();
        let err = SqliteStore::open_reader(&path).await.unwrap_err();
        assert!(err.to_string().contains("999, newer than"), "{err}");
    }

    /// The environment variable that makes [`lock_holder_child`] hold a state (the path).
    const LOCK_HOLDER: &str = "EXCHANGE_SYNC_TEST_LOCK_HOLDER";

    /// Not a test of its own: run by [`a_lock_left_by_a_killed_process_does_not_block`] in a
    /// child process, it opens the state named by [`LOCK_HOLDER`], says so, and waits to be
    /// killed. Without the variable it does nothing.
    #[test]
    fn lock_holder_child() {
        let Some(path) = std::env::var_os(LOCK_HOLDER) else { return };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = runtime.block_on(SqliteStore::open(path)).unwrap();
        runtime.block_on(populate(&store, &group()));
        println!("holding the state");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }

    /// A process that dies holding the state (killed, crashed) leaves its lock file behind, but
    /// not its lock: the next writer opens the state and finds everything the dead one committed.
    #[tokio::test]
    async fn a_lock_left_by_a_killed_process_does_not_block() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "state::sqlite::tests::lock_holder_child", "--nocapture", "--test-threads=1"])
            .env(LOCK_HOLDER, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let holding = lines.any(|line| line.is_ok_and(|l| l.contains("holding the state")));
        if !holding {
            let _ = child.kill();
            panic!("the child process never held the state: {:?}", child.wait());
        }

        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(err.to_string().contains(&format!("in use by process {} on host", child.id())), "{err}");
        // A reader opens beside it.
        let reader = SqliteStore::open_reader(&path).await.unwrap();
        let committed = snapshot(&reader, &group()).await;
        assert!(committed.contains("alice-token-1"), "{committed}");

        child.kill().unwrap();
        child.wait().unwrap();
        assert!(dir.path().join("state.db.lock").exists(), "the lock file stays");
        let store = SqliteStore::open(&path).await.expect("a dead process holds no lock");
        assert_eq!(snapshot(&store, &group()).await, committed);
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
