//! Rust `tracing` events forwarded to Python `logging`.
//!
//! Each event becomes a `logging.LogRecord` on the logger named after its Rust target with `::`
//! replaced by `.` (`exchange_sync::service` logs to `exchange_sync.service`,
//! `exchange_sync_ews::client` to `exchange_sync_ews.client`), at the matching level (TRACE is
//! level 5), with the Rust file and line, the event's fields appended to the message as
//! `key=value` and available as `record.rust_fields`. Python's own logger levels and handlers
//! decide what is shown; `set_log_level` bounds what Rust produces at all (default `info`), so
//! debug events cost nothing unless asked for.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The most verbose level forwarded: 1 error, 2 warn, 3 info, 4 debug, 5 trace.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(3);
/// Off while the interpreter shuts down (no thread may take the GIL then).
static FORWARDING: AtomicBool = AtomicBool::new(true);

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn python_level(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs.push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.pairs.push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

/// The layer that hands events to Python.
struct PythonLogging;

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        FORWARDING.load(Ordering::Relaxed) && rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !FORWARDING.load(Ordering::Relaxed) {
            return;
        }
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (k, v) in &fields.pairs {
            let _ = write!(message, " {k}={v}");
        }
        let name = meta.target().replace("::", ".");
        let level = python_level(meta.level());
        Python::with_gil(|py| {
            let emit = || -> PyResult<()> {
                let logger = py.import("logging")?.call_method1("getLogger", (&name,))?;
                if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    return Ok(());
                }
                let extra = PyDict::new(py);
                let rust_fields = PyDict::new(py);
                for (k, v) in &fields.pairs {
                    rust_fields.set_item(k, v)?;
                }
                extra.set_item("rust_fields", rust_fields)?;
                extra.set_item("rust_target", meta.target())?;
                let record = logger.call_method1(
                    "makeRecord",
                    (
                        &name,
                        level,
                        meta.file().unwrap_or("<rust>"),
                        meta.line().unwrap_or(0),
                        &message,
                        pyo3::types::PyTuple::empty(py),
                        py.None(),
                        meta.module_path(),
                        extra,
                    ),
                )?;
                logger.call_method1("handle", (record,))?;
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
    let rank = match level.to_ascii_lowercase().as_str() {
        "error" => 1,
        "warn" | "warning" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown level {other:?}: expected error, warn, info, debug or trace"
            )));
        }
    };
    MAX_LEVEL.store(rank, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Stops forwarding (called at interpreter exit, so no runtime thread waits for the GIL then).
#[pyfunction]
pub fn _stop_log_forwarding() {
    FORWARDING.store(false, Ordering::Relaxed);
}

/// Installs the forwarding layer as the process's tracing subscriber (unless the process already
/// has one) and stops forwarding at interpreter exit.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let _ = tracing_subscriber::registry().with(PythonLogging).try_init();
    m.add_function(wrap_pyfunction!(set_log_level, m)?)?;
    let stop = wrap_pyfunction!(_stop_log_forwarding, m)?;
    m.add_function(stop.clone())?;
    m.py().import("atexit")?.call_method1("register", (stop,))?;
    Ok(())
}
