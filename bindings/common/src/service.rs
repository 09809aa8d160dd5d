//! A connected service as both languages hold it: the Rust [`SyncService`], the folders of its
//! connections (for item scripting), and the real-time run started in the background.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use exchange_sync::{Config, RunOptions, SyncService};
use tokio::task::JoinHandle;

use crate::error::{BindingError, Result};
use crate::folders::Folders;
use crate::records::{ConflictEntry, GroupStatus, RunReport};
use crate::runtime::{self, RuntimeUser};

/// A connected service.
pub struct Service {
    inner: SyncService,
    folders: Folders,
    background: Mutex<Option<JoinHandle<exchange_sync::Result<()>>>>,
    _runtime: RuntimeUser,
}

impl Service {
    /// Connects the configuration's connections (reads secrets, asks Autodiscover) and opens its
    /// state store.
    pub async fn connect(config: Config) -> Result<Self> {
        let runtime = RuntimeUser::new();
        let folders = Folders::connect(&config).await?;
        let store = SyncService::open_store(&config).await?;
        let inner = SyncService::new(config, folders.inner.clone(), store)?;
        Ok(Service { inner, folders, background: Mutex::new(None), _runtime: runtime })
    }

    /// The Rust service (a cheap handle: clone it into a future).
    pub fn inner(&self) -> &SyncService {
        &self.inner
    }

    /// The folders of the service's connections, for item scripting.
    pub fn folders(&self) -> &Folders {
        &self.folders
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
