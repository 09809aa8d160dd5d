//! The mailbox and public folder connectors against the emulator: change detection, the change probe,
//! and change hints from notifications (streaming, reconnection after a stall, pull fallback).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use ews_emulator::{EmulatorConfig, ServerVersion};
use exchange_sync_core::{
    Change, ChangeHint, Connector, EntityId, ErrorKind as CoreKind, GroupId, Item, ItemKind, NewItem, OriginStamp,
    SyncToken, field,
};
use exchange_sync_ews::watch::WatchOptions;
use exchange_sync_ews::*;
use futures::StreamExt;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

fn new_contact(n: usize) -> NewItem {
    NewItem {
        item: Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, format!("W{n}").as_str())
            .with(field::SURNAME, "Watched")
            .into(),
        origin: OriginStamp::new(GroupId::new("g"), EntityId::new(format!("w{n}"))),
    }
}

fn fast_watch() -> WatchOptions {
    WatchOptions {
        connection_timeout_minutes: 1,
        heartbeat_timeout: Duration::from_secs(20),
        pull_interval: Duration::from_millis(50),
        retry_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

#[tokio::test]
async fn mailbox_folder_sees_a_phone_edit_incrementally() {
    let emu = common::small_tenant().await;
    let folder =
        EwsFolderConnector::mailbox_folder(common::as_user(&emu, "alice"), contacts(), "alice@contoso.test/Contacts");
    let created = folder.create(&[new_contact(1)]).await.unwrap().remove(0).unwrap();
    let mut token = None;
    loop {
        let page = folder.changes(token.as_ref()).await.unwrap();
        token = Some(page.token);
        if !page.more {
            break;
        }
    }
    // A phone edits the item directly in the store.
    emu.store()
        .edit_item(created.id.as_str(), |i| {
            i.set_field(ews_emulator::xml::Element::t_text("JobTitle", "Edited on a phone"));
        })
        .unwrap();
    let page = folder.changes(token.as_ref()).await.unwrap();
    let upserted: Vec<_> =
        page.changes.iter().filter_map(|c| if let Change::Upserted(v) = c { Some(v) } else { None }).collect();
    assert_eq!(upserted.len(), 1);
    assert_ne!(upserted[0].version, created.version);
    let fetched = folder.get(std::slice::from_ref(&created.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(fetched.item.text(field::JOB_TITLE), Some("Edited on a phone"));

    let bad = folder.changes(Some(&SyncToken::new("bm90IGEgc3RhdGU="))).await.unwrap_err();
    assert_eq!(bad.kind(), CoreKind::InvalidSyncToken);
}

#[tokio::test]
async fn public_folder_probe_and_snapshot() {
    let emu = common::small_tenant().await;
    let pf = common::public_folder(&emu, "Company Contacts").await;
    let folder = EwsFolderConnector::public_folder(common::public(&emu), pf, "Public/Company Contacts");
    assert_eq!(folder.changes(None).await.unwrap_err().kind(), CoreKind::Permanent);
    let before = folder.probe().await.unwrap();
    assert!(before.last_commit.is_some(), "{before:?}");
    let listed = folder.list(None).await.unwrap();
    assert_eq!(listed.items.len(), 20);
    let unchanged = folder.probe().await.unwrap();
    assert_eq!(before, unchanged, "reading changes nothing");
    emu.store().delete_item(listed.items[0].id.as_str()).unwrap();
    let after = folder.probe().await.unwrap();
    assert_ne!(before, after, "the probe sees a deletion");
}

#[tokio::test]
async fn streaming_hints_and_reconnection_after_a_stall() {
    // Heartbeats far apart and a short heartbeat timeout: every connection stalls, and the watcher
    // must reconnect and keep delivering.
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    let options = ConnectorOptions {
        watch: WatchOptions { heartbeat_timeout: Duration::from_millis(300), ..fast_watch() },
        ..Default::default()
    };
    let folder =
        EwsFolderConnector::mailbox_folder(common::as_user(&emu, "bob"), contacts(), "bob@contoso.test/Contacts")
            .with_options(options);
    let mut hints = folder.watch().await.unwrap();
    common::next_hint(&mut hints, ChangeHint::Resync).await;
    folder.create(&[new_contact(1)]).await.unwrap();
    common::next_hint(&mut hints, ChangeHint::Changed).await;
}

#[tokio::test]
async fn streaming_hints_on_a_public_folder() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let pf = common::public_folder(&emu, "Company Contacts").await;
    let folder = EwsFolderConnector::public_folder(common::public(&emu), pf, "Public/Company Contacts")
        .with_options(ConnectorOptions { watch: fast_watch(), ..Default::default() });
    let mut hints = folder.watch().await.unwrap();
    // Keep editing until a hint arrives (the subscription is made in the background).
    let writer = {
        let folder = folder.clone();
        tokio::spawn(async move {
            for n in 0.. {
                folder.create(&[new_contact(n)]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    common::next_hint(&mut hints, ChangeHint::Changed).await;
    writer.abort();
}

#[tokio::test]
async fn pull_notifications_when_streaming_is_missing() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        server_version: ServerVersion::Exchange2007Sp1,
        ..Default::default()
    })
    .await;
    let folder =
        EwsFolderConnector::mailbox_folder(common::as_user(&emu, "carol"), contacts(), "carol@contoso.test/Contacts")
            .with_options(ConnectorOptions { watch: fast_watch(), ..Default::default() });
    let mut hints = folder.watch().await.unwrap();
    let writer = {
        let folder = folder.clone();
        tokio::spawn(async move {
            for n in 0.. {
                folder.create(&[new_contact(n)]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    common::next_hint(&mut hints, ChangeHint::Changed).await;
    writer.abort();
    assert_eq!(folder.client().version(), ExchangeVersion::Exchange2007Sp1);
}

#[tokio::test]
async fn every_kind_round_trips_through_a_mailbox() {
    use exchange_sync_core::{Body, FieldValue};
    let emu = common::small_tenant().await;
    let alice = common::as_user(&emu, "alice");
    let start = chrono::DateTime::from_timestamp(1_800_003_600, 0).unwrap();
    let mut contact = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, "Zoë")
        .with(field::SURNAME, "Müller")
        .with(field::NAME_TITLE, "Dr.")
        .with(field::COMPANY, "Contoso")
        .with(field::EMAIL1, "zoe@contoso.test")
        .with(field::EMAIL3, "zoe@example.test")
        .with(field::PHONE_MOBILE, "+41 79 000 00 00")
        .with(&field::phone("business_fax"), "+41 44 000 00 01")
        .with(&field::im(1), "zoe@im.test")
        .with("address.home.city", "Zürich")
        .with("address.home.postal_code", "8000")
        .with(field::BIRTHDAY, FieldValue::DateTime(start))
        .with(field::CHILDREN, FieldValue::TextList(vec!["Ada".into(), "Max".into()]));
    contact.body = Some(Body::text("Line 1\nLine 2 <&>"));
    contact.categories = ["Shared".to_owned()].into_iter().collect();
    let mut meeting = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Weekly")
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::minutes(30)))
        .with(field::LOCATION, "Room 1")
        .with(field::IS_ALL_DAY, FieldValue::Boolean(false))
        .with(field::LEGACY_FREE_BUSY, "busy")
        .with(field::ATTENDEES, "required:bob@contoso.test")
        .with(
            field::RECURRENCE,
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NumberedRecurrence(StartDate=2027-01-04,NumberOfOccurrences=10)",
        );
    meeting.body = Some(Body::text("Agenda"));
    let task = Item::new(ItemKind::Task)
        .with(field::SUBJECT, "Call back")
        .with(field::STATUS, "in_progress")
        .with(field::PERCENT_COMPLETE, FieldValue::Integer(50))
        .with(field::DUE_DATE, FieldValue::DateTime(start));
    let mut note = Item::new(ItemKind::Note).with(field::SUBJECT, "Remember");
    note.body = Some(Body::text("milk"));
    for (item, folder) in [
        (contact, DistinguishedFolder::Contacts),
        (meeting, DistinguishedFolder::Calendar),
        (task, DistinguishedFolder::Tasks),
        (note, DistinguishedFolder::Notes),
    ] {
        let c = EwsFolderConnector::mailbox_folder(
            alice.clone(),
            FolderRef::distinguished(folder),
            format!("alice/{}", folder.as_str()),
        );
        let origin = OriginStamp::new(GroupId::new("kinds"), EntityId::new(folder.as_str()));
        let v = c
            .create(&[NewItem { item: item.clone().into(), origin: origin.clone() }])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        let back = c.get(&[v.id]).await.unwrap().remove(0).unwrap();
        assert_eq!(back.item.canonical(), item.canonical(), "{folder:?}");
        assert_eq!(back.origin, Some(origin));
    }
}

#[tokio::test]
async fn unchanged_public_folder_is_listed_from_the_probe() {
    use std::sync::atomic::Ordering;
    let emu = common::emulator(EmulatorConfig { contacts: 30, ..Default::default() }).await;
    let pf = common::public_folder(&emu, "Company Contacts").await;
    let folder = EwsFolderConnector::public_folder(common::public(&emu), pf, "Public/Company Contacts")
        .with_options(ConnectorOptions { page_size: 7, probe_quiet_period: Duration::ZERO, ..Default::default() });
    let list_all = || async {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = folder.list(cursor.as_ref()).await.unwrap();
            all.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => return all,
            }
        }
    };
    let first = list_all().await;
    assert_eq!(first.len(), 30);
    let fetched = folder.stats().listing_pages_fetched.load(Ordering::Relaxed);
    assert_eq!(fetched, 5, "30 items in pages of 7");

    let second = list_all().await;
    assert_eq!(second, first);
    assert_eq!(folder.stats().listing_pages_fetched.load(Ordering::Relaxed), fetched, "nothing changed: no FindItem");
    assert_eq!(folder.stats().listing_pages_from_cache.load(Ordering::Relaxed), 5);

    // A change elsewhere moves the probe: the next listing goes to the server and sees it. (Wait
    // for the next second: the probe has whole seconds, which the quiet period covers in production.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emu.store()
        .edit_item(first[3].id.as_str(), |i| i.set_field(ews_emulator::xml::Element::t_text("JobTitle", "Changed")))
        .unwrap();
    let third = list_all().await;
    assert!(folder.stats().listing_pages_fetched.load(Ordering::Relaxed) > fetched);
    let changed = third.iter().find(|v| v.id == first[3].id).unwrap();
    assert_ne!(changed.version, first[3].version);
}

#[tokio::test]
async fn a_recent_commit_is_never_trusted() {
    use std::sync::atomic::Ordering;
    let emu = common::emulator(EmulatorConfig { contacts: 5, ..Default::default() }).await;
    let pf = common::public_folder(&emu, "Company Contacts").await;
    // The folder was just filled, so its last commit is well within an hour's quiet period.
    let options = ConnectorOptions { probe_quiet_period: Duration::from_secs(3600), ..Default::default() };
    let folder =
        EwsFolderConnector::public_folder(common::public(&emu), pf, "Public/Company Contacts").with_options(options);
    folder.list(None).await.unwrap();
    folder.list(None).await.unwrap();
    assert_eq!(folder.stats().listing_pages_fetched.load(Ordering::Relaxed), 2);
    assert_eq!(folder.stats().listing_pages_from_cache.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn hints_end_when_the_connector_is_dropped() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let folder =
        EwsFolderConnector::mailbox_folder(common::as_user(&emu, "dave"), contacts(), "dave@contoso.test/Contacts")
            .with_options(ConnectorOptions { watch: fast_watch(), ..Default::default() });
    let mut hints = folder.watch().await.unwrap();
    drop(folder);
    let end = tokio::time::timeout(Duration::from_secs(120), async { while hints.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "the hint stream ends after the connector is gone");
}
