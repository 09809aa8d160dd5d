//! Data safety in the service: races with users are not errors and bring a follow-up; retries
//! belong to whoever owns them; a server's back-off holds the group until it ends; a member parked
//! at its server's request does not hold the others; the hub is re-homed like a member.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::memory_folders::{MemoryFolders, contact, id_of, text_of};
use exchange_sync::config::{Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, StateLocation};
use exchange_sync::{PassOutcome, ProgressEvent, RunOptions, SyncService, Trigger};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::testkit::{Fault, FaultKind, MemoryConnector, Operation};
use exchange_sync_core::{
    BatchResult, Capabilities, ChangeHint, ChangePage, Connector, Deleted, FetchedItem, ItemDelete, ItemId, ItemUpdate,
    ItemVersion, ListPage, NewItem, OriginStamp, PageCursor, SyncToken, field,
};
use futures::stream::BoxStream;

/// A connector whose errors its (imagined) client already retried as often as allowed: what the
/// EWS client hands up after waiting out what it may of a server's back-off.
struct Exhausted(MemoryConnector);

impl Exhausted {
    fn wrap<T>(r: exchange_sync_core::Result<T>) -> exchange_sync_core::Result<T> {
        r.map_err(exchange_sync_core::Error::exhausted)
    }
}

#[async_trait]
impl Connector for Exhausted {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn changes(&self, token: Option<&SyncToken>) -> exchange_sync_core::Result<ChangePage> {
        Self::wrap(self.0.changes(token).await)
    }
    async fn list(&self, cursor: Option<&PageCursor>) -> exchange_sync_core::Result<ListPage> {
        Self::wrap(self.0.list(cursor).await)
    }
    async fn get(&self, ids: &[ItemId]) -> exchange_sync_core::Result<BatchResult<FetchedItem>> {
        Self::wrap(self.0.get(ids).await)
    }
    async fn create(&self, items: &[NewItem]) -> exchange_sync_core::Result<BatchResult<ItemVersion>> {
        Self::wrap(self.0.create(items).await)
    }
    async fn update(&self, updates: &[ItemUpdate]) -> exchange_sync_core::Result<BatchResult<ItemVersion>> {
        Self::wrap(self.0.update(updates).await)
    }
    async fn delete(&self, items: &[ItemDelete]) -> exchange_sync_core::Result<BatchResult<Deleted>> {
        Self::wrap(self.0.delete(items).await)
    }
    async fn find_by_origin(&self, origins: &[OriginStamp]) -> exchange_sync_core::Result<Vec<FetchedItem>> {
        Self::wrap(self.0.find_by_origin(origins).await)
    }
    async fn watch(&self) -> exchange_sync_core::Result<BoxStream<'static, ChangeHint>> {
        self.0.watch().await
    }
    fn poll_interval(&self) -> Duration {
        self.0.poll_interval()
    }
}

/// Folders in memory whose connectors reach the service behind [`Exhausted`].
fn exhausted(folder: MemoryConnector) -> Arc<dyn Connector> {
    Arc::new(Exhausted(folder))
}

fn service(folders: &Arc<MemoryFolders>) -> SyncService {
    let group = GroupConfig::new("contacts", "lab", HubFolder::PublicFolder("Company Contacts".into()))
        .with_member(MemberConfig::two_way("alice@contoso.test"))
        .with_member(MemberConfig::one_way("carol@contoso.test"));
    let mut config = Config {
        connections: vec![Connection::new("lab", "http://127.0.0.1:1/EWS/Exchange.asmx", Auth::None)],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(20);
    config.service.retry.initial_delay = Duration::from_millis(20);
    config.service.retry.max_delay = Duration::from_millis(500);
    SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new())).unwrap()
}

/// Finding 11: a user who edits a copy while the pass updates it wins the race; that is not an
/// error. The report says so in words, asks for a follow-up, and the next pass merges the edit.
#[tokio::test]
async fn a_race_with_a_user_is_no_error_and_asks_for_a_follow_up() {
    let folders = Arc::new(MemoryFolders::wrapped(exhausted));
    let hub = folders.hub("contacts");
    for name in ["Ann", "Ben"] {
        hub.user_create(contact(name));
    }
    let service = service(&folders);
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());

    // The hub's edit goes out; alice saves her own edit of the same contact just before the
    // pass's update of her copy arrives.
    hub.user_update(&id_of(&hub, "Ann"), |i| i.set(field::PHONE_MOBILE, "+1 555 0100"));
    let alice = folders.mailbox("alice@contoso.test");
    let ann = id_of(&alice, "Ann");
    alice.act_before(Operation::Update, 1, move |c| {
        c.user_update(&ann, |i| i.set(field::OFFICE, "Building 7"));
    });
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let group = &report.groups[0];
    assert_eq!(group.outcome, PassOutcome::Synced, "{group:#?}");
    assert_eq!(group.all_errors().count(), 0, "{group:#?}");
    assert_eq!(group.totals().races, 1, "{group:#?}");
    assert!(group.follow_up, "another pass should re-read the raced copy soon");
    assert!(group.to_string().contains("1 write raced with users' edits, the next pass re-reads them"), "{group}");
    assert!(report.is_clean());

    // The follow-up re-reads alice's copy: every copy converges, the hub's edit is everywhere, and
    // alice's edit is everywhere too or, where it conflicted, in the conflict log (nobody's edit
    // disappears without a trace).
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let carol = folders.mailbox("carol@contoso.test");
    for folder in [&hub, &alice, &carol] {
        let d = folder.describe();
        assert_eq!(text_of(folder, "Ann", field::PHONE_MOBILE).as_deref(), Some("+1 555 0100"), "{d}: {report:#?}");
        assert_eq!(text_of(folder, "Ann", field::OFFICE), text_of(&hub, "Ann", field::OFFICE), "{d}");
    }
    if text_of(&hub, "Ann", field::OFFICE).as_deref() != Some("Building 7") {
        let log = service.conflicts(None).await.unwrap();
        assert!(
            log.iter()
                .any(|c| c.field == field::OFFICE && c.losers.iter().any(|l| l.value.as_deref() == Some("Building 7"))),
            "{log:#?}"
        );
    }
    assert!(!service.run_once(RunOptions::default()).await.unwrap().groups[0].follow_up, "settled");
}

/// Issue 15: an error its owner already retried (exhausted) is not retried again by the service,
/// and a throttled hub gives the group its next pass when the back-off ends.
#[tokio::test]
async fn an_exhausted_error_is_not_retried_and_the_hub_back_off_is_reported() {
    let folders = Arc::new(MemoryFolders::wrapped(exhausted));
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let service = service(&folders);
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Throttle(Duration::from_secs(30))));
    let before = chrono::Utc::now();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let group = &report.groups[0];
    assert_eq!(group.outcome, PassOutcome::Failed, "{group:#?}");
    assert_eq!(group.attempts, 1, "not retried: its owner did");
    assert_eq!(hub.calls(Operation::List), 1);
    let until = group.parked_until.expect("the back-off is reported");
    assert!(until >= before + chrono::Duration::seconds(29), "{until} vs {before}");

    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "the next pass syncs: {report:#?}");

    // A transient failure nobody retried yet is retried by the service, after its backoff.
    let folders = Arc::new(MemoryFolders::wrapped(exhausted).with_raw_hub());
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let service = self::service(&folders);
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Fail(exchange_sync_core::ErrorKind::Transient)));
    let mut events = service.subscribe();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].attempts, 2);
    let retrying = std::iter::from_fn(|| events.try_recv().ok())
        .find_map(|e| match e {
            ProgressEvent::Retrying { retry_in, .. } => Some(retry_in),
            _ => None,
        })
        .expect("a Retrying event with the delay");
    assert!(retrying >= Duration::from_millis(10) && retrying <= Duration::from_millis(20), "{retrying:?}");
}

/// A member parked at its server's request is left out until then, with the time said; the
/// others sync, and the report tells the service when to come back.
#[tokio::test]
async fn a_parked_member_does_not_hold_the_others() {
    let folders = Arc::new(MemoryFolders::wrapped(exhausted));
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let service = service(&folders);
    folders.mailbox("alice@contoso.test").inject(Fault::on(
        Operation::Changes,
        1,
        FaultKind::Throttle(Duration::from_secs(120)),
    ));
    let report = service.run_once(RunOptions::default()).await.unwrap();
    let group = &report.groups[0];
    assert_eq!(group.outcome, PassOutcome::PartiallyFailed, "{group:#?}");
    let alice = group.members.iter().find(|m| m.member == "alice@contoso.test").unwrap();
    assert!(alice.parked_until.is_some(), "{alice:#?}");
    assert!(alice.left_out.as_deref().unwrap_or_default().contains("is parked until"), "{alice:#?}");
    assert!(group.parked_until.is_some(), "the next pass comes when the back-off ends");
    assert_eq!(folders.mailbox("carol@contoso.test").len(), 1, "carol synced");
    assert!(folders.mailbox("alice@contoso.test").is_empty());
    // No request goes to alice before the back-off ends.
    let calls = folders.mailbox("alice@contoso.test").calls(Operation::Changes);
    service.run_once(RunOptions::default()).await.unwrap();
    assert_eq!(folders.mailbox("alice@contoso.test").calls(Operation::Changes), calls);
}

/// In real time, a hub whose server asked to back off holds the whole group until the back-off
/// ends: no pass before, whatever asks for one (here the hub's own change hints); then it syncs.
#[tokio::test(start_paused = true)]
async fn a_throttled_hub_holds_the_group_until_its_back_off_ends() {
    let folders = Arc::new(MemoryFolders::wrapped(exhausted));
    let hub = folders.hub("contacts");
    hub.user_create(contact("Ann"));
    let service = service(&folders);
    hub.inject(Fault::on(Operation::List, 1, FaultKind::Throttle(Duration::from_secs(20))));
    let mut events = service.subscribe();
    let running = service.clone();
    let task = tokio::spawn(async move { running.run().await });

    let mut failed_at = None;
    let mut next = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while next.is_none() {
        let event = tokio::time::timeout_at(deadline, events.recv()).await.unwrap().unwrap();
        match event {
            ProgressEvent::PassFinished { report } if failed_at.is_none() => {
                assert_eq!(report.outcome, PassOutcome::Failed, "{report:#?}");
                failed_at = Some(tokio::time::Instant::now());
                // Changes in the hub while it is held: hints, but no pass before the back-off.
                hub.user_create(contact("Ben"));
            }
            ProgressEvent::PassStarted { trigger, .. } if failed_at.is_some() => {
                next = Some((tokio::time::Instant::now(), trigger));
            }
            _ => {}
        }
    }
    let (at, trigger) = next.unwrap();
    let waited = at - failed_at.unwrap();
    assert!(waited >= Duration::from_secs(19), "the next pass came after {waited:?}");
    // Every request to a folder is made by a pass, and none started before the back-off ended.
    assert_eq!(trigger, Trigger::Retry);
    let carol = folders.mailbox("carol@contoso.test");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while carol.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the group never synced after the back-off");
        let _ = tokio::time::timeout_at(deadline, events.recv()).await;
    }
    service.shutdown();
    task.await.unwrap().unwrap();
}

/// The hub's configured folder changes (another public folder): the hub is re-homed like a
/// member, the new hub receives every item of the group, and the members keep theirs, with no
/// duplicates and no deletions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_hub_is_rehomed_and_receives_the_groups_items() {
    let emu = common::emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let first = common::config(&emu, common::group());
    let running = common::service(&first, common::store(dir.path()).await).await;
    assert!(running.run_once(RunOptions::default()).await.unwrap().is_clean());
    drop(running);
    let folders = common::Folders::new(&first).await;
    let old_hub = folders.hub().await;
    let names = common::names(&old_hub).await;
    assert_eq!(names.len(), 3);

    // A new public folder becomes the hub.
    let store = emu.store();
    store
        .write(store.public_index(), |mb| {
            let root = mb.folder_by_path("").unwrap();
            mb.create_folder(root, "Company Contacts 2025", "IPF.Contact")
        })
        .unwrap()
        .unwrap();
    let mut group = common::group();
    group.hub = HubFolder::PublicFolder("Company Contacts 2025".into());
    let second = common::config(&emu, group);
    let restarted = common::service(&second, common::store(dir.path()).await).await;
    let plan = restarted.plan(RunOptions::default()).await.unwrap();
    let text = plan.groups[0].plan.clone().unwrap_or_default();
    assert!(
        text.contains(
            "re-home the hub: public folder Company Contacts -> public folder Company Contacts 2025: 0 copies in \
             the old hub removed (on_leave = remove); the new hub receives every item of the group"
        ),
        "{text}"
    );
    let report = restarted.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let new_hub = folders.ews.open_public_folder("lab", "Company Contacts 2025").await.unwrap();
    assert_eq!(common::names(&new_hub).await, names, "the new hub received every item");
    assert_eq!(common::names(&old_hub).await, names, "the old hub's own items stay");
    for m in common::EDITORS.iter().chain(&common::READERS) {
        assert_eq!(common::names(&folders.member(m).await).await, names, "{m}: no duplicates, no deletions");
    }
    // Stable, and the new hub is the hub now: an edit there reaches the members.
    let ann = common::find(&new_hub, &names[0]).await.unwrap();
    new_hub.update(&ann.id, |i| i.set(field::JOB_TITLE, "Moved along")).await.unwrap();
    let report = restarted.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(
        common::field_of(&folders.member(common::READERS[0]).await, &names[0], field::JOB_TITLE).await.as_deref(),
        Some("Moved along")
    );
}
