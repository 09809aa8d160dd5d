//! [`GraphFolders`]: the folders of sync groups on Exchange Online through Microsoft Graph.
//!
//! A hub is a contact folder or a calendar of a (usually shared) mailbox; members' targets are
//! named contact folders under their mailboxes' Contacts folder, or calendars: a named one
//! (`{ parent = "calendar", name = "..." }`, a secondary calendar, created when missing) or the
//! mailbox's default calendar (`"calendar"`). Graph has no public
//! folders, no way to name the default Contacts folder among `contactFolders`, and no distribution
//! list expansion through this provider yet: those answer configuration or permanent errors that
//! say so. A configuration's `kind = "graph"` connections are opened with
//! [`GraphFolders::connect`] (by [`crate::ConnectionFolders`]); code may also hand a provider to
//! [`crate::SyncService::new`].

use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::{Connector, ErrorContext};
use exchange_sync_graph::connector::to_core_error;
use exchange_sync_graph::{
    CalendarFolder, ChangeNotifications, ConnectorOptions, ContactFolder, GraphCalendarConnector, GraphClient,
    GraphContactsConnector,
};

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

    fn calendar_connector(&self, mailbox: &str, calendar: CalendarFolder) -> Arc<dyn Connector> {
        Arc::new(GraphCalendarConnector::new(self.client.clone(), mailbox, calendar).with_options(self.options.clone()))
    }

    /// Opens (or creates) a named contact folder or calendar, or the default calendar;
    /// `Ok(None)` when it is missing and not created.
    async fn open(&self, mailbox: &str, target: &TargetFolder, create: bool) -> Result<Option<Arc<dyn Connector>>> {
        fn err(mailbox: &str, name: &str) -> impl Fn(exchange_sync_graph::GraphError) -> exchange_sync_core::Error {
            let place = format!("{mailbox}/{name}");
            move |e| to_core_error(e, &place)
        }
        match graph_folder(target)? {
            GraphFolder::Contacts(name) => {
                let found = self.client.contact_folder_by_name(mailbox, name).await.map_err(err(mailbox, name))?;
                let folder = match found {
                    Some(f) => f,
                    None if create => {
                        self.client.create_contact_folder(mailbox, name).await.map_err(err(mailbox, name))?
                    }
                    None => return Ok(None),
                };
                Ok(Some(self.connector(mailbox, folder)))
            }
            GraphFolder::Calendar(name) => {
                let found = self.client.calendar_by_name(mailbox, name).await.map_err(err(mailbox, name))?;
                let calendar = match found {
                    Some(c) => c,
                    None if create => self.client.create_calendar(mailbox, name).await.map_err(err(mailbox, name))?,
                    None => return Ok(None),
                };
                Ok(Some(self.calendar_connector(mailbox, calendar)))
            }
            GraphFolder::DefaultCalendar => {
                let url = format!("/users/{}/calendar", exchange_sync_graph::client::segment(mailbox));
                let body =
                    self.client.get_json(mailbox, "open calendar", &url).await.map_err(err(mailbox, "Calendar"))?;
                let id = body.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let name = body.get("name").and_then(|v| v.as_str()).unwrap_or("Calendar").to_owned();
                Ok(Some(self.calendar_connector(mailbox, CalendarFolder { id, name })))
            }
        }
    }

    /// The connector of a folder recorded by id: a contact folder, else a calendar.
    async fn by_id(&self, mailbox: &str, folder_id: &str) -> Result<Arc<dyn Connector>> {
        let segment = exchange_sync_graph::client::segment;
        let err = |e| to_core_error(e, &format!("{mailbox}/(earlier folder)"));
        let url = format!("/users/{}/contactFolders/{}", segment(mailbox), segment(folder_id));
        match self.client.get_json(mailbox, "open folder by id", &url).await {
            Ok(body) => {
                let display_name =
                    body.get("displayName").and_then(|v| v.as_str()).unwrap_or("(earlier folder)").to_owned();
                Ok(self.connector(mailbox, ContactFolder { id: folder_id.to_owned(), display_name }))
            }
            Err(e) if e.kind() == exchange_sync_graph::ErrorKind::NotFound => {
                let url = format!("/users/{}/calendars/{}", segment(mailbox), segment(folder_id));
                let body = self.client.get_json(mailbox, "open calendar by id", &url).await.map_err(err)?;
                let name = body.get("name").and_then(|v| v.as_str()).unwrap_or("(earlier calendar)").to_owned();
                Ok(self.calendar_connector(mailbox, CalendarFolder { id: folder_id.to_owned(), name }))
            }
            Err(e) => Err(err(e).into()),
        }
    }
}

/// What a target is over Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraphFolder<'a> {
    /// A contact folder named under Contacts.
    Contacts(&'a str),
    /// A (secondary) calendar by name.
    Calendar(&'a str),
    /// The mailbox's default calendar.
    DefaultCalendar,
}

/// What a target names over Graph, or why Graph cannot open it.
fn graph_folder(target: &TargetFolder) -> Result<GraphFolder<'_>> {
    match target {
        TargetFolder::Named { parent: WellKnownFolder::Contacts, name } => Ok(GraphFolder::Contacts(name)),
        TargetFolder::Named { parent: WellKnownFolder::Calendar, name } => Ok(GraphFolder::Calendar(name)),
        TargetFolder::WellKnown(WellKnownFolder::Calendar) => Ok(GraphFolder::DefaultCalendar),
        other => Err(Error::Config(ConfigError::single(
            "",
            format!(
                "the folder {other} cannot be opened over Graph: only contact folders named under \
                 Contacts and calendars are supported (target = {{ parent = \"contacts\", name = \"...\" }}, \
                 {{ parent = \"calendar\", name = \"...\" }} or \"calendar\")"
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

    async fn expand_distribution_group(&self, _group: &GroupConfig, address: &str) -> Result<Vec<String>> {
        exchange_sync_graph::directory::group_mailboxes(&self.client, address)
            .await
            .map_err(|e| Error::Sync(to_core_error(e, &format!("distribution group {address}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::ErrorKind;

    #[test]
    fn named_contact_folders_and_calendars_are_graph_targets() {
        let named = TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company".into() };
        assert_eq!(graph_folder(&named).ok(), Some(GraphFolder::Contacts("Company")));
        let calendar = TargetFolder::Named { parent: WellKnownFolder::Calendar, name: "Team".into() };
        assert_eq!(graph_folder(&calendar).ok(), Some(GraphFolder::Calendar("Team")));
        let default = TargetFolder::WellKnown(WellKnownFolder::Calendar);
        assert_eq!(graph_folder(&default).ok(), Some(GraphFolder::DefaultCalendar));
        for other in [
            TargetFolder::WellKnown(WellKnownFolder::Contacts),
            TargetFolder::Named { parent: WellKnownFolder::Tasks, name: "Team".into() },
        ] {
            let e = graph_folder(&other).err().map(|e| e.kind());
            assert_eq!(e, Some(ErrorKind::Config), "{other}");
        }
    }
}
