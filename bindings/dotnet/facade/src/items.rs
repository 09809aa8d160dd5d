//! Item operations on mailbox and public folders, as a user (or a script) makes them.
//!
//! `SyncService.PublicFolder(path)` and `SyncService.MailboxFolder(mailbox, folder)` open a
//! `Folder`; a folder lists, reads, creates, updates and deletes items. Items created here carry
//! no origin stamp: to a sync group they are the user's own (in the hub or in a two-way member
//! they join the group). Every operation has a blocking form and an `...Async` form.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use exchange_sync::ItemFolder;
use exchange_sync_bindings::items::{self, ItemEdit as Edit};
use exchange_sync_bindings::records::FolderInfo;
use exchange_sync_bindings::runtime::RuntimeUser;
use exchange_sync_core::{BodyFormat, FieldValue as CoreValue, Item as CoreItem};

use crate::errors::ExchangeSyncError;
use crate::runtime::{block_on, spawn};

/// A field's value.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FieldValue {
    /// Text.
    Text {
        /// The text.
        value: String,
    },
    /// A whole number.
    Integer {
        /// The number.
        value: i64,
    },
    /// A flag.
    Boolean {
        /// The flag.
        value: bool,
    },
    /// A point in time (UTC). (Not called `DateTime`, which C# code would confuse with
    /// `System.DateTime`.)
    Timestamp {
        /// The time.
        value: SystemTime,
    },
    /// A list of strings.
    TextList {
        /// The strings.
        values: Vec<String>,
    },
}

impl From<&CoreValue> for FieldValue {
    fn from(v: &CoreValue) -> Self {
        match v {
            CoreValue::Text(s) => FieldValue::Text { value: s.clone() },
            CoreValue::Integer(i) => FieldValue::Integer { value: *i },
            CoreValue::Boolean(b) => FieldValue::Boolean { value: *b },
            CoreValue::DateTime(d) => FieldValue::Timestamp { value: SystemTime::from(*d) },
            CoreValue::TextList(l) => FieldValue::TextList { values: l.clone() },
        }
    }
}

impl From<FieldValue> for CoreValue {
    fn from(v: FieldValue) -> Self {
        match v {
            FieldValue::Text { value } => CoreValue::Text(value),
            FieldValue::Integer { value } => CoreValue::Integer(value),
            FieldValue::Boolean { value } => CoreValue::Boolean(value),
            FieldValue::Timestamp { value } => CoreValue::DateTime(DateTime::<Utc>::from(value)),
            FieldValue::TextList { values } => CoreValue::TextList(values),
        }
    }
}

/// A normalized item: a kind, canonical fields (`given_name`, `surname`, `email1.address`,
/// `phone.mobile`, `job_title`, `address.business.city`, ...), a body and categories.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Item {
    /// The fields by canonical name.
    pub fields: HashMap<String, FieldValue>,
    /// `contact`, `calendar_item`, `task`, `note`, `distribution_list`, or an `IPM.*` class.
    #[uniffi(default = "contact")]
    pub kind: String,
    /// The body's text, if any.
    #[uniffi(default = None)]
    pub body: Option<String>,
    /// Whether the body is HTML (otherwise plain text).
    #[uniffi(default = false)]
    pub body_is_html: bool,
    /// The categories, sorted.
    #[uniffi(default = [])]
    pub categories: Vec<String>,
}

impl From<&CoreItem> for Item {
    fn from(i: &CoreItem) -> Self {
        Item {
            kind: items::kind_name(&i.kind),
            fields: i.fields.iter().map(|(k, v)| (k.clone(), FieldValue::from(v))).collect(),
            body: i.body.as_ref().map(|b| b.content.clone()),
            body_is_html: i.body.as_ref().is_some_and(|b| b.format == BodyFormat::Html),
            categories: i.categories.iter().cloned().collect(),
        }
    }
}

impl Item {
    fn to_core(&self) -> exchange_sync_bindings::Result<CoreItem> {
        let fields = self.fields.iter().map(|(k, v)| (k.clone(), v.clone().into()));
        items::new_item(&self.kind, fields, self.body.clone(), self.body_is_html, self.categories.clone())
    }
}

/// An item of a folder: its id there, its version and its content.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FolderItem {
    /// The item's id in this folder (ids are per mailbox: never use one across mailboxes).
    pub id: String,
    /// Its current version (the EWS change key).
    pub version: String,
    /// Its content.
    pub item: Item,
    /// Whether a sync group created or adopted it (it carries an origin stamp).
    pub synced: bool,
}

impl From<exchange_sync::FolderItem> for FolderItem {
    fn from(f: exchange_sync::FolderItem) -> Self {
        FolderItem { id: f.id, version: f.version, item: Item::from(&f.item), synced: f.synced }
    }
}

/// The edit `Folder.Update` applies to an item, as a user would make it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ItemEdit {
    /// Fields to set.
    pub set: HashMap<String, FieldValue>,
    /// Fields to remove.
    #[uniffi(default = [])]
    pub remove: Vec<String>,
    /// A new body text (`null`: unchanged).
    #[uniffi(default = None)]
    pub body: Option<String>,
    /// Remove the body.
    #[uniffi(default = false)]
    pub clear_body: bool,
    /// New categories (`null`: unchanged).
    #[uniffi(default = None)]
    pub categories: Option<Vec<String>>,
}

impl From<ItemEdit> for Edit {
    fn from(e: ItemEdit) -> Self {
        let set = e.set.into_iter().map(|(k, v)| (k, Some(v.into())));
        Edit {
            fields: set.chain(e.remove.into_iter().map(|k| (k, None))).collect(),
            body: e.body,
            clear_body: e.clear_body,
            categories: e.categories,
        }
    }
}

/// A short way to build the common edit: set text fields.
#[uniffi::export]
pub fn set_text_fields(fields: HashMap<String, String>) -> ItemEdit {
    ItemEdit {
        set: fields.into_iter().map(|(k, v)| (k, FieldValue::Text { value: v })).collect(),
        remove: Vec::new(),
        body: None,
        clear_body: false,
        categories: None,
    }
}

/// A contact's name: its display name, or given name and surname (servers derive the display
/// name from them, so it is not synced content).
#[uniffi::export]
pub fn contact_name(item: &Item) -> String {
    let text = |f: &str| match item.fields.get(f) {
        Some(FieldValue::Text { value }) => Some(value.clone()),
        _ => None,
    };
    if let Some(name) = text("display_name") {
        return name;
    }
    ["given_name", "surname"].iter().filter_map(|f| text(f)).collect::<Vec<_>>().join(" ")
}

/// A text field of an item (`null` when missing or not text).
#[uniffi::export]
pub fn text_field(item: &Item, name: String) -> Option<String> {
    match item.fields.get(&name) {
        Some(FieldValue::Text { value }) => Some(value.clone()),
        _ => None,
    }
}

/// A mailbox or public folder opened for item operations.
#[derive(uniffi::Object)]
pub struct Folder {
    inner: ItemFolder,
    _runtime: RuntimeUser,
}

impl Folder {
    /// Wraps an opened folder.
    pub fn new(inner: ItemFolder) -> Arc<Self> {
        Arc::new(Folder { inner, _runtime: RuntimeUser::new() })
    }
}

async fn items_of(f: ItemFolder) -> exchange_sync_bindings::Result<Vec<FolderItem>> {
    Ok(f.items().await?.into_iter().map(FolderItem::from).collect())
}

async fn update_of(f: ItemFolder, id: String, edit: ItemEdit) -> exchange_sync_bindings::Result<()> {
    let edit = Edit::from(edit);
    Ok(f.update(&id, |item| edit.apply(item)).await?)
}

async fn create_in(f: ItemFolder, item: Item) -> exchange_sync_bindings::Result<String> {
    let item = item.to_core()?;
    Ok(f.create(&item).await?)
}

#[uniffi::export]
impl Folder {
    /// The folder's description, e.g. `alice@contoso.test/contacts/Company Contacts`.
    pub fn description(&self) -> String {
        self.inner.describe()
    }

    /// The direct subfolders.
    pub fn subfolders(&self) -> Result<Vec<FolderInfo>, ExchangeSyncError> {
        let f = self.inner.clone();
        block_on(async move { Ok(f.subfolders().await?.into_iter().map(FolderInfo::from).collect()) })
    }

    /// Every item, with content.
    pub fn items(&self) -> Result<Vec<FolderItem>, ExchangeSyncError> {
        block_on(items_of(self.inner.clone()))
    }

    /// Every item, with content, without blocking.
    pub async fn items_async(&self) -> Result<Vec<FolderItem>, ExchangeSyncError> {
        spawn(items_of(self.inner.clone())).await
    }

    /// One item by id (`NotFound` when it is gone).
    pub fn get(&self, id: String) -> Result<FolderItem, ExchangeSyncError> {
        let f = self.inner.clone();
        block_on(async move { Ok(f.get(&id).await?.into()) })
    }

    /// One item by id, without blocking.
    pub async fn get_async(&self, id: String) -> Result<FolderItem, ExchangeSyncError> {
        let f = self.inner.clone();
        spawn(async move { Ok(f.get(&id).await?.into()) }).await
    }

    /// Creates an item (the user's own: no origin stamp); returns its id.
    pub fn create(&self, item: Item) -> Result<String, ExchangeSyncError> {
        block_on(create_in(self.inner.clone(), item))
    }

    /// Creates an item without blocking; returns its id.
    pub async fn create_async(&self, item: Item) -> Result<String, ExchangeSyncError> {
        spawn(create_in(self.inner.clone(), item)).await
    }

    /// Changes an item as a user would: reads it, applies the edit, writes it back guarded by
    /// the version read (a concurrent change throws `Conflict` rather than being overwritten).
    pub fn update(&self, id: String, edit: ItemEdit) -> Result<(), ExchangeSyncError> {
        block_on(update_of(self.inner.clone(), id, edit))
    }

    /// Changes an item without blocking; see `Update`.
    pub async fn update_async(&self, id: String, edit: ItemEdit) -> Result<(), ExchangeSyncError> {
        spawn(update_of(self.inner.clone(), id, edit)).await
    }

    /// Deletes an item.
    pub fn delete(&self, id: String) -> Result<(), ExchangeSyncError> {
        let f = self.inner.clone();
        block_on(async move { Ok(f.delete(&id).await?) })
    }

    /// Deletes an item without blocking.
    pub async fn delete_async(&self, id: String) -> Result<(), ExchangeSyncError> {
        let f = self.inner.clone();
        spawn(async move { Ok(f.delete(&id).await?) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_the_core_model() {
        let mut fields = HashMap::new();
        fields.insert("given_name".to_owned(), FieldValue::Text { value: "Zoe".into() });
        fields.insert("children".to_owned(), FieldValue::TextList { values: vec!["A".into()] });
        let item = Item {
            kind: "contact".into(),
            fields,
            body: Some("hi".into()),
            body_is_html: false,
            categories: vec!["VIP".into()],
        };
        assert_eq!(Item::from(&item.to_core().unwrap()), item);
        assert_eq!(contact_name(&item), "Zoe");
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let item = Item {
            kind: "spaceship".into(),
            fields: HashMap::new(),
            body: None,
            body_is_html: false,
            categories: vec![],
        };
        assert!(matches!(item.to_core().map_err(ExchangeSyncError::from), Err(ExchangeSyncError::Config { .. })));
    }
}
