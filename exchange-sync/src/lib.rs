//! # exchange-sync
//!
//! Sync groups over Exchange folders, as an admin runs them: a shared (public) folder kept in
//! sync with many users' mailbox folders, configured in a file or in code, observable and safe.
//!
//! - [`service`]: the [`SyncService`] running many groups in real time; [`folders`]: where its
//!   connectors come from; [`ews_folders`]: those folders on Exchange over EWS; [`membership`]:
//!   members from distribution groups, and leavers; [`status`]: what `status` shows.
//! - [`item_folder`]: one folder opened for scripted item operations (list, create, update, delete).
//! - [`config`]: connections, groups and service settings; the TOML format and its validation.
//! - [`filter`], [`modification`], [`delivery`]: what one-way members receive.
//! - [`report`]: structured results per run, group and member; [`event`]: progress events, with
//!   [`write_progress`] counting a pass's writes as they complete;
//!   [`conflict_log`]: the readable conflict log.
//! - [`backoff`]: retry delays; [`cli`]: the admin CLI `exchange-sync` and its exit codes, with
//!   [`progress_display`]: its progress lines and bars.
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
pub mod cli;
pub mod config;
pub mod conflict_log;
pub mod delivery;
pub mod error;
pub mod event;
pub mod ews_folders;
pub mod filter;
pub mod folders;
pub mod item_folder;
pub mod membership;
pub mod modification;
pub mod progress_display;
pub mod report;
pub mod service;
pub mod status;
pub mod write_progress;

pub use config::{Config, ConfigError, GroupConfig, MemberConfig};
pub use conflict_log::ConflictEntry;
pub use delivery::{Delivery, DeliveryRule};
pub use error::{Error, Result};
pub use event::{ProgressEvent, Trigger};
pub use ews_folders::EwsFolders;
pub use filter::{Condition, FieldTest};
pub use folders::FolderProvider;
pub use item_folder::{FolderItem, FolderSummary, ItemFolder};
pub use modification::Modification;
pub use report::{ErrorReport, GroupReport, MemberReport, PassOutcome, RunReport};
pub use service::{RunOptions, SyncService};
pub use status::{GroupStatus, MemberStatusReport};
