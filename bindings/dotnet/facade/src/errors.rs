//! The one exception type of the bindings, and how every Rust error maps onto it.
//!
//! C# sees `ExchangeSyncException` with one nested exception per variant, the same flat set the
//! Python bindings raise and the Rust retry layers act on:
//!
//! | C# exception | when | retry? |
//! |---|---|---|
//! | `ExchangeSyncException.Config` | invalid configuration (`Diagnostics` with line and column), unknown group, bad argument | no |
//! | `ExchangeSyncException.Auth` | credentials or rights missing | no |
//! | `ExchangeSyncException.Throttled` | the server asked to slow down (`RetryAfterMs`) | yes |
//! | `ExchangeSyncException.Conflict` | the item changed since it was read (a precondition failed) | re-read |
//! | `ExchangeSyncException.MassDelete` | the mass-delete guard stopped a group | admin confirms |
//! | `ExchangeSyncException.NotFound` | the item or folder does not exist (any more) | no |
//! | `ExchangeSyncException.Transient` | network, timeout, unreachable server, shutdown | yes |
//! | `ExchangeSyncException.Permanent` | a failure retrying will not fix | no |
//! | `ExchangeSyncException.State` | the state store failed | no |
//! | `ExchangeSyncException.Usage` | the API was used in a way that cannot work (blocking call in a callback, disposed emulator, service already running) | no |
//!
//! Every variant carries `Message` (the exception's message: the Rust error's text, with
//! context, never a secret); all but `Config` and `Usage` carry `Context` (group, member,
//! folder, mailbox, item, operation, connection when known) and `Retryable`.

use exchange_sync::config::{ConfigError, Diagnostic as RustDiagnostic, Severity};

/// Where an error happened, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
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

/// One finding of configuration validation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Diagnostic {
    /// `true` for an error, `false` for a warning.
    pub is_error: bool,
    /// The configuration path, e.g. `groups[0].members[2].direction`.
    pub path: String,
    /// What is wrong, and how to fix it.
    pub message: String,
    /// The file, when the configuration came from one.
    pub file: Option<String>,
    /// 1-based line in the TOML text, when known.
    pub line: Option<u32>,
    /// 1-based column in the TOML text, when known.
    pub column: Option<u32>,
    /// The whole finding as one line (`file:line:column: error: path: message`).
    pub text: String,
}

impl From<&RustDiagnostic> for Diagnostic {
    fn from(d: &RustDiagnostic) -> Self {
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

/// Every failure of exchange-sync, as one exception type with a nested exception per class.
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
    /// A passing failure (network, timeout, unreachable server, shutdown): retrying later may
    /// succeed.
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

impl ExchangeSyncError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        ExchangeSyncError::Usage { message: message.into() }
    }

    /// An invalid argument or configuration value at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::from(ConfigError::single(path, message, None))
    }

    /// The variant of an error kind (as reports name it: `not_found`, `throttled`, ...).
    pub fn of_kind(kind: &str, message: String, context: ErrorContext, retry_after_ms: Option<u64>) -> Self {
        match kind {
            "config" => ExchangeSyncError::Config { message, diagnostics: Vec::new() },
            "auth" => ExchangeSyncError::Auth { message, context },
            "throttled" => ExchangeSyncError::Throttled { message, context, retry_after_ms },
            "precondition_failed" => ExchangeSyncError::Conflict { message, context },
            "mass_delete" => ExchangeSyncError::MassDelete { message, context },
            "not_found" => ExchangeSyncError::NotFound { message, context },
            "transient" | "invalid_sync_token" => ExchangeSyncError::Transient { message, context },
            "state" => ExchangeSyncError::State { message, context },
            _ => ExchangeSyncError::Permanent { message, context },
        }
    }
}

/// The mailbox a folder description names (`alice@contoso.test/contacts` -> `alice@contoso.test`).
pub fn mailbox_of(folder: &str) -> Option<String> {
    let first = folder.split('/').next()?;
    first.contains('@').then(|| first.to_owned())
}

impl From<ConfigError> for ExchangeSyncError {
    fn from(e: ConfigError) -> Self {
        ExchangeSyncError::Config {
            message: e.to_string(),
            diagnostics: e.diagnostics.iter().map(Diagnostic::from).collect(),
        }
    }
}

impl From<exchange_sync_core::Error> for ExchangeSyncError {
    fn from(e: exchange_sync_core::Error) -> Self {
        let mut context = ErrorContext::default();
        if let Some(c) = e.context() {
            context.group = c.group.as_ref().map(ToString::to_string);
            context.member = c.member.as_ref().map(ToString::to_string);
            context.folder = c.folder.clone();
            context.item = c.item.as_ref().map(ToString::to_string);
            context.operation = c.operation.map(str::to_owned);
        }
        if let exchange_sync_core::Error::MassDelete { member, group, .. } = &e {
            context.member = Some(member.to_string());
            context.group = Some(group.to_string());
        }
        context.mailbox = context.folder.as_deref().and_then(mailbox_of);
        let retry_after_ms = e.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let kind = exchange_sync::report::kind_name(e.kind());
        Self::of_kind(kind, e.to_string(), context, retry_after_ms)
    }
}

impl From<exchange_sync::Error> for ExchangeSyncError {
    fn from(e: exchange_sync::Error) -> Self {
        match e {
            exchange_sync::Error::Config(c) => c.into(),
            exchange_sync::Error::Sync(s) => s.into(),
            exchange_sync::Error::UnknownGroup(_) => Self::invalid("groups", e.to_string()),
            ref other @ exchange_sync::Error::Connect { ref connection, .. } => {
                let context = ErrorContext { connection: Some(connection.clone()), ..ErrorContext::default() };
                let kind = exchange_sync::report::kind_name(other.kind());
                Self::of_kind(kind, other.to_string(), context, None)
            }
            ref other @ exchange_sync::Error::MissingFolder { operation, ref folder, .. } => {
                let context = ErrorContext {
                    operation: Some(operation.to_owned()),
                    folder: Some(folder.clone()),
                    mailbox: mailbox_of(folder),
                    ..ErrorContext::default()
                };
                let kind = exchange_sync::report::kind_name(other.kind());
                Self::of_kind(kind, other.to_string(), context, None)
            }
            other => {
                let kind = exchange_sync::report::kind_name(other.kind());
                Self::of_kind(kind, other.to_string(), ErrorContext::default(), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{ErrorContext as CoreContext, MemberId};

    #[test]
    fn core_errors_keep_their_class_and_context() {
        let e = exchange_sync_core::Error::NotFound {
            context: Box::new(
                CoreContext::operation("get")
                    .with_folder("alice@contoso.test/contacts")
                    .with_member(MemberId::new("alice")),
            ),
        };
        let ExchangeSyncError::NotFound { context, message } = ExchangeSyncError::from(e) else {
            panic!("not NotFound")
        };
        assert_eq!(context.mailbox.as_deref(), Some("alice@contoso.test"));
        assert_eq!(context.operation.as_deref(), Some("get"));
        assert_eq!(context.member.as_deref(), Some("alice"));
        assert!(!message.is_empty());
    }

    #[test]
    fn an_unknown_group_is_a_configuration_error() {
        let e = ExchangeSyncError::from(exchange_sync::Error::UnknownGroup("nope".into()));
        let ExchangeSyncError::Config { message, diagnostics } = e else { panic!("not Config") };
        assert!(message.contains("nope"), "{message}");
        assert_eq!(diagnostics[0].path, "groups");
    }
}
