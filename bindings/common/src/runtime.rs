//! The tokio runtime the bindings own, the two ways a caller waits on it, and how it ends.
//!
//! Every future of a binding runs on one multi-threaded runtime created on first use. Blocking
//! calls ([`block_on`]) run a future to completion on the calling thread; async calls
//! ([`spawn`]) run it as a task of the runtime, and the language awaits the task without blocking
//! a thread (dropping the awaiting future aborts the task).
//!
//! Runtime threads call into the language (they deliver progress events and log records, and
//! complete awaitables), and a foreign runtime such as Mono does not exit while such threads
//! live. So the runtime is not left to the end of the process: [`shutdown`] stops every task and
//! joins every runtime thread, and so does dropping the last [`RuntimeUser`]. A later call
//! starts a new runtime.
//!
//! A blocking call made from a runtime thread (a callback calling a blocking method) would wait
//! for the thread it runs on: [`block_on`] refuses it with a usage error instead (the re-entry
//! guard), and so does [`shutdown`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use crate::error::{BindingError, Result};

/// The runtime, while it lives.
static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// How many objects that need the runtime between calls (services, folders, emulators) live.
static USERS: AtomicUsize = AtomicUsize::new(0);

/// How long a shutdown waits for tasks to notice that they were stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The runtime's handle, starting the runtime when none runs.
pub fn handle() -> Result<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rt) = slot.as_ref() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("exchange-sync")
        .enable_all()
        .build()
        .map_err(|e| BindingError::usage(format!("cannot start the async runtime: {e}")))?;
    let handle = rt.handle().clone();
    *slot = Some(rt);
    Ok(handle)
}

/// Whether the runtime is running (tests check that releasing the last object ended it).
pub fn is_running() -> bool {
    RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).is_some()
}

/// Fails with a usage error when called from a runtime thread, where waiting would deadlock.
pub fn refuse_runtime_thread(what: &str) -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(BindingError::usage(format!(
            "{what} was made from a callback (a runtime thread); use the *_async method (Python) or the \
             ...Async method (.NET)"
        )));
    }
    Ok(())
}

/// Runs `future` to completion on the calling thread, with the runtime's context; refused on a
/// runtime thread (see the module's documentation).
pub fn block_on<F, T>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    refuse_runtime_thread("a blocking exchange-sync call")?;
    handle()?.block_on(future)
}

/// Aborts a runtime task when the future awaiting it is dropped (a cancelled awaitable).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` as a task of the runtime and awaits it from whatever polls the returned future
/// (the language's executor); dropping the returned future aborts the task.
pub async fn spawn<F, T>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = AbortOnDrop(handle()?.spawn(future));
    joined(&mut task.0).await?
}

/// The output of a runtime task, or a usage error when it was cancelled or panicked.
pub async fn joined<T>(task: &mut tokio::task::JoinHandle<T>) -> Result<T> {
    match task.await {
        Ok(output) => Ok(output),
        Err(e) if e.is_cancelled() => Err(BindingError::usage("the call was cancelled: the runtime shut down")),
        Err(e) => Err(BindingError::usage(format!("the call failed: {e}"))),
    }
}

/// Stops the runtime: every task is dropped (a real-time service stops without its graceful
/// shutdown) and every runtime thread is joined, so that no thread of this library is left
/// running in the process. Idempotent; the next call that needs the runtime starts a new one.
pub fn shutdown() -> Result<()> {
    refuse_runtime_thread("a runtime shutdown")?;
    let rt = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(rt) = rt {
        rt.shutdown_timeout(SHUTDOWN_WAIT);
    }
    Ok(())
}

/// Marks an object that needs the runtime between calls; dropping the last one shuts the
/// runtime down (in the background when dropped on a runtime thread).
#[derive(Debug)]
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
            // A runtime cannot join its own threads from one of them: it stops by itself.
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
        shutdown().unwrap();
        assert!(!is_running());
        assert_eq!(block_on(async { Ok(7) }).unwrap(), 7);
        assert!(is_running());
    }
}
