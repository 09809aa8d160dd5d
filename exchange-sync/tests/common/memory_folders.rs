//! Folders in memory (the core's test kit) behind the service's `FolderProvider`: a snapshot hub
//! per group, an incremental folder per member mailbox, distribution groups, and a wrapper that
//! tests may put around every connector handed to the service.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use exchange_sync::FolderProvider;
use exchange_sync::config::{GroupConfig, HubFolder, MemberConfig, TargetFolder};
use exchange_sync_core::testkit::MemoryConnector;
use exchange_sync_core::{Connector, Item, ItemId, ItemKind, field};

/// What the service receives for a folder: the folder itself, or the folder behind a test's
/// wrapper (a connector that fails differently, say).
pub type Wrap = fn(MemoryConnector) -> Arc<dyn Connector>;

/// In-memory hubs, mailboxes and distribution groups.
#[derive(Default)]
pub struct MemoryFolders {
    hubs: Mutex<BTreeMap<String, MemoryConnector>>,
    mailboxes: Mutex<BTreeMap<String, MemoryConnector>>,
    distribution_groups: Mutex<BTreeMap<String, Vec<String>>>,
    /// Wraps members' folders (and the hubs' unless `raw_hub`).
    wrap: Option<Wrap>,
    /// Hands the hubs over unwrapped.
    raw_hub: bool,
}

impl MemoryFolders {
    /// Folders whose connectors reach the service behind `wrap`.
    pub fn wrapped(wrap: Wrap) -> Self {
        Self { wrap: Some(wrap), ..Self::default() }
    }

    /// The same folders with the hubs handed over unwrapped.
    pub fn with_raw_hub(mut self) -> Self {
        self.raw_hub = true;
        self
    }

    /// The hub of `group`, created empty on first use.
    pub fn hub(&self, group: &str) -> MemoryConnector {
        self.hubs.lock().unwrap().entry(group.to_owned()).or_insert_with(|| MemoryConnector::snapshot(group)).clone()
    }

    /// The group folder in `address`'s mailbox, created empty on first use.
    pub fn mailbox(&self, address: &str) -> MemoryConnector {
        self.mailboxes
            .lock()
            .unwrap()
            .entry(address.to_owned())
            .or_insert_with(|| MemoryConnector::new(format!("{address}/contacts")))
            .clone()
    }

    /// Makes `address` a distribution group of `members`.
    pub fn set_distribution_group(&self, address: &str, members: &[&str]) {
        self.distribution_groups
            .lock()
            .unwrap()
            .insert(address.to_owned(), members.iter().map(|m| m.to_string()).collect());
    }

    fn hand_over(&self, folder: MemoryConnector, wrap: bool) -> Arc<dyn Connector> {
        match self.wrap {
            Some(w) if wrap => w(folder),
            _ => folder.shared(),
        }
    }
}

#[async_trait]
impl FolderProvider for MemoryFolders {
    async fn hub(&self, group: &GroupConfig) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.hand_over(MemoryFolders::hub(self, &group.id), !self.raw_hub))
    }

    async fn member(
        &self,
        _group: &GroupConfig,
        member: &MemberConfig,
        _target: &TargetFolder,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(self.hand_over(self.mailbox(&member.mailbox), true))
    }

    async fn expand_distribution_group(
        &self,
        _group: &GroupConfig,
        address: &str,
    ) -> exchange_sync::Result<Vec<String>> {
        Ok(self.distribution_groups.lock().unwrap().get(address).cloned().unwrap_or_default())
    }
}

/// A contact named `name` with an address at fabrikam.test.
pub fn contact(name: &str) -> Item {
    Item::new(ItemKind::Contact)
        .with(field::DISPLAY_NAME, name)
        .with(field::EMAIL1, format!("{}@fabrikam.test", name.to_lowercase()))
}

/// Groups on the connection `lab`, one per id: the public folder `{id} contacts` holding one
/// contact (`Ann {id}`), copied to the one-way member `{id}@contoso.test`. For tests that tell
/// groups apart (which one a request or a lease concerns).
pub fn groups_of_one_contact(folders: &MemoryFolders, ids: &[&str]) -> Vec<GroupConfig> {
    ids.iter()
        .map(|id| {
            folders.hub(id).user_create(contact(&format!("Ann {id}")));
            GroupConfig::new(*id, "lab", HubFolder::PublicFolder(format!("{id} contacts")))
                .with_member(MemberConfig::one_way(format!("{id}@contoso.test")))
        })
        .collect()
}

/// The sorted display names in a folder.
pub fn display_names(folder: &MemoryConnector) -> Vec<String> {
    let mut names: Vec<String> =
        folder.items().iter().filter_map(|f| f.item.text(field::DISPLAY_NAME).map(str::to_owned)).collect();
    names.sort();
    names
}

/// The id of the item named `name` in a folder.
pub fn id_of(folder: &MemoryConnector, name: &str) -> ItemId {
    folder.items().into_iter().find(|f| f.item.text(field::DISPLAY_NAME) == Some(name)).unwrap().id
}

/// A field of the item named `name` in a folder.
pub fn text_of(folder: &MemoryConnector, name: &str, field: &str) -> Option<String> {
    folder
        .items()
        .into_iter()
        .find(|f| f.item.text(field::DISPLAY_NAME) == Some(name))
        .and_then(|f| f.item.text(field).map(str::to_owned))
}
