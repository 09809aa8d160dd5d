//! Rust `tracing` events forwarded to Python `logging` (`exchange_sync_bindings::logging`).
//!
//! Each event becomes a `logging.LogRecord` on the logger named after its Rust target with `::`
//! replaced by `.` (`exchange_sync::service` logs to `exchange_sync.service`,
//! `exchange_sync_ews::client` to `exchange_sync_ews.client`), at the matching level (TRACE is
//! level 5), with the Rust file and line, the event's fields appended to the message as
//! `key=value` and available as `record.rust_fields`. Python's own logger levels and handlers
//! decide what is shown; `set_log_level` bounds what Rust produces at all (default `info`), so
//! debug events cost nothing unless asked for.

use std::sync::Arc;

use exchange_sync_bindings::logging::{self, LogRecord, LogSink};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tracing::Level;

/// The sink that hands events to Python's `logging`.
struct PythonLogging;

impl LogSink for PythonLogging {
    fn log(&self, record: LogRecord<'_>) {
        let name = record.target.replace("::", ".");
        let level = match record.level {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG => 10,
            _ => 5,
        };
        Python::with_gil(|py| {
            let emit = || -> PyResult<()> {
                let logger = py.import("logging")?.call_method1("getLogger", (&name,))?;
                if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    return Ok(());
                }
                let extra = PyDict::new(py);
                let rust_fields = PyDict::new(py);
                for (k, v) in &record.fields {
                    rust_fields.set_item(k, v)?;
                }
                extra.set_item("rust_fields", rust_fields)?;
                extra.set_item("rust_target", record.target)?;
                let file = record.file.unwrap_or("<rust>");
                let line = record.line.unwrap_or(0);
                let args = (
                    &name,
                    level,
                    file,
                    line,
                    &record.message,
                    PyTuple::empty(py),
                    py.None(),
                    record.module_path,
                    extra,
                );
                let made = logger.call_method1("makeRecord", args)?;
                logger.call_method1("handle", (made,))?;
                Ok(())
            };
            if let Err(e) = emit() {
                // A failing handler must not take the sync down; Python reports it.
                e.write_unraisable(py, None);
            }
        });
    }
}

/// Sets how verbose Rust logging is: `"error"`, `"warn"`, `"info"` (the default), `"debug"`
/// or `"trace"`. Python logger levels filter further.
#[pyfunction]
pub fn set_log_level(level: &str) -> PyResult<()> {
    let level = logging::parse_level(level).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.info().message))?;
    logging::set_level(Some(level));
    Ok(())
}

/// Stops forwarding (called at interpreter exit, so no runtime thread waits for the GIL then).
#[pyfunction]
pub fn _stop_log_forwarding() {
    logging::stop_forwarding();
}

/// Installs the forwarding (at level `info`) unless the process already has a tracing
/// subscriber, and stops forwarding at interpreter exit.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::forward_to(Arc::new(PythonLogging), Level::INFO);
    m.add_function(wrap_pyfunction!(set_log_level, m)?)?;
    let stop = wrap_pyfunction!(_stop_log_forwarding, m)?;
    m.add_function(stop.clone())?;
    m.py().import("atexit")?.call_method1("register", (stop,))?;
    Ok(())
}
