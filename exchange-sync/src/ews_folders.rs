//! The EWS [`FolderProvider`]: connections from the configuration, folders on Exchange.
//!
//! One [`EwsClient`] per configured connection (credentials from their secret sources, TLS
//! options, the public folder mailbox found through Autodiscover for the routing headers that
//! Exchange 2013+ needs). Members are reached through impersonation (or delegate access when the
//! connection says `impersonation = false`); named target folders are created when missing; the
//! hub must exist.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use exchange_sync_core::Connector;
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, EwsClient, EwsError, EwsFolderConnector, FolderRef, FolderShape, Impersonation,
    RetryPolicy, Routing, TokenProvider, TransportConfig,
};

use crate::config::WellKnownFolder;
use crate::config::{Auth, Config, Connection, Endpoint, GroupConfig, HubFolder, MemberConfig, Secret, TargetFolder};
use crate::error::{Error, Result};
use crate::folders::FolderProvider;
use crate::item_folder::ItemFolder;

/// A connection's client and what Autodiscover told about it.
struct ConnectionClient {
    client: EwsClient,
    impersonation: bool,
    public_folder_mailbox: Option<String>,
}

/// Opens folders on Exchange over EWS.
pub struct EwsFolders {
    connections: BTreeMap<String, ConnectionClient>,
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
        Auth::OAuth2 { token } => Credentials::bearer(Arc::new(SecretToken(token.clone()))),
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
        for connection in &config.connections {
            connections.insert(connection.id.clone(), Self::connect_one(connection, retry.clone()).await?);
        }
        Ok(EwsFolders { connections })
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
        group: &GroupConfig,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
    ) -> Result<Arc<dyn Connector>> {
        Ok(self.open_mailbox_folder(&group.connection, mailbox, target, create).await?.connector())
    }

    /// Opens a folder of a mailbox for item operations (see [`ItemFolder`]); a named folder is
    /// created when missing and `create` is set.
    pub async fn open_mailbox_folder(
        &self,
        connection: &str,
        mailbox: &str,
        target: &TargetFolder,
        create: bool,
    ) -> Result<ItemFolder> {
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
        let folder = match target {
            TargetFolder::WellKnown(w) => well_known(*w),
            TargetFolder::Named { parent, name } => {
                let parent_ref = well_known(*parent);
                let children = client
                    .find_folders(&parent_ref, &FolderShape::default(), Traversal::Shallow)
                    .await
                    .map_err(to_error)?;
                match children.into_iter().find(|f| f.display_name.as_deref() == Some(name.as_str())) {
                    Some(found) => FolderRef::Id(found.id),
                    None if create => {
                        let class = match parent {
                            WellKnownFolder::Contacts => "IPF.Contact",
                            WellKnownFolder::Calendar => "IPF.Appointment",
                            WellKnownFolder::Tasks => "IPF.Task",
                            WellKnownFolder::Notes => "IPF.StickyNote",
                        };
                        tracing::info!(folder = %describe, "creating the target folder");
                        FolderRef::Id(client.create_folder(&parent_ref, name, class).await.map_err(to_error)?.id)
                    }
                    None => {
                        return Err(Error::Sync(exchange_sync_core::Error::NotFound {
                            context: Box::new(
                                exchange_sync_core::ErrorContext::operation("open folder").with_folder(describe),
                            ),
                        }));
                    }
                }
            }
        };
        let connector = Arc::new(EwsFolderConnector::mailbox_folder(client.clone(), folder.clone(), describe.clone()));
        Ok(ItemFolder::new(connector, client, folder))
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
        for segment in path.split('/').map(str::trim).filter(|s| !s.is_empty()) {
            let children = client
                .find_folders(&current, &FolderShape::default(), Traversal::Shallow)
                .await
                .map_err(|e| Error::Sync(exchange_sync_ews::connector::to_core_error(e, &describe)))?;
            let Some(found) = children.into_iter().find(|f| f.display_name.as_deref() == Some(segment)) else {
                return Err(Error::Sync(exchange_sync_core::Error::NotFound {
                    context: Box::new(
                        exchange_sync_core::ErrorContext::operation("open hub")
                            .with_folder(format!("{describe} (no folder {segment:?})")),
                    ),
                }));
            };
            current = FolderRef::Id(found.id);
        }
        let connector = Arc::new(EwsFolderConnector::public_folder(client.clone(), current.clone(), describe));
        Ok(ItemFolder::new(connector, client, current))
    }
}

#[async_trait]
impl FolderProvider for EwsFolders {
    async fn hub(&self, group: &GroupConfig) -> Result<Arc<dyn Connector>> {
        match &group.hub {
            HubFolder::PublicFolder(path) => self.public_folder(group, path).await,
            HubFolder::Mailbox { mailbox, folder } => self.mailbox_folder(group, mailbox, folder, false).await,
        }
    }

    async fn member(
        &self,
        group: &GroupConfig,
        member: &MemberConfig,
        target: &TargetFolder,
    ) -> Result<Arc<dyn Connector>> {
        self.mailbox_folder(group, &member.mailbox, target, true).await
    }

    async fn expand_distribution_group(&self, group: &GroupConfig, address: &str) -> Result<Vec<String>> {
        let c = self.connection(group)?;
        let mut out = BTreeSet::new();
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
                    Some("Mailbox") | None => {
                        out.insert(email);
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn check_connection(&self, group: &GroupConfig) -> Result<()> {
        self.hub(group).await.map(|_| ())
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
