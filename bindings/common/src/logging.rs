//! Rust `tracing` events forwarded to a language's logging: one subscriber layer, one level map,
//! and a sink the language implements (Python's `logging`, a C# `LogListener`).
//!
//! Events above the level the language asked for are not even produced (the level takes part in
//! `tracing`'s interest cache), so verbose logging costs nothing unless asked for.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::error::{BindingError, Result};

/// One log event, as a sink receives it.
#[derive(Debug)]
pub struct LogRecord<'a> {
    /// The level.
    pub level: Level,
    /// The Rust target (module path), e.g. `exchange_sync::service`.
    pub target: &'a str,
    /// The message with the event's fields appended as ` key=value`.
    pub message: String,
    /// The event's fields, in order.
    pub fields: Vec<(String, String)>,
    /// The Rust file and line, when known.
    pub file: Option<&'a str>,
    /// The line in `file`.
    pub line: Option<u32>,
    /// The module path, when known.
    pub module_path: Option<&'a str>,
}

/// Receives forwarded log events; called on whatever thread logs (often a runtime thread).
pub trait LogSink: Send + Sync {
    /// One event. A sink must not fail the caller: it reports its own failures.
    fn log(&self, record: LogRecord<'_>);
}

/// The most verbose level forwarded: 0 none, 1 error, 2 warn, 3 info, 4 debug, 5 trace.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// The sink.
static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static INSTALL: Once = Once::new();

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The level a name means: `error`, `warn` (or `warning`), `info`, `debug`, `trace`, in any case.
pub fn parse_level(name: &str) -> Result<Level> {
    match name.to_ascii_lowercase().as_str() {
        "error" => Ok(Level::ERROR),
        "warn" | "warning" => Ok(Level::WARN),
        "info" => Ok(Level::INFO),
        "debug" => Ok(Level::DEBUG),
        "trace" => Ok(Level::TRACE),
        other => Err(BindingError::invalid(
            "level",
            format!("unknown level {other:?}: expected error, warn, info, debug or trace"),
        )),
    }
}

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

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let sink = SINK.read().ok().and_then(|s| s.clone());
        let Some(sink) = sink else { return };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (k, v) in &fields.pairs {
            let _ = write!(message, " {k}={v}");
        }
        sink.log(LogRecord {
            level: *meta.level(),
            target: meta.target(),
            message,
            fields: fields.pairs,
            file: meta.file(),
            line: meta.line(),
            module_path: meta.module_path(),
        });
    }
}

/// Forwards events at `level` or more severe to `sink` (replacing an earlier sink). Installs the
/// forwarding as the process's `tracing` subscriber on first use, unless the process has one.
pub fn forward_to(sink: Arc<dyn LogSink>, level: Level) {
    INSTALL.call_once(|| {
        let _ = tracing_subscriber::registry().with(Forward).try_init();
    });
    if let Ok(mut slot) = SINK.write() {
        *slot = Some(sink);
    }
    set_level(Some(level));
}

/// Bounds what is forwarded (none: nothing), keeping the sink.
pub fn set_level(level: Option<Level>) {
    MAX_LEVEL.store(level.as_ref().map_or(0, rank), Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// Stops forwarding and releases the sink.
pub fn stop_forwarding() {
    set_level(None);
    let old = SINK.write().ok().and_then(|mut s| s.take());
    drop(old);
}
