//! The running service against the EWS emulator: changes flow on notifications without any call,
//! distribution group members join and leave, and readers receive filtered, modified copies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use exchange_sync::config::{GroupConfig, LeavePolicy, MemberConfig, MemberSource, TargetFolder};
use exchange_sync::{Condition, EwsFolders, FolderProvider, Modification, RunOptions, SyncService};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Connector, Direction, Item, ItemKind, field};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_follows_notifications() {
    let emu = emulator(5).await;
    let config = config(&emu, group());
    let service = service(&config, Arc::new(MemoryStore::new())).await;
    let folders = Folders::new(&config).await;
    let hub = folders.hub().await;
    let carol = folders.member(READERS[0]).await;
    let alice = folders.member(EDITORS[0]).await;
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    wait_for(&mut events, || async { names(&carol).await.len() == 5 }).await;

    // An editor creates a contact on a phone: it joins the group and reaches everyone.
    let new = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, "Zoe")
        .with(field::SURNAME, "Quickstart")
        .with(field::DISPLAY_NAME, "Zoe Quickstart")
        .with(field::EMAIL1, "zoe@fabrikam.test");
    alice.create(&new).await.unwrap();
    wait_for(&mut events, || async {
        find(&hub, "Zoe Quickstart").await.is_some() && find(&carol, "Zoe Quickstart").await.is_some()
    })
    .await;

    // The public folder changes: every member follows.
    let z = find(&hub, "Zoe Quickstart").await.unwrap();
    hub.update(&z.id, |i| i.set(field::COMPANY, "Fabrikam")).await.unwrap();
    wait_for(&mut events, || async {
        let mut all = true;
        for m in EDITORS.iter().chain(&READERS) {
            all &= field_of(&folders.member(m).await, "Zoe Quickstart", field::COMPANY).await.as_deref()
                == Some("Fabrikam");
        }
        all
    })
    .await;

    service.shutdown();
    running.await.unwrap().unwrap();
}

/// The EWS folders, with distribution group membership a test can change.
struct ChangingMembership {
    ews: EwsFolders,
    sales: Mutex<Vec<String>>,
}

#[async_trait]
impl FolderProvider for ChangingMembership {
    async fn hub(&self, group: &GroupConfig) -> exchange_sync::Result<Arc<dyn Connector>> {
        self.ews.hub(group).await
    }

    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        self.ews.member(group, member, target).await
    }

    async fn expand_distribution_group(
        &self,
        _group: &GroupConfig,
        _address: &str,
    ) -> exchange_sync::Result<Vec<String>> {
        Ok(self.sales.lock().unwrap().clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_group_members_are_expanded_over_ews_and_leavers_cleaned_up() {
    let emu = emulator(8).await;
    let mut group =
        GroupConfig::new(GROUP, "lab", exchange_sync::config::HubFolder::PublicFolder("Company Contacts".into()));
    group.default_target = target();
    group.members.push(MemberConfig::two_way(EDITORS[0]));
    group.member_sources.push(MemberSource::new("sales@contoso.test", Direction::one_way()));
    group.on_leave = LeavePolicy::Remove;
    let config = config(&emu, group.clone());

    // The emulator's sales@contoso.test holds alice and bob: bob joins as a reader (alice is
    // listed as an editor already, and listed members win).
    let ews = EwsFolders::connect(&config).await.unwrap();
    let expanded = ews.expand_distribution_group(&group, "sales@contoso.test").await.unwrap();
    assert_eq!(expanded, ["alice@contoso.test", "bob@contoso.test"]);

    let provider = Arc::new(ChangingMembership { ews, sales: Mutex::new(expanded) });
    let service = SyncService::new(config.clone(), provider.clone(), Arc::new(MemoryStore::new())).unwrap();
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    let folders = Folders::new(&config).await;
    let bob = folders.member("bob@contoso.test").await;
    assert_eq!(bob.items().await.unwrap().len(), 8);
    let own = Item::new(ItemKind::Contact).with(field::DISPLAY_NAME, "Bob's dentist");
    bob.create(&own).await.unwrap();

    // Bob leaves sales, dave joins.
    *provider.sales.lock().unwrap() = vec!["alice@contoso.test".into(), "dave@contoso.test".into()];
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(names(&bob).await, ["Bob's dentist"], "the group's copies go, bob's own contact stays");
    assert_eq!(folders.member("dave@contoso.test").await.items().await.unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_receive_filtered_modified_copies_over_ews() {
    let emu = emulator(6).await;
    let mut group = group();
    // carol receives only contacts with a mobile number (and never their home address); dave
    // receives everything without notes.
    group.members[2] = MemberConfig::one_way(READERS[0])
        .with_filter(Condition::exists(field::PHONE_MOBILE))
        .with_modification(Modification::clear("address.home.city"));
    group.members[3] = MemberConfig::one_way(READERS[1]).with_modification(Modification::ClearBody);
    let config = config(&emu, group);
    let service = service(&config, Arc::new(MemoryStore::new())).await;
    let folders = Folders::new(&config).await;
    let hub = folders.hub().await;
    // Two contacts to move across the filter: one with a mobile number, one without.
    let hub_unique = unique_names(&hub).await;
    let (with, without) = (hub_unique[0].clone(), hub_unique[1].clone());
    let item = find(&hub, &with).await.unwrap();
    hub.update(&item.id, |i| i.set(field::PHONE_MOBILE, "+1 555 0041")).await.unwrap();
    let item = find(&hub, &without).await.unwrap();
    hub.update(&item.id, |i| {
        i.fields.remove(field::PHONE_MOBILE);
    })
    .await
    .unwrap();
    let hub_items = hub.items().await.unwrap();
    let with_mobile: Vec<String> = {
        let mut v: Vec<String> = hub_items
            .iter()
            .filter(|i| i.item.get(field::PHONE_MOBILE).is_some())
            .filter_map(|i| label(&i.item))
            .collect();
        v.sort();
        v
    };
    assert!(with_mobile.contains(&with) && !with_mobile.contains(&without));

    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    let carol = folders.member(READERS[0]).await;
    let dave = folders.member(READERS[1]).await;
    assert_eq!(names(&carol).await, with_mobile);
    assert!(carol.items().await.unwrap().iter().all(|i| i.item.get("address.home.city").is_none()));
    assert_eq!(dave.items().await.unwrap().len(), 6);
    assert!(dave.items().await.unwrap().iter().all(|i| i.item.body.is_none()));

    // Giving a contact a mobile number delivers it to carol; taking it away removes it.
    assert!(find(&carol, &with).await.is_some() && find(&carol, &without).await.is_none());
    let item = find(&hub, &without).await.unwrap();
    hub.update(&item.id, |i| i.set(field::PHONE_MOBILE, "+1 555 0042")).await.unwrap();
    let item = find(&hub, &with).await.unwrap();
    hub.update(&item.id, |i| {
        i.fields.remove(field::PHONE_MOBILE);
    })
    .await
    .unwrap();
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    assert!(find(&carol, &without).await.is_some(), "{without} now matches");
    assert!(find(&carol, &with).await.is_none(), "{with} no longer matches");
    // Stable: nothing more to write.
    let plan = service.plan(RunOptions::default()).await.unwrap();
    let t = plan.groups[0].totals();
    assert_eq!(t.created + t.updated + t.deleted, 0, "{}", plan.groups[0].plan.clone().unwrap_or_default());
}
