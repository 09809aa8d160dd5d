//! The folders of a configuration's connections, opened for item scripting: what a service
//! hands out (`service.folders`, `SyncService.PublicFolder`), what Python's `EwsFolders` is,
//! and what the test emulator opens as its admin.

use std::future::Future;
use std::sync::Arc;

use exchange_sync::config::TargetFolder;
use exchange_sync::{Config, EwsFolders, ItemFolder};

use crate::error::{BindingError, Result};

/// Connected folders and the ids of their connections, in configuration order.
#[derive(Clone)]
pub struct Folders {
    /// The Rust provider (shared with a service built on it).
    pub inner: Arc<EwsFolders>,
    /// The connection ids; the first is the default.
    pub connections: Vec<String>,
}

impl Folders {
    /// Connects the configuration's connections (reads secrets, asks Autodiscover).
    pub async fn connect(config: &Config) -> Result<Self> {
        let inner = Arc::new(EwsFolders::connect(config).await?);
        Ok(Folders { inner, connections: config.connections.iter().map(|c| c.id.clone()).collect() })
    }

    /// The connection named, or the first one.
    pub fn connection(&self, connection: Option<String>) -> Result<String> {
        connection
            .or_else(|| self.connections.first().cloned())
            .ok_or_else(|| BindingError::invalid("connections", "the configuration has no connection"))
    }

    /// Opens a public folder by its `/`-separated path (`""`: the root) through `connection`
    /// (none: the first); the future runs on the runtime.
    pub fn public_folder(
        &self,
        path: String,
        connection: Option<String>,
    ) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
        let (folders, connection) = (Arc::clone(&self.inner), self.connection(connection)?);
        Ok(async move { Ok(folders.open_public_folder(&connection, &path).await?) })
    }

    /// Opens a folder of a mailbox (`contacts`, `contacts/Company Contacts`, ...) through
    /// `connection` (none: the first), created when missing if `create` is set. The folder is
    /// checked before anything goes to the server.
    pub fn mailbox_folder(
        &self,
        mailbox: String,
        folder: &str,
        create: bool,
        connection: Option<String>,
    ) -> Result<impl Future<Output = Result<ItemFolder>> + Send + 'static> {
        let target = parse_target("folder", folder)?;
        let (folders, connection) = (Arc::clone(&self.inner), self.connection(connection)?);
        Ok(async move { Ok(folders.open_mailbox_folder(&connection, &mailbox, &target, create).await?) })
    }
}

/// Reads a target folder (`contacts`, `contacts/Company Contacts`, ...); an invalid one is a
/// configuration error at `path` (the argument's name).
pub fn parse_target(path: &str, text: &str) -> Result<TargetFolder> {
    text.parse().map_err(|message: String| BindingError::invalid(path, message))
}
