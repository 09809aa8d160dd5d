//! Identifiers of items and folders, and how requests name folders.
//!
//! EWS ids are opaque and per mailbox (they change when an item moves, and differ between Exchange
//! versions); the change key is the optimistic-concurrency version of the item.

use crate::xml::{Element, XmlWriter};

/// An item id with its change key (the version the server gave it when we read it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId {
    /// The opaque item id.
    pub id: String,
    /// The change key; `None` when it is not known or not wanted (e.g. for a delete).
    pub change_key: Option<String>,
}

impl ItemId {
    /// An id without change key.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), change_key: None }
    }

    /// An id with a change key.
    pub fn with_change_key(id: impl Into<String>, change_key: impl Into<String>) -> Self {
        Self { id: id.into(), change_key: Some(change_key.into()) }
    }

    /// Reads `Id` / `ChangeKey` attributes of an id element.
    pub fn from_element(e: &Element) -> Option<Self> {
        Some(Self { id: e.attr("Id")?.to_owned(), change_key: e.attr("ChangeKey").map(str::to_owned) })
    }

    /// Like [`ItemId::from_element`], moving the attribute values out of the element instead of
    /// copying them.
    pub fn take_from_element(mut e: Element) -> Option<Self> {
        Some(Self { id: e.take_attr("Id")?, change_key: e.take_attr("ChangeKey") })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter, tag: &str) {
        match &self.change_key {
            Some(ck) => w.empty(tag, &[("Id", &self.id), ("ChangeKey", ck)]),
            None => w.empty(tag, &[("Id", &self.id)]),
        };
    }
}

/// A folder id with its change key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderId {
    /// The opaque folder id.
    pub id: String,
    /// The change key, when known.
    pub change_key: Option<String>,
}

impl FolderId {
    /// An id without change key.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), change_key: None }
    }

    /// Reads `Id` / `ChangeKey` attributes of an id element.
    pub fn from_element(e: &Element) -> Option<Self> {
        Some(Self { id: e.attr("Id")?.to_owned(), change_key: e.attr("ChangeKey").map(str::to_owned) })
    }
}

/// The well-known folders EWS names without an id (`t:DistinguishedFolderId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DistinguishedFolder {
    /// The mailbox's default Contacts folder.
    Contacts,
    /// The mailbox's default Calendar folder.
    Calendar,
    /// The mailbox's default Tasks folder.
    Tasks,
    /// The mailbox's default Notes folder.
    Notes,
    /// The Inbox.
    Inbox,
    /// The top of the visible folder tree of a mailbox.
    MsgFolderRoot,
    /// The root of a mailbox.
    Root,
    /// The root of the public folder tree.
    PublicFoldersRoot,
    /// A mailbox's Recoverable Items "Deletions" folder (the dumpster): where SoftDelete puts
    /// items (Exchange 2010 SP1 and later; not on public folders).
    RecoverableItemsDeletions,
}

impl DistinguishedFolder {
    /// The schema name (e.g. `publicfoldersroot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Calendar => "calendar",
            Self::Tasks => "tasks",
            Self::Notes => "notes",
            Self::Inbox => "inbox",
            Self::MsgFolderRoot => "msgfolderroot",
            Self::Root => "root",
            Self::PublicFoldersRoot => "publicfoldersroot",
            Self::RecoverableItemsDeletions => "recoverableitemsdeletions",
        }
    }
}

/// How a request names a folder: by id, or by distinguished name (optionally in another mailbox,
/// which is how delegate access addresses a folder without impersonation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FolderRef {
    /// A folder by its id.
    Id(FolderId),
    /// A well-known folder, in the acting mailbox or the given one.
    Distinguished {
        /// Which folder.
        folder: DistinguishedFolder,
        /// The mailbox (SMTP address) it is in, when not the acting one.
        mailbox: Option<String>,
    },
}

impl FolderRef {
    /// A well-known folder of the acting mailbox.
    pub fn distinguished(folder: DistinguishedFolder) -> Self {
        Self::Distinguished { folder, mailbox: None }
    }

    /// A folder by id.
    pub fn id(id: impl Into<String>) -> Self {
        Self::Id(FolderId::new(id))
    }

    /// A short description for error contexts and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Id(f) => f.id.clone(),
            Self::Distinguished { folder, mailbox: None } => folder.as_str().to_owned(),
            Self::Distinguished { folder, mailbox: Some(m) } => format!("{}@{m}", folder.as_str()),
        }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        match self {
            Self::Id(f) => match &f.change_key {
                Some(ck) => w.empty("t:FolderId", &[("Id", &f.id), ("ChangeKey", ck)]),
                None => w.empty("t:FolderId", &[("Id", &f.id)]),
            },
            Self::Distinguished { folder, mailbox: None } => {
                w.empty("t:DistinguishedFolderId", &[("Id", folder.as_str())])
            }
            Self::Distinguished { folder, mailbox: Some(m) } => w
                .open("t:DistinguishedFolderId", &[("Id", folder.as_str())])
                .open("t:Mailbox", &[])
                .leaf("t:EmailAddress", m)
                .close("t:Mailbox")
                .close("t:DistinguishedFolderId"),
        };
    }
}

impl From<FolderId> for FolderRef {
    fn from(id: FolderId) -> Self {
        Self::Id(id)
    }
}

impl From<DistinguishedFolder> for FolderRef {
    fn from(folder: DistinguishedFolder) -> Self {
        Self::distinguished(folder)
    }
}
