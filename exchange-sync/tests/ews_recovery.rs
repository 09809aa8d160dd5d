//! Safety against the EWS emulator: a service killed mid-batch and restarted creates no duplicates
//! and loses no edit; a public folder that becomes unreadable wipes no member.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ews_emulator::{Emulator, EmulatorConfig, Fault, Permission};
use exchange_sync::{PassOutcome, RunOptions};
use exchange_sync_core::field;
use exchange_sync_core::state::memory::MemoryStore;

/// The hub still holds its `count` contacts, and every member exactly the same (sorted lists of
/// display names, so a duplicated copy would show as an extra entry).
async fn assert_converged_without_duplicates(folders: &Folders, count: usize) {
    let hub = names(&folders.hub().await).await;
    assert_eq!(hub.len(), count, "the hub gained or lost items");
    for m in EDITORS.iter().chain(&READERS) {
        let got = names(&folders.member(m).await).await;
        assert_eq!(got.len(), count, "{m} holds {} copies of {count} contacts", got.len());
        assert_eq!(got, hub, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_batch_restarts_without_duplicates_or_lost_edits() {
    let emu = Emulator::start(EmulatorConfig {
        contacts: 120,
        latency: Duration::from_millis(30),
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&emu, group());
    let folders = Folders::new(&config).await;
    let alice = folders.member(EDITORS[0]).await;

    // A write whose answer is lost: the server created the items, the service never heard.
    emu.inject(Fault::DropAfterWrite);
    let first = service(&config, store(dir.path()).await).await;
    let pass = tokio::spawn(async move { first.run_once(RunOptions::default()).await });
    // Kill the service as soon as the first copies land. The emulator's store is watched in
    // process (a listing over EWS would take as long as a batch of writes): each folder gets
    // three batches, one request at a time, so the kill lands while most are still to come.
    let store_view = emu.store();
    let landed = || {
        EDITORS
            .iter()
            .chain(&READERS)
            .any(|m| store_view.items_in(m, "Contacts/Company Contacts").is_some_and(|items| !items.is_empty()))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !landed() {
        assert!(tokio::time::Instant::now() < deadline, "no copy was ever written");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pass.abort();
    let _ = pass.await;
    let written: usize = {
        let mut n = 0;
        for m in EDITORS.iter().chain(&READERS) {
            n += folders.member(m).await.items().await.unwrap().len();
        }
        n
    };
    assert!(written < 4 * 120, "the kill came too late to interrupt anything ({written} copies)");

    // Edits made while the service is down.
    let hub = folders.hub().await;
    let hub_names = unique_names(&hub).await;
    let edited = &hub_names[0];
    let item = find(&hub, edited).await.unwrap();
    hub.update(&item.id, |i| i.set(field::JOB_TITLE, "Edited while down")).await.unwrap();

    // Restart on the same state database.
    let second = service(&config, store(dir.path()).await).await;
    let report = second.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_converged_without_duplicates(&folders, 120).await;
    for m in EDITORS.iter().chain(&READERS) {
        let f = folders.member(m).await;
        assert_eq!(field_of(&f, edited, field::JOB_TITLE).await.as_deref(), Some("Edited while down"), "{m}");
    }

    // An editor's edit after the restart flows as usual.
    let a = find(&alice, &hub_names[1]).await.unwrap();
    alice.update(&a.id, |i| i.set(field::PHONE_MOBILE, "+1 555 0123")).await.unwrap();
    assert!(second.run_once(RunOptions::default()).await.unwrap().is_clean());
    assert_eq!(field_of(&hub, &hub_names[1], field::PHONE_MOBILE).await.as_deref(), Some("+1 555 0123"));
    let plan = second.plan(RunOptions::default()).await.unwrap();
    let t = plan.groups[0].totals();
    assert_eq!(t.created + t.updated + t.deleted, 0, "{plan:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_public_folder_wipes_no_member() {
    let emu = emulator(30).await;
    let config = config(&emu, group());
    let service = service(&config, Arc::new(MemoryStore::new())).await;
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());

    // The service account loses its rights on the public folder.
    let store = emu.store();
    let index = store.public_index();
    store
        .write(index, |mailbox| {
            let folder = mailbox.folder_by_path("Company Contacts").unwrap();
            mailbox.grant(folder, ADMIN, Permission::None);
        })
        .unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let group = &report.groups[0];
    assert!(matches!(group.outcome, PassOutcome::Failed | PassOutcome::StoppedByMassDeleteGuard), "{group:#?}");
    assert_eq!(group.totals().deleted, 0);
    let folders = Folders::new(&config).await;
    for m in EDITORS.iter().chain(&READERS) {
        assert_eq!(folders.member(m).await.items().await.unwrap().len(), 30, "{m} was wiped");
    }
}
