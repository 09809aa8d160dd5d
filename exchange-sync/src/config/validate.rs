//! Validation: every mistake in a configuration, found before anything runs.
//!
//! Checks run on the plain model, so a configuration built from code gets the same checks as a
//! file. Each finding names the configuration path (`groups[0].members[2].filter`); the file
//! loader adds the file, line and column of that path.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use exchange_sync_core::{ConflictPolicy, GroupId, Member, MemberId, SyncGroup};

use crate::config::model::{Auth, Config, Endpoint, GroupConfig, MemberConfig};

/// The member id of every group's hub. Members may not use it.
pub const HUB_MEMBER_ID: &str = "hub";

/// Where in a file a finding points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, when the configuration came from one.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot run.
    Error,
    /// The configuration runs, but something is risky (an inline secret, TLS verification off).
    Warning,
}

/// One finding of validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The configuration path, e.g. `groups[0].members[2].filter`.
    pub path: String,
    /// What is wrong, and how to fix it.
    pub message: String,
    /// Where in the file, when known.
    pub location: Option<Location>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            if let Some(file) = &loc.file {
                write!(f, "{}:", file.display())?;
            }
            write!(f, "{}:{}: ", loc.line, loc.column)?;
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            write!(f, "{severity}: {}", self.message)
        } else {
            write!(f, "{severity}: {}: {}", self.path, self.message)
        }
    }
}

/// A configuration that cannot run: every error found (not only the first), with locations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ConfigError {
    /// The findings (errors, and the warnings found alongside them).
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl ConfigError {
    /// A single error at a path.
    pub fn single(path: impl Into<String>, message: impl Into<String>, location: Option<Location>) -> Self {
        ConfigError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                path: path.into(),
                message: message.into(),
                location,
            }],
        }
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

struct Findings(Vec<Diagnostic>);

impl Findings {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            location: None,
        });
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            location: None,
        });
    }
}

/// Validates a configuration; answers the warnings, or every finding when there is an error.
/// Secrets are checked for presence (variable set, file readable), never shown.
pub fn validate(config: &Config) -> Result<Vec<Diagnostic>, ConfigError> {
    let mut f = Findings(Vec::new());
    let s = &config.service;
    for (name, value) in [("poll_interval", s.poll_interval), ("resync_interval", s.resync_interval)] {
        if value.is_zero() {
            f.error(format!("service.{name}"), "must be longer than zero");
        }
    }
    if s.max_concurrent_groups == 0 {
        f.error("service.max_concurrent_groups", "must be at least 1");
    }
    if s.retry.max_attempts == 0 {
        f.error("service.retry.max_attempts", "must be at least 1");
    }
    if s.retry.initial_delay > s.retry.max_delay {
        f.error("service.retry", "initial_delay_ms must not exceed max_delay_ms");
    }

    let mut connection_ids = BTreeSet::new();
    for (i, c) in config.connections.iter().enumerate() {
        let path = format!("connections[{i}]");
        if c.id.trim().is_empty() {
            f.error(format!("{path}.id"), "a connection id must not be empty");
        } else if !connection_ids.insert(c.id.as_str()) {
            f.error(format!("{path}.id"), format!("connection id {:?} is used twice", c.id));
        }
        match &c.endpoint {
            Endpoint::Url(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                f.error(format!("{path}.url"), format!("{url:?} is not an http:// or https:// URL"))
            }
            Endpoint::Url(url) if url.starts_with("http://") && !matches!(c.auth, Auth::None) => f.warning(
                format!("{path}.url"),
                "credentials are sent over plain http://; use https:// outside of tests",
            ),
            Endpoint::Autodiscover(address) if !address.contains('@') => {
                f.error(format!("{path}.autodiscover"), format!("{address:?} is not an e-mail address"))
            }
            _ => {}
        }
        match &c.auth {
            Auth::Basic { username, .. } | Auth::Ntlm { username, .. } if username.trim().is_empty() => {
                f.error(format!("{path}.username"), format!("auth {} needs a username", c.auth.scheme()));
            }
            _ => {}
        }
        if let Some(secret) = c.auth.secret() {
            let field = if matches!(c.auth, Auth::OAuth2 { .. }) { "token" } else { "password" };
            if secret.is_inline() {
                f.warning(
                    format!("{path}.{field}"),
                    format!("the secret is written into the configuration; prefer {field}_env or {field}_file"),
                );
            }
            if let Err(message) = secret.resolve() {
                f.error(format!("{path}.{field}"), format!("secret missing: {message}"));
            }
        }
        if c.tls.insecure {
            f.warning(format!("{path}.tls.insecure"), "TLS certificate verification is off");
        }
        if let Some(ca) = &c.tls.ca_file
            && !ca.is_file()
        {
            f.error(format!("{path}.tls.ca_file"), format!("{} is not a readable file", ca.display()));
        }
    }

    let mut group_ids = BTreeSet::new();
    for (g, group) in config.groups.iter().enumerate() {
        let path = format!("groups[{g}]");
        if group.id.trim().is_empty() {
            f.error(format!("{path}.id"), "a group id must not be empty");
        } else if !group_ids.insert(group.id.as_str()) {
            f.error(format!("{path}.id"), format!("group id {:?} is used twice", group.id));
        }
        if !connection_ids.contains(group.connection.as_str()) {
            f.error(format!("{path}.connection"), format!("no connection has the id {:?}", group.connection));
        }
        validate_group(&mut f, &path, group);
    }

    let has_errors = f.0.iter().any(|d| d.severity == Severity::Error);
    if has_errors { Err(ConfigError { diagnostics: f.0 }) } else { Ok(f.0) }
}

fn validate_group(f: &mut Findings, path: &str, group: &GroupConfig) {
    if group.members.is_empty() && group.member_sources.is_empty() {
        f.error(format!("{path}.members"), "the group has no members and no member source");
    }
    let mut ids = BTreeSet::from([HUB_MEMBER_ID.to_owned()]);
    for (m, member) in group.members.iter().enumerate() {
        let mpath = format!("{path}.members[{m}]");
        if member.mailbox.trim().is_empty() || !member.mailbox.contains('@') {
            f.error(format!("{mpath}.mailbox"), format!("{:?} is not a mailbox address", member.mailbox));
        }
        if member.id.trim().is_empty() {
            f.error(format!("{mpath}.id"), "a member id must not be empty");
        } else if member.id == HUB_MEMBER_ID {
            f.error(format!("{mpath}.id"), format!("{HUB_MEMBER_ID:?} is reserved for the group's hub"));
        } else if !ids.insert(member.id.clone()) {
            f.error(format!("{mpath}.id"), format!("member id {:?} appears twice in the group", member.id));
        }
        validate_one_way_only(f, &mpath, member);
    }
    for (s, source) in group.member_sources.iter().enumerate() {
        let spath = format!("{path}.member_sources[{s}]");
        if !source.distribution_group.contains('@') {
            f.error(
                format!("{spath}.distribution_group"),
                format!("{:?} is not a distribution group address", source.distribution_group),
            );
        }
        if source.refresh_interval.is_zero() {
            f.error(format!("{spath}.refresh_secs"), "must be longer than zero");
        }
        validate_one_way_only(f, &spath, &source.template);
    }
    for (k, key) in group.match_key.iter().enumerate() {
        if key.trim().is_empty() {
            f.error(format!("{path}.match_key[{k}]"), "a field name must not be empty");
        }
    }
    let guard = &group.mass_delete_guard;
    if guard.max_share.is_nan() || !(0.0..=1.0).contains(&guard.max_share) {
        f.error(
            format!("{path}.mass_delete_guard.max_share"),
            format!("must be within 0.0..=1.0, not {}", guard.max_share),
        );
    }
    if let ConflictPolicy::MemberPriority(order) = &group.conflict_policy {
        for (i, id) in order.iter().enumerate() {
            if !ids.contains(id.as_str()) {
                f.error(
                    format!("{path}.priority[{i}]"),
                    format!("{id} is not the hub nor a listed member of the group"),
                );
            }
        }
    }
}

fn validate_one_way_only(f: &mut Findings, path: &str, member: &MemberConfig) {
    if member.direction.is_two_way() {
        if member.filter.is_some() {
            f.error(
                format!("{path}.filter"),
                "filters apply to one-way members only (a two-way member could not tell a filtered item from a deleted one)",
            );
        }
        if !member.modifications.is_empty() {
            f.error(
                format!("{path}.modify"),
                "modifications apply to one-way members only (a two-way member's edits of modified copies would flow back)",
            );
        }
    }
}

impl GroupConfig {
    /// The core's view of the group with the members listed so far (members from distribution
    /// groups are added by the service once expanded). The hub's member id is [`HUB_MEMBER_ID`].
    pub fn sync_group(&self, extra_members: &[MemberConfig]) -> SyncGroup {
        let mut group = SyncGroup::new(GroupId::new(self.id.clone()), MemberId::new(HUB_MEMBER_ID));
        group.conflict_policy = self.conflict_policy.clone();
        group.match_key = self.match_key.clone();
        group.mass_delete_guard = self.mass_delete_guard;
        for m in self.members.iter().chain(extra_members) {
            group.members.push(Member::new(MemberId::new(m.id.clone()), m.direction));
        }
        group
    }
}
