//! # exchange_sync for Python
//!
//! The native module `exchange_sync._native` behind the Python package `exchange_sync`: the
//! Python shape of what `exchange-sync-bindings` does for both languages (connecting, the
//! runtime, the event pump, errors, records). The package's `__init__.py` re-exports it and
//! `_native.pyi` types it.
//!
//! - [`config`]: configuration classes built from keyword arguments or a TOML file.
//! - [`service`]: `SyncService` (run once, run until stopped, plan, status, conflicts) and the
//!   event stream.
//! - [`reports`]: run, group and member reports, status, conflict entries, progress events.
//! - [`items`]: `EwsFolders`, `Folder`, `Item`: item scripting on mailbox and public folders.
//! - [`errors`]: the exception hierarchy, carrying the Rust error's context.
//! - [`logging`]: Rust `tracing` forwarded to Python `logging`.
//! - `testing` (feature `testing`): the EWS emulator in process.
//! - [`runtime`]: blocking calls without the GIL, awaitables.
//! - `class`: Python classes whose attributes read a neutral record.

mod class;
pub mod config;
pub mod errors;
pub mod items;
pub mod logging;
pub mod reports;
pub mod runtime;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;

use pyo3::prelude::*;

/// The native part of `exchange_sync` (import `exchange_sync`, not this module).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    runtime::keep_alive();
    errors::register(m)?;
    config::register(m)?;
    reports::register(m)?;
    items::register(m)?;
    service::register(m)?;
    #[cfg(feature = "testing")]
    testing::register(m)?;
    logging::register(m)?;
    Ok(())
}
