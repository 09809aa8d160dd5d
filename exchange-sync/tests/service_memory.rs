//! The service over in-memory folders (the core's test kit): scheduling, membership, reports,
//! the mass-delete guard and shutdown, independent of any server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::memory_folders::{MemoryFolders, contact, display_names as names, groups_of_one_contact, id_of, text_of};
use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HubFolder, LeavePolicy, MemberConfig, MemberSource, StateLocation,
    TargetFolder,
};
use exchange_sync::{FolderProvider, PassOutcome, ProgressEvent, RunOptions, SyncService};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::testkit::MemoryConnector;
use exchange_sync_core::{Connector, Direction, Item, field};

fn config(group: GroupConfig) -> Config {
    let mut config = Config {
        connections: vec![Connection::new("lab", "http://127.0.0.1:1/EWS/Exchange.asmx", Auth::None)],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(20);
    config
}

fn group() -> GroupConfig {
    GroupConfig::new("contacts", "lab", HubFolder::PublicFolder("Company Contacts".into()))
        .with_member(MemberConfig::two_way("alice@contoso.test"))
        .with_member(MemberConfig::two_way("bob@contoso.test"))
        .with_member(MemberConfig::one_way("carol@contoso.test"))
}

fn service(folders: &Arc<MemoryFolders>, group: GroupConfig) -> SyncService {
    SyncService::new(config(group), folders.clone(), Arc::new(MemoryStore::new())).unwrap()
}

fn phone_of(folder: &MemoryConnector, name: &str) -> Option<String> {
    text_of(folder, name, field::PHONE_MOBILE)
}

#[tokio::test]
async fn run_once_delivers_merges_and_reverts() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    for name in ["Ann", "Ben", "Cem"] {
        hub.user_create(contact(name));
    }
    let service = service(&folders, group());

    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert_eq!(plan.groups[0].outcome, PassOutcome::Planned);
    assert_eq!(plan.groups[0].totals().created, 9, "{}", plan.groups[0].plan.as_deref().unwrap_or_default());
    assert!(folders.mailbox("alice@contoso.test").is_empty(), "a dry run writes nothing");

    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.groups[0].totals().created, 9);
    for m in ["alice@contoso.test", "bob@contoso.test", "carol@contoso.test"] {
        assert_eq!(names(&folders.mailbox(m)), ["Ann", "Ben", "Cem"], "{m}");
    }

    // An editor's edit reaches the hub and everyone; a reader's edit is put back.
    let alice = folders.mailbox("alice@contoso.test");
    alice.user_update(&id_of(&alice, "Ben"), |i| i.set(field::PHONE_MOBILE, "+1 555 0101"));
    let carol = folders.mailbox("carol@contoso.test");
    carol.user_update(&id_of(&carol, "Cem"), |i| i.set(field::PHONE_MOBILE, "+1 555 0666"));
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(phone_of(&hub, "Ben").as_deref(), Some("+1 555 0101"));
    assert_eq!(phone_of(&folders.mailbox("bob@contoso.test"), "Ben").as_deref(), Some("+1 555 0101"));
    assert_eq!(phone_of(&carol, "Ben").as_deref(), Some("+1 555 0101"));
    assert_eq!(phone_of(&carol, "Cem"), None, "the reader's edit is reverted");
    assert_eq!(phone_of(&hub, "Cem"), None);

    // Conflicting edits of two editors: merged, with a record in the conflict log.
    let bob = folders.mailbox("bob@contoso.test");
    alice.user_update(&id_of(&alice, "Ann"), |i| i.set(field::PHONE_MOBILE, "+1 555 0001"));
    bob.user_update(&id_of(&bob, "Ann"), |i| i.set(field::PHONE_MOBILE, "+1 555 0002"));
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(report.groups[0].conflicts.len(), 1, "{report:?}");
    let log = service.conflicts(None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].field, field::PHONE_MOBILE);
    let kept = log[0].winner.value.clone();
    assert_eq!(phone_of(&hub, "Ann"), kept);
    assert_eq!(phone_of(&alice, "Ann"), kept);
    assert_eq!(phone_of(&bob, "Ann"), kept);

    // Stability: nothing left to do.
    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert_eq!(plan.groups[0].totals().created + plan.groups[0].totals().updated, 0, "{plan:?}");

    let status = service.status().await.unwrap();
    assert!(status[0].members.iter().all(|m| m.initialized && m.copies == 3), "{status:?}");
}

#[tokio::test]
async fn the_mass_delete_guard_stops_the_group_until_confirmed() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    let ids: Vec<_> = (0..20).map(|i| hub.user_create(contact(&format!("P{i:02}")))).collect();
    let service = service(&folders, group());
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());

    for id in &ids {
        hub.user_delete(id);
    }
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(report.groups[0].outcome, PassOutcome::StoppedByMassDeleteGuard, "{report:?}");
    assert!(report.mass_delete_stopped());
    assert_eq!(folders.mailbox("carol@contoso.test").len(), 20, "no member is wiped");
    assert!(service.status().await.unwrap()[0].stopped_by_mass_delete_guard);

    let confirmed = RunOptions { allow_mass_delete: true, ..RunOptions::default() };
    let report = service.run_once(confirmed).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(folders.mailbox("carol@contoso.test").is_empty());
}

#[tokio::test]
async fn distribution_group_members_join_and_leave() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    hub.user_create(contact("Ben"));
    folders.set_distribution_group("sales@contoso.test", &["dave@contoso.test", "erin@contoso.test"]);
    let mut group = group();
    group.member_sources.push(MemberSource::new("sales@contoso.test", Direction::one_way()));
    group.on_leave = LeavePolicy::Remove;
    let service = service(&folders, group);
    let mut events = service.subscribe();

    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    let dave = folders.mailbox("dave@contoso.test");
    let erin = folders.mailbox("erin@contoso.test");
    assert_eq!(names(&dave), ["Ann", "Ben"]);
    assert_eq!(names(&erin), ["Ann", "Ben"]);
    dave.user_create(contact("Dave's own friend"));

    folders.set_distribution_group("sales@contoso.test", &["erin@contoso.test", "fay@contoso.test"]);
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(names(&dave), ["Dave's own friend"], "the group's copies go, the user's own item stays");
    assert_eq!(names(&folders.mailbox("fay@contoso.test")), ["Ann", "Ben"]);

    let mut joined = Vec::new();
    let mut left = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            ProgressEvent::MemberJoined { member, .. } => joined.push(member),
            ProgressEvent::MemberLeft { member, copies_removed, .. } => {
                assert!(copies_removed);
                left.push(member)
            }
            _ => {}
        }
    }
    assert_eq!(joined, ["fay@contoso.test"]);
    assert_eq!(left, ["dave@contoso.test"]);
}

/// Waits (bounded, to fail instead of hanging) until `check` holds after a finished pass.
async fn wait_until(events: &mut tokio::sync::broadcast::Receiver<ProgressEvent>, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("the change never arrived"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_follows_change_hints_and_shuts_down() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let service = service(&folders, group());
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });

    let carol = folders.mailbox("carol@contoso.test");
    wait_until(&mut events, || names(&carol) == ["Ann"]).await;

    // A change on an editor's side arrives as a hint and flows everywhere without any call.
    let alice = folders.mailbox("alice@contoso.test");
    alice.user_create(contact("Zoe"));
    wait_until(&mut events, || names(&carol) == ["Ann", "Zoe"] && names(&hub) == ["Ann", "Zoe"]).await;

    service.shutdown();
    running.await.unwrap().unwrap();
    let mut stopped = false;
    while let Ok(event) = events.try_recv() {
        stopped |= event == ProgressEvent::ServiceStopped;
    }
    assert!(stopped);
}

fn categorized(name: &str, category: &str) -> Item {
    let mut item = contact(name).with(field::PHONE_HOME, "+1 555 0199");
    item.categories.insert(category.into());
    item
}

#[tokio::test]
async fn filters_and_modifications_shape_what_a_reader_receives() {
    use exchange_sync::{Condition, Modification};
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    let public = hub.user_create(categorized("Ann", "Public"));
    let internal = hub.user_create(categorized("Ben", "Internal"));
    let mut group = group();
    group.members[2] = MemberConfig::one_way("carol@contoso.test")
        .with_filter(Condition::category("Public"))
        .with_modification(Modification::clear(field::PHONE_HOME));
    let service = service(&folders, group);

    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    let carol = folders.mailbox("carol@contoso.test");
    let alice = folders.mailbox("alice@contoso.test");
    assert_eq!(names(&carol), ["Ann"], "only matching items are delivered");
    assert_eq!(names(&alice), ["Ann", "Ben"], "editors see everything");
    let copy = carol.items().into_iter().next().unwrap();
    assert!(copy.item.get(field::PHONE_HOME).is_none(), "the modification applies");
    assert!(alice.items().iter().all(|i| i.item.get(field::PHONE_HOME).is_some()));

    // Stable: the modified copy counts as in sync.
    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert_eq!(plan.groups[0].totals().created + plan.groups[0].totals().updated, 0, "{plan:?}");

    // The reader's edit of a modified copy is reverted to the modified form.
    carol.user_update(&copy.id, |i| i.set(field::PHONE_HOME, "+1 555 0666"));
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    assert!(carol.items()[0].item.get(field::PHONE_HOME).is_none());

    // Items that stop matching are removed; items that start matching are delivered.
    hub.user_update(&public, |i| {
        i.categories.clear();
        i.categories.insert("Internal".into());
    });
    hub.user_update(&internal, |i| {
        i.categories.clear();
        i.categories.insert("Public".into());
    });
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(names(&carol), ["Ben"]);
    assert!(carol.items()[0].item.get(field::PHONE_HOME).is_none());
    assert_eq!(names(&alice), ["Ann", "Ben"]);
    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert!(plan.groups[0].totals().created + plan.groups[0].totals().updated + plan.groups[0].totals().deleted == 0);
}

#[tokio::test]
async fn retryable_failures_are_retried_with_backoff_and_reverts_are_counted() {
    use exchange_sync_core::ErrorKind;
    use exchange_sync_core::testkit::{Fault, FaultKind, Operation};
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let mut config = config(group());
    config.service.retry.initial_delay = Duration::from_millis(1);
    let service = SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new())).unwrap();
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());

    let carol = folders.mailbox("carol@contoso.test");
    carol.user_update(&id_of(&carol, "Ann"), |i| i.set(field::PHONE_MOBILE, "+1 555 0666"));
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Fail(ErrorKind::Transient)));
    let mut events = service.subscribe();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let group = &report.groups[0];
    assert_eq!(group.outcome, PassOutcome::Synced, "{group:?}");
    assert_eq!(group.attempts, 2);
    let carol_row = group.members.iter().find(|m| m.member == "carol@contoso.test").unwrap();
    assert_eq!((carol_row.updated, carol_row.reverted), (1, 1));
    let mut retried = false;
    while let Ok(event) = events.try_recv() {
        retried |= matches!(event, ProgressEvent::Retrying { attempt: 1, .. });
    }
    assert!(retried);

    // A permanent failure is reported, not retried.
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Fail(ErrorKind::Permanent)));
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(report.groups[0].outcome, PassOutcome::Failed);
    assert_eq!(report.groups[0].attempts, 1);
    assert_eq!(report.groups[0].errors[0].kind, "permanent");
}

/// A folder whose server sends no change hints: the service must poll it.
struct Unwatchable(MemoryConnector);

#[async_trait]
impl Connector for Unwatchable {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn capabilities(&self) -> exchange_sync_core::Capabilities {
        exchange_sync_core::Capabilities { watch: false, ..self.0.capabilities() }
    }
    async fn changes(
        &self,
        token: Option<&exchange_sync_core::SyncToken>,
    ) -> exchange_sync_core::Result<exchange_sync_core::ChangePage> {
        self.0.changes(token).await
    }
    async fn list(
        &self,
        cursor: Option<&exchange_sync_core::PageCursor>,
    ) -> exchange_sync_core::Result<exchange_sync_core::ListPage> {
        self.0.list(cursor).await
    }
    async fn get(
        &self,
        ids: &[exchange_sync_core::ItemId],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::FetchedItem>> {
        self.0.get(ids).await
    }
    async fn create(
        &self,
        items: &[exchange_sync_core::NewItem],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::ItemVersion>> {
        self.0.create(items).await
    }
    async fn update(
        &self,
        updates: &[exchange_sync_core::ItemUpdate],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::ItemVersion>> {
        self.0.update(updates).await
    }
    async fn delete(
        &self,
        items: &[exchange_sync_core::ItemDelete],
    ) -> exchange_sync_core::Result<exchange_sync_core::BatchResult<exchange_sync_core::Deleted>> {
        self.0.delete(items).await
    }
    async fn find_by_origin(
        &self,
        origins: &[exchange_sync_core::OriginStamp],
    ) -> exchange_sync_core::Result<Vec<exchange_sync_core::FetchedItem>> {
        self.0.find_by_origin(origins).await
    }
    async fn watch(
        &self,
    ) -> exchange_sync_core::Result<futures::stream::BoxStream<'static, exchange_sync_core::ChangeHint>> {
        Ok(Box::pin(futures::stream::pending()))
    }
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(20)
    }
}

/// Like [`MemoryFolders`], but the hub cannot be watched.
struct PolledHub(Arc<MemoryFolders>);

#[async_trait]
impl FolderProvider for PolledHub {
    async fn hub(&self, group: &GroupConfig) -> exchange_sync::Result<Arc<dyn Connector>> {
        Ok(Arc::new(Unwatchable(self.0.hub(&group.id))))
    }
    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> exchange_sync::Result<Arc<dyn Connector>> {
        FolderProvider::member(self.0.as_ref(), group, member, target).await
    }
    async fn expand_distribution_group(
        &self,
        group: &GroupConfig,
        address: &str,
    ) -> exchange_sync::Result<Vec<String>> {
        self.0.expand_distribution_group(group, address).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_without_hints_are_polled() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let mut config = config(group());
    config.service.poll_interval = Duration::from_millis(20);
    let service = SyncService::new(config, Arc::new(PolledHub(folders.clone())), Arc::new(MemoryStore::new())).unwrap();
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    let carol = folders.mailbox("carol@contoso.test");
    wait_until(&mut events, || names(&carol) == ["Ann"]).await;

    // Once polling runs (the echo of the initial writes is handled before any poll), a change on
    // the hub, which sends no hints, can only be found by a poll.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ProgressEvent::PassStarted { trigger: exchange_sync::Trigger::Poll, .. })) => break,
            Ok(_) => {}
            Err(_) => panic!("the hub is never polled"),
        }
    }
    hub.user_create(contact("Ben"));
    let mut triggers = Vec::new();
    while names(&carol) != ["Ann", "Ben"] {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ProgressEvent::PassStarted { trigger, .. })) => triggers.push(trigger),
            Ok(_) => {}
            Err(_) => panic!("the change never arrived"),
        }
    }
    assert!(triggers.iter().all(|t| *t == exchange_sync::Trigger::Poll), "{triggers:?}");
    service.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_leaver_keeps_the_copies_under_the_keep_policy() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    folders.set_distribution_group("sales@contoso.test", &["dave@contoso.test"]);
    let mut group = group();
    group.member_sources.push(MemberSource::new("sales@contoso.test", Direction::one_way()));
    group.on_leave = LeavePolicy::Keep;
    let service = service(&folders, group);
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    let dave = folders.mailbox("dave@contoso.test");
    assert_eq!(names(&dave), ["Ann"]);

    folders.set_distribution_group("sales@contoso.test", &[]);
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    assert_eq!(names(&dave), ["Ann"], "the copy stays, now the user's own");
    // The group forgot dave's folder: later changes no longer reach it.
    let ann = id_of(&hub, "Ann");
    hub.user_update(&ann, |i| i.set(field::PHONE_MOBILE, "+1 555 0100"));
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
    assert_eq!(phone_of(&dave, "Ann"), None);
    assert_eq!(phone_of(&folders.mailbox("carol@contoso.test"), "Ann").as_deref(), Some("+1 555 0100"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_a_stuck_pass_after_the_grace_period() {
    use exchange_sync_core::testkit::{Fault, FaultKind, Operation};
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    // The hub's first listing never answers (a server that hangs).
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Crash));
    let mut config = config(group());
    config.service.shutdown_grace = Duration::from_millis(50);
    let service = SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new())).unwrap();
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    loop {
        if let ProgressEvent::PassStarted { .. } = events.recv().await.unwrap() {
            break;
        }
    }
    service.shutdown();
    tokio::time::timeout(Duration::from_secs(30), running).await.expect("run() returns").unwrap().unwrap();
    assert!(folders.mailbox("carol@contoso.test").is_empty(), "the abandoned pass wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_is_retried_without_waiting_for_the_safety_resync() {
    use exchange_sync_core::ErrorKind;
    use exchange_sync_core::testkit::{Fault, FaultKind, Operation};
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Fail(ErrorKind::Permanent)));
    let mut config = config(group());
    config.service.retry.initial_delay = Duration::from_millis(1);
    config.service.retry.max_delay = Duration::from_millis(30);
    let service = SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new())).unwrap();
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    let carol = folders.mailbox("carol@contoso.test");
    let mut triggers = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while names(&carol) != ["Ann"] {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ProgressEvent::PassStarted { trigger, .. })) => triggers.push(trigger),
            Ok(_) => {}
            Err(_) => panic!("the failed start was never retried"),
        }
    }
    assert_eq!(triggers[..2], [exchange_sync::Trigger::Start, exchange_sync::Trigger::Retry]);
    service.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pass_reports_its_plan_then_its_writes_as_they_complete() {
    let folders = Arc::new(MemoryFolders::default());
    let hub = folders.hub("contacts");
    for n in 0..120 {
        hub.user_create(contact(&format!("P{n:03}")));
    }
    let service = service(&folders, group());
    let mut events = service.subscribe();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let written = report.groups[0].totals().created;
    assert_eq!(written, 360);

    let mut planned = None;
    let mut progress = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            ProgressEvent::Planned { group, actions, .. } => {
                assert_eq!(group, "contacts");
                planned = Some(actions);
            }
            ProgressEvent::Written { done, total, .. } => progress.push((done, total)),
            _ => {}
        }
    }
    assert_eq!(planned, Some(written), "the plan is announced before it is written");
    assert!(progress.len() > 1, "one event per batch: {progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "writes done only grow: {progress:?}");
    assert_eq!(progress.last(), Some(&(written, written)), "the last event says all is written");

    // A dry run plans but writes nothing: no write progress.
    let mut events = service.subscribe();
    service.plan(RunOptions::default()).await.unwrap();
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, ProgressEvent::Written { .. }), "{e:?}");
    }
}

/// One look for admin requests serves every group of the service: a request posted to one of
/// three running groups is carried out by a pass of that group alone, within about a second (the
/// look runs every `REQUEST_POLL_INTERVAL`), and a request posted before the start is carried out
/// by the first pass with no pass of its own after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_wakes_only_the_group_it_was_posted_to() {
    use exchange_sync::Trigger;
    use exchange_sync_core::state::AdminRequest;
    use exchange_sync_core::{GroupId, StateStore};

    let folders = Arc::new(MemoryFolders::default());
    let ids = ["north", "south", "west"];
    let mut config = config(group());
    config.groups = groups_of_one_contact(&folders, &ids);
    let store = Arc::new(MemoryStore::new());
    let service = SyncService::new(config, folders.clone(), store.clone()).unwrap();
    let before_start = service.post_request("west", AdminRequest::Resync { member: None }).await.unwrap();
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut started: Vec<(String, Trigger)> = Vec::new();
    let mut carried_out: Vec<String> = Vec::new();
    let mut note = |event: ProgressEvent, started: &mut Vec<(String, Trigger)>| match event {
        ProgressEvent::PassStarted { group, trigger } => started.push((group, trigger)),
        ProgressEvent::PassFinished { report }
            if report.notices.iter().any(|n| n.contains("carried out the admin request")) =>
        {
            carried_out.push(report.group);
        }
        _ => {}
    };
    while !ids.iter().all(|id| names(&folders.mailbox(&format!("{id}@contoso.test"))) == [format!("Ann {id}")]) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => note(event, &mut started),
            Ok(Err(e)) => panic!("events lost: {e}"),
            Err(_) => panic!("the first passes never delivered: {started:?}"),
        }
    }
    // Two looks for requests go by: the one posted before the start was the first pass's.
    let quiet = tokio::time::Instant::now() + Duration::from_millis(2500);
    while let Ok(event) = tokio::time::timeout_at(quiet, events.recv()).await {
        note(event.unwrap(), &mut started);
    }
    assert!(store.requests(&GroupId::new("west")).await.unwrap().is_empty(), "request {before_start} carried out");
    assert!(!started.iter().any(|(_, t)| *t == Trigger::Request), "{started:?}");

    started.clear();
    let posted = tokio::time::Instant::now();
    service.post_request("south", AdminRequest::Resync { member: None }).await.unwrap();
    let mut carried_out_after = None;
    while carried_out_after.is_none() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => {
                let finished_south =
                    matches!(&event, ProgressEvent::PassFinished { report } if report.group == "south");
                note(event, &mut started);
                if finished_south && started.contains(&("south".to_owned(), Trigger::Request)) {
                    carried_out_after = Some(posted.elapsed());
                }
            }
            Ok(Err(e)) => panic!("events lost: {e}"),
            Err(_) => panic!("the request was never carried out: {started:?}"),
        }
    }
    // Long enough for every group to have been woken, had the look woken them all.
    let quiet = tokio::time::Instant::now() + Duration::from_millis(2500);
    while let Ok(event) = tokio::time::timeout_at(quiet, events.recv()).await {
        note(event.unwrap(), &mut started);
    }
    let requested: Vec<&str> =
        started.iter().filter(|(_, t)| *t == Trigger::Request).map(|(g, _)| g.as_str()).collect();
    assert_eq!(requested, ["south"], "{started:?}");
    assert_eq!(carried_out, ["west", "south"]);
    assert!(store.newest_requests().await.unwrap().is_empty(), "both requests removed once carried out");
    let took = carried_out_after.unwrap();
    assert!(took < Duration::from_secs(5), "carried out {took:?} after it was posted");

    service.shutdown();
    running.await.unwrap().unwrap();
}
