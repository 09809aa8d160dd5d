//! [`GraphError`]: what went wrong talking to Microsoft Graph, with [`ErrorKind`] saying what a
//! caller can do about it, and the context (mailbox, folder, item, operation) of every failure.

use std::fmt;
use std::time::Duration;

/// Where an error happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The operation (`delta`, `create`, `token`, ...).
    pub operation: Option<&'static str>,
    /// The mailbox acted on.
    pub mailbox: Option<String>,
    /// The item concerned.
    pub item: Option<String>,
}

impl ErrorContext {
    /// A context naming the operation and the mailbox.
    pub fn new(operation: &'static str, mailbox: &str) -> Self {
        ErrorContext { operation: Some(operation), mailbox: Some(mailbox.to_owned()), item: None }
    }

    /// Adds the item.
    pub fn with_item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(o) = self.operation {
            parts.push(format!("during {o}"));
        }
        if let Some(m) = &self.mailbox {
            parts.push(format!("mailbox {m}"));
        }
        if let Some(i) = &self.item {
            parts.push(format!("item {i}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The item, folder or mailbox does not exist (404).
    NotFound,
    /// The entity tag did not match (412): the item changed since it was read.
    PreconditionFailed,
    /// Graph asked to slow down (429, 503); retry after the delay.
    Throttled,
    /// The delta link is no longer accepted (410): start a new round.
    InvalidSyncState,
    /// The credentials were refused (token endpoint, 401).
    Unauthorized,
    /// The application lacks a permission or the mailbox is out of its scope (403).
    AccessDenied,
    /// Nothing answers at the address (refused, unknown host).
    Unreachable,
    /// A passing failure (network, 500, 502, 504): retrying may help.
    Transient,
    /// A write was sent and no answer came back: it may or may not have been applied.
    Indeterminate,
    /// A request Graph calls invalid (400, 405, ...), or an answer that breaks the protocol.
    Permanent,
    /// The client's configuration is invalid.
    Configuration,
}

impl ErrorKind {
    /// Whether sending the same request again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// The kind of an HTTP error status.
    pub fn of_status(status: u16) -> Self {
        match status {
            404 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::PreconditionFailed,
            410 => ErrorKind::InvalidSyncState,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::AccessDenied,
            429 | 503 => ErrorKind::Throttled,
            408 | 500 | 502 | 504 => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

/// The error type of the Graph client and connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("Graph answered {status} {code}: {message} ({context})")]
    Http {
        /// HTTP status.
        status: u16,
        /// Graph's error code (`ErrorItemNotFound`, `SyncStateNotFound`, ...).
        code: String,
        /// Graph's message.
        message: String,
        /// The delay Graph asked for (`Retry-After`).
        retry_after: Option<Duration>,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// The token endpoint refused the application's credentials (never includes them).
    #[error("the token endpoint refused the credentials: {error}: {description} ({context})")]
    Token {
        /// OAuth2 error (`invalid_client`, `unauthorized_client`, ...).
        error: String,
        /// The authority's description (AADSTS code and text).
        description: String,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// Requests to the mailbox are held back until Graph's back-off ends.
    #[error("backing off: Graph asked to wait {} ms more ({context})", remaining.as_millis())]
    BackingOff {
        /// How long the back-off still lasts.
        remaining: Duration,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// The server could not be reached at all.
    #[error("Graph unreachable: {message} ({context})")]
    Unreachable {
        /// What failed.
        message: String,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// The connection failed in a way that may pass.
    #[error("network failure: {source} ({context})")]
    Network {
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
        /// Whether a write was sent without an answer (its outcome is unknown).
        indeterminate: bool,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// A write was sent and its outcome is unknown: the connection broke before the answer, or
    /// the server failed while handling it (`500`, `502`, `504`).
    #[error("outcome unknown: {message} ({context})")]
    Indeterminate {
        /// What happened.
        message: String,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// An answer that breaks the protocol (bad JSON, a link to another host, paging that does
    /// not advance).
    #[error("protocol error: {message} ({context})")]
    Protocol {
        /// What was wrong.
        message: String,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// Invalid configuration (URL, secret file).
    #[error("configuration error: {0}")]
    Configuration(String),
}

/// Results of this crate.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

impl GraphError {
    /// What a caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::Http { status, code, .. } => {
                if code.eq_ignore_ascii_case("SyncStateNotFound")
                    || code.eq_ignore_ascii_case("resyncRequired")
                    || code.eq_ignore_ascii_case("SyncStateInvalid")
                {
                    ErrorKind::InvalidSyncState
                } else if code.eq_ignore_ascii_case("ErrorInvalidIdMalformed") {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::of_status(*status)
                }
            }
            GraphError::Token { .. } => ErrorKind::Unauthorized,
            GraphError::BackingOff { .. } => ErrorKind::Throttled,
            GraphError::Unreachable { .. } => ErrorKind::Unreachable,
            GraphError::Network { indeterminate: true, .. } | GraphError::Indeterminate { .. } => {
                ErrorKind::Indeterminate
            }
            GraphError::Network { .. } => ErrorKind::Transient,
            GraphError::Protocol { .. } => ErrorKind::Permanent,
            GraphError::Configuration(_) => ErrorKind::Configuration,
        }
    }

    /// The delay Graph asked for, when it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Http { retry_after, .. } => *retry_after,
            GraphError::BackingOff { remaining, .. } => Some(*remaining),
            _ => None,
        }
    }

    /// The HTTP status, for errors Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Where it happened.
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            GraphError::Http { context, .. }
            | GraphError::Token { context, .. }
            | GraphError::BackingOff { context, .. }
            | GraphError::Unreachable { context, .. }
            | GraphError::Network { context, .. }
            | GraphError::Indeterminate { context, .. }
            | GraphError::Protocol { context, .. } => Some(context),
            GraphError::Configuration(_) => None,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>, context: ErrorContext) -> Self {
        GraphError::Protocol { message: message.into(), context: Box::new(context) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: &str) -> GraphError {
        GraphError::Http {
            status,
            code: code.into(),
            message: String::new(),
            retry_after: None,
            context: Box::new(ErrorContext::default()),
        }
    }

    #[test]
    fn statuses_map_to_what_a_caller_can_do() {
        assert_eq!(http(404, "ErrorItemNotFound").kind(), ErrorKind::NotFound);
        assert_eq!(http(412, "ErrorIrresolvableConflict").kind(), ErrorKind::PreconditionFailed);
        assert_eq!(http(410, "Gone").kind(), ErrorKind::InvalidSyncState);
        assert_eq!(http(400, "syncStateNotFound").kind(), ErrorKind::InvalidSyncState);
        assert_eq!(http(429, "TooManyRequests").kind(), ErrorKind::Throttled);
        assert_eq!(http(503, "ServiceUnavailable").kind(), ErrorKind::Throttled);
        assert_eq!(http(403, "ErrorAccessDenied").kind(), ErrorKind::AccessDenied);
        assert_eq!(http(400, "BadRequest").kind(), ErrorKind::Permanent);
        assert!(http(502, "BadGateway").kind().is_retryable());
        assert!(!http(401, "InvalidAuthenticationToken").kind().is_retryable());
    }
}
