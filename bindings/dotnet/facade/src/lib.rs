//! # exchange-sync for .NET
//!
//! The uniffi facade that the generated C# bindings (namespace `ExchangeSync`) load: the C#
//! shape of what `exchange-sync-bindings` does for both languages (connecting, the runtime, the
//! event pump, errors, records), with plain records for data, objects for things that live (a
//! service, an open folder, an emulator), callback interfaces for progress and logging, and one
//! documented exception type.
//!
//! - [`config`]: `Configuration`, from TOML text or a file, or built from records in code.
//! - [`service`]: `SyncService`: run once, plan, run in real time (start / stop), status, conflicts.
//! - [`events`]: the `ProgressListener` callback interface that receives progress events.
//! - [`items`]: `Folder`: list, get, create, update and delete items as a user would (the item
//!   records are `exchange_sync_bindings::item_records`, exported as they are).
//! - [`errors`]: `ExchangeSyncError` (C# `ExchangeSyncException`), one variant per error kind,
//!   and `ThrowIfFailed` for a run's report.
//! - [`logging`]: Rust `tracing` events forwarded to a C# `LogListener`.
//! - `testing` (feature `testing`): `TestEmulator`, the EWS emulator in process.
//! - [`runtime`]: the runtime's shutdown, so the process can exit.

// The error's variants carry their context by value: that shape is the FFI contract (uniffi lowers
// records by value, a `Box` is no FFI type), and errors are rare next to the network calls.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod errors;
pub mod events;
pub mod items;
pub mod logging;
pub mod runtime;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;

uniffi::setup_scaffolding!("exchange_sync");
