//! The one exception type of the bindings: one nested exception per error kind of the core
//! (`exchange_sync_bindings::ErrorKind`), the same classification Python's exception classes
//! and the Rust retry layers use.
//!
//! | C# exception | when | retry? |
//! |---|---|---|
//! | `ExchangeSyncException.Config` | invalid configuration (`Diagnostics` with line and column), unknown group, bad argument | no |
//! | `ExchangeSyncException.Auth` | credentials or rights missing | no |
//! | `ExchangeSyncException.Unreachable` | connection refused, unknown host, untrusted certificate | no |
//! | `ExchangeSyncException.Throttled` | the server asked to slow down (`RetryAfterMs`) | yes |
//! | `ExchangeSyncException.Conflict` | the item changed since it was read (a precondition failed) | re-read |
//! | `ExchangeSyncException.MassDelete` | the mass-delete guard stopped a group | admin confirms |
//! | `ExchangeSyncException.NotFound` | the item or folder does not exist (any more) | no |
//! | `ExchangeSyncException.InvalidSyncToken` | a folder's sync token expired (the engine starts it over) | no |
//! | `ExchangeSyncException.Transient` | network, timeout, shutdown | yes |
//! | `ExchangeSyncException.Permanent` | a failure retrying will not fix | no |
//! | `ExchangeSyncException.State` | the state store failed | no |
//! | `ExchangeSyncException.Usage` | the API was used in a way that cannot work (blocking call in a callback, disposed emulator, service already running) | no |
//!
//! Every variant carries `Message` (the Rust error's text, with context, never a secret); all
//! but `Config` and `Usage` carry `Context` (group, member, folder, mailbox, item, operation,
//! connection when known).

use exchange_sync_bindings::records::RunReport;
use exchange_sync_bindings::{BindingError, Diagnostic, ErrorContext, ErrorInfo, ErrorKind};

/// Every failure of exchange-sync, as one exception type with a nested exception per kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum ExchangeSyncError {
    /// The configuration or an argument is invalid; `diagnostics` lists every finding.
    #[error("{message}")]
    Config {
        /// Every finding, one per line.
        message: String,
        /// The findings, with line and column for TOML text.
        diagnostics: Vec<Diagnostic>,
    },
    /// Credentials or rights are missing; retrying will not help until an admin acts.
    #[error("{message}")]
    Auth {
        /// What was refused.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// The server cannot be reached at all (connection refused, unknown host) or is not trusted
    /// (its TLS certificate failed verification); retrying will not help until an admin acts.
    #[error("{message}")]
    Unreachable {
        /// What could not be reached.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// The server asked to slow down.
    #[error("{message}")]
    Throttled {
        /// What was throttled.
        message: String,
        /// Where.
        context: ErrorContext,
        /// The delay the server asked for, in milliseconds, when it said.
        retry_after_ms: Option<u64>,
    },
    /// The item changed since it was read (an optimistic-concurrency precondition failed):
    /// re-read and retry.
    #[error("{message}")]
    Conflict {
        /// What conflicted.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// The mass-delete guard stopped a group: the run would have deleted too much. Run again
    /// with `allowMassDelete` once an admin confirmed.
    #[error("{message}")]
    MassDelete {
        /// What would have been deleted.
        message: String,
        /// The group and member.
        context: ErrorContext,
    },
    /// The item or folder does not exist (any more).
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// A folder's sync token is no longer accepted; the engine starts that folder over.
    #[error("{message}")]
    InvalidSyncToken {
        /// Which folder.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// A passing failure (network, timeout, shutdown): retrying later may succeed.
    #[error("{message}")]
    Transient {
        /// What failed.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// A failure that retrying will not fix (bad request, unsupported operation).
    #[error("{message}")]
    Permanent {
        /// What failed.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// The state store failed.
    #[error("{message}")]
    State {
        /// What failed.
        message: String,
        /// Where.
        context: ErrorContext,
    },
    /// The API was used in a way that cannot work (a blocking call from a callback, a stopped
    /// emulator, a service started twice).
    #[error("{message}")]
    Usage {
        /// What was wrong.
        message: String,
    },
}

impl From<ErrorInfo> for ExchangeSyncError {
    fn from(e: ErrorInfo) -> Self {
        let (message, context) = (e.message, e.context);
        match e.kind {
            ErrorKind::Config => ExchangeSyncError::Config { message, diagnostics: e.diagnostics },
            ErrorKind::Auth => ExchangeSyncError::Auth { message, context },
            ErrorKind::Unreachable => ExchangeSyncError::Unreachable { message, context },
            ErrorKind::Throttled => {
                let retry_after_ms = e.retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                ExchangeSyncError::Throttled { message, context, retry_after_ms }
            }
            ErrorKind::PreconditionFailed => ExchangeSyncError::Conflict { message, context },
            ErrorKind::MassDelete => ExchangeSyncError::MassDelete { message, context },
            ErrorKind::NotFound => ExchangeSyncError::NotFound { message, context },
            ErrorKind::InvalidSyncToken => ExchangeSyncError::InvalidSyncToken { message, context },
            ErrorKind::Transient => ExchangeSyncError::Transient { message, context },
            ErrorKind::Permanent => ExchangeSyncError::Permanent { message, context },
            ErrorKind::State => ExchangeSyncError::State { message, context },
            ErrorKind::Usage | ErrorKind::Emulator => ExchangeSyncError::Usage { message },
        }
    }
}

impl From<BindingError> for ExchangeSyncError {
    fn from(e: BindingError) -> Self {
        e.info().into()
    }
}

impl From<exchange_sync::config::ConfigError> for ExchangeSyncError {
    fn from(e: exchange_sync::config::ConfigError) -> Self {
        BindingError::from(e).into()
    }
}

/// Throws the first error of a run as the exception it would be; does nothing for a clean run.
#[uniffi::export]
pub fn throw_if_failed(report: RunReport) -> Result<()> {
    match report.first_error() {
        Some(e) => Err(ExchangeSyncError::from(e)),
        None => Ok(()),
    }
}

/// The result of a facade call.
pub type Result<T, E = ExchangeSyncError> = std::result::Result<T, E>;
