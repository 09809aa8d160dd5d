//! Error paths and resilience against the emulator: throttling, injected faults, a connection lost
//! after a write, version negotiation, access errors and many mailboxes through one account.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use ews_emulator::{EmulatorConfig, Fault, FaultRates, ServerVersion};
use exchange_sync_ews::*;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

fn count(emu: &ews_emulator::RunningEmulator, user: &str, surname: &str) -> usize {
    emu.store()
        .items_in(&format!("{user}@contoso.test"), "contacts")
        .unwrap()
        .iter()
        .filter(|i| i.item.field("Surname").is_some_and(|s| s.text == surname))
        .count()
}

#[tokio::test]
async fn concurrency_adapts_to_the_server_limit() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        max_concurrency: 2,
        latency: Duration::from_millis(100),
        busy_backoff: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let alice = common::as_user(&emu, "alice");
    let bob = common::as_user(&emu, "bob");
    assert_eq!(alice.concurrency_limit(), 10);
    let calls = (0..12).map(|_| {
        let alice = alice.clone();
        tokio::spawn(async move { alice.get_folder(&contacts(), &FolderShape::default()).await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert!(alice.concurrency_limit() < 10, "the limit shrank after ErrorServerBusy: {}", alice.concurrency_limit());
    assert_eq!(bob.concurrency_limit(), 10, "another mailbox keeps its own limit");
}

#[tokio::test]
async fn random_busy_answers_are_retried_without_duplicates() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        busy_rate: 0.3,
        busy_backoff: Duration::from_millis(5),
        seed: 11,
        ..Default::default()
    })
    .await;
    let alice = common::as_user(&emu, "alice");
    for round in 0..10 {
        let drafts: Vec<_> = (0..3).map(|i| common::contact(&format!("R{round}x{i}"), "Busy")).collect();
        let r = alice.create_items(&contacts(), &drafts).await.unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        alice.find_all_items(&contacts(), &ItemShape::id_only(vec![])).await.unwrap();
    }
    assert_eq!(count(&emu, "alice", "Busy"), 30);
}

#[tokio::test]
async fn injected_faults_are_retried() {
    let emu = common::small_tenant().await;
    let alice = common::as_user(&emu, "alice");
    for fault in [Fault::ServiceUnavailable, Fault::InternalServerError, Fault::ServerBusy] {
        emu.inject(fault);
        alice.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    }
}

#[tokio::test]
async fn random_faults_with_connector_writes_never_duplicate() {
    use exchange_sync_core::{Connector, EntityId, GroupId, Item, ItemKind, NewItem, OriginStamp, field};
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        faults: FaultRates { drop_after_write: 0.2, internal_error: 0.1, unavailable: 0.1 },
        seed: 3,
        ..Default::default()
    })
    .await;
    let folder =
        EwsFolderConnector::mailbox_folder(common::as_user(&emu, "bob"), contacts(), "bob@contoso.test/Contacts");
    let mut created = 0;
    for i in 0..20 {
        let item = Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, format!("F{i}").as_str())
            .with(field::SURNAME, "Faulty");
        let origin = OriginStamp::new(GroupId::new("g"), EntityId::new(format!("e{i}")));
        match folder.create(&[NewItem { item: item.into(), origin }]).await {
            Ok(r) if r[0].is_ok() => created += 1,
            other => panic!("create {i} failed: {other:?}"),
        }
    }
    assert_eq!(created, 20);
    assert_eq!(count(&emu, "bob", "Faulty"), 20, "no create was duplicated by a retry");
}

#[tokio::test]
async fn dropped_connection_after_a_write() {
    use exchange_sync_core::{Connector, EntityId, GroupId, Item, ItemKind, NewItem, OriginStamp, field};
    let emu = common::small_tenant().await;
    let carol = common::as_user(&emu, "carol");

    // The bare client reports the outcome as unknown and does not resend.
    emu.inject(Fault::DropAfterWrite);
    let err =
        carol.create_items(&contacts(), &[common::contact("Lost", "Answer")]).await.unwrap().remove(0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Indeterminate, "{err}");
    assert_eq!(count(&emu, "carol", "Answer"), 1);

    // The connector finds the stamped copy instead of creating a second one.
    let folder = EwsFolderConnector::mailbox_folder(carol, contacts(), "carol@contoso.test/Contacts");
    let item = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Once").with(field::SURNAME, "Only");
    let origin = OriginStamp::new(GroupId::new("company"), EntityId::new("e-once"));
    emu.inject(Fault::DropAfterWrite);
    let r = folder.create(&[NewItem { item: item.into(), origin: origin.clone() }]).await.unwrap();
    let version = r[0].as_ref().unwrap();
    assert_eq!(count(&emu, "carol", "Only"), 1);
    let found = folder.find_by_origin(&[origin]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, version.id);
}

#[tokio::test]
async fn schema_version_is_negotiated_down() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 1,
        server_version: ServerVersion::Exchange2010Sp2,
        ..Default::default()
    })
    .await;
    let alice = common::as_user(&emu, "alice");
    assert_eq!(alice.version(), ExchangeVersion::Exchange2016);
    alice.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    assert_eq!(alice.version(), ExchangeVersion::Exchange2010Sp2);
    assert_eq!(alice.server_version().and_then(|v| v.major), Some(14));
}

#[tokio::test]
async fn access_errors_have_kinds_and_context() {
    let emu = common::small_tenant().await;
    let wrong = EwsClient::builder(emu.url()).credentials(Credentials::basic(common::ADMIN, "wrong")).build().unwrap();
    let e = wrong.get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(!e.to_string().contains("wrong") && !format!("{e:?}").contains("wrong"), "no password in errors");

    let alice_login = common::client_as(&emu, "alice@contoso.test");
    let e = alice_login
        .impersonating(Impersonation::PrimarySmtpAddress("bob@contoso.test".into()))
        .get_folder(&contacts(), &FolderShape::default())
        .await
        .unwrap_err();
    assert_eq!(e.response_code(), Some("ErrorImpersonateUserDenied"));
    assert_eq!(e.kind(), ErrorKind::AccessDenied);

    let e = common::as_user(&emu, "ghost").get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(e.response_code(), Some("ErrorNonExistentMailbox"));
    assert_eq!(e.kind(), ErrorKind::MailboxNotFound);
    assert!(e.to_string().contains("ghost@contoso.test"), "{e}");

    let bobs =
        FolderRef::Distinguished { folder: DistinguishedFolder::Contacts, mailbox: Some("bob@contoso.test".into()) };
    let e = alice_login.get_folder(&bobs, &FolderShape::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);

    let pf = common::public_folder(&emu, "Company Contacts").await;
    let e = alice_login.create_items(&pf, &[common::contact("No", "Rights")]).await.unwrap().remove(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
}

#[tokio::test]
async fn many_mailboxes_through_one_account() {
    let emu = common::small_tenant().await;
    let users = ["alice", "bob", "carol", "dave"];
    let tasks = users.iter().map(|u| {
        let client = common::as_user(&emu, u);
        let u = (*u).to_owned();
        tokio::spawn(async move {
            let drafts: Vec<_> = (0..5).map(|i| common::contact(&format!("{u}{i}"), "Mine")).collect();
            client.create_items(&contacts(), &drafts).await.unwrap();
            client.find_all_items(&contacts(), &ItemShape::all(vec![])).await.unwrap()
        })
    });
    let listings = futures::future::join_all(tasks).await;
    for (user, listing) in users.iter().zip(listings) {
        let listing = listing.unwrap();
        let mine: Vec<_> = listing.iter().filter(|i| i.text("Surname") == Some("Mine")).collect();
        assert_eq!(mine.len(), 5, "{user}");
        assert!(mine.iter().all(|i| i.text("GivenName").unwrap().starts_with(user)), "{user} sees only its own items");
        assert_eq!(count(&emu, user, "Mine"), 5);
    }
}

#[tokio::test]
async fn server_busy_in_a_response_message_is_retried() {
    let emu =
        common::emulator(EmulatorConfig { contacts: 1, busy_backoff: Duration::from_millis(5), ..Default::default() })
            .await;
    let dave = common::as_user(&emu, "dave");
    emu.inject(Fault::ServerBusyInMessage);
    dave.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    emu.inject(Fault::ServerBusyInMessage);
    dave.find_all_items(&contacts(), &ItemShape::id_only(vec![])).await.unwrap();
    emu.inject(Fault::ServerBusyInMessage);
    let drafts: Vec<_> = (0..3).map(|i| common::contact(&format!("M{i}"), "InMessage")).collect();
    let r = dave.create_items(&contacts(), &drafts).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(count(&emu, "dave", "InMessage"), 3);
}

#[tokio::test]
async fn a_stopped_batch_is_finished_without_duplicates() {
    let emu = common::small_tenant().await;
    let carol = common::as_user(&emu, "carol");
    emu.inject(Fault::StopBatchAfter(2));
    let drafts: Vec<_> = (0..5).map(|i| common::contact(&format!("S{i}"), "Stopped")).collect();
    let r = carol.create_items(&contacts(), &drafts).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(count(&emu, "carol", "Stopped"), 5, "the first two were not created again");
    let ids: Vec<ItemId> = r.into_iter().map(Result::unwrap).collect();
    emu.inject(Fault::StopBatchAfter(1));
    let got = carol.get_items(&ids, &ItemShape::all(vec![])).await.unwrap();
    assert!(got.iter().all(Result::is_ok));
    emu.inject(Fault::StopBatchAfter(3));
    let deleted = carol.delete_items(&ids, exchange_sync_ews::operation::items::DeleteType::HardDelete).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    assert_eq!(count(&emu, "carol", "Stopped"), 0);
}
