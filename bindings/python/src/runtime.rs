//! The tokio runtime the module holds, and the two ways Python waits on it.
//!
//! Every Rust future runs on one multi-threaded runtime shared with `pyo3-async-runtimes`, so
//! blocking calls and awaitables see the same service. Blocking calls release the GIL while they
//! wait ([`block_on`]): other Python threads keep running during a long sync. Awaitables
//! ([`awaitable`]) complete an asyncio future from the runtime and never block the event loop.

use std::future::Future;

use pyo3::prelude::*;

use crate::errors::BindingError;

/// The runtime (created on first use, shared with the asyncio bridge).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `future` to completion on the module's runtime with the GIL released.
///
/// Called from a thread of the runtime itself (a progress callback that calls a blocking method)
/// it fails instead of deadlocking: such code must use the `*_async` methods.
pub fn block_on<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = Result<T, BindingError>> + Send,
    T: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(BindingError::Usage(
            "a blocking exchange_sync call was made from inside the runtime (a callback); use the *_async method"
                .into(),
        )
        .into());
    }
    py.allow_threads(|| runtime().block_on(future)).map_err(PyErr::from)
}

/// An asyncio awaitable completing with `future`'s result; `future` runs on the module's runtime.
pub fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, BindingError>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { future.await.map_err(PyErr::from) })
}
