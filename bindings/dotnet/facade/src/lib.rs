//! # exchange-sync for .NET
//!
//! The uniffi facade that the generated C# bindings (namespace `ExchangeSync`) load: the Rust
//! service API shaped for C# and PowerShell, with plain records for data, objects for things
//! that live (a service, an open folder, an emulator), a callback interface for progress and
//! logging, and one documented exception type.
//!
//! - [`config`]: `Configuration`, from TOML text or a file, or built from records in code.
//! - [`service`]: `SyncService`: run once, plan, run in real time (start / stop), status, conflicts.
//! - [`reports`]: run, group and member reports, status, conflict entries.
//! - [`events`]: progress events and the `ProgressListener` callback interface.
//! - [`items`]: `Folder` and `Item`: list, get, create, update and delete items as a user would.
//! - [`errors`]: `ExchangeSyncError` (C# `ExchangeSyncException`), the flat set of failures.
//! - [`logging`]: Rust `tracing` events forwarded to a C# `LogListener`.
//! - [`testing`]: `TestEmulator`, the EWS emulator in process with the demo tenant.
//! - [`runtime`]: the tokio runtime the facade owns, and how it ends so the process can exit.

// The error's variants carry their context by value: that shape is the FFI contract (uniffi lowers
// records by value, a `Box` is no FFI type), and errors are rare next to the network calls.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod errors;
pub mod events;
pub mod items;
pub mod logging;
pub mod reports;
pub mod runtime;
pub mod service;
pub mod testing;

uniffi::setup_scaffolding!("exchange_sync");
