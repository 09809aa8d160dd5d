//! Data safety of Graph calendar members, synced by the core engine against the Graph emulator:
//! a pass killed while it creates copies (single events and series) leaves no duplicate after the
//! restart (recovery by the origin stamp), the users' own appointments in the target calendar
//! are never touched, and a quiet pass afterwards costs one listing request per calendar.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use exchange_sync_core::engine::GroupSync;
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, Direction, Member, MemberId, StateStore, SyncGroup, TwoWayPolicy};
use exchange_sync_graph::GraphCalendarConnector;
use graph_emulator::GraphEmulatorConfig;
use graph_emulator::calendar;
use serde_json::json;

const EVENTS: usize = 30;
const FOLDER: &str = "Company Calendar";

async fn all_stamps(c: &GraphCalendarConnector) -> BTreeMap<String, usize> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = c.list(cursor.as_ref()).await.unwrap();
        ids.extend(page.items.into_iter().map(|v| v.id));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut count = BTreeMap::new();
    for chunk in ids.chunks(20) {
        for f in c.get(chunk).await.unwrap() {
            if let Some(o) = f.unwrap().origin {
                *count.entry(o.entity.to_string()).or_insert(0) += 1;
            }
        }
    }
    count
}

#[tokio::test]
async fn a_pass_killed_while_creating_events_leaves_no_duplicates_and_users_events_alone() {
    let emu = common::emulator(GraphEmulatorConfig { latency: Duration::from_millis(15), ..Default::default() }).await;
    let client = common::client(&emu);
    let hub_box = emu.config().address("contacts");
    let (alice_box, bob_box) = (emu.config().address("alice"), emu.config().address("bob"));
    let hub = Arc::new(GraphCalendarConnector::open(client.clone(), &hub_box, FOLDER, true).await.unwrap());
    for n in 0..EVENTS {
        let day = n % 27 + 1;
        let mut event = json!({
            "subject": format!("Event {n}"),
            "start": {"dateTime": format!("2026-05-{day:02}T09:00:00"), "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": format!("2026-05-{day:02}T10:00:00"), "timeZone": "W. Europe Standard Time"},
        });
        if n % 3 == 0 {
            event["recurrence"] = json!({"pattern": {"type": "daily", "interval": 7},
                "range": {"type": "numbered", "startDate": format!("2026-05-{day:02}"), "numberOfOccurrences": 6}});
        }
        calendar::create_event(&mut emu.store(), &hub_box, hub.folder_id().as_deref(), &event).unwrap();
    }
    let alice = Arc::new(GraphCalendarConnector::open(client.clone(), &alice_box, FOLDER, true).await.unwrap());
    let bob = Arc::new(GraphCalendarConnector::open(client, &bob_box, FOLDER, true).await.unwrap());
    let own = calendar::create_event(
        &mut emu.store(),
        &alice_box,
        alice.folder_id().as_deref(),
        &json!({"subject": "Dentist", "start": {"dateTime": "2026-05-04T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-05-04T11:00:00", "timeZone": "UTC"}}),
    )
    .unwrap();

    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let engine = || {
        let two_way = Direction::TwoWay(TwoWayPolicy { adopt_new_items: false, propagate_deletes: true });
        let group = SyncGroup::new("calendar", "hub")
            .with_member(Member::new("alice", two_way))
            .with_member(Member::new("bob", Direction::one_way()));
        let connectors: BTreeMap<MemberId, Arc<dyn Connector>> = [
            (MemberId::new("hub"), Arc::clone(&hub) as Arc<dyn Connector>),
            (MemberId::new("alice"), Arc::clone(&alice) as Arc<dyn Connector>),
            (MemberId::new("bob"), Arc::clone(&bob) as Arc<dyn Connector>),
        ]
        .into();
        GroupSync::new(group, Arc::clone(&store), connectors).unwrap()
    };
    let copies = |mailbox: &str| calendar::events_in(&mut emu.store(), mailbox, FOLDER).len();

    // Kill the pass once some, not all, copies have reached alice.
    let first = engine();
    let run = tokio::spawn(async move { first.run().await });
    let mut made = 0;
    for _ in 0..5000 {
        made = copies(&alice_box) - 1;
        if made > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    run.abort();
    let _ = run.await;
    assert!(made > 0 && made < EVENTS, "the kill should land while copies are created ({made})");

    // The restarted engine (same state) settles without duplicates.
    let engine = engine();
    let mut settled = false;
    for _ in 0..5 {
        let report = engine.run().await.unwrap();
        assert!(report.is_clean(), "{report:#?}");
        if report.written() == 0 {
            settled = true;
            break;
        }
    }
    assert!(settled, "the group did not settle in five passes");
    // A quiet poll lists each calendar once (30 events: one page each) and reads nothing.
    let before = emu.requests();
    let report = engine.run().await.unwrap();
    assert_eq!(report.written(), 0);
    assert_eq!(emu.requests() - before, 3, "one listing per calendar");
    for (who, c) in [("alice", &alice), ("bob", &bob)] {
        let stamps = all_stamps(c).await;
        assert_eq!(stamps.len(), EVENTS, "{who}: {stamps:?}");
        let doubled: Vec<_> = stamps.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "{who} holds duplicates after the restart: {doubled:?}");
    }
    assert_eq!(copies(&alice_box), EVENTS + 1, "alice: the copies and her own appointment");
    let now = calendar::get_event(
        &mut emu.store(),
        &alice_box,
        None,
        own["id"].as_str().unwrap(),
        &calendar::EventShape::default(),
    )
    .unwrap();
    assert_eq!(now["changeKey"], own["changeKey"], "alice's own appointment was changed");
}
