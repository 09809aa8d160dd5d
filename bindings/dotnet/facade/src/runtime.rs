//! The runtime the facade's calls run on (`exchange_sync_bindings::runtime`), as C# calls it.
//!
//! Runtime threads call into .NET (they wake awaiting tasks, deliver progress events and log
//! records), and Mono does not exit while such threads live: `ShutdownRuntime()` (also called by
//! the bindings' `AppDomain.ProcessExit` handler, and run when the last `SyncService`, `Folder`
//! or `TestEmulator` is disposed or finalized) stops every task and joins every runtime thread.

use std::future::Future;

use exchange_sync_bindings::runtime;

use crate::errors::Result;

/// Whether the runtime is running (tests check that disposing the last object ended it).
#[uniffi::export]
pub fn runtime_is_running() -> bool {
    runtime::is_running()
}

/// Stops the runtime: every task is dropped (a real-time service stops without its graceful
/// shutdown; call `SyncService.Stop()` first for that) and every runtime thread is joined.
/// Idempotent; the next call that needs the runtime starts a new one. Fails with `Usage` when
/// called from a runtime thread (a callback).
#[uniffi::export]
pub fn shutdown_runtime() -> Result<()> {
    Ok(runtime::shutdown()?)
}

/// Runs `future` to completion on the calling .NET thread.
pub fn block_on<T>(future: impl Future<Output = exchange_sync_bindings::Result<T>>) -> Result<T> {
    Ok(runtime::block_on(future)?)
}

/// Runs `future` as a runtime task that the generated C# awaits; a cancelled C# task aborts it.
pub async fn spawn<T: Send + 'static>(
    future: impl Future<Output = exchange_sync_bindings::Result<T>> + Send + 'static,
) -> Result<T> {
    Ok(runtime::spawn(future).await?)
}
