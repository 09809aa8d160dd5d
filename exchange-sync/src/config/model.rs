//! The configuration as plain data: what a file describes, buildable from code as well.
//!
//! Every type here is owned, plain data with public fields, `Default` where a default makes
//! sense, and small constructors, so that Rust code, the Python and .NET bindings and the TOML
//! loader ([`crate::config::Config::from_toml_str`]) all build the same thing.

use std::path::PathBuf;
use std::time::Duration;

use exchange_sync_core::{ConflictPolicy, Direction, MassDeleteGuard};

use crate::config::secret::Secret;
use crate::delivery::DeliveryRule;
use crate::filter::Condition;
use crate::modification::Modification;

/// The whole configuration: service settings, server connections, sync groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// How the service runs.
    pub service: ServiceSettings,
    /// Server connections, referenced by groups by id.
    pub connections: Vec<Connection>,
    /// The sync groups.
    pub groups: Vec<GroupConfig>,
}

/// Whether a `state` value names a PostgreSQL database (`postgres://` or `postgresql://`) rather
/// than an SQLite file.
pub fn is_postgres_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

/// Where the service keeps its state between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// An SQLite database file (the default: `exchange-sync.sqlite` next to the working directory).
    Sqlite(PathBuf),
    /// In memory only: every start is an initial sync (tests and demos).
    Memory,
    /// A PostgreSQL database that several workers share (`state = "postgres://..."`): each group
    /// is owned by one worker at a time through a lease, and another worker takes over the
    /// groups of one that died once their leases expire.
    Postgres(PostgresState),
}

/// A PostgreSQL state: where, as whom, and how long a worker's leases last.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresState {
    /// The connection URL, `postgres://user@host:port/database` (the password belongs in
    /// `password`, read from the environment or a file, not in the configuration).
    pub url: String,
    /// The database password (`state_password_env` or `state_password_file`).
    pub password: Option<crate::config::Secret>,
    /// The schema holding the tables (`state_schema`, default `exchange_sync`): one installation
    /// per schema.
    pub schema: String,
    /// This worker's name among the workers sharing the database (`worker`, default the host
    /// name). Two running workers must not share a name.
    pub worker: String,
    /// How long a lease lasts without renewal (`lease_secs`, default 30 s): a dead worker's
    /// groups resume on another worker after at most this long.
    pub lease: Duration,
}

impl PostgresState {
    /// The URL with any password it carries replaced, for messages and `Debug`.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `url` with the password of its user part (`user:password@`) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresState")
            .field("url", &self.shown_url())
            .field("password", &self.password)
            .field("schema", &self.schema)
            .field("worker", &self.worker)
            .field("lease", &self.lease)
            .finish()
    }
}

/// How the service runs: timings, concurrency, retries.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// Where state is kept.
    pub state: StateLocation,
    /// How long to wait after a change hint for more hints before syncing (one pass covers a
    /// burst of edits).
    pub debounce: Duration,
    /// How often to look at folders whose server sends no change hints.
    pub poll_interval: Duration,
    /// How often to run a full safety re-sync of every group even without hints (catches missed
    /// notifications).
    pub resync_interval: Duration,
    /// How many groups sync at the same time.
    pub max_concurrent_groups: usize,
    /// Retries of retryable failures (network, throttling).
    pub retry: RetrySettings,
    /// How long a shutdown waits for passes in flight before abandoning them.
    pub shutdown_grace: Duration,
    /// How often a folder watched by a pull subscription (servers without streaming
    /// notifications, such as Exchange 2007 SP1) is asked for its events (one small GetEvents).
    pub pull_interval: Duration,
    /// The status page, `/metrics` and `/healthz` (off unless configured).
    pub http: Option<HttpSettings>,
    /// The public HTTPS URL where Microsoft Graph can post change notifications
    /// (`graph_notification_url`), forwarded (e.g. by a reverse proxy) to the same path on the
    /// HTTP listener ([`ServiceSettings::http`]). With it, Graph folders are watched through
    /// subscriptions; without it (or when subscribing fails) their delta links are polled.
    pub graph_notification_url: Option<String>,
    /// The service's log.
    pub log: LogSettings,
}

/// The service's HTTP endpoint: a status page, Prometheus `/metrics` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where to listen (loopback by default: put a reverse proxy with TLS in front of it to reach
    /// it from elsewhere).
    pub listen: std::net::SocketAddr,
    /// The admin token that allows confirming and resyncing from the status page (and the JSON
    /// API); without one, the endpoint is read-only.
    pub admin_token: Option<Secret>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9464)), admin_token: None }
    }
}

/// How often the log file starts anew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogRotation {
    /// A new file every day (the default).
    #[default]
    Daily,
    /// A new file every hour.
    Hourly,
    /// One file, never rotated (rotate it with logrotate and `copytruncate`).
    Never,
}

/// The service's log: its level and, optionally, a file with rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The level or filter (`info`, `warn`, `exchange_sync=debug,info`), in `RUST_LOG` syntax; the
    /// `--log-level` option, `EXCHANGE_SYNC_LOG` and `RUST_LOG` take precedence, in that order.
    pub level: Option<String>,
    /// A log file (`/var/log/exchange-sync/exchange-sync.log`): rotated files are named
    /// `exchange-sync.log.<date>`.
    pub file: Option<PathBuf>,
    /// How often the file starts anew.
    pub rotation: LogRotation,
    /// How many rotated files are kept (the oldest are removed).
    pub keep: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: None, file: None, rotation: LogRotation::Daily, keep: 14 }
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            state: StateLocation::Sqlite(PathBuf::from("exchange-sync.sqlite")),
            debounce: Duration::from_millis(200),
            poll_interval: Duration::from_secs(60),
            resync_interval: Duration::from_secs(3600),
            max_concurrent_groups: 4,
            retry: RetrySettings::default(),
            shutdown_grace: Duration::from_secs(10),
            pull_interval: Duration::from_secs(2),
            http: None,
            graph_notification_url: None,
            log: LogSettings::default(),
        }
    }
}

/// Exponential backoff for retryable failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// The first delay.
    pub initial_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// How many attempts a pass gets before its failure is reported (at least 1).
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings { initial_delay: Duration::from_millis(500), max_delay: Duration::from_secs(60), max_attempts: 5 }
    }
}

/// How to reach the EWS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The EWS URL, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`.
    Url(String),
    /// An e-mail address whose domain Autodiscover resolves to the EWS URL.
    Autodiscover(String),
    /// Microsoft Graph's host, e.g. `https://graph.microsoft.com` (Exchange Online mailboxes,
    /// reached through Graph v1.0; `kind = "graph"` in configuration files).
    Graph(String),
}

/// Microsoft Graph's host in the public cloud.
pub const GRAPH_PUBLIC_CLOUD: &str = exchange_sync_graph::client::PUBLIC_CLOUD_GRAPH;

/// The Microsoft identity platform's authority host in the public cloud.
pub const AUTHORITY_PUBLIC_CLOUD: &str = exchange_sync_graph::auth::PUBLIC_CLOUD_AUTHORITY_HOST;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic (use it over TLS only).
    Basic {
        /// The account, `user@domain` or `DOMAIN\user`.
        username: String,
        /// The password.
        password: Secret,
    },
    /// NTLM (the usual on-premises choice).
    Ntlm {
        /// The account, `user@domain` or `DOMAIN\user`.
        username: String,
        /// The password.
        password: Secret,
    },
    /// Negotiate with Kerberos (Exchange SE's default, and hardened sites without NTLM): the
    /// ticket of `username` (a Kerberos principal, `sync-admin@CONTOSO.COM`) from the credential
    /// cache (`KRB5CCNAME`) or the account's keytab (`KRB5_CLIENT_KTNAME`) in the service's
    /// environment. With a password, NTLM is the fallback when the server offers only NTLM. Needs
    /// a build with the `kerberos` feature.
    Negotiate {
        /// The Kerberos principal, `user@REALM`.
        username: String,
        /// The password for the NTLM fallback, if any.
        password: Option<Secret>,
    },
    /// OAuth2 bearer token (hybrid modern authentication); the token is read from its source
    /// each time the server rejects the previous one.
    OAuth2 {
        /// The access token.
        token: Secret,
    },
    /// App-only OAuth2 for Microsoft Graph: an application registration's client secret, traded
    /// for access tokens with the client-credentials grant (tokens are cached and renewed by
    /// the Graph client, never logged).
    ClientSecret {
        /// `{authority host}/{tenant}`, e.g. `https://login.microsoftonline.com/contoso.onmicrosoft.com`.
        authority: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// App-only OAuth2 for Microsoft Graph with a certificate: the application signs a client
    /// assertion with the certificate's private key instead of sending a secret (the certificate
    /// is uploaded to the app registration; the key stays in a file only the service reads).
    ClientCertificate {
        /// `{authority host}/{tenant}`, as for [`Auth::ClientSecret`].
        authority: String,
        /// The application (client) id.
        client_id: String,
        /// The PEM certificate (`client_certificate_file`).
        certificate_file: PathBuf,
        /// Its PEM private key, PKCS#8 or PKCS#1 RSA (`client_key_file`).
        key_file: PathBuf,
    },
    /// No authentication (an authenticating proxy, or a test server).
    None,
}

impl Auth {
    /// The scheme's name as written in configuration files.
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::Basic { .. } => "basic",
            Auth::Ntlm { .. } => "ntlm",
            Auth::Negotiate { .. } => "negotiate",
            Auth::OAuth2 { .. } => "oauth2",
            Auth::ClientSecret { .. } => "client_secret",
            Auth::ClientCertificate { .. } => "client_certificate",
            Auth::None => "none",
        }
    }

    /// The secret the scheme needs, if any.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Auth::Basic { password, .. } | Auth::Ntlm { password, .. } => Some(password),
            Auth::Negotiate { password, .. } => password.as_ref(),
            Auth::OAuth2 { token } => Some(token),
            Auth::ClientSecret { secret, .. } => Some(secret),
            Auth::ClientCertificate { .. } | Auth::None => None,
        }
    }
}

/// TLS options. Verification is on unless `insecure` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM bundle of extra trusted CAs (internal CAs of on-premises servers).
    pub ca_file: Option<PathBuf>,
    /// Turns certificate verification off. Never in production; validation warns.
    pub insecure: bool,
    /// Binds NTLM to the TLS channel (Extended Protection; on by default), which Exchange 2019
    /// CU14 and later require. Off only behind a TLS-terminating proxy in front of a server that
    /// allows NTLM without it; validation warns.
    pub channel_binding: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions { ca_file: None, insecure: false, channel_binding: true }
    }
}

/// A server connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The id groups refer to.
    pub id: String,
    /// Where the server is.
    pub endpoint: Endpoint,
    /// How to authenticate.
    pub auth: Auth,
    /// Whether to act as each member's mailbox through the ApplicationImpersonation role
    /// (required for many mailboxes, and for change notifications on them).
    pub impersonation: bool,
    /// TLS options.
    pub tls: TlsOptions,
}

impl Connection {
    /// A connection to an EWS URL.
    pub fn new(id: impl Into<String>, url: impl Into<String>, auth: Auth) -> Self {
        Connection {
            id: id.into(),
            endpoint: Endpoint::Url(url.into()),
            auth,
            impersonation: true,
            tls: TlsOptions::default(),
        }
    }

    /// A connection to Exchange Online over Microsoft Graph at `graph_url` (see
    /// [`GRAPH_PUBLIC_CLOUD`]), authenticated as an application with its client secret.
    pub fn graph(id: impl Into<String>, graph_url: impl Into<String>, auth: Auth) -> Self {
        Connection {
            id: id.into(),
            endpoint: Endpoint::Graph(graph_url.into()),
            auth,
            impersonation: false,
            tls: TlsOptions::default(),
        }
    }

    /// Whether the connection reaches its mailboxes over Microsoft Graph rather than EWS.
    pub fn is_graph(&self) -> bool {
        matches!(self.endpoint, Endpoint::Graph(_))
    }
}

/// A well-known mailbox folder: the ones phones sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WellKnownFolder {
    /// The default Contacts folder.
    Contacts,
    /// The default Calendar folder.
    Calendar,
    /// The default Tasks folder.
    Tasks,
    /// The default Notes folder.
    Notes,
}

impl WellKnownFolder {
    /// The name used in configuration files (and the EWS DistinguishedFolderId).
    pub fn name(self) -> &'static str {
        match self {
            WellKnownFolder::Contacts => "contacts",
            WellKnownFolder::Calendar => "calendar",
            WellKnownFolder::Tasks => "tasks",
            WellKnownFolder::Notes => "notes",
        }
    }
}

/// The folder of a member mailbox that receives the group's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetFolder {
    /// A default folder (many phones sync only those).
    WellKnown(WellKnownFolder),
    /// A folder with this name under a default folder; created when missing.
    Named {
        /// The parent folder.
        parent: WellKnownFolder,
        /// The folder's display name.
        name: String,
    },
}

impl Default for TargetFolder {
    fn default() -> Self {
        TargetFolder::WellKnown(WellKnownFolder::Contacts)
    }
}

/// Reads a target folder as files write it: `contacts`, `calendar`, `tasks` or `notes`,
/// optionally followed by `/Folder Name`. The one parser of this notation: the file format and
/// both language bindings use it, so a folder is named the same way everywhere.
impl std::str::FromStr for TargetFolder {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (parent, name) = match text.split_once('/') {
            Some((parent, name)) => (parent, Some(name.trim())),
            None => (text, None),
        };
        let parent = match parent.trim().to_ascii_lowercase().as_str() {
            "contacts" => WellKnownFolder::Contacts,
            "calendar" => WellKnownFolder::Calendar,
            "tasks" => WellKnownFolder::Tasks,
            "notes" => WellKnownFolder::Notes,
            other => {
                return Err(format!(
                    "unknown folder {other:?}: expected contacts, calendar, tasks or notes, optionally followed by /Folder Name"
                ));
            }
        };
        match name {
            Some("") => Err("the folder name after / must not be empty".to_owned()),
            Some(name) => Ok(TargetFolder::Named { parent, name: name.to_owned() }),
            None => Ok(TargetFolder::WellKnown(parent)),
        }
    }
}

impl std::fmt::Display for TargetFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetFolder::WellKnown(w) => f.write_str(w.name()),
            TargetFolder::Named { parent, name } => write!(f, "{}/{name}", parent.name()),
        }
    }
}

/// The group's hub: the shared folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubFolder {
    /// A public folder by its path from the root, `/`-separated (e.g. `Company Contacts` or
    /// `Sales/Customers`).
    PublicFolder(String),
    /// A folder in a mailbox (e.g. a shared mailbox).
    Mailbox {
        /// The mailbox's address.
        mailbox: String,
        /// The folder.
        folder: TargetFolder,
    },
}

impl std::fmt::Display for HubFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubFolder::PublicFolder(path) => write!(f, "public folder {path}"),
            HubFolder::Mailbox { mailbox, folder } => write!(f, "{mailbox}/{folder}"),
        }
    }
}

/// What happens to a member's copies when the member leaves the group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeavePolicy {
    /// Remove the copies the group created (the user's own items, and those that joined the
    /// group from that folder, stay).
    #[default]
    Remove,
    /// Keep them as the user's own items (the group forgets them).
    Keep,
}

/// One member mailbox folder.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberConfig {
    /// The member's id within the group (state is keyed by it); by default the mailbox address in
    /// lower case. Exchange compares mailbox addresses without regard to case, and so does the
    /// service: an id that contains `@` is taken in lower case (see [`member_id`]).
    pub id: String,
    /// The member's mailbox address.
    pub mailbox: String,
    /// Which way changes flow, with the direction's policies.
    pub direction: Direction,
    /// The folder receiving the group's items (`None`: the group's default target).
    pub target: Option<TargetFolder>,
    /// Which items the member receives (one-way members only).
    pub filter: Option<Condition>,
    /// How the member's copies differ from the shared items (one-way members only).
    pub modifications: Vec<Modification>,
    /// The connection (by id) that reaches the member's mailbox, when it is not the group's: a
    /// hybrid organisation keeps the hub in an on-premises public folder (EWS) while its members'
    /// mailboxes live in Exchange Online (Microsoft Graph). `None`: the group's connection.
    pub connection: Option<String>,
}

impl MemberConfig {
    /// A member whose id is its mailbox address (in lower case: see [`member_id`]).
    pub fn new(mailbox: impl Into<String>, direction: Direction) -> Self {
        let mailbox = mailbox.into();
        MemberConfig {
            id: member_id(&mailbox),
            mailbox,
            direction,
            target: None,
            filter: None,
            modifications: Vec::new(),
            connection: None,
        }
    }

    /// A one-way member with default policies (revert local edits and deletions).
    pub fn one_way(mailbox: impl Into<String>) -> Self {
        Self::new(mailbox, Direction::one_way())
    }

    /// A two-way member with default policies (adopt new items, propagate deletions).
    pub fn two_way(mailbox: impl Into<String>) -> Self {
        Self::new(mailbox, Direction::two_way())
    }

    /// Sets the target folder.
    pub fn with_target(mut self, target: TargetFolder) -> Self {
        self.target = Some(target);
        self
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: Condition) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Appends a modification.
    pub fn with_modification(mut self, modification: Modification) -> Self {
        self.modifications.push(modification);
        self
    }

    /// The member's filter and modifications.
    pub fn delivery_rule(&self) -> DeliveryRule {
        DeliveryRule { filter: self.filter.clone(), modifications: self.modifications.clone() }
    }
}

/// The member id state is keyed by, for an id as written: an id that contains `@` is a mailbox
/// address, which Exchange compares without regard to case, so it is taken in lower case (two
/// spellings of one address are one member; the SQLite state lowers stored ids the same way).
/// Other ids are kept as written.
pub fn member_id(id: &str) -> String {
    if id.contains('@') { id.trim().to_lowercase() } else { id.to_owned() }
}

/// Members taken from a distribution group and kept current: everyone in it gets the same
/// settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSource {
    /// The distribution group's address (expanded with EWS ExpandDL, nested groups included).
    pub distribution_group: String,
    /// The settings every expanded member gets (`id` and `mailbox` are ignored: they come from
    /// the expansion).
    pub template: MemberConfig,
    /// How often the distribution group is expanded again to pick up joiners and leavers.
    pub refresh_interval: Duration,
}

impl MemberSource {
    /// Members from a distribution group, with a template's settings, refreshed every 5 minutes.
    pub fn new(distribution_group: impl Into<String>, direction: Direction) -> Self {
        MemberSource {
            distribution_group: distribution_group.into(),
            template: MemberConfig::new("", direction),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// A sync group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// The group's id (part of every origin stamp: never change it for a running group).
    pub id: String,
    /// The connection (by id) for the hub, and for the members that do not name their own
    /// ([`MemberConfig::connection`]).
    pub connection: String,
    /// The hub.
    pub hub: HubFolder,
    /// The members listed one by one.
    pub members: Vec<MemberConfig>,
    /// Members taken from distribution groups.
    pub member_sources: Vec<MemberSource>,
    /// The target folder of members that name none.
    pub default_target: TargetFolder,
    /// How conflicting field edits are resolved.
    pub conflict_policy: ConflictPolicy,
    /// Canonical fields matching existing copies at initial sync (e.g. `email1.address`).
    pub match_key: Vec<String>,
    /// Whether a member's item that matches a group item by `match_key` but holds other content
    /// is taken over by the group (overwritten, every overwritten value recorded in the conflict
    /// log first). Off by default: such an item is the user's own and stays untouched, and the
    /// member gets no second copy of that group item (design rules 6 and 9).
    pub take_over_matches: bool,
    /// The mass-delete guard.
    pub mass_delete_guard: MassDeleteGuard,
    /// What happens to a leaving member's copies.
    pub on_leave: LeavePolicy,
}

impl GroupConfig {
    /// A group on a public folder, delivering into each member's default Contacts folder.
    pub fn new(id: impl Into<String>, connection: impl Into<String>, hub: HubFolder) -> Self {
        GroupConfig {
            id: id.into(),
            connection: connection.into(),
            hub,
            members: Vec::new(),
            member_sources: Vec::new(),
            default_target: TargetFolder::default(),
            conflict_policy: ConflictPolicy::default(),
            match_key: Vec::new(),
            take_over_matches: false,
            mass_delete_guard: MassDeleteGuard::default(),
            on_leave: LeavePolicy::default(),
        }
    }

    /// The connection (by id) that reaches `member`'s mailbox: its own, or the group's.
    pub fn member_connection<'a>(&'a self, member: &'a MemberConfig) -> &'a str {
        member.connection.as_deref().unwrap_or(&self.connection)
    }

    /// Every connection the group uses: the hub's first, then its members' own (listed members and
    /// member sources), each once.
    pub fn connections(&self) -> Vec<&str> {
        let mut out = vec![self.connection.as_str()];
        let own = self.members.iter().chain(self.member_sources.iter().map(|s| &s.template));
        for c in own.filter_map(|m| m.connection.as_deref()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Adds a member.
    pub fn with_member(mut self, member: MemberConfig) -> Self {
        self.members.push(member);
        self
    }

    /// The target folder of a member.
    pub fn target_of<'a>(&'a self, member: &'a MemberConfig) -> &'a TargetFolder {
        member.target.as_ref().unwrap_or(&self.default_target)
    }

    /// A member's folder as configured, as status and state name it (`alice@contoso.test/contacts`).
    pub fn folder_path_of(&self, member: &MemberConfig) -> String {
        format!("{}/{}", member.mailbox, self.target_of(member))
    }
}

impl Config {
    /// Brings member ids to the form state is keyed by ([`member_id`]: ids that are mailbox
    /// addresses in lower case). The file loader and the service call it; a configuration built
    /// in code with ids set by hand gets the same ids.
    pub fn normalize(&mut self) {
        for group in &mut self.groups {
            for member in &mut group.members {
                member.id = member_id(&member.id);
            }
            if let ConflictPolicy::MemberPriority(order) = &mut group.conflict_policy {
                for id in order.iter_mut() {
                    *id = exchange_sync_core::MemberId::new(member_id(id.as_str()));
                }
            }
        }
    }
}
