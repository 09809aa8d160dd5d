//! A group of in-memory folders over a state store, driven like a test would drive a service.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
}

/// Options with short throttling delays (the machine's time is not the test's subject).
pub fn fast_options() -> ExecutorOptions {
    ExecutorOptions {
        max_concurrent_folders: 3,
        max_throttle_retries: 2,
        default_retry_after: Duration::from_millis(1),
        max_retry_after: Duration::from_millis(5),
    }
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
            folders.insert(member.clone(), MemoryConnector::with_config(config).with_crash_signal(crash.clone()));
        }
        World { group, store, folders, crash, allow_mass_delete: false, skip_unobservable_members: false }
    }

    /// A fresh engine over the same store and folders, as after a restart.
    pub fn engine(&self) -> GroupSync {
        let connectors: BTreeMap<MemberId, Arc<dyn Connector>> =
            self.folders.iter().map(|(m, c)| (m.clone(), c.shared())).collect();
        GroupSync::new(self.group.clone(), Arc::clone(&self.store), connectors).unwrap().with_options(SyncOptions {
            executor: fast_options(),
            allow_mass_delete: self.allow_mass_delete,
            skip_unobservable_members: self.skip_unobservable_members,
        })
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

    /// One pass that must not crash or fail as a whole.
    pub async fn sync(&self) -> SyncReport {
        self.try_sync().await.expect("no crash expected").expect("pass failed")
    }

    /// What the next pass would do.
    pub async fn dry_run(&self) -> Plan {
        self.engine().dry_run().await.unwrap()
    }

    /// Passes until one writes nothing and is clean (at most `max`); asserts the next plan is
    /// empty (DESIGN rule 10).
    pub async fn sync_until_quiet(&self, max: usize) -> Vec<SyncReport> {
        let mut reports = Vec::new();
        for _ in 0..max {
            let report = self.sync().await;
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
