//! Streaming connections live the lifetime they ask for: the whole-request timeout of ordinary
//! requests does not cut them (it used to, every two minutes, and each cut made every watched
//! folder re-sync). A connection the server closes at the end of its lifetime is renewed without a
//! re-sync; only a real gap (a stall, an end without `ConnectionStatus Closed`) asks for one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::hostile::{self, HostileServer, Reply};
use ews_emulator::EmulatorConfig;
use exchange_sync_core::{ChangeHint, Connector, EntityId, GroupId, Item, ItemKind, NewItem, OriginStamp, field};
use exchange_sync_ews::operation::notifications::{ITEM_EVENTS, SubscriptionKind};
use exchange_sync_ews::watch::WatchOptions;
use exchange_sync_ews::*;
use futures::StreamExt;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

/// Ordinary requests may take half a second; a streaming "minute" lasts two seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

async fn emulator() -> ews_emulator::RunningEmulator {
    common::emulator(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_millis(200),
        streaming_minute: Duration::from_secs(2),
        ..Default::default()
    })
    .await
}

fn short_requests(url: &str) -> EwsClient {
    EwsClient::builder(url)
        .credentials(Credentials::basic(common::ADMIN, common::PASSWORD))
        .retry(common::quick_retries())
        .transport(TransportConfig { request_timeout: REQUEST_TIMEOUT, ..TransportConfig::default() })
        .build()
        .unwrap()
        .impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()))
}

#[tokio::test]
async fn a_streaming_connection_outlives_the_request_timeout() {
    let emu = emulator().await;
    let alice = short_requests(emu.url());
    let sub = alice.subscribe(&[contacts()], &ITEM_EVENTS, &SubscriptionKind::Streaming).await.unwrap();
    let opened = Instant::now();
    let mut stream = alice.get_streaming_events(&[sub.id], 1, Duration::from_secs(5)).await.unwrap();
    let mut batches = Vec::new();
    while let Some(b) =
        tokio::time::timeout(Duration::from_secs(60), stream.next()).await.expect("the server closes it")
    {
        batches.push(b.unwrap());
    }
    assert!(opened.elapsed() >= Duration::from_millis(1500), "ended after {:?}", opened.elapsed());
    assert!(batches.len() > 3, "heartbeats all along: {}", batches.len());
    assert!(batches.last().unwrap().closed, "ended by the server's ConnectionStatus Closed");
}

#[tokio::test]
async fn a_connection_closed_at_the_end_of_its_lifetime_is_renewed_without_a_resync() {
    let emu = emulator().await;
    let options = ConnectorOptions {
        watch: WatchOptions {
            connection_timeout_minutes: 1,
            heartbeat_timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(50),
            ..Default::default()
        },
        ..Default::default()
    };
    let folder =
        EwsFolderConnector::mailbox_folder(short_requests(emu.url()), contacts(), "alice@contoso.test/Contacts")
            .with_options(options);
    let mut hints = folder.watch().await.unwrap();
    // Three lifetimes of two seconds: each renewed, none of them a gap.
    let quiet = tokio::time::timeout(Duration::from_secs(7), hints.next()).await;
    assert!(quiet.is_err(), "no hint while nothing changes: {quiet:?}");
    assert!(emu.request_stats().requests >= 3, "renewed: {:?}", emu.request_stats());
    let item = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Late").with(field::SURNAME, "Arrival");
    let origin = OriginStamp::new(GroupId::new("g"), EntityId::new("late"));
    folder.create(&[NewItem { item: item.into(), origin }]).await.unwrap();
    let hint = tokio::time::timeout(Duration::from_secs(30), hints.next()).await.expect("a hint").unwrap();
    assert_eq!(hint, ChangeHint::Changed);
}

/// Subscribe answers, then GetStreamingEvents answers `stream(n)` for its `n`-th connection.
async fn streaming_server(stream: fn(usize) -> Reply) -> HostileServer {
    let connections = std::sync::atomic::AtomicUsize::new(0);
    HostileServer::start(move |seen, _| match seen.operation.as_str() {
        "Subscribe" => hostile::subscribed("sub-1"),
        "GetStreamingEvents" => stream(connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst)),
        _ => Reply::full(500, ""),
    })
    .await
}

async fn watch(server: &HostileServer) -> futures::stream::BoxStream<'static, ChangeHint> {
    let client = EwsClient::builder(&server.url)
        .credentials(Credentials::basic("sync-admin@contoso.test", "pw"))
        .build()
        .unwrap()
        .impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()));
    let options = ConnectorOptions {
        watch: WatchOptions {
            heartbeat_timeout: Duration::from_millis(300),
            retry_delay: Duration::from_millis(50),
            ..Default::default()
        },
        ..Default::default()
    };
    let folder =
        EwsFolderConnector::mailbox_folder(client, contacts(), "alice@contoso.test/Contacts").with_options(options);
    let hints = folder.watch().await.unwrap();
    // The watcher stops with the connector; keep it for the test's length.
    std::mem::forget(folder);
    hints
}

fn parts(docs: Vec<(Duration, Vec<u8>)>) -> Reply {
    Reply::chunked(200, Box::new(docs.into_iter()))
}

#[tokio::test]
async fn a_stalled_stream_asks_for_a_resync() {
    let server = streaming_server(|_| {
        parts(vec![
            (Duration::ZERO, hostile::streaming_status("OK")),
            (Duration::from_secs(30), hostile::streaming_status("OK")),
        ])
    })
    .await;
    let mut hints = watch(&server).await;
    common::next_hint(&mut hints, ChangeHint::Resync).await;
    let reconnected = async {
        while server.count("GetStreamingEvents") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), reconnected).await.expect("reconnected");
}

#[tokio::test]
async fn a_stream_that_ends_without_closed_asks_for_a_resync_and_one_that_closes_does_not() {
    // Ended abruptly after a heartbeat: a gap.
    let server = streaming_server(|_| parts(vec![(Duration::ZERO, hostile::streaming_status("OK"))])).await;
    let mut hints = watch(&server).await;
    common::next_hint(&mut hints, ChangeHint::Resync).await;

    // Heartbeats, then Closed: renewed quietly, again and again.
    let server = streaming_server(|_| {
        parts(vec![
            (Duration::ZERO, hostile::streaming_status("OK")),
            (Duration::from_millis(100), hostile::streaming_status("OK")),
            (Duration::from_millis(100), hostile::streaming_status("Closed")),
        ])
    })
    .await;
    let mut hints = watch(&server).await;
    let quiet = tokio::time::timeout(Duration::from_secs(3), hints.next()).await;
    assert!(quiet.is_err(), "no hint: {quiet:?}");
    assert!(server.count("GetStreamingEvents") >= 2, "renewed: {}", server.count("GetStreamingEvents"));
}
