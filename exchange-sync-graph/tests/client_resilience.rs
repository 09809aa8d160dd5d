//! What an operator expects of the Graph client under trouble, over HTTP against the emulator:
//! tokens cached and renewed, refused credentials reported without the secret, Graph's
//! throttling honoured per mailbox (Retry-After in full, long back-offs handed to the engine, at
//! most 4 requests in flight), expired delta links, and links to other hosts refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync_core::connector::NewItem;
use exchange_sync_core::testkit::conformance::sample_contact;
use exchange_sync_core::{Connector, EntityId, ErrorKind as CoreKind, GroupId, OriginStamp, SyncToken};
use exchange_sync_graph::{ClientCredentials, ConnectorOptions, ErrorKind, GraphClient, Secret};
use graph_emulator::GraphEmulatorConfig;

fn stamp(n: usize) -> OriginStamp {
    OriginStamp::new(GroupId::new("resilience"), EntityId::new(format!("e{n}")))
}

fn new_items(n: usize) -> Vec<NewItem> {
    (0..n).map(|i| NewItem { item: sample_contact(i).into(), origin: stamp(i) }).collect()
}

#[tokio::test]
async fn one_token_serves_many_requests_and_a_refused_one_is_renewed() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = common::fresh_folder(&client, &alice, "tokens").await;
    for _ in 0..5 {
        folder.list(None).await.unwrap();
    }
    assert_eq!(emu.token_requests(), 1, "the token is cached");
    emu.revoke_tokens();
    folder.list(None).await.expect("a refused token is replaced once and the request succeeds");
    assert_eq!(emu.token_requests(), 2);
}

#[tokio::test]
async fn a_passing_failure_of_the_authority_is_retried() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    emu.fail_token_requests(2);
    let found = client.contact_folder_by_name(&emu.config().address("alice"), "none").await.unwrap();
    assert_eq!(found, None);
    assert_eq!(emu.token_requests(), 3, "two failed token requests, then one that worked");
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_that_does_not_show_the_secret() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let credentials = ClientCredentials { secret: Secret::new("not-the-secret-42"), ..common::credentials(&emu) };
    let client = GraphClient::builder(credentials).graph_url(emu.url()).build().unwrap();
    let err = client.contact_folder_by_name(&emu.config().address("alice"), "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let text = format!("{err} {err:?}");
    assert!(text.contains("AADSTS7000215"), "the authority's reason is kept: {text}");
    assert!(!text.contains("not-the-secret-42"), "the secret leaked: {text}");
    assert_eq!(emu.token_requests(), 1, "a refused secret is not retried");
}

#[tokio::test]
async fn retry_after_is_honoured_for_the_throttled_mailbox_only() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let (alice, bob) = (emu.config().address("alice"), emu.config().address("bob"));
    let a = common::fresh_folder(&client, &alice, "throttled").await;
    let b = common::fresh_folder(&client, &bob, "not throttled").await;
    emu.inject_throttling(&alice, 1, 1);
    let started = Instant::now();
    let (ra, rb) = tokio::join!(a.list(None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        (b.list(None).await, t.elapsed())
    });
    ra.expect("the throttled request is retried after the back-off");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured: {:?}", started.elapsed());
    let (rb, b_took) = rb;
    rb.unwrap();
    assert!(b_took < Duration::from_millis(800), "another mailbox waited for alice's back-off: {b_took:?}");
    assert_eq!(emu.throttled(), 1);
}

#[tokio::test]
async fn a_long_back_off_goes_to_the_engine_at_once_and_holds_later_calls() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = common::fresh_folder(&client, &alice, "long back-off").await;
    emu.inject_throttling(&alice, 1, 600);
    let started = Instant::now();
    let err = folder.list(None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "a 10-minute back-off was waited inline");
    assert_eq!(err.kind(), CoreKind::Throttled);
    assert!(err.retries_exhausted(), "the client owns the retries: {err}");
    let after = err.retry_after().expect("the remaining back-off is carried");
    assert!(after > Duration::from_secs(590), "{after:?}");
    let sent = emu.requests();
    let again = folder.list(None).await.unwrap_err();
    assert_eq!(again.kind(), CoreKind::Throttled);
    assert_eq!(emu.requests(), sent, "a request left during the back-off");
}

#[tokio::test]
async fn at_most_four_requests_are_in_flight_per_mailbox() {
    let config = GraphEmulatorConfig { latency: Duration::from_millis(60), ..GraphEmulatorConfig::default() };
    let emu = common::emulator(config).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = Arc::new(common::fresh_folder(&client, &alice, "concurrency").await);
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let f = Arc::clone(&folder);
            tokio::spawn(async move { f.list(None).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(emu.throttled(), 0, "the client exceeded Graph's concurrency limit");
    assert_eq!(emu.max_in_flight(), 4, "the client should use the 4 slots it has");
}

#[tokio::test]
async fn throttled_batch_parts_are_sent_again_and_large_writes_are_split_in_twenties() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = common::fresh_folder(&client, &alice, "batch").await;
    emu.inject_throttling(&alice, 3, 1);
    let created = folder.create(&new_items(45)).await.unwrap();
    assert_eq!(created.len(), 45);
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let folder_id = folder.folder_id().unwrap();
    assert_eq!(emu.store().folder_contacts(&alice, &folder_id).len(), 45, "a create was lost or doubled");
    let found = folder.find_by_origin(&[stamp(0), stamp(44)]).await.unwrap();
    assert_eq!(found.len(), 2, "every create happened exactly once");
}

#[tokio::test]
async fn an_expired_delta_link_asks_for_a_full_resync() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = common::fresh_folder(&client, &alice, "delta").await;
    folder.create(&new_items(3)).await.unwrap();
    let mut page = folder.changes(None).await.unwrap();
    while page.more {
        page = folder.changes(Some(&page.token)).await.unwrap();
    }
    emu.expire_delta_tokens();
    let err = folder.changes(Some(&page.token)).await.unwrap_err();
    assert_eq!(err.kind(), CoreKind::InvalidSyncToken, "{err}");
    let fresh = folder.changes(None).await.unwrap();
    assert_eq!(fresh.changes.len(), 3);
}

#[tokio::test]
async fn a_sync_token_pointing_elsewhere_is_refused_without_sending_the_token() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let alice = emu.config().address("alice");
    let folder = common::fresh_folder(&client, &alice, "foreign").await.with_options(ConnectorOptions::default());
    let token =
        SyncToken::new("http://attacker.invalid/v1.0/users/alice/contactFolders/x/contacts/delta?$deltatoken=1");
    let err = folder.changes(Some(&token)).await.unwrap_err();
    assert_eq!(err.kind(), CoreKind::Permanent, "{err}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let credentials = ClientCredentials {
        authority: format!("http://{addr}/contoso.test"),
        client_id: "app".into(),
        secret: Secret::new("s"),
    };
    let client = GraphClient::builder(credentials).graph_url(format!("http://{addr}")).build().unwrap();
    let started = Instant::now();
    let err = client.contact_folder_by_name("alice@contoso.test", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
