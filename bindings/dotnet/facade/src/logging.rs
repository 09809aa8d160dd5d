//! Rust `tracing` events forwarded to a C# `LogListener` (`exchange_sync_bindings::logging`).
//!
//! `ExchangeSyncFunctions.SetLogListener(listener, LogLevel.Info)` installs the listener: each
//! event at that level or more severe arrives as (level, target, message), the target being the
//! Rust module (`exchange_sync::service`), the message with the event's fields appended as
//! `key=value`. Events come on whatever thread logs them (often a runtime thread): a listener
//! must return quickly and must not call blocking methods of the bindings. Passwords and tokens
//! are never logged. `ClearLogListener()` stops forwarding; without a listener, events cost
//! nothing.

use std::sync::Arc;

use exchange_sync_bindings::logging::{self, LogRecord, LogSink};
use tracing::Level;

/// How severe a log event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Something is wrong but the work goes on.
    Warn,
    /// What the service does (passes, their results).
    Info,
    /// Details for diagnosis.
    Debug,
    /// Everything, including each request.
    Trace,
}

impl From<LogLevel> for Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        }
    }
}

/// Receives log events (implemented in C#).
#[uniffi::export(callback_interface)]
pub trait LogListener: Send + Sync {
    /// One event: its level, its Rust target (module path) and its message with fields.
    fn on_log(&self, level: LogLevel, target: String, message: String);
}

struct Listener(Box<dyn LogListener>);

impl LogSink for Listener {
    fn log(&self, record: LogRecord<'_>) {
        let level = match record.level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        };
        let target = record.target.to_owned();
        // An exception of the C# listener arrives as a panic: logging must never take a call down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.on_log(level, target, record.message)));
    }
}

/// Forwards Rust log events at `level` or more severe to `listener` (replacing any earlier
/// listener). Installs the forwarding as the process's `tracing` subscriber on first use, unless
/// the process already has one.
#[uniffi::export]
pub fn set_log_listener(listener: Box<dyn LogListener>, level: LogLevel) {
    logging::forward_to(Arc::new(Listener(listener)), level.into());
}

/// Stops forwarding log events and releases the listener.
#[uniffi::export]
pub fn clear_log_listener() {
    logging::stop_forwarding();
}

/// Logs one event through Rust's `tracing` (scripts and tests check their listener with it).
#[uniffi::export]
pub fn log_message(level: LogLevel, message: String) {
    match level {
        LogLevel::Error => tracing::error!(target: "exchange_sync_dotnet", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "exchange_sync_dotnet", "{message}"),
        LogLevel::Info => tracing::info!(target: "exchange_sync_dotnet", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "exchange_sync_dotnet", "{message}"),
        LogLevel::Trace => tracing::trace!(target: "exchange_sync_dotnet", "{message}"),
    }
}
