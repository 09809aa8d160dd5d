//! The CLI's log: to stderr (plain lines, coloured only on a terminal and without `NO_COLOR`;
//! JSON lines with `--json`), and to a file with rotation when the configuration names one.
//!
//! The level or filter, in `RUST_LOG` syntax (`info`, `exchange_sync=debug,warn`), comes from the
//! first of: `--log-level`, `EXCHANGE_SYNC_LOG`, `RUST_LOG`, `service.log.level`; stderr shows
//! warnings and errors by default (progress goes there as event lines), the log file `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogRotation, LogSettings};

/// Keeps the log file's writer alive: dropping it writes what is still buffered.
pub struct LogGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Whether stderr shows colours: on a terminal, unless `NO_COLOR` is set (<https://no-color.org>).
pub fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The filter asked for, if any: `--log-level` (which clap fills from `EXCHANGE_SYNC_LOG` too),
/// then `RUST_LOG`, then the configuration's level.
fn asked(flag: Option<&str>, settings: &LogSettings) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| settings.level.clone())
}

/// A filter from its text; the error says what is wrong with it.
pub fn filter(text: &str) -> Result<EnvFilter, String> {
    // A bare word is a target for `EnvFilter` ("loud" would log everything of a target "loud"):
    // only levels and targets that look like module paths are taken.
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=') && !directive.contains('[');
        let level = LEVELS.contains(&directive.to_ascii_lowercase().as_str());
        if bare && !level && !directive.contains('_') && !directive.contains("::") {
            return Err(format!(
                "log level {text:?}: {directive:?} is not a level (off, error, warn, info, debug, trace) nor a filter like \
                 \"exchange_sync=debug,warn\""
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|e| {
        format!("log level {text:?} is not a level (error, warn, info, debug, trace) nor a filter like \"exchange_sync=debug,warn\": {e}")
    })
}

/// Installs the log (once per process).
pub fn init(flag: Option<&str>, settings: &LogSettings, json: bool) -> Result<LogGuard, String> {
    let asked = asked(flag, settings);
    let stderr_filter = filter(asked.as_deref().unwrap_or("warn"))?;
    let file_filter = filter(asked.as_deref().unwrap_or("info"))?;
    let stderr = if json {
        tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(stderr_filter).boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(colours())
            .with_writer(std::io::stderr)
            .with_filter(stderr_filter)
            .boxed()
    };
    let (file, guard) = match &settings.file {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("service.log.file {} names no file", path.display()))?;
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
            let rotation = match settings.rotation {
                LogRotation::Daily => tracing_appender::rolling::Rotation::DAILY,
                LogRotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
                LogRotation::Never => tracing_appender::rolling::Rotation::NEVER,
            };
            let appender = tracing_appender::rolling::RollingFileAppender::builder()
                .rotation(rotation)
                .filename_prefix(name)
                .max_log_files(settings.keep.max(1))
                .build(dir)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer).with_filter(file_filter);
            (Some(layer.boxed()), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init()
        .map_err(|e| format!("cannot install the log: {e}"))?;
    Ok(LogGuard { _file: guard })
}
