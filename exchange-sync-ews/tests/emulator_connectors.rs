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
            .with(field::SURNAME, "Watched"),
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

/// Waits for the first hint equal to `want`, skipping others. The generous limit only turns a hang
/// into a failure; it says nothing about speed.
async fn next_hint(hints: &mut futures::stream::BoxStream<'static, ChangeHint>, want: ChangeHint) {
    let wait = async {
        while let Some(h) = hints.next().await {
            if h == want {
                return;
            }
        }
        panic!("the hint stream ended before {want:?}");
    };
    tokio::time::timeout(Duration::from_secs(120), wait).await.expect("a hint arrives");
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
    next_hint(&mut hints, ChangeHint::Resync).await;
    folder.create(&[new_contact(1)]).await.unwrap();
    next_hint(&mut hints, ChangeHint::Changed).await;
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
    next_hint(&mut hints, ChangeHint::Changed).await;
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
    next_hint(&mut hints, ChangeHint::Changed).await;
    writer.abort();
    assert_eq!(folder.client().version(), ExchangeVersion::Exchange2007Sp1);
}
