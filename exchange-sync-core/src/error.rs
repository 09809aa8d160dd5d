//! The error type of the core, shared by connectors, state stores and the engine.
//!
//! Every error says *what* went wrong, *where* (group, member folder, item, operation) and whether
//! retrying can help ([`ErrorKind::is_retryable`]). Retry layers act on the kind, never on the text.

use std::fmt;
use std::time::Duration;

use crate::id::{GroupId, ItemId, MemberId};

/// Where an error happened. Every field is optional so that each layer adds what it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The operation that failed, e.g. `"create"` or `"changes"`.
    pub operation: Option<&'static str>,
    /// The sync group being worked on.
    pub group: Option<GroupId>,
    /// The member folder (the hub is a member too) being worked on.
    pub member: Option<MemberId>,
    /// A human-readable description of the folder, e.g. `alice@contoso.test/Contacts`.
    pub folder: Option<String>,
    /// The item concerned, for per-item errors.
    pub item: Option<ItemId>,
}

impl ErrorContext {
    /// A context naming only the operation.
    pub fn operation(operation: &'static str) -> Self {
        Self { operation: Some(operation), ..Self::default() }
    }

    /// Adds the folder description.
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = Some(folder.into());
        self
    }

    /// Adds the item id.
    pub fn with_item(mut self, item: ItemId) -> Self {
        self.item = Some(item);
        self
    }

    /// Adds the group id.
    pub fn with_group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// Adds the member id.
    pub fn with_member(mut self, member: MemberId) -> Self {
        self.member = Some(member);
        self
    }

    /// Fills every field that is not yet set from `outer`, so that inner layers keep precedence.
    pub fn inherit(mut self, outer: &ErrorContext) -> Self {
        self.operation = self.operation.or(outer.operation);
        self.group = self.group.or_else(|| outer.group.clone());
        self.member = self.member.or_else(|| outer.member.clone());
        self.folder = self.folder.or_else(|| outer.folder.clone());
        self.item = self.item.or_else(|| outer.item.clone());
        self
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(op) = self.operation {
            parts.push(format!("during {op}"));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group {g}"));
        }
        if let Some(m) = &self.member {
            parts.push(format!("member {m}"));
        }
        if let Some(folder) = &self.folder {
            parts.push(format!("folder {folder}"));
        }
        if let Some(item) = &self.item {
            parts.push(format!("item {item}"));
        }
        if parts.is_empty() { f.write_str("(no context)") } else { f.write_str(&parts.join(", ")) }
    }
}

/// The class of an error: what a caller or a retry layer should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The item or folder does not exist (any more).
    NotFound,
    /// The item changed since the version we hold: re-read and re-plan.
    PreconditionFailed,
    /// The server asked us to slow down; retry after the given delay.
    Throttled,
    /// The sync token is no longer accepted: start over without it and diff against state.
    InvalidSyncToken,
    /// Credentials or rights are missing; retrying will not help until an admin acts.
    Auth,
    /// The server cannot be reached at all (connection refused, unknown host) or is not trusted
    /// (TLS certificate verification failed); retrying will not help until an admin acts.
    Unreachable,
    /// A passing failure (network, timeout, server restart); retrying may succeed.
    Transient,
    /// A failure that retrying will not fix (bad request, unsupported operation).
    Permanent,
    /// The state store failed.
    State,
    /// The mass-delete guard stopped a group; an admin must confirm.
    MassDelete,
    /// Configuration or input is invalid.
    Config,
}

impl ErrorKind {
    /// Whether retrying the same request later can succeed without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// A boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of exchange-sync-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::NotFound`].
    #[error("not found ({context})")]
    NotFound {
        /// Where.
        context: Box<ErrorContext>,
    },
    /// See [`ErrorKind::PreconditionFailed`].
    #[error("precondition failed: the item changed since it was read ({context})")]
    PreconditionFailed {
        /// Where.
        context: Box<ErrorContext>,
    },
    /// See [`ErrorKind::Throttled`].
    #[error("throttled by the server{}{} ({context})", retry_after.map(|d| format!(", retry after {} ms", d.as_millis())).unwrap_or_default(), if *exhausted { "; retries exhausted" } else { "" })]
    Throttled {
        /// How long the server asked us to wait, when it said.
        retry_after: Option<Duration>,
        /// Whether the layer that owns retries of this request already retried it as often as its
        /// policy allows (or parked it for the server's whole back-off): no upper layer retries it
        /// again (see [`Error::retries_exhausted`]).
        exhausted: bool,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// See [`ErrorKind::InvalidSyncToken`].
    #[error("sync token rejected, a full resync is needed ({context})")]
    InvalidSyncToken {
        /// Where.
        context: Box<ErrorContext>,
    },
    /// See [`ErrorKind::Auth`].
    #[error("access denied: {message} ({context})")]
    Auth {
        /// What the server said (never a credential).
        message: String,
        /// Where.
        context: Box<ErrorContext>,
    },
    /// See [`ErrorKind::Unreachable`].
    #[error("server unreachable: {message} ({context})")]
    Unreachable {
        /// What failed (refused, unknown host, untrusted certificate), never a credential.
        message: String,
        /// Where.
        context: Box<ErrorContext>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Transient`].
    #[error("temporary failure: {message}{} ({context})", if *exhausted { "; retries exhausted" } else { "" })]
    Transient {
        /// What happened.
        message: String,
        /// Whether the layer that owns retries of this request already retried it as often as its
        /// policy allows: no upper layer retries it again (see [`Error::retries_exhausted`]).
        exhausted: bool,
        /// Where.
        context: Box<ErrorContext>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Permanent`].
    #[error("{message} ({context})")]
    Permanent {
        /// What happened.
        message: String,
        /// Where.
        context: Box<ErrorContext>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::State`].
    #[error("state store: {message}")]
    State {
        /// What happened.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A worker sharing a state database with others wrote to a group whose lease it no longer
    /// holds: it was paused or cut off past the lease's expiry and another worker took the group
    /// over (kind [`ErrorKind::State`], not retryable). Nothing was written; the worker must stop
    /// working on the group, whose new owner resumes it from the state.
    #[error("state store: lease of group {group} lost: {message}")]
    LeaseLost {
        /// The group.
        group: GroupId,
        /// Who holds the lease now, and which token this worker had.
        message: String,
    },
    /// See [`ErrorKind::MassDelete`].
    #[error(
        "mass-delete guard: the run would delete {would_delete} of {total} items in member {member} of group {group} \
         (limit {limit}); nothing was deleted. Check the folder path, permissions and server health, \
         then confirm the deletion explicitly if it is intended"
    )]
    MassDelete {
        /// The group that was stopped.
        group: GroupId,
        /// The member folder that would have lost items.
        member: MemberId,
        /// How many items the plan would delete there.
        would_delete: usize,
        /// How many items of the group the folder holds.
        total: usize,
        /// The largest number of deletions allowed without confirmation.
        limit: usize,
    },
    /// Every copy the group knew in a folder vanished at once (design rule 11): a wrong folder,
    /// lost permissions or a wiped mailbox look exactly like this, so nothing is propagated until
    /// an admin confirms (kind [`ErrorKind::MassDelete`]).
    #[error(
        "every one of the {copies} items the group knew in {member} of group {group} vanished at once; nothing was \
         deleted anywhere. Check the folder path, permissions and server health, then confirm the deletion \
         explicitly if it is intended"
    )]
    Vanished {
        /// The group that was stopped.
        group: GroupId,
        /// The folder whose copies vanished.
        member: MemberId,
        /// How many copies vanished.
        copies: usize,
    },
    /// See [`ErrorKind::Config`].
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong and where.
        message: String,
    },
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Error::Throttled { .. } => ErrorKind::Throttled,
            Error::InvalidSyncToken { .. } => ErrorKind::InvalidSyncToken,
            Error::Auth { .. } => ErrorKind::Auth,
            Error::Unreachable { .. } => ErrorKind::Unreachable,
            Error::Transient { .. } => ErrorKind::Transient,
            Error::Permanent { .. } => ErrorKind::Permanent,
            Error::State { .. } | Error::LeaseLost { .. } => ErrorKind::State,
            Error::MassDelete { .. } | Error::Vanished { .. } => ErrorKind::MassDelete,
            Error::Config { .. } => ErrorKind::Config,
        }
    }

    /// Whether a caller may retry this error: its kind is retryable ([`ErrorKind::is_retryable`])
    /// and no lower layer has already spent its retries on it ([`Error::retries_exhausted`]).
    ///
    /// Retries have one owner per request: the connector's client retries single requests,
    /// honouring the server's delay in full, and marks what it gave up on as exhausted. Upper
    /// layers (engine, executor, service) act on this method and never retry an exhausted error,
    /// so that retries do not multiply across layers.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable() && !self.retries_exhausted()
    }

    /// Whether the layer that owns retries of this request gave up on it: the error is temporary
    /// by nature, but sending it again now would only add load (the server's back-off has not
    /// ended, or every attempt the retry policy allows failed). The next pass tries again.
    pub fn retries_exhausted(&self) -> bool {
        matches!(self, Error::Throttled { exhausted: true, .. } | Error::Transient { exhausted: true, .. })
    }

    /// This error, marked as retried by its owner as often as allowed (see
    /// [`Error::retries_exhausted`]); errors of other kinds are returned unchanged.
    pub fn exhausted(mut self) -> Self {
        if let Error::Throttled { exhausted, .. } | Error::Transient { exhausted, .. } = &mut self {
            *exhausted = true;
        }
        self
    }

    /// How long to wait before retrying, when the server said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The context of this error, for the variants that carry one.
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            Error::NotFound { context }
            | Error::PreconditionFailed { context }
            | Error::Throttled { context, .. }
            | Error::InvalidSyncToken { context }
            | Error::Auth { context, .. }
            | Error::Unreachable { context, .. }
            | Error::Transient { context, .. }
            | Error::Permanent { context, .. } => Some(&**context),
            _ => None,
        }
    }

    /// Adds outer context (group, member, folder) to an error coming from an inner layer.
    pub fn in_context(mut self, outer: &ErrorContext) -> Self {
        match &mut self {
            Error::NotFound { context }
            | Error::PreconditionFailed { context }
            | Error::Throttled { context, .. }
            | Error::InvalidSyncToken { context }
            | Error::Auth { context, .. }
            | Error::Unreachable { context, .. }
            | Error::Transient { context, .. }
            | Error::Permanent { context, .. } => {
                **context = std::mem::take(&mut **context).inherit(outer);
            }
            _ => {}
        }
        self
    }

    /// A state store error with its source.
    pub fn state(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::State { message: message.into(), source: Some(source.into()) }
    }

    /// A permanent error without a source.
    pub fn permanent(message: impl Into<String>, context: ErrorContext) -> Self {
        Error::Permanent { message: message.into(), context: Box::new(context), source: None }
    }

    /// A transient error without a source.
    pub fn transient(message: impl Into<String>, context: ErrorContext) -> Self {
        Error::Transient { message: message.into(), exhausted: false, context: Box::new(context), source: None }
    }

    /// A throttling error: the server asked to wait `retry_after` (when it said).
    pub fn throttled(retry_after: Option<Duration>, context: ErrorContext) -> Self {
        Error::Throttled { retry_after, exhausted: false, context: Box::new(context) }
    }
}

/// The result type of exchange-sync-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds_are_only_throttled_and_transient() {
        let retryable: Vec<_> = [
            ErrorKind::NotFound,
            ErrorKind::PreconditionFailed,
            ErrorKind::Throttled,
            ErrorKind::InvalidSyncToken,
            ErrorKind::Auth,
            ErrorKind::Unreachable,
            ErrorKind::Transient,
            ErrorKind::Permanent,
            ErrorKind::State,
            ErrorKind::MassDelete,
            ErrorKind::Config,
        ]
        .into_iter()
        .filter(|k| k.is_retryable())
        .collect();
        assert_eq!(retryable, vec![ErrorKind::Throttled, ErrorKind::Transient]);
    }

    #[test]
    fn context_is_inherited_without_overwriting() {
        let inner = ErrorContext::operation("update").with_item(ItemId::new("AAMk1"));
        let outer = ErrorContext::operation("sync")
            .with_group(GroupId::new("contacts"))
            .with_folder("alice@contoso.test/Contacts");
        let err = Error::PreconditionFailed { context: Box::new(inner) }.in_context(&outer);
        let text = err.to_string();
        assert!(text.contains("during update"), "{text}");
        assert!(text.contains("group contacts"), "{text}");
        assert!(text.contains("alice@contoso.test/Contacts"), "{text}");
        assert!(text.contains("item AAMk1"), "{text}");
    }

    #[test]
    fn throttled_reports_delay() {
        let err = Error::throttled(Some(Duration::from_millis(1500)), ErrorContext::operation("create"));
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert!(err.to_string().contains("1500 ms"));
        assert!(err.is_retryable());
    }

    #[test]
    fn exhausted_errors_are_not_retried_by_upper_layers() {
        let err = Error::throttled(Some(Duration::from_secs(300)), ErrorContext::operation("list")).exhausted();
        assert_eq!(err.kind(), ErrorKind::Throttled, "the kind stays: it is still throttling");
        assert!(err.retries_exhausted());
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("retries exhausted"), "{err}");
        let transient = Error::transient("connection reset", ErrorContext::default()).exhausted();
        assert!(!transient.is_retryable());
        let other = Error::NotFound { context: Box::default() }.exhausted();
        assert!(!other.retries_exhausted(), "only temporary errors carry the mark");
    }
}
