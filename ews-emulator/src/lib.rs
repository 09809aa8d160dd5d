//! An in-memory Exchange server that speaks EWS (SOAP 1.1 over HTTP/1.1), for tests, demos and
//! benchmarks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ews_emulator::EmulatorError> {
//! let emu = ews_emulator::Emulator::start(ews_emulator::EmulatorConfig::default()).await?;
//! println!("EWS endpoint: {}", emu.url());
//! // Inspect a folder, or edit an item the way a phone would:
//! let contacts = emu.store().items_in("publicfolders@contoso.test", "Company Contacts");
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The demo tenant (see [`tenant`]) is a stable contract: domain `contoso.test`, users alice,
//! bob, carol, dave and `sync-admin` (impersonation over every mailbox, owner of the public
//! folders), password `exchange-sync`, public folders `Company Contacts` and `Company
//! Calendar`, group `sales@contoso.test`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

// Configuration and lifecycle: the public API.
pub mod config;
pub mod emulator;
pub mod error;

// The data: tenant, store, notifications, what the store derives, recurring series.
pub mod calendar;
pub mod derived;
pub mod notifications;
pub mod store;
pub mod tenant;

// EWS: envelopes, XML, properties, rendering, operations.
pub mod operations;
pub mod property_path;
pub mod render;
pub mod response_code;
pub mod restriction;
pub mod schema_order;
pub mod soap;
pub mod xml;

// Serving: HTTP, authentication (Basic, NTLM), autodiscover, throttling, traces.
pub mod auth;
pub mod autodiscover;
pub mod ledger;
pub mod negotiate;
pub mod ntlm;
mod server;
pub mod throttle;
pub mod tls;
pub mod trace;

pub use config::{EmulatorConfig, ExtendedProtection, Fault, FaultRates, ServerVersion};
pub use emulator::{Emulator, RequestStats, RunningEmulator};
pub use error::{EmulatorError, ErrorKind};
pub use ledger::{BackOffAnswer, LoggedRequest, MailboxAccess, MailboxThrottle};
pub use store::{Item, ItemView, Permission, Store};
