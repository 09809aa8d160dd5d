//! [`ConnectionFolders`]: the folders of every configured connection, each group's opened by the
//! provider of its connection: EWS ([`EwsFolders`]) for on-premises Exchange and Exchange Online
//! while it keeps EWS, Microsoft Graph ([`GraphFolders`]) for `kind = "graph"` connections.
//!
//! A group's hub lives on the group's connection; each member on its own connection when it names
//! one ([`MemberConfig::connection`]), on the group's otherwise. A hybrid organisation's group
//! has its hub in an on-premises public folder over EWS and members in Exchange Online over Graph:
//! the engine does not know which server a folder lives on, and both connectors write the same
//! origin stamp, so the group is one group (see `docs/graph.md`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::Connector;

use crate::config::{Config, GroupConfig, MemberConfig, TargetFolder};
use crate::error::Result;
use crate::ews_folders::EwsFolders;
use crate::folders::FolderProvider;
use crate::graph_folders::GraphFolders;

/// Opens each group's folders through the provider of the group's connection.
pub struct ConnectionFolders {
    ews: EwsFolders,
    graph: BTreeMap<String, GraphFolders>,
    /// One receiver for the subscriptions of every Graph connection.
    notifications: Option<exchange_sync_graph::ChangeNotifications>,
}

impl ConnectionFolders {
    /// Connects every configured connection: EWS connections as [`EwsFolders::connect`] does
    /// (Autodiscover, public folder routing), Graph connections with their application's
    /// credentials (a token is fetched at the first request).
    pub async fn connect(config: &Config) -> Result<Self> {
        Self::connect_with_retries(config, exchange_sync_ews::RetryPolicy::default()).await
    }

    /// Like [`ConnectionFolders::connect`], with the EWS clients' own retry policy (the CLI's
    /// `check` answers quickly with few attempts).
    pub async fn connect_with_retries(config: &Config, retry: exchange_sync_ews::RetryPolicy) -> Result<Self> {
        let ews = EwsFolders::connect_with_retries(config, retry).await?;
        let notifications = config.service.graph_notification_url.as_ref().map(|url| {
            exchange_sync_graph::ChangeNotifications::new(exchange_sync_graph::NotificationSettings::new(url.clone()))
        });
        let mut graph = BTreeMap::new();
        for connection in config.connections.iter().filter(|c| c.is_graph()) {
            let mut folders = GraphFolders::connect(connection)?;
            if let Some(n) = &notifications {
                folders = folders.with_notifications(n.clone());
            }
            graph.insert(connection.id.clone(), folders);
        }
        Ok(ConnectionFolders { ews, graph, notifications })
    }

    /// The provider of a connection (by id); EWS unless it is a Graph connection.
    fn by_connection(&self, connection: &str) -> &dyn FolderProvider {
        match self.graph.get(connection) {
            Some(graph) => graph,
            None => &self.ews,
        }
    }

    /// The provider of the group's connection: its hub's.
    fn of(&self, group: &GroupConfig) -> &dyn FolderProvider {
        self.by_connection(&group.connection)
    }

    /// The provider of a member's mailbox.
    fn of_member(&self, group: &GroupConfig, member: &MemberConfig) -> &dyn FolderProvider {
        self.by_connection(group.member_connection(member))
    }
}

#[async_trait]
impl FolderProvider for ConnectionFolders {
    async fn hub(&self, group: &GroupConfig) -> Result<Arc<dyn Connector>> {
        self.of(group).hub(group).await
    }

    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Arc<dyn Connector>> {
        self.of_member(group, member).member(group, member, target).await
    }

    async fn existing_member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Option<Arc<dyn Connector>>> {
        self.of_member(group, member).existing_member(group, member, target).await
    }

    async fn member_by_folder_id(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        folder_id: &str,
    ) -> Result<Arc<dyn Connector>> {
        self.of_member(group, member).member_by_folder_id(group, member, folder_id).await
    }

    async fn hub_by_folder_id(&self, group: &GroupConfig, folder_id: &str) -> Result<Arc<dyn Connector>> {
        self.of(group).hub_by_folder_id(group, folder_id).await
    }

    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>> {
        self.of(group).expand_distribution_group(group, address).await
    }

    async fn check_connection(&self, group: &GroupConfig) -> Result<()> {
        self.of(group).check_connection(group).await
    }

    async fn notes(&self, group: &GroupConfig) -> Vec<String> {
        self.of(group).notes(group).await
    }

    fn change_notifications(&self) -> Option<exchange_sync_graph::ChangeNotifications> {
        self.notifications.clone()
    }

    async fn close(&self, grace: std::time::Duration) {
        if let Some(n) = &self.notifications {
            n.close(grace).await;
        }
    }
}
