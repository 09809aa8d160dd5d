//! The in-memory Exchange store: mailboxes, folders, items, change tracking and events.
//!
//! Each mailbox sits behind its own mutex, so requests against different mailboxes never wait
//! for each other and each critical section is a few map operations. Every write bumps the item
//! version (ChangeKey), advances LastModifiedTime strictly, records a change sequence number for
//! SyncFolderItems and queues a notification event that the [`crate::notifications`] hub
//! delivers once the lock is released.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::notifications::NotificationHub;
use crate::response_code::EwsError;
use crate::xml::Element;

/// Rights a user holds on a folder, from none to owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// Cannot see the folder.
    None,
    /// Can read items.
    Reviewer,
    /// Can read, create, modify and delete items.
    Editor,
    /// Everything, including creating subfolders.
    Owner,
}

/// What happened to an item or folder (the notification event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An item or folder was created.
    Created,
    /// An item or folder was modified.
    Modified,
    /// An item or folder was deleted.
    Deleted,
    /// An item was moved (e.g. to Deleted Items).
    Moved,
}

/// What a change event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTarget {
    /// An item, by number.
    Item(u64),
    /// A folder, by number.
    Folder(u64),
}

/// One change in a mailbox, as notifications report it.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    /// Index of the mailbox.
    pub mailbox: u32,
    /// What happened.
    pub kind: EventKind,
    /// The item or folder.
    pub target: EventTarget,
    /// Folder that holds the target (after the change).
    pub parent: u64,
    /// For moves: where it was, and its id there.
    pub old: Option<(EventTarget, u64)>,
    /// Change key of the item after the change (items only).
    pub version: u64,
    /// When it happened.
    pub time: DateTime<Utc>,
}

/// The latest change of one item in a folder's change log (keyed by sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Item number.
    pub item: u64,
    /// Sequence number at which the item was created (in this folder).
    pub created_seq: u64,
    /// The item was deleted (or moved away): a tombstone.
    pub deleted: bool,
}

/// One folder of a mailbox.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Folder number, unique in the mailbox.
    pub number: u64,
    /// Parent folder (None for the root).
    pub parent: Option<u64>,
    /// Display name.
    pub display_name: String,
    /// Folder class (`IPF.Contact`, `IPF.Appointment`, ...).
    pub class: String,
    /// Distinguished folder name, if it is one.
    pub distinguished: Option<String>,
    /// Items in the folder, by number (numbers grow, so this is creation order).
    pub items: BTreeSet<u64>,
    /// Child folders.
    pub children: BTreeSet<u64>,
    /// Version of the folder itself (its ChangeKey).
    pub version: u64,
    /// Sequence number of creation.
    pub created_seq: u64,
    /// Sequence number of the last change of the folder itself.
    pub changed_seq: u64,
    /// PR_LOCAL_COMMIT_TIME_MAX: last time anything in the folder changed.
    pub last_commit: DateTime<Utc>,
    /// PR_DELETED_COUNT_TOTAL: items ever deleted from the folder.
    pub deleted_count: u64,
    /// Latest change per item (live items and tombstones) by sequence number: SyncFolderItems
    /// reads the changes after a state as a range, whatever the folder size.
    pub changes: BTreeMap<u64, ChangeEntry>,
    /// Rights per user address (lowercase).
    pub permissions: HashMap<String, Permission>,
    /// Rights of everyone else.
    pub default_permission: Permission,
}

/// One item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Item number, unique in the mailbox.
    pub number: u64,
    /// Folder holding the item.
    pub folder: u64,
    /// Element name (`Contact`, `CalendarItem`, `Task`, `Message`, `DistributionList`, ...).
    pub element: String,
    /// Item class (`IPM.Contact`, `IPM.StickyNote`, ...).
    pub item_class: String,
    /// Client-settable fields as `t:` elements, without server-managed ones.
    pub fields: Vec<Element>,
    /// `t:ExtendedProperty` elements.
    pub extended: Vec<Element>,
    /// Version, the source of the ChangeKey.
    pub version: u64,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last modification time.
    pub modified: DateTime<Utc>,
    /// Sequence number of creation (SyncFolderItems).
    pub created_seq: u64,
    /// Sequence number of the last change (SyncFolderItems).
    pub changed_seq: u64,
}

impl Item {
    /// The first field with this element name.
    pub fn field(&self, name: &str) -> Option<&Element> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Replaces or inserts a field.
    pub fn set_field(&mut self, field: Element) {
        match self.fields.iter_mut().find(|f| f.name == field.name) {
            Some(slot) => *slot = field,
            None => self.fields.push(field),
        }
    }

    /// Removes a field; true when it existed.
    pub fn remove_field(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|f| f.name != name);
        before != self.fields.len()
    }
}

/// Whether a mailbox is a user's or the public folder store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxKind {
    /// A user mailbox.
    User,
    /// The public folder hierarchy.
    PublicFolders,
}

/// Distinguished folders of a user mailbox: (name, display name, class, parent name).
const USER_FOLDERS: &[(&str, &str, &str, &str)] = &[
    ("msgfolderroot", "Top of Information Store", "IPF.Note", "root"),
    ("inbox", "Inbox", "IPF.Note", "msgfolderroot"),
    ("outbox", "Outbox", "IPF.Note", "msgfolderroot"),
    ("sentitems", "Sent Items", "IPF.Note", "msgfolderroot"),
    ("deleteditems", "Deleted Items", "IPF.Note", "msgfolderroot"),
    ("drafts", "Drafts", "IPF.Note", "msgfolderroot"),
    ("junkemail", "Junk Email", "IPF.Note", "msgfolderroot"),
    ("contacts", "Contacts", "IPF.Contact", "msgfolderroot"),
    ("calendar", "Calendar", "IPF.Appointment", "msgfolderroot"),
    ("tasks", "Tasks", "IPF.Task", "msgfolderroot"),
    ("notes", "Notes", "IPF.StickyNote", "msgfolderroot"),
    ("journal", "Journal", "IPF.Journal", "msgfolderroot"),
    ("recoverableitemsroot", "Recoverable Items", "", "root"),
    ("recoverableitemsdeletions", "Deletions", "", "recoverableitemsroot"),
];

/// One mailbox (a user's, or the public folder tree).
#[derive(Debug)]
pub struct Mailbox {
    /// Index in the store, part of every id.
    pub index: u32,
    /// Primary SMTP address (lowercase).
    pub address: String,
    /// Display name of the owner.
    pub display_name: String,
    /// User mailbox or public folders.
    pub kind: MailboxKind,
    /// Folders by number.
    pub folders: HashMap<u64, Folder>,
    /// Items by number.
    pub items: HashMap<u64, Item>,
    /// Distinguished folder names to numbers.
    pub distinguished: HashMap<String, u64>,
    next_number: u64,
    /// Change sequence, grows with every write.
    pub seq: u64,
    last_time: DateTime<Utc>,
    pending: Vec<StoreEvent>,
}

impl Mailbox {
    fn new(index: u32, address: &str, display_name: &str, kind: MailboxKind) -> Self {
        let mut mb = Mailbox {
            index,
            address: address.to_ascii_lowercase(),
            display_name: display_name.to_string(),
            kind,
            folders: HashMap::new(),
            items: HashMap::new(),
            distinguished: HashMap::new(),
            next_number: 1,
            seq: 0,
            last_time: Utc::now() - ChronoDuration::days(1),
            pending: Vec::new(),
        };
        match kind {
            MailboxKind::User => {
                let root = mb.insert_folder(None, "Root", "", Some("root"));
                let _ = root;
                for (name, display, class, parent) in USER_FOLDERS {
                    let parent = mb.distinguished.get(*parent).copied();
                    mb.insert_folder(parent, display, class, Some(name));
                }
                let owner = mb.address.clone();
                for f in mb.folders.values_mut() {
                    f.permissions.insert(owner.clone(), Permission::Owner);
                }
            }
            MailboxKind::PublicFolders => {
                let root = mb.insert_folder(None, "Public Folders", "IPF.Note", Some("publicfoldersroot"));
                if let Some(f) = mb.folders.get_mut(&root) {
                    f.default_permission = Permission::Reviewer;
                }
            }
        }
        mb.pending.clear();
        mb
    }

    fn insert_folder(&mut self, parent: Option<u64>, name: &str, class: &str, distinguished: Option<&str>) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        self.seq += 1;
        let now = self.tick();
        let (permissions, default_permission) = match parent.and_then(|p| self.folders.get(&p)) {
            Some(p) => (p.permissions.clone(), p.default_permission),
            None => (HashMap::new(), Permission::None),
        };
        self.folders.insert(
            number,
            Folder {
                number,
                parent,
                display_name: name.to_string(),
                class: class.to_string(),
                distinguished: distinguished.map(str::to_string),
                items: BTreeSet::new(),
                children: BTreeSet::new(),
                version: 1,
                created_seq: self.seq,
                changed_seq: self.seq,
                last_commit: now,
                deleted_count: 0,
                changes: BTreeMap::new(),
                permissions,
                default_permission,
            },
        );
        if let Some(p) = parent.and_then(|p| self.folders.get_mut(&p)) {
            p.children.insert(number);
            p.changed_seq = self.seq;
        }
        if let Some(d) = distinguished {
            self.distinguished.insert(d.to_string(), number);
        }
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: EventKind::Created,
            target: EventTarget::Folder(number),
            parent: parent.unwrap_or(number),
            old: None,
            version: 1,
            time: now,
        });
        number
    }

    /// A strictly increasing "now", so LastModifiedTime always advances.
    fn tick(&mut self) -> DateTime<Utc> {
        let now = Utc::now();
        let next = if now > self.last_time { now } else { self.last_time + ChronoDuration::milliseconds(1) };
        self.last_time = next;
        next
    }

    /// Rights of a user (lowercase address) on a folder.
    pub fn permission(&self, folder: u64, user: &str) -> Permission {
        match self.folders.get(&folder) {
            Some(f) => f.permissions.get(user).copied().unwrap_or(f.default_permission),
            None => Permission::None,
        }
    }

    /// Sets the rights of a user on a folder and its existing subfolders.
    pub fn grant(&mut self, folder: u64, user: &str, permission: Permission) {
        let mut todo = vec![folder];
        while let Some(n) = todo.pop() {
            if let Some(f) = self.folders.get_mut(&n) {
                f.permissions.insert(user.to_ascii_lowercase(), permission);
                todo.extend(f.children.iter().copied());
            }
        }
    }

    /// Creates a folder under `parent`; ErrorFolderExists when a sibling has the name.
    pub fn create_folder(&mut self, parent: u64, name: &str, class: &str) -> Result<u64, EwsError> {
        let p = self.folders.get(&parent).ok_or_else(EwsError::folder_not_found)?;
        if p.children.iter().any(|c| self.folders.get(c).is_some_and(|f| f.display_name.eq_ignore_ascii_case(name))) {
            return Err(EwsError::new("ErrorFolderExists", "A folder with the specified name already exists."));
        }
        Ok(self.insert_folder(Some(parent), name, class, None))
    }

    /// Finds a child folder by display name (case-insensitive).
    pub fn child_named(&self, parent: u64, name: &str) -> Option<u64> {
        let p = self.folders.get(&parent)?;
        p.children
            .iter()
            .copied()
            .find(|c| self.folders.get(c).is_some_and(|f| f.display_name.eq_ignore_ascii_case(name)))
    }

    /// Resolves a `/`-separated display-name path below the top folder (msgfolderroot or the
    /// public folder root), or a distinguished folder name.
    pub fn folder_by_path(&self, path: &str) -> Option<u64> {
        if let Some(n) = self.distinguished.get(path) {
            return Some(*n);
        }
        let top = match self.kind {
            MailboxKind::User => *self.distinguished.get("msgfolderroot")?,
            MailboxKind::PublicFolders => *self.distinguished.get("publicfoldersroot")?,
        };
        path.split('/').filter(|s| !s.is_empty()).try_fold(top, |f, name| self.child_named(f, name))
    }

    /// Creates an item in a folder and returns its number.
    pub fn create_item(
        &mut self,
        folder: u64,
        element: &str,
        item_class: &str,
        fields: Vec<Element>,
        extended: Vec<Element>,
    ) -> Result<u64, EwsError> {
        if !self.folders.contains_key(&folder) {
            return Err(EwsError::folder_not_found());
        }
        let (mut fields, mut extended) = (fields, extended);
        fields.iter_mut().chain(extended.iter_mut()).for_each(Element::compact);
        fields.shrink_to_fit();
        extended.shrink_to_fit();
        let number = self.next_number;
        self.next_number += 1;
        self.seq += 1;
        let now = self.tick();
        let seq = self.seq;
        let mut item = Item {
            number,
            folder,
            element: element.to_string(),
            item_class: item_class.to_string(),
            fields,
            extended,
            version: 1,
            created: now,
            modified: now,
            created_seq: seq,
            changed_seq: seq,
        };
        crate::derived::on_create(&mut item, now);
        self.items.insert(number, item);
        if let Some(f) = self.folders.get_mut(&folder) {
            f.items.insert(number);
            f.last_commit = now;
            f.changes.insert(seq, ChangeEntry { item: number, created_seq: seq, deleted: false });
        }
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: EventKind::Created,
            target: EventTarget::Item(number),
            parent: folder,
            old: None,
            version: 1,
            time: now,
        });
        Ok(number)
    }

    /// Applies `edit` to an item, then bumps its version, time and change sequence.
    pub fn update_item<R>(
        &mut self,
        number: u64,
        edit: impl FnOnce(&mut Item) -> Result<R, EwsError>,
    ) -> Result<R, EwsError> {
        let mut item = self.items.get(&number).cloned().ok_or_else(EwsError::item_not_found)?;
        let r = edit(&mut item)?;
        self.seq += 1;
        let now = self.tick();
        crate::derived::on_save(&mut item, now);
        item.fields.iter_mut().chain(item.extended.iter_mut()).for_each(Element::compact);
        let previous_seq = item.changed_seq;
        item.version += 1;
        item.modified = now;
        item.changed_seq = self.seq;
        let folder = item.folder;
        let version = item.version;
        let entry = ChangeEntry { item: number, created_seq: item.created_seq, deleted: false };
        self.items.insert(number, item);
        if let Some(f) = self.folders.get_mut(&folder) {
            f.last_commit = now;
            f.changes.remove(&previous_seq);
            f.changes.insert(self.seq, entry);
        }
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: EventKind::Modified,
            target: EventTarget::Item(number),
            parent: folder,
            old: None,
            version,
            time: now,
        });
        Ok(r)
    }

    /// Removes an item for good (HardDelete; SoftDelete keeps it in the recoverable items).
    pub fn delete_item(&mut self, number: u64, soft: bool) -> Result<(), EwsError> {
        let item = self.items.remove(&number).ok_or_else(EwsError::item_not_found)?;
        self.seq += 1;
        let now = self.tick();
        let seq = self.seq;
        if let Some(f) = self.folders.get_mut(&item.folder) {
            f.items.remove(&number);
            f.deleted_count += 1;
            f.last_commit = now;
            f.changes.remove(&item.changed_seq);
            f.changes.insert(seq, ChangeEntry { item: number, created_seq: item.created_seq, deleted: true });
        }
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: EventKind::Deleted,
            target: EventTarget::Item(number),
            parent: item.folder,
            old: None,
            version: item.version,
            time: now,
        });
        if soft && let Some(dumpster) = self.distinguished.get("recoverableitemsdeletions").copied() {
            // Like every move, the dumpster copy gets a new id and a new change key; its
            // content, creation time and last modification time are the deleted item's.
            let mut kept = item;
            kept.folder = dumpster;
            let n = self.next_number;
            self.next_number += 1;
            kept.number = n;
            kept.version += 1;
            kept.created_seq = seq;
            kept.changed_seq = seq;
            self.items.insert(n, kept);
            if let Some(f) = self.folders.get_mut(&dumpster) {
                f.items.insert(n);
                f.last_commit = now;
                f.changes.insert(seq, ChangeEntry { item: n, created_seq: seq, deleted: false });
            }
        }
        Ok(())
    }

    /// Removes a folder, its subfolders and their items for good. A folder created later with the
    /// same name is another folder, with a new id (folder numbers are never reused), as on Exchange.
    pub fn delete_folder(&mut self, number: u64) -> Result<(), EwsError> {
        let folder = self.folders.get(&number).ok_or_else(EwsError::folder_not_found)?;
        if folder.distinguished.is_some() {
            return Err(EwsError::new("ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted."));
        }
        let parent = folder.parent;
        self.seq += 1;
        let now = self.tick();
        let mut todo = vec![number];
        while let Some(n) = todo.pop() {
            let Some(f) = self.folders.remove(&n) else { continue };
            todo.extend(f.children.iter().copied());
            for item in &f.items {
                self.items.remove(item);
            }
            self.pending.push(StoreEvent {
                mailbox: self.index,
                kind: EventKind::Deleted,
                target: EventTarget::Folder(n),
                parent: f.parent.unwrap_or(n),
                old: None,
                version: f.version,
                time: now,
            });
        }
        if let Some(p) = parent.and_then(|p| self.folders.get_mut(&p)) {
            p.children.remove(&number);
            p.changed_seq = self.seq;
            p.last_commit = now;
        }
        Ok(())
    }

    /// Renames a folder and/or moves it under another parent; it keeps its id (a folder's id does
    /// not change when it is renamed or moved within its mailbox). ErrorFolderExists when the
    /// target parent has a child of that name already.
    pub fn move_folder(
        &mut self,
        number: u64,
        new_parent: Option<u64>,
        new_name: Option<&str>,
    ) -> Result<(), EwsError> {
        let folder = self.folders.get(&number).ok_or_else(EwsError::folder_not_found)?;
        if folder.distinguished.is_some() {
            return Err(EwsError::new("ErrorMoveDistinguishedFolder", "Distinguished folders cannot be moved."));
        }
        let old_parent = folder.parent;
        let parent = new_parent.or(old_parent).ok_or_else(EwsError::folder_not_found)?;
        let name = new_name.unwrap_or(&folder.display_name).to_string();
        if !self.folders.contains_key(&parent) || self.is_below(parent, number) {
            return Err(EwsError::new("ErrorMoveCopyFailed", "The folder cannot be moved there."));
        }
        if self.child_named(parent, &name).is_some_and(|c| c != number) {
            return Err(EwsError::new("ErrorFolderExists", "A folder with the specified name already exists."));
        }
        self.seq += 1;
        let now = self.tick();
        let seq = self.seq;
        for p in [old_parent, Some(parent)].into_iter().flatten() {
            if let Some(p) = self.folders.get_mut(&p) {
                p.children.remove(&number);
                p.changed_seq = seq;
                p.last_commit = now;
            }
        }
        if let Some(p) = self.folders.get_mut(&parent) {
            p.children.insert(number);
        }
        let version = match self.folders.get_mut(&number) {
            Some(f) => {
                f.parent = Some(parent);
                f.display_name = name;
                f.version += 1;
                f.changed_seq = seq;
                f.version
            }
            None => return Err(EwsError::folder_not_found()),
        };
        let moved = old_parent != Some(parent);
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: if moved { EventKind::Moved } else { EventKind::Modified },
            target: EventTarget::Folder(number),
            parent,
            old: moved.then(|| (EventTarget::Folder(number), old_parent.unwrap_or(number))),
            version,
            time: now,
        });
        Ok(())
    }

    /// Moves an item to another folder; like Exchange, the moved item gets a new id.
    pub fn move_item(&mut self, number: u64, to: u64) -> Result<u64, EwsError> {
        if !self.folders.contains_key(&to) {
            return Err(EwsError::folder_not_found());
        }
        let mut item = self.items.remove(&number).ok_or_else(EwsError::item_not_found)?;
        let from = item.folder;
        self.seq += 1;
        let now = self.tick();
        let seq = self.seq;
        let new_number = self.next_number;
        self.next_number += 1;
        if let Some(f) = self.folders.get_mut(&from) {
            f.items.remove(&number);
            f.deleted_count += 1;
            f.last_commit = now;
            f.changes.remove(&item.changed_seq);
            f.changes.insert(seq, ChangeEntry { item: number, created_seq: item.created_seq, deleted: true });
        }
        item.number = new_number;
        item.folder = to;
        item.version += 1;
        item.modified = now;
        item.created_seq = seq;
        item.changed_seq = seq;
        let version = item.version;
        self.items.insert(new_number, item);
        if let Some(f) = self.folders.get_mut(&to) {
            f.items.insert(new_number);
            f.last_commit = now;
            f.changes.insert(seq, ChangeEntry { item: new_number, created_seq: seq, deleted: false });
        }
        self.pending.push(StoreEvent {
            mailbox: self.index,
            kind: EventKind::Moved,
            target: EventTarget::Item(new_number),
            parent: to,
            old: Some((EventTarget::Item(number), from)),
            version,
            time: now,
        });
        Ok(new_number)
    }

    /// Whether `folder` is `ancestor` or below it.
    pub fn is_below(&self, folder: u64, ancestor: u64) -> bool {
        let mut cur = Some(folder);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.folders.get(&c).and_then(|f| f.parent);
        }
        false
    }

    /// Takes the events queued by the writes since the last call.
    fn take_events(&mut self) -> Vec<StoreEvent> {
        std::mem::take(&mut self.pending)
    }
}

/// Kind byte of an id: item or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// An item id.
    Item,
    /// A folder id.
    Folder,
}

/// Encodes an opaque id (mailbox index + number), base64 like Exchange's.
///
/// Like Exchange's, the ids of objects created one after another share all but their last
/// characters: an Exchange id ends with the object's entry id, whose last field is a global
/// counter stored most significant byte first (so that ids compare in creation order byte by
/// byte). Clients that index ids see that locality, so the emulator keeps it: the number goes
/// last, big-endian.
pub fn encode_id(kind: IdKind, mailbox: u32, number: u64) -> String {
    let mut raw = Vec::with_capacity(17);
    raw.extend_from_slice(b"AAMk");
    raw.push(match kind {
        IdKind::Item => b'I',
        IdKind::Folder => b'F',
    });
    raw.extend_from_slice(&mailbox.to_be_bytes());
    raw.extend_from_slice(&number.to_be_bytes());
    B64.encode(raw)
}

/// Decodes an id made by [`encode_id`]; None when malformed.
pub fn decode_id(kind: IdKind, id: &str) -> Option<(u32, u64)> {
    let raw = B64.decode(id.trim()).ok()?;
    if raw.len() != 17 || &raw[..4] != b"AAMk" {
        return None;
    }
    let k = match kind {
        IdKind::Item => b'I',
        IdKind::Folder => b'F',
    };
    if raw[4] != k {
        return None;
    }
    let mailbox = u32::from_be_bytes(raw[5..9].try_into().ok()?);
    let number = u64::from_be_bytes(raw[9..17].try_into().ok()?);
    Some((mailbox, number))
}

/// Encodes the id of an occurrence of a recurring master: mailbox, master and instance index
/// (Exchange's occurrence ids, too, name the master and the occurrence's original date).
pub fn encode_occurrence_id(mailbox: u32, master: u64, index: u32) -> String {
    let mut raw = Vec::with_capacity(21);
    raw.extend_from_slice(b"AAMk");
    raw.push(b'O');
    raw.extend_from_slice(&mailbox.to_be_bytes());
    raw.extend_from_slice(&master.to_be_bytes());
    raw.extend_from_slice(&index.to_be_bytes());
    B64.encode(raw)
}

/// Decodes an id made by [`encode_occurrence_id`] into (mailbox, master, index).
pub fn decode_occurrence_id(id: &str) -> Option<(u32, u64, u32)> {
    let raw = B64.decode(id.trim()).ok()?;
    if raw.len() != 21 || &raw[..5] != b"AAMkO" {
        return None;
    }
    let mailbox = u32::from_be_bytes(raw[5..9].try_into().ok()?);
    let number = u64::from_be_bytes(raw[9..17].try_into().ok()?);
    let index = u32::from_be_bytes(raw[17..21].try_into().ok()?);
    Some((mailbox, number, index))
}

/// Encodes a ChangeKey for an object version.
pub fn encode_change_key(number: u64, version: u64) -> String {
    let mut raw = Vec::with_capacity(20);
    raw.extend_from_slice(b"CQAAAB");
    raw.extend_from_slice(&version.to_le_bytes());
    raw.extend_from_slice(&(number as u32).to_le_bytes());
    B64.encode(raw)
}

/// A snapshot of an item for tests: ids and fields, independent of the lock.
#[derive(Debug, Clone)]
pub struct ItemView {
    /// EWS item id.
    pub id: String,
    /// Current ChangeKey.
    pub change_key: String,
    /// The stored item.
    pub item: Item,
}

/// A user's edit waiting for a DeleteItem of its item (see [`Store::edit_before_delete`]).
pub type DeleteHook = Box<dyn FnOnce(&mut Item) + Send>;

/// The edits waiting for a DeleteItem, by (mailbox, item number).
#[derive(Default)]
struct DeleteHooks(Mutex<HashMap<(u32, u64), DeleteHook>>);

impl std::fmt::Debug for DeleteHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |h| h.len());
        f.debug_struct("DeleteHooks").field("waiting", &n).finish()
    }
}

/// Every mailbox, plus the notification hub that hears about their changes.
#[derive(Debug)]
pub struct Store {
    mailboxes: Vec<Arc<Mutex<Mailbox>>>,
    by_address: HashMap<String, u32>,
    hub: Arc<NotificationHub>,
    delete_hooks: DeleteHooks,
}

/// Address of the public folder hierarchy mailbox in a domain.
pub fn public_folder_mailbox(domain: &str) -> String {
    format!("publicfolders@{domain}")
}

impl Store {
    /// A store with the public folder tree (index 0) and one mailbox per (address, display name).
    pub fn new(domain: &str, users: &[(String, String)], hub: Arc<NotificationHub>) -> Self {
        let mut mailboxes = Vec::new();
        let mut by_address = HashMap::new();
        let pf = public_folder_mailbox(domain);
        mailboxes.push(Arc::new(Mutex::new(Mailbox::new(0, &pf, "Public Folders", MailboxKind::PublicFolders))));
        by_address.insert(pf, 0);
        for (address, name) in users {
            let index = mailboxes.len() as u32;
            mailboxes.push(Arc::new(Mutex::new(Mailbox::new(index, address, name, MailboxKind::User))));
            by_address.insert(address.to_ascii_lowercase(), index);
        }
        Store { mailboxes, by_address, hub, delete_hooks: DeleteHooks::default() }
    }

    /// Index of the mailbox with this address.
    pub fn mailbox_index(&self, address: &str) -> Option<u32> {
        self.by_address.get(&address.trim().to_ascii_lowercase()).copied()
    }

    /// Index of the public folder tree.
    pub fn public_index(&self) -> u32 {
        0
    }

    /// Number of mailboxes (public folders included).
    pub fn len(&self) -> usize {
        self.mailboxes.len()
    }

    /// Whether the store has no mailbox (never true: the public tree always exists).
    pub fn is_empty(&self) -> bool {
        self.mailboxes.is_empty()
    }

    /// Runs `f` with the mailbox locked for reading; None when there is no such mailbox.
    pub fn read<R>(&self, index: u32, f: impl FnOnce(&Mailbox) -> R) -> Option<R> {
        let mb = self.mailboxes.get(index as usize)?;
        let guard = lock(mb);
        Some(f(&guard))
    }

    /// Runs `f` with the mailbox locked for writing, then publishes the events of its writes.
    pub fn write<R>(&self, index: u32, f: impl FnOnce(&mut Mailbox) -> R) -> Option<R> {
        let mb = self.mailboxes.get(index as usize)?;
        let (r, events) = {
            let mut guard = lock(mb);
            let r = f(&mut guard);
            (r, guard.take_events())
        };
        if !events.is_empty() {
            self.hub.publish(&events);
        }
        Some(r)
    }

    /// Items of a folder given by address and path (see [`Mailbox::folder_by_path`]).
    pub fn items_in(&self, address: &str, folder_path: &str) -> Option<Vec<ItemView>> {
        let index = self.mailbox_index(address)?;
        self.read(index, |mb| {
            let folder = mb.folder_by_path(folder_path)?;
            let f = mb.folders.get(&folder)?;
            Some(
                f.items
                    .iter()
                    .filter_map(|n| mb.items.get(n))
                    .map(|item| ItemView {
                        id: encode_id(IdKind::Item, index, item.number),
                        change_key: encode_change_key(item.number, item.version),
                        item: item.clone(),
                    })
                    .collect(),
            )
        })?
    }

    /// Edits an item by EWS id as a phone or Outlook would (new ChangeKey, events, sync changes).
    pub fn edit_item(&self, item_id: &str, edit: impl FnOnce(&mut Item)) -> Result<(), EwsError> {
        let (index, number) = decode_id(IdKind::Item, item_id).ok_or_else(EwsError::id_malformed)?;
        self.write(index, |mb| {
            mb.update_item(number, |item| {
                edit(item);
                Ok(())
            })
        })
        .ok_or_else(EwsError::item_not_found)?
    }

    /// Plays a user who saves an edit of an item at the very moment a DeleteItem for it arrives:
    /// when the next DeleteItem that names the item is processed, `edit` is applied first (a new
    /// ChangeKey, as a save from a phone would give it), then the item is deleted, both under the
    /// mailbox lock. A client that read the item's version just before sending the delete saw the
    /// old version: the race the sync connector's after-delete check exists for. Answers
    /// ErrorInvalidIdMalformed for an id the store did not make.
    pub fn edit_before_delete(
        &self,
        item_id: &str,
        edit: impl FnOnce(&mut Item) + Send + 'static,
    ) -> Result<(), EwsError> {
        let key = decode_id(IdKind::Item, item_id).ok_or_else(EwsError::id_malformed)?;
        self.delete_hooks.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Box::new(edit));
        Ok(())
    }

    /// The edit waiting for a DeleteItem of this item, taken (it runs once).
    pub fn take_delete_hook(&self, mailbox: u32, number: u64) -> Option<DeleteHook> {
        self.delete_hooks.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&(mailbox, number))
    }

    /// Deletes a folder given by address and path, with its subfolders and items (see
    /// [`Mailbox::delete_folder`]): to test what a sync does when its folder is recreated.
    pub fn delete_folder(&self, address: &str, folder_path: &str) -> Result<(), EwsError> {
        let index = self.mailbox_index(address).ok_or_else(|| EwsError::no_mailbox(address))?;
        self.write(index, |mb| {
            let folder = mb.folder_by_path(folder_path).ok_or_else(EwsError::folder_not_found)?;
            mb.delete_folder(folder)
        })
        .ok_or_else(|| EwsError::no_mailbox(address))?
    }

    /// Renames a folder given by address and path, and/or moves it below another folder (a path,
    /// as for [`Mailbox::folder_by_path`]); the folder keeps its id.
    pub fn move_folder(
        &self,
        address: &str,
        folder_path: &str,
        new_parent_path: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<(), EwsError> {
        let index = self.mailbox_index(address).ok_or_else(|| EwsError::no_mailbox(address))?;
        self.write(index, |mb| {
            let folder = mb.folder_by_path(folder_path).ok_or_else(EwsError::folder_not_found)?;
            let parent = match new_parent_path {
                Some(p) => Some(mb.folder_by_path(p).ok_or_else(EwsError::folder_not_found)?),
                None => None,
            };
            mb.move_folder(folder, parent, new_name)
        })
        .ok_or_else(|| EwsError::no_mailbox(address))?
    }

    /// The EWS id of a folder given by address and path.
    pub fn folder_id(&self, address: &str, folder_path: &str) -> Option<String> {
        let index = self.mailbox_index(address)?;
        self.read(index, |mb| mb.folder_by_path(folder_path)).flatten().map(|n| encode_id(IdKind::Folder, index, n))
    }

    /// Deletes an item by EWS id (hard delete).
    pub fn delete_item(&self, item_id: &str) -> Result<(), EwsError> {
        let (index, number) = decode_id(IdKind::Item, item_id).ok_or_else(EwsError::id_malformed)?;
        self.write(index, |mb| mb.delete_item(number, false)).ok_or_else(EwsError::item_not_found)?
    }

    /// Creates an item in a folder given by address and path; returns its EWS id.
    pub fn create_item(
        &self,
        address: &str,
        folder_path: &str,
        element: &str,
        item_class: &str,
        fields: Vec<Element>,
    ) -> Result<String, EwsError> {
        let index = self.mailbox_index(address).ok_or_else(|| EwsError::no_mailbox(address))?;
        let number = self
            .write(index, |mb| {
                let folder = mb.folder_by_path(folder_path).ok_or_else(EwsError::folder_not_found)?;
                mb.create_item(folder, element, item_class, fields, Vec::new())
            })
            .ok_or_else(|| EwsError::no_mailbox(address))??;
        Ok(encode_id(IdKind::Item, index, number))
    }

    /// Gives `user` a permission on a folder (and its subfolders) of a mailbox, e.g. to make a
    /// user a delegate or to revoke public folder rights in a test.
    pub fn grant(&self, address: &str, folder_path: &str, user: &str, permission: Permission) -> Result<(), EwsError> {
        let index = self.mailbox_index(address).ok_or_else(|| EwsError::no_mailbox(address))?;
        self.write(index, |mb| {
            let folder = mb.folder_by_path(folder_path).ok_or_else(EwsError::folder_not_found)?;
            mb.grant(folder, user, permission);
            Ok(())
        })
        .ok_or_else(|| EwsError::no_mailbox(address))?
    }

    /// The notification hub fed by this store.
    pub fn hub(&self) -> &Arc<NotificationHub> {
        &self.hub
    }
}

fn lock(m: &Mutex<Mailbox>) -> MutexGuard<'_, Mailbox> {
    // A panic while holding the lock leaves consistent data (writes are applied at the end).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(
            "contoso.test",
            &[("alice@contoso.test".into(), "Alice".into())],
            Arc::new(NotificationHub::default()),
        )
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = encode_id(IdKind::Item, 3, 77);
        assert_eq!(decode_id(IdKind::Item, &id), Some((3, 77)));
        assert_eq!(decode_id(IdKind::Folder, &id), None);
        assert_eq!(decode_id(IdKind::Item, "not base64!"), None);
        assert_eq!(decode_id(IdKind::Item, "AAAA"), None);
    }

    #[test]
    fn ids_created_one_after_another_differ_at_the_end() {
        let ids: Vec<String> = (1000..1100).map(|n| encode_id(IdKind::Item, 3, n)).collect();
        for pair in ids.windows(2) {
            let common = pair[0].bytes().zip(pair[1].bytes()).take_while(|(a, b)| a == b).count();
            assert!(common >= pair[0].len() - 4, "{} and {} share only {common} characters", pair[0], pair[1]);
        }
    }

    #[test]
    fn writes_bump_versions_times_and_sequences() {
        let s = store();
        let idx = s.mailbox_index("Alice@contoso.test").unwrap();
        let id = s
            .create_item(
                "alice@contoso.test",
                "contacts",
                "Contact",
                "IPM.Contact",
                vec![Element::t_text("GivenName", "A")],
            )
            .unwrap();
        let before = s.items_in("alice@contoso.test", "contacts").unwrap()[0].clone();
        s.edit_item(&id, |i| i.set_field(Element::t_text("GivenName", "B"))).unwrap();
        let after = s.items_in("alice@contoso.test", "contacts").unwrap()[0].clone();
        assert_ne!(before.change_key, after.change_key);
        assert!(after.item.modified > before.item.modified);
        assert!(after.item.changed_seq > before.item.changed_seq);
        assert_eq!(after.item.field("GivenName").unwrap().text, "B");
        s.delete_item(&id).unwrap();
        assert!(s.items_in("alice@contoso.test", "contacts").unwrap().is_empty());
        let log = s.read(idx, |mb| mb.folders[&mb.distinguished["contacts"]].changes.clone()).unwrap();
        assert_eq!(log.len(), 1, "one entry per item: the tombstone replaced the live entry");
        assert!(log.values().all(|e| e.deleted));
        assert!(s.delete_item(&id).is_err());
    }

    #[test]
    fn folder_paths_and_duplicates() {
        let s = store();
        let idx = s.mailbox_index("alice@contoso.test").unwrap();
        let r = s.write(idx, |mb| {
            let c = mb.distinguished["contacts"];
            let a = mb.create_folder(c, "Shared", "IPF.Contact").unwrap();
            assert!(mb.create_folder(c, "shared", "IPF.Contact").is_err());
            (a, mb.folder_by_path("Contacts/Shared"))
        });
        let (a, found) = r.unwrap();
        assert_eq!(found, Some(a));
    }
}
