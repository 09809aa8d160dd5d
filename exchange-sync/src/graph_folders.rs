//! [`GraphFolders`]: the folders of sync groups on Exchange Online through Microsoft Graph.
//!
//! A hub is a contact folder of a (usually shared) mailbox; members' targets are named contact
//! folders under their mailboxes' Contacts folder, created when missing. Graph has no public
//! folders, no way to name the default Contacts folder among `contactFolders`, and no distribution
//! list expansion through this provider yet: those answer configuration or permanent errors that
//! say so. A configuration's `kind = "graph"` connections are opened with
//! [`GraphFolders::connect`] (by [`crate::ConnectionFolders`]); code may also hand a provider to
//! [`crate::SyncService::new`].

use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::{Connector, ErrorContext};
use exchange_sync_graph::connector::to_core_error;
use exchange_sync_graph::{ChangeNotifications, ConnectorOptions, ContactFolder, GraphClient, GraphContactsConnector};

use crate::config::{
    Auth, ConfigError, Connection, Endpoint, GroupConfig, HubFolder, MemberConfig, TargetFolder, WellKnownFolder,
};
use crate::error::{Error, Result};
use crate::folders::FolderProvider;

/// Opens mailbox contact folders over Graph with one application's client.
#[derive(Debug, Clone)]
pub struct GraphFolders {
    client: GraphClient,
    options: ConnectorOptions,
    notifications: Option<ChangeNotifications>,
}

impl GraphFolders {
    /// A provider acting with this client (an application's app-only credentials).
    pub fn new(client: GraphClient) -> Self {
        GraphFolders { client, options: ConnectorOptions::default(), notifications: None }
    }

    /// The provider of a configured `kind = "graph"` connection: its application's credentials
    /// (the secret read from its source now, never logged, or the certificate and key read from
    /// their files now) against its authority and Graph host.
    pub fn connect(connection: &Connection) -> Result<Self> {
        let connect_error =
            |message: String| Error::Connect { connection: connection.id.clone(), message, retryable: false };
        let Endpoint::Graph(url) = &connection.endpoint else {
            return Err(connect_error("not a Graph connection".to_owned()));
        };
        // The client talks Graph v1.0 on the host; a URL written with the version is the same host.
        let host = url.trim_end_matches('/').trim_end_matches("/v1.0");
        let builder = match &connection.auth {
            Auth::ClientSecret { authority, client_id, secret } => {
                let secret = secret.resolve().map_err(|m| connect_error(format!("client secret: {m}")))?;
                GraphClient::builder(exchange_sync_graph::ClientCredentials {
                    authority: authority.clone(),
                    client_id: client_id.clone(),
                    secret: exchange_sync_graph::Secret::new(secret),
                })
            }
            Auth::ClientCertificate { authority, client_id, certificate_file, key_file } => {
                // Read now: a missing or mismatched file is reported at start, naming the file.
                let certificate = exchange_sync_graph::ClientCertificate::from_pem_files(certificate_file, key_file)
                    .map_err(|e| connect_error(format!("client certificate: {e}")))?;
                GraphClient::builder(exchange_sync_graph::ClientCredentials::for_certificate(
                    authority.clone(),
                    client_id.clone(),
                ))
                .client_certificate(certificate)
            }
            other => {
                return Err(connect_error(format!(
                    "a Graph connection authenticates as an application (client_secret or client_certificate), not \
                     with {}",
                    other.scheme()
                )));
            }
        };
        let client = builder.graph_url(host).build().map_err(|e| connect_error(format!("Graph client: {e}")))?;
        Ok(GraphFolders::new(client))
    }

    /// With other connector settings (page sizes, poll interval).
    pub fn with_options(mut self, options: ConnectorOptions) -> Self {
        self.options = options;
        self
    }

    /// With change notifications: every folder opened is watched through a Graph subscription
    /// whose notifications `notifications` receives (the service's HTTP listener routes them
    /// there); folders are polled only when subscribing fails.
    pub fn with_notifications(mut self, notifications: ChangeNotifications) -> Self {
        self.notifications = Some(notifications);
        self
    }

    fn connector(&self, mailbox: &str, folder: ContactFolder) -> Arc<dyn Connector> {
        let connector =
            GraphContactsConnector::new(self.client.clone(), mailbox, folder).with_options(self.options.clone());
        match &self.notifications {
            Some(n) => Arc::new(connector.with_notifications(n.clone())),
            None => Arc::new(connector),
        }
    }

    /// How changes reach the service, in words, for `check` and the service's start.
    fn real_time_note(&self, poll: std::time::Duration) -> String {
        match &self.notifications {
            Some(n) => format!(
                "changes come by Graph change notifications to {} (subscriptions are made when the service runs; \
                 Graph must reach that URL over HTTPS and it must lead to this service's HTTP listener at {}); a \
                 folder whose subscription fails is polled every {} s instead (or at service.poll_interval_secs \
                 when shorter)",
                n.settings().notification_url,
                n.settings().path(),
                poll.as_secs()
            ),
            None => format!(
                "changes are found by polling each folder's delta link every {} s (or at \
                 service.poll_interval_secs when shorter): no \
                 service.graph_notification_url is configured (Graph pushes notifications only to a public HTTPS \
                 endpoint)",
                poll.as_secs()
            ),
        }
    }

    /// Opens (or creates) a named contact folder; `Ok(None)` when it is missing and not created.
    async fn open(&self, mailbox: &str, target: &TargetFolder, create: bool) -> Result<Option<Arc<dyn Connector>>> {
        let name = folder_name(target)?;
        let found = self
            .client
            .contact_folder_by_name(mailbox, name)
            .await
            .map_err(|e| to_core_error(e, &format!("{mailbox}/{name}")))?;
        let folder = match found {
            Some(f) => f,
            None if create => self
                .client
                .create_contact_folder(mailbox, name)
                .await
                .map_err(|e| to_core_error(e, &format!("{mailbox}/{name}")))?,
            None => return Ok(None),
        };
        Ok(Some(self.connector(mailbox, folder)))
    }

    async fn by_id(&self, mailbox: &str, folder_id: &str) -> Result<Arc<dyn Connector>> {
        let url = format!(
            "/users/{}/contactFolders/{}",
            exchange_sync_graph::client::segment(mailbox),
            exchange_sync_graph::client::segment(folder_id)
        );
        let body = self
            .client
            .get_json(mailbox, "open folder by id", &url)
            .await
            .map_err(|e| to_core_error(e, &format!("{mailbox}/(earlier folder)")))?;
        let display_name = body.get("displayName").and_then(|v| v.as_str()).unwrap_or("(earlier folder)").to_owned();
        Ok(self.connector(mailbox, ContactFolder { id: folder_id.to_owned(), display_name }))
    }
}

/// The name of the contact folder a target names, or why Graph cannot open it.
fn folder_name(target: &TargetFolder) -> Result<&str> {
    match target {
        TargetFolder::Named { parent: WellKnownFolder::Contacts, name } => Ok(name),
        other => Err(Error::Config(ConfigError::single(
            "",
            format!(
                "the folder {other} cannot be opened over Graph: only contact folders named under \
                 Contacts are supported (target = {{ parent = \"contacts\", name = \"...\" }})"
            ),
            None,
        ))),
    }
}

#[async_trait]
impl FolderProvider for GraphFolders {
    async fn hub(&self, group: &GroupConfig) -> Result<Arc<dyn Connector>> {
        match &group.hub {
            HubFolder::PublicFolder(path) => Err(Error::Config(ConfigError::single(
                "",
                format!(
                    "group {}: the public folder {path} cannot be a hub over Graph (Graph has no public folders)",
                    group.id
                ),
                None,
            ))),
            HubFolder::Mailbox { mailbox, folder } => self.open(mailbox, folder, false).await?.ok_or_else(|| {
                // A missing hub is never created: every member would be emptied.
                Error::Sync(exchange_sync_core::Error::NotFound {
                    context: Box::new(ErrorContext::operation("open hub").with_folder(format!("{mailbox}/{folder}"))),
                })
            }),
        }
    }

    async fn member(
        &self,
        _group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Arc<dyn Connector>> {
        self.open(&member.mailbox, target, true).await?.ok_or_else(|| {
            Error::Sync(exchange_sync_core::Error::NotFound {
                context: Box::new(ErrorContext::operation("open member").with_folder(member.mailbox.clone())),
            })
        })
    }

    async fn existing_member(
        &self,
        _group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Option<Arc<dyn Connector>>> {
        self.open(&member.mailbox, target, false).await
    }

    async fn member_by_folder_id(
        &self,
        _group: &GroupConfig,
        member: &MemberConfig,
        folder_id: &str,
    ) -> Result<Arc<dyn Connector>> {
        self.by_id(&member.mailbox, folder_id).await
    }

    async fn hub_by_folder_id(&self, group: &GroupConfig, folder_id: &str) -> Result<Arc<dyn Connector>> {
        match &group.hub {
            HubFolder::Mailbox { mailbox, .. } => self.by_id(mailbox, folder_id).await,
            HubFolder::PublicFolder(_) => self.hub(group).await,
        }
    }

    async fn notes(&self, group: &GroupConfig) -> Vec<String> {
        let _ = group;
        vec![self.real_time_note(self.options.poll_interval)]
    }

    fn change_notifications(&self) -> Option<ChangeNotifications> {
        self.notifications.clone()
    }

    async fn close(&self, grace: std::time::Duration) {
        if let Some(n) = &self.notifications {
            n.close(grace).await;
        }
    }

    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>> {
        Err(Error::Sync(exchange_sync_core::Error::permanent(
            format!("expanding the distribution group {address} over Graph is not supported yet"),
            ErrorContext::operation("expand group").with_group(exchange_sync_core::GroupId::new(group.id.clone())),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::ErrorKind;

    #[test]
    fn only_named_contact_folders_are_graph_targets() {
        let named = TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company".into() };
        assert_eq!(folder_name(&named).ok(), Some("Company"));
        for other in [
            TargetFolder::WellKnown(WellKnownFolder::Contacts),
            TargetFolder::Named { parent: WellKnownFolder::Calendar, name: "Team".into() },
        ] {
            let e = folder_name(&other).err().map(|e| e.kind());
            assert_eq!(e, Some(ErrorKind::Config), "{other}");
        }
    }
}
