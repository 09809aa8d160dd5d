//! Microsoft Graph for exchange-sync: an app-only Graph client and the connectors that present
//! a contact folder or a calendar of an Exchange Online mailbox (a user's or a shared mailbox) to
//! the sync engine, for tenants where EWS is switched off.
//!
//! The crate is layered; each layer only uses the ones listed before it:
//!
//! - [`error`]: [`GraphError`] with [`ErrorKind`] saying what a caller can do about it.
//! - [`auth`]: the OAuth2 client-credentials grant, tokens cached and refreshed, never logged.
//! - [`certificate`]: [`ClientCertificate`], client assertions signed with a certificate's key
//!   (the credential to prefer over a secret).
//! - [`throttle`]: per-mailbox concurrency (4) and the back-off gate.
//! - [`client`]: [`GraphClient`], requests with retries and `$batch` (its docs say who retries what).
//! - [`mapping`]: Graph contacts to and from the core's items, and the origin stamp property,
//!   the same named property as the EWS connector's.
//! - [`connector`]: [`GraphContactsConnector`], the core's `Connector` for a contact folder.
//! - [`directory`]: the mailboxes of a distribution or Microsoft 365 group, for membership.
//! - [`time_zone`]: the Windows time zones events are written in.
//! - [`event_mapping`]: Graph events (series with their exceptions) to and from the core's
//!   calendar items, with the EWS connector's field names and value forms.
//! - [`calendar_connector`]: [`GraphCalendarConnector`], the core's `Connector` for a calendar.
//! - [`subscription`]: [`ChangeNotifications`], real time: subscriptions on folders, their
//!   renewal and lifecycle, and the receiver of Graph's change notifications.
//!
//! ```no_run
//! use exchange_sync_core::Connector;
//! use exchange_sync_graph::{ClientCredentials, GraphClient, GraphContactsConnector, Secret};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credentials = ClientCredentials::public_cloud(
//!     "contoso.onmicrosoft.com",
//!     "00000000-0000-0000-0000-000000000000",
//!     Secret::new(std::env::var("GRAPH_CLIENT_SECRET")?),
//! );
//! let client = GraphClient::builder(credentials).build()?;
//! let hub = GraphContactsConnector::open(client, "contacts@contoso.com", "Company Contacts", false).await?;
//! let first = hub.changes(None).await?;
//! println!("{} changes, more: {}", first.changes.len(), first.more);
//! # Ok(())
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;

pub mod auth;
pub mod certificate;
pub mod throttle;

pub mod client;

pub mod mapping;

pub mod connector;

pub mod directory;
pub mod time_zone;

pub mod event_mapping;

pub mod calendar_connector;

pub mod subscription;

pub use auth::{ClientCredentials, Secret};
pub use calendar_connector::{CalendarFolder, GraphCalendarConnector};
pub use certificate::{CertificateError, ClientCertificate};
pub use client::{ContactFolder, GraphClient, GraphClientBuilder, GraphRequest, GraphResponse, RetryPolicy};
pub use connector::{ConnectorOptions, GraphContactsConnector};
pub use error::{ErrorContext, ErrorKind, GraphError, Result};
pub use subscription::{ChangeNotifications, NotificationSettings};
