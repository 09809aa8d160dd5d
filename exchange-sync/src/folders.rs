//! Where connectors come from: the [`FolderProvider`] opens (and creates) the folders of a group
//! and expands distribution groups.
//!
//! The service knows groups and members; a provider knows servers. The EWS provider
//! ([`crate::ews_folders`]) opens mailbox and public folders over EWS; tests and the bindings'
//! test helpers can provide in-memory folders instead.

use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::Connector;

use crate::config::{GroupConfig, MemberConfig, TargetFolder};
use crate::error::Result;

/// Opens the folders of sync groups.
#[async_trait]
pub trait FolderProvider: Send + Sync {
    /// The group's hub folder (it must exist: a missing hub is a configuration error, never
    /// something to create, or every member would be emptied).
    async fn hub(&self, group: &GroupConfig) -> Result<Arc<dyn Connector>>;

    /// A member's target folder, created when it is a named folder that does not exist yet.
    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Arc<dyn Connector>>;

    /// The mailbox addresses of a distribution group's members (nested groups expanded).
    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>>;

    /// Checks that the group's connection answers and its credentials work (the CLI's `check`).
    async fn check_connection(&self, group: &GroupConfig) -> Result<()> {
        self.hub(group).await.map(|_| ())
    }
}
