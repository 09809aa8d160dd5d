//! # exchange-sync-bindings
//!
//! What the Python (`bindings/python`, pyo3) and .NET (`bindings/dotnet/facade`, uniffi)
//! bindings share, written once and free of either language: each binding adds only its
//! language's attributes and idioms (exception classes, awaitables, callbacks, naming).
//!
//! - [`service`]: connecting, the service held by a binding object, its background run;
//!   [`folders`]: the folders of a configuration's connections for item scripting, and the one
//!   way to read a target folder argument.
//! - [`runtime`]: the tokio runtime, blocking and spawned calls, the re-entry guard, shutdown.
//! - [`events`]: the event pump that feeds a callback while an operation runs, and the stream
//!   that hands events out one at a time.
//! - [`config`]: configuration parts from keyword arguments or record fields, through the TOML
//!   file format's serde path, and the validated configuration with its warnings;
//!   [`settings`]: the configuration records code builds (connections, groups, members, service
//!   options), read through those parts.
//! - [`error`]: the error kind (the core's, as an enum) with retryability, message and context.
//! - [`records`]: reports, status, conflicts, progress events and folders, as both hand them over.
//! - [`items`]: item kinds by name, new items, and the edit `update` applies;
//!   [`item_records`]: items, their field values and edits as records, converted to the core's model.
//! - [`logging`]: `tracing` events forwarded to a language's logging.
//! - `testing` (feature `testing`): the EWS emulator in process.

pub mod config;
pub mod error;
pub mod events;
pub mod folders;
pub mod item_records;
pub mod items;
pub mod logging;
pub mod records;
pub mod runtime;
pub mod service;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("exchange_sync_bindings");

pub use error::{BindingError, Diagnostic, ErrorContext, ErrorInfo, ErrorKind, Result};
