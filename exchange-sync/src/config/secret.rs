//! Secrets (passwords, client secrets, tokens) and where they come from.
//!
//! A configuration file is copied, mailed and checked into repositories, so secrets normally live
//! outside it: in an environment variable or in a file readable only by the service account.
//! Inline secrets are accepted for tests and demos, with a warning at validation.

use std::fmt;
use std::path::PathBuf;

/// Where a secret is read from. Its `Debug` form never shows an inline value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value of an environment variable, read when the service connects.
    Env(String),
    /// The content of a file (trailing newline removed), read when the service connects.
    File(PathBuf),
    /// The value itself (discouraged: validation warns).
    Inline(String),
}

impl Secret {
    /// Reads the secret. The error says where the secret was expected, never what it is.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Secret::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(value),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            },
            Secret::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\r', '\n']).to_owned();
                    if value.is_empty() { Err(format!("file {} is empty", path.display())) } else { Ok(value) }
                }
                Err(e) => Err(format!("cannot read file {}: {e}", path.display())),
            },
            Secret::Inline(value) => Ok(value.clone()),
        }
    }

    /// Whether the secret is written into the configuration itself.
    pub fn is_inline(&self) -> bool {
        matches!(self, Secret::Inline(_))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret::Env({name:?})"),
            Secret::File(path) => write!(f, "Secret::File({path:?})"),
            Secret::Inline(_) => f.write_str("Secret::Inline(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_redacted_in_debug_output() {
        let text = format!("{:?}", Secret::Inline("hunter2".into()));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn file_secrets_lose_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(Secret::File(path).resolve().unwrap(), "s3cret");
    }

    #[test]
    fn missing_sources_name_the_source_not_the_value() {
        let err = Secret::Env("EXCHANGE_SYNC_TEST_SURELY_UNSET_VAR".into()).resolve().unwrap_err();
        assert!(err.contains("EXCHANGE_SYNC_TEST_SURELY_UNSET_VAR is not set"), "{err}");
        let err = Secret::File("/nonexistent/exchange-sync/pw".into()).resolve().unwrap_err();
        assert!(err.contains("cannot read file"), "{err}");
    }
}
