//! A group of in-memory folders over a state store, driven like a test would drive a service.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use exchange_sync_core::engine::{GroupSync, SyncOptions, SyncReport};
use exchange_sync_core::executor::ExecutorOptions;
use exchange_sync_core::testkit::{CrashSignal, MemoryConnector, MemoryConnectorConfig, run_until_crash};
use exchange_sync_core::{
    Connector, FetchedItem, Item, ItemId, ItemKind, MemberId, Plan, Result, StateStore, SyncGroup, field,
};

/// The folders of one group and the state store between passes.
pub struct World {
    pub group: SyncGroup,
    pub store: Arc<dyn StateStore>,
    pub folders: BTreeMap<MemberId, MemoryConnector>,
    pub crash: CrashSignal,
    pub allow_mass_delete: bool,
    pub skip_unobservable_members: bool,
    /// How many folders a pass reads and writes at once; 1 makes the order of every call, and
    /// so the point where a simulated crash strikes, the same on every run.
    pub concurrency: usize,
    /// Folders made so far: folder ids (and so item and entity ids) are the world's own, the
    /// same on every run whatever other tests run beside it.
    folders_made: u64,
}

impl World {
    /// A world for `group`: the hub is a snapshot folder when `snapshot_hub` (like an EWS public
    /// folder), every member an incremental one.
    pub fn new(group: SyncGroup, store: Arc<dyn StateStore>, snapshot_hub: bool) -> Self {
        let crash = CrashSignal::new();
        let mut folders = BTreeMap::new();
        for member in group.folders() {
            let mut config = if group.is_hub(member) && snapshot_hub {
                MemoryConnectorConfig::snapshot(member.as_str())
            } else {
                MemoryConnectorConfig::incremental(member.as_str())
            };
            config.max_batch = 4;
            config.page_size = 5;
            config.folder_id = Some(format!("f{}", folders.len() + 1));
            folders.insert(member.clone(), MemoryConnector::with_config(config).with_crash_signal(crash.clone()));
        }
        let folders_made = folders.len() as u64;
        World {
            group,
            store,
            folders,
            crash,
            allow_mass_delete: false,
            skip_unobservable_members: true,
            concurrency: 3,
            folders_made,
        }
    }

    /// A fresh engine over the same store and folders, as after a restart.
    pub fn engine(&self) -> GroupSync {
        let connectors: BTreeMap<MemberId, Arc<dyn Connector>> =
            self.folders.iter().map(|(m, c)| (m.clone(), c.shared())).collect();
        GroupSync::new(self.group.clone(), Arc::clone(&self.store), connectors).unwrap().with_options(SyncOptions {
            executor: ExecutorOptions { max_concurrent_folders: self.concurrency },
            allow_mass_delete: self.allow_mass_delete,
            skip_unobservable_members: self.skip_unobservable_members,
            ..SyncOptions::default()
        })
    }

    /// Points `member` at a new, empty folder (an admin changed its target, or the folder was
    /// recreated): answers the old folder.
    pub fn retarget(&mut self, member: &str) -> MemoryConnector {
        let id = MemberId::new(member);
        let old = &self.folders[&id];
        let mut config = if old.capabilities().change_detection == exchange_sync_core::ChangeDetection::Snapshot {
            MemoryConnectorConfig::snapshot(member)
        } else {
            MemoryConnectorConfig::incremental(member)
        };
        config.max_batch = 4;
        config.page_size = 5;
        self.folders_made += 1;
        config.folder_id = Some(format!("f{}", self.folders_made));
        let new = MemoryConnector::with_config(config).with_crash_signal(self.crash.clone());
        self.folders.insert(id, new).expect("the member exists")
    }

    /// What a service does before a pass: every folder whose configured target now resolves to
    /// another server folder is re-homed, its old copies handled like a leave (`remove_copies`:
    /// the on_leave policy) through its old folder, when one is given. Answers the members
    /// re-homed.
    pub async fn rehome_moved(&self, old: &BTreeMap<MemberId, MemoryConnector>, remove_copies: bool) -> Vec<MemberId> {
        let engine = self.engine();
        let mut moved = Vec::new();
        for member in self.group.folders() {
            if engine.moved_folder(member).await.unwrap().is_some() {
                let old_folder = old.get(member).map(|c| c.shared());
                engine.rehome(member, old_folder.as_ref(), remove_copies).await.unwrap();
                moved.push(member.clone());
            }
        }
        moved
    }

    pub fn folder(&self, member: &str) -> &MemoryConnector {
        &self.folders[&MemberId::new(member)]
    }

    pub fn hub(&self) -> &MemoryConnector {
        &self.folders[&self.group.hub]
    }

    /// One pass; `None` when a simulated crash stopped it.
    pub async fn try_sync(&self) -> Option<Result<SyncReport>> {
        self.crash.reset();
        let engine = self.engine();
        run_until_crash(engine.run(), &self.crash).await
    }

    /// One pass that must not crash or fail as a whole. Like the service, it waits out a
    /// short back-off the server asked for (a parked hub) before trying again.
    pub async fn sync(&self) -> SyncReport {
        for _ in 0..10 {
            match self.try_sync().await.expect("no crash expected") {
                Err(e) if e.kind() == exchange_sync_core::ErrorKind::Throttled => {
                    let wait = e.retry_after().unwrap_or_default();
                    assert!(wait <= std::time::Duration::from_secs(1), "a test server asked for a long back-off: {e}");
                    tokio::time::sleep(wait + std::time::Duration::from_millis(1)).await;
                }
                other => return other.expect("pass failed"),
            }
        }
        panic!("the hub stayed parked");
    }

    /// Waits until no folder of `report` is parked any more (as the service schedules its next
    /// pass), for short test back-offs.
    pub async fn wait_out(report: &SyncReport) {
        if let Some(until) = report.parked_until() {
            let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
            assert!(wait <= std::time::Duration::from_secs(1), "a test server asked for a long back-off");
            tokio::time::sleep(wait + std::time::Duration::from_millis(1)).await;
        }
    }

    /// What the next pass would do.
    pub async fn dry_run(&self) -> Plan {
        self.engine().dry_run().await.unwrap()
    }

    /// Passes until one writes nothing and is clean (at most `max`); asserts the next plan is
    /// empty (design rule 10).
    pub async fn sync_until_quiet(&self, max: usize) -> Vec<SyncReport> {
        let mut reports = Vec::new();
        for _ in 0..max {
            let report = self.sync().await;
            Self::wait_out(&report).await;
            let quiet = report.planned == 0 && report.is_clean();
            reports.push(report);
            if quiet {
                let next = self.dry_run().await;
                assert!(next.is_empty(), "the plan after a quiet pass is not empty:\n{next}\n{:?}", next.state);
                return reports;
            }
        }
        panic!("no quiet pass after {max} passes; last report: {:#?}", reports.last());
    }

    /// The items of a folder whose given name is `name`.
    pub fn named(&self, member: &str, name: &str) -> Vec<FetchedItem> {
        self.folder(member).items().into_iter().filter(|f| f.item.text(field::GIVEN_NAME) == Some(name)).collect()
    }

    /// The single item of a folder named `name`.
    pub fn one(&self, member: &str, name: &str) -> FetchedItem {
        let found = self.named(member, name);
        assert_eq!(found.len(), 1, "expected one {name:?} in {member}, found {found:#?}");
        found.into_iter().next().unwrap()
    }
}

/// A contact with a given name and an e-mail address derived from it.
pub fn contact(name: &str) -> Item {
    Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, name)
        .with(field::EMAIL1, format!("{}@contoso.test", name.to_lowercase()))
}

/// Applies an edit to a folder's item by id.
pub fn edit(folder: &MemoryConnector, id: &ItemId, name: &str, value: &str) {
    folder.user_update(id, |i| i.set(name, value)).expect("item exists");
}
