//! The EWS [`FolderProvider`]: connections from the configuration, folders on Exchange.
//!
//! One [`EwsClient`] per configured connection (credentials from their secret sources, TLS
//! options, the public folder mailbox found through Autodiscover for the routing headers that
//! Exchange 2013+ needs). Members are reached through impersonation (or delegate access when the
//! connection says `impersonation = false`); named target folders are created when missing (never
//! by [`FolderProvider::existing_member`], which dry runs and `check` use); the hub must exist.
//!
//! Opening a folder resolves its server id (one GetFolder for a default folder such as a mailbox's
//! `contacts`; a named folder's id comes with the lookup), which also shows at once whether the
//! mailbox can be reached. Connectors carry that id ([`Connector::folder_id`]), so that a target
//! that comes to resolve to another folder is re-homed, and an old folder is opened again by it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::Connector;
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{
    ConnectorOptions, Credentials, DistinguishedFolder, EwsClient, EwsError, EwsFolderConnector, FolderId, FolderRef,
    FolderShape, Impersonation, RetryPolicy, Routing, TokenProvider, TransportConfig,
};

use crate::config::WellKnownFolder;
use crate::config::{Auth, Config, Connection, Endpoint, GroupConfig, HubFolder, MemberConfig, Secret, TargetFolder};
use crate::error::{Error, Result};
use crate::folders::FolderProvider;
use crate::item_folder::ItemFolder;

/// The error of a named folder that does not exist (and was not to be created).
fn missing_folder(mailbox: &str, target: &TargetFolder) -> Error {
    Error::Sync(exchange_sync_core::Error::NotFound {
        context: Box::new(
            exchange_sync_core::ErrorContext::operation("open folder").with_folder(format!("{mailbox}/{target}")),
        ),
    })
}

/// A connection's client and what Autodiscover told about it.
struct ConnectionClient {
    client: EwsClient,
    impersonation: bool,
    public_folder_mailbox: Option<String>,
}

/// Opens folders on Exchange over EWS.
pub struct EwsFolders {
    connections: BTreeMap<String, ConnectionClient>,
    /// How often pull subscriptions are asked for events (servers without streaming).
    pull_interval: std::time::Duration,
}

/// Whether a server is Exchange 2007 (major version 8): no streaming notifications.
fn is_exchange_2007(client: &EwsClient) -> bool {
    client.server_version().and_then(|v| v.major) == Some(8)
}

/// Reads an OAuth2 token from its secret source on every request for one, so a token renewed by
/// an outside process (written to the file or variable) is picked up after a 401.
struct SecretToken(Secret);

#[async_trait]
impl TokenProvider for SecretToken {
    async fn token(&self, _force_refresh: bool) -> exchange_sync_ews::Result<String> {
        self.0.resolve().map_err(|message| EwsError::Configuration(format!("OAuth2 token: {message}")))
    }
}

fn connect_error(connection: &Connection, message: impl Into<String>, retryable: bool) -> Error {
    Error::Connect { connection: connection.id.clone(), message: message.into(), retryable }
}

fn ews_error(connection: &Connection, what: &str, e: EwsError) -> Error {
    Error::Connect { connection: connection.id.clone(), message: format!("{what}: {e}"), retryable: e.is_retryable() }
}

fn credentials(connection: &Connection) -> Result<Credentials> {
    let secret = |s: &Secret| s.resolve().map_err(|m| connect_error(connection, m, false));
    Ok(match &connection.auth {
        Auth::Basic { username, password } => Credentials::basic(username.clone(), secret(password)?),
        Auth::Ntlm { username, password } => Credentials::ntlm(username.clone(), secret(password)?),
        Auth::Negotiate { username, password } => {
            Credentials::negotiate(username.clone(), password.as_ref().map(secret).transpose()?)
        }
        Auth::OAuth2 { token } => Credentials::bearer(Arc::new(SecretToken(token.clone()))),
        Auth::ClientSecret { .. } | Auth::ClientCertificate { .. } => {
            return Err(connect_error(
                connection,
                format!("{} authentication is for Graph connections, not EWS", connection.auth.scheme()),
                false,
            ));
        }
        Auth::None => Credentials::Anonymous,
    })
}

fn transport(connection: &Connection) -> Result<TransportConfig> {
    let mut config = TransportConfig::default();
    if let Some(ca) = &connection.tls.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| connect_error(connection, format!("cannot read ca_file {}: {e}", ca.display()), false))?;
        config.ca_bundle_pem = Some(pem);
    }
    config.danger_accept_invalid_certs = connection.tls.insecure;
    config.ntlm_channel_binding = connection.tls.channel_binding;
    Ok(config)
}

/// The Autodiscover URL next to an EWS URL (`.../EWS/Exchange.asmx` -> `.../autodiscover/autodiscover.svc`).
fn autodiscover_beside(ews_url: &str) -> Option<String> {
    let lower = ews_url.to_ascii_lowercase();
    let at = lower.find("/ews/")?;
    Some(format!("{}/autodiscover/autodiscover.svc", &ews_url[..at]))
}

/// The well-known Autodiscover URL of an address's domain.
fn autodiscover_of_domain(address: &str) -> Option<String> {
    let domain = address.rsplit_once('@')?.1;
    Some(format!("https://autodiscover.{domain}/autodiscover/autodiscover.svc"))
}

impl EwsFolders {
    /// Builds a client per connection of `config`: secrets are read now, Autodiscover answers the
    /// EWS URL (for `autodiscover = ...`) and the public folder mailbox.
    pub async fn connect(config: &Config) -> Result<Self> {
        Self::connect_with_retries(config, RetryPolicy::default()).await
    }

    /// Like [`EwsFolders::connect`], with the clients' own retry policy for failed requests (the
    /// CLI's `check` answers quickly with few attempts; the service retries whole passes anyway).
    pub async fn connect_with_retries(config: &Config, retry: RetryPolicy) -> Result<Self> {
        let mut connections = BTreeMap::new();
        // Graph connections are opened by `GraphFolders` (see `ConnectionFolders`).
        for connection in config.connections.iter().filter(|c| !c.is_graph()) {
            connections.insert(connection.id.clone(), Self::connect_one(connection, retry.clone()).await?);
        }
        Ok(EwsFolders { connections, pull_interval: config.service.pull_interval })
    }

    /// How connectors of a connection watch their folders: pull subscriptions asked every
    /// `pull_interval` where streaming is not offered (right away on Exchange 2007 SP1, whose
    /// version the first answer told).
    fn options(&self, client: &EwsClient) -> ConnectorOptions {
        let mut options = ConnectorOptions::default();
        options.watch.pull_interval = self.pull_interval;
        if is_exchange_2007(client) {
            options.watch.streaming = false;
        }
        options
    }

    async fn connect_one(connection: &Connection, retry: RetryPolicy) -> Result<ConnectionClient> {
        let credentials = credentials(connection)?;
        let transport = transport(connection)?;
        let account = match &connection.auth {
            Auth::Basic { username, .. } | Auth::Ntlm { username, .. } if username.contains('@') => {
                Some(username.clone())
            }
            _ => None,
        };
        let (url, autodiscover_url, address) = match &connection.endpoint {
            Endpoint::Url(url) => (Some(url.clone()), autodiscover_beside(url), account),
            Endpoint::Autodiscover(address) => (None, autodiscover_of_domain(address), Some(address.clone())),
            Endpoint::Graph(_) => {
                return Err(connect_error(connection, "a Graph connection has no EWS endpoint", false));
            }
        };
        let mut public_folder_mailbox = None;
        let mut ews_url = url;
        if let (Some(ad), Some(address)) = (autodiscover_url, address) {
            let settings = exchange_sync_ews::autodiscover::get_user_settings(
                &ad,
                credentials.clone(),
                &transport,
                &address,
                &exchange_sync_ews::autodiscover::SYNC_SETTINGS,
            )
            .await;
            match settings {
                Ok(settings) => {
                    public_folder_mailbox = settings.public_folder_mailbox().map(str::to_owned);
                    if ews_url.is_none() {
                        ews_url = settings.ews_url().map(str::to_owned);
                    }
                }
                Err(e) if ews_url.is_none() => return Err(ews_error(connection, "Autodiscover", e)),
                Err(e) => {
                    tracing::info!(connection = %connection.id, "Autodiscover unavailable ({e}); no public folder routing headers")
                }
            }
        }
        let Some(ews_url) = ews_url else {
            return Err(connect_error(connection, "Autodiscover returned no EWS URL", false));
        };
        let client = EwsClient::builder(ews_url)
            .credentials(credentials)
            .transport(transport)
            .retry(retry)
            .build()
            .map_err(|e| ews_error(connection, "client", e))?;
        Ok(ConnectionClient { client, impersonation: connection.impersonation, public_folder_mailbox })
    }

    fn connection(&self, group: &GroupConfig) -> Result<&ConnectionClient> {
        self.connection_by_id(&group.connection)
    }

    fn connection_by_id(&self, id: &str) -> Result<&ConnectionClient> {
        self.connections.get(id).ok_or_else(|| {
            Error::Config(crate::config::ConfigError::single("", format!("no connection has the id {id:?}"), None))
        })
    }

    fn public_client(c: &ConnectionClient) -> EwsClient {
        match &c.public_folder_mailbox {
            Some(mailbox) => {
                c.client.with_routing(Routing { public_folder_mailbox: Some(mailbox.clone()), ..Routing::default() })
            }
            None => c.client.clone(),
        }
    }

    /// A client acting on `mailbox`, and how to name its well-known folders.
    fn mailbox_client(c: &ConnectionClient, mailbox: &str) -> (EwsClient, Option<String>) {
        if c.impersonation {
            (c.client.impersonating(Impersonation::PrimarySmtpAddress(mailbox.to_owned())), None)
        } else {
            (c.client.clone(), Some(mailbox.to_owned()))
        }
    }

    /// Opens (creating when asked) a folder of a mailbox.
    async fn mailbox_folder(
        &self,
        connection: &str,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
    ) -> Result<Arc<dyn Connector>> {
        match self.find_mailbox_folder(connection, mailbox, target, create).await? {
            Some(folder) => Ok(folder.connector()),
            None => Err(missing_folder(mailbox, target)),
        }
    }

    /// Opens a folder of a mailbox for item operations (see [`ItemFolder`]); a named folder is
    /// created when missing and `create` is set (otherwise a missing one is an error of kind
    /// [`exchange_sync_core::ErrorKind::NotFound`]). A default folder is named as such, without a
    /// request: a mailbox that cannot be reached shows at the first item operation.
    pub async fn open_mailbox_folder(
        &self,
        connection: &str,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
    ) -> Result<ItemFolder> {
        match self.locate_mailbox_folder(connection, mailbox, target, create, false).await? {
            Some(folder) => Ok(folder),
            None => Err(missing_folder(mailbox, target)),
        }
    }

    /// Opens a folder of a mailbox as the sync service does: with its server id resolved (one
    /// GetFolder for a default folder), so that the mailbox's reachability shows at once and the
    /// connector says which server folder it is bound to. `Ok(None)` when it is a named folder
    /// that does not exist and `create` is not set.
    pub async fn find_mailbox_folder(
        &self,
        connection: &str,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
    ) -> Result<Option<ItemFolder>> {
        self.locate_mailbox_folder(connection, mailbox, target, create, true).await
    }

    async fn locate_mailbox_folder(
        &self,
        connection: &str,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
        resolve_id: bool,
    ) -> Result<Option<ItemFolder>> {
        let c = self.connection_by_id(connection)?;
        let (client, delegate_mailbox) = Self::mailbox_client(c, mailbox);
        let well_known = |w: WellKnownFolder| FolderRef::Distinguished {
            folder: match w {
                WellKnownFolder::Contacts => DistinguishedFolder::Contacts,
                WellKnownFolder::Calendar => DistinguishedFolder::Calendar,
                WellKnownFolder::Tasks => DistinguishedFolder::Tasks,
                WellKnownFolder::Notes => DistinguishedFolder::Notes,
            },
            mailbox: delegate_mailbox.clone(),
        };
        let describe = format!("{mailbox}/{target}");
        let to_error = |e: EwsError| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &describe));
        let folder_id = match target {
            TargetFolder::WellKnown(w) if resolve_id => client.folder_id(&well_known(*w)).await.map_err(to_error)?,
            TargetFolder::WellKnown(w) => {
                let folder = well_known(*w);
                let connector = EwsFolderConnector::mailbox_folder(client.clone(), folder.clone(), describe)
                    .with_options(self.options(&client));
                return Ok(Some(ItemFolder::new(Arc::new(connector), client, folder)));
            }
            TargetFolder::Named { parent, name } => {
                let parent_ref = well_known(*parent);
                let children = client
                    .find_folders(&parent_ref, &FolderShape::default(), Traversal::Shallow)
                    .await
                    .map_err(to_error)?;
                match children.into_iter().find(|f| f.display_name.as_deref() == Some(name.as_str())) {
                    Some(found) => found.id,
                    None if create => {
                        let class = match parent {
                            WellKnownFolder::Contacts => "IPF.Contact",
                            WellKnownFolder::Calendar => "IPF.Appointment",
                            WellKnownFolder::Tasks => "IPF.Task",
                            WellKnownFolder::Notes => "IPF.StickyNote",
                        };
                        tracing::info!(folder = %describe, "creating the target folder");
                        client.create_folder(&parent_ref, name, class).await.map_err(to_error)?.id
                    }
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(self.mailbox_item_folder(client, folder_id, describe)))
    }

    /// A mailbox folder by its id, for item operations and syncing.
    fn mailbox_item_folder(&self, client: EwsClient, id: FolderId, describe: String) -> ItemFolder {
        let folder = FolderRef::Id(FolderId::new(id.id.clone()));
        let connector = EwsFolderConnector::mailbox_folder(client.clone(), folder.clone(), describe)
            .with_options(self.options(&client))
            .with_folder_id(id.id);
        ItemFolder::new(Arc::new(connector), client, folder)
    }

    /// Opens a folder of a mailbox by its server id (a member's folder before its target changed);
    /// a folder that is gone answers an error of kind [`exchange_sync_core::ErrorKind::NotFound`].
    pub async fn open_mailbox_folder_by_id(
        &self,
        connection: &str,
        mailbox: &str,
        folder_id: &str,
        describe: String,
    ) -> Result<ItemFolder> {
        let c = self.connection_by_id(connection)?;
        let (client, _) = Self::mailbox_client(c, mailbox);
        let id = Self::existing_folder(&client, folder_id, &describe).await?;
        Ok(self.mailbox_item_folder(client, id, describe))
    }

    /// Checks that the folder with this id exists (one GetFolder, IdOnly); answers its id.
    async fn existing_folder(client: &EwsClient, folder_id: &str, describe: &str) -> Result<FolderId> {
        client
            .folder_id(&FolderRef::Id(FolderId::new(folder_id)))
            .await
            .map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, describe)))
    }

    /// Finds a public folder by its `/`-separated path.
    async fn public_folder(&self, group: &GroupConfig, path: &str) -> Result<Arc<dyn Connector>> {
        Ok(self.open_public_folder(&group.connection, path).await?.connector())
    }

    /// Opens a public folder by its `/`-separated path for item operations (see [`ItemFolder`]).
    pub async fn open_public_folder(&self, connection: &str, path: &str) -> Result<ItemFolder> {
        let c = self.connection_by_id(connection)?;
        let client = Self::public_client(c);
        let describe = format!("public folder {path}");
        let mut current = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
        let mut parent = String::new();
        for segment in path.split('/').map(str::trim).filter(|s| !s.is_empty()) {
            let children = client
                .find_folders(&current, &FolderShape::default(), Traversal::Shallow)
                .await
                .map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &describe)))?;
            let names: Vec<String> = children.iter().filter_map(|f| f.display_name.clone()).collect();
            let Some(found) = children.into_iter().find(|f| f.display_name.as_deref() == Some(segment)) else {
                let place = if parent.is_empty() { "the public folder root".to_owned() } else { format!("{parent:?}") };
                let holds = if names.is_empty() {
                    format!("{place} holds no folders this account can see")
                } else {
                    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                    format!("{place} holds {}", quoted.join(", "))
                };
                let guess = crate::names::did_you_mean(segment, names.iter().map(String::as_str))
                    .map(|g| format!("; {g}"))
                    .unwrap_or_default();
                return Err(Error::MissingFolder {
                    operation: "open hub",
                    folder: describe.clone(),
                    message: format!("there is no public folder {segment:?} ({describe}): {holds}{guess}"),
                });
            };
            parent = if parent.is_empty() { segment.to_owned() } else { format!("{parent}/{segment}") };
            current = FolderRef::Id(found.id);
        }
        // A folder found by its path knows its id; the root (an empty path) is named as such.
        let connector = EwsFolderConnector::public_folder(client.clone(), current.clone(), describe)
            .with_options(self.options(&client));
        Ok(ItemFolder::new(Arc::new(connector), client, current))
    }

    /// Opens a public folder by its server id (the hub's folder before its path changed).
    pub async fn open_public_folder_by_id(
        &self,
        connection: &str,
        folder_id: &str,
        describe: String,
    ) -> Result<ItemFolder> {
        let c = self.connection_by_id(connection)?;
        let client = Self::public_client(c);
        let id = Self::existing_folder(&client, folder_id, &describe).await?;
        let folder = FolderRef::Id(FolderId::new(id.id.clone()));
        let connector = EwsFolderConnector::public_folder(client.clone(), folder.clone(), describe)
            .with_options(self.options(&client));
        Ok(ItemFolder::new(Arc::new(connector.with_folder_id(id.id)), client, folder))
    }
}

#[async_trait]
impl FolderProvider for EwsFolders {
    async fn hub(&self, group: &GroupConfig) -> Result<Arc<dyn Connector>> {
        match &group.hub {
            HubFolder::PublicFolder(path) => self.public_folder(group, path).await,
            HubFolder::Mailbox { mailbox, folder } => {
                self.mailbox_folder(&group.connection, mailbox, folder, false).await
            }
        }
    }

    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Arc<dyn Connector>> {
        self.mailbox_folder(group.member_connection(member), &member.mailbox, target, true).await
    }

    async fn existing_member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Option<Arc<dyn Connector>>> {
        let connection = group.member_connection(member);
        Ok(self.find_mailbox_folder(connection, &member.mailbox, target, false).await?.map(|f| f.connector()))
    }

    async fn member_by_folder_id(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        folder_id: &str,
    ) -> Result<Arc<dyn Connector>> {
        let describe = format!("{}/(earlier folder)", member.mailbox);
        let connection = group.member_connection(member);
        Ok(self.open_mailbox_folder_by_id(connection, &member.mailbox, folder_id, describe).await?.connector())
    }

    async fn hub_by_folder_id(&self, group: &GroupConfig, folder_id: &str) -> Result<Arc<dyn Connector>> {
        match &group.hub {
            HubFolder::PublicFolder(_) => Ok(self
                .open_public_folder_by_id(&group.connection, folder_id, "earlier hub (public folder)".to_owned())
                .await?
                .connector()),
            HubFolder::Mailbox { mailbox, .. } => Ok(self
                .open_mailbox_folder_by_id(&group.connection, mailbox, folder_id, format!("{mailbox}/(earlier hub)"))
                .await?
                .connector()),
        }
    }

    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>> {
        let c = self.connection(group)?;
        let mut out = BTreeMap::new();
        let mut visited = BTreeSet::new();
        let mut queue = vec![(address.to_owned(), 0usize)];
        while let Some((dl, depth)) = queue.pop() {
            if !visited.insert(dl.to_lowercase()) || depth > 8 {
                continue;
            }
            let members = c.client.expand_dl(&dl).await.map_err(|e| {
                Error::Sync(exchange_sync_ews::connector::to_core_error(e, &format!("distribution group {dl}")))
            })?;
            for m in members {
                let Some(email) = m.email_address else { continue };
                match m.mailbox_type.as_deref() {
                    Some("PublicDL") | Some("PrivateDL") => queue.push((email, depth + 1)),
                    // One address in several spellings is one mailbox.
                    Some("Mailbox") | None => {
                        out.entry(email.to_lowercase()).or_insert(email);
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(out.into_values().collect())
    }

    async fn check_connection(&self, group: &GroupConfig) -> Result<()> {
        self.hub(group).await.map(|_| ())
    }

    async fn notes(&self, group: &GroupConfig) -> Vec<String> {
        let Ok(c) = self.connection(group) else { return Vec::new() };
        let Some(version) = c.client.server_version() else { return Vec::new() };
        if version.major != Some(8) {
            return Vec::new();
        }
        let build = [version.major, version.minor, version.major_build, version.minor_build]
            .iter()
            .map(|p| p.map_or_else(|| "?".to_owned(), |n| n.to_string()))
            .collect::<Vec<_>>()
            .join(".");
        vec![format!(
            "connection {}: the server is Exchange 2007 (version {build}), which has no streaming notifications: real \
             time uses pull subscriptions, asking each folder for its events every {} ms (service.pull_interval_ms), \
             instead of full polls",
            group.connection,
            self.pull_interval.as_millis()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autodiscover_urls() {
        assert_eq!(
            autodiscover_beside("https://mail.contoso.test/EWS/Exchange.asmx").as_deref(),
            Some("https://mail.contoso.test/autodiscover/autodiscover.svc")
        );
        assert_eq!(
            autodiscover_of_domain("admin@contoso.test").as_deref(),
            Some("https://autodiscover.contoso.test/autodiscover/autodiscover.svc")
        );
        assert_eq!(autodiscover_beside("https://mail.contoso.test/other"), None);
    }
}
