//! Members removed from the configuration while the service was stopped: at the next start the
//! group's leave policy applies to them (their copies removed, or kept and forgotten), nothing
//! else is touched, and no item the group did not create is ever deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use exchange_sync::RunOptions;
use exchange_sync::config::{GroupConfig, LeavePolicy};
use exchange_sync_core::{GroupId, Item, ItemKind, MemberId, field};

const CONTACTS: usize = 5;

fn own_contact(given: &str) -> Item {
    Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, given)
        .with(field::SURNAME, "Own")
        .with(field::EMAIL1, format!("{}@private.test", given.to_lowercase()).as_str())
}

fn without(mut group: GroupConfig, mailbox: &str, policy: LeavePolicy) -> GroupConfig {
    group.members.retain(|m| m.mailbox != mailbox);
    group.on_leave = policy;
    group
}

async fn known_members(store: &std::sync::Arc<dyn exchange_sync_core::StateStore>) -> Vec<MemberId> {
    store.members(&GroupId::new(GROUP)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_stopped_loses_the_groups_copies_and_keeps_its_own() {
    let emu = emulator(CONTACTS).await;
    let dir = tempfile::tempdir().unwrap();
    let first = config(&emu, group());
    let folders = Folders::new(&first).await;
    let alice = folders.member(EDITORS[0]).await;
    // Carol (a reader) has a contact of her own: never touched.
    let carol = folders.member(READERS[0]).await;
    carol.create(&own_contact("Private")).await.unwrap();

    let running = service(&first, store(dir.path()).await).await;
    running.run_once(RunOptions::default()).await.unwrap();
    // Alice (an editor) creates a contact of her own: it joins the group (adopted, not created).
    alice.create(&own_contact("Adopted")).await.unwrap();
    let report = running.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    let hub_before = names(&folders.hub().await).await;
    assert_eq!(hub_before.len(), CONTACTS + 1, "alice's contact joined the group");
    assert_eq!(names(&alice).await, hub_before);
    let others_before: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for m in [EDITORS[1], READERS[0], READERS[1]] {
            v.push(names(&folders.member(m).await).await);
        }
        v
    };
    drop(running);

    // Alice is removed from the configuration while the service is stopped.
    let second = config(&emu, without(group(), EDITORS[0], LeavePolicy::Remove));
    let state = store(dir.path()).await;
    assert!(known_members(&state).await.contains(&MemberId::new(EDITORS[0])));
    let restarted = service(&second, state.clone()).await;
    // The dry run shows the departure, and writes nothing.
    let plan = restarted.plan(RunOptions::default()).await.unwrap();
    let text = plan.groups[0].plan.clone().unwrap_or_default();
    assert!(text.contains(&format!("leave {}: delete the {CONTACTS} copies the group created", EDITORS[0])), "{text}");
    assert_eq!(plan.groups[0].members.iter().find(|m| m.member == EDITORS[0]).map(|m| m.deleted), Some(CONTACTS));
    assert_eq!(names(&alice).await, hub_before);
    let report = restarted.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    // Only the copies the group created are gone; her own (adopted) contact stays.
    assert_eq!(names(&alice).await, vec!["Adopted Own".to_owned()]);
    assert!(!known_members(&state).await.contains(&MemberId::new(EDITORS[0])), "alice is forgotten");
    // Nothing else changed: the hub and the other members hold what they held.
    assert_eq!(names(&folders.hub().await).await, hub_before);
    for (m, before) in [EDITORS[1], READERS[0], READERS[1]].iter().zip(&others_before) {
        assert_eq!(&names(&folders.member(m).await).await, before, "{m}");
    }
    assert!(names(&carol).await.contains(&"Private Own".to_owned()));

    // A further start has nothing left to do for her.
    let report = restarted.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean() && report.groups.iter().all(|g| g.members.iter().all(|m| !m.wrote_anything())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_stopped_under_keep_keeps_the_copies_and_is_forgotten() {
    let emu = emulator(CONTACTS).await;
    let dir = tempfile::tempdir().unwrap();
    let first = config(&emu, group());
    let folders = Folders::new(&first).await;
    let running = service(&first, store(dir.path()).await).await;
    running.run_once(RunOptions::default()).await.unwrap();
    let hub = folders.hub().await;
    let carol = folders.member(READERS[0]).await;
    let copies = names(&carol).await;
    assert_eq!(copies.len(), CONTACTS);
    drop(running);

    let second = config(&emu, without(group(), READERS[0], LeavePolicy::Keep));
    let state = store(dir.path()).await;
    let restarted = service(&second, state.clone()).await;
    let plan = restarted.plan(RunOptions::default()).await.unwrap();
    let text = plan.groups[0].plan.clone().unwrap_or_default();
    assert!(text.contains(&format!("leave {}: keep its copies, forget them", READERS[0])), "{text}");
    restarted.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(names(&carol).await, copies, "the copies stay, as carol's own");
    assert!(!known_members(&state).await.contains(&MemberId::new(READERS[0])), "carol is forgotten");

    // Forgotten: an edit on the hub no longer reaches her, and still reaches the others.
    let first_name = names(&hub).await[0].clone();
    let item = find(&hub, &first_name).await.unwrap();
    hub.update(&item.id, |i| i.set(field::COMPANY, "Forgotten Ltd")).await.unwrap();
    restarted.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(
        field_of(&folders.member(READERS[1]).await, &first_name, field::COMPANY).await.as_deref(),
        Some("Forgotten Ltd")
    );
    assert_ne!(field_of(&carol, &first_name, field::COMPANY).await.as_deref(), Some("Forgotten Ltd"));
}
