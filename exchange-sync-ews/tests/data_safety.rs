//! Data safety over HTTP against the emulator: a delete never destroys an edit it did not see
//! (a version moved before the delete is refused; an edit saved in the window is put back), an
//! Exchange Online CreateItem answer without ids resolves to the right item, and a connector
//! knows its folder's id. Every request and response of these tests is validated against the
//! EWS schema.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;

use ews_emulator::xml::Element;
use ews_emulator::{EmulatorConfig, Permission, RunningEmulator, ServerVersion};
use exchange_sync_core::{
    Connector, Deleted, EntityId, ErrorKind as CoreKind, FetchedItem, GroupId, Item, ItemDelete, ItemKind, NewItem,
    OriginStamp, field,
};
use exchange_sync_ews::mapping::origin_uri;
use exchange_sync_ews::operation::items::Restriction;
use exchange_sync_ews::*;

/// An emulator whose documents a test validates against the schema ([`Traced::validate`]), or
/// one tracing only where `$EWS_TRACE_DIR` says (validating costs seconds per test: the tests that
/// exchange the new kinds of documents do it).
struct Traced {
    emu: RunningEmulator,
    dir: Option<tempfile::TempDir>,
}

impl Traced {
    async fn start(config: EmulatorConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Two documents per (operation, direction, response code) cover every kind of document
        // the test exchanges, and keep the validation quick.
        let emu = common::emulator(EmulatorConfig { trace_dir: Some(dir.path().into()), trace_cap: 2, ..config }).await;
        Traced { emu, dir: Some(dir) }
    }

    async fn untraced(config: EmulatorConfig) -> Self {
        Traced { emu: common::emulator(config).await, dir: None }
    }

    /// Every request the client sent and every response the emulator answered is schema-valid.
    fn validate(&self) {
        if let Some(dir) = &self.dir {
            common::validate(&[dir.path()]);
        }
    }
}

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

fn stamp(entity: &str) -> OriginStamp {
    OriginStamp::new(GroupId::new("safety"), EntityId::new(entity))
}

fn contact(given: &str) -> Item {
    Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, given)
        .with(field::SURNAME, "Safety")
        .with(field::EMAIL1, format!("{}@example.test", given.to_lowercase()))
}

async fn created(c: &EwsFolderConnector, given: &str) -> FetchedItem {
    let new = NewItem { item: contact(given).into(), origin: stamp(given) };
    let v = c.create(&[new]).await.unwrap().remove(0).unwrap();
    c.get(&[v.id]).await.unwrap().remove(0).unwrap()
}

fn delete_of(f: &FetchedItem) -> ItemDelete {
    ItemDelete { id: f.id.clone(), expected: Some(f.version.clone()), expected_hash: Some(f.item.content_hash()) }
}

/// The items of a folder carrying a stamp, by FindItem on the extended property.
async fn stamped(client: &EwsClient, folder: &FolderRef, entity: &str) -> Vec<EwsItem> {
    let shape = ItemShape::id_only(vec![PropertyPath::Extended(origin_uri())]);
    let r = Restriction::IsEqualTo(PropertyPath::Extended(origin_uri()), stamp(entity).encode());
    client.find_items_where(folder, &shape, Some(&r)).await.unwrap()
}

fn dumpster() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::RecoverableItemsDeletions)
}

#[tokio::test]
async fn a_version_moved_before_the_delete_is_refused_and_the_copy_stays() {
    let t = Traced::untraced(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let alice = common::as_user(&t.emu, "alice");
    let c = EwsFolderConnector::mailbox_folder(alice, contacts(), "alice@contoso.test/Contacts");
    let seen = created(&c, "Moved").await;
    // A phone edits the copy after the engine planned the delete.
    t.emu
        .store()
        .edit_item(seen.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "Edited on a phone")))
        .unwrap();
    let r = c.delete(&[delete_of(&seen)]).await.unwrap();
    match &r[0] {
        Err(e) => assert_eq!(e.kind(), CoreKind::PreconditionFailed, "{e}"),
        Ok(d) => panic!("the edited copy was deleted ({d:?})"),
    }
    let now = c.get(std::slice::from_ref(&seen.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(now.item.text(field::JOB_TITLE), Some("Edited on a phone"), "the edit survives");
    assert!(t.emu.store().items_in("alice@contoso.test", "recoverableitemsdeletions").unwrap().is_empty());
    t.validate();
}

#[tokio::test]
async fn an_edit_saved_in_the_window_is_put_back_under_a_new_id() {
    let t = Traced::start(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let bob = common::as_user(&t.emu, "bob");
    let c = EwsFolderConnector::mailbox_folder(bob.clone(), contacts(), "bob@contoso.test/Contacts");
    let seen = created(&c, "Window").await;
    let keep = created(&c, "Bystander").await;
    // The user saves an edit exactly between the connector's version check and its DeleteItem.
    t.emu
        .store()
        .edit_before_delete(seen.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "Saved in the window")))
        .unwrap();
    let r = c.delete(&[delete_of(&seen), delete_of(&keep)]).await.unwrap();
    let Ok(Deleted::Restored(back)) = &r[0] else { panic!("expected Restored, got {:?}", r[0]) };
    assert!(matches!(r[1], Ok(Deleted::Gone)), "{:?}", r[1]);
    assert_ne!(back.id, seen.id, "a copy moved back has a new id");

    // The edited content is in the folder under the new id, with its stamp; nothing else is.
    let items = t.emu.store().items_in("bob@contoso.test", "contacts").unwrap();
    assert_eq!(items.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [back.id.as_str()]);
    let restored = c.get(std::slice::from_ref(&back.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(restored.version, back.version);
    assert_eq!(restored.item.text(field::JOB_TITLE), Some("Saved in the window"));
    assert_eq!(restored.origin, Some(stamp("Window")));
    assert!(stamped(&bob, &dumpster(), "Window").await.is_empty(), "moved out of Recoverable Items");
    assert_eq!(stamped(&bob, &dumpster(), "Bystander").await.len(), 1, "the unedited copy stays deleted");
    t.validate();
}

#[tokio::test]
async fn an_unedited_copy_is_gone_and_recoverable() {
    let t = Traced::untraced(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let carol = common::as_user(&t.emu, "carol");
    let c = EwsFolderConnector::mailbox_folder(carol.clone(), contacts(), "carol@contoso.test/Contacts");
    let seen = created(&c, "Plain").await;
    let r = c.delete(&[delete_of(&seen)]).await.unwrap();
    assert!(matches!(r[0], Ok(Deleted::Gone)), "{:?}", r[0]);
    assert!(t.emu.store().items_in("carol@contoso.test", "contacts").unwrap().is_empty());
    let dumped = stamped(&carol, &dumpster(), "Plain").await;
    assert_eq!(dumped.len(), 1, "soft-deleted: findable in Recoverable Items");
    // Deleting it again: NotFound.
    let again = c.delete(&[delete_of(&seen)]).await.unwrap();
    assert_eq!(again[0].as_ref().unwrap_err().kind(), CoreKind::NotFound);
    t.validate();
}

#[tokio::test]
async fn a_copy_the_server_will_not_move_back_is_created_again() {
    // A delegate may read the owner's Recoverable Items but not move out of them: the connector
    // puts the edited copy back by creating it again, with its stamp.
    let t = Traced::start(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let store = t.emu.store();
    store.grant("dave@contoso.test", "contacts", "alice@contoso.test", Permission::Editor).unwrap();
    store.grant("dave@contoso.test", "recoverableitemsdeletions", "alice@contoso.test", Permission::Reviewer).unwrap();
    let alice = common::client_as(&t.emu, "alice");
    let daves =
        FolderRef::Distinguished { folder: DistinguishedFolder::Contacts, mailbox: Some("dave@contoso.test".into()) };
    let c = EwsFolderConnector::mailbox_folder(alice, daves, "dave@contoso.test/Contacts (delegate)");
    let seen = created(&c, "Delegated").await;
    store.edit_before_delete(seen.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "Kept"))).unwrap();
    let r = c.delete(&[delete_of(&seen)]).await.unwrap();
    let Ok(Deleted::Restored(back)) = &r[0] else { panic!("expected Restored, got {:?}", r[0]) };
    let restored = c.get(std::slice::from_ref(&back.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(restored.item.text(field::JOB_TITLE), Some("Kept"));
    assert_eq!(restored.origin, Some(stamp("Delegated")));
    assert_eq!(store.items_in("dave@contoso.test", "contacts").unwrap().len(), 1);
    t.validate();
}

#[tokio::test]
async fn without_a_reachable_dumpster_only_the_check_before_protects() {
    // Exchange 2010 RTM: Recoverable Items are out of EWS's reach. A moved version is still
    // refused; an edit saved in the window is deleted with the copy (the documented window).
    let t = Traced::untraced(EmulatorConfig {
        contacts: 1,
        server_version: ServerVersion::Exchange2010,
        ..Default::default()
    })
    .await;
    let dave = common::as_user(&t.emu, "dave");
    let c = EwsFolderConnector::mailbox_folder(dave, contacts(), "dave@contoso.test/Contacts");
    let moved = created(&c, "Moved").await;
    t.emu.store().edit_item(moved.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "x"))).unwrap();
    let r = c.delete(&[delete_of(&moved)]).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().kind(), CoreKind::PreconditionFailed);
    let raced = created(&c, "Raced").await;
    t.emu.store().edit_before_delete(raced.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "y"))).unwrap();
    let r = c.delete(&[delete_of(&raced)]).await.unwrap();
    assert!(matches!(r[0], Ok(Deleted::Gone)), "{:?}", r[0]);
    assert_eq!(c.client().version(), ExchangeVersion::Exchange2010);
    t.validate();
}

#[tokio::test]
async fn public_folder_deletes_check_the_version_first() {
    let t = Traced::untraced(EmulatorConfig { contacts: 3, ..Default::default() }).await;
    let pf = common::public_folder(&t.emu, "Company Contacts").await;
    let c = EwsFolderConnector::public_folder(common::public(&t.emu), pf, "Public/Company Contacts");
    let listed = c.list(None).await.unwrap().items;
    let fetched = c.get(&[listed[0].id.clone(), listed[1].id.clone()]).await.unwrap();
    let (a, b) = (fetched[0].as_ref().unwrap(), fetched[1].as_ref().unwrap());
    t.emu.store().edit_item(a.id.as_str(), |i| i.set_field(Element::t_text("JobTitle", "Edited"))).unwrap();
    let r = c.delete(&[delete_of(a), delete_of(b)]).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().kind(), CoreKind::PreconditionFailed);
    assert!(matches!(r[1], Ok(Deleted::Gone)), "{:?}", r[1]);
    assert_eq!(c.list(None).await.unwrap().items.len(), 2);
    t.validate();
}

#[tokio::test]
async fn creates_answered_without_ids_resolve_to_their_items() {
    let t = Traced::start(EmulatorConfig { contacts: 1, omit_created_item_ids: true, ..Default::default() }).await;
    let alice = common::as_user(&t.emu, "alice");
    let c = EwsFolderConnector::mailbox_folder(alice.clone(), contacts(), "alice@contoso.test/Contacts");
    let names: Vec<String> = (0..7).map(|i| format!("Online{i}")).collect();
    let new: Vec<NewItem> = names.iter().map(|n| NewItem { item: contact(n).into(), origin: stamp(n) }).collect();
    let results = c.create(&new).await.unwrap();
    assert_eq!(results.len(), new.len());
    let ids: Vec<_> = results.into_iter().map(|r| r.expect("resolved by stamp")).collect();
    assert_eq!(ids.iter().map(|v| &v.id).collect::<BTreeSet<_>>().len(), ids.len(), "distinct items");
    // Each answer names the item created for that entry, at its current version.
    let fetched = c.get(&ids.iter().map(|v| v.id.clone()).collect::<Vec<_>>()).await.unwrap();
    for ((n, v), f) in names.iter().zip(&ids).zip(fetched) {
        let f = f.unwrap();
        assert_eq!(f.origin, Some(stamp(n)));
        assert_eq!(f.item.text(field::GIVEN_NAME), Some(n.as_str()));
        assert_eq!(f.version, v.version);
    }
    assert_eq!(t.emu.store().items_in("alice@contoso.test", "contacts").unwrap().len(), names.len(), "no duplicates");

    // The client says what the server said: created, id unknown.
    let draft = ItemDraft {
        item_type: ItemType::Contact,
        fields: vec![Field::text("GivenName", "Raw"), Field::text("Surname", "Client")],
    };
    let rendered = RenderedItem::of(&draft.for_version(alice.version()));
    let raw = alice.create_rendered(&contacts(), std::slice::from_ref(&rendered)).await.unwrap();
    assert_eq!(raw[0].as_ref().unwrap(), &exchange_sync_ews::operation::items::Created::IdUnknown);
    let old = alice.create_items(&contacts(), &[draft]).await.unwrap().remove(0).unwrap_err();
    assert_eq!(old.kind(), ErrorKind::Protocol, "the id-only API cannot answer an id: {old}");
    t.validate();
}

#[tokio::test]
async fn connectors_know_their_folder_id() {
    let t = Traced::start(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    let alice = common::as_user(&t.emu, "alice");
    let store = t.emu.store();
    let by_name = EwsFolderConnector::mailbox_folder(alice.clone(), contacts(), "alice/Contacts");
    assert_eq!(by_name.folder_id(), None, "a distinguished folder is resolved on request");
    let resolved = by_name.with_resolved_folder_id().await.unwrap();
    assert_eq!(resolved.folder_id(), store.folder_id("alice@contoso.test", "contacts"));
    assert_eq!(
        alice.folder_id(&contacts()).await.unwrap().id,
        store.folder_id("alice@contoso.test", "contacts").unwrap(),
        "the client helper"
    );
    let attached = EwsFolderConnector::mailbox_folder(alice.clone(), contacts(), "x").with_folder_id("given");
    assert_eq!(attached.folder_id().as_deref(), Some("given"));

    // A folder created, deleted and created again under its name is another folder.
    let parent = FolderRef::distinguished(DistinguishedFolder::MsgFolderRoot);
    let first = alice.create_folder(&parent, "Team Contacts", "IPF.Contact").await.unwrap();
    let c1 = EwsFolderConnector::mailbox_folder(alice.clone(), FolderRef::Id(first.id.clone()), "alice/Team");
    assert_eq!(c1.folder_id().as_deref(), Some(first.id.id.as_str()), "known from a FolderRef::Id");
    store.delete_folder("alice@contoso.test", "Team Contacts").unwrap();
    let second = alice.create_folder(&parent, "Team Contacts", "IPF.Contact").await.unwrap();
    assert_ne!(second.id.id, first.id.id);
    // Renamed or moved, a folder keeps its id.
    store.move_folder("alice@contoso.test", "Team Contacts", Some("contacts"), Some("Team")).unwrap();
    let moved = alice.folder_id(&FolderRef::Id(second.id.clone())).await.unwrap();
    assert_eq!(moved.id, second.id.id);
    t.validate();
}
