//! The exception hierarchy, and how Rust errors become Python exceptions with their context.
//!
//! ```text
//! ExchangeSyncError            every error of the package: kind, retryable, message, context
//! ├── ConfigError              invalid configuration (diagnostics with file, line, column)
//! ├── AuthError                credentials or rights missing
//! ├── UnreachableError         connection refused, unknown host, untrusted certificate
//! ├── ThrottledError           the server asked to slow down (retry_after)
//! ├── ConflictError            the item changed since it was read (a precondition failed)
//! ├── MassDeleteError          the mass-delete guard stopped a group
//! ├── NotFoundError            the item or folder does not exist
//! ├── TransientError           network hiccup, timeout: retrying may help
//! ├── PermanentError           a failure retrying will not fix
//! └── StateError               the state store failed
//! ```
//!
//! Scripts catch the class they can act on, or `ExchangeSyncError` and look at `kind` and
//! `retryable`, the same classification the Rust retry layers use.

use exchange_sync::config::{ConfigError as RustConfigError, Diagnostic as RustDiagnostic, Severity};
use exchange_sync::report::kind_name;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;

create_exception!(
    exchange_sync,
    ExchangeSyncError,
    PyException,
    "Every error of exchange_sync. Attributes: kind (snake case: not_found, throttled, auth, ...), \
     retryable, message, and the context the error has: group, member, folder, mailbox, item, operation, connection."
);
create_exception!(
    exchange_sync,
    ConfigError,
    ExchangeSyncError,
    "The configuration is invalid. `diagnostics` lists every finding with its path and, for files, line and column."
);
create_exception!(
    exchange_sync,
    AuthError,
    ExchangeSyncError,
    "Credentials or rights are missing; retrying will not help until an admin acts."
);
create_exception!(
    exchange_sync,
    UnreachableError,
    ExchangeSyncError,
    "The server cannot be reached at all (connection refused, unknown host) or is not trusted (its TLS \
     certificate failed verification); retrying will not help until an admin acts."
);
create_exception!(
    exchange_sync,
    ThrottledError,
    ExchangeSyncError,
    "The server asked to slow down; `retry_after` holds the delay it asked for, in seconds, when it said."
);
create_exception!(
    exchange_sync,
    ConflictError,
    ExchangeSyncError,
    "The item changed since it was read (an optimistic-concurrency precondition failed): re-read and retry."
);
create_exception!(
    exchange_sync,
    MassDeleteError,
    ExchangeSyncError,
    "The mass-delete guard stopped a group: the run would have deleted too much; an admin must confirm."
);
create_exception!(exchange_sync, NotFoundError, ExchangeSyncError, "The item or folder does not exist (any more).");
create_exception!(
    exchange_sync,
    TransientError,
    ExchangeSyncError,
    "A passing failure (network, timeout, shutdown): retrying later may succeed."
);
create_exception!(
    exchange_sync,
    PermanentError,
    ExchangeSyncError,
    "A failure that retrying will not fix (bad request, unsupported operation)."
);
create_exception!(exchange_sync, StateError, ExchangeSyncError, "The state store failed.");

/// One finding of configuration validation, as `ConfigError.diagnostics` and
/// `Config.validate()` hand them over.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct Diagnostic {
    /// `"error"` or `"warning"`.
    pub severity: String,
    /// The configuration path, e.g. `groups[0].members[2].filter`.
    pub path: String,
    /// What is wrong, and how to fix it.
    pub message: String,
    /// The file, when the configuration came from one.
    pub file: Option<String>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 1-based column in the file, when known.
    pub column: Option<usize>,
    text: String,
}

#[pymethods]
impl Diagnostic {
    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<Diagnostic {}>", self.text)
    }
}

impl From<&RustDiagnostic> for Diagnostic {
    fn from(d: &RustDiagnostic) -> Self {
        Diagnostic {
            severity: match d.severity {
                Severity::Error => "error".into(),
                Severity::Warning => "warning".into(),
            },
            path: d.path.clone(),
            message: d.message.clone(),
            file: d.location.as_ref().and_then(|l| l.file.as_ref()).map(|f| f.display().to_string()),
            line: d.location.as_ref().map(|l| l.line),
            column: d.location.as_ref().map(|l| l.column),
            text: d.to_string(),
        }
    }
}

/// What can go wrong in the bindings, before it becomes a Python exception.
#[derive(Debug)]
pub enum BindingError {
    /// An error of the service (configuration, connection, sync).
    Service(exchange_sync::Error),
    /// An invalid configuration.
    Config(RustConfigError),
    /// An invalid value given from Python for a configuration path.
    Invalid {
        /// The configuration path (`groups[0].members[1].direction`) or argument name.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The emulator could not start.
    Emulator(ews_emulator::EmulatorError),
    /// The API was used in a way it cannot work (e.g. blocking inside a callback).
    Usage(String),
}

impl From<exchange_sync::Error> for BindingError {
    fn from(e: exchange_sync::Error) -> Self {
        BindingError::Service(e)
    }
}

impl From<exchange_sync_core::Error> for BindingError {
    fn from(e: exchange_sync_core::Error) -> Self {
        BindingError::Service(exchange_sync::Error::Sync(e))
    }
}

impl From<RustConfigError> for BindingError {
    fn from(e: RustConfigError) -> Self {
        BindingError::Config(e)
    }
}

/// The context an exception carries besides its kind and message.
#[derive(Default)]
pub struct Context {
    /// The sync group.
    pub group: Option<String>,
    /// The member folder (`hub` for the hub).
    pub member: Option<String>,
    /// The folder, as described by the connector.
    pub folder: Option<String>,
    /// The item id.
    pub item: Option<String>,
    /// The operation that failed.
    pub operation: Option<String>,
    /// The connection id.
    pub connection: Option<String>,
    /// The delay the server asked for, in seconds.
    pub retry_after: Option<f64>,
    /// Configuration findings.
    pub diagnostics: Vec<Diagnostic>,
}

/// The mailbox a folder description names (`alice@contoso.test/contacts` -> `alice@contoso.test`).
fn mailbox_of(folder: &str) -> Option<String> {
    let first = folder.split('/').next()?;
    first.contains('@').then(|| first.to_owned())
}

/// The exception class of an error kind (as `ErrorReport.kind` names it).
pub fn class_of<'py>(py: Python<'py>, kind: &str) -> Bound<'py, pyo3::types::PyType> {
    use pyo3::PyTypeInfo;
    match kind {
        "config" => ConfigError::type_object(py),
        "auth" => AuthError::type_object(py),
        "unreachable" => UnreachableError::type_object(py),
        "throttled" => ThrottledError::type_object(py),
        "precondition_failed" => ConflictError::type_object(py),
        "mass_delete" => MassDeleteError::type_object(py),
        "not_found" => NotFoundError::type_object(py),
        "transient" => TransientError::type_object(py),
        "permanent" => PermanentError::type_object(py),
        "state" => StateError::type_object(py),
        _ => ExchangeSyncError::type_object(py),
    }
}

/// Builds the exception of `kind` with every attribute set.
pub fn exception(py: Python<'_>, kind: &str, retryable: bool, message: &str, context: Context) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let value = class_of(py, kind).call1((message,))?;
        value.setattr("kind", kind)?;
        value.setattr("retryable", retryable)?;
        value.setattr("message", message)?;
        value.setattr("mailbox", context.folder.as_deref().and_then(mailbox_of))?;
        value.setattr("group", context.group)?;
        value.setattr("member", context.member)?;
        value.setattr("folder", context.folder)?;
        value.setattr("item", context.item)?;
        value.setattr("operation", context.operation)?;
        value.setattr("connection", context.connection)?;
        value.setattr("retry_after", context.retry_after)?;
        value.setattr("diagnostics", context.diagnostics)?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

fn config_exception(py: Python<'_>, e: &RustConfigError) -> PyErr {
    let diagnostics = e.diagnostics.iter().map(Diagnostic::from).collect();
    exception(py, "config", false, &e.to_string(), Context { diagnostics, ..Context::default() })
}

fn core_exception(py: Python<'_>, e: &exchange_sync_core::Error) -> PyErr {
    let mut context = Context::default();
    if let Some(c) = e.context() {
        context.group = c.group.as_ref().map(ToString::to_string);
        context.member = c.member.as_ref().map(ToString::to_string);
        context.folder = c.folder.clone();
        context.item = c.item.as_ref().map(ToString::to_string);
        context.operation = c.operation.map(str::to_owned);
    }
    if let exchange_sync_core::Error::MassDelete { member, group, .. } = e {
        context.member = Some(member.to_string());
        context.group = Some(group.to_string());
    }
    context.retry_after = e.retry_after().map(|d| d.as_secs_f64());
    exception(py, kind_name(e.kind()), e.is_retryable(), &e.to_string(), context)
}

impl BindingError {
    /// The Python exception of this error.
    pub fn to_pyerr(&self, py: Python<'_>) -> PyErr {
        match self {
            BindingError::Service(exchange_sync::Error::Config(e)) | BindingError::Config(e) => config_exception(py, e),
            BindingError::Service(exchange_sync::Error::Sync(e)) => core_exception(py, e),
            BindingError::Service(e @ exchange_sync::Error::Connect { connection, .. }) => exception(
                py,
                kind_name(e.kind()),
                e.is_retryable(),
                &e.to_string(),
                Context { connection: Some(connection.clone()), ..Context::default() },
            ),
            BindingError::Service(e @ exchange_sync::Error::MissingFolder { operation, folder, .. }) => exception(
                py,
                kind_name(e.kind()),
                e.is_retryable(),
                &e.to_string(),
                Context {
                    operation: Some((*operation).to_owned()),
                    folder: Some(folder.clone()),
                    ..Context::default()
                },
            ),
            BindingError::Service(e) => {
                exception(py, kind_name(e.kind()), e.is_retryable(), &e.to_string(), Context::default())
            }
            BindingError::Invalid { path, message } => {
                let diagnostic = RustDiagnostic {
                    severity: Severity::Error,
                    path: path.clone(),
                    message: message.clone(),
                    location: None,
                    related: None,
                };
                config_exception(py, &RustConfigError { diagnostics: vec![diagnostic] })
            }
            BindingError::Emulator(e) => {
                exception(py, "emulator", false, &format!("EWS emulator: {e}"), Context::default())
            }
            BindingError::Usage(message) => PyRuntimeError::new_err(message.clone()),
        }
    }
}

impl From<BindingError> for PyErr {
    fn from(e: BindingError) -> Self {
        Python::with_gil(|py| e.to_pyerr(py))
    }
}

/// A shorthand for an invalid keyword argument value.
pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> PyErr {
    BindingError::Invalid { path: path.into(), message: message.into() }.into()
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ExchangeSyncError", py.get_type::<ExchangeSyncError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("UnreachableError", py.get_type::<UnreachableError>())?;
    m.add("ThrottledError", py.get_type::<ThrottledError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("MassDeleteError", py.get_type::<MassDeleteError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("TransientError", py.get_type::<TransientError>())?;
    m.add("PermanentError", py.get_type::<PermanentError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add_class::<Diagnostic>()?;
    Ok(())
}
