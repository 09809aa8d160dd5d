//! # exchange-sync
//!
//! Sync groups over Exchange folders, as an admin runs them: a shared (public) folder kept in
//! sync with many users' mailbox folders, configured in a file or in code, observable and safe.
//!
//! - [`config`]: connections, groups and service settings; the TOML format and its validation.
//! - [`filter`], [`modification`], [`delivery`]: what one-way members receive.
//! - [`report`]: structured results per run, group and member; [`event`]: progress events;
//!   [`conflict_log`]: the readable conflict log.
//! - [`error`]: the error type, with a kind that says whether to retry.

pub mod config;
pub mod delivery;
pub mod filter;
pub mod modification;

pub use config::{Config, ConfigError, GroupConfig, MemberConfig};
pub use delivery::{Delivery, DeliveryRule};
pub use filter::{Condition, FieldTest};
pub use modification::Modification;
