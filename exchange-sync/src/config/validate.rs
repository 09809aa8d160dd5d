//! Validation: every mistake in a configuration, found before anything runs.
//!
//! Checks run on the plain model, so a configuration built from code gets the same checks as a
//! file. Each finding names the configuration path (`groups[0].members[2].filter`); the file
//! loader adds the file, line and column of that path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use exchange_sync_core::{ConflictPolicy, GroupId, ItemKind, Member, MemberId, SyncGroup};

use crate::config::model::{Auth, Config, Endpoint, GroupConfig, HubFolder, MemberConfig};
use crate::filter::{BODY_FIELD, Condition};
use crate::modification::Modification;

/// Whether validation reads the secrets (to say which are missing) or leaves them alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Each secret must be readable (its variable set, its file readable): what connecting needs.
    Check,
    /// Secrets are not read: for commands that never connect (`status`, `conflicts`, `check
    /// --offline`, `confirm`, ...), which must work without them.
    Ignore,
}

/// The canonical fields items carry (every field the EWS mapping knows, of every kind), sorted:
/// the names filters, modifications and match keys may use. Filters may also test `body`.
pub fn known_fields() -> &'static [String] {
    static FIELDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let kinds =
            [ItemKind::Contact, ItemKind::CalendarItem, ItemKind::Task, ItemKind::Note, ItemKind::DistributionList];
        let mut names: Vec<String> = kinds
            .iter()
            .flat_map(|k| exchange_sync_ews::mapping::mappings(k).iter().map(|m| m.canonical.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    })
}

/// Whether a field name is one items carry: canonical, or opaque (`x.<name>`).
fn is_known_field(name: &str) -> bool {
    name.starts_with("x.") || known_fields().binary_search_by(|f| f.as_str().cmp(name)).is_ok()
}

/// The finding of an unknown field name, with the closest known names.
fn unknown_field(name: &str, body_allowed: bool) -> String {
    let mut candidates: Vec<&str> = known_fields().iter().map(String::as_str).collect();
    if body_allowed {
        candidates.push(BODY_FIELD);
    }
    let suggestion = crate::names::did_you_mean(name, candidates).map(|s| format!(" {s}")).unwrap_or_default();
    format!(
        "unknown field {name:?}:{suggestion} (field names are canonical, e.g. email1.address, phone.mobile, \
         address.business.city; `exchange-sync fields` lists them all)"
    )
}

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
    /// Another place the finding concerns (the first of two members that name one mailbox).
    pub related: Option<Related>,
}

/// A second place a finding concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// The configuration path, e.g. `groups[0].members[0].mailbox`.
    pub path: String,
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
            write!(f, "{severity}: {}", self.message)?;
        } else {
            write!(f, "{severity}: {}: {}", self.path, self.message)?;
        }
        if let Some(related) = &self.related {
            match &related.location {
                Some(loc) => write!(f, " (see {} at line {}, column {})", related.path, loc.line, loc.column)?,
                None => write!(f, " (see {})", related.path)?,
            }
        }
        Ok(())
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
                related: None,
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
            related: None,
        });
    }

    /// An error about `path` that concerns `related` too.
    fn error_with(&mut self, path: impl Into<String>, related: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            location: None,
            related: Some(Related { path: related.into(), location: None }),
        });
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            location: None,
            related: None,
        });
    }
}

/// Validates a configuration; answers the warnings, or every finding when there is an error.
/// Secrets are checked for presence (variable set, file readable), never shown.
pub fn validate(config: &Config) -> Result<Vec<Diagnostic>, ConfigError> {
    validate_with(config, Secrets::Check)
}

/// Validates a configuration, reading its secrets or not (see [`Secrets`]).
pub fn validate_with(config: &Config, secrets: Secrets) -> Result<Vec<Diagnostic>, ConfigError> {
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
    if s.pull_interval.is_zero() {
        f.error("service.pull_interval_ms", "must be longer than zero");
    }
    if s.log.keep == 0 {
        f.error("service.log.keep", "keep at least 1 file");
    }
    if let Some(http) = &s.http {
        if !http.listen.ip().is_loopback() && http.admin_token.is_none() {
            f.warning(
                "service.http.listen",
                format!(
                    "{} is reachable from other machines: the status page shows group and mailbox names to anyone \
                     who reaches it; prefer 127.0.0.1 behind a reverse proxy with TLS and authentication",
                    http.listen
                ),
            );
        }
        if let Some(token) = &http.admin_token {
            if token.is_inline() {
                f.warning(
                    "service.http.admin_token",
                    "the token is written into the configuration; prefer admin_token_env or admin_token_file",
                );
            }
            if secrets == Secrets::Check
                && let Err(message) = token.resolve()
            {
                f.error("service.http.admin_token", format!("secret missing: {message}"));
            }
        }
    }

    if let Some(url) = &s.graph_notification_url {
        let key = "service.graph_notification_url";
        let host = url.split_once("://").map(|(_, r)| r.split(['/', ':', '?']).next().unwrap_or_default());
        let loopback = matches!(host, Some("127.0.0.1" | "localhost" | "[::1]"));
        let accepted = url.starts_with("https://") || (url.starts_with("http://") && loopback);
        if !accepted {
            f.error(key, format!("{url:?}: Microsoft Graph posts notifications only to a public https:// URL"));
        }
        let path = exchange_sync_graph::NotificationSettings::new(url.clone()).path();
        if path == "/" || path.starts_with("/api/") || ["/healthz", "/metrics"].contains(&path.as_str()) {
            f.error(
                key,
                format!(
                    "the path {path} is the status page's; give the notification URL a path of its own, e.g. \
                     https://sync.contoso.com/graph/notify"
                ),
            );
        }
        if s.http.is_none() {
            f.error(
                key,
                "notifications are received by the service's HTTP listener: add [service.http] (listen = \"127.0.0.1:9464\") \
                 and forward the URL's path to it",
            );
        }
        if !config.connections.iter().any(|c| c.is_graph()) {
            f.warning(key, "no connection is of kind \"graph\": nothing subscribes");
        }
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
            Endpoint::Graph(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                f.error(format!("{path}.url"), format!("{url:?} is not an http:// or https:// URL"))
            }
            Endpoint::Graph(url) if url.starts_with("http://") => f.warning(
                format!("{path}.url"),
                "access tokens are sent over plain http://; use https:// outside of tests",
            ),
            _ => {}
        }
        match (&c.endpoint, &c.auth) {
            (Endpoint::Graph(_), Auth::ClientSecret { authority, client_id, .. })
            | (Endpoint::Graph(_), Auth::ClientCertificate { authority, client_id, .. }) => {
                if client_id.trim().is_empty() {
                    f.error(format!("{path}.client_id"), "a Graph connection needs the application (client) id");
                }
                if !(authority.starts_with("https://") || authority.starts_with("http://")) {
                    f.error(format!("{path}.authority"), format!("{authority:?} is not an http:// or https:// URL"));
                }
            }
            (Endpoint::Graph(_), other) => f.error(
                format!("{path}.auth"),
                format!(
                    "a Graph connection authenticates as an application (client_secret or client_certificate), not with {}",
                    other.scheme()
                ),
            ),
            (_, Auth::ClientSecret { .. } | Auth::ClientCertificate { .. }) => f.error(
                format!("{path}.auth"),
                format!(
                    "{} authentication is Microsoft Graph's; an EWS connection takes basic, ntlm, oauth2 or none",
                    c.auth.scheme()
                ),
            ),
            _ => {}
        }
        match &c.auth {
            Auth::Basic { username, .. } | Auth::Ntlm { username, .. } | Auth::Negotiate { username, .. }
                if username.trim().is_empty() =>
            {
                f.error(format!("{path}.username"), format!("auth {} needs a username", c.auth.scheme()));
            }
            _ => {}
        }
        if let Some(secret) = c.auth.secret() {
            let field = match c.auth {
                Auth::OAuth2 { .. } => "token",
                Auth::ClientSecret { .. } => "client_secret",
                _ => "password",
            };
            if secret.is_inline() {
                f.warning(
                    format!("{path}.{field}"),
                    format!("the secret is written into the configuration; prefer {field}_env or {field}_file"),
                );
            }
            if secrets == Secrets::Check
                && let Err(message) = secret.resolve()
            {
                f.error(format!("{path}.{field}"), format!("secret missing: {message}"));
            }
        }
        if c.tls.insecure {
            f.warning(format!("{path}.tls.insecure"), "TLS certificate verification is off");
        }
        if !c.tls.channel_binding {
            f.warning(
                format!("{path}.tls.channel_binding"),
                "NTLM is not bound to the TLS channel: servers with Extended Protection required refuse it, and \
                 the authentication could be relayed",
            );
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
        let members = group.members.iter().enumerate().map(|(m, member)| (format!("{path}.members[{m}]"), member));
        let sources = group
            .member_sources
            .iter()
            .enumerate()
            .map(|(s, source)| (format!("{path}.member_sources[{s}]"), &source.template));
        for (member_path, member) in members.chain(sources) {
            if let Some(id) = &member.connection
                && !connection_ids.contains(id.as_str())
            {
                f.error(format!("{member_path}.connection"), format!("no connection has the id {id:?}"));
            }
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
    // Member ids and mailbox addresses are compared without regard to case, as Exchange compares
    // addresses: two spellings of one address are one folder, and as two members they would get
    // a copy of every item each.
    // By lower-case id: the path, id and mailbox of the first member with it.
    let mut ids: BTreeMap<String, (String, String, String)> =
        BTreeMap::from([(HUB_MEMBER_ID.to_owned(), (format!("{path}.hub"), HUB_MEMBER_ID.to_owned(), String::new()))]);
    let mut folders: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    if let HubFolder::Mailbox { mailbox, folder } = &group.hub {
        folders.insert((mailbox.trim().to_lowercase(), folder.to_string()), (format!("{path}.hub"), mailbox.clone()));
    }
    for (m, member) in group.members.iter().enumerate() {
        let mpath = format!("{path}.members[{m}]");
        if member.mailbox.trim().is_empty() || !member.mailbox.contains('@') {
            f.error(format!("{mpath}.mailbox"), format!("{:?} is not a mailbox address", member.mailbox));
        }
        // One member twice: by id (ids that are addresses are the mailbox's, in any case) ...
        let mut reported = false;
        if member.id.trim().is_empty() {
            f.error(format!("{mpath}.id"), "a member id must not be empty");
        } else if member.id.eq_ignore_ascii_case(HUB_MEMBER_ID) {
            f.error(format!("{mpath}.id"), format!("{HUB_MEMBER_ID:?} is reserved for the group's hub"));
        } else {
            match ids.entry(member.id.to_lowercase()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert((format!("{mpath}.id"), member.id.clone(), member.mailbox.clone()));
                }
                std::collections::btree_map::Entry::Occupied(first) => {
                    let (first_path, first_id, first_mailbox) = first.get();
                    let message = if first_mailbox != &member.mailbox
                        && first_mailbox.trim().eq_ignore_ascii_case(member.mailbox.trim())
                    {
                        format!(
                            "mailbox {:?} is {first_mailbox:?} in another spelling: Exchange compares mailbox \
                             addresses without regard to case, so both members are one mailbox and would get a \
                             copy of every item twice; keep one",
                            member.mailbox
                        )
                    } else if first_id == &member.id {
                        format!("member id {:?} appears twice in the group", member.id)
                    } else {
                        format!(
                            "member ids {first_id:?} and {:?} differ only by case: they name one member (ids and \
                             mailbox addresses are compared without regard to case, as Exchange does); keep one",
                            member.id
                        )
                    };
                    f.error_with(format!("{mpath}.id"), first_path.clone(), message);
                    reported = true;
                }
            }
        }
        // ... or by folder (the same mailbox, in any case, and the same target).
        let folder = (member.mailbox.trim().to_lowercase(), group.target_of(member).to_string());
        match folders.entry(folder) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert((format!("{mpath}.mailbox"), member.mailbox.clone()));
            }
            std::collections::btree_map::Entry::Occupied(_) if reported => {}
            std::collections::btree_map::Entry::Occupied(first) => {
                let (first_path, first_mailbox) = first.get();
                let what = if first_path.ends_with(".hub") { "the hub's folder" } else { "another member's folder" };
                let spelling = if first_mailbox == &member.mailbox {
                    String::new()
                } else {
                    format!(
                        " ({first_mailbox:?} and {:?} differ only by case: Exchange compares mailbox addresses \
                         without regard to case)",
                        member.mailbox
                    )
                };
                f.error_with(
                    format!("{mpath}.mailbox"),
                    first_path.clone(),
                    format!(
                        "{}/{} is {what}{spelling}: one folder in a group twice would get a copy of every item \
                         twice; keep one",
                        member.mailbox,
                        group.target_of(member)
                    ),
                );
            }
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
        } else if !is_known_field(key) {
            f.error(format!("{path}.match_key[{k}]"), unknown_field(key, false));
        }
    }
    if group.take_over_matches && group.match_key.is_empty() {
        f.error(
            format!("{path}.take_over_matches"),
            "take_over_matches applies to items matched by match_key: give match_key = [...] too",
        );
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
            if !ids.contains_key(&id.as_str().to_lowercase()) {
                f.error(
                    format!("{path}.priority[{i}]"),
                    format!("{id} is not the hub nor a listed member of the group"),
                );
            }
        }
    }
}

/// Every field a filter tests must be one items carry (a misspelled one would match nothing, and
/// the member would silently receive nothing).
fn validate_condition(f: &mut Findings, path: &str, condition: &Condition) {
    match condition {
        Condition::Field { name, .. } if name != BODY_FIELD && !is_known_field(name) => {
            f.error(path.to_owned(), unknown_field(name, true));
        }
        Condition::All(list) | Condition::Any(list) => {
            let key = if matches!(condition, Condition::All(_)) { "all" } else { "any" };
            for (i, c) in list.iter().enumerate() {
                validate_condition(f, &format!("{path}.{key}[{i}]"), c);
            }
        }
        Condition::Not(inner) => validate_condition(f, &format!("{path}.not"), inner),
        _ => {}
    }
}

/// Fields a member's modifications set or clear must be ones items carry.
fn validate_fields(f: &mut Findings, path: &str, member: &MemberConfig) {
    if let Some(filter) = &member.filter {
        validate_condition(f, &format!("{path}.filter"), filter);
    }
    for (i, m) in member.modifications.iter().enumerate() {
        if let Modification::SetField { name, .. } | Modification::ClearField { name } = m
            && !is_known_field(name)
        {
            f.error(format!("{path}.modify[{i}]"), unknown_field(name, false));
        }
    }
}

fn validate_one_way_only(f: &mut Findings, path: &str, member: &MemberConfig) {
    validate_fields(f, path, member);
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
        group.take_over_matches = self.take_over_matches;
        group.mass_delete_guard = self.mass_delete_guard;
        for m in self.members.iter().chain(extra_members) {
            group.members.push(Member::new(MemberId::new(crate::config::member_id(&m.id)), m.direction));
        }
        if let ConflictPolicy::MemberPriority(order) = &mut group.conflict_policy {
            for id in order.iter_mut() {
                *id = MemberId::new(crate::config::member_id(id.as_str()));
            }
        }
        group
    }
}
