//! # exchange-sync
//!
//! Sync groups over Exchange folders, as an admin runs them: a shared (public) folder kept in
//! sync with many users' mailbox folders, configured in a file or in code, observable and safe.
//!
//! - [`service`]: the [`SyncService`] running many groups in real time, re-homing folders whose
//!   target moved and carrying out admin requests posted through the state; [`folders`]: where
//!   its connectors come from (opened without creating for dry runs, or by server id);
//!   [`ews_folders`]: those folders on Exchange over EWS; [`graph_folders`]: mailbox contact
//!   folders on Exchange Online over Microsoft Graph; [`connection_folders`]: each group's
//!   folders through the provider of its connection; [`membership`]: members from
//!   distribution groups, joiners and leavers, mailbox addresses without regard to case;
//!   [`status`]: what `status` and `check` show.
//! - [`item_folder`]: one folder opened for scripted item operations (list, create, update, delete).
//! - [`config`]: connections, groups and service settings; the TOML format and its validation.
//! - [`filter`], [`modification`], [`delivery`]: what one-way members receive.
//! - [`report`]: structured results per run, group and member; [`event`]: progress events, with
//!   [`write_progress`] counting a pass's writes as they complete;
//!   [`conflict_log`]: the readable conflict log.
//! - [`backoff`]: retry delays.
//! - `cli` (feature `cli`, on by default): the admin CLI `exchange-sync` and its exit codes, with
//!   `progress_display`: its progress lines and bars, and `logging`: its log (stderr, a file with
//!   rotation). Programs that embed the library turn the default features off.
//! - [`http`]: the service's status page, JSON API, `/metrics` ([`metrics`]) and `/healthz`.
//! - [`names`]: items, folders and field changes named as a person names them; [`hints`]: what
//!   an admin can do about an error.
//! - [`error`]: the error type, with a kind that says whether to retry.
//!
//! ```no_run
//! # async fn run() -> exchange_sync::Result<()> {
//! use exchange_sync::{Config, RunOptions, SyncService};
//!
//! let config = Config::load("exchange-sync.toml")?.config;
//! let service = SyncService::connect(config).await?;
//! let report = service.run_once(RunOptions::default()).await?;
//! for group in &report.groups {
//!     println!("{group}");
//! }
//! // Or in real time until Ctrl-C:
//! service.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

pub mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod conflict_log;
pub mod connection_folders;
pub mod delivery;
pub mod error;
pub mod event;
pub mod ews_folders;
pub mod filter;
pub mod folders;
pub mod graph_folders;
pub mod hints;
pub mod http;
pub mod item_folder;
#[cfg(feature = "cli")]
pub mod logging;
pub mod membership;
pub mod metrics;
mod missing_folder;
pub mod modification;
pub mod names;
#[cfg(feature = "cli")]
pub mod progress_display;
pub mod report;
pub mod service;
pub mod status;
pub mod write_progress;

pub use config::{Config, ConfigError, GroupConfig, MemberConfig};
pub use conflict_log::ConflictEntry;
pub use connection_folders::ConnectionFolders;
pub use delivery::{Delivery, DeliveryRule};
pub use error::{Error, Result};
pub use event::{ProgressEvent, Trigger};
pub use ews_folders::EwsFolders;
pub use filter::{Condition, FieldTest};
pub use folders::FolderProvider;
pub use graph_folders::GraphFolders;
pub use item_folder::{FolderItem, FolderSummary, ItemFolder};
pub use modification::Modification;
pub use report::{ErrorReport, GroupReport, GuardStop, MemberReport, PassOutcome, RunReport};
pub use service::{REQUEST_POLL_INTERVAL, RunOptions, SyncService};
pub use status::{EntityView, FolderCheck, GroupCheck, GroupStatus, MemberStatusReport};
