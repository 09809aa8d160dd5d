//! Exchange Web Services (EWS) for exchange-sync: a complete, hardened SOAP client, and the
//! connectors that present mailbox folders and public folders to the sync engine.
//!
//! The crate is layered; each layer only uses the ones listed before it:
//!
//! - `xml`, [`soap`]: hardened parsing (no DTDs, bounded size and depth, any prefixes) and
//!   schema-ordered writing of envelopes.
//! - [`ids`], [`property`], [`item`], [`folder`], [`notification`], [`version`]: the EWS data model.
//! - [`operation`]: every operation as a pure request builder and response parser.
//! - [`auth`], `ntlm`, [`transport`], [`throttle`]: HTTP with TLS, credentials (Basic, NTLMv2,
//!   OAuth2), retries, adaptive concurrency.
//! - [`client`]: [`EwsClient`], one async method per operation; [`streaming`] and [`autodiscover`];
//!   `stream_pool`: many streaming subscriptions on few connections, grouped by mailbox server.
//! - [`mapping`]: EWS items to and from the core's normalized items.
//! - [`connector`]: [`EwsFolderConnector`], the core's `Connector` for mailbox and public folders,
//!   with [`watch`] turning notifications into change hints. Its deletes check the version
//!   before and the deleted content after (Exchange's DeleteItem ignores change keys), and it
//!   resolves creates the server confirmed without an id by origin stamp (see its docs).
//! - [`error`]: [`EwsError`] with [`ErrorKind`] saying what a caller can do about it.
//!
//! # Retries and limits
//!
//! The client owns the retries of every request: it honours the server's back-off in full and per
//! mailbox, waits inside a call only up to [`RetryPolicy::max_inline_wait`] (30 s) and otherwise
//! returns the throttling error with the remaining delay at once, never retries at once, and fails
//! fast on permanent errors. Errors leaving it have had their retries, and
//! [`connector::to_core_error`] marks them exhausted so that no layer above retries them again.
//! Bodies, pages and listings are bounded while they are read. The [`client`] module documents
//! who retries what, and every limit with its default.
//!
//! # Using the client on its own
//!
//! ```no_run
//! use exchange_sync_ews::{Credentials, DistinguishedFolder, EwsClient, FolderRef, Impersonation, ItemShape};
//!
//! # async fn run() -> Result<(), exchange_sync_ews::EwsError> {
//! let client = EwsClient::builder("https://mail.contoso.test/EWS/Exchange.asmx")
//!     // NTLMv2, the usual on premises; `Credentials::basic` and `Credentials::bearer` work alike.
//!     .credentials(Credentials::ntlm("CONTOSO\\sync-admin", "secret"))
//!     .build()?;
//! // Act as alice (needs the ApplicationImpersonation role) and list her contacts.
//! let alice = client.impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()));
//! let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
//! for item in alice.find_all_items(&contacts, &ItemShape::default()).await? {
//!     println!("{:?} {:?}", item.id(), item.text("DisplayName"));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # A public folder as a sync connector
//!
//! ```no_run
//! use exchange_sync_core::Connector;
//! use exchange_sync_ews::{Credentials, DistinguishedFolder, EwsClient, EwsFolderConnector, FolderRef, Routing};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = EwsClient::builder("https://mail.contoso.test/EWS/Exchange.asmx")
//!     .credentials(Credentials::basic("sync-admin@contoso.test", "secret"))
//!     .build()?
//!     // Exchange 2013+ routes public folder requests by these headers (see `autodiscover`).
//!     .with_routing(Routing { public_folder_mailbox: Some("publicfolders@contoso.test".into()), ..Default::default() });
//! let root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
//! let folder = client.folder_by_path(&root, "Company Contacts").await?;
//! let hub = EwsFolderConnector::public_folder(client, FolderRef::Id(folder.id), "Public/Company Contacts");
//! let first_page = hub.list(None).await?;
//! println!("{} items", first_page.items.len());
//! // The folder's identity, recorded by the engine: known from the id it was opened with. A
//! // distinguished folder (a mailbox's `contacts`) is resolved with `with_resolved_folder_id`.
//! assert!(hub.folder_id().is_some());
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod soap;
mod xml;

pub mod folder;
pub mod ids;
pub mod item;
pub mod notification;
pub mod property;
pub mod version;

mod id_scan;
pub mod operation;

pub mod auth;
mod negotiate;
mod ntlm;
pub mod throttle;
mod time_zone;
pub mod transport;

pub mod autodiscover;
pub mod client;
mod stream_pool;
pub mod streaming;

pub mod mapping;
mod rendered;

pub mod connector;
pub mod watch;

pub use auth::{Credentials, TokenProvider};
pub use client::{EwsClient, EwsClientBuilder, RetryPolicy};
pub use connector::{ConnectorOptions, EwsFolderConnector};
pub use error::{ErrorContext, ErrorKind, EwsError, Result, UnreachableCause};
pub use folder::Folder;
pub use ids::{DistinguishedFolder, FolderId, FolderRef, ItemId};
pub use item::{EwsItem, Field, FieldUpdate, FieldValue, ItemChange, ItemDraft, ItemType};
pub use notification::{Event, EventKind, Notification};
pub use property::{BaseShape, BodyType, ExtendedFieldUri, FolderShape, ItemShape, PropertyPath};
pub use rendered::RenderedItem;
pub use soap::{Impersonation, ServerVersionInfo};
pub use stream_pool::MAX_SUBSCRIPTIONS_PER_CONNECTION;
pub use transport::{Routing, TransportConfig};
pub use version::ExchangeVersion;
pub use xml::{Element, ParseLimits};

/// Parsers that the client uses internally, reachable for fuzzing and for the response-parsing
/// example only (feature `internals`): they carry no stability promise and are not part of the
/// client's API.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::id_scan::{ScannedIds, scan_item_ids};
    pub use crate::ntlm::{Binding, authenticate_message, parse_challenge};
}
