//! A hybrid calendar group, synced by the core engine: the hub is the on-premises public folder
//! `Company Calendar` over EWS (the EWS emulator: single events, an all-day offsite and a weekly
//! series with a cancelled occurrence), the members are Exchange Online calendars over Graph.
//! The copies reach the members with the series' cancelled occurrence; the EWS and Graph
//! connectors hash the same content the same (the next plan is empty); a two-way member moving
//! an occurrence of her copy moves it on the hub and in the other member's copy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use ews_emulator::EmulatorConfig;
use exchange_sync_core::engine::GroupSync;
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, Direction, Member, MemberId, StateStore, SyncGroup, TwoWayPolicy, field};
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, EwsClient, EwsFolderConnector, FolderRef, FolderShape, Routing,
};
use exchange_sync_graph::GraphCalendarConnector;
use graph_emulator::GraphEmulatorConfig;
use graph_emulator::calendar::{self, EventShape};
use serde_json::json;

const FOLDER: &str = "Company Calendar";

#[tokio::test]
async fn an_ews_public_calendar_hub_and_graph_members_agree_on_series() {
    let ews = ews_emulator::Emulator::start(EmulatorConfig {
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        ..Default::default()
    })
    .await
    .unwrap();
    let public = EwsClient::builder(ews.url())
        .credentials(Credentials::basic("sync-admin@contoso.test", "exchange-sync"))
        .build()
        .unwrap()
        .with_routing(Routing {
            public_folder_mailbox: Some("publicfolders@contoso.test".into()),
            ..Default::default()
        });
    let root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
    let folders = public.find_folders(&root, &FolderShape::default(), Traversal::Shallow).await.unwrap();
    let hub_folder = folders.into_iter().find(|f| f.display_name.as_deref() == Some(FOLDER)).unwrap();
    let hub =
        Arc::new(EwsFolderConnector::public_folder(public, FolderRef::Id(hub_folder.id), "Public/Company Calendar"));

    let graph = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&graph);
    let (alice_box, bob_box) = (graph.config().address("alice"), graph.config().address("bob"));
    let alice = Arc::new(GraphCalendarConnector::open(client.clone(), &alice_box, FOLDER, true).await.unwrap());
    let bob = Arc::new(GraphCalendarConnector::open(client, &bob_box, FOLDER, true).await.unwrap());
    // alice's own appointment in the calendar the group writes to: hers, never the group's.
    let own = calendar::create_event(
        &mut graph.store(),
        &alice_box,
        alice.folder_id().as_deref(),
        &json!({"subject": "Dentist", "start": {"dateTime": "2026-03-03T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-03-03T11:00:00", "timeZone": "UTC"}}),
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
    let settle = || async {
        let engine = engine();
        for _ in 0..5 {
            let report = engine.run().await.unwrap();
            assert!(report.is_clean(), "{report:#?}");
            if report.written() == 0 {
                let next = engine.dry_run().await.unwrap();
                assert!(next.is_empty(), "EWS and Graph copies do not hash alike; the next plan is:\n{next}");
                return;
            }
        }
        panic!("the group did not settle in five passes");
    };
    settle().await;

    // The same events read over EWS and over Graph carry the same values: every field the EWS
    // side reads (the emulator's seeded hub events hold no sensitivity, reminder, free/busy or
    // time zone, which Exchange and Graph always have), the body and the categories.
    let hub_ids: Vec<_> = hub.list(None).await.unwrap().items.into_iter().map(|v| v.id).collect();
    let hub_items: Vec<_> = hub.get(&hub_ids).await.unwrap().into_iter().map(|r| r.unwrap().item).collect();
    let alice_ids: Vec<_> = alice.list(None).await.unwrap().items.into_iter().map(|v| v.id).collect();
    let alice_items: Vec<_> = alice.get(&alice_ids).await.unwrap().into_iter().map(|r| r.unwrap().item).collect();
    for h in &hub_items {
        let copy = alice_items.iter().find(|a| a.text(field::SUBJECT) == h.text(field::SUBJECT)).expect("a copy");
        for (name, value) in h.fields.iter().filter(|(n, _)| !n.starts_with("server.")) {
            assert_eq!(copy.get(name), Some(value), "{name} over EWS and over Graph");
        }
        assert_eq!(copy.body.as_ref().map(|b| b.normalized()), h.body.as_ref().map(|b| b.normalized()));
        assert_eq!(copy.categories, h.categories);
    }

    // Every hub event is in both members' calendars, the series with its cancelled occurrence.
    for (who, mailbox, c) in [("alice", &alice_box, &alice), ("bob", &bob_box, &bob)] {
        let events = calendar::events_in(&mut graph.store(), mailbox, FOLDER);
        let copies = events.iter().filter(|e| e.properties.get("subject") != Some(&json!("Dentist"))).count();
        assert_eq!(copies, 3, "{who}: {copies} copies");
        let ids: Vec<_> = c.list(None).await.unwrap().items.into_iter().map(|v| v.id).collect();
        let items: Vec<_> = c.get(&ids).await.unwrap().into_iter().map(|r| r.unwrap().item).collect();
        let series = items.iter().find(|i| i.get(field::RECURRENCE).is_some()).expect("the series");
        assert_eq!(series.text("recurrence.exception.2026-04-06T09:00:00Z"), Some("cancelled"), "{who}");
    }

    // alice moves the all-hands of 12 January to the afternoon in her copy (Outlook on the web).
    let master =
        calendar::events_in(&mut graph.store(), &alice_box, FOLDER).into_iter().find(|e| e.is_master()).unwrap();
    let occurrence = format!("{}_OC20260112T090000Z", master.id);
    calendar::update_event(
        &mut graph.store(),
        &alice_box,
        None,
        &occurrence,
        None,
        &json!({"start": {"dateTime": "2026-01-12T14:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-01-12T14:30:00", "timeZone": "UTC"}}),
    )
    .unwrap();
    settle().await;
    let moved = r#"{"start":"2026-01-12T14:00:00Z","end":"2026-01-12T14:30:00Z"}"#;
    let hub_ids: Vec<_> = hub.list(None).await.unwrap().items.into_iter().map(|v| v.id).collect();
    let hub_series = hub
        .get(&hub_ids)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().item)
        .find(|i| i.get(field::RECURRENCE).is_some())
        .unwrap();
    assert_eq!(hub_series.text("recurrence.exception.2026-01-12T09:00:00Z"), Some(moved), "the hub's series");
    let bob_master =
        calendar::events_in(&mut graph.store(), &bob_box, FOLDER).into_iter().find(|e| e.is_master()).unwrap();
    let q: BTreeMap<String, String> = [
        ("startDateTime".to_owned(), "2026-01-12T00:00:00Z".to_owned()),
        ("endDateTime".to_owned(), "2026-01-13T00:00:00Z".to_owned()),
    ]
    .into();
    let bobs =
        calendar::instances(&mut graph.store(), &bob_box, None, &bob_master.id, &q, &EventShape::default()).unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["start"]["dateTime"], "2026-01-12T14:00:00.0000000", "bob's copy follows");
    // alice's own appointment is untouched.
    let now =
        calendar::get_event(&mut graph.store(), &alice_box, None, own["id"].as_str().unwrap(), &EventShape::default())
            .unwrap();
    assert_eq!(now["changeKey"], own["changeKey"]);
}
