//! Configuration: `Configuration` from TOML text or a file (validated, findings with line and
//! column), or built in code from the plain records of `exchange_sync_bindings::settings`
//! (`ConnectionSettings`, `GroupSettings`, `MemberSettings`, `ServiceOptions`, exported as they
//! are). The records cover what scripts usually set; everything else (filters, modifications,
//! distribution groups, mailbox hubs) is written in TOML: `Configuration.FromToml` takes the
//! whole format documented in `exchange-sync/examples/config.toml`.

use std::path::Path;
use std::sync::Arc;

use exchange_sync::config::Config;
use exchange_sync_bindings::Diagnostic;
use exchange_sync_bindings::config::Checked;
use exchange_sync_bindings::settings::{ConnectionSettings, GroupSettings, ServiceOptions, configuration};

use crate::errors::ExchangeSyncError;

/// A validated configuration: connections, sync groups and service settings.
#[derive(Debug, uniffi::Object)]
pub struct Configuration {
    pub(crate) config: Config,
    warnings: Vec<Diagnostic>,
}

impl From<Checked> for Configuration {
    fn from(c: Checked) -> Self {
        Configuration { config: c.config, warnings: c.warnings }
    }
}

#[uniffi::export]
impl Configuration {
    /// Builds and validates a configuration in code.
    #[uniffi::constructor(default(service = None))]
    pub fn new(
        connections: Vec<ConnectionSettings>,
        groups: Vec<GroupSettings>,
        service: Option<ServiceOptions>,
    ) -> Result<Arc<Self>, ExchangeSyncError> {
        let config = configuration(connections, groups, service)?;
        Ok(Arc::new(Checked::validate(config)?.into()))
    }

    /// Parses and validates TOML text (the format of `exchange-sync/examples/config.toml`);
    /// findings carry the line and column.
    #[uniffi::constructor]
    pub fn from_toml(text: String) -> Result<Arc<Self>, ExchangeSyncError> {
        Ok(Arc::new(Checked::from_toml(&text, None)?.into()))
    }

    /// Reads, parses and validates a TOML file; findings name the file, line and column.
    #[uniffi::constructor]
    pub fn from_file(path: String) -> Result<Arc<Self>, ExchangeSyncError> {
        Ok(Arc::new(Checked::load(Path::new(&path))?.into()))
    }

    /// What validation warned about (inline secrets, TLS verification off, ...).
    pub fn warnings(&self) -> Vec<Diagnostic> {
        self.warnings.clone()
    }

    /// The group ids, in order.
    pub fn group_ids(&self) -> Vec<String> {
        self.config.groups.iter().map(|g| g.id.clone()).collect()
    }

    /// The connection ids, in order (the first is the default of item operations).
    pub fn connection_ids(&self) -> Vec<String> {
        self.config.connections.iter().map(|c| c.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_toml_reports_the_line() {
        let err = Configuration::from_toml("[service]\ndebounce_ms = \"soon\"\n".into()).unwrap_err();
        let ExchangeSyncError::Config { diagnostics, .. } = err else { panic!("not a config error") };
        assert_eq!(diagnostics[0].line, Some(2), "{diagnostics:?}");
    }
}
