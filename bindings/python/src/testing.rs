//! The EWS emulator in process, for users' own tests (`exchange_sync.testing.Emulator`).
//!
//! It is the `ews-emulator` crate's in-memory Exchange serving EWS over loopback HTTP on the
//! module's runtime, with the demo tenant `contoso.test` (alice, bob, carol, dave and
//! `sync-admin` with impersonation rights; password `exchange-sync`; public folders
//! `Company Contacts` and `Company Calendar`; distribution group `sales@contoso.test`).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ews_emulator::{Emulator as RustEmulator, EmulatorConfig, Fault, RunningEmulator, ServerVersion};
use exchange_sync::config::{Auth, Connection as RustConnection, Secret};
use pyo3::prelude::*;

use crate::config::Connection;
use crate::errors::{BindingError, invalid};
use crate::runtime::block_on;

/// An EWS emulator running in this process. Use it as a context manager, or call `stop()`.
///
/// EWS documents are traced to `trace_dir` (default: the `EWS_TRACE_DIR` environment variable,
/// when set).
#[pyclass(module = "exchange_sync.testing", frozen)]
pub struct Emulator {
    running: Mutex<Option<RunningEmulator>>,
    url: String,
    autodiscover_url: String,
    domain: String,
    password: String,
    users: Vec<String>,
}

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
        let mut config = EmulatorConfig {
            contacts,
            password: password.clone(),
            domain: domain.clone(),
            server_version: version,
            latency: Duration::from_millis(latency_ms),
            busy_rate,
            max_concurrency,
            heartbeat_interval: Duration::from_secs_f64(heartbeat_secs.max(0.05)),
            trace_dir: trace_dir.or_else(|| std::env::var_os("EWS_TRACE_DIR").map(PathBuf::from)),
            ..EmulatorConfig::default()
        };
        if let Some(users) = users {
            config.users = users;
        }
        let users = config.users.iter().map(|u| format!("{u}@{domain}")).collect();
        let running = block_on(py, async move { RustEmulator::start(config).await.map_err(BindingError::Emulator) })?;
        Ok(Emulator {
            url: running.url().to_owned(),
            autodiscover_url: running.autodiscover_url(),
            running: Mutex::new(Some(running)),
            domain,
            password,
            users,
        })
    }

    /// The EWS endpoint, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// The SOAP Autodiscover endpoint.
    #[getter]
    fn autodiscover_url(&self) -> String {
        self.autodiscover_url.clone()
    }

    /// The account with impersonation rights over every mailbox (`sync-admin@DOMAIN`).
    #[getter]
    fn admin(&self) -> String {
        format!("sync-admin@{}", self.domain)
    }

    /// The password of every account.
    #[getter]
    fn password(&self) -> String {
        self.password.clone()
    }

    /// The user mailboxes' addresses.
    #[getter]
    fn users(&self) -> Vec<String> {
        self.users.clone()
    }

    /// A connection to this emulator as the admin account (basic auth, impersonation).
    #[pyo3(signature = (id = "exchange".to_owned()))]
    fn connection(&self, id: String) -> Connection {
        Connection {
            inner: RustConnection::new(
                id,
                self.url.clone(),
                Auth::Basic { username: self.admin(), password: Secret::Inline(self.password.clone()) },
            ),
        }
    }

    /// Queues a fault for the next request it applies to: `"drop_after_write"`,
    /// `"internal_server_error"`, `"service_unavailable"` or `"server_busy"`.
    fn inject(&self, fault: &str) -> PyResult<()> {
        let fault = match fault {
            "drop_after_write" => Fault::DropAfterWrite,
            "internal_server_error" => Fault::InternalServerError,
            "service_unavailable" => Fault::ServiceUnavailable,
            "server_busy" => Fault::ServerBusy,
            other => return Err(invalid("fault", format!("unknown fault {other:?}"))),
        };
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.as_ref() {
            Some(r) => {
                r.inject(fault);
                Ok(())
            }
            None => Err(BindingError::Usage("the emulator was stopped".into()).into()),
        }
    }

    /// Whether it is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// Stops serving and waits for the server to close its connections.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(r) = running {
            block_on(py, async move {
                r.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
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
        format!("<Emulator {}>", self.url)
    }
}

/// Adds the testing classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Emulator>()?;
    Ok(())
}
