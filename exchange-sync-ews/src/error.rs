//! The crate's error type: what went wrong, whether retrying can help, and where it happened.
//!
//! Exchange reports failures in three places (HTTP status, SOAP fault, per-message `ResponseCode`);
//! they all end up here so that callers (retry loops, the sync engine) can act on [`EwsError::kind`]
//! without parsing strings. Errors never carry credentials: request bodies and headers are not kept.

use std::fmt;
use std::time::Duration;

/// Where an error happened: operation and, when known, mailbox, folder and item.
///
/// Kept small and textual so it can be shown to an administrator as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The EWS operation (e.g. `GetItem`).
    pub operation: Option<&'static str>,
    /// The mailbox the request acted on (impersonated or anchor mailbox).
    pub mailbox: Option<String>,
    /// The folder concerned, as an id or a distinguished name.
    pub folder: Option<String>,
    /// The item concerned (its EWS id).
    pub item: Option<String>,
}

impl ErrorContext {
    /// A context for one operation.
    pub fn operation(operation: &'static str) -> Self {
        Self { operation: Some(operation), ..Self::default() }
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation.unwrap_or("EWS"))?;
        if let Some(m) = &self.mailbox {
            write!(f, " mailbox={m}")?;
        }
        if let Some(d) = &self.folder {
            write!(f, " folder={d}")?;
        }
        if let Some(i) = &self.item {
            write!(f, " item={i}")?;
        }
        Ok(())
    }
}

/// What kind of failure an error is, which decides how a caller reacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server throttles us (ErrorServerBusy, HTTP 503/429, too many connections): wait and retry.
    Throttled,
    /// The server ran out of time on a request (ErrorTimeoutExpired): retry with smaller batches.
    Timeout,
    /// A network or server hiccup that may pass on its own: retry.
    Transient,
    /// A write whose outcome is unknown (connection lost after sending): check before retrying.
    Indeterminate,
    /// The rest of a batch was not processed because an earlier entry failed: retry it singly.
    BatchStopped,
    /// The sync state given to SyncFolderItems / SyncFolderHierarchy is no longer valid: start over.
    InvalidSyncState,
    /// The item changed since it was read (ErrorIrresolvableConflict / stale change key): re-read.
    PreconditionFailed,
    /// The item or folder does not exist (any more).
    NotFound,
    /// The account may not do this (permissions, impersonation rights).
    AccessDenied,
    /// The mailbox does not exist.
    MailboxNotFound,
    /// Credentials were rejected.
    Unauthorized,
    /// A subscription expired or is unknown: resubscribe, then re-sync.
    SubscriptionLost,
    /// The server does not speak the requested schema version.
    UnsupportedVersion,
    /// The request was invalid (a bug on our side or invalid input).
    InvalidRequest,
    /// The response could not be understood.
    Protocol,
    /// The client was configured wrongly.
    Configuration,
    /// Any other server-side error.
    Server,
    /// The server cannot be reached (connection refused, unknown host) or is not trusted (TLS
    /// certificate verification failed): an administrator must act; retrying does not help.
    Unreachable,
    /// An answer exceeded one of the client's bounds (body size, pages of a listing): see
    /// [`crate::transport::TransportConfig`] and [`crate::client`] for the limits.
    LimitExceeded,
}

impl ErrorKind {
    /// Whether retrying the same request later can succeed without other changes.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Timeout | Self::Transient | Self::BatchStopped)
    }

    /// The kind of an EWS `ResponseCode` and, for `ErrorInternalServerError`, of the more specific
    /// code Exchange puts beside it (`InnerErrorResponseCode` in `MessageXml`).
    ///
    /// An internal error is transient unless its inner code says otherwise: a known inner code
    /// gives its own kind (ErrorServerBusy: throttled, ErrorItemNotFound: not found, ...), an
    /// inner code known to be permanent (a quota, a license) gives [`ErrorKind::Server`], and an
    /// unknown inner code leaves it transient.
    pub fn of_response(code: &str, inner_code: Option<&str>) -> Self {
        let outer = Self::from_response_code(code);
        let Some(inner) = inner_code.filter(|_| code == "ErrorInternalServerError") else { return outer };
        match Self::from_response_code(inner) {
            Self::Server if is_permanent_code(inner) => Self::Server,
            Self::Server => outer,
            known => known,
        }
    }

    /// The kind of an EWS `ResponseCode` (e.g. `ErrorServerBusy`).
    pub fn from_response_code(code: &str) -> Self {
        match code {
            "ErrorServerBusy"
            | "ErrorExceededConnectionCount"
            | "ErrorTooManyObjectsOpened"
            | "ErrorExceededSubscriptionCount"
            | "ErrorMailboxStoreUnavailable" => Self::Throttled,
            "ErrorTimeoutExpired" => Self::Timeout,
            // Exchange aborts a request it answers with an internal error; it is safe to send again.
            "ErrorInternalServerError"
            | "ErrorInternalServerTransientError"
            | "ErrorConnectionFailed"
            | "ErrorMailboxMoveInProgress"
            | "ErrorProxyRequestProcessingFailed" => Self::Transient,
            "ErrorBatchProcessingStopped" => Self::BatchStopped,
            "ErrorInvalidSyncStateData" | "ErrorSyncFolderNotFound" => Self::InvalidSyncState,
            "ErrorIrresolvableConflict" | "ErrorChangeKeyRequiredForWriteOperations" | "ErrorStaleObject" => {
                Self::PreconditionFailed
            }
            "ErrorItemNotFound" | "ErrorFolderNotFound" | "ErrorInvalidIdNotAnItemAttachmentId" => Self::NotFound,
            "ErrorAccessDenied"
            | "ErrorImpersonateUserDenied"
            | "ErrorImpersonationDenied"
            | "ErrorNoPublicFolderReplicaAvailable"
            | "ErrorCannotOpenFileAttachment" => Self::AccessDenied,
            "ErrorNonExistentMailbox" | "ErrorMailboxNotFound" => Self::MailboxNotFound,
            "ErrorSubscriptionNotFound"
            | "ErrorInvalidSubscription"
            | "ErrorExpiredSubscription"
            | "ErrorMissedNotificationEvents"
            | "ErrorInvalidWatermark"
            | "ErrorSubscriptionAccessDenied" => Self::SubscriptionLost,
            "ErrorInvalidServerVersion" | "ErrorIncorrectSchemaVersion" | "ErrorInvalidRequestVersion" => {
                Self::UnsupportedVersion
            }
            "ErrorSchemaValidation"
            | "ErrorInvalidRequest"
            | "ErrorInvalidPropertyRequest"
            | "ErrorInvalidIdMalformed"
            | "ErrorInvalidPropertySet"
            | "ErrorInvalidOperation" => Self::InvalidRequest,
            _ => Self::Server,
        }
    }
}

/// Codes that [`ErrorKind::from_response_code`] files under [`ErrorKind::Server`] and that are known
/// not to pass by retrying: quotas (`ErrorQuotaExceeded`, `ErrorQuotaExceededOnDelete`, ...), a
/// missing license, a message over the size limit.
fn is_permanent_code(code: &str) -> bool {
    code.starts_with("ErrorQuotaExceeded") || matches!(code, "ErrorInvalidLicense" | "ErrorMessageSizeExceeded")
}

/// Why a server is unreachable (see [`EwsError::Unreachable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnreachableCause {
    /// Nothing listens at the address (connection refused).
    ConnectionRefused,
    /// The host name does not resolve.
    UnknownHost,
    /// The server's TLS certificate was not accepted (unknown issuer, wrong name, expired, ...).
    UntrustedCertificate,
    /// The TLS handshake failed for another reason (no common protocol version or cipher, ...).
    TlsHandshake,
}

/// Every error of the EWS client and connectors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EwsError {
    /// The server answered with an EWS error code (in a response message or a SOAP fault).
    #[error("{context}: {code}{}: {message}", inner_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Response {
        /// The EWS `ResponseCode`, e.g. `ErrorItemNotFound`.
        code: String,
        /// The server's `MessageText` (never contains our credentials), followed by the inner
        /// error's text when there is one.
        message: String,
        /// With `ErrorInternalServerError`: the more specific code Exchange names in `MessageXml`
        /// (`InnerErrorResponseCode`, e.g. `ErrorQuotaExceededOnDelete`), which decides the kind.
        inner_code: Option<String>,
        /// `BackOffMilliseconds` from `MessageXml`, sent with ErrorServerBusy.
        back_off: Option<Duration>,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The server answered with an HTTP error status and no SOAP body we could use.
    #[error("{context}: HTTP status {status}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` delay, when sent.
        retry_after: Option<Duration>,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The server cannot be reached or is not trusted; nothing was sent and retrying will not
    /// help until an administrator acts (see [`UnreachableCause`]).
    #[error("{context}: {message}")]
    Unreachable {
        /// What failed.
        cause: UnreachableCause,
        /// What failed and what to check, without URL credentials or headers.
        message: String,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The mailbox is in a back-off the server asked for, longer than the client waits inside a
    /// call ([`crate::RetryPolicy::max_inline_wait`]): the request was not sent. Try again after
    /// `retry_after`.
    #[error("{context}: the server asked this mailbox to back off; {} ms left, request not sent", retry_after.as_millis())]
    BackingOff {
        /// How much of the back-off is left.
        retry_after: Duration,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// An answer exceeded a bound of the client (body size, items on a page, pages of a listing).
    #[error("{context}: {reason}")]
    LimitExceeded {
        /// Which bound, with its value and the setting that raises it.
        reason: String,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The request did not get an answer (connect, TLS, timeout, connection reset).
    #[error("{context}: transport error: {message}")]
    Transport {
        /// What failed, without URL credentials or headers.
        message: String,
        /// True when the request may have reached the server (the outcome of a write is unknown).
        maybe_sent: bool,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The credentials were rejected (HTTP 401 after any token refresh).
    #[error("{context}: authentication rejected{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Unauthorized {
        /// Where it happened.
        context: Box<ErrorContext>,
        /// What the client found out about the refusal beyond the 401, e.g. that the server
        /// requires channel binding (Extended Protection).
        detail: Option<String>,
    },
    /// The response was not a well-formed or expected EWS document.
    #[error("{context}: malformed response: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// A streaming notification connection stopped sending (no heartbeat in time).
    #[error("{context}: notification stream stalled")]
    StreamStalled {
        /// Where it happened.
        context: Box<ErrorContext>,
    },
    /// The client was configured wrongly (bad URL, unreadable CA bundle, ...).
    #[error("configuration: {0}")]
    Configuration(String),
}

impl EwsError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Response { code, inner_code, .. } => ErrorKind::of_response(code, inner_code.as_deref()),
            Self::Http { status, .. } => match status {
                429 | 503 => ErrorKind::Throttled,
                401 => ErrorKind::Unauthorized,
                403 => ErrorKind::AccessDenied,
                404 => ErrorKind::NotFound,
                502 | 504 => ErrorKind::Transient,
                _ => ErrorKind::Server,
            },
            Self::Transport { maybe_sent: true, .. } => ErrorKind::Indeterminate,
            Self::Transport { .. } | Self::StreamStalled { .. } => ErrorKind::Transient,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::BackingOff { .. } => ErrorKind::Throttled,
            Self::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Self::Protocol { .. } => ErrorKind::Protocol,
            Self::Configuration(_) => ErrorKind::Configuration,
        }
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// How long the server asked us to wait, if it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Response { back_off, .. } => *back_off,
            Self::Http { retry_after, .. } => *retry_after,
            Self::BackingOff { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The inner error code of an `ErrorInternalServerError`, when the server named one.
    pub fn inner_code(&self) -> Option<&str> {
        match self {
            Self::Response { inner_code, .. } => inner_code.as_deref(),
            _ => None,
        }
    }

    /// The EWS response code, when the server sent one.
    pub fn response_code(&self) -> Option<&str> {
        match self {
            Self::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The context of this error (operation, mailbox, folder, item).
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            Self::Response { context, .. }
            | Self::Http { context, .. }
            | Self::Transport { context, .. }
            | Self::Unauthorized { context, .. }
            | Self::Unreachable { context, .. }
            | Self::BackingOff { context, .. }
            | Self::LimitExceeded { context, .. }
            | Self::Protocol { context, .. }
            | Self::StreamStalled { context } => Some(context),
            Self::Configuration(_) => None,
        }
    }

    /// The context of this error, to enrich it (mailbox, folder, item).
    pub fn context_mut(&mut self) -> Option<&mut ErrorContext> {
        match self {
            Self::Response { context, .. }
            | Self::Http { context, .. }
            | Self::Transport { context, .. }
            | Self::Unauthorized { context, .. }
            | Self::Unreachable { context, .. }
            | Self::BackingOff { context, .. }
            | Self::LimitExceeded { context, .. }
            | Self::Protocol { context, .. }
            | Self::StreamStalled { context } => Some(context),
            Self::Configuration(_) => None,
        }
    }

    /// This error with the item it concerns.
    pub fn with_item(mut self, item: impl Into<String>) -> Self {
        if let Some(c) = self.context_mut() {
            c.item = Some(item.into());
        }
        self
    }

    /// This error with the folder it concerns.
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        if let Some(c) = self.context_mut() {
            c.folder = Some(folder.into());
        }
        self
    }

    /// This error with the mailbox it concerns (kept if already set).
    pub fn with_mailbox(mut self, mailbox: Option<&str>) -> Self {
        if let (Some(c), Some(m)) = (self.context_mut(), mailbox)
            && c.mailbox.is_none()
        {
            c.mailbox = Some(m.to_owned());
        }
        self
    }

    pub(crate) fn protocol(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::Protocol { reason: reason.into(), context: Box::new(ErrorContext::operation(operation)) }
    }

    pub(crate) fn limit(operation: &'static str, reason: impl Into<String>) -> Self {
        Self::LimitExceeded { reason: reason.into(), context: Box::new(ErrorContext::operation(operation)) }
    }
}

/// Results of this crate.
pub type Result<T, E = EwsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_exchange_codes() {
        assert_eq!(ErrorKind::from_response_code("ErrorServerBusy"), ErrorKind::Throttled);
        assert_eq!(ErrorKind::from_response_code("ErrorInvalidSyncStateData"), ErrorKind::InvalidSyncState);
        assert_eq!(ErrorKind::from_response_code("ErrorIrresolvableConflict"), ErrorKind::PreconditionFailed);
        assert_eq!(ErrorKind::from_response_code("ErrorImpersonateUserDenied"), ErrorKind::AccessDenied);
        assert_eq!(ErrorKind::from_response_code("ErrorSomethingNew"), ErrorKind::Server);
        // Events were lost: subscribe again and re-sync, as for an expired subscription.
        assert_eq!(ErrorKind::from_response_code("ErrorMissedNotificationEvents"), ErrorKind::SubscriptionLost);
        assert!(ErrorKind::Throttled.is_retryable());
        assert!(!ErrorKind::Indeterminate.is_retryable());
        assert!(!ErrorKind::Unreachable.is_retryable());
        assert!(!ErrorKind::LimitExceeded.is_retryable());
    }

    #[test]
    fn internal_errors_are_classified_by_their_inner_code() {
        let internal = |inner| ErrorKind::of_response("ErrorInternalServerError", inner);
        assert_eq!(internal(None), ErrorKind::Transient, "without an inner code: transient");
        assert_eq!(internal(Some("ErrorQuotaExceededOnDelete")), ErrorKind::Server, "a quota does not pass");
        assert_eq!(internal(Some("ErrorQuotaExceeded")), ErrorKind::Server);
        assert_eq!(internal(Some("ErrorInvalidLicense")), ErrorKind::Server);
        assert_eq!(internal(Some("ErrorServerBusy")), ErrorKind::Throttled);
        assert_eq!(internal(Some("ErrorItemNotFound")), ErrorKind::NotFound);
        assert_eq!(internal(Some("ErrorSomethingNobodyKnows")), ErrorKind::Transient, "unknown: as the outer code");
        // Only an internal error is reclassified.
        assert_eq!(ErrorKind::of_response("ErrorItemNotFound", Some("ErrorServerBusy")), ErrorKind::NotFound);
    }

    #[test]
    fn display_carries_context() {
        let mut e = EwsError::Response {
            code: "ErrorItemNotFound".into(),
            message: "gone".into(),
            inner_code: None,
            back_off: None,
            context: Box::new(ErrorContext::operation("GetItem")),
        };
        e = e.with_mailbox(Some("alice@contoso.test")).with_item("AAMk=");
        let s = e.to_string();
        assert!(s.contains("GetItem") && s.contains("alice@contoso.test") && s.contains("AAMk="), "{s}");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
