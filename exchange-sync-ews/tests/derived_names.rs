//! Derived contact names converge: a group synced by the core engine over EWS connectors against
//! the emulator, where a hub contact's names change (by the engine writing a member's rename to
//! the hub, and by a user's UpdateItem that leaves FileAs alone), ends with every copy and the
//! hub holding the same content, and an empty next plan.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use ews_emulator::RunningEmulator;
use exchange_sync_core::engine::{GroupSync, SyncReport};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, ContentHash, Direction, Member, MemberId, StateStore, SyncGroup, field};
use exchange_sync_ews::*;

/// The hub (a public folder made for the test) and two members: alice edits, bob reads.
struct Group {
    emu: RunningEmulator,
    engine: GroupSync,
    connectors: BTreeMap<MemberId, EwsFolderConnector>,
}

async fn group() -> Group {
    let emu = common::emulator(ews_emulator::EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let public = common::public(&emu);
    let root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
    let hub_folder = public.create_folder(&root, "Team Directory", "IPF.Contact").await.unwrap();
    let contacts = || FolderRef::distinguished(DistinguishedFolder::Contacts);
    let connectors: BTreeMap<MemberId, EwsFolderConnector> = [
        (
            MemberId::new("hub"),
            EwsFolderConnector::public_folder(public, FolderRef::Id(hub_folder.id), "Public/Team Directory"),
        ),
        (
            MemberId::new("alice"),
            EwsFolderConnector::mailbox_folder(common::as_user(&emu, "alice"), contacts(), "alice/Contacts"),
        ),
        (
            MemberId::new("bob"),
            EwsFolderConnector::mailbox_folder(common::as_user(&emu, "bob"), contacts(), "bob/Contacts"),
        ),
    ]
    .into();
    let group = SyncGroup::new("directory", "hub")
        .with_member(Member::new("alice", Direction::two_way()))
        .with_member(Member::new("bob", Direction::one_way()));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let shared = connectors.iter().map(|(m, c)| (m.clone(), Arc::new(c.clone()) as Arc<dyn Connector>)).collect();
    let engine = GroupSync::new(group, store, shared).unwrap();
    Group { emu, engine, connectors }
}

impl Group {
    fn client(&self, member: &str) -> &EwsClient {
        self.connectors[&MemberId::new(member)].client()
    }

    fn folder(&self, member: &str) -> FolderRef {
        self.connectors[&MemberId::new(member)].folder().clone()
    }

    async fn sync(&self) -> SyncReport {
        let report = self.engine.run().await.unwrap();
        assert!(report.is_clean(), "{report:#?}");
        report
    }

    /// The one contact of a folder as EWS has it: id, change key and the raw element.
    async fn only(&self, member: &str) -> EwsItem {
        let items =
            self.client(member).find_all_items(&self.folder(member), &ItemShape::id_only(Vec::new())).await.unwrap();
        assert_eq!(items.len(), 1, "{member} holds one contact");
        let id = items[0].id().unwrap();
        self.client(member).get_items(&[id], &ItemShape::all(Vec::new())).await.unwrap().remove(0).unwrap()
    }

    /// Every folder's copy, as the engine reads it (content hash), and the next plan is empty.
    async fn assert_converged(&self) {
        let mut hashes: BTreeMap<String, ContentHash> = BTreeMap::new();
        for (member, c) in &self.connectors {
            let listed = c.list(None).await.unwrap().items;
            assert_eq!(listed.len(), 1, "{member}: {listed:?}");
            let fetched = c.get(&[listed[0].id.clone()]).await.unwrap().remove(0).unwrap();
            hashes.insert(member.to_string(), fetched.item.content_hash());
            if let Some(file_as) = fetched.item.text(field::FILE_AS) {
                panic!("{member} keeps a FileAs that is not derived from its names: {file_as:?}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = hashes.values().collect();
        assert_eq!(distinct.len(), 1, "copies differ: {hashes:?}");
        let next = self.engine.dry_run().await.unwrap();
        assert!(next.is_empty(), "the plan after convergence is not empty:\n{next}");
    }

    /// A user's UpdateItem of the names (as Outlook or a script would send it), FileAs untouched.
    async fn rename(&self, member: &str, given: &str, surname: &str) {
        let item = self.only(member).await;
        let change = ItemChange {
            id: item.id().unwrap(),
            item_type: ItemType::Contact,
            updates: vec![
                FieldUpdate::Set(Field::text("GivenName", given)),
                FieldUpdate::Set(Field::text("Surname", surname)),
            ],
        };
        self.client(member).update_items(&[change]).await.unwrap().remove(0).unwrap();
    }
}

#[tokio::test]
async fn names_changed_on_the_hub_or_through_it_converge() {
    let g = group().await;
    // A contact as Outlook leaves it: names, a display name and a "file as" that follow them.
    let hub = g.client("hub");
    let draft = ItemDraft {
        item_type: ItemType::Contact,
        fields: vec![
            Field::text("FileAs", "Andersson, Henrik"),
            Field::text("FileAsMapping", "LastCommaFirst"),
            Field::text("DisplayName", "Henrik Andersson"),
            Field::text("GivenName", "Henrik"),
            Field::text("Surname", "Andersson"),
            Field::Entry {
                dictionary: "EmailAddresses".into(),
                key: "EmailAddress1".into(),
                value: "henrik@example.test".into(),
            },
        ],
    };
    hub.create_items(&g.folder("hub"), &[draft]).await.unwrap().remove(0).unwrap();
    g.sync().await;
    g.sync().await;
    g.assert_converged().await;

    // 1. The engine writes a two-way member's rename to the hub (and the other member): the
    //    hub's stored display name and "file as" must follow, or the hub would keep values of the
    //    old names that its copies lack, with no new version to notice them by.
    g.rename("alice", "Henrik", "Berg").await;
    g.sync().await;
    g.sync().await;
    g.assert_converged().await;
    let hub_item = g.only("hub").await;
    assert_eq!(hub_item.text("Surname"), Some("Berg"));
    assert_eq!(hub_item.text("FileAs"), Some("Berg, Henrik"));
    assert_eq!(hub_item.text("DisplayName"), Some("Henrik Berg"), "no stale display name on the hub");
    assert_eq!(g.only("bob").await.text("FileAs"), Some("Berg, Henrik"));

    // 2. A user renames the hub contact with an UpdateItem that leaves FileAs and DisplayName
    //    alone: the store recomputes FileAs (its mapping is LastCommaFirst); the stored display
    //    name stays as it was, which makes it the contact's own from now on, and the copies get it.
    g.rename("hub", "Hank", "Lindqvist").await;
    let hub_item = g.only("hub").await;
    assert_eq!(hub_item.text("FileAs"), Some("Lindqvist, Hank"), "the store recomputed FileAs");
    g.sync().await;
    g.sync().await;
    g.assert_converged().await;
    let bob = g.only("bob").await;
    assert_eq!((bob.text("GivenName"), bob.text("Surname")), (Some("Hank"), Some("Lindqvist")));
    assert_eq!(bob.text("FileAs"), Some("Lindqvist, Hank"));
    assert_eq!(bob.text("DisplayName"), hub_item.text("DisplayName"));
    drop(g.emu);
}
