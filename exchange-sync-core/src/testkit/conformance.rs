//! The connector conformance suite: what every [`Connector`] must do for the engine to be
//! correct on top of it. Each implementation runs it against itself (the in-memory connector in
//! this crate's tests, the EWS connectors against the EWS emulator):
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use exchange_sync_core::testkit::{MemoryConnector, conformance};
//! conformance::run(|| async { MemoryConnector::new("conformance").shared() }).await.unwrap();
//! # }
//! ```
//!
//! The factory must answer a connector on a fresh, empty folder each time it is called; every
//! check runs on its own folder. Checks need more items than one page holds to test paging:
//! give the connector a small page size, or raise [`Options::items`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::connector::{Change, ChangeDetection, Connector, Deleted, ItemDelete, ItemUpdate, ItemVersion, NewItem};
use crate::error::{ErrorKind, Result};
use crate::field;
use crate::id::{EntityId, GroupId, ItemId, SyncToken, Version};
use crate::item::{Body, Item, ItemKind};
use crate::origin::OriginStamp;

/// Settings of a conformance run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many items the paging checks create (more than a page, to cross page boundaries).
    pub items: usize,
    /// The kind of items the folder holds: [`ItemKind::Contact`] (the default) or
    /// [`ItemKind::CalendarItem`] (calendar connectors: the checks write [`sample_event`]s).
    pub kind: ItemKind,
}

impl Default for Options {
    fn default() -> Self {
        Options { items: 25, kind: ItemKind::Contact }
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The check's name.
    pub check: &'static str,
    /// What was expected and what happened.
    pub message: String,
}

/// Every failed check of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures(pub Vec<CheckFailure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} connector conformance check(s) failed:", self.0.len())?;
        for failure in &self.0 {
            writeln!(f, "- {}: {}", failure.check, failure.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}

/// The outcome of one check: `Err` carries what went wrong.
type Check = std::result::Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Turns a connector error into a check failure naming the call.
fn call<T>(what: &str, result: Result<T>) -> std::result::Result<T, String> {
    result.map_err(|e| format!("{what} failed: {e}"))
}

/// Runs every check with default options.
pub async fn run<F, Fut>(factory: F) -> std::result::Result<(), Failures>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Connector>>,
{
    run_with(factory, Options::default()).await
}

/// Runs every check, each on a fresh folder from `factory`, and answers all failures at once.
pub async fn run_with<F, Fut>(factory: F, options: Options) -> std::result::Result<(), Failures>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Connector>>,
{
    let mut failures = Vec::new();
    let mut record = |check: &'static str, outcome: Check| {
        if let Err(message) = outcome {
            failures.push(CheckFailure { check, message });
        }
    };
    let k = &options.kind;
    record("create_get_round_trip", create_get_round_trip(factory().await.as_ref(), k).await);
    record("update_with_stale_version", update_with_stale_version(factory().await.as_ref(), k).await);
    record("delete_missing_item", delete_missing_item(factory().await.as_ref(), k).await);
    record("delete_with_stale_version", delete_with_stale_version(factory().await.as_ref(), k).await);
    record(
        "list_pages_cover_every_item_once",
        list_pages_cover_every_item_once(factory().await.as_ref(), &options).await,
    );
    record(
        "changes_pages_cover_every_item_once",
        changes_pages_cover_every_item_once(factory().await.as_ref(), &options).await,
    );
    record("incremental_changes", incremental_changes(factory().await.as_ref(), k).await);
    record("find_by_origin", find_by_origin(factory().await.as_ref(), k).await);
    record("batch_errors_are_per_item", batch_errors_are_per_item(factory().await.as_ref(), k).await);
    if failures.is_empty() { Ok(()) } else { Err(Failures(failures)) }
}

fn stamp(entity: &str) -> OriginStamp {
    OriginStamp::new(GroupId::new("conformance"), EntityId::new(entity))
}

/// A contact with the fields every connector must carry.
pub fn sample_contact(n: usize) -> Item {
    let mut item = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, format!("Given{n}"))
        .with(field::SURNAME, format!("Surname{n}"))
        .with(field::EMAIL1, format!("person{n}@contoso.test"))
        .with(field::COMPANY, "Contoso");
    item.body = Some(Body::text(format!("Notes about person {n}.\nSecond line.")));
    item.categories = ["Shared".to_owned(), format!("Tag{}", n % 3)].into_iter().collect();
    item
}

/// A single appointment (every third one a weekly series) with the fields every calendar
/// connector must carry, the ones servers always hold (reminder, free/busy, ...) included.
pub fn sample_event(n: usize) -> Item {
    let day = u32::try_from(n % 28).unwrap_or(0) + 1;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 6, day)
        .and_then(|d| d.and_hms_opt(7 + u32::try_from(n % 8).unwrap_or(0), 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default();
    let zone = "W. Europe Standard Time";
    let mut item = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, format!("Event {n}"))
        .with(field::LOCATION, format!("Room {n}"))
        .with(field::START, crate::item::FieldValue::DateTime(start))
        .with(field::END, crate::item::FieldValue::DateTime(start + chrono::Duration::minutes(45)))
        .with(field::START_TIME_ZONE, zone)
        .with("end_time_zone", zone)
        .with(field::IS_ALL_DAY, crate::item::FieldValue::Boolean(false))
        .with(field::LEGACY_FREE_BUSY, "busy")
        .with(field::REMINDER_IS_SET, crate::item::FieldValue::Boolean(true))
        .with(field::REMINDER_MINUTES, crate::item::FieldValue::Integer(15))
        .with(field::SENSITIVITY, "normal")
        .with(field::IMPORTANCE, "normal");
    if n.is_multiple_of(3) {
        let weekday = start.format("%A");
        let date = start.format("%Y-%m-%d");
        item.set(
            field::RECURRENCE,
            crate::item::FieldValue::Text(format!(
                "WeeklyRecurrence(Interval=1,DaysOfWeek={weekday})|NumberedRecurrence(StartDate={date},NumberOfOccurrences=4)"
            )),
        );
    }
    item.body = Some(Body::text(format!("Agenda of event {n}.\nSecond line.")));
    item.categories = ["Shared".to_owned(), format!("Tag{}", n % 3)].into_iter().collect();
    item
}

/// The sample item `n` of a kind.
pub fn sample(kind: &ItemKind, n: usize) -> Item {
    match kind {
        ItemKind::CalendarItem => sample_event(n),
        _ => sample_contact(n),
    }
}

/// Sample item `n` with one text field of the kind changed to `value` (an edit).
fn edited(kind: &ItemKind, n: usize, value: &str) -> Item {
    match kind {
        ItemKind::CalendarItem => sample_event(n).with(field::LOCATION, value),
        _ => sample_contact(n).with(field::JOB_TITLE, value),
    }
}

async fn create_n(
    c: &dyn Connector,
    kind: &ItemKind,
    n: usize,
    prefix: &str,
) -> std::result::Result<Vec<ItemVersion>, String> {
    let mut created = Vec::new();
    let batch = c.capabilities().max_batch.max(1);
    let new: Vec<NewItem> =
        (0..n).map(|i| NewItem { item: sample(kind, i).into(), origin: stamp(&format!("{prefix}{i}")) }).collect();
    for chunk in new.chunks(batch) {
        for (i, r) in call("create", c.create(chunk).await)?.into_iter().enumerate() {
            created.push(r.map_err(|e| format!("create of item {i} failed: {e}"))?);
        }
    }
    ensure!(created.len() == n, "create answered {} results for {n} items", created.len());
    Ok(created)
}

/// Created items read back with the same content, version and origin stamp; a missing id in the
/// same batch answers NotFound in its own slot.
async fn create_get_round_trip(c: &dyn Connector, kind: &ItemKind) -> Check {
    let new = vec![
        NewItem { item: sample(kind, 1).into(), origin: stamp("rt1") },
        NewItem { item: sample(kind, 2).into(), origin: stamp("rt2") },
    ];
    let created: Vec<ItemVersion> =
        call("create", c.create(&new).await)?.into_iter().collect::<Result<_>>().map_err(|e| e.to_string())?;
    ensure!(created.len() == 2, "create answered {} results for 2 items", created.len());
    ensure!(created[0].id != created[1].id, "two created items share the id {}", created[0].id);
    let missing = ItemId::new("conformance-missing-item");
    let ids = vec![created[0].id.clone(), missing, created[1].id.clone()];
    let got = call("get", c.get(&ids).await)?;
    ensure!(got.len() == 3, "get answered {} results for 3 ids", got.len());
    for (slot, (new, created)) in [(0, (&new[0], &created[0])), (2, (&new[1], &created[1]))] {
        let fetched = got[slot].as_ref().map_err(|e| format!("get of a created item failed: {e}"))?;
        ensure!(fetched.id == created.id, "get answered id {} for {}", fetched.id, created.id);
        ensure!(fetched.version == created.version, "version {} read, {} created", fetched.version, created.version);
        ensure!(
            fetched.item.same_content(&new.item),
            "content changed in the round trip: wrote {:?}, read {:?}",
            new.item.canonical(),
            fetched.item.canonical()
        );
        ensure!(
            fetched.origin.as_ref() == Some(&new.origin),
            "origin {:?} read, {} written",
            fetched.origin,
            new.origin
        );
    }
    match &got[1] {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("get of a missing id answered {:?} ({e}), not NotFound", e.kind())),
        Ok(_) => Err("get of a missing id answered an item".into()),
    }
}

/// An update with the current version succeeds and changes the version; one with a stale
/// version fails with PreconditionFailed and writes nothing.
async fn update_with_stale_version(c: &dyn Connector, kind: &ItemKind) -> Check {
    let created = create_n(c, kind, 1, "stale").await?.remove(0);
    let first = edited(kind, 1, "Fabrikam");
    let update = |expected: Version, item: Item| {
        vec![ItemUpdate {
            id: created.id.clone(),
            expected,
            item: item.into(),
            previous: Some(sample(kind, 0)),
            origin: None,
        }]
    };
    let mut ok = call("update", c.update(&update(created.version.clone(), first.clone())).await)?;
    ensure!(ok.len() == 1, "update answered {} results for 1 item", ok.len());
    let v2 = ok.remove(0).map_err(|e| format!("update with the current version failed: {e}"))?;
    ensure!(v2.version != created.version, "the version did not change on update ({})", v2.version);
    let stale = call("update", c.update(&update(created.version.clone(), sample(kind, 2))).await)?;
    match stale.first() {
        Some(Err(e)) if e.kind() == ErrorKind::PreconditionFailed => {}
        Some(Err(e)) => return Err(format!("a stale update answered {:?} ({e}), not PreconditionFailed", e.kind())),
        Some(Ok(_)) => return Err("an update with a stale version succeeded".into()),
        None => return Err("update answered no result".into()),
    }
    let now = call("get", c.get(std::slice::from_ref(&created.id)).await)?;
    let now = now.into_iter().next().ok_or("get answered no result")?.map_err(|e| e.to_string())?;
    ensure!(now.version == v2.version, "a failed update changed the version to {}", now.version);
    ensure!(now.item.same_content(&first), "a failed update changed the content: {:?}", now.item.canonical());
    Ok(())
}

/// Deleting an item works once; deleting it again answers NotFound, and so does reading it.
async fn delete_missing_item(c: &dyn Connector, kind: &ItemKind) -> Check {
    let created = create_n(c, kind, 1, "del").await?.remove(0);
    let del = [ItemDelete { id: created.id.clone(), expected: Some(created.version.clone()), expected_hash: None }];
    let first = call("delete", c.delete(&del).await)?;
    ensure!(matches!(first.first(), Some(Ok(Deleted::Gone))), "delete of an existing item answered {first:?}");
    let again = call("delete", c.delete(&del).await)?;
    match again.first() {
        Some(Err(e)) if e.kind() == ErrorKind::NotFound => {}
        other => return Err(format!("delete of a missing item answered {other:?}, not NotFound")),
    }
    let got = call("get", c.get(std::slice::from_ref(&created.id)).await)?;
    ensure!(
        matches!(got.first(), Some(Err(e)) if e.kind() == ErrorKind::NotFound),
        "get of a deleted item answered {got:?}"
    );
    Ok(())
}

/// A delete with a stale expected version (the copy was edited since the engine saw it) fails
/// with PreconditionFailed and deletes nothing: a modification beats a deletion (design rule 4).
async fn delete_with_stale_version(c: &dyn Connector, kind: &ItemKind) -> Check {
    let created = create_n(c, kind, 1, "stale-del").await?.remove(0);
    let edited = edited(kind, 0, "Edited elsewhere");
    let updated = call(
        "update",
        c.update(&[ItemUpdate {
            id: created.id.clone(),
            expected: created.version.clone(),
            item: edited.clone().into(),
            previous: Some(sample(kind, 0)),
            origin: None,
        }])
        .await,
    )?;
    let updated = updated.into_iter().next().ok_or("update answered no result")?.map_err(|e| e.to_string())?;
    let stale = ItemDelete {
        id: created.id.clone(),
        expected: Some(created.version.clone()),
        expected_hash: Some(sample(kind, 0).content_hash()),
    };
    let result = call("delete", c.delete(&[stale]).await)?;
    match result.first() {
        Some(Err(e)) if e.kind() == ErrorKind::PreconditionFailed => {}
        Some(Err(e)) => return Err(format!("a stale delete answered {:?} ({e}), not PreconditionFailed", e.kind())),
        Some(Ok(d)) => return Err(format!("a delete with a stale version answered {d:?}")),
        None => return Err("delete answered no result".into()),
    }
    let now = call("get", c.get(std::slice::from_ref(&created.id)).await)?;
    let now = now.into_iter().next().ok_or("get answered no result")?.map_err(|e| format!("the item is gone: {e}"))?;
    ensure!(now.version == updated.version, "a refused delete changed the version to {}", now.version);
    ensure!(now.item.same_content(&edited), "a refused delete changed the content: {:?}", now.item.canonical());
    Ok(())
}

/// Pages through `list` and answers every (id, version) with how often it was listed.
async fn list_all(c: &dyn Connector) -> std::result::Result<Vec<ItemVersion>, String> {
    let mut cursor = None;
    let mut all = Vec::new();
    for _ in 0..100_000 {
        let page = call("list", c.list(cursor.as_ref()).await)?;
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
    Err("list never reached its last page".into())
}

fn versions_of(created: &[ItemVersion]) -> BTreeMap<ItemId, Version> {
    created.iter().map(|v| (v.id.clone(), v.version.clone())).collect()
}

fn check_once(listed: &[ItemVersion], expected: &BTreeMap<ItemId, Version>, what: &str) -> Check {
    let mut seen = BTreeMap::new();
    for v in listed {
        ensure!(seen.insert(v.id.clone(), v.version.clone()).is_none(), "{what} listed {} twice", v.id);
    }
    ensure!(
        &seen == expected,
        "{what} listed {} items, expected {}: {seen:?} vs {expected:?}",
        seen.len(),
        expected.len()
    );
    Ok(())
}

/// The snapshot listing covers every item exactly once, with its current version.
async fn list_pages_cover_every_item_once(c: &dyn Connector, options: &Options) -> Check {
    let created = create_n(c, &options.kind, options.items, "list").await?;
    check_once(&list_all(c).await?, &versions_of(&created), "list")
}

/// Pages through `changes` from `token` and answers the changes and the final token.
async fn changes_all(
    c: &dyn Connector,
    mut token: Option<SyncToken>,
) -> std::result::Result<(Vec<Change>, SyncToken), String> {
    let mut all = Vec::new();
    for _ in 0..100_000 {
        let page = call("changes", c.changes(token.as_ref()).await)?;
        all.extend(page.changes);
        token = Some(page.token);
        if !page.more {
            return token.map(|t| (all, t)).ok_or_else(|| "no token".into());
        }
    }
    Err("changes never reached its last page".into())
}

/// From the beginning, the change listing reports every item exactly once (incremental folders);
/// snapshot folders refuse it with a permanent error.
async fn changes_pages_cover_every_item_once(c: &dyn Connector, options: &Options) -> Check {
    let created = create_n(c, &options.kind, options.items, "chg").await?;
    if c.capabilities().change_detection == ChangeDetection::Snapshot {
        return match c.changes(None).await {
            Err(e) if e.kind() == ErrorKind::Permanent => Ok(()),
            Err(e) => Err(format!("changes on a snapshot folder answered {:?}, not Permanent", e.kind())),
            Ok(_) => Err("a snapshot folder answered changes".into()),
        };
    }
    let (changes, _) = changes_all(c, None).await?;
    let mut upserted = Vec::new();
    for change in changes {
        match change {
            Change::Upserted(v) => upserted.push(v),
            Change::Deleted(id) => return Err(format!("a listing from the beginning reported {id} as deleted")),
        }
    }
    check_once(&upserted, &versions_of(&created), "changes from the beginning")
}

/// After a token, a create, an update and a delete are reported as such, and a token taken
/// afterwards reports nothing.
async fn incremental_changes(c: &dyn Connector, kind: &ItemKind) -> Check {
    if c.capabilities().change_detection == ChangeDetection::Snapshot {
        return Ok(());
    }
    let mut existing = create_n(c, kind, 2, "inc").await?;
    let (_, token) = changes_all(c, None).await?;
    let (kept, gone) = (existing.remove(0), existing.remove(0));
    let updated = call(
        "update",
        c.update(&[ItemUpdate {
            id: kept.id.clone(),
            expected: kept.version.clone(),
            item: sample(kind, 9).into(),
            previous: None,
            origin: None,
        }])
        .await,
    )?;
    let updated = updated.into_iter().next().ok_or("update answered no result")?.map_err(|e| e.to_string())?;
    let deleted =
        call("delete", c.delete(&[ItemDelete { id: gone.id.clone(), expected: None, expected_hash: None }]).await)?;
    ensure!(matches!(deleted.first(), Some(Ok(Deleted::Gone))), "delete answered {deleted:?}");
    let added = create_n(c, kind, 1, "inc-new").await?.remove(0);
    let (changes, token) = changes_all(c, Some(token)).await?;
    let mut upserts = BTreeMap::new();
    let mut deletes = BTreeSet::new();
    for change in changes {
        match change {
            Change::Upserted(v) => {
                upserts.insert(v.id, v.version);
            }
            Change::Deleted(id) => {
                deletes.insert(id);
            }
        }
    }
    ensure!(upserts.get(&updated.id) == Some(&updated.version), "the update was not reported: {upserts:?}");
    ensure!(upserts.get(&added.id) == Some(&added.version), "the create was not reported: {upserts:?}");
    ensure!(deletes.contains(&gone.id), "the delete was not reported: {deletes:?}");
    ensure!(upserts.len() == 2 && deletes.len() == 1, "unexpected changes: {upserts:?} {deletes:?}");
    let (quiet, _) = changes_all(c, Some(token)).await?;
    ensure!(quiet.is_empty(), "changes since the latest token should be empty, got {quiet:?}");
    Ok(())
}

/// Only the items carrying one of the requested stamps are found, with their stamps.
async fn find_by_origin(c: &dyn Connector, kind: &ItemKind) -> Check {
    let created = create_n(c, kind, 3, "find").await?;
    let found = call("find_by_origin", c.find_by_origin(&[stamp("find0"), stamp("find2"), stamp("absent")]).await)?;
    let got: BTreeMap<ItemId, Option<OriginStamp>> = found.into_iter().map(|f| (f.id, f.origin)).collect();
    let expected: BTreeMap<ItemId, Option<OriginStamp>> =
        [(created[0].id.clone(), Some(stamp("find0"))), (created[2].id.clone(), Some(stamp("find2")))].into();
    ensure!(got == expected, "find_by_origin answered {got:?}, expected {expected:?}");
    Ok(())
}

/// In one batch, a stale and a missing item fail on their own while the good one is applied.
async fn batch_errors_are_per_item(c: &dyn Connector, kind: &ItemKind) -> Check {
    let created = create_n(c, kind, 3, "batch").await?;
    let missing = ItemId::new("conformance-missing-item");
    let upd = |id: &ItemId, expected: &Version| ItemUpdate {
        id: id.clone(),
        expected: expected.clone(),
        item: sample(kind, 7).into(),
        previous: None,
        origin: None,
    };
    let stale_version = Version::new("conformance-stale-version");
    let results = call(
        "update",
        c.update(&[
            upd(&created[0].id, &created[0].version),
            upd(&created[1].id, &stale_version),
            upd(&missing, &created[2].version),
        ])
        .await,
    )?;
    ensure!(results.len() == 3, "update answered {} results for 3 items", results.len());
    ensure!(results[0].is_ok(), "the good update failed: {:?}", results[0]);
    let kinds: Vec<Option<ErrorKind>> = results.iter().map(|r| r.as_ref().err().map(|e| e.kind())).collect();
    ensure!(
        kinds[1] == Some(ErrorKind::PreconditionFailed) && kinds[2] == Some(ErrorKind::NotFound),
        "per-item update errors were {kinds:?}, expected [ok, PreconditionFailed, NotFound]"
    );
    let got = call("get", c.get(&[created[0].id.clone(), created[1].id.clone()]).await)?;
    let contents: Vec<Item> =
        got.into_iter().map(|r| r.map(|f| f.item)).collect::<Result<_>>().map_err(|e| e.to_string())?;
    ensure!(contents[0].same_content(&sample(kind, 7)), "the good update was not applied");
    ensure!(contents[1].same_content(&sample(kind, 1)), "the stale update was applied");
    let deleted = call(
        "delete",
        c.delete(&[
            ItemDelete { id: missing, expected: None, expected_hash: None },
            ItemDelete { id: created[2].id.clone(), expected: None, expected_hash: None },
        ])
        .await,
    )?;
    ensure!(deleted.len() == 2, "delete answered {} results for 2 items", deleted.len());
    ensure!(
        matches!(&deleted[0], Err(e) if e.kind() == ErrorKind::NotFound) && deleted[1].is_ok(),
        "per-item delete results were {deleted:?}, expected [NotFound, ok]"
    );
    let listed: BTreeSet<ItemId> = list_all(c).await?.into_iter().map(|v| v.id).collect();
    let expected: BTreeSet<ItemId> = [created[0].id.clone(), created[1].id.clone()].into();
    ensure!(listed == expected, "after the batch the folder holds {listed:?}, expected {expected:?}");
    Ok(())
}
