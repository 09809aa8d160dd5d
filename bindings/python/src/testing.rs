//! The EWS emulator in process, for users' own tests (`exchange_sync.testing.Emulator`; feature
//! `testing`, which the test command's build turns on): `exchange_sync_bindings::testing`, with
//! the demo tenant `contoso.test` (alice, bob, carol, dave and `sync-admin` with impersonation
//! rights; password `exchange-sync`; public folders `Company Contacts` and `Company Calendar`;
//! distribution group `sales@contoso.test`).

use std::path::PathBuf;
use std::time::Duration;

use ews_emulator::{EmulatorConfig, ServerVersion};
use exchange_sync_bindings::testing::TestEmulator;
use pyo3::prelude::*;

use crate::config::Connection;
use crate::errors::{invalid, to_pyerr};

/// An EWS emulator running in this process. Use it as a context manager, or call `stop()`.
///
/// EWS documents are traced to `trace_dir` (default: the `EWS_TRACE_DIR` environment variable,
/// when set).
#[pyclass(module = "exchange_sync.testing", frozen)]
pub struct Emulator(TestEmulator);

#[pymethods]
impl Emulator {
    #[new]
    #[pyo3(signature = (*, contacts = 25, users = None, password = "exchange-sync".to_owned(), domain = "contoso.test".to_owned(),
        server_version = "Exchange2016", latency_ms = 0, busy_rate = 0.0, max_concurrency = 27, heartbeat_secs = 1.0,
        trace_dir = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        contacts: usize,
        users: Option<Vec<String>>,
        password: String,
        domain: String,
        server_version: &str,
        latency_ms: u64,
        busy_rate: f64,
        max_concurrency: usize,
        heartbeat_secs: f64,
        trace_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let version = ServerVersion::parse(server_version)
            .ok_or_else(|| invalid("server_version", format!("unknown server version {server_version:?}")))?;
        let defaults = EmulatorConfig::default();
        let config = EmulatorConfig {
            contacts,
            users: users.unwrap_or(defaults.users.clone()),
            password,
            domain,
            server_version: version,
            latency: Duration::from_millis(latency_ms),
            busy_rate,
            max_concurrency,
            heartbeat_interval: Duration::from_secs_f64(heartbeat_secs.max(0.05)),
            trace_dir,
            ..defaults
        };
        py.allow_threads(|| TestEmulator::start(config)).map(Emulator).map_err(to_pyerr)
    }

    /// The EWS endpoint, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    #[getter]
    fn url(&self) -> String {
        self.0.url.clone()
    }

    /// The SOAP Autodiscover endpoint.
    #[getter]
    fn autodiscover_url(&self) -> String {
        self.0.autodiscover_url.clone()
    }

    /// The account with impersonation rights over every mailbox (`sync-admin@DOMAIN`).
    #[getter]
    fn admin(&self) -> String {
        self.0.admin()
    }

    /// The password of every account.
    #[getter]
    fn password(&self) -> String {
        self.0.password.clone()
    }

    /// The user mailboxes' addresses.
    #[getter]
    fn users(&self) -> Vec<String> {
        self.0.users.clone()
    }

    /// A connection to this emulator as the admin account (basic auth, impersonation).
    #[pyo3(signature = (id = "exchange".to_owned()))]
    fn connection(&self, id: String) -> Connection {
        Connection { inner: self.0.connection(id) }
    }

    /// Queues a fault for the next request it applies to: `"drop_after_write"`,
    /// `"internal_server_error"`, `"service_unavailable"` or `"server_busy"`.
    fn inject(&self, fault: &str) -> PyResult<()> {
        self.0.inject(fault).map_err(to_pyerr)
    }

    /// Whether it is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.0.is_running()
    }

    /// Stops serving and waits for the server to close its connections.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.0.stop()).map_err(to_pyerr)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<Emulator {}>", self.0.url)
    }
}

/// Adds the testing classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Emulator>()?;
    Ok(())
}
