//! The service from Python: `SyncService`, with the Rust service's operations (run once, run
//! until stopped, dry-run plan, status, conflicts), progress callbacks and an event stream.
//!
//! Blocking methods release the GIL while they wait and deliver progress callbacks on the calling
//! thread; `*_async` methods return awaitables. `run()` blocks until `shutdown()` is called
//! (from another thread or a callback) or Ctrl-C; `start()` runs the service in the background
//! until `stop()`.

use std::time::Duration;

use exchange_sync::RunOptions;
use exchange_sync_bindings::events::{EventPump, EventSink, EventStream as Stream};
use exchange_sync_bindings::runtime::{self, handle, joined};
use exchange_sync_bindings::service::{self as svc, Service};
use exchange_sync_bindings::{BindingError, records};
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

use crate::config::Config;
use crate::errors::to_pyerr;
use crate::items::EwsFolders;
use crate::reports::{ConflictEntry, GroupStatus, ProgressEvent, RunReport};
use crate::runtime::{awaitable, block_on};

/// The pump's sink: a Python callback. Its first exception is kept (and raised when the
/// operation ends); later events are not delivered.
struct Callback {
    callback: PyObject,
    error: Option<PyErr>,
}

impl EventSink for Callback {
    fn deliver(&mut self, event: records::ProgressEvent) {
        if self.error.is_some() {
            return;
        }
        Python::with_gil(|py| {
            if let Err(e) = self.callback.call1(py, (ProgressEvent::from(event),)) {
                self.error = Some(e);
            }
        });
    }
}

fn pump(service: &exchange_sync::SyncService, on_event: Option<PyObject>) -> EventPump<Callback> {
    EventPump::new(service.subscribe(), on_event.map(|callback| Callback { callback, error: None }))
}

/// The operation's result, or the callback's exception if it raised one.
fn finish<T>(pump: EventPump<Callback>, result: exchange_sync_bindings::Result<T>) -> PyResult<T> {
    let value = result.map_err(to_pyerr)?;
    match pump.sink.and_then(|c| c.error) {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

fn options(groups: Option<Vec<String>>, allow_mass_delete: bool) -> RunOptions {
    RunOptions { groups: groups.unwrap_or_default(), allow_mass_delete }
}

fn service_failed(e: exchange_sync::Error) -> PyErr {
    to_pyerr(BindingError::from(e))
}

/// Runs sync groups: the Rust `SyncService`.
///
/// `SyncService(config)` connects (blocking; `await SyncService.connect_async(config)` does not
/// block) and opens the state store the configuration names. Every method that talks to servers
/// has a blocking form and an `*_async` form.
#[pyclass(module = "exchange_sync", frozen)]
pub struct SyncService(Service);

impl SyncService {
    fn run_pass(
        &self,
        py: Python<'_>,
        options: RunOptions,
        on_event: Option<PyObject>,
        dry_run: bool,
    ) -> PyResult<RunReport> {
        let service = self.0.inner().clone();
        let mut pump = pump(&service, on_event);
        let result = block_on(py, async { Ok(pump.pump_until(svc::pass(service, options, dry_run)).await) })?;
        finish(pump, result).map(RunReport)
    }

    fn run_pass_async<'py>(
        &self,
        py: Python<'py>,
        options: RunOptions,
        on_event: Option<PyObject>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let service = self.0.inner().clone();
        let mut pump = pump(&service, on_event);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let (result, pump) = runtime::spawn(async move {
                let result = pump.pump_until(svc::pass(service, options, dry_run)).await;
                Ok((result, pump))
            })
            .await
            .map_err(to_pyerr)?;
            finish(pump, result).map(RunReport)
        })
    }
}

#[pymethods]
impl SyncService {
    #[new]
    fn new(py: Python<'_>, config: &Config) -> PyResult<Self> {
        Ok(SyncService(block_on(py, Service::connect(config.inner.clone()))?))
    }

    /// Connects without blocking the event loop (awaitable of `SyncService`).
    #[staticmethod]
    fn connect_async<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyAny>> {
        let config = config.inner.clone();
        awaitable(py, async move { Ok(SyncService(Service::connect(config).await?)) })
    }

    /// The folders of the service's connections, for scripting item operations.
    #[getter]
    fn folders(&self) -> EwsFolders {
        EwsFolders(self.0.folders().clone())
    }

    /// The group ids, in configuration order.
    #[getter]
    fn groups(&self) -> Vec<String> {
        self.0.groups()
    }

    /// One pass of each selected group (all when `groups` is `None`); returns the report.
    /// Failures of a group are in its report (`RunReport.raise_for_errors()` raises them).
    /// `on_event` is called with each `ProgressEvent`, on this thread.
    #[pyo3(signature = (*, groups = None, allow_mass_delete = false, on_event = None))]
    fn run_once(
        &self,
        py: Python<'_>,
        groups: Option<Vec<String>>,
        allow_mass_delete: bool,
        on_event: Option<PyObject>,
    ) -> PyResult<RunReport> {
        self.run_pass(py, options(groups, allow_mass_delete), on_event, false)
    }

    /// One pass of each selected group (awaitable of the report); `on_event` is called from a
    /// runtime thread.
    #[pyo3(signature = (*, groups = None, allow_mass_delete = false, on_event = None))]
    fn run_once_async<'py>(
        &self,
        py: Python<'py>,
        groups: Option<Vec<String>>,
        allow_mass_delete: bool,
        on_event: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run_pass_async(py, options(groups, allow_mass_delete), on_event, false)
    }

    /// The dry run: what one pass of each selected group would write, without writing
    /// (`GroupReport.plan` lists the actions).
    #[pyo3(signature = (*, groups = None, on_event = None))]
    fn plan(&self, py: Python<'_>, groups: Option<Vec<String>>, on_event: Option<PyObject>) -> PyResult<RunReport> {
        self.run_pass(py, options(groups, false), on_event, true)
    }

    /// The dry run (awaitable of the report).
    #[pyo3(signature = (*, groups = None, on_event = None))]
    fn plan_async<'py>(
        &self,
        py: Python<'py>,
        groups: Option<Vec<String>>,
        on_event: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run_pass_async(py, options(groups, false), on_event, true)
    }

    /// Runs every group in real time until `shutdown()` is called (from another thread or a
    /// callback) or Ctrl-C (then it shuts down gracefully and raises `KeyboardInterrupt`).
    #[pyo3(signature = (*, on_event = None))]
    fn run(&self, py: Python<'_>, on_event: Option<PyObject>) -> PyResult<()> {
        let service = self.0.inner().clone();
        let mut pump = pump(&service, on_event);
        let mut task = handle().map_err(to_pyerr)?.spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let mut interrupted: Option<PyErr> = None;
        let joined = loop {
            let step = block_on(py, async {
                Ok(pump.pump_until(tokio::time::timeout(Duration::from_millis(200), joined(&mut task))).await)
            })?;
            match step {
                Ok(joined) => break joined,
                Err(_) => {
                    if interrupted.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        service.shutdown();
                        interrupted = Some(e);
                    }
                }
            }
        };
        if let Some(e) = interrupted {
            return Err(e);
        }
        finish(pump, joined.and_then(|r| Ok(r?)))
    }

    /// Runs every group in real time until `shutdown()` (awaitable; cancelling it shuts the
    /// service down gracefully).
    fn run_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.0.inner().clone();
        // The run is a task of its own: cancelling the awaitable drops only the wait for it,
        // and the done callback below asks the service to stop, so `run()` still ends
        // gracefully (passes in flight finish, `service_stopped` is sent).
        let mut run = handle().map_err(to_pyerr)?.spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let future = pyo3_async_runtimes::tokio::future_into_py(py, async move {
            joined(&mut run).await.map_err(to_pyerr)?.map_err(service_failed)
        })?;
        let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| -> PyResult<()> {
            if args.get_item(0)?.call_method0("cancelled")?.is_truthy()? {
                service.shutdown();
            }
            Ok(())
        })?;
        future.call_method1("add_done_callback", (on_done,))?;
        Ok(future)
    }

    /// Starts the real-time service in the background and returns at once; `stop()` ends it.
    /// `on_event` is called from a runtime thread.
    #[pyo3(signature = (*, on_event = None))]
    fn start(&self, on_event: Option<PyObject>) -> PyResult<()> {
        let mut pump = pump(self.0.inner(), on_event);
        let started = self.0.start(|service| async move {
            let result = pump.pump_until(service.run()).await;
            if let Some(e) = pump.sink.and_then(|c| c.error) {
                Python::with_gil(|py| e.print(py));
            }
            result
        });
        started.map_err(to_pyerr)
    }

    /// Stops a service started with `start()`: passes in flight finish within the grace period.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.0.stop()).map_err(to_pyerr)
    }

    /// Whether a service started with `start()` is running.
    #[getter]
    fn running(&self) -> bool {
        self.0.is_running()
    }

    /// Asks a running service to stop (returns at once; `run()` then returns).
    fn shutdown(&self) {
        self.0.inner().shutdown();
    }

    /// Per group and folder: initialization, last sync, errors, copies and pending work.
    fn status(&self, py: Python<'_>) -> PyResult<Vec<GroupStatus>> {
        let status = block_on(py, svc::status(self.0.inner().clone()))?;
        Ok(status.into_iter().map(GroupStatus).collect())
    }

    /// The status (awaitable).
    fn status_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.0.inner().clone();
        awaitable(py, async move { Ok(svc::status(service).await?.into_iter().map(GroupStatus).collect::<Vec<_>>()) })
    }

    /// The conflict log of one group, or of every group, oldest first per group.
    #[pyo3(signature = (group = None))]
    fn conflicts(&self, py: Python<'_>, group: Option<String>) -> PyResult<Vec<ConflictEntry>> {
        let entries = block_on(py, svc::conflicts(self.0.inner().clone(), group))?;
        Ok(entries.into_iter().map(ConflictEntry).collect())
    }

    /// The conflict log (awaitable).
    #[pyo3(signature = (group = None))]
    fn conflicts_async<'py>(&self, py: Python<'py>, group: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.0.inner().clone();
        awaitable(py, async move {
            Ok(svc::conflicts(service, group).await?.into_iter().map(ConflictEntry).collect::<Vec<_>>())
        })
    }

    /// Progress events from now on, as a blocking iterator and an async iterator. A slow
    /// consumer misses old events (it gets a `lagged` event) rather than slowing the service.
    fn events(&self) -> EventStream {
        EventStream(Stream::new(self.0.inner().subscribe()))
    }

    fn __repr__(&self) -> String {
        format!("<SyncService groups={:?}>", self.0.groups())
    }
}

/// Progress events of a service: `for event in stream` (blocking; the GIL is released while
/// waiting) or `async for event in stream`. Iteration ends after `service_stopped`.
#[pyclass(module = "exchange_sync", frozen)]
pub struct EventStream(Stream);

fn seconds(timeout: Option<f64>) -> Option<Duration> {
    timeout.map(|t| Duration::from_secs_f64(t.max(0.0)))
}

#[pymethods]
impl EventStream {
    /// The next event, waiting at most `timeout` seconds (`None` when none came).
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<ProgressEvent>> {
        let stream = self.0.clone();
        block_on(py, async move { Ok(stream.next(seconds(timeout)).await.map(ProgressEvent::from)) })
    }

    /// The next event (awaitable), waiting at most `timeout` seconds (`None` when none came).
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.0.clone();
        awaitable(py, async move { Ok(stream.next(seconds(timeout)).await.map(ProgressEvent::from)) })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<ProgressEvent>> {
        loop {
            if self.0.ended() {
                return Ok(None);
            }
            // Wake up now and then so that Ctrl-C is not held up by a quiet service.
            if let Some(event) = self.next(py, Some(0.2))? {
                return Ok(Some(event));
            }
            py.check_signals()?;
        }
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.0.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match runtime::spawn(async move { Ok(stream.next(None).await) }).await {
                Ok(Some(e)) => Ok(ProgressEvent::from(e)),
                Ok(None) => Err(pyo3::exceptions::PyStopAsyncIteration::new_err(())),
                Err(e) => Err(to_pyerr(e)),
            }
        })
    }
}

/// Adds the service classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SyncService>()?;
    m.add_class::<EventStream>()?;
    Ok(())
}
