//! A connected service as both languages hold it: the Rust [`SyncService`], the folders of its
//! connections (for item scripting), and the real-time run started in the background.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use exchange_sync::config::TargetFolder;
use exchange_sync::{Config, EwsFolders, ItemFolder, RunOptions, SyncService};
use tokio::task::JoinHandle;

use crate::error::{BindingError, Result};
use crate::records::{ConflictEntry, GroupStatus, RunReport};
use crate::runtime::{self, RuntimeUser};

/// A connected service.
pub struct Service {
    inner: SyncService,
    folders: Arc<EwsFolders>,
    connections: Vec<String>,
    background: Mutex<Option<JoinHandle<exchange_sync::Result<()>>>>,
    _runtime: RuntimeUser,
}

impl Service {
    /// Connects the configuration's connections (reads secrets, asks Autodiscover) and opens its
    /// state store.
    pub async fn connect(config: Config) -> Result<Self> {
        let runtime = RuntimeUser::new();
        let folders = Arc::new(EwsFolders::connect(&config).await?);
        let store = SyncService::open_store(&config).await?;
        let connections = config.connections.iter().map(|c| c.id.clone()).collect();
        let inner = SyncService::new(config, folders.clone(), store)?;
        Ok(Service { inner, folders, connections, background: Mutex::new(None), _runtime: runtime })
    }

    /// The Rust service (a cheap handle: clone it into a future).
    pub fn inner(&self) -> &SyncService {
        &self.inner
    }

    /// The folders of the service's connections.
    pub fn folders(&self) -> Arc<EwsFolders> {
        Arc::clone(&self.folders)
    }

    /// The connection ids, in configuration order (the first is the default of item scripting).
    pub fn connections(&self) -> &[String] {
        &self.connections
    }

    /// The group ids, in configuration order.
    pub fn groups(&self) -> Vec<String> {
        self.inner.config().groups.iter().map(|g| g.id.clone()).collect()
    }

    /// Starts `run` (the real-time service, with whatever event delivery the language adds) in
    /// the background; a usage error when it already runs.
    pub fn start<F>(&self, run: impl FnOnce(SyncService) -> F) -> Result<()>
    where
        F: Future<Output = exchange_sync::Result<()>> + Send + 'static,
    {
        let mut slot = self.background.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return Err(BindingError::usage("the service is already running"));
        }
        *slot = Some(runtime::handle()?.spawn(run(self.inner.clone())));
        Ok(())
    }

    /// Whether the service started with [`Service::start`] is running.
    pub fn is_running(&self) -> bool {
        self.background.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the service started with [`Service::start`] (passes in flight finish within the
    /// grace period) and waits for it; its error, if it failed.
    pub fn stop(&self) -> Result<()> {
        self.inner.shutdown();
        let task = self.background.lock().unwrap_or_else(PoisonError::into_inner).take();
        match task {
            Some(mut task) => runtime::block_on(async move { Ok(runtime::joined(&mut task).await??) }),
            None => Ok(()),
        }
    }

    /// The connection named, or the first one.
    pub fn connection(&self, connection: Option<String>) -> Result<String> {
        connection
            .or_else(|| self.connections.first().cloned())
            .ok_or_else(|| BindingError::invalid("connections", "the configuration has no connection"))
    }

    /// Opens a public folder by its `/`-separated path through `connection` (none: the first).
    pub fn public_folder(
        &self,
        path: String,
        connection: Option<String>,
    ) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
        open_public_folder(self.folders(), self.connection(connection)?, path)
    }

    /// Opens a folder of a mailbox (`contacts`, `contacts/Company Contacts`, ...) through
    /// `connection` (none: the first), created when missing if `create` is set.
    pub fn mailbox_folder(
        &self,
        mailbox: String,
        folder: &str,
        create: bool,
        connection: Option<String>,
    ) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
        open_mailbox_folder(self.folders(), self.connection(connection)?, mailbox, folder, create)
    }
}

impl Drop for Service {
    /// A service released while running in the background is asked to stop, rather than left
    /// running without a handle.
    fn drop(&mut self) {
        if self.is_running() {
            self.inner.shutdown();
        }
    }
}

/// Opens a public folder through `connection` (the future runs on the runtime).
pub fn open_public_folder(
    folders: Arc<EwsFolders>,
    connection: String,
    path: String,
) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
    Ok(async move { Ok(folders.open_public_folder(&connection, &path).await?) })
}

/// Opens a folder of a mailbox through `connection`; the folder is checked before anything
/// goes to the server.
pub fn open_mailbox_folder(
    folders: Arc<EwsFolders>,
    connection: String,
    mailbox: String,
    folder: &str,
    create: bool,
) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
    let target = parse_target("folder", folder)?;
    Ok(async move { Ok(folders.open_mailbox_folder(&connection, &mailbox, &target, create).await?) })
}

/// Reads a target folder (`contacts`, `contacts/Company Contacts`, ...); an invalid one is a
/// configuration error at `path` (the argument's name).
pub fn parse_target(path: &str, text: &str) -> Result<TargetFolder> {
    text.parse().map_err(|message: String| BindingError::invalid(path, message))
}

/// One pass of each selected group, or the dry run of it.
pub async fn pass(service: SyncService, options: RunOptions, dry_run: bool) -> Result<RunReport> {
    let report = if dry_run { service.plan(options).await? } else { service.run_once(options).await? };
    Ok(RunReport::from(&report))
}

/// The status of every group.
pub async fn status(service: SyncService) -> Result<Vec<GroupStatus>> {
    Ok(service.status().await?.iter().map(GroupStatus::from).collect())
}

/// The conflict log of one group, or of every group.
pub async fn conflicts(service: SyncService, group: Option<String>) -> Result<Vec<ConflictEntry>> {
    Ok(service.conflicts(group.as_deref()).await?.iter().map(ConflictEntry::from).collect())
}
