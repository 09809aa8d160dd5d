//! A folder whose items are computed, not stored: the server side of the state-size benchmark
//! (`state_size`), where 3,000 mailboxes of 5,000 contacts each would not fit in memory as
//! stored items (the emulator and the core's memory connector keep every item whole).
//!
//! Item `i` of a folder has an id and a ChangeKey of Exchange's length, made from the folder's
//! number and `i`, and a contact computed from `i`; only the items written since the folder was
//! made are kept (their new version, and for the hub the edited contact). The hub is a snapshot
//! folder (listed page by page, as EWS lists a public folder), the members are incremental
//! (a change feed from a token, as SyncFolderItems). What the engine cannot tell from a real
//! folder is all it needs for an incremental pass: listings, change feeds, reads and updates
//! answer as Exchange's would, per item, with version checks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use exchange_sync_core::connector::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem,
    ItemDelete, ItemUpdate, ItemVersion, ListPage, NewItem, PageCursor,
};
use exchange_sync_core::error::{Error, ErrorContext, Result};
use exchange_sync_core::{EntityId, GroupId, Item, ItemId, ItemKind, OriginStamp, SyncToken, Version, field};

/// Items per page of a listing (EWS: FindItem pages of 1,000).
const LIST_PAGE: usize = 1_000;
/// Items per batch the engine sends (the EWS connector's default).
const MAX_BATCH: usize = 50;

/// The length of an Exchange item id (base64 of its binary form) and of a ChangeKey.
const ITEM_ID_LEN: usize = 152;
const CHANGE_KEY_LEN: usize = 40;

/// The job title the benchmark's changed contacts get on the hub.
pub const CHANGED_JOB_TITLE: &str = "Changed for the state-size benchmark";

/// Contact number `i`, as the hub holds it before any change.
pub fn contact(i: usize) -> Item {
    let given = format!("Given{i}");
    let surname = format!("Surname{:05}", i % 99_991);
    Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, given.as_str())
        .with(field::SURNAME, surname.as_str())
        .with(field::DISPLAY_NAME, format!("{given} {surname}"))
        .with(field::FILE_AS, format!("{surname}, {given}"))
        .with(field::EMAIL1, format!("contact{i}@fabrikam.test"))
        .with(field::COMPANY, "Fabrikam")
        .with(field::DEPARTMENT, format!("Department {}", i % 40))
        .with(field::JOB_TITLE, "Account manager")
        .with(field::PHONE_BUSINESS, format!("+41 44 {:03} {:02} {:02}", i % 1000, i % 97, i % 89))
}

/// Whether the folder is the group's hub (a public folder: listed) or a member (a change feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Hub,
    Member,
}

/// What was written to a folder since it was made.
#[derive(Debug, Default)]
struct Written {
    /// The write generation (the change feed's position).
    generation: u64,
    /// Item number -> (generation of its last write, the item as written).
    items: BTreeMap<usize, (u64, Arc<Item>)>,
}

/// One computed folder (see the module's documentation).
pub struct SyntheticFolder {
    role: Role,
    /// The folder as configured, for messages.
    path: String,
    /// The folder's number: part of every id, so that folders never share one.
    number: usize,
    contacts: usize,
    /// The group, named in a member's origin stamps.
    group: GroupId,
    /// The entity of item `i` (the one derived from the hub's item `i`), shared by every folder.
    entities: Arc<[EntityId]>,
    /// The id's fixed part (the mailbox and folder part of an Exchange id).
    id_prefix: String,
    written: Mutex<Written>,
}

impl SyntheticFolder {
    /// Folder `number` holding `contacts` items.
    pub fn new(role: Role, path: String, number: usize, group: GroupId, entities: Arc<[EntityId]>) -> Self {
        let contacts = entities.len();
        SyntheticFolder {
            role,
            path,
            number,
            contacts,
            group,
            entities,
            id_prefix: id_prefix(number),
            written: Mutex::default(),
        }
    }

    /// The id of item `i`.
    pub fn item_id(&self, i: usize) -> ItemId {
        ItemId::new(format!("{}{i:08}", self.id_prefix))
    }

    /// The version of item `i` written at `generation` (0: as generated).
    pub fn version_at(&self, i: usize, generation: u64) -> Version {
        let head = format!("CQAAABYAAA{:06}{i:08}{generation:06}", self.number);
        Version::new(format!("{head}{}", "A".repeat(CHANGE_KEY_LEN.saturating_sub(head.len()))))
    }

    /// The server's id of the folder ([`Connector::folder_id`]).
    pub fn id(&self) -> String {
        format!("AQMkAD{:06}folder", self.number)
    }

    /// The token of a change feed read to its end before any write.
    pub fn initial_token() -> SyncToken {
        SyncToken::new("sync:0")
    }

    /// Plays an editor on the hub: item `i` gets a new job title and a new version.
    pub fn change(&self, i: usize) {
        let mut item = contact(i);
        item.set(field::JOB_TITLE, CHANGED_JOB_TITLE);
        let mut w = self.lock();
        w.generation += 1;
        let generation = w.generation;
        w.items.insert(i, (generation, Arc::new(item)));
    }

    /// Items written since the folder was made.
    pub fn written(&self) -> usize {
        self.lock().items.len()
    }

    fn lock(&self) -> MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn context(&self, operation: &'static str) -> ErrorContext {
        ErrorContext::operation(operation).with_folder(self.path.clone())
    }

    /// The number of the item an id names in this folder.
    fn number_of(&self, id: &ItemId) -> Option<usize> {
        let n: usize = id.as_str().strip_prefix(&self.id_prefix)?.parse().ok()?;
        (n < self.contacts).then_some(n)
    }

    fn version_of(&self, w: &Written, i: usize) -> Version {
        self.version_at(i, w.items.get(&i).map_or(0, |(g, _)| *g))
    }

    fn token(generation: u64) -> SyncToken {
        SyncToken::new(format!("sync:{generation}"))
    }

    fn unsupported(&self, operation: &'static str) -> Error {
        Error::permanent(
            format!("{operation}: the state-size benchmark's folders hold a generated state and take updates only"),
            self.context("write"),
        )
    }
}

#[async_trait]
impl Connector for SyntheticFolder {
    fn describe(&self) -> String {
        self.path.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let change_detection = match self.role {
            Role::Hub => ChangeDetection::Snapshot,
            Role::Member => ChangeDetection::Incremental,
        };
        Capabilities { change_detection, max_batch: MAX_BATCH, watch: false }
    }

    fn folder_id(&self) -> Option<String> {
        Some(self.id())
    }

    async fn changes(&self, token: Option<&SyncToken>) -> Result<ChangePage> {
        let w = self.lock();
        let since = match token {
            None => None,
            Some(t) => match t.as_str().strip_prefix("sync:").and_then(|g| g.parse::<u64>().ok()) {
                Some(g) if g <= w.generation => Some(g),
                _ => return Err(Error::InvalidSyncToken { context: Box::new(self.context("changes")) }),
            },
        };
        let changes: Vec<Change> = match since {
            // From the beginning: every item (in one page: the benchmark's passes read from a
            // token, so this serves only a folder whose token was lost).
            None => (0..self.contacts)
                .map(|i| Change::Upserted(ItemVersion { id: self.item_id(i), version: self.version_of(&w, i) }))
                .collect(),
            Some(g) => w
                .items
                .iter()
                .filter(|(_, (written, _))| *written > g)
                .map(|(&i, &(written, _))| {
                    Change::Upserted(ItemVersion { id: self.item_id(i), version: self.version_at(i, written) })
                })
                .collect(),
        };
        Ok(ChangePage { changes, token: Self::token(w.generation), more: false })
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> Result<ListPage> {
        let start: usize = match cursor {
            None => 0,
            Some(PageCursor(c)) => c
                .parse()
                .map_err(|_| Error::permanent(format!("no such listing position: {c}"), self.context("list")))?,
        };
        let end = (start + LIST_PAGE).min(self.contacts);
        let w = self.lock();
        let items =
            (start..end).map(|i| ItemVersion { id: self.item_id(i), version: self.version_of(&w, i) }).collect();
        let next = (end < self.contacts).then(|| PageCursor(end.to_string()));
        Ok(ListPage { items, next })
    }

    async fn get(&self, ids: &[ItemId]) -> Result<BatchResult<FetchedItem>> {
        let w = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                let Some(i) = self.number_of(id) else {
                    return Err(Error::NotFound { context: Box::new(self.context("get").with_item(id.clone())) });
                };
                let item = w.items.get(&i).map_or_else(|| contact(i), |(_, item)| item.as_ref().clone());
                let origin = match self.role {
                    Role::Hub => None,
                    Role::Member => Some(OriginStamp::new(self.group.clone(), self.entities[i].clone())),
                };
                Ok(FetchedItem { id: id.clone(), version: self.version_of(&w, i), item, origin })
            })
            .collect())
    }

    async fn create(&self, _items: &[NewItem]) -> Result<BatchResult<ItemVersion>> {
        Err(self.unsupported("create"))
    }

    async fn update(&self, updates: &[ItemUpdate]) -> Result<BatchResult<ItemVersion>> {
        let mut w = self.lock();
        Ok(updates
            .iter()
            .map(|u| {
                let context = || Box::new(self.context("update").with_item(u.id.clone()));
                let Some(i) = self.number_of(&u.id) else { return Err(Error::NotFound { context: context() }) };
                if self.version_of(&w, i) != u.expected {
                    return Err(Error::PreconditionFailed { context: context() });
                }
                w.generation += 1;
                let generation = w.generation;
                w.items.insert(i, (generation, Arc::clone(&u.item)));
                Ok(ItemVersion { id: u.id.clone(), version: self.version_at(i, generation) })
            })
            .collect())
    }

    async fn delete(&self, _items: &[ItemDelete]) -> Result<BatchResult<Deleted>> {
        Err(self.unsupported("delete"))
    }

    async fn find_by_origin(&self, _origins: &[OriginStamp]) -> Result<Vec<FetchedItem>> {
        Err(self.unsupported("find by origin"))
    }

    async fn watch(&self) -> Result<BoxStream<'static, ChangeHint>> {
        Ok(stream::empty().boxed())
    }
}

/// The fixed part of the ids of folder `number` (the mailbox and folder part of an Exchange id);
/// 8 digits of the item's number end each id.
pub fn id_prefix(number: usize) -> String {
    let head = format!("AAMkAD{number:06}");
    format!("{head}{}", "A".repeat(ITEM_ID_LEN - 8 - head.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(role: Role, contacts: usize) -> SyntheticFolder {
        let group = GroupId::new("g");
        let entities: Arc<[EntityId]> = (0..contacts).map(|i| EntityId::new(format!("e{i}"))).collect();
        SyntheticFolder::new(role, "m0001@contoso.test/contacts".into(), 1, group, entities)
    }

    fn update(f: &SyntheticFolder, i: usize, expected: Version) -> ItemUpdate {
        ItemUpdate { id: f.item_id(i), expected, item: Arc::new(contact(i)), previous: None, origin: None }
    }

    #[tokio::test]
    async fn ids_and_versions_have_exchanges_length_and_name_their_item() {
        let f = folder(Role::Member, 10);
        assert_eq!(f.item_id(7).as_str().len(), ITEM_ID_LEN);
        assert_eq!(f.version_at(7, 0).as_str().len(), CHANGE_KEY_LEN);
        let fetched = f.get(&[f.item_id(7), ItemId::new("elsewhere")]).await.unwrap();
        let first = fetched[0].as_ref().unwrap();
        assert_eq!(first.item.text(field::GIVEN_NAME), Some("Given7"));
        assert_eq!(first.origin.as_ref().map(|o| o.entity.as_str()), Some("e7"));
        assert!(fetched[1].is_err(), "an id of no item of the folder is not found");
    }

    #[tokio::test]
    async fn an_update_checks_the_version_and_shows_in_the_change_feed() {
        let f = folder(Role::Member, 10);
        let start = SyntheticFolder::initial_token();
        assert!(f.changes(Some(&start)).await.unwrap().changes.is_empty());
        let stale = f.update(&[update(&f, 3, f.version_at(3, 9))]).await.unwrap();
        assert!(matches!(stale[0], Err(Error::PreconditionFailed { .. })));
        let done = f.update(&[update(&f, 3, f.version_at(3, 0))]).await.unwrap();
        let written = done[0].as_ref().unwrap().clone();
        let page = f.changes(Some(&start)).await.unwrap();
        assert_eq!(page.changes, vec![Change::Upserted(written)]);
        assert!(f.changes(Some(&page.token)).await.unwrap().changes.is_empty());
        assert_eq!(f.changes(None).await.unwrap().changes.len(), 10, "from the beginning: every item");
    }

    #[tokio::test]
    async fn the_hub_lists_page_by_page_and_shows_a_change_as_a_new_version() {
        let f = folder(Role::Hub, 2_500);
        f.change(1_200);
        let mut cursor = None;
        let mut items = Vec::new();
        loop {
            let page = f.list(cursor.as_ref()).await.unwrap();
            items.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(items.len(), 2_500);
        assert_eq!(items[1_200].version, f.version_at(1_200, 1));
        assert_eq!(items[1_199].version, f.version_at(1_199, 0));
        let changed = f.get(&[f.item_id(1_200)]).await.unwrap().remove(0).unwrap();
        assert_eq!(changed.item.text(field::JOB_TITLE), Some(CHANGED_JOB_TITLE));
        assert!(changed.origin.is_none(), "the hub's items are its own");
    }
}
