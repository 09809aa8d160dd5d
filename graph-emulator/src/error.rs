//! Errors: [`GraphError`] is an error answer in Graph's JSON form; [`EmulatorError`] is a failure
//! to start the emulator.

use serde_json::{Value, json};

/// An error answer as Graph gives it: an HTTP status and `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// Graph's error code (`ErrorItemNotFound`, `SyncStateNotFound`, ...).
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl GraphError {
    /// An error with a status, code and message.
    pub fn new(status: u16, code: &str, message: String) -> Self {
        GraphError { status, code: code.to_owned(), message }
    }

    /// `400 Bad Request`.
    pub fn bad_request(code: &str, message: String) -> Self {
        Self::new(400, code, message)
    }

    /// `404 Not Found`.
    pub fn not_found(code: &str, message: String) -> Self {
        Self::new(404, code, message)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {"date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                           "request-id": uuid::Uuid::new_v4().to_string()}
        }})
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The trace directory could not be created.
    #[error("cannot create the trace directory {dir}: {source}")]
    TraceDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
