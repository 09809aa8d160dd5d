//! Every operation of the client against the emulator over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::operation::items::{DeleteType, Restriction};
use exchange_sync_ews::operation::notifications::{ITEM_EVENTS, SubscriptionKind};
use exchange_sync_ews::operation::sync::ItemChangeEvent;
use exchange_sync_ews::property::{deleted_count_total, local_commit_time_max};
use exchange_sync_ews::*;
use futures::StreamExt;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

#[tokio::test]
async fn folders_get_find_create_and_hierarchy_sync() {
    let emu = common::small_tenant().await;
    let alice = common::as_user(&emu, "alice");
    let shape = FolderShape {
        base: BaseShape::Default,
        additional: vec![
            PropertyPath::Extended(local_commit_time_max()),
            PropertyPath::Extended(deleted_count_total()),
        ],
    };
    let both = alice
        .get_folders(&[contacts(), FolderRef::distinguished(DistinguishedFolder::Calendar)], &shape)
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[1].as_ref().unwrap().folder_class.as_deref(), Some("IPF.Appointment"));

    let root = FolderRef::distinguished(DistinguishedFolder::MsgFolderRoot);
    let created = alice.create_folder(&root, "Company Contacts (sync)", "IPF.Contact").await.unwrap();
    let children = alice.find_folders(&root, &FolderShape::default(), Traversal::Shallow).await.unwrap();
    assert!(children.iter().any(|f| f.id.id == created.id.id));

    let page = alice.sync_folder_hierarchy(&FolderShape::default(), None, None).await.unwrap();
    assert!(page.includes_last);
    assert!(!page.sync_state.is_empty());

    let public = common::public(&emu);
    let pf = public
        .find_folders(
            &FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot),
            &FolderShape::default(),
            Traversal::Shallow,
        )
        .await
        .unwrap();
    let names: Vec<_> = pf.iter().filter_map(|f| f.display_name.as_deref()).collect();
    assert!(names.contains(&"Company Contacts") && names.contains(&"Company Calendar"), "{names:?}");

    let pf_root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
    let contacts_pf = public.folder_by_path(&pf_root, "company contacts").await.unwrap();
    let sub = public.create_folder(&FolderRef::Id(contacts_pf.id.clone()), "EMEA", "IPF.Contact").await.unwrap();
    assert_eq!(public.folder_by_path(&pf_root, "Company Contacts/EMEA").await.unwrap().id, sub.id);
    let missing = public.folder_by_path(&pf_root, "Company Contacts/Nowhere").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(missing.to_string().contains("Company Contacts/Nowhere"), "{missing}");
}

#[tokio::test]
async fn item_lifecycle_with_change_keys() {
    let emu = common::small_tenant().await;
    let alice = common::as_user(&emu, "alice");
    let ids = alice
        .create_items(&contacts(), &[common::contact("Jane", "Doe"), common::contact("John", "Roe")])
        .await
        .unwrap();
    let ids: Vec<ItemId> = ids.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|i| i.change_key.is_some()));

    let got = alice.get_items(&ids, &ItemShape::all(vec![])).await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().text("GivenName"), Some("Jane"));
    assert_eq!(got[1].as_ref().unwrap().entries("EmailAddresses")[0].1, "john@example.test");

    let change = |id: &ItemId, given: &str| ItemChange {
        id: id.clone(),
        item_type: ItemType::Contact,
        updates: vec![
            FieldUpdate::Set(Field::text("GivenName", given)),
            FieldUpdate::Delete(PropertyPath::Indexed {
                uri: "contacts:EmailAddress".into(),
                index: "EmailAddress1".into(),
            }),
        ],
    };
    let updated = alice.update_items(&[change(&ids[0], "Janet")]).await.unwrap().remove(0).unwrap();
    assert_ne!(updated.change_key, ids[0].change_key);
    // The old change key is stale now: the update must fail, not overwrite.
    let stale = alice.update_items(&[change(&ids[0], "Overwritten")]).await.unwrap().remove(0).unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::PreconditionFailed);
    assert!(stale.to_string().contains(&ids[0].id), "the error names the item: {stale}");
    let now =
        alice.get_items(std::slice::from_ref(&updated), &ItemShape::all(vec![])).await.unwrap().remove(0).unwrap();
    assert_eq!(now.text("GivenName"), Some("Janet"));
    assert!(now.entries("EmailAddresses").is_empty());

    let deleted = alice.delete_items(&ids, DeleteType::HardDelete).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok));
    let gone = alice.get_items(&ids, &ItemShape::default()).await.unwrap();
    assert!(gone.iter().all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::NotFound));
}

#[tokio::test]
async fn find_item_pages_beyond_one_thousand() {
    let emu = common::emulator(ews_emulator::EmulatorConfig { contacts: 1234, ..Default::default() }).await;
    let public = common::public(&emu);
    let folder = common::public_folder(&emu, "Company Contacts").await;
    let first = public.find_items_page(&folder, &ItemShape::id_only(vec![]), None, 0, 5000).await.unwrap();
    assert_eq!(first.items.len(), 1000, "a page holds at most 1000 items");
    assert!(!first.includes_last);
    let all = public.find_all_items(&folder, &ItemShape::id_only(vec![])).await.unwrap();
    assert_eq!(all.len(), 1234);
    let distinct: std::collections::HashSet<_> = all.iter().map(|i| i.id().unwrap().id).collect();
    assert_eq!(distinct.len(), 1234);
}

#[tokio::test]
async fn restriction_on_the_origin_property() {
    let emu = common::small_tenant().await;
    let bob = common::as_user(&emu, "bob");
    let uri = ExtendedFieldUri::named(exchange_sync_ews::mapping::PROPERTY_SET_ID, "OriginStamp", "String");
    let mut stamped = common::contact("Stamped", "One");
    stamped.fields.push(Field::Extended { uri: uri.clone(), value: "xsync1:1:g:e1".into() });
    bob.create_items(&contacts(), &[stamped, common::contact("Plain", "Two")]).await.unwrap();
    let r = Restriction::IsEqualTo(PropertyPath::Extended(uri.clone()), "xsync1:1:g:e1".into());
    let found = bob
        .find_items_where(&contacts(), &ItemShape::id_only(vec![PropertyPath::Extended(uri.clone())]), Some(&r))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].extended(&uri), Some("xsync1:1:g:e1"));
}

#[tokio::test]
async fn sync_folder_items_pages_and_bad_state() {
    let emu = common::small_tenant().await;
    let carol = common::as_user(&emu, "carol");
    let drafts: Vec<ItemDraft> = (0..600).map(|i| common::contact(&format!("N{i}"), "Many")).collect();
    let created = carol.create_items(&contacts(), &drafts).await.unwrap();
    assert!(created.iter().all(Result::is_ok));
    let shape = ItemShape::id_only(vec![]);
    let first = carol.sync_folder_items(&contacts(), &shape, None, 512).await.unwrap();
    assert_eq!(first.changes.len(), 512);
    assert!(!first.includes_last);
    let (changes, state) = carol.sync_all_folder_items(&contacts(), &shape, None).await.unwrap();
    let creates = changes.iter().filter(|c| matches!(c, ItemChangeEvent::Create(_))).count();
    assert!(creates >= 600, "{creates}");
    let (again, _) = carol.sync_all_folder_items(&contacts(), &shape, Some(&state)).await.unwrap();
    assert!(again.is_empty(), "nothing changed since the state");

    carol.delete_items(&[created[0].clone().unwrap()], DeleteType::HardDelete).await.unwrap();
    let (after, _) = carol.sync_all_folder_items(&contacts(), &shape, Some(&state)).await.unwrap();
    assert!(matches!(after.as_slice(), [ItemChangeEvent::Delete(_)]), "{after:?}");

    let bad = carol.sync_folder_items(&contacts(), &shape, Some("bm90IGEgc3luYyBzdGF0ZQ=="), 10).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidSyncState);
}

#[tokio::test]
async fn pull_notifications() {
    let emu = common::small_tenant().await;
    let dave = common::as_user(&emu, "dave");
    let sub = dave
        .subscribe(&[contacts()], &ITEM_EVENTS, &SubscriptionKind::Pull { timeout_minutes: 5, watermark: None })
        .await
        .unwrap();
    dave.create_items(&contacts(), &[common::contact("Pull", "Event")]).await.unwrap();
    let n = dave.get_events(&sub.id, sub.watermark.as_deref().unwrap()).await.unwrap();
    assert!(n.events.iter().any(|e| e.kind == EventKind::Created), "{n:?}");
    dave.unsubscribe(&sub.id).await.unwrap();
    let gone = dave.get_events(&sub.id, n.last_watermark().unwrap()).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::SubscriptionLost);
}

#[tokio::test]
async fn streaming_notifications_arrive_as_they_happen() {
    let emu = common::emulator(ews_emulator::EmulatorConfig {
        contacts: 5,
        heartbeat_interval: std::time::Duration::from_millis(100),
        streaming_minute: std::time::Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let dave = common::as_user(&emu, "dave");
    let sub = dave.subscribe(&[contacts()], &ITEM_EVENTS, &SubscriptionKind::Streaming).await.unwrap();
    let mut stream =
        dave.get_streaming_events(std::slice::from_ref(&sub.id), 1, std::time::Duration::from_secs(30)).await.unwrap();
    dave.create_items(&contacts(), &[common::contact("Stream", "Event")]).await.unwrap();
    let mut saw_created = false;
    let mut saw_closed = false;
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        saw_created |= batch.notifications.iter().flat_map(|n| &n.events).any(|e| e.kind == EventKind::Created);
        saw_closed |= batch.closed;
    }
    assert!(saw_created, "the created event arrived on the open stream");
    assert!(saw_closed, "the server closed the connection at ConnectionTimeout");
}

#[tokio::test]
async fn stalled_stream_is_detected() {
    // The server sends heartbeats far apart; the client expects them often: a stall.
    let emu = common::emulator(ews_emulator::EmulatorConfig {
        contacts: 5,
        heartbeat_interval: std::time::Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    let dave = common::as_user(&emu, "dave");
    let sub = dave.subscribe(&[contacts()], &ITEM_EVENTS, &SubscriptionKind::Streaming).await.unwrap();
    let mut stream = dave.get_streaming_events(&[sub.id], 30, std::time::Duration::from_millis(300)).await.unwrap();
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    assert!(matches!(last, Some(Err(EwsError::StreamStalled { .. }))), "{last:?}");
}

#[tokio::test]
async fn expand_dl_and_autodiscover() {
    let emu = common::small_tenant().await;
    let members = common::admin(&emu).expand_dl("sales@contoso.test").await.unwrap();
    assert!(!members.is_empty());
    assert!(members.iter().all(|m| m.email_address.as_deref().is_some_and(|a| a.ends_with("@contoso.test"))));

    let settings = exchange_sync_ews::autodiscover::get_user_settings(
        &emu.autodiscover_url(),
        Credentials::basic(common::ADMIN, common::PASSWORD),
        &TransportConfig::default(),
        "carol@contoso.test",
        &exchange_sync_ews::autodiscover::SYNC_SETTINGS,
    )
    .await
    .unwrap();
    assert_eq!(settings.ews_url(), Some(emu.url()));
    assert_eq!(settings.public_folder_mailbox(), Some("publicfolders@contoso.test"));
}
