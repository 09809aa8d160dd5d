//! `SyncService`: the Rust service from C#: run once, dry-run plan, real-time run (start / stop,
//! or an awaitable run), status, the conflict log, and folders for item operations.
//!
//! Blocking methods run on the calling thread, and `RunOnceWithProgress` delivers its events on
//! that thread too (what PowerShell needs); `...Async` methods return tasks. `Start` runs the
//! real-time service in the background until `Stop`; a `ProgressListener` registered with
//! `Subscribe` receives the events of every run until its `Subscription` is disposed.

use std::sync::{Arc, Mutex, PoisonError};

use exchange_sync::{EwsFolders, RunOptions as CoreRunOptions, SyncService as CoreService};
use tokio::task::JoinHandle;

use crate::config::{Configuration, parse_target};
use crate::errors::ExchangeSyncError;
use crate::events::{EventPump, ProgressListener};
use crate::items::Folder;
use crate::reports::{ConflictEntry, GroupStatus, RunReport};
use crate::runtime::{RuntimeUser, block_on, handle, spawn};

/// Options of one explicit run.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct RunOptions {
    /// The groups to run (empty: every group).
    #[uniffi(default = [])]
    pub groups: Vec<String>,
    /// Lets this run exceed the mass-delete guard: an admin confirmed the deletions.
    #[uniffi(default = false)]
    pub allow_mass_delete: bool,
}

impl From<RunOptions> for CoreRunOptions {
    fn from(o: RunOptions) -> Self {
        CoreRunOptions { groups: o.groups, allow_mass_delete: o.allow_mass_delete }
    }
}

/// Runs sync groups over Exchange as a configuration describes them.
#[derive(uniffi::Object)]
pub struct SyncService {
    inner: CoreService,
    folders: Arc<EwsFolders>,
    connections: Vec<String>,
    background: Mutex<Option<JoinHandle<exchange_sync::Result<()>>>>,
    _runtime: RuntimeUser,
}

async fn connect(config: exchange_sync::Config) -> Result<(CoreService, Arc<EwsFolders>), ExchangeSyncError> {
    let folders = Arc::new(EwsFolders::connect(&config).await?);
    let store = CoreService::open_store(&config).await?;
    let service = CoreService::new(config, folders.clone(), store)?;
    Ok((service, folders))
}

async fn pass(service: CoreService, options: RunOptions, dry_run: bool) -> Result<RunReport, ExchangeSyncError> {
    let options = CoreRunOptions::from(options);
    let report = if dry_run { service.plan(options).await? } else { service.run_once(options).await? };
    Ok(RunReport::from(&report))
}

impl SyncService {
    fn connection(&self, connection: Option<String>) -> Result<String, ExchangeSyncError> {
        connection
            .or_else(|| self.connections.first().cloned())
            .ok_or_else(|| ExchangeSyncError::invalid("connections", "the configuration has no connection"))
    }
}

#[uniffi::export]
impl SyncService {
    /// Connects the configuration's connections (reads secrets, asks Autodiscover) and opens
    /// its state store.
    #[uniffi::constructor]
    pub fn new(config: &Arc<Configuration>) -> Result<Arc<Self>, ExchangeSyncError> {
        let c = config.config.clone();
        let connections = c.connections.iter().map(|c| c.id.clone()).collect();
        let (inner, folders) = block_on(connect(c))?;
        Ok(Arc::new(SyncService {
            inner,
            folders,
            connections,
            background: Mutex::new(None),
            _runtime: RuntimeUser::new(),
        }))
    }

    /// Connects without blocking (a task of the new service); see the constructor.
    #[uniffi::constructor]
    pub async fn connect_async(config: Arc<Configuration>) -> Result<Arc<Self>, ExchangeSyncError> {
        let c = config.config.clone();
        let connections = c.connections.iter().map(|c| c.id.clone()).collect();
        let runtime = RuntimeUser::new();
        let (inner, folders) = spawn(connect(c)).await?;
        Ok(Arc::new(SyncService { inner, folders, connections, background: Mutex::new(None), _runtime: runtime }))
    }

    /// The group ids, in configuration order.
    pub fn group_ids(&self) -> Vec<String> {
        self.inner.config().groups.iter().map(|g| g.id.clone()).collect()
    }

    /// One pass of each selected group. Failures of a group are in its report
    /// (`ExchangeSyncFunctions.ThrowIfFailed(report)` throws the first).
    pub fn run_once(&self, options: RunOptions) -> Result<RunReport, ExchangeSyncError> {
        block_on(pass(self.inner.clone(), options, false))
    }

    /// One pass of each selected group, delivering its progress events to `listener` on the
    /// calling thread before this returns.
    pub fn run_once_with_progress(
        &self,
        options: RunOptions,
        listener: Box<dyn ProgressListener>,
    ) -> Result<RunReport, ExchangeSyncError> {
        let service = self.inner.clone();
        let mut pump = EventPump::new(service.subscribe(), Some(listener));
        block_on(async move { pump.pump_until(pass(service, options, false)).await })
    }

    /// One pass of each selected group, without blocking.
    pub async fn run_once_async(&self, options: RunOptions) -> Result<RunReport, ExchangeSyncError> {
        spawn(pass(self.inner.clone(), options, false)).await
    }

    /// The dry run: what one pass of each selected group would write, without writing
    /// (`GroupReport.Plan` lists the actions).
    pub fn plan(&self, options: RunOptions) -> Result<RunReport, ExchangeSyncError> {
        block_on(pass(self.inner.clone(), options, true))
    }

    /// The dry run, without blocking.
    pub async fn plan_async(&self, options: RunOptions) -> Result<RunReport, ExchangeSyncError> {
        spawn(pass(self.inner.clone(), options, true)).await
    }

    /// Delivers every progress event of this service (runs, plans, the real-time service) to
    /// `listener`, on a runtime thread, until the returned subscription is disposed.
    pub fn subscribe(&self, listener: Box<dyn ProgressListener>) -> Result<Arc<Subscription>, ExchangeSyncError> {
        let mut pump = EventPump::new(self.inner.subscribe(), Some(listener));
        let task = handle()?.spawn(async move { pump.pump_until(futures::future::pending::<()>()).await });
        Ok(Arc::new(Subscription { task }))
    }

    /// Starts the real-time service in the background and returns at once; `Stop` ends it.
    pub fn start(&self) -> Result<(), ExchangeSyncError> {
        let mut slot = self.background.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return Err(ExchangeSyncError::usage("the service is already running"));
        }
        let service = self.inner.clone();
        *slot = Some(handle()?.spawn(async move { service.run().await }));
        Ok(())
    }

    /// Whether the service started with `Start` is running.
    pub fn is_running(&self) -> bool {
        self.background.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the service started with `Start`: passes in flight finish within the grace period.
    pub fn stop(&self) -> Result<(), ExchangeSyncError> {
        self.inner.shutdown();
        let task = self.background.lock().unwrap_or_else(PoisonError::into_inner).take();
        match task {
            Some(task) => block_on(async move {
                task.await.map_err(|e| ExchangeSyncError::usage(format!("the service task failed: {e}")))??;
                Ok(())
            }),
            None => Ok(()),
        }
    }

    /// Runs every group in real time until `Shutdown` is called; cancelling the task shuts the
    /// service down gracefully (the task then ends cancelled).
    pub async fn run_async(&self) -> Result<(), ExchangeSyncError> {
        let service = self.inner.clone();
        let task = handle()?.spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        // Dropped when the C# task is cancelled: ask the service to stop (it finishes in the
        // background) instead of aborting a pass in flight.
        struct StopOnDrop(CoreService);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.shutdown();
            }
        }
        let _stop = StopOnDrop(service);
        task.await.map_err(|e| ExchangeSyncError::usage(format!("the service task failed: {e}")))??;
        Ok(())
    }

    /// Asks a running service (`Start` or `RunAsync`) to stop; returns at once.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Per group and folder: initialization, last sync, errors, copies and pending work.
    pub fn status(&self) -> Result<Vec<GroupStatus>, ExchangeSyncError> {
        let service = self.inner.clone();
        block_on(async move { Ok(service.status().await?.iter().map(GroupStatus::from).collect()) })
    }

    /// The status, without blocking.
    pub async fn status_async(&self) -> Result<Vec<GroupStatus>, ExchangeSyncError> {
        let service = self.inner.clone();
        spawn(async move { Ok(service.status().await?.iter().map(GroupStatus::from).collect()) }).await
    }

    /// The conflict log of one group (or of every group when `null`), oldest first per group.
    #[uniffi::method(default(group = None))]
    pub fn conflicts(&self, group: Option<String>) -> Result<Vec<ConflictEntry>, ExchangeSyncError> {
        let service = self.inner.clone();
        block_on(
            async move { Ok(service.conflicts(group.as_deref()).await?.iter().map(ConflictEntry::from).collect()) },
        )
    }

    /// The conflict log, without blocking.
    #[uniffi::method(default(group = None))]
    pub async fn conflicts_async(&self, group: Option<String>) -> Result<Vec<ConflictEntry>, ExchangeSyncError> {
        let service = self.inner.clone();
        spawn(async move { Ok(service.conflicts(group.as_deref()).await?.iter().map(ConflictEntry::from).collect()) })
            .await
    }

    /// Opens a public folder by its `/`-separated path (`""`: the root of the tree), through
    /// `connection` (`null`: the first connection).
    #[uniffi::method(default(connection = None))]
    pub fn public_folder(&self, path: String, connection: Option<String>) -> Result<Arc<Folder>, ExchangeSyncError> {
        let (folders, connection) = (Arc::clone(&self.folders), self.connection(connection)?);
        block_on(async move { Ok(Folder::new(folders.open_public_folder(&connection, &path).await?)) })
    }

    /// Opens a folder of a mailbox: `contacts`, `calendar`, `tasks`, `notes`, or a named folder
    /// below one (`contacts/Company Contacts`), created when missing if `create` is set.
    #[uniffi::method(default(folder = "contacts", create = false, connection = None))]
    pub fn mailbox_folder(
        &self,
        mailbox: String,
        folder: String,
        create: bool,
        connection: Option<String>,
    ) -> Result<Arc<Folder>, ExchangeSyncError> {
        let target = parse_target("folder", &folder)?;
        let (folders, connection) = (Arc::clone(&self.folders), self.connection(connection)?);
        block_on(
            async move { Ok(Folder::new(folders.open_mailbox_folder(&connection, &mailbox, &target, create).await?)) },
        )
    }
}

impl Drop for SyncService {
    fn drop(&mut self) {
        // A service disposed while running in the background is asked to stop.
        self.inner.shutdown();
    }
}

/// A progress listener's registration; disposing it stops the delivery.
#[derive(uniffi::Object)]
pub struct Subscription {
    task: JoinHandle<()>,
}

#[uniffi::export]
impl Subscription {
    /// Stops delivering events (disposing does the same).
    pub fn cancel(&self) {
        self.task.abort();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}
