//! `SyncService`: the Rust service from C#: run once, dry-run plan, real-time run (start / stop,
//! or an awaitable run), status, the conflict log, and folders for item operations.
//!
//! Blocking methods run on the calling thread, and `RunOnceWithProgress` delivers its events on
//! that thread too (what PowerShell needs); `...Async` methods return tasks. `Start` runs the
//! real-time service in the background until `Stop`; a `ProgressListener` registered with
//! `Subscribe` receives the events of every run until its `Subscription` is disposed.

use std::sync::Arc;

use exchange_sync::RunOptions as CoreRunOptions;
use exchange_sync_bindings::events::EventPump;
use exchange_sync_bindings::records::{ConflictEntry, GroupStatus, RunReport};
use exchange_sync_bindings::runtime::{self as rt, joined};
use exchange_sync_bindings::service::{self as svc, Service};
use tokio::task::JoinHandle;

use crate::config::Configuration;
use crate::errors::Result;
use crate::events::{Listener, ProgressListener};
use crate::items::Folder;
use crate::runtime::{block_on, spawn};

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
pub struct SyncService(Service);

#[uniffi::export]
impl SyncService {
    /// Connects the configuration's connections (reads secrets, asks Autodiscover) and opens
    /// its state store.
    #[uniffi::constructor]
    pub fn new(config: &Arc<Configuration>) -> Result<Arc<Self>> {
        let service = block_on(Service::connect(config.config.clone()))?;
        Ok(Arc::new(SyncService(service)))
    }

    /// Connects without blocking (a task of the new service); see the constructor.
    #[uniffi::constructor]
    pub async fn connect_async(config: Arc<Configuration>) -> Result<Arc<Self>> {
        let service = spawn(Service::connect(config.config.clone())).await?;
        Ok(Arc::new(SyncService(service)))
    }

    /// The group ids, in configuration order.
    pub fn group_ids(&self) -> Vec<String> {
        self.0.groups()
    }

    /// One pass of each selected group. Failures of a group are in its report
    /// (`ExchangeSyncFunctions.ThrowIfFailed(report)` throws the first).
    pub fn run_once(&self, options: RunOptions) -> Result<RunReport> {
        block_on(svc::pass(self.0.inner().clone(), options.into(), false))
    }

    /// One pass of each selected group, delivering its progress events to `listener` on the
    /// calling thread before this returns.
    pub fn run_once_with_progress(
        &self,
        options: RunOptions,
        listener: Box<dyn ProgressListener>,
    ) -> Result<RunReport> {
        let service = self.0.inner().clone();
        let mut pump = EventPump::new(service.subscribe(), Some(Listener(listener)));
        block_on(async move { pump.pump_until(svc::pass(service, options.into(), false)).await })
    }

    /// One pass of each selected group, without blocking.
    pub async fn run_once_async(&self, options: RunOptions) -> Result<RunReport> {
        spawn(svc::pass(self.0.inner().clone(), options.into(), false)).await
    }

    /// The dry run: what one pass of each selected group would write, without writing
    /// (`GroupReport.Plan` lists the actions).
    pub fn plan(&self, options: RunOptions) -> Result<RunReport> {
        block_on(svc::pass(self.0.inner().clone(), options.into(), true))
    }

    /// The dry run, without blocking.
    pub async fn plan_async(&self, options: RunOptions) -> Result<RunReport> {
        spawn(svc::pass(self.0.inner().clone(), options.into(), true)).await
    }

    /// Delivers every progress event of this service (runs, plans, the real-time service) to
    /// `listener`, on a runtime thread, until the returned subscription is disposed.
    pub fn subscribe(&self, listener: Box<dyn ProgressListener>) -> Result<Arc<Subscription>> {
        let mut pump = EventPump::new(self.0.inner().subscribe(), Some(Listener(listener)));
        let task = rt::handle()?.spawn(async move { pump.pump_until(futures::future::pending::<()>()).await });
        Ok(Arc::new(Subscription { task }))
    }

    /// Starts the real-time service in the background and returns at once; `Stop` ends it.
    pub fn start(&self) -> Result<()> {
        Ok(self.0.start(|service| async move { service.run().await })?)
    }

    /// Whether the service started with `Start` is running.
    pub fn is_running(&self) -> bool {
        self.0.is_running()
    }

    /// Stops the service started with `Start`: passes in flight finish within the grace period.
    pub fn stop(&self) -> Result<()> {
        Ok(self.0.stop()?)
    }

    /// Runs every group in real time until `Shutdown` is called; cancelling the task shuts the
    /// service down gracefully (the task then ends cancelled).
    pub async fn run_async(&self) -> Result<()> {
        let service = self.0.inner().clone();
        let mut task = rt::handle()?.spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        // Dropped when the C# task is cancelled: ask the service to stop (it finishes in the
        // background) instead of aborting a pass in flight.
        struct StopOnDrop(exchange_sync::SyncService);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.shutdown();
            }
        }
        let _stop = StopOnDrop(service);
        Ok(joined(&mut task).await?.map_err(exchange_sync_bindings::BindingError::from)?)
    }

    /// Asks a running service (`Start` or `RunAsync`) to stop; returns at once.
    pub fn shutdown(&self) {
        self.0.inner().shutdown();
    }

    /// Per group and folder: initialization, last sync, errors, copies and pending work.
    pub fn status(&self) -> Result<Vec<GroupStatus>> {
        block_on(svc::status(self.0.inner().clone()))
    }

    /// The status, without blocking.
    pub async fn status_async(&self) -> Result<Vec<GroupStatus>> {
        spawn(svc::status(self.0.inner().clone())).await
    }

    /// The conflict log of one group (or of every group when `null`), oldest first per group.
    #[uniffi::method(default(group = None))]
    pub fn conflicts(&self, group: Option<String>) -> Result<Vec<ConflictEntry>> {
        block_on(svc::conflicts(self.0.inner().clone(), group))
    }

    /// The conflict log, without blocking.
    #[uniffi::method(default(group = None))]
    pub async fn conflicts_async(&self, group: Option<String>) -> Result<Vec<ConflictEntry>> {
        spawn(svc::conflicts(self.0.inner().clone(), group)).await
    }

    /// Opens a public folder by its `/`-separated path (`""`: the root of the tree), through
    /// `connection` (`null`: the first connection).
    #[uniffi::method(default(connection = None))]
    pub fn public_folder(&self, path: String, connection: Option<String>) -> Result<Arc<Folder>> {
        Ok(Folder::new(block_on(self.0.folders().public_folder(path, connection)?)?))
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
    ) -> Result<Arc<Folder>> {
        Ok(Folder::new(block_on(self.0.folders().mailbox_folder(mailbox, &folder, create, connection)?)?))
    }
}

impl Drop for SyncService {
    fn drop(&mut self) {
        // A service disposed while running (`Start`, `RunAsync`) is asked to stop.
        self.0.inner().shutdown();
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
