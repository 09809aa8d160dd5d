//! Why generating bindings failed.

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input (library, interface, configuration) must change first.
    Permanent,
    /// A filesystem problem that may go away (full disk, permissions fixed).
    Retryable,
}

/// An error of the C# generator, naming the item it was working on.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The interface uses a shape that this generator does not translate yet.
    #[error("{item}: {what} is not supported by the C# generator")]
    Unsupported {
        /// The shape (e.g. "async callback interface methods").
        what: String,
        /// The function, type or method that uses it.
        item: String,
    },
    /// Writing the generated file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl GenerateError {
    /// Whether retrying can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unsupported { .. } => ErrorKind::Permanent,
            Self::Write { .. } => ErrorKind::Retryable,
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>, item: impl Into<String>) -> Self {
        Self::Unsupported { what: what.into(), item: item.into() }
    }
}

/// Result of generator steps.
pub(crate) type Result<T> = std::result::Result<T, GenerateError>;
