//! Where connectors come from: the [`FolderProvider`] opens (and creates) the folders of a group
//! and expands distribution groups.
//!
//! The service knows groups and members; a provider knows servers. The EWS provider
//! ([`crate::ews_folders`]) opens mailbox and public folders over EWS; tests and the bindings'
//! test helpers can provide in-memory folders instead.
//!
//! A provider's connectors should say which server folder they are bound to
//! ([`Connector::folder_id`]): the engine records it with the copies, and a configured folder that
//! comes to resolve to another server folder (the target changed, the folder was recreated) is
//! re-homed instead of being read as "every item deleted" (design rule 11). The old folder is then
//! opened by that id ([`FolderProvider::member_by_folder_id`]).

use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::{Connector, ErrorContext};

use crate::config::{GroupConfig, MemberConfig, TargetFolder};
use crate::error::{Error, Result};

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

    /// A member's target folder when it exists, creating nothing (a dry run and `check` write
    /// nothing anywhere: design rule 15); `Ok(None)` when it is a named folder that does not exist
    /// yet. An error says the mailbox cannot be reached (no mailbox, no rights).
    ///
    /// The default opens it with [`FolderProvider::member`]: a provider whose `member` creates
    /// folders must override this.
    async fn existing_member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Option<Arc<dyn Connector>>> {
        self.member(group, member, target).await.map(Some)
    }

    /// The folder with this server id ([`Connector::folder_id`]) in a member's mailbox: the folder
    /// that held the member's copies before its target changed, opened to handle them like a
    /// leave. A folder that no longer exists answers an error of kind
    /// [`exchange_sync_core::ErrorKind::NotFound`].
    ///
    /// The default answers that the provider cannot open folders by id (then a re-homed member's
    /// old copies are kept and forgotten, whatever the leave policy).
    async fn member_by_folder_id(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        folder_id: &str,
    ) -> Result<Arc<dyn Connector>> {
        let _ = folder_id;
        Err(by_id_unsupported(group, Some(member)))
    }

    /// The folder with this server id that was the group's hub before the hub's configured folder
    /// came to resolve to another one (see [`FolderProvider::member_by_folder_id`]).
    async fn hub_by_folder_id(&self, group: &GroupConfig, folder_id: &str) -> Result<Arc<dyn Connector>> {
        let _ = folder_id;
        Err(by_id_unsupported(group, None))
    }

    /// The mailbox addresses of a distribution group's members (nested groups expanded).
    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>>;

    /// Checks that the group's connection answers and its credentials work (the CLI's `check`).
    async fn check_connection(&self, group: &GroupConfig) -> Result<()> {
        self.hub(group).await.map(|_| ())
    }

    /// What an admin should know about the group's server once its hub was opened (no streaming
    /// notifications on Exchange 2007 SP1: real time falls back to pull subscriptions), in words.
    /// `check` shows it, and the service says it when it starts.
    async fn notes(&self, group: &GroupConfig) -> Vec<String> {
        let _ = group;
        Vec::new()
    }

    /// The receiver of Microsoft Graph's change notifications, when the provider subscribes
    /// folders (a `graph_notification_url` is configured): the service's HTTP listener hands it
    /// the posts to the notification URL's path.
    fn change_notifications(&self) -> Option<exchange_sync_graph::ChangeNotifications> {
        None
    }

    /// Releases what the provider holds on servers when the service stops (Graph
    /// subscriptions are deleted), waiting at most `grace`.
    async fn close(&self, grace: std::time::Duration) {
        let _ = grace;
    }
}

fn by_id_unsupported(group: &GroupConfig, member: Option<&MemberConfig>) -> Error {
    let mut context =
        ErrorContext::operation("open folder by id").with_group(exchange_sync_core::GroupId::new(group.id.clone()));
    if let Some(m) = member {
        context = context.with_member(exchange_sync_core::MemberId::new(m.id.clone()));
    }
    Error::Sync(exchange_sync_core::Error::permanent(
        "this folder provider cannot open a folder by its server id",
        context,
    ))
}
