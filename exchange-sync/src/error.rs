//! The error type of the service: configuration, connection and sync failures.

use exchange_sync_core::ErrorKind;

use crate::config::ConfigError;

/// What can go wrong when building or running the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (every finding, with positions when it came from a file).
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigError),
    /// A sync failed in the engine, a connector or the state store (with its context).
    #[error(transparent)]
    Sync(#[from] exchange_sync_core::Error),
    /// A connection could not be set up (unsupported auth, bad TLS options, unreachable server).
    #[error("connection {connection}: {message}")]
    Connect {
        /// The connection's id.
        connection: String,
        /// What went wrong (never a secret).
        message: String,
        /// Whether retrying later can help (the server was unreachable, not misconfigured).
        retryable: bool,
    },
    /// No group has this id.
    #[error("no group has the id {0:?}")]
    UnknownGroup(String),
    /// A folder the configuration names does not exist (the hub's public folder, say); the
    /// message lists what exists instead.
    #[error("{message}")]
    MissingFolder {
        /// What was being done ("open hub"), for callers that show it apart from the message.
        operation: &'static str,
        /// The folder as the configuration names it (`public folder Company Contacts/Nope`).
        folder: String,
        /// What is missing, and what exists.
        message: String,
    },
    /// The service was stopped before the operation could finish.
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl Error {
    /// The class of this error, shared with the core (retry layers and exit codes act on it).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) | Error::UnknownGroup(_) => ErrorKind::Config,
            Error::Sync(e) => e.kind(),
            Error::Connect { retryable: true, .. } => ErrorKind::Transient,
            Error::Connect { retryable: false, .. } => ErrorKind::Permanent,
            Error::MissingFolder { .. } => ErrorKind::NotFound,
            Error::ShuttingDown => ErrorKind::Transient,
        }
    }

    /// Whether the caller may retry: the error is temporary and no lower layer has spent its
    /// retries on it already (a connector's client retries single requests and marks what it
    /// gave up on as exhausted; see [`exchange_sync_core::Error::retries_exhausted`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Sync(e) => e.is_retryable(),
            other => other.kind().is_retryable(),
        }
    }
}

/// The result type of the service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
