//! Errors of the emulator's own API (starting, serving), not EWS answers.

/// Whether retrying the failed call may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: e.g. a port in use that may free up.
    Retryable,
    /// Permanent: fix the configuration.
    Permanent,
}

/// What can go wrong when starting or running an emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trace directory could not be created.
    #[error("cannot create trace directory {dir}: {source}")]
    TraceDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate could not be generated or loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl EmulatorError {
    /// Retryable or permanent.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EmulatorError::Bind { .. } => ErrorKind::Retryable,
            EmulatorError::TraceDir { .. } | EmulatorError::Config(_) | EmulatorError::Tls(_) => ErrorKind::Permanent,
        }
    }
}
