//! Configuration: connections, sync groups and service settings.
//!
//! - [`model`]: the plain data, buildable from code (builders and `Default`).
//! - [`file`](mod@file): the documented TOML format, parsed with positions.
//! - [`validate()`]: every check, with precise findings, before anything runs.
//! - [`secret`]: where passwords and tokens come from (never the file itself, ideally).

pub mod file;
pub mod model;
pub mod secret;
mod validate;

pub use file::LoadedConfig;
pub use model::{
    AUTHORITY_PUBLIC_CLOUD, Auth, Config, Connection, Endpoint, GRAPH_PUBLIC_CLOUD, GroupConfig, HttpSettings,
    HubFolder, LeavePolicy, LogRotation, LogSettings, MemberConfig, MemberSource, PostgresState, RetrySettings,
    ServiceSettings, StateLocation, TargetFolder, TlsOptions, WellKnownFolder, is_postgres_url, member_id, redact_url,
};
pub use secret::Secret;
pub use validate::{
    ConfigError, Diagnostic, HUB_MEMBER_ID, Location, Related, Secrets, Severity, known_fields, validate, validate_with,
};

/// This host's name: the default name of a worker sharing a PostgreSQL state.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "exchange-sync".to_owned())
}

impl Config {
    /// Validates the configuration (see [`validate()`]); answers the warnings.
    pub fn validate(&self) -> Result<Vec<Diagnostic>, ConfigError> {
        validate(self)
    }

    /// Validates the configuration without reading its secrets (for commands that never connect:
    /// `status`, `conflicts`, `check --offline`, ...); answers the warnings.
    pub fn validate_offline(&self) -> Result<Vec<Diagnostic>, ConfigError> {
        validate_with(self, Secrets::Ignore)
    }

    /// The group with this id.
    pub fn group(&self, id: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The connection with this id.
    pub fn connection(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }
}
