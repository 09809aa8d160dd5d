//! Item operations on mailbox and public folders, as a user (or a script) makes them.
//!
//! `SyncService.PublicFolder(path)` and `SyncService.MailboxFolder(mailbox, folder)` open a
//! `Folder`; a folder lists, reads, creates, updates and deletes items. Items created here carry
//! no origin stamp: to a sync group they are the user's own (in the hub or in a two-way member
//! they join the group). Every operation has a blocking form and an `...Async` form.

use std::collections::HashMap;
use std::sync::Arc;

use exchange_sync::ItemFolder;
use exchange_sync_bindings::item_records::{self, FolderItem, Item, ItemEdit};
use exchange_sync_bindings::items::Edit;
use exchange_sync_bindings::records::FolderInfo;
use exchange_sync_bindings::runtime::RuntimeUser;

use crate::errors::ExchangeSyncError;
use crate::runtime::{block_on, spawn};

/// A short way to build the common edit: set text fields.
#[uniffi::export]
pub fn set_text_fields(fields: HashMap<String, String>) -> ItemEdit {
    item_records::set_text_fields(fields)
}

/// A contact's name: its display name, or given name and surname (servers derive the display
/// name from them, so it is not synced content).
#[uniffi::export]
pub fn contact_name(item: &Item) -> String {
    item_records::contact_name(item)
}

/// A text field of an item (`null` when missing or not text).
#[uniffi::export]
pub fn text_field(item: &Item, name: String) -> Option<String> {
    item_records::text_field(item, &name)
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
