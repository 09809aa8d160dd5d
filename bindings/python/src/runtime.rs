//! How Python waits on the bindings' runtime (`exchange_sync_bindings::runtime`).
//!
//! Blocking calls release the GIL while they wait ([`block_on`]): other Python threads keep
//! running during a long sync. Awaitables ([`awaitable`]) run the work as a runtime task and
//! complete an asyncio future from it, never blocking the event loop. A blocking call from a
//! runtime thread (a progress callback) is refused with a `RuntimeError` instead of deadlocking.

use std::future::Future;

use exchange_sync_bindings::runtime::{self, RuntimeUser};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// Keeps the runtime for the life of the interpreter: Python objects come and go without
/// counting as runtime users, so the runtime must not stop when the last counted one goes.
pub fn keep_alive() {
    std::mem::forget(RuntimeUser::new());
}

/// Runs `future` to completion on the runtime with the GIL released.
pub fn block_on<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = exchange_sync_bindings::Result<T>> + Send,
    T: Send,
{
    py.allow_threads(|| runtime::block_on(future)).map_err(to_pyerr)
}

/// An asyncio awaitable completing with `future`'s result; `future` runs on the runtime.
pub fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = exchange_sync_bindings::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { runtime::spawn(future).await.map_err(to_pyerr) })
}
