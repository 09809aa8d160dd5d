//! Configuration records: what code (rather than a TOML file) usually sets, as plain records
//! that every foreign-function layer can carry: EWS connections with their authentication, groups
//! on a public folder with one-way and two-way members, the conflict policy, the match key, the
//! mass-delete guard and the service's timings. Everything else (filters, modifications,
//! distribution groups, mailbox hubs, a PostgreSQL state) is written in TOML.
//!
//! [`configuration`] reads the records through the TOML file format ([`Part`]), so they are
//! checked by the same code as a file, and a finding is reported at the record's field
//! (`groups[0].members[2].target`). The .NET facade exports them as they are (feature `uniffi`).

use exchange_sync::config::{Config, Connection, GroupConfig, ServiceSettings};

use crate::config::{Part, count, key};
use crate::error::{BindingError, Result};

/// Where a password or token comes from. Prefer `Env` or `File` outside tests: the value then
/// never sits in a script or a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SecretSource {
    /// The value itself (validation warns).
    Inline {
        /// The secret.
        value: String,
    },
    /// An environment variable, read when the service connects.
    Env {
        /// The variable's name.
        name: String,
    },
    /// A file's content (trailing newline removed), read when the service connects.
    File {
        /// The file's path.
        path: String,
    },
}

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AuthScheme {
    /// HTTP Basic (over TLS only): `username` and `password`.
    Basic,
    /// NTLM, the usual on-premises choice: `username` (`user@domain` or `DOMAIN\user`) and
    /// `password`.
    Ntlm,
    /// An OAuth2 bearer token, given as `password`.
    OAuth2,
    /// None (an authenticating proxy, or a test server).
    None,
}

/// A server connection, as code builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConnectionSettings {
    /// The id groups refer to.
    pub id: String,
    /// The EWS URL (`https://mail.contoso.com/EWS/Exchange.asmx`), or an e-mail address whose
    /// domain Autodiscover resolves.
    pub url: String,
    /// How to authenticate.
    pub auth: AuthScheme,
    /// The account (`Basic`, `Ntlm`).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub username: Option<String>,
    /// The password (`Basic`, `Ntlm`) or token (`OAuth2`).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub password: Option<SecretSource>,
    /// Act as each member's mailbox through the ApplicationImpersonation role (needed for many
    /// mailboxes and for their change notifications).
    #[cfg_attr(feature = "uniffi", uniffi(default = true))]
    pub impersonation: bool,
    /// A PEM bundle of extra trusted CAs (internal CAs).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub ca_file: Option<String>,
    /// Turns certificate verification off (never in production; validation warns).
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub insecure: bool,
}

/// Which way a member's changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SyncDirection {
    /// The member only receives; its own edits and deletions of the group's items are reverted.
    OneWay,
    /// The member's edits flow to the hub and on to every other member; its new items join.
    TwoWay,
}

/// One member mailbox of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MemberSettings {
    /// The mailbox address.
    pub mailbox: String,
    /// One-way (reader) or two-way (editor).
    pub direction: SyncDirection,
    /// The folder receiving the group's items (`contacts`, `calendar`, `tasks`, `notes`, or a
    /// named folder below one: `contacts/Company Contacts`); `null`: the group's target.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub target: Option<String>,
}

/// How conflicting field edits are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ConflictResolution {
    /// The hub's value wins; among members only, the first in group order.
    HubWins,
    /// The side modified last wins.
    NewestWins,
}

/// A sync group on a public folder, as code builds it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GroupSettings {
    /// The group's id (part of every origin stamp: never change it for a running group).
    pub id: String,
    /// The connection's id.
    pub connection: String,
    /// The hub: a public folder by its `/`-separated path (`Company Contacts`).
    pub public_folder: String,
    /// The members.
    pub members: Vec<MemberSettings>,
    /// The target folder of members that name none (created when missing).
    #[cfg_attr(feature = "uniffi", uniffi(default = "contacts"))]
    pub target: String,
    /// Canonical fields matching existing copies at initial sync (e.g. `email1.address`).
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub match_key: Vec<String>,
    /// How conflicting field edits are resolved.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub conflict_resolution: Option<ConflictResolution>,
    /// The largest share (0..1) of a folder's group items one run may delete unconfirmed.
    #[cfg_attr(feature = "uniffi", uniffi(default = 0.25))]
    pub mass_delete_max_share: f64,
    /// Deleting this many items or fewer never trips the mass-delete guard.
    #[cfg_attr(feature = "uniffi", uniffi(default = 10))]
    pub mass_delete_min_count: u32,
    /// Whether a member's item that matches a group item by `match_key` but differs is taken over
    /// (overwritten, the values recorded in the conflict log first) instead of staying the user's.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub take_over_matches: bool,
}

/// How the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ServiceOptions {
    /// Where state is kept: an SQLite file path, or `memory` (every start is an initial sync).
    #[cfg_attr(feature = "uniffi", uniffi(default = "exchange-sync.sqlite"))]
    pub state: String,
    /// How long to wait after a change hint for more before syncing, in milliseconds.
    #[cfg_attr(feature = "uniffi", uniffi(default = 200))]
    pub debounce_ms: u64,
    /// How often folders without change hints are polled, in seconds.
    #[cfg_attr(feature = "uniffi", uniffi(default = 60))]
    pub poll_interval_secs: u64,
    /// How many attempts a pass gets before its failure is reported.
    #[cfg_attr(feature = "uniffi", uniffi(default = 5))]
    pub retry_max_attempts: u32,
    /// The first retry delay, in milliseconds.
    #[cfg_attr(feature = "uniffi", uniffi(default = 500))]
    pub retry_initial_delay_ms: u64,
    /// How long a stop waits for passes in flight, in seconds.
    #[cfg_attr(feature = "uniffi", uniffi(default = 10))]
    pub shutdown_grace_secs: u64,
}

/// A connection record, read by the TOML format (`[connections.ID]`).
fn connection(c: ConnectionSettings, index: usize) -> Result<Connection> {
    let path = format!("connections[{index}]");
    let mut part = Part::new("", "connections[0]");
    let table = format!("connections.{}", key(&c.id));
    let at = |field: &str| format!("{path}.{field}");
    let autodiscover = !c.url.contains("://") && c.url.contains('@');
    part.table(&table).set(&at("url"), if autodiscover { "autodiscover" } else { "url" }, c.url);
    let (scheme, secret) = match c.auth {
        AuthScheme::Basic => ("basic", "password"),
        AuthScheme::Ntlm => ("ntlm", "password"),
        AuthScheme::OAuth2 => ("oauth2", "token"),
        AuthScheme::None => ("none", "password"),
    };
    part.set(&at("auth"), "auth", scheme).opt(&at("username"), "username", c.username);
    match c.password {
        Some(SecretSource::Inline { value }) => part.set(&at("password"), secret, value),
        Some(SecretSource::Env { name }) => part.set(&at("password"), &format!("{secret}_env"), name),
        Some(SecretSource::File { path }) => part.set(&at("password"), &format!("{secret}_file"), path),
        None => &mut part,
    };
    part.set(&at("impersonation"), "impersonation", c.impersonation);
    part.table(&format!("{table}.tls")).opt(&at("ca_file"), "ca_file", c.ca_file).set(
        &at("insecure"),
        "insecure",
        c.insecure,
    );
    let mut config = part.parse()?;
    config.connections.pop().ok_or_else(|| BindingError::invalid(path, "no connection read"))
}

/// A group record, read by the TOML format (`[[groups]]`).
fn group(g: GroupSettings, index: usize) -> Result<GroupConfig> {
    let path = format!("groups[{index}]");
    let at = |field: &str| format!("{path}.{field}");
    let mut part = Part::new("", "groups[0]");
    part.table("[groups]").set(&at("id"), "id", g.id).set(&at("connection"), "connection", g.connection);
    part.set(&at("target"), "target", g.target).set(&at("match_key"), "match_key", g.match_key);
    let policy = match g.conflict_resolution {
        Some(ConflictResolution::NewestWins) => "newest_wins",
        Some(ConflictResolution::HubWins) | None => "hub_wins",
    };
    part.set(&at("conflict_resolution"), "conflict_policy", policy);
    part.set(&at("take_over_matches"), "take_over_matches", g.take_over_matches);
    part.table("groups.hub").set(&at("public_folder"), "public_folder", g.public_folder);
    let guard = part.table("groups.mass_delete_guard");
    guard.set(&at("mass_delete_max_share"), "max_share", g.mass_delete_max_share);
    guard.set(&at("mass_delete_min_count"), "min_count", count(g.mass_delete_min_count));
    for (i, m) in g.members.into_iter().enumerate() {
        let at = |field: &str| format!("{path}.members[{i}].{field}");
        let direction = match m.direction {
            SyncDirection::OneWay => "one_way",
            SyncDirection::TwoWay => "two_way",
        };
        part.table("[groups.members]").set(&at("mailbox"), "mailbox", m.mailbox);
        part.set(&at("direction"), "direction", direction).opt(&at("target"), "target", m.target);
    }
    let mut config = part.parse()?;
    config.groups.pop().ok_or_else(|| BindingError::invalid(path, "no group read"))
}

/// The service options, read by the TOML format (`[service]`).
fn service(s: ServiceOptions) -> Result<ServiceSettings> {
    if exchange_sync::config::is_postgres_url(&s.state) {
        return Err(BindingError::invalid(
            "service.state",
            "a PostgreSQL state (worker, lease, password source) is configured in a configuration file: \
             TOML text or a file",
        ));
    }
    let mut part = Part::new("service", "service");
    part.table("service").set("state", "state", s.state).set("debounce_ms", "debounce_ms", count(s.debounce_ms));
    part.set("poll_interval_secs", "poll_interval_secs", count(s.poll_interval_secs));
    part.set("shutdown_grace_secs", "shutdown_grace_secs", count(s.shutdown_grace_secs));
    let retry = part.table("service.retry");
    retry.set("retry_max_attempts", "max_attempts", count(s.retry_max_attempts));
    retry.set("retry_initial_delay_ms", "initial_delay_ms", count(s.retry_initial_delay_ms));
    Ok(part.parse()?.service)
}

/// The configuration the records describe, not yet validated (see
/// [`crate::config::Checked::validate`]): each record is read by the TOML format.
pub fn configuration(
    connections: Vec<ConnectionSettings>,
    groups: Vec<GroupSettings>,
    service: Option<ServiceOptions>,
) -> Result<Config> {
    let mut config = Config::default();
    for (i, c) in connections.into_iter().enumerate() {
        config.connections.push(connection(c, i)?);
    }
    for (i, g) in groups.into_iter().enumerate() {
        config.groups.push(group(g, i)?);
    }
    if let Some(s) = service {
        config.service = self::service(s)?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Checked;

    #[test]
    fn code_built_configurations_are_validated() {
        let member =
            MemberSettings { mailbox: "alice@contoso.test".into(), direction: SyncDirection::TwoWay, target: None };
        let group = GroupSettings {
            id: "contacts".into(),
            connection: "missing".into(),
            public_folder: "Company Contacts".into(),
            members: vec![member],
            target: "contacts/Company Contacts".into(),
            match_key: vec![],
            conflict_resolution: None,
            mass_delete_max_share: 0.25,
            mass_delete_min_count: 10,
            take_over_matches: false,
        };
        let err = Checked::validate(configuration(vec![], vec![group.clone()], None).unwrap()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{err:?}");

        // Records are read by the TOML format: a finding is at the record's field.
        let mut bad = group;
        bad.members[0].target = Some("inbox/Stuff".into());
        let BindingError::Config(e) = configuration(vec![], vec![bad], None).unwrap_err() else {
            panic!("not a config error")
        };
        let diagnostics = e.diagnostics;
        assert_eq!(diagnostics[0].path, "groups[0].members[0].target", "{diagnostics:?}");
        assert!(diagnostics[0].message.contains("inbox"), "{diagnostics:?}");
    }
}
