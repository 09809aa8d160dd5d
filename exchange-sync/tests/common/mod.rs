//! Shared set-up of the tests against the EWS emulator: the demo tenant, a group on `Company
//! Contacts` with two editors and two readers, and folders to play users' edits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

pub mod cli;
pub mod memory_folders;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ews_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, Secret, StateLocation, TargetFolder,
    WellKnownFolder,
};
use exchange_sync::{EwsFolders, FolderItem, ItemFolder, ProgressEvent, SyncService};
use exchange_sync_core::StateStore;
use exchange_sync_core::state::sqlite::SqliteStore;

pub const PASSWORD: &str = "exchange-sync";
pub const ADMIN: &str = "sync-admin@contoso.test";
pub const GROUP: &str = "company-contacts";
pub const EDITORS: [&str; 2] = ["alice@contoso.test", "bob@contoso.test"];
pub const READERS: [&str; 2] = ["carol@contoso.test", "dave@contoso.test"];

/// The folder the group delivers into in each member mailbox.
pub fn target() -> TargetFolder {
    TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company Contacts".into() }
}

/// The demo tenant with `contacts` contacts in the public folder, tracing into `$EWS_TRACE_DIR`.
pub async fn emulator(contacts: usize) -> RunningEmulator {
    let config = EmulatorConfig {
        contacts,
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        heartbeat_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.expect("the emulator starts")
}

/// An emulator configured by the test (a server version, NTLM only, TLS, ...), tracing into
/// `$EWS_TRACE_DIR` like every other.
pub async fn emulator_with(config: EmulatorConfig) -> RunningEmulator {
    let config = EmulatorConfig { trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into), ..config };
    Emulator::start(config).await.expect("the emulator starts")
}

/// The group of the quickstart: two editors, two readers, on `Company Contacts`.
pub fn group() -> GroupConfig {
    let mut group = GroupConfig::new(GROUP, "lab", HubFolder::PublicFolder("Company Contacts".into()));
    for m in EDITORS {
        group = group.with_member(MemberConfig::two_way(m));
    }
    for m in READERS {
        group = group.with_member(MemberConfig::one_way(m));
    }
    group.default_target = target();
    group.match_key = vec!["email1.address".into()];
    group
}

/// A configuration pointing at the emulator.
pub fn config(emu: &RunningEmulator, group: GroupConfig) -> Config {
    let mut config = Config {
        connections: vec![Connection::new(
            "lab",
            emu.url(),
            Auth::Basic { username: ADMIN.into(), password: Secret::Inline(PASSWORD.into()) },
        )],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(50);
    config.service.retry.initial_delay = Duration::from_millis(20);
    config.service.retry.max_delay = Duration::from_millis(500);
    config
}

/// A state database in `dir` (kept across service restarts).
pub async fn store(dir: &Path) -> Arc<dyn StateStore> {
    Arc::new(SqliteStore::open(dir.join("state.sqlite")).await.unwrap())
}

/// A service over the emulator.
pub async fn service(config: &Config, store: Arc<dyn StateStore>) -> SyncService {
    let folders = EwsFolders::connect(config).await.unwrap();
    SyncService::new(config.clone(), Arc::new(folders), store).unwrap()
}

/// Folders for playing users (and inspecting results).
pub struct Folders {
    pub ews: EwsFolders,
}

impl Folders {
    pub async fn new(config: &Config) -> Self {
        Folders { ews: EwsFolders::connect(config).await.unwrap() }
    }

    pub async fn hub(&self) -> ItemFolder {
        self.ews.open_public_folder("lab", "Company Contacts").await.unwrap()
    }

    pub async fn member(&self, mailbox: &str) -> ItemFolder {
        self.ews.open_mailbox_folder("lab", mailbox, &target(), true).await.unwrap()
    }
}

/// A contact's name: its display name, or (when the server derives the display name and it is not
/// content) given name and surname.
pub fn label(item: &exchange_sync_core::Item) -> Option<String> {
    use exchange_sync_core::field;
    if let Some(name) = item.text(field::DISPLAY_NAME) {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = [field::GIVEN_NAME, field::SURNAME].iter().filter_map(|f| item.text(f)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The contact names in a folder, sorted.
pub async fn names(folder: &ItemFolder) -> Vec<String> {
    let mut names: Vec<String> = folder.items().await.unwrap().iter().filter_map(|i| label(&i.item)).collect();
    names.sort();
    names
}

/// The display names that occur once in a folder, sorted (the generated tenant may repeat a
/// name; the tests address contacts by name).
pub async fn unique_names(folder: &ItemFolder) -> Vec<String> {
    let all = names(folder).await;
    all.iter().filter(|n| all.iter().filter(|m| m == n).count() == 1).cloned().collect()
}

/// The item with this display name.
pub async fn find(folder: &ItemFolder, name: &str) -> Option<FolderItem> {
    folder.items().await.unwrap().into_iter().find(|i| label(&i.item).as_deref() == Some(name))
}

/// A field of the item with this display name.
pub async fn field_of(folder: &ItemFolder, name: &str, field: &str) -> Option<String> {
    find(folder, name).await.and_then(|i| i.item.text(field).map(str::to_owned))
}

/// Waits for finished passes until `check` holds; fails after a generous bound instead of hanging.
pub async fn wait_for<F, Fut>(events: &mut tokio::sync::broadcast::Receiver<ProgressEvent>, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("the expected state was never reached"),
        }
    }
}
