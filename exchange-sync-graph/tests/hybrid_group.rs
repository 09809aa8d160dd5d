//! A hybrid group, synced by the core engine: the hub is an on-premises public folder over EWS
//! (the EWS emulator), the members are Exchange Online mailboxes over Graph (the Graph emulator).
//! Copies reach the members and their edits reach the hub; the two connectors hash the same
//! content the same (the next plan is empty); a pass killed while it creates leaves no duplicate
//! after the restart (recovery by the origin stamp both connectors share); the users' own
//! contacts in the member folders are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ews_emulator::{EmulatorConfig, RunningEmulator};
use exchange_sync_core::engine::GroupSync;
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, Direction, Member, MemberId, StateStore, SyncGroup, TwoWayPolicy, field};
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, EwsClient, EwsFolderConnector, FolderRef, FolderShape, Routing,
};
use exchange_sync_graph::{ConnectorOptions, GraphContactsConnector};
use graph_emulator::{GraphEmulatorConfig, RunningGraphEmulator};
use serde_json::json;

const HUB_CONTACTS: usize = 20;
const FOLDER: &str = "Company Contacts";

struct Hybrid {
    ews: RunningEmulator,
    graph: RunningGraphEmulator,
    hub: Arc<EwsFolderConnector>,
    alice: Arc<GraphContactsConnector>,
    bob: Arc<GraphContactsConnector>,
    store: Arc<dyn StateStore>,
    /// alice's own contacts (id, change key), made before the group existed.
    own: Vec<(String, String)>,
}

async fn hybrid(graph_latency: Duration) -> Hybrid {
    let ews = ews_emulator::Emulator::start(EmulatorConfig {
        contacts: HUB_CONTACTS,
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
    let hub = EwsFolderConnector::public_folder(public, FolderRef::Id(hub_folder.id), "Public/Company Contacts");

    let graph = common::emulator(GraphEmulatorConfig { latency: graph_latency, ..Default::default() }).await;
    let client = common::client(&graph);
    let options = ConnectorOptions { page_size: 7, delta_page_size: 7, ..Default::default() };
    let (alice_box, bob_box) = (graph.config().address("alice"), graph.config().address("bob"));
    let alice = GraphContactsConnector::open(client.clone(), &alice_box, FOLDER, true)
        .await
        .unwrap()
        .with_options(options.clone());
    let bob = GraphContactsConnector::open(client, &bob_box, FOLDER, true).await.unwrap().with_options(options);
    // alice's own contacts, in the folder the group writes to: hers, never the group's.
    let folder_id = alice.folder_id().unwrap();
    let mut own = Vec::new();
    for name in ["Mum", "Plumber"] {
        let c = graph.store().create_contact(&alice_box, Some(&folder_id), &json!({"givenName": name})).unwrap();
        own.push((c["id"].as_str().unwrap().to_owned(), c["changeKey"].as_str().unwrap().to_owned()));
    }
    Hybrid {
        ews,
        graph,
        hub: Arc::new(hub),
        alice: Arc::new(alice),
        bob: Arc::new(bob),
        store: Arc::new(MemoryStore::new()),
        own,
    }
}

impl Hybrid {
    /// A runner over the same state store: a new one is what a restarted service builds.
    fn engine(&self) -> GroupSync {
        // alice edits (her own new contacts stay hers), bob only reads.
        let alice = Direction::TwoWay(TwoWayPolicy { adopt_new_items: false, propagate_deletes: true });
        let group = SyncGroup::new("company", "hub")
            .with_member(Member::new("alice", alice))
            .with_member(Member::new("bob", Direction::one_way()));
        let connectors: BTreeMap<MemberId, Arc<dyn Connector>> = [
            (MemberId::new("hub"), Arc::clone(&self.hub) as Arc<dyn Connector>),
            (MemberId::new("alice"), Arc::clone(&self.alice) as Arc<dyn Connector>),
            (MemberId::new("bob"), Arc::clone(&self.bob) as Arc<dyn Connector>),
        ]
        .into();
        GroupSync::new(group, Arc::clone(&self.store), connectors).unwrap()
    }

    /// Passes until one writes nothing (at most five).
    async fn settle(&self) {
        let engine = self.engine();
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
    }

    /// Every copy in a Graph member's folder: origin stamps (entity ids) and how often each occurs.
    async fn stamps(&self, c: &GraphContactsConnector) -> BTreeMap<String, usize> {
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
        for f in c.get(&ids).await.unwrap() {
            let f = f.unwrap();
            if let Some(o) = f.origin {
                *count.entry(o.entity.to_string()).or_insert(0) += 1;
            }
        }
        count
    }

    fn own_untouched(&self) {
        let alice_box = self.graph.config().address("alice");
        let folder_id = self.alice.folder_id().unwrap();
        let now: BTreeMap<String, String> = self
            .graph
            .store()
            .folder_contacts(&alice_box, &folder_id)
            .into_iter()
            .map(|c| (c.id, c.change_key))
            .collect();
        for (id, key) in &self.own {
            assert_eq!(now.get(id), Some(key), "alice's own contact {id} was changed or removed");
        }
    }
}

#[tokio::test]
async fn an_ews_public_folder_hub_and_graph_members_sync_both_ways() {
    let h = hybrid(Duration::ZERO).await;
    h.settle().await;
    let (alice, bob) = (h.stamps(&h.alice).await, h.stamps(&h.bob).await);
    assert_eq!(alice.len(), HUB_CONTACTS, "alice: {alice:?}");
    assert_eq!(bob.len(), HUB_CONTACTS, "bob: {bob:?}");
    assert!(alice.values().chain(bob.values()).all(|n| *n == 1), "duplicates: {alice:?} {bob:?}");
    h.own_untouched();

    // alice edits a copy on her phone (through Graph): the edit reaches the hub over EWS and bob.
    let alice_box = h.graph.config().address("alice");
    let folder_id = h.alice.folder_id().unwrap();
    let own_ids: BTreeSet<&String> = h.own.iter().map(|(id, _)| id).collect();
    let copy =
        h.graph.store().folder_contacts(&alice_box, &folder_id).into_iter().find(|c| !own_ids.contains(&c.id)).unwrap();
    h.graph.store().edit_contact(&alice_box, &copy.id, "jobTitle", json!("Head of Sales")).unwrap();
    h.settle().await;
    let hub_items = h.hub.list(None).await.unwrap().items;
    let hub_ids: Vec<_> = hub_items.into_iter().map(|v| v.id).collect();
    let titles: Vec<String> = h
        .hub
        .get(&hub_ids)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|f| f.unwrap().item.text(field::JOB_TITLE).map(str::to_owned))
        .collect();
    assert!(titles.iter().any(|t| t == "Head of Sales"), "the edit did not reach the hub: {titles:?}");
    h.own_untouched();
    let _ = &h.ews;
}

#[tokio::test]
async fn a_pass_killed_while_creating_leaves_no_duplicates_after_the_restart() {
    let h = hybrid(Duration::from_millis(15)).await;
    let alice_box = h.graph.config().address("alice");
    let folder_id = h.alice.folder_id().unwrap();
    let engine = h.engine();
    let run = tokio::spawn(async move { engine.run().await });
    // Kill the pass once some, not all, copies have reached alice.
    let mut copies = 0;
    for _ in 0..2000 {
        copies = h.graph.store().folder_contacts(&alice_box, &folder_id).len() - h.own.len();
        if copies > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    run.abort();
    let _ = run.await;
    assert!(copies > 0 && copies < HUB_CONTACTS, "the kill should land while copies are created ({copies})");

    h.settle().await;
    for (member, c) in [("alice", &h.alice), ("bob", &h.bob)] {
        let stamps = h.stamps(c).await;
        assert_eq!(stamps.len(), HUB_CONTACTS, "{member}: {stamps:?}");
        let doubled: Vec<_> = stamps.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "{member} holds duplicates after the restart: {doubled:?}");
    }
    h.own_untouched();
}
