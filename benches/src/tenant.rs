//! The emulated tenant a benchmark runs against: an in-process emulator on its own runtime
//! (so its CPU time is told apart from the engine's), mailboxes `m0000`, `m0001`, ... and the
//! public folder `Company Contacts`, plus the service configuration that points at it.

use std::time::Duration;

use exchange_sync::config::{Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, Secret, StateLocation};

use crate::placement::{self, Side};
use crate::resources::EMULATOR_THREADS;

/// The connection id in every benchmark configuration.
pub const CONNECTION: &str = "emulator";
/// The hub of every benchmark group.
pub const PUBLIC_FOLDER: &str = "Company Contacts";
/// The account the engine and the load drivers log in as (impersonation over every mailbox).
pub const ADMIN: &str = "sync-admin@contoso.test";
/// The password of every account of the emulated tenant.
pub const PASSWORD: &str = "exchange-sync";

/// The local part of mailbox number `i`.
pub fn mailbox_name(i: usize) -> String {
    format!("m{i:04}")
}

/// The address of mailbox number `i`.
pub fn mailbox(i: usize) -> String {
    format!("{}@contoso.test", mailbox_name(i))
}

/// A running emulator with `mailboxes` users and `contacts` contacts in the public folder.
pub struct Tenant {
    /// The emulator.
    pub emulator: ews_emulator::RunningEmulator,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Tenant {
    /// Starts the emulator on a runtime of its own (threads named after [`EMULATOR_THREADS`]).
    /// Must be called outside any runtime.
    pub fn start(mailboxes: usize, contacts: usize) -> Result<Tenant, Box<dyn std::error::Error>> {
        Self::start_with(mailboxes, contacts, |_| {})
    }

    /// [`Tenant::start`] with other emulator settings (streaming lifetimes, heartbeats, the
    /// request log), set by `tweak`.
    pub fn start_with(
        mailboxes: usize,
        contacts: usize,
        tweak: impl FnOnce(&mut ews_emulator::EmulatorConfig),
    ) -> Result<Tenant, Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(EMULATOR_THREADS)
            .on_thread_start(|| placement::pin(Side::Server))
            .enable_all()
            .build()?;
        let mut config = ews_emulator::EmulatorConfig {
            users: (0..mailboxes).map(mailbox_name).collect(),
            contacts,
            heartbeat_interval: Duration::from_secs(30),
            trace_dir: None,
            ..ews_emulator::EmulatorConfig::default()
        };
        tweak(&mut config);
        let emulator = runtime.block_on(ews_emulator::Emulator::start(config))?;
        Ok(Tenant { emulator, runtime: Some(runtime) })
    }

    /// The EWS endpoint.
    pub fn url(&self) -> String {
        self.emulator.url().to_owned()
    }

    /// Requests and bytes the emulator served so far.
    pub fn stats(&self) -> ews_emulator::RequestStats {
        self.emulator.request_stats()
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A group on the public folder with `members` one-way readers (mailboxes `first..first+members`).
pub fn reader_group(id: &str, first: usize, members: usize) -> GroupConfig {
    let mut group = GroupConfig::new(id, CONNECTION, HubFolder::PublicFolder(PUBLIC_FOLDER.into()));
    for i in first..first + members {
        group = group.with_member(MemberConfig::one_way(mailbox(i)));
    }
    group
}

/// A service configuration for `groups` on the tenant at `url`.
pub fn config(url: &str, groups: Vec<GroupConfig>, debounce: Duration) -> Config {
    let mut config = Config {
        connections: vec![Connection::new(
            CONNECTION,
            url,
            Auth::Basic { username: ADMIN.into(), password: Secret::Inline(PASSWORD.into()) },
        )],
        groups,
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = debounce;
    config.service.max_concurrent_groups = 8;
    config
}

/// The engine's runtime (threads named `engine`); the measured work runs on it.
pub fn engine_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine")
        .on_thread_start(|| placement::pin(Side::Client))
        .enable_all()
        .build()
}
