//! The emulator's settings and its demo tenant.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of one emulator.
///
/// The default is the demo tenant `contoso.test`: users alice, bob, carol and dave, the shared
/// mailbox `contacts@contoso.test` whose contact folder `Company Contacts` holds
/// [`GraphEmulatorConfig::seed_contacts`] contacts, and one registered application.
#[derive(Debug, Clone)]
pub struct GraphEmulatorConfig {
    /// Where to listen (port 0 picks a free one).
    pub listen: std::net::SocketAddr,
    /// The tenant's id (a GUID), accepted in the token endpoint's path.
    pub tenant_id: String,
    /// The tenant's domain, accepted in the token endpoint's path as well.
    pub tenant_domain: String,
    /// The registered application's client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The certificate (DER) registered for the application: client assertions signed with its
    /// key are accepted instead of the secret. None: only the secret is.
    pub client_certificate: Option<Vec<u8>>,
    /// User mailboxes (local parts).
    pub users: Vec<String>,
    /// Shared mailboxes (local parts).
    pub shared_mailboxes: Vec<String>,
    /// Contacts created in the first shared mailbox's folder `Company Contacts`.
    pub seed_contacts: usize,
    /// How long an access token is accepted.
    pub token_lifetime: Duration,
    /// Concurrent requests per mailbox before `429` (Graph's Outlook limit is 4).
    pub max_concurrency: usize,
    /// Delay added to every request (makes concurrency observable).
    pub latency: Duration,
    /// Default page size of listings and delta rounds (Graph uses 10).
    pub page_size: usize,
    /// Where to dump requests and responses for the schema check.
    pub trace_dir: Option<PathBuf>,
    /// At most this many trace files per (method, route, status).
    pub trace_cap: usize,
}

impl Default for GraphEmulatorConfig {
    fn default() -> Self {
        GraphEmulatorConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant_id: "8f2e8a39-5c1d-4d7e-9d55-0c0ffee00001".into(),
            tenant_domain: "contoso.test".into(),
            client_id: "6b1f3e52-8c1a-4f5e-a7c0-3c1d0e5a0001".into(),
            client_secret: "graph-emulator-secret".into(),
            client_certificate: None,
            users: ["alice", "bob", "carol", "dave"].map(String::from).to_vec(),
            shared_mailboxes: vec!["contacts".into()],
            seed_contacts: 0,
            token_lifetime: Duration::from_secs(3599),
            max_concurrency: 4,
            latency: Duration::ZERO,
            page_size: 10,
            trace_dir: std::env::var_os("GRAPH_TRACE_DIR").map(PathBuf::from),
            trace_cap: 3,
        }
    }
}

impl GraphEmulatorConfig {
    /// The primary address of a local part in the tenant's domain.
    pub fn address(&self, local: &str) -> String {
        format!("{local}@{}", self.tenant_domain)
    }
}
