//! The behaviours of a sync group against the EWS emulator over HTTP: initial delivery into a
//! created folder, two-way propagation, one-way revert, field-level merge with a conflict record,
//! deletion everywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use exchange_sync::{PassOutcome, RunOptions};
use exchange_sync_core::field;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_delivers_propagates_reverts_merges_and_deletes() {
    let emu = emulator(6).await;
    let config = config(&emu, group());
    // The configuration says where state lives (memory here): `connect` builds everything.
    let service = exchange_sync::SyncService::connect(config.clone()).await.unwrap();
    let folders = Folders::new(&config).await;
    let hub = folders.hub().await;
    let all_names = names(&hub).await;
    assert_eq!(all_names.len(), 6);
    let hub_names = unique_names(&hub).await;
    assert!(hub_names.len() >= 4, "{all_names:?}");

    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].totals().created, 24);
    for m in EDITORS.iter().chain(&READERS) {
        assert_eq!(names(&folders.member(m).await).await, all_names, "{m}");
    }

    // An edit on the public folder reaches all four.
    let first = &hub_names[0];
    let hub_item = find(&hub, first).await.unwrap();
    hub.update(&hub_item.id, |i| i.set(field::JOB_TITLE, "Head of Sales")).await.unwrap();
    // An editor's edit reaches the hub and the others; a reader's edit is reverted.
    let second = &hub_names[1];
    let alice = folders.member(EDITORS[0]).await;
    let a = find(&alice, second).await.unwrap();
    alice.update(&a.id, |i| i.set(field::PHONE_MOBILE, "+1 555 0100")).await.unwrap();
    let carol = folders.member(READERS[0]).await;
    let c = find(&carol, second).await.unwrap();
    carol.update(&c.id, |i| i.set(field::COMPANY, "Carol's own idea")).await.unwrap();

    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    for m in EDITORS.iter().chain(&READERS) {
        let f = folders.member(m).await;
        assert_eq!(field_of(&f, first, field::JOB_TITLE).await.as_deref(), Some("Head of Sales"), "{m}");
        assert_eq!(field_of(&f, second, field::PHONE_MOBILE).await.as_deref(), Some("+1 555 0100"), "{m}");
    }
    assert_eq!(field_of(&hub, second, field::PHONE_MOBILE).await.as_deref(), Some("+1 555 0100"));
    let hub_company = field_of(&hub, second, field::COMPANY).await;
    assert_ne!(hub_company.as_deref(), Some("Carol's own idea"));
    assert_eq!(field_of(&carol, second, field::COMPANY).await, hub_company, "the reader's edit is reverted");

    // Both editors change the same field: merged, one value kept, the other in the conflict log;
    // different fields of the same item merge without conflict.
    let third = &hub_names[2];
    let bob = folders.member(EDITORS[1]).await;
    let a = find(&alice, third).await.unwrap();
    alice
        .update(&a.id, |i| {
            i.set(field::PHONE_MOBILE, "+1 555 0001");
            i.set(field::DEPARTMENT, "Field sales");
        })
        .await
        .unwrap();
    let b = find(&bob, third).await.unwrap();
    bob.update(&b.id, |i| {
        i.set(field::PHONE_MOBILE, "+1 555 0002");
        i.set(field::OFFICE, "Building 7");
    })
    .await
    .unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].conflicts.len(), 1, "{report:#?}");
    let log = service.conflicts(Some(GROUP)).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].field, field::PHONE_MOBILE);
    let kept = log[0].winner.value.clone();
    assert!(kept.is_some());
    for f in [&hub, &alice, &bob, &carol] {
        assert_eq!(field_of(f, third, field::PHONE_MOBILE).await, kept);
        assert_eq!(field_of(f, third, field::DEPARTMENT).await.as_deref(), Some("Field sales"));
        assert_eq!(field_of(f, third, field::OFFICE).await.as_deref(), Some("Building 7"));
    }

    // A deleted item disappears everywhere.
    let fourth = &hub_names[3];
    let b = find(&bob, fourth).await.unwrap();
    bob.delete(&b.id).await.unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert!(find(&hub, fourth).await.is_none());
    for m in EDITORS.iter().chain(&READERS) {
        assert!(find(&folders.member(m).await, fourth).await.is_none(), "{m}");
    }

    // Stable: the next pass writes nothing.
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(report.groups[0].outcome, PassOutcome::Synced);
    assert_eq!(report.groups[0].totals().created + report.groups[0].totals().updated, 0, "{report:#?}");
}
