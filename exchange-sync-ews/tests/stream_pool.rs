//! Many watched folders on few streaming connections: subscriptions grouped by the mailbox server
//! holding them (the affinity cookie), a change in any folder reaching its own watcher, and a
//! subscription the server lost subscribed again without disturbing the others.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use ews_emulator::{EmulatorConfig, RunningEmulator};
use exchange_sync_core::{ChangeHint, Connector, EntityId, GroupId, Item, ItemKind, NewItem, OriginStamp, field};
use exchange_sync_ews::watch::WatchOptions;
use exchange_sync_ews::*;
use futures::stream::BoxStream;

const MAILBOXES: usize = 100;
const SERVERS: usize = 3;

fn user(n: usize) -> String {
    format!("u{n:03}")
}

async fn tenant() -> RunningEmulator {
    common::emulator(EmulatorConfig {
        users: (0..MAILBOXES).map(user).collect(),
        contacts: 1,
        backend_servers: SERVERS,
        heartbeat_interval: Duration::from_millis(500),
        ..Default::default()
    })
    .await
}

fn options(per_connection: usize) -> ConnectorOptions {
    ConnectorOptions {
        watch: WatchOptions {
            connection_timeout_minutes: 30,
            heartbeat_timeout: Duration::from_secs(30),
            retry_delay: Duration::from_millis(50),
            subscriptions_per_connection: per_connection,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn contact(n: usize) -> NewItem {
    NewItem {
        item: Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, format!("P{n}").as_str())
            .with(field::SURNAME, "Pooled")
            .into(),
        origin: OriginStamp::new(GroupId::new("g"), EntityId::new(format!("p{n}"))),
    }
}

/// Every mailbox's Contacts folder, watched through one service account client.
async fn watch_all(
    client: &EwsClient,
    per_connection: usize,
) -> Vec<(EwsFolderConnector, BoxStream<'static, ChangeHint>)> {
    let mut out = Vec::new();
    for n in 0..MAILBOXES {
        let mailbox = format!("{}@contoso.test", user(n));
        let folder = EwsFolderConnector::mailbox_folder(
            client.impersonating(Impersonation::PrimarySmtpAddress(mailbox.clone())),
            FolderRef::distinguished(DistinguishedFolder::Contacts),
            format!("{mailbox}/Contacts"),
        )
        .with_options(options(per_connection));
        let hints = folder.watch().await.unwrap();
        out.push((folder, hints));
    }
    out
}

/// Waits until `done` holds; the generous limit only turns a hang into a failure.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait).await.unwrap_or_else(|_| panic!("never: {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_folders_share_one_connection_per_mailbox_server() {
    let emu = tenant().await;
    let client = common::admin(&emu);
    let mut watched = watch_all(&client, MAX_PER_CONNECTION).await;
    until("every subscription is on a connection", || client.stream_pool().subscriptions() == MAILBOXES).await;
    // One connection per mailbox server: the three servers' subscriptions cannot share one.
    until("one stream per server", || {
        client.stream_pool().connections() == SERVERS && emu.request_stats().streams_open == SERVERS as u64
    })
    .await;

    // A change in any folder reaches that folder's watcher.
    for (n, (folder, _)) in watched.iter().enumerate() {
        folder.create(&[contact(n)]).await.unwrap();
    }
    for (_, hints) in &mut watched {
        common::next_hint(hints, ChangeHint::Changed).await;
    }

    // The server loses one folder's subscription: that folder re-syncs and is watched again,
    // the others stay on their connections.
    let lost = 42;
    let index = emu.store().mailbox_index(&format!("{}@contoso.test", user(lost))).unwrap();
    assert_eq!(emu.store().hub().expire_mailbox(index), 1);
    common::next_hint(&mut watched[lost].1, ChangeHint::Resync).await;
    until("the lost subscription is back", || client.stream_pool().subscriptions() == MAILBOXES).await;
    watched[lost].0.create(&[contact(1000)]).await.unwrap();
    common::next_hint(&mut watched[lost].1, ChangeHint::Changed).await;
    until("still one stream per server", || emu.request_stats().streams_open == SERVERS as u64).await;

    // Folders nobody watches leave their connections; with none left, the connections close.
    drop(watched);
    until("no connection left", || client.stream_pool().connections() == 0).await;
    until("no stream left", || emu.request_stats().streams_open == 0).await;
}

const MAX_PER_CONNECTION: usize = exchange_sync_ews::MAX_SUBSCRIPTIONS_PER_CONNECTION;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_more_subscriptions_than_one_connection_carries_gets_several() {
    let emu = tenant().await;
    let client = common::admin(&emu);
    let per_connection = 10;
    let mut watched = watch_all(&client, per_connection).await;
    until("every subscription is on a connection", || client.stream_pool().subscriptions() == MAILBOXES).await;
    // 100 subscriptions over 3 servers (34, 33, 33), at most 10 per connection: 4 + 4 + 4.
    until("twelve streams", || emu.request_stats().streams_open == 12).await;
    assert_eq!(client.stream_pool().connections(), 12);
    let last = MAILBOXES - 1;
    watched[last].0.create(&[contact(last)]).await.unwrap();
    common::next_hint(&mut watched[last].1, ChangeHint::Changed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_shared_connection_resyncs_every_folder_on_it_and_reconnects() {
    // Heartbeats far apart and a short heartbeat timeout: the shared connection stalls.
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    let client = common::admin(&emu);
    let mut watched = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let mut o = options(MAX_PER_CONNECTION);
        o.watch.heartbeat_timeout = Duration::from_millis(400);
        let folder = EwsFolderConnector::mailbox_folder(
            client.impersonating(Impersonation::PrimarySmtpAddress(format!("{who}@contoso.test"))),
            FolderRef::distinguished(DistinguishedFolder::Contacts),
            format!("{who}@contoso.test/Contacts"),
        )
        .with_options(o);
        let hints = folder.watch().await.unwrap();
        watched.push((folder, hints));
    }
    until("one connection carries the three", || {
        client.stream_pool().subscriptions() == 3 && client.stream_pool().connections() == 1
    })
    .await;
    for (_, hints) in &mut watched {
        common::next_hint(hints, ChangeHint::Resync).await;
    }
    // Each stall reconnects the same connection with all three subscriptions. (Whether a change
    // made meanwhile arrives as its own hint is not certain: events the server sent into a
    // connection already given up are lost, which is why a stall means a re-sync.)
    let opened = emu.request_stats().streams_opened;
    until("reconnected", || emu.request_stats().streams_opened > opened + 1).await;
    assert_eq!(client.stream_pool().subscriptions(), 3);
    assert_eq!(client.stream_pool().connections(), 1);
}
