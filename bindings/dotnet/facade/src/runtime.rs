//! The tokio runtime the facade owns, the two ways C# waits on it, and how it ends.
//!
//! Every Rust future of the facade runs on one multi-threaded runtime created on first use.
//! Blocking calls ([`block_on`]) run a future to completion on the calling .NET thread; async
//! calls ([`spawn`]) run it as a task of the runtime, and the generated C# awaits the task's
//! completion without blocking a thread (dropping the C# side's future, when its
//! `CancellationToken` fires, aborts the task).
//!
//! Runtime worker threads call into .NET (they wake awaiting tasks, deliver progress events and
//! log records), and a runtime attached to the managed runtime that way keeps Mono from exiting
//! while its threads live. So the runtime is not left to the end of the process:
//! [`shutdown_runtime`] (C# `ExchangeSyncFunctions.ShutdownRuntime()`, also called by the
//! bindings' `AppDomain.ProcessExit` handler and when the last `SyncService`, `Folder` or
//! `TestEmulator` is disposed or finalized) stops every task and joins every runtime thread.
//! A later call creates a new runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use crate::errors::ExchangeSyncError;

/// The runtime, while it lives.
static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// How many objects that need the runtime between calls (services, emulators) are alive.
static USERS: AtomicUsize = AtomicUsize::new(0);

/// How long a shutdown waits for tasks to notice that they were stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

fn build() -> Result<Runtime, ExchangeSyncError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("exchange-sync")
        .enable_all()
        .build()
        .map_err(|e| ExchangeSyncError::usage(format!("cannot start the async runtime: {e}")))
}

/// The runtime's handle, starting the runtime when none runs.
pub fn handle() -> Result<Handle, ExchangeSyncError> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rt) = slot.as_ref() {
        return Ok(rt.handle().clone());
    }
    let rt = build()?;
    let handle = rt.handle().clone();
    *slot = Some(rt);
    Ok(handle)
}

/// Whether the runtime is running (tests check that disposing the last object ended it).
#[uniffi::export]
pub fn runtime_is_running() -> bool {
    RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// Runs `future` to completion on the calling thread, with the runtime's context.
///
/// Called from a runtime thread (a progress or log callback calling a blocking method) it fails
/// instead of deadlocking: such code must use the `...Async` methods.
pub fn block_on<F, T>(future: F) -> Result<T, ExchangeSyncError>
where
    F: Future<Output = Result<T, ExchangeSyncError>>,
{
    if Handle::try_current().is_ok() {
        return Err(ExchangeSyncError::usage(
            "a blocking exchange-sync call was made from a callback (a runtime thread); use the ...Async method",
        ));
    }
    handle()?.block_on(future)
}

/// Aborts a runtime task when the future awaiting it is dropped (a cancelled C# task).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` as a task of the runtime and awaits it from whatever polls the returned future
/// (uniffi's foreign executor); dropping the returned future aborts the task.
pub async fn spawn<F, T>(future: F) -> Result<T, ExchangeSyncError>
where
    F: Future<Output = Result<T, ExchangeSyncError>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = AbortOnDrop(handle()?.spawn(future));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(ExchangeSyncError::usage("the call was cancelled: the runtime shut down")),
        Err(e) => Err(ExchangeSyncError::usage(format!("the call failed: {e}"))),
    }
}

/// Stops the runtime: every task is dropped (a real-time service stops without its graceful
/// shutdown; call `SyncService.Stop()` first for that) and every runtime thread is joined, so that
/// no thread of this library is left running in the process. Idempotent; the next call that
/// needs the runtime starts a new one.
///
/// Fails with `Usage` when called from a runtime thread (a callback).
#[uniffi::export]
pub fn shutdown_runtime() -> Result<(), ExchangeSyncError> {
    if Handle::try_current().is_ok() {
        return Err(ExchangeSyncError::usage(
            "the runtime cannot be shut down from one of its own threads (a callback)",
        ));
    }
    let rt = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(rt) = rt {
        rt.shutdown_timeout(SHUTDOWN_WAIT);
    }
    Ok(())
}

/// Marks an object that needs the runtime between calls; dropping the last one shuts the
/// runtime down (from a thread of its own when dropped on a runtime thread).
pub struct RuntimeUser(());

impl RuntimeUser {
    /// Counts one more user.
    pub fn new() -> Self {
        // Counted under the runtime's lock, so that a concurrent last drop cannot shut down the
        // runtime this object is about to use.
        let _slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
        USERS.fetch_add(1, Ordering::SeqCst);
        RuntimeUser(())
    }
}

impl Default for RuntimeUser {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RuntimeUser {
    fn drop(&mut self) {
        let rt = {
            let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
            if USERS.fetch_sub(1, Ordering::SeqCst) != 1 {
                return;
            }
            slot.take()
        };
        let Some(rt) = rt else { return };
        if Handle::try_current().is_ok() {
            // On a runtime thread (the last reference went away inside a task): a runtime cannot
            // join its own threads from one of them, so it is left to stop by itself.
            rt.shutdown_background();
        } else {
            rt.shutdown_timeout(SHUTDOWN_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_runs_refuses_runtime_threads_and_restarts_after_a_shutdown() {
        assert_eq!(block_on(async { Ok(41 + 1) }).unwrap(), 42);
        let refused = block_on(async { Ok(spawn(async { Ok(block_on(async { Ok(()) }).is_err()) }).await) }).unwrap();
        assert!(refused.unwrap());
        shutdown_runtime().unwrap();
        assert!(!runtime_is_running());
        assert_eq!(block_on(async { Ok(7) }).unwrap(), 7);
        assert!(runtime_is_running());
    }
}
