//! Error information both languages raise: the core's error kind as an enum, whether retrying
//! helps, the message, and where it happened (group, member, mailbox, folder, item, operation,
//! connection, the delay a server asked for, configuration findings).
//!
//! Python turns an [`ErrorInfo`] into the exception class of its kind, .NET into the nested
//! exception of its kind: the classification is made once, here, from the core's
//! [`exchange_sync_core::ErrorKind`], so the two languages cannot disagree on it.

use std::time::Duration;

use exchange_sync::config::{ConfigError, Diagnostic as ConfigDiagnostic, Severity};

/// The class of a failure: the core's error kinds, one to one, and the two the bindings add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The item or folder does not exist (any more).
    NotFound,
    /// The item changed since it was read (an optimistic-concurrency precondition failed).
    PreconditionFailed,
    /// The server asked to slow down.
    Throttled,
    /// A folder's sync token is no longer accepted (the engine starts that folder over).
    InvalidSyncToken,
    /// Credentials or rights are missing.
    Auth,
    /// The server cannot be reached at all, or is not trusted.
    Unreachable,
    /// A passing failure: retrying later may succeed.
    Transient,
    /// A failure retrying will not fix.
    Permanent,
    /// The state store failed.
    State,
    /// The mass-delete guard stopped a group.
    MassDelete,
    /// The configuration or an argument is invalid.
    Config,
    /// The API was used in a way that cannot work (a blocking call from a callback, a service
    /// started twice, a stopped emulator).
    Usage,
    /// The in-process EWS emulator failed.
    Emulator,
}

impl ErrorKind {
    /// The kind in snake case, as reports (`ErrorReport.kind`) and Python's `kind` name it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::Throttled => "throttled",
            ErrorKind::InvalidSyncToken => "invalid_sync_token",
            ErrorKind::Auth => "auth",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::State => "state",
            ErrorKind::MassDelete => "mass_delete",
            ErrorKind::Config => "config",
            ErrorKind::Usage => "usage",
            ErrorKind::Emulator => "emulator",
        }
    }

    /// The kind a report names (`ErrorReport.kind`); an unknown name is a permanent failure.
    pub fn from_name(name: &str) -> Self {
        [
            ErrorKind::NotFound,
            ErrorKind::PreconditionFailed,
            ErrorKind::Throttled,
            ErrorKind::InvalidSyncToken,
            ErrorKind::Auth,
            ErrorKind::Unreachable,
            ErrorKind::Transient,
            ErrorKind::State,
            ErrorKind::MassDelete,
            ErrorKind::Config,
            ErrorKind::Usage,
            ErrorKind::Emulator,
        ]
        .into_iter()
        .find(|k| k.name() == name)
        .unwrap_or(ErrorKind::Permanent)
    }
}

impl From<exchange_sync_core::ErrorKind> for ErrorKind {
    fn from(kind: exchange_sync_core::ErrorKind) -> Self {
        use exchange_sync_core::ErrorKind as Core;
        match kind {
            Core::NotFound => ErrorKind::NotFound,
            Core::PreconditionFailed => ErrorKind::PreconditionFailed,
            Core::Throttled => ErrorKind::Throttled,
            Core::InvalidSyncToken => ErrorKind::InvalidSyncToken,
            Core::Auth => ErrorKind::Auth,
            Core::Unreachable => ErrorKind::Unreachable,
            Core::Transient => ErrorKind::Transient,
            Core::Permanent => ErrorKind::Permanent,
            Core::State => ErrorKind::State,
            Core::MassDelete => ErrorKind::MassDelete,
            Core::Config => ErrorKind::Config,
        }
    }
}

/// Where an error happened, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ErrorContext {
    /// The sync group.
    pub group: Option<String>,
    /// The member folder (`hub` for the hub).
    pub member: Option<String>,
    /// The folder, e.g. `alice@contoso.test/contacts/Company Contacts`.
    pub folder: Option<String>,
    /// The mailbox the folder belongs to, when it is a mailbox folder.
    pub mailbox: Option<String>,
    /// The item id.
    pub item: Option<String>,
    /// The operation that failed (`create`, `update`, `open folder`, ...).
    pub operation: Option<String>,
    /// The connection id.
    pub connection: Option<String>,
}

impl ErrorContext {
    /// The context with `mailbox` filled in from `folder`.
    fn with_mailbox(mut self) -> Self {
        if self.mailbox.is_none() {
            self.mailbox = self.folder.as_deref().and_then(mailbox_of);
        }
        self
    }
}

/// The mailbox a folder description names (`alice@contoso.test/contacts` -> `alice@contoso.test`).
pub fn mailbox_of(folder: &str) -> Option<String> {
    let first = folder.split('/').next()?;
    first.contains('@').then(|| first.to_owned())
}

/// One finding of configuration validation, in the shape both languages hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Diagnostic {
    /// An error (`true`) or a warning.
    pub is_error: bool,
    /// The configuration path, e.g. `groups[0].members[2].direction`, or the keyword argument.
    pub path: String,
    /// What is wrong, and how to fix it.
    pub message: String,
    /// The file, when the configuration came from one.
    pub file: Option<String>,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// The whole finding as one line (`file:line:column: error: path: message`).
    pub text: String,
}

impl From<&ConfigDiagnostic> for Diagnostic {
    fn from(d: &ConfigDiagnostic) -> Self {
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Diagnostic {
            is_error: d.severity == Severity::Error,
            path: d.path.clone(),
            message: d.message.clone(),
            file: d.location.as_ref().and_then(|l| l.file.as_ref()).map(|f| f.display().to_string()),
            line: d.location.as_ref().map(|l| small(l.line)),
            column: d.location.as_ref().map(|l| small(l.column)),
            text: d.to_string(),
        }
    }
}

/// Everything a language needs to raise an error: kind, retryability, message and context.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// The class of the failure.
    pub kind: ErrorKind,
    /// Whether retrying the same call later can succeed.
    pub retryable: bool,
    /// The message, with context (never a secret).
    pub message: String,
    /// Where it happened.
    pub context: ErrorContext,
    /// The delay the server asked for, when it said.
    pub retry_after: Option<Duration>,
    /// Configuration findings (kind [`ErrorKind::Config`]).
    pub diagnostics: Vec<Diagnostic>,
}

impl ErrorInfo {
    /// An error of `kind` with `message` and `context`, retryable as the kind says.
    pub fn new(kind: ErrorKind, message: impl Into<String>, context: ErrorContext) -> Self {
        let retryable = matches!(kind, ErrorKind::Throttled | ErrorKind::Transient);
        ErrorInfo {
            kind,
            retryable,
            message: message.into(),
            context: context.with_mailbox(),
            retry_after: None,
            diagnostics: Vec::new(),
        }
    }

    /// The error a report's entry describes (`ErrorReport`), in `group` when known: what
    /// `raise_for_errors` / `ThrowIfFailed` raise.
    pub fn of_report(report: &crate::records::ErrorReport, group: Option<&str>) -> Self {
        let context = ErrorContext {
            group: group.map(str::to_owned),
            member: report.member.clone(),
            item: report.item.clone(),
            operation: report.operation.clone(),
            ..ErrorContext::default()
        };
        ErrorInfo {
            retryable: report.retryable,
            ..Self::new(ErrorKind::from_name(&report.kind), &report.message, context)
        }
    }

    fn of_config(e: &ConfigError) -> Self {
        ErrorInfo {
            diagnostics: e.diagnostics.iter().map(Diagnostic::from).collect(),
            ..Self::new(ErrorKind::Config, e.to_string(), ErrorContext::default())
        }
    }

    fn of_core(e: &exchange_sync_core::Error) -> Self {
        let mut context = ErrorContext::default();
        if let Some(c) = e.context() {
            context.group = c.group.as_ref().map(ToString::to_string);
            context.member = c.member.as_ref().map(ToString::to_string);
            context.folder = c.folder.clone();
            context.item = c.item.as_ref().map(ToString::to_string);
            context.operation = c.operation.map(str::to_owned);
        }
        if let exchange_sync_core::Error::MassDelete { member, group, .. } = e {
            context.member = Some(member.to_string());
            context.group = Some(group.to_string());
        }
        ErrorInfo {
            retryable: e.is_retryable(),
            retry_after: e.retry_after(),
            ..Self::new(e.kind().into(), e.to_string(), context)
        }
    }

    fn of_service(e: &exchange_sync::Error) -> Self {
        let context = match e {
            exchange_sync::Error::Config(c) => return Self::of_config(c),
            exchange_sync::Error::Sync(s) => return Self::of_core(s),
            // An unknown group is a mistake in the arguments: a finding at `groups`.
            exchange_sync::Error::UnknownGroup(_) => {
                return Self::of_config(&ConfigError::single("groups", e.to_string(), None));
            }
            exchange_sync::Error::Connect { connection, .. } => {
                ErrorContext { connection: Some(connection.clone()), ..ErrorContext::default() }
            }
            exchange_sync::Error::MissingFolder { operation, folder, .. } => ErrorContext {
                operation: Some((*operation).to_owned()),
                folder: Some(folder.clone()),
                ..ErrorContext::default()
            },
            _ => ErrorContext::default(),
        };
        ErrorInfo { retryable: e.is_retryable(), ..Self::new(e.kind().into(), e.to_string(), context) }
    }
}

/// What can go wrong in a binding call, before the language turns it into its exception.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// An error of the service (configuration, connection, sync).
    #[error(transparent)]
    Service(#[from] exchange_sync::Error),
    /// An invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The API was used in a way that cannot work.
    #[error("{0}")]
    Usage(String),
    /// The in-process EWS emulator failed.
    #[error("EWS emulator: {0}")]
    Emulator(String),
}

impl From<exchange_sync_core::Error> for BindingError {
    fn from(e: exchange_sync_core::Error) -> Self {
        BindingError::Service(exchange_sync::Error::Sync(e))
    }
}

impl BindingError {
    /// An invalid argument or configuration value at `path` (a configuration path, or the
    /// keyword argument that was wrong).
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        BindingError::Config(ConfigError::single(path, message, None))
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        BindingError::Usage(message.into())
    }

    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BindingError::Service(e) => ErrorInfo::of_service(e).kind,
            BindingError::Config(_) => ErrorKind::Config,
            BindingError::Usage(_) => ErrorKind::Usage,
            BindingError::Emulator(_) => ErrorKind::Emulator,
        }
    }

    /// Kind, retryability, message and context, as the languages raise them.
    pub fn info(&self) -> ErrorInfo {
        match self {
            BindingError::Service(e) => ErrorInfo::of_service(e),
            BindingError::Config(e) => ErrorInfo::of_config(e),
            BindingError::Usage(_) | BindingError::Emulator(_) => {
                ErrorInfo::new(self.kind(), self.to_string(), ErrorContext::default())
            }
        }
    }
}

/// The result of a binding call.
pub type Result<T, E = BindingError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{ErrorContext as CoreContext, MemberId};

    #[test]
    fn core_errors_keep_their_kind_and_context() {
        let e = exchange_sync_core::Error::NotFound {
            context: Box::new(
                CoreContext::operation("get")
                    .with_folder("alice@contoso.test/contacts")
                    .with_member(MemberId::new("alice")),
            ),
        };
        let info = BindingError::from(e).info();
        assert_eq!(info.kind, ErrorKind::NotFound);
        assert_eq!(info.context.mailbox.as_deref(), Some("alice@contoso.test"));
        assert_eq!(info.context.operation.as_deref(), Some("get"));
        assert_eq!(info.context.member.as_deref(), Some("alice"));
        assert!(!info.retryable && !info.message.is_empty());
    }

    #[test]
    fn an_unknown_group_is_a_configuration_error_with_a_finding() {
        let info = BindingError::from(exchange_sync::Error::UnknownGroup("nope".into())).info();
        assert_eq!(info.kind, ErrorKind::Config);
        assert!(info.message.contains("nope"), "{}", info.message);
        assert_eq!(info.diagnostics[0].path, "groups");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [ErrorKind::InvalidSyncToken, ErrorKind::Unreachable, ErrorKind::PreconditionFailed] {
            assert_eq!(ErrorKind::from_name(kind.name()), kind);
        }
        assert_eq!(ErrorKind::from_name("no such kind"), ErrorKind::Permanent);
        let core = exchange_sync_core::ErrorKind::InvalidSyncToken;
        assert_eq!(ErrorKind::from(core).name(), exchange_sync::report::kind_name(core));
    }
}
