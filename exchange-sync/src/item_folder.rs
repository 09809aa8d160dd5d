//! One folder opened for scripting: list, read, create, update and delete items as a user would.
//!
//! Scripts (and the Python and .NET bindings) need simple item operations without a second
//! library, and the quickstart and tests play users' edits with them. Items created here carry no
//! origin stamp: to the sync engine they are the user's own (in a two-way member that adopts new
//! items, or in the hub, they join the group).

use std::sync::Arc;

use exchange_sync_core::{Connector, Item, ItemId, ItemUpdate, PageCursor};
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{EwsClient, FolderRef, FolderShape, ItemDraft};
use serde::Serialize;

use crate::error::{Error, Result};

/// An item as a script sees it: id, version and content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderItem {
    /// The item's id in this folder.
    pub id: String,
    /// Its current version (the EWS change key).
    pub version: String,
    /// Its content.
    pub item: Item,
    /// Whether a sync group created or adopted it (it carries an origin stamp).
    pub synced: bool,
}

/// A child folder, as listing a folder's subfolders shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderSummary {
    /// The folder's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its class (`IPF.Contact`, `IPF.Appointment`, ...), when the server said.
    pub class: Option<String>,
    /// How many items it holds, when the server said.
    pub total_count: Option<u32>,
    /// How many subfolders it has, when the server said.
    pub child_folder_count: Option<u32>,
}

/// A folder opened for item operations.
#[derive(Clone)]
pub struct ItemFolder {
    connector: Arc<dyn Connector>,
    client: EwsClient,
    folder: FolderRef,
}

impl ItemFolder {
    pub(crate) fn new(connector: Arc<dyn Connector>, client: EwsClient, folder: FolderRef) -> Self {
        ItemFolder { connector, client, folder }
    }

    /// The folder's description, e.g. `alice@contoso.test/contacts`.
    pub fn describe(&self) -> String {
        self.connector.describe()
    }

    /// The folder as the sync engine sees it.
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector)
    }

    /// The EWS client of the folder's mailbox (for what a script does beyond items: a calendar
    /// view, an occurrence of a series).
    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    /// The folder.
    pub fn folder(&self) -> &FolderRef {
        &self.folder
    }

    /// The folder's direct subfolders (scripts look around a mailbox or the public folder tree
    /// before choosing a hub or a target).
    pub async fn subfolders(&self) -> Result<Vec<FolderSummary>> {
        let folders = self
            .client
            .find_folders(&self.folder, &FolderShape::default(), Traversal::Shallow)
            .await
            .map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &self.describe())))?;
        Ok(folders
            .into_iter()
            .map(|f| FolderSummary {
                id: f.id.id,
                name: f.display_name.unwrap_or_default(),
                class: f.folder_class,
                total_count: f.total_count,
                child_folder_count: f.child_folder_count,
            })
            .collect())
    }

    /// Every item of the folder, with content.
    pub async fn items(&self) -> Result<Vec<FolderItem>> {
        let mut ids = Vec::new();
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = self.connector.list(cursor.as_ref()).await?;
            ids.extend(page.items.into_iter().map(|v| v.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut out = Vec::new();
        let batch = self.connector.capabilities().max_batch.max(1);
        for chunk in ids.chunks(batch) {
            for fetched in self.connector.get(chunk).await? {
                match fetched {
                    Ok(f) => out.push(FolderItem {
                        id: f.id.to_string(),
                        version: f.version.to_string(),
                        synced: f.origin.is_some(),
                        item: f.item,
                    }),
                    // Deleted between listing and reading.
                    Err(e) if e.kind() == exchange_sync_core::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(out)
    }

    /// One item by id.
    pub async fn get(&self, id: &str) -> Result<FolderItem> {
        let mut results = self.connector.get(&[ItemId::new(id)]).await?;
        let fetched = results.pop().ok_or_else(|| {
            Error::Sync(exchange_sync_core::Error::permanent(
                "the server answered no item",
                exchange_sync_core::ErrorContext::operation("get").with_folder(self.describe()),
            ))
        })??;
        Ok(FolderItem {
            id: fetched.id.to_string(),
            version: fetched.version.to_string(),
            synced: fetched.origin.is_some(),
            item: fetched.item,
        })
    }

    /// Creates an item (the user's own: no origin stamp); answers its id.
    pub async fn create(&self, item: &Item) -> Result<String> {
        let (item_type, fields) = exchange_sync_ews::mapping::to_fields(item, None);
        let mut results = self
            .client
            .create_items(&self.folder, &[ItemDraft { item_type, fields }])
            .await
            .map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &self.describe())))?;
        let id = results.pop().ok_or_else(|| {
            Error::Sync(exchange_sync_core::Error::permanent(
                "the server answered no item id",
                exchange_sync_core::ErrorContext::operation("create").with_folder(self.describe()),
            ))
        })?;
        let id = id.map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &self.describe())))?;
        Ok(id.id)
    }

    /// Changes an item with `edit`, as a user would (read, edit, write back guarded by the version
    /// read: a concurrent change makes it fail rather than be overwritten).
    pub async fn update(&self, id: &str, edit: impl FnOnce(&mut Item)) -> Result<()> {
        let current = self.get(id).await?;
        let mut item = current.item.clone();
        edit(&mut item);
        let update = ItemUpdate {
            id: ItemId::new(id),
            expected: exchange_sync_core::Version::new(current.version),
            item: item.into(),
            previous: Some(current.item),
            origin: None,
        };
        for result in self.connector.update(&[update]).await? {
            result?;
        }
        Ok(())
    }

    /// Deletes an item.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let delete = exchange_sync_core::ItemDelete { id: ItemId::new(id), expected: None, expected_hash: None };
        for result in self.connector.delete(&[delete]).await? {
            result?;
        }
        Ok(())
    }
}
