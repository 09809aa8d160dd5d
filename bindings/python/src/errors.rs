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
//! ├── InvalidSyncTokenError    a folder's sync token expired (the engine starts it over)
//! ├── TransientError           network hiccup, timeout: retrying may help
//! ├── PermanentError           a failure retrying will not fix
//! └── StateError               the state store failed
//! ```
//!
//! Scripts catch the class they can act on, or `ExchangeSyncError` and look at `kind` and
//! `retryable`: one class per error kind of the core (`exchange_sync_bindings::ErrorKind`), the
//! classification the Rust retry layers and the .NET exceptions use. A usage error (a blocking
//! call from a callback) is a `RuntimeError`.

use exchange_sync_bindings::{BindingError, ErrorInfo, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;

use crate::class::record_class;
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
    InvalidSyncTokenError,
    ExchangeSyncError,
    "A folder's sync token is no longer accepted; the engine starts that folder over."
);
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

record_class! {
    /// One finding of configuration validation, as `ConfigError.diagnostics` and
    /// `Config.warnings` hand them over: the configuration path (or keyword), what is wrong, and
    /// for files the file, line and column.
    Diagnostic(exchange_sync_bindings::Diagnostic) {
        path: String, message: String, file: Option<String>, line: Option<u32>, column: Option<u32>, text: String,
    }

    /// `"error"` or `"warning"`.
    #[getter]
    fn severity(&self) -> &'static str {
        if self.0.is_error { "error" } else { "warning" }
    }

    fn __str__(&self) -> String {
        self.0.text.clone()
    }

    fn __repr__(&self) -> String {
        format!("<Diagnostic {}>", self.0.text)
    }
}

/// The exception class of an error kind.
fn class_of(py: Python<'_>, kind: ErrorKind) -> Bound<'_, pyo3::types::PyType> {
    use pyo3::PyTypeInfo;
    match kind {
        ErrorKind::Config => ConfigError::type_object(py),
        ErrorKind::Auth => AuthError::type_object(py),
        ErrorKind::Unreachable => UnreachableError::type_object(py),
        ErrorKind::Throttled => ThrottledError::type_object(py),
        ErrorKind::PreconditionFailed => ConflictError::type_object(py),
        ErrorKind::MassDelete => MassDeleteError::type_object(py),
        ErrorKind::NotFound => NotFoundError::type_object(py),
        ErrorKind::InvalidSyncToken => InvalidSyncTokenError::type_object(py),
        ErrorKind::Transient => TransientError::type_object(py),
        ErrorKind::Permanent => PermanentError::type_object(py),
        ErrorKind::State => StateError::type_object(py),
        ErrorKind::Usage => PyRuntimeError::type_object(py),
        ErrorKind::Emulator => ExchangeSyncError::type_object(py),
    }
}

/// The exception of `info`, with every attribute set (a usage error is a plain `RuntimeError`).
pub fn exception(py: Python<'_>, info: ErrorInfo) -> PyErr {
    if info.kind == ErrorKind::Usage {
        return PyRuntimeError::new_err(info.message);
    }
    let build = || -> PyResult<PyErr> {
        let value = class_of(py, info.kind).call1((&info.message,))?;
        let c = info.context;
        value.setattr("kind", info.kind.name())?;
        value.setattr("retryable", info.retryable)?;
        value.setattr("message", &info.message)?;
        value.setattr("mailbox", c.mailbox)?;
        value.setattr("group", c.group)?;
        value.setattr("member", c.member)?;
        value.setattr("folder", c.folder)?;
        value.setattr("item", c.item)?;
        value.setattr("operation", c.operation)?;
        value.setattr("connection", c.connection)?;
        value.setattr("retry_after", info.retry_after.map(|d| d.as_secs_f64()))?;
        value.setattr("diagnostics", info.diagnostics.into_iter().map(Diagnostic).collect::<Vec<_>>())?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

/// A binding error as the Python exception of its kind.
pub fn to_pyerr(e: BindingError) -> PyErr {
    Python::with_gil(|py| exception(py, e.info()))
}

/// A shorthand for an invalid keyword argument value.
pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> PyErr {
    to_pyerr(BindingError::invalid(path, message))
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
    m.add("InvalidSyncTokenError", py.get_type::<InvalidSyncTokenError>())?;
    m.add("TransientError", py.get_type::<TransientError>())?;
    m.add("PermanentError", py.get_type::<PermanentError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add_class::<Diagnostic>()?;
    Ok(())
}
