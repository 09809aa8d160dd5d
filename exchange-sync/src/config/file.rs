//! The TOML file format: parsing with positions, then conversion into the plain model.
//!
//! The file is read into `Raw*` mirrors of the model that reject unknown keys and remember the
//! position of each table and of the keys validation talks about. Every finding (a syntax error,
//! an unknown key, a bad value, a semantic error from [`crate::config::validate()`]) is reported
//! with the file, line and column it concerns. `exchange-sync/examples/config.toml` documents
//! every key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use exchange_sync_core::{
    ConflictPolicy, Direction, ItemKind, LocalChangePolicy, MassDeleteGuard, MemberId, OneWayPolicy, TwoWayPolicy,
};
use serde::Deserialize;
use toml::Spanned;

use crate::config::model::{
    AUTHORITY_PUBLIC_CLOUD, Auth, Config, Connection, Endpoint, GRAPH_PUBLIC_CLOUD, GroupConfig, HttpSettings,
    HubFolder, LeavePolicy, LogRotation, LogSettings, MemberConfig, MemberSource, PostgresState, RetrySettings,
    ServiceSettings, StateLocation, TargetFolder, TlsOptions, is_postgres_url,
};
use crate::config::secret::Secret;
use crate::config::validate::{ConfigError, Diagnostic, Location, Secrets, Severity, validate_with};
use crate::filter::{Condition, FieldTest};
use crate::modification::Modification;

/// A configuration read from a file, with the warnings validation found.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// Warnings (inline secrets, TLS verification off, ...), with locations.
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<LoadedConfig, ConfigError> {
        Self::load_with(path, Secrets::Check)
    }

    /// Reads, parses and validates a configuration file, reading its secrets or not (commands
    /// that never connect must work without them).
    pub fn load_with(path: impl AsRef<Path>, secrets: Secrets) -> Result<LoadedConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::single("", format!("cannot read {}: {e}", path.display()), None))?;
        Self::parse(&text, Some(path), secrets)
    }

    /// Parses and validates a configuration from TOML text; `file` names it in findings.
    pub fn from_toml_str(text: &str, file: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        Self::parse(text, file, Secrets::Check)
    }

    /// Reads a part of a configuration (a `[service]` table, a connection, a group with its
    /// members) written as TOML, with every check of the format's keys and values but without
    /// validating the configuration as a whole (references between parts, secrets). The
    /// bindings build their configuration objects from keyword arguments or records this way,
    /// so that a key of the file format needs no code of its own there.
    pub fn parse_part(text: &str) -> Result<Config, ConfigError> {
        Self::convert(text, &Positions { text, file: None }).map(|(config, _)| config)
    }

    fn convert(text: &str, positions: &Positions<'_>) -> Result<(Config, Converter), ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let location = e.span().map(|span| positions.locate(span.start));
            ConfigError::single("", e.message().trim().to_owned(), location)
        })?;
        let mut conv = Converter::default();
        let config = conv.config(raw);
        if !conv.errors.is_empty() {
            let diagnostics = std::mem::take(&mut conv.errors)
                .into_iter()
                .map(|(span, path, message)| Diagnostic {
                    severity: Severity::Error,
                    path,
                    message,
                    location: Some(positions.locate(span.start)),
                    related: None,
                })
                .collect();
            return Err(ConfigError { diagnostics });
        }
        Ok((config, conv))
    }

    fn parse(text: &str, file: Option<&Path>, secrets: Secrets) -> Result<LoadedConfig, ConfigError> {
        let positions = Positions { text, file: file.map(Path::to_path_buf) };
        let (config, conv) = Self::convert(text, &positions)?;
        let place = |mut d: Diagnostic| {
            d.location = conv.span_of(&d.path).map(|span| positions.locate(span.start));
            if let Some(related) = d.related.as_mut() {
                related.location = conv.span_of(&related.path).map(|span| positions.locate(span.start));
            }
            d
        };
        match validate_with(&config, secrets) {
            Ok(warnings) => {
                let mut config = config;
                config.normalize();
                Ok(LoadedConfig { config, warnings: warnings.into_iter().map(place).collect() })
            }
            Err(e) => Err(ConfigError { diagnostics: e.diagnostics.into_iter().map(place).collect() }),
        }
    }
}

struct Positions<'a> {
    text: &'a str,
    file: Option<PathBuf>,
}

impl Positions<'_> {
    fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(1, |s| s.chars().count() + 1);
        Location { file: self.file.clone(), line, column }
    }
}

// ----- the raw file model ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    service: Option<Spanned<RawService>>,
    #[serde(default)]
    connections: BTreeMap<String, Spanned<RawConnection>>,
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawService {
    state: Option<String>,
    state_password_env: Option<String>,
    state_password_file: Option<PathBuf>,
    state_schema: Option<String>,
    worker: Option<String>,
    lease_secs: Option<u64>,
    debounce_ms: Option<u64>,
    poll_interval_secs: Option<u64>,
    resync_interval_secs: Option<u64>,
    max_concurrent_groups: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    pull_interval_ms: Option<u64>,
    retry: Option<RawRetry>,
    http: Option<Spanned<RawHttp>>,
    graph_notification_url: Option<Spanned<String>>,
    log: Option<Spanned<RawLog>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
    admin_token: Option<Spanned<String>>,
    admin_token_env: Option<Spanned<String>>,
    admin_token_file: Option<Spanned<PathBuf>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawRotation {
    Daily,
    Hourly,
    Never,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    file: Option<PathBuf>,
    rotation: Option<RawRotation>,
    keep: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    initial_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    max_attempts: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawAuthScheme {
    Basic,
    Ntlm,
    #[serde(alias = "kerberos")]
    Negotiate,
    Oauth2,
    ClientSecret,
    ClientCertificate,
    None,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawConnectionKind {
    Ews,
    Graph,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    kind: Option<Spanned<RawConnectionKind>>,
    url: Option<Spanned<String>>,
    autodiscover: Option<Spanned<String>>,
    auth: Spanned<RawAuthScheme>,
    username: Option<String>,
    password: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    token: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    tenant: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    authority: Option<Spanned<String>>,
    client_secret: Option<Spanned<String>>,
    client_secret_env: Option<Spanned<String>>,
    client_secret_file: Option<Spanned<PathBuf>>,
    client_certificate_file: Option<Spanned<PathBuf>>,
    client_key_file: Option<Spanned<PathBuf>>,
    impersonation: Option<Spanned<bool>>,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<Spanned<PathBuf>>,
    insecure: Option<Spanned<bool>>,
    channel_binding: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    public_folder: Option<String>,
    mailbox: Option<String>,
    folder: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawConflictPolicy {
    HubWins,
    NewestWins,
    MemberPriority,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLeave {
    Remove,
    Keep,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    max_share: Option<f64>,
    min_count: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: Spanned<String>,
    connection: Spanned<String>,
    hub: Spanned<RawHub>,
    target: Option<Spanned<String>>,
    conflict_policy: Option<RawConflictPolicy>,
    priority: Option<Spanned<Vec<String>>>,
    match_key: Option<Spanned<Vec<String>>>,
    take_over_matches: Option<Spanned<bool>>,
    mass_delete_guard: Option<Spanned<RawGuard>>,
    on_leave: Option<RawLeave>,
    #[serde(default)]
    members: Vec<Spanned<RawMember>>,
    #[serde(default)]
    member_sources: Vec<Spanned<RawMemberSource>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawDirection {
    OneWay,
    TwoWay,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLocalChange {
    Revert,
    Ignore,
}

/// Settings shared by listed members and member sources.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: Option<Spanned<String>>,
    mailbox: Spanned<String>,
    connection: Option<Spanned<String>>,
    direction: Spanned<RawDirection>,
    on_edit: Option<Spanned<RawLocalChange>>,
    on_delete: Option<Spanned<RawLocalChange>>,
    adopt_new_items: Option<Spanned<bool>>,
    propagate_deletes: Option<Spanned<bool>>,
    target: Option<Spanned<String>>,
    filter: Option<Spanned<RawCondition>>,
    modify: Option<Spanned<Vec<Spanned<RawModification>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemberSource {
    distribution_group: Spanned<String>,
    connection: Option<Spanned<String>>,
    refresh_secs: Option<u64>,
    direction: Spanned<RawDirection>,
    on_edit: Option<Spanned<RawLocalChange>>,
    on_delete: Option<Spanned<RawLocalChange>>,
    adopt_new_items: Option<Spanned<bool>>,
    propagate_deletes: Option<Spanned<bool>>,
    target: Option<Spanned<String>>,
    filter: Option<Spanned<RawCondition>>,
    modify: Option<Spanned<Vec<Spanned<RawModification>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    category: Option<String>,
    kind: Option<String>,
    field: Option<String>,
    equals: Option<String>,
    contains: Option<String>,
    exists: Option<bool>,
    all: Option<Vec<Spanned<RawCondition>>>,
    any: Option<Vec<Spanned<RawCondition>>>,
    not: Option<Box<Spanned<RawCondition>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModification {
    set: Option<String>,
    value: Option<String>,
    clear: Option<String>,
    #[serde(default)]
    clear_body: bool,
    add_category: Option<String>,
    remove_category: Option<String>,
    #[serde(default)]
    meetings_to_appointments: bool,
}

// ----- conversion -----------------------------------------------------------------------------

#[derive(Default)]
struct Converter {
    /// Spans of configuration paths, for placing validation findings.
    spans: BTreeMap<String, Range<usize>>,
    /// Conversion errors: span, path, message.
    errors: Vec<(Range<usize>, String, String)>,
}

impl Converter {
    /// The span of a path, or of its closest recorded ancestor.
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let mut p = path;
        loop {
            if let Some(span) = self.spans.get(p) {
                return Some(span.clone());
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    fn note<T>(&mut self, path: &str, value: &Spanned<T>) {
        self.spans.insert(path.to_owned(), value.span());
    }

    fn error(&mut self, span: Range<usize>, path: &str, message: impl Into<String>) {
        self.errors.push((span, path.to_owned(), message.into()));
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let service = match raw.service {
            Some(s) => {
                self.note("service", &s);
                self.service_settings(s.into_inner())
            }
            None => ServiceSettings::default(),
        };
        let connections =
            raw.connections.into_iter().enumerate().map(|(i, (id, c))| self.connection(i, id, c)).collect();
        let groups = raw.groups.into_iter().enumerate().map(|(i, g)| self.group(i, g)).collect();
        Config { service, connections, groups }
    }

    fn connection(&mut self, i: usize, id: String, raw: Spanned<RawConnection>) -> Connection {
        let path = format!("connections[{i}]");
        self.note(&path, &raw);
        self.spans.insert(format!("{path}.id"), raw.span());
        let span = raw.span();
        let c = raw.into_inner();
        if let Some(kind) = &c.kind {
            self.note(&format!("{path}.kind"), kind);
        }
        if c.kind.as_ref().is_some_and(|k| *k.get_ref() == RawConnectionKind::Graph) {
            return self.graph_connection(&path, id, c);
        }
        for (key, value) in [("tenant", &c.tenant), ("client_id", &c.client_id), ("authority", &c.authority)] {
            if let Some(value) = value {
                self.error(
                    value.span(),
                    &format!("{path}.{key}"),
                    format!("{key} belongs to kind = \"graph\" connections"),
                );
            }
        }
        let endpoint = match (c.url, c.autodiscover) {
            (Some(url), None) => {
                self.note(&format!("{path}.url"), &url);
                Endpoint::Url(url.into_inner())
            }
            (None, Some(address)) => {
                self.note(&format!("{path}.autodiscover"), &address);
                Endpoint::Autodiscover(address.into_inner())
            }
            (Some(url), Some(_)) => {
                self.error(url.span(), &path, "give either url or autodiscover, not both");
                Endpoint::Url(url.into_inner())
            }
            (None, None) => {
                self.error(span.clone(), &path, format!("connection {id:?} needs url or autodiscover"));
                Endpoint::Url(String::new())
            }
        };
        let password = self.secret(&path, "password", c.password, c.password_env, c.password_file);
        let token = self.secret(&path, "token", c.token, c.token_env, c.token_file);
        let client_secret =
            self.secret(&path, "client_secret", c.client_secret, c.client_secret_env, c.client_secret_file);
        let scheme_span = c.auth.span();
        if let Some(file) = c.client_certificate_file.as_ref().or(c.client_key_file.as_ref()) {
            self.error(
                file.span(),
                &path,
                "client_certificate_file and client_key_file belong to auth = \"client_certificate\" (kind = \"graph\")",
            );
        }
        if client_secret.is_some() && !matches!(*c.auth.get_ref(), RawAuthScheme::ClientSecret) {
            self.error(
                scheme_span.clone(),
                &path,
                "client_secret belongs to auth = \"client_secret\" (kind = \"graph\")",
            );
        }
        let username = c.username.unwrap_or_default();
        let auth = match *c.auth.get_ref() {
            RawAuthScheme::Basic | RawAuthScheme::Ntlm => {
                if token.is_some() {
                    self.error(
                        scheme_span.clone(),
                        &path,
                        "token, token_env and token_file belong to auth = \"oauth2\"",
                    );
                }
                let password = password.unwrap_or_else(|| {
                    self.error(scheme_span.clone(), &path, "this auth needs password_env, password_file or password");
                    Secret::Env(String::new())
                });
                if matches!(*c.auth.get_ref(), RawAuthScheme::Basic) {
                    Auth::Basic { username, password }
                } else {
                    Auth::Ntlm { username, password }
                }
            }
            RawAuthScheme::Negotiate => {
                if token.is_some() {
                    self.error(
                        scheme_span.clone(),
                        &path,
                        "token, token_env and token_file belong to auth = \"oauth2\"",
                    );
                }
                Auth::Negotiate { username, password }
            }
            RawAuthScheme::Oauth2 => {
                if password.is_some() {
                    self.error(
                        scheme_span.clone(),
                        &path,
                        "auth = \"oauth2\" takes token_env or token_file, not a password",
                    );
                }
                let token = token.unwrap_or_else(|| {
                    self.error(scheme_span.clone(), &path, "auth = \"oauth2\" needs token_env, token_file or token");
                    Secret::Env(String::new())
                });
                Auth::OAuth2 { token }
            }
            RawAuthScheme::ClientSecret | RawAuthScheme::ClientCertificate => {
                let name = if matches!(*c.auth.get_ref(), RawAuthScheme::ClientSecret) {
                    "client_secret"
                } else {
                    "client_certificate"
                };
                self.error(
                    scheme_span.clone(),
                    &path,
                    format!(
                        "auth = \"{name}\" is Microsoft Graph's; add kind = \"graph\" (EWS takes basic, ntlm, oauth2 or none)"
                    ),
                );
                Auth::None
            }
            RawAuthScheme::None => Auth::None,
        };
        let tls = self.tls(&path, c.tls);
        let impersonation = c.impersonation.is_none_or(Spanned::into_inner);
        Connection { id, endpoint, auth, impersonation, tls }
    }

    /// A `kind = "graph"` connection: Exchange Online over Microsoft Graph, app-only.
    fn graph_connection(&mut self, path: &str, id: String, c: RawConnection) -> Connection {
        let graph_only = |key: &str| {
            format!(
                "{key} belongs to EWS connections; kind = \"graph\" takes url (optional), tenant, client_id and client_secret_env or client_secret_file"
            )
        };
        if let Some(a) = &c.autodiscover {
            self.error(a.span(), &format!("{path}.autodiscover"), graph_only("autodiscover"));
        }
        if let Some(i) = &c.impersonation {
            self.error(
                i.span(),
                &format!("{path}.impersonation"),
                "a Graph application reaches every mailbox its permissions (Contacts.ReadWrite) allow; impersonation is EWS's",
            );
        }
        for (key, secret) in [
            ("password", c.password.as_ref().map(Spanned::span)),
            ("password_env", c.password_env.as_ref().map(Spanned::span)),
            ("token", c.token.as_ref().map(Spanned::span)),
            ("token_env", c.token_env.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = secret {
                self.error(span, &format!("{path}.{key}"), graph_only(key));
            }
        }
        if c.password_file.is_some() || c.token_file.is_some() || c.username.is_some() {
            self.error(c.auth.span(), path, graph_only("username, password_file and token_file"));
        }
        let url = match c.url {
            Some(url) => {
                self.note(&format!("{path}.url"), &url);
                url.into_inner()
            }
            None => GRAPH_PUBLIC_CLOUD.to_owned(),
        };
        let scheme_span = c.auth.span();
        let certificate_auth = matches!(*c.auth.get_ref(), RawAuthScheme::ClientCertificate);
        if !matches!(*c.auth.get_ref(), RawAuthScheme::ClientSecret | RawAuthScheme::ClientCertificate) {
            self.error(
                scheme_span.clone(),
                &format!("{path}.auth"),
                "a kind = \"graph\" connection authenticates as an application: auth = \"client_secret\" or \
                 auth = \"client_certificate\"",
            );
        }
        let mut required = |key: &str, value: Option<Spanned<String>>| match value {
            Some(v) => {
                self.note(&format!("{path}.{key}"), &v);
                v.into_inner()
            }
            None => {
                self.error(
                    scheme_span.clone(),
                    &format!("{path}.{key}"),
                    format!("a kind = \"graph\" connection needs {key}"),
                );
                String::new()
            }
        };
        let tenant = required("tenant", c.tenant);
        let client_id = required("client_id", c.client_id);
        let host = match c.authority {
            Some(a) => {
                self.note(&format!("{path}.authority"), &a);
                a.into_inner()
            }
            None => AUTHORITY_PUBLIC_CLOUD.to_owned(),
        };
        let secret = self.secret(path, "client_secret", c.client_secret, c.client_secret_env, c.client_secret_file);
        let files = (c.client_certificate_file, c.client_key_file);
        let file_span = files.0.as_ref().or(files.1.as_ref()).map(Spanned::span);
        if let (Some(span), Some(_)) = (file_span.clone(), &secret) {
            self.error(
                span,
                &format!("{path}.client_certificate_file"),
                "give a client secret or a certificate, not both: remove client_secret* or client_certificate_file \
                 and client_key_file",
            );
        } else if let (Some(span), false) = (file_span, certificate_auth) {
            self.error(
                span,
                &format!("{path}.client_certificate_file"),
                "client_certificate_file and client_key_file belong to auth = \"client_certificate\"",
            );
        }
        if certificate_auth {
            let mut file = |key: &str, value: Option<Spanned<PathBuf>>| match value {
                Some(v) => {
                    self.note(&format!("{path}.{key}"), &v);
                    v.into_inner()
                }
                None => {
                    self.error(
                        scheme_span.clone(),
                        &format!("{path}.{key}"),
                        format!(
                            "auth = \"client_certificate\" needs client_certificate_file and client_key_file (PEM), \
                             {key} is missing"
                        ),
                    );
                    PathBuf::new()
                }
            };
            let certificate_file = file("client_certificate_file", files.0);
            let key_file = file("client_key_file", files.1);
            if let Some(tls) = &c.tls {
                self.error(
                    tls.span(),
                    &format!("{path}.tls"),
                    "tls options are not supported on kind = \"graph\" connections yet (the system's trust store is used)",
                );
            }
            let authority = format!("{}/{}", host.trim_end_matches('/'), tenant);
            return Connection::graph(
                id,
                url,
                Auth::ClientCertificate { authority, client_id, certificate_file, key_file },
            );
        }
        let secret = secret.unwrap_or_else(|| {
            self.error(
                scheme_span.clone(),
                &format!("{path}.client_secret"),
                "auth = \"client_secret\" needs client_secret_env, client_secret_file or client_secret",
            );
            Secret::Env(String::new())
        });
        if let Some(tls) = &c.tls {
            self.error(
                tls.span(),
                &format!("{path}.tls"),
                "tls options are not supported on kind = \"graph\" connections yet (the system's trust store is used)",
            );
        }
        let authority = format!("{}/{}", host.trim_end_matches('/'), tenant);
        Connection::graph(id, url, Auth::ClientSecret { authority, client_id, secret })
    }

    fn tls(&mut self, path: &str, tls: Option<Spanned<RawTls>>) -> TlsOptions {
        match tls {
            Some(tls) => {
                self.note(&format!("{path}.tls"), &tls);
                let tls = tls.into_inner();
                if let Some(insecure) = &tls.insecure {
                    self.note(&format!("{path}.tls.insecure"), insecure);
                }
                if let Some(ca) = &tls.ca_file {
                    self.note(&format!("{path}.tls.ca_file"), ca);
                }
                if let Some(binding) = &tls.channel_binding {
                    self.note(&format!("{path}.tls.channel_binding"), binding);
                }
                TlsOptions {
                    ca_file: tls.ca_file.map(Spanned::into_inner),
                    insecure: tls.insecure.is_some_and(Spanned::into_inner),
                    channel_binding: tls.channel_binding.is_none_or(Spanned::into_inner),
                }
            }
            None => TlsOptions::default(),
        }
    }

    fn secret(
        &mut self,
        path: &str,
        name: &str,
        inline: Option<Spanned<String>>,
        env: Option<Spanned<String>>,
        file: Option<Spanned<PathBuf>>,
    ) -> Option<Secret> {
        let key = format!("{path}.{name}");
        let mut found = Vec::new();
        if let Some(v) = inline {
            self.note(&key, &v);
            found.push((v.span(), Secret::Inline(v.into_inner())));
        }
        if let Some(v) = env {
            self.note(&key, &v);
            found.push((v.span(), Secret::Env(v.into_inner())));
        }
        if let Some(v) = file {
            self.note(&key, &v);
            found.push((v.span(), Secret::File(v.into_inner())));
        }
        if found.len() > 1 {
            let span = found[1].0.clone();
            self.error(span, &key, format!("give only one of {name}, {name}_env and {name}_file"));
        }
        found.into_iter().next().map(|(_, s)| s)
    }

    fn group(&mut self, i: usize, raw: Spanned<RawGroup>) -> GroupConfig {
        let path = format!("groups[{i}]");
        self.note(&path, &raw);
        let g = raw.into_inner();
        self.note(&format!("{path}.id"), &g.id);
        self.note(&format!("{path}.connection"), &g.connection);
        self.note(&format!("{path}.hub"), &g.hub);
        if let Some(key) = &g.match_key {
            self.note(&format!("{path}.match_key"), key);
        }
        let hub_span = g.hub.span();
        let hub = g.hub.into_inner();
        let hub = match (hub.public_folder, hub.mailbox) {
            (Some(path), None) if hub.folder.is_none() => HubFolder::PublicFolder(path.trim_matches('/').to_owned()),
            (None, Some(mailbox)) => {
                let folder = match hub.folder {
                    Some(folder) => self.target(&format!("{path}.hub.folder"), folder),
                    None => TargetFolder::default(),
                };
                HubFolder::Mailbox { mailbox, folder }
            }
            _ => {
                self.error(
                    hub_span,
                    &format!("{path}.hub"),
                    "give either hub = { public_folder = \"...\" } or hub = { mailbox = \"...\", folder = \"...\" }",
                );
                HubFolder::PublicFolder(String::new())
            }
        };
        let mut group = GroupConfig::new(g.id.into_inner(), g.connection.into_inner(), hub);
        if let Some(target) = g.target {
            group.default_target = self.target(&format!("{path}.target"), target);
        }
        let priority = g.priority.map(|p| {
            self.note(&format!("{path}.priority"), &p);
            (p.span(), p.into_inner())
        });
        group.conflict_policy = match (g.conflict_policy, priority) {
            (Some(RawConflictPolicy::MemberPriority), Some((_, order))) => {
                ConflictPolicy::MemberPriority(order.into_iter().map(MemberId::new).collect())
            }
            (Some(RawConflictPolicy::MemberPriority), None) => {
                let span = self.span_of(&path).unwrap_or_default();
                self.error(
                    span,
                    &format!("{path}.priority"),
                    "conflict_policy = \"member_priority\" needs priority = [...]",
                );
                ConflictPolicy::MemberPriority(Vec::new())
            }
            (_, Some((span, _))) => {
                self.error(
                    span,
                    &format!("{path}.priority"),
                    "priority is only used with conflict_policy = \"member_priority\"",
                );
                ConflictPolicy::default()
            }
            (Some(RawConflictPolicy::NewestWins), None) => ConflictPolicy::NewestWins,
            (Some(RawConflictPolicy::HubWins) | None, None) => ConflictPolicy::HubWins,
        };
        group.match_key = g.match_key.map(Spanned::into_inner).unwrap_or_default();
        if let Some(take_over) = g.take_over_matches {
            self.note(&format!("{path}.take_over_matches"), &take_over);
            group.take_over_matches = take_over.into_inner();
        }
        if let Some(guard) = g.mass_delete_guard {
            self.note(&format!("{path}.mass_delete_guard"), &guard);
            let guard = guard.into_inner();
            let default = MassDeleteGuard::default();
            group.mass_delete_guard = MassDeleteGuard {
                max_share: guard.max_share.unwrap_or(default.max_share),
                min_count: guard.min_count.unwrap_or(default.min_count),
            };
        }
        group.on_leave = match g.on_leave {
            Some(RawLeave::Keep) => LeavePolicy::Keep,
            Some(RawLeave::Remove) | None => LeavePolicy::Remove,
        };
        for (m, raw) in g.members.into_iter().enumerate() {
            let mpath = format!("{path}.members[{m}]");
            self.note(&mpath, &raw);
            let r = raw.into_inner();
            self.note(&format!("{mpath}.mailbox"), &r.mailbox);
            let shared = SharedMember {
                connection: r.connection,
                direction: r.direction,
                on_edit: r.on_edit,
                on_delete: r.on_delete,
                adopt_new_items: r.adopt_new_items,
                propagate_deletes: r.propagate_deletes,
                target: r.target,
                filter: r.filter,
                modify: r.modify,
            };
            let mut member = self.member(&mpath, r.mailbox.into_inner(), shared);
            if let Some(id) = r.id {
                self.note(&format!("{mpath}.id"), &id);
                member.id = id.into_inner();
            } else {
                let span = self.span_of(&format!("{mpath}.mailbox")).unwrap_or_default();
                self.spans.insert(format!("{mpath}.id"), span);
            }
            group.members.push(member);
        }
        for (s, raw) in g.member_sources.into_iter().enumerate() {
            let spath = format!("{path}.member_sources[{s}]");
            self.note(&spath, &raw);
            let r = raw.into_inner();
            self.note(&format!("{spath}.distribution_group"), &r.distribution_group);
            let shared = SharedMember {
                connection: r.connection,
                direction: r.direction,
                on_edit: r.on_edit,
                on_delete: r.on_delete,
                adopt_new_items: r.adopt_new_items,
                propagate_deletes: r.propagate_deletes,
                target: r.target,
                filter: r.filter,
                modify: r.modify,
            };
            let template = self.member(&spath, String::new(), shared);
            let mut source = MemberSource::new(r.distribution_group.into_inner(), template.direction);
            source.template = template;
            if let Some(secs) = r.refresh_secs {
                source.refresh_interval = Duration::from_secs(secs);
            }
            group.member_sources.push(source);
        }
        group
    }

    fn member(&mut self, path: &str, mailbox: String, r: SharedMember) -> MemberConfig {
        self.note(&format!("{path}.direction"), &r.direction);
        let direction = match *r.direction.get_ref() {
            RawDirection::OneWay => {
                for (name, value) in
                    [("adopt_new_items", &r.adopt_new_items), ("propagate_deletes", &r.propagate_deletes)]
                {
                    if let Some(v) = value {
                        self.error(
                            v.span(),
                            &format!("{path}.{name}"),
                            format!("{name} applies to two-way members only"),
                        );
                    }
                }
                let policy = |p: &Option<Spanned<RawLocalChange>>| match p.as_ref().map(|s| *s.get_ref()) {
                    Some(RawLocalChange::Ignore) => LocalChangePolicy::Ignore,
                    Some(RawLocalChange::Revert) | None => LocalChangePolicy::Revert,
                };
                Direction::OneWay(OneWayPolicy { on_edit: policy(&r.on_edit), on_delete: policy(&r.on_delete) })
            }
            RawDirection::TwoWay => {
                for (name, value) in [("on_edit", &r.on_edit), ("on_delete", &r.on_delete)] {
                    if let Some(v) = value {
                        self.error(
                            v.span(),
                            &format!("{path}.{name}"),
                            format!("{name} applies to one-way members only"),
                        );
                    }
                }
                let default = TwoWayPolicy::default();
                Direction::TwoWay(TwoWayPolicy {
                    adopt_new_items: r.adopt_new_items.map_or(default.adopt_new_items, Spanned::into_inner),
                    propagate_deletes: r.propagate_deletes.map_or(default.propagate_deletes, Spanned::into_inner),
                })
            }
        };
        let mut member = MemberConfig::new(mailbox, direction);
        if let Some(connection) = r.connection {
            self.note(&format!("{path}.connection"), &connection);
            member.connection = Some(connection.into_inner());
        }
        if let Some(target) = r.target {
            member.target = Some(self.target(&format!("{path}.target"), target));
        }
        if let Some(filter) = r.filter {
            member.filter = Some(self.condition(&format!("{path}.filter"), filter));
        }
        if let Some(modify) = r.modify {
            let mod_path = format!("{path}.modify");
            self.note(&mod_path, &modify);
            for (k, m) in modify.into_inner().into_iter().enumerate() {
                if let Some(m) = self.modification(&format!("{mod_path}[{k}]"), m) {
                    member.modifications.push(m);
                }
            }
        }
        member
    }

    fn target(&mut self, path: &str, raw: Spanned<String>) -> TargetFolder {
        self.note(path, &raw);
        let span = raw.span();
        match raw.into_inner().parse() {
            Ok(target) => target,
            Err(message) => {
                self.error(span, path, message);
                TargetFolder::default()
            }
        }
    }

    fn condition(&mut self, path: &str, raw: Spanned<RawCondition>) -> Condition {
        self.note(path, &raw);
        let span = raw.span();
        let c = raw.into_inner();
        let mut found = Vec::new();
        if let Some(category) = c.category {
            found.push(Condition::Category(category));
        }
        if let Some(kind) = c.kind {
            match parse_kind(&kind) {
                Some(kind) => found.push(Condition::Kind(kind)),
                None => {
                    self.error(span.clone(), path, format!("unknown kind {kind:?}: expected contact, calendar_item, task, note, distribution_list or an IPM.* class"));
                    found.push(Condition::All(Vec::new()));
                }
            }
        }
        let tests = [
            c.equals.map(FieldTest::Equals),
            c.contains.map(FieldTest::Contains),
            c.exists.filter(|e| *e).map(|_| FieldTest::Exists),
        ];
        let tests: Vec<FieldTest> = tests.into_iter().flatten().collect();
        match (c.field, tests.len()) {
            (Some(name), 1) => {
                found.push(Condition::Field { name, test: tests.into_iter().next().unwrap_or(FieldTest::Exists) })
            }
            (Some(_), _) => {
                self.error(
                    span.clone(),
                    path,
                    "a field condition needs exactly one of equals, contains or exists = true",
                );
                found.push(Condition::All(Vec::new()));
            }
            (None, 0) => {}
            (None, _) => {
                self.error(span.clone(), path, "equals, contains and exists need field = \"<canonical field name>\"");
            }
        }
        for (key, list) in [("all", c.all), ("any", c.any)] {
            if let Some(list) = list {
                let inner: Vec<Condition> = list
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| self.condition(&format!("{path}.{key}[{i}]"), r))
                    .collect();
                found.push(if key == "all" { Condition::All(inner) } else { Condition::Any(inner) });
            }
        }
        if let Some(not) = c.not {
            found.push(Condition::Not(Box::new(self.condition(&format!("{path}.not"), *not))));
        }
        match found.len() {
            1 => found.into_iter().next().unwrap_or(Condition::All(Vec::new())),
            0 => {
                self.error(span, path, "an empty condition: give category, kind, field, all, any or not");
                Condition::All(Vec::new())
            }
            _ => {
                self.error(span, path, "a condition holds one test; combine several with all = [...] or any = [...]");
                Condition::All(found)
            }
        }
    }

    fn modification(&mut self, path: &str, raw: Spanned<RawModification>) -> Option<Modification> {
        self.note(path, &raw);
        let span = raw.span();
        let m = raw.into_inner();
        let mut found = Vec::new();
        let errors_before = self.errors.len();
        match (m.set, m.value) {
            (Some(name), Some(value)) => found.push(Modification::SetField { name, value }),
            (Some(_), None) => self.error(span.clone(), path, "set = \"<field>\" needs value = \"...\""),
            (None, Some(_)) => self.error(span.clone(), path, "value belongs to set = \"<field>\""),
            (None, None) => {}
        }
        if let Some(name) = m.clear {
            found.push(Modification::ClearField { name });
        }
        if m.clear_body {
            found.push(Modification::ClearBody);
        }
        if let Some(c) = m.add_category {
            found.push(Modification::AddCategory(c));
        }
        if let Some(c) = m.remove_category {
            found.push(Modification::RemoveCategory(c));
        }
        if m.meetings_to_appointments {
            found.push(Modification::MeetingsToAppointments);
        }
        if found.len() != 1 && self.errors.len() == errors_before {
            self.error(
                span,
                path,
                "a modification is exactly one of set (with value), clear, clear_body, add_category, remove_category, meetings_to_appointments",
            );
        }
        found.into_iter().next()
    }
}

struct SharedMember {
    connection: Option<Spanned<String>>,
    direction: Spanned<RawDirection>,
    on_edit: Option<Spanned<RawLocalChange>>,
    on_delete: Option<Spanned<RawLocalChange>>,
    adopt_new_items: Option<Spanned<bool>>,
    propagate_deletes: Option<Spanned<bool>>,
    target: Option<Spanned<String>>,
    filter: Option<Spanned<RawCondition>>,
    modify: Option<Spanned<Vec<Spanned<RawModification>>>>,
}

impl Converter {
    fn service_settings(&mut self, raw: RawService) -> ServiceSettings {
        let mut s = ServiceSettings::default();
        if let Some(ms) = raw.pull_interval_ms {
            s.pull_interval = Duration::from_millis(ms);
        }
        if let Some(http) = raw.http {
            self.note("service.http", &http);
            let span = http.span();
            let h = http.into_inner();
            let mut settings = HttpSettings::default();
            if let Some(listen) = h.listen {
                self.note("service.http.listen", &listen);
                match listen.get_ref().parse::<std::net::SocketAddr>() {
                    Ok(addr) => settings.listen = addr,
                    Err(_) => self.error(
                        listen.span(),
                        "service.http.listen",
                        format!("{:?} is not an address with a port, e.g. \"127.0.0.1:9464\"", listen.get_ref()),
                    ),
                }
            } else {
                self.spans.insert("service.http.listen".into(), span);
            }
            settings.admin_token =
                self.secret("service.http", "admin_token", h.admin_token, h.admin_token_env, h.admin_token_file);
            s.http = Some(settings);
        }
        if let Some(log) = raw.log {
            self.note("service.log", &log);
            let l = log.into_inner();
            let d = LogSettings::default();
            s.log = LogSettings {
                level: l.level,
                file: l.file,
                rotation: match l.rotation {
                    Some(RawRotation::Hourly) => LogRotation::Hourly,
                    Some(RawRotation::Never) => LogRotation::Never,
                    Some(RawRotation::Daily) | None => LogRotation::Daily,
                },
                keep: l.keep.unwrap_or(d.keep),
            };
        }
        if let Some(state) = raw.state {
            s.state = if state == "memory" {
                StateLocation::Memory
            } else if is_postgres_url(&state) {
                let password = match (raw.state_password_env, raw.state_password_file) {
                    (Some(env), _) => Some(Secret::Env(env)),
                    (None, Some(file)) => Some(Secret::File(file)),
                    (None, None) => None,
                };
                StateLocation::Postgres(PostgresState {
                    url: state,
                    password,
                    schema: raw.state_schema.unwrap_or_else(|| "exchange_sync".to_owned()),
                    worker: raw.worker.unwrap_or_else(crate::config::host_name),
                    lease: Duration::from_secs(raw.lease_secs.unwrap_or(30).max(1)),
                })
            } else {
                StateLocation::Sqlite(PathBuf::from(state))
            };
        }
        if let Some(url) = raw.graph_notification_url {
            self.note("service.graph_notification_url", &url);
            s.graph_notification_url = Some(url.into_inner());
        }
        if let Some(ms) = raw.debounce_ms {
            s.debounce = Duration::from_millis(ms);
        }
        if let Some(secs) = raw.poll_interval_secs {
            s.poll_interval = Duration::from_secs(secs);
        }
        if let Some(secs) = raw.resync_interval_secs {
            s.resync_interval = Duration::from_secs(secs);
        }
        if let Some(n) = raw.max_concurrent_groups {
            s.max_concurrent_groups = n;
        }
        if let Some(secs) = raw.shutdown_grace_secs {
            s.shutdown_grace = Duration::from_secs(secs);
        }
        if let Some(r) = raw.retry {
            let d = RetrySettings::default();
            s.retry = RetrySettings {
                initial_delay: r.initial_delay_ms.map_or(d.initial_delay, Duration::from_millis),
                max_delay: r.max_delay_ms.map_or(d.max_delay, Duration::from_millis),
                max_attempts: r.max_attempts.unwrap_or(d.max_attempts),
            };
        }
        s
    }
}

/// Parses an item kind as written in configuration files.
pub fn parse_kind(name: &str) -> Option<ItemKind> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "contact" => ItemKind::Contact,
        "calendar_item" | "calendar" | "appointment" => ItemKind::CalendarItem,
        "task" => ItemKind::Task,
        "note" => ItemKind::Note,
        "distribution_list" => ItemKind::DistributionList,
        _ if name.trim().starts_with("IPM.") => ItemKind::Other(name.trim().to_owned()),
        _ => return None,
    })
}
