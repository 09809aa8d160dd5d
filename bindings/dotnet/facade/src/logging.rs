//! Rust `tracing` events forwarded to a C# `LogListener`.
//!
//! `ExchangeSyncFunctions.SetLogListener(listener, LogLevel.Info)` installs the listener: each
//! event at that level or more severe arrives as (level, target, message), the target being the
//! Rust module (`exchange_sync::service`), the message with the event's fields appended as
//! `key=value`. Events come on whatever thread logs them (often a runtime thread): a listener
//! must return quickly and must not call blocking methods of the bindings. Passwords and tokens
//! are never logged. `ClearLogListener()` stops forwarding; without a listener, events cost
//! nothing.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

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

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        Level::TRACE => LogLevel::Trace,
    }
}

/// Receives log events (implemented in C#).
#[uniffi::export(callback_interface)]
pub trait LogListener: Send + Sync {
    /// One event: its level, its Rust target (module path) and its message with fields.
    fn on_log(&self, level: LogLevel, target: String, message: String);
}

/// The most verbose level forwarded (0: none).
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// The listener.
static LISTENER: RwLock<Option<Arc<dyn LogListener>>> = RwLock::new(None);
static INSTALL: Once = Once::new();

#[derive(Default)]
struct Fields {
    message: String,
    pairs: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            let _ = write!(self.pairs, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.pairs, " {}={value:?}", field.name());
        }
    }
}

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let listener = LISTENER.read().ok().and_then(|l| l.clone());
        let Some(listener) = listener else { return };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields.message.push_str(&fields.pairs);
        // An exception of the C# listener arrives as a panic: logging must never take a call down.
        let level = level_of(meta.level());
        let target = meta.target().to_owned();
        let _ =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener.on_log(level, target, fields.message)));
    }
}

/// Forwards Rust log events at `level` or more severe to `listener` (replacing any earlier
/// listener). Installs the forwarding as the process's `tracing` subscriber on first use, unless
/// the process already has one.
#[uniffi::export]
pub fn set_log_listener(listener: Box<dyn LogListener>, level: LogLevel) {
    INSTALL.call_once(|| {
        let _ = tracing_subscriber::registry().with(Forward).try_init();
    });
    if let Ok(mut slot) = LISTENER.write() {
        *slot = Some(Arc::from(listener));
    }
    let rank = match level {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    };
    MAX_LEVEL.store(rank, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// Stops forwarding log events and releases the listener.
#[uniffi::export]
pub fn clear_log_listener() {
    MAX_LEVEL.store(0, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
    let old = LISTENER.write().ok().and_then(|mut l| l.take());
    drop(old);
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
