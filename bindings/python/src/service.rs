//! The service from Python: `SyncService`, with the Rust service's operations (run once, run
//! until stopped, dry-run plan, status, conflicts), progress callbacks and an event stream.
//!
//! Blocking methods release the GIL while they wait and deliver progress callbacks on the calling
//! thread; `*_async` methods return awaitables. `run()` blocks until `shutdown()` is called
//! (from another thread or a callback) or Ctrl-C; `start()` runs the service in the background
//! until `stop()`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use exchange_sync::ProgressEvent as RustProgressEvent;
use exchange_sync::{EwsFolders as RustEwsFolders, RunOptions, SyncService as RustSyncService};
use pyo3::prelude::*;
use pyo3::types::PyCFunction;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::errors::BindingError;
use crate::items::EwsFolders;
use crate::reports::{ConflictEntry, GroupStatus, ProgressEvent, RunReport};
use crate::runtime::{awaitable, block_on, runtime};

/// Delivers progress events to a Python callback while a future runs.
struct EventPump {
    events: broadcast::Receiver<RustProgressEvent>,
    callback: Option<PyObject>,
    /// The first exception a callback raised (raised again when the operation ends).
    error: Option<PyErr>,
}

impl EventPump {
    fn new(events: broadcast::Receiver<RustProgressEvent>, callback: Option<PyObject>) -> Self {
        EventPump { events, callback, error: None }
    }

    fn deliver(&mut self, event: ProgressEvent) {
        let Some(callback) = &self.callback else { return };
        if self.error.is_some() {
            return;
        }
        Python::with_gil(|py| {
            if let Err(e) = callback.call1(py, (event,)) {
                self.error = Some(e);
            }
        });
    }

    fn deliver_result(&mut self, event: Result<RustProgressEvent, RecvError>) -> bool {
        match event {
            Ok(e) => self.deliver(ProgressEvent::from(&e)),
            Err(RecvError::Lagged(n)) => self.deliver(ProgressEvent::lagged(n)),
            Err(RecvError::Closed) => return false,
        }
        true
    }

    /// Runs `future`, delivering events as they come, then the ones still queued.
    async fn pump_until<F: std::future::Future>(&mut self, future: F) -> F::Output {
        tokio::pin!(future);
        let mut open = self.callback.is_some();
        let output = loop {
            tokio::select! {
                output = &mut future => break output,
                event = self.events.recv(), if open => open = self.deliver_result(event),
            }
        };
        loop {
            match self.events.try_recv() {
                Ok(e) => self.deliver(ProgressEvent::from(&e)),
                Err(TryRecvError::Lagged(n)) => self.deliver(ProgressEvent::lagged(n)),
                Err(_) => break,
            }
        }
        output
    }

    /// The callback's exception, if it raised one.
    fn finish<T>(self, result: Result<T, BindingError>) -> PyResult<T> {
        let value = result?;
        match self.error {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

fn options(groups: Option<Vec<String>>, allow_mass_delete: bool) -> RunOptions {
    RunOptions { groups: groups.unwrap_or_default(), allow_mass_delete }
}

async fn connect(config: exchange_sync::Config) -> Result<(RustSyncService, Arc<RustEwsFolders>), BindingError> {
    let folders = Arc::new(RustEwsFolders::connect(&config).await?);
    let store = RustSyncService::open_store(&config).await?;
    let service = RustSyncService::new(config, folders.clone(), store)?;
    Ok((service, folders))
}

/// Runs sync groups: the Rust `SyncService`.
///
/// `SyncService(config)` connects (blocking; `await SyncService.connect_async(config)` does not
/// block) and opens the state store the configuration names. Every method that talks to servers
/// has a blocking form and an `*_async` form.
#[pyclass(module = "exchange_sync", frozen)]
pub struct SyncService {
    inner: RustSyncService,
    folders: Arc<RustEwsFolders>,
    connections: Vec<String>,
    background: Mutex<Option<JoinHandle<exchange_sync::Result<()>>>>,
}

impl SyncService {
    fn build(inner: RustSyncService, folders: Arc<RustEwsFolders>) -> Self {
        let connections = inner.config().connections.iter().map(|c| c.id.clone()).collect();
        SyncService { inner, folders, connections, background: Mutex::new(None) }
    }

    fn run_pass(
        &self,
        py: Python<'_>,
        options: RunOptions,
        on_event: Option<PyObject>,
        dry_run: bool,
    ) -> PyResult<RunReport> {
        let service = self.inner.clone();
        let mut pump = EventPump::new(service.subscribe(), on_event);
        let result = block_on(py, async {
            let run = async { if dry_run { service.plan(options).await } else { service.run_once(options).await } };
            Ok(pump.pump_until(run).await)
        })?;
        pump.finish(result.map(|r| RunReport::from(&r)).map_err(BindingError::from))
    }

    fn run_pass_async<'py>(
        &self,
        py: Python<'py>,
        options: RunOptions,
        on_event: Option<PyObject>,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let service = self.inner.clone();
        let mut pump = EventPump::new(service.subscribe(), on_event);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let run = async { if dry_run { service.plan(options).await } else { service.run_once(options).await } };
            let result = pump.pump_until(run).await;
            pump.finish(result.map(|r| RunReport::from(&r)).map_err(BindingError::from))
        })
    }
}

#[pymethods]
impl SyncService {
    #[new]
    fn new(py: Python<'_>, config: &Config) -> PyResult<Self> {
        let c = config.inner.clone();
        let (inner, folders) = block_on(py, connect(c))?;
        Ok(Self::build(inner, folders))
    }

    /// Connects without blocking the event loop (awaitable of `SyncService`).
    #[staticmethod]
    fn connect_async<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyAny>> {
        let c = config.inner.clone();
        awaitable(py, async move {
            let (inner, folders) = connect(c).await?;
            Ok(SyncService::build(inner, folders))
        })
    }

    /// The folders of the service's connections, for scripting item operations.
    #[getter]
    fn folders(&self) -> EwsFolders {
        EwsFolders { inner: Arc::clone(&self.folders), connections: self.connections.clone() }
    }

    /// The group ids, in configuration order.
    #[getter]
    fn groups(&self) -> Vec<String> {
        self.inner.config().groups.iter().map(|g| g.id.clone()).collect()
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
        let service = self.inner.clone();
        let mut pump = EventPump::new(service.subscribe(), on_event);
        let mut handle = runtime().spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let mut interrupted: Option<PyErr> = None;
        let joined = loop {
            let step = block_on(py, async {
                Ok(pump.pump_until(tokio::time::timeout(Duration::from_millis(200), &mut handle)).await)
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
        let result = joined.map_err(|e| BindingError::Usage(format!("the service task failed: {e}")))?;
        pump.finish(result.map_err(BindingError::from))
    }

    /// Runs every group in real time until `shutdown()` (awaitable; cancelling it shuts the
    /// service down gracefully).
    fn run_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.inner.clone();
        // The run is a task of its own: cancelling the awaitable drops only the wait for it,
        // and the done callback below asks the service to stop, so `run()` still ends
        // gracefully (passes in flight finish, `service_stopped` is sent).
        let run = runtime().spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let future = awaitable(py, async move {
            run.await.map_err(|e| BindingError::Usage(format!("the service task failed: {e}")))??;
            Ok(())
        })?;
        let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| -> PyResult<()> {
            let done = args.get_item(0)?;
            if done.call_method0("cancelled")?.is_truthy()? {
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
        let mut slot = self.background.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return Err(BindingError::Usage("the service is already running".into()).into());
        }
        let service = self.inner.clone();
        let mut pump = EventPump::new(service.subscribe(), on_event);
        *slot = Some(runtime().spawn(async move {
            let result = pump.pump_until(service.run()).await;
            if let Some(e) = pump.error {
                Python::with_gil(|py| e.print(py));
            }
            result
        }));
        Ok(())
    }

    /// Stops a service started with `start()`: passes in flight finish within the grace period.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.shutdown();
        let handle = self.background.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            block_on(py, async move {
                handle.await.map_err(|e| BindingError::Usage(format!("the service task failed: {e}")))??;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Whether a service started with `start()` is running.
    #[getter]
    fn running(&self) -> bool {
        self.background.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Asks a running service to stop (returns at once; `run()` then returns).
    fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Per group and folder: initialization, last sync, errors, copies and pending work.
    fn status(&self, py: Python<'_>) -> PyResult<Vec<GroupStatus>> {
        let service = self.inner.clone();
        block_on(py, async move { Ok(service.status().await?.iter().map(GroupStatus::from).collect::<Vec<_>>()) })
    }

    /// The status (awaitable).
    fn status_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.inner.clone();
        awaitable(py, async move { Ok(service.status().await?.iter().map(GroupStatus::from).collect::<Vec<_>>()) })
    }

    /// The conflict log of one group, or of every group, oldest first per group.
    #[pyo3(signature = (group = None))]
    fn conflicts(&self, py: Python<'_>, group: Option<String>) -> PyResult<Vec<ConflictEntry>> {
        let service = self.inner.clone();
        block_on(py, async move {
            Ok(service.conflicts(group.as_deref()).await?.iter().map(ConflictEntry::from).collect::<Vec<_>>())
        })
    }

    /// The conflict log (awaitable).
    #[pyo3(signature = (group = None))]
    fn conflicts_async<'py>(&self, py: Python<'py>, group: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let service = self.inner.clone();
        awaitable(py, async move {
            Ok(service.conflicts(group.as_deref()).await?.iter().map(ConflictEntry::from).collect::<Vec<_>>())
        })
    }

    /// Progress events from now on, as a blocking iterator and an async iterator. A slow
    /// consumer misses old events (it gets a `lagged` event) rather than slowing the service.
    fn events(&self) -> EventStream {
        EventStream {
            events: Arc::new(tokio::sync::Mutex::new(self.inner.subscribe())),
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    fn __repr__(&self) -> String {
        format!("<SyncService groups={:?}>", self.groups())
    }
}

impl Drop for SyncService {
    /// A service dropped while running in the background (`start()` without `stop()`) is asked
    /// to stop, rather than left running without a handle.
    fn drop(&mut self) {
        let running = self
            .background
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|h| !h.is_finished());
        if running {
            self.inner.shutdown();
        }
    }
}

/// Progress events of a service: `for event in stream` (blocking; the GIL is released while
/// waiting) or `async for event in stream`. Iteration ends after `service_stopped`.
#[pyclass(module = "exchange_sync", frozen)]
pub struct EventStream {
    events: Arc<tokio::sync::Mutex<broadcast::Receiver<RustProgressEvent>>>,
    /// Set once `service_stopped` was handed out: iteration ends there.
    ended: Arc<AtomicBool>,
}

async fn next_event(
    events: Arc<tokio::sync::Mutex<broadcast::Receiver<RustProgressEvent>>>,
    ended: Arc<AtomicBool>,
    timeout: Option<Duration>,
) -> Option<ProgressEvent> {
    if ended.load(Ordering::SeqCst) {
        return None;
    }
    let mut rx = events.lock().await;
    let recv = async {
        match rx.recv().await {
            Ok(e) => Some(ProgressEvent::from(&e)),
            Err(RecvError::Lagged(n)) => Some(ProgressEvent::lagged(n)),
            Err(RecvError::Closed) => None,
        }
    };
    let event = match timeout {
        Some(t) => tokio::time::timeout(t, recv).await.ok().flatten(),
        None => recv.await,
    };
    if event.as_ref().is_some_and(|e| e.kind == "service_stopped") {
        ended.store(true, Ordering::SeqCst);
    }
    event
}

#[pymethods]
impl EventStream {
    /// The next event, waiting at most `timeout` seconds (`None` when none came).
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<ProgressEvent>> {
        let timeout = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        let (events, ended) = (Arc::clone(&self.events), Arc::clone(&self.ended));
        block_on(py, async move { Ok(next_event(events, ended, timeout).await) })
    }

    /// The next event (awaitable), waiting at most `timeout` seconds (`None` when none came).
    #[pyo3(signature = (timeout = None))]
    fn next_async<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        let (events, ended) = (Arc::clone(&self.events), Arc::clone(&self.ended));
        awaitable(py, async move { Ok(next_event(events, ended, timeout).await) })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<ProgressEvent>> {
        loop {
            if self.ended.load(Ordering::SeqCst) {
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
        let (events, ended) = (Arc::clone(&self.events), Arc::clone(&self.ended));
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match next_event(events, ended, None).await {
                Some(e) => Ok(e),
                None => Err(pyo3::exceptions::PyStopAsyncIteration::new_err(())),
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
