//! Configuration classes: the Rust configuration model, built from keyword arguments or read
//! from a TOML file.
//!
//! Each class wraps the plain Rust type of `exchange_sync::config` and takes the keys of the TOML
//! format as keyword arguments (`debounce_ms`, `password_env`, `on_edit`, ...): the arguments are
//! written as TOML and read by the file format itself (`exchange_sync_bindings::config::Part`),
//! so a file and a script describe the same thing the same way and are checked by the same code.
//! Values are checked at construction (a finding names the keyword), the whole configuration in
//! `Config(...)`, `Config.load` and `SyncService(...)`.

use std::path::{Path, PathBuf};

use exchange_sync::config::{
    Config as RustConfig, Connection as RustConnection, Endpoint, GroupConfig, MemberConfig,
    MemberSource as RustMemberSource, ServiceSettings as RustServiceSettings, StateLocation,
};
use exchange_sync::filter::{Condition, FieldTest};
use exchange_sync::modification::Modification as RustModification;
use exchange_sync_bindings::config::{Checked, Part, count, key, seconds};
use exchange_sync_core::Direction;
use pyo3::prelude::*;

use crate::errors::{Diagnostic, invalid, to_pyerr};

fn parsed(part: Part) -> PyResult<RustConfig> {
    part.parse().map_err(to_pyerr)
}

fn path_text(path: Option<PathBuf>) -> Option<String> {
    path.as_deref().map(Path::display).map(|p| p.to_string())
}

/// Which items a one-way member receives: a condition on item properties.
///
/// Build with the static methods and combine with `&`, `|` and `~` (or `Filter.all`,
/// `Filter.any`, `Filter.not_`): `Filter.category("Customers") & ~Filter.field_exists("company")`.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Filter {
    /// The Rust condition.
    pub inner: Condition,
}

#[pymethods]
impl Filter {
    /// The item carries this category.
    #[staticmethod]
    fn category(name: String) -> Self {
        Filter { inner: Condition::Category(name) }
    }

    /// The item is of this kind (`contact`, `calendar_item`, `task`, `note`, `distribution_list`
    /// or an `IPM.*` class).
    #[staticmethod]
    fn kind(kind: &str) -> PyResult<Self> {
        let parsed = exchange_sync::config::file::parse_kind(kind)
            .ok_or_else(|| invalid("filter.kind", format!("unknown kind {kind:?}")))?;
        Ok(Filter { inner: Condition::Kind(parsed) })
    }

    /// The canonical field (e.g. `company`, `email1.address`) equals `value`.
    #[staticmethod]
    fn field_equals(field: String, value: String) -> Self {
        Filter { inner: Condition::Field { name: field, test: FieldTest::Equals(value) } }
    }

    /// The canonical field contains `text`.
    #[staticmethod]
    fn field_contains(field: String, text: String) -> Self {
        Filter { inner: Condition::Field { name: field, test: FieldTest::Contains(text) } }
    }

    /// The canonical field has a non-empty value.
    #[staticmethod]
    fn field_exists(field: String) -> Self {
        Filter { inner: Condition::Field { name: field, test: FieldTest::Exists } }
    }

    /// Every filter holds.
    #[staticmethod]
    #[pyo3(signature = (*filters))]
    fn all(filters: Vec<Filter>) -> Self {
        Filter { inner: Condition::All(filters.into_iter().map(|f| f.inner).collect()) }
    }

    /// At least one filter holds.
    #[staticmethod]
    #[pyo3(signature = (*filters))]
    fn any(filters: Vec<Filter>) -> Self {
        Filter { inner: Condition::Any(filters.into_iter().map(|f| f.inner).collect()) }
    }

    /// The filter does not hold.
    #[staticmethod]
    fn not_(filter: Filter) -> Self {
        Filter { inner: Condition::Not(Box::new(filter.inner)) }
    }

    fn __and__(&self, other: Filter) -> Self {
        Filter { inner: Condition::All(vec![self.inner.clone(), other.inner]) }
    }

    fn __or__(&self, other: Filter) -> Self {
        Filter { inner: Condition::Any(vec![self.inner.clone(), other.inner]) }
    }

    fn __invert__(&self) -> Self {
        Filter { inner: Condition::Not(Box::new(self.inner.clone())) }
    }

    fn __repr__(&self) -> String {
        format!("<Filter {:?}>", self.inner)
    }
}

/// How a one-way member's copies differ from the shared items.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Modification {
    /// The Rust modification.
    pub inner: RustModification,
}

#[pymethods]
impl Modification {
    /// Sets a canonical field to a text value.
    #[staticmethod]
    fn set_field(field: String, value: String) -> Self {
        Modification { inner: RustModification::SetField { name: field, value } }
    }

    /// Removes a canonical field.
    #[staticmethod]
    fn clear_field(field: String) -> Self {
        Modification { inner: RustModification::ClearField { name: field } }
    }

    /// Removes the body.
    #[staticmethod]
    fn clear_body() -> Self {
        Modification { inner: RustModification::ClearBody }
    }

    /// Adds a category.
    #[staticmethod]
    fn add_category(category: String) -> Self {
        Modification { inner: RustModification::AddCategory(category) }
    }

    /// Removes a category.
    #[staticmethod]
    fn remove_category(category: String) -> Self {
        Modification { inner: RustModification::RemoveCategory(category) }
    }

    /// Turns meetings into plain appointments (drops attendees and organizer).
    #[staticmethod]
    fn meetings_to_appointments() -> Self {
        Modification { inner: RustModification::MeetingsToAppointments }
    }

    fn __repr__(&self) -> String {
        format!("<Modification {:?}>", self.inner)
    }
}

/// The keys a listed member and a member source share.
#[allow(clippy::too_many_arguments)]
fn member_keys(
    part: &mut Part,
    direction: &str,
    target: Option<&str>,
    on_edit: Option<&str>,
    on_delete: Option<&str>,
    adopt_new_items: Option<bool>,
    propagate_deletes: Option<bool>,
) {
    part.set("direction", "direction", direction).opt("target", "target", target);
    part.opt("on_edit", "on_edit", on_edit).opt("on_delete", "on_delete", on_delete);
    part.opt("adopt_new_items", "adopt_new_items", adopt_new_items);
    part.opt("propagate_deletes", "propagate_deletes", propagate_deletes);
}

fn with_objects(mut member: MemberConfig, filter: Option<Filter>, modifications: Vec<Modification>) -> MemberConfig {
    member.filter = filter.map(|f| f.inner);
    member.modifications = modifications.into_iter().map(|m| m.inner).collect();
    member
}

fn first<T>(items: Vec<T>, what: &str) -> PyResult<T> {
    items.into_iter().next().ok_or_else(|| invalid(what, "missing after reading"))
}

fn direction_name(d: &Direction) -> &'static str {
    if d.is_two_way() { "two_way" } else { "one_way" }
}

/// One member mailbox folder of a group.
///
/// `direction` is `"two_way"` (an editor: edits flow to the hub and on to everyone) or
/// `"one_way"` (a reader: receives, local edits are reverted or ignored per `on_edit` /
/// `on_delete`). `target` names the folder (`contacts`, `contacts/Company Contacts`, ...; default:
/// the group's target). `filter` and `modifications` apply to one-way members.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Member {
    /// The Rust member.
    pub inner: MemberConfig,
}

#[pymethods]
impl Member {
    #[new]
    #[pyo3(signature = (mailbox, direction = "two_way", *, id = None, target = None, on_edit = None, on_delete = None,
        adopt_new_items = None, propagate_deletes = None, filter = None, modifications = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mailbox: String,
        direction: &str,
        id: Option<String>,
        target: Option<&str>,
        on_edit: Option<&str>,
        on_delete: Option<&str>,
        adopt_new_items: Option<bool>,
        propagate_deletes: Option<bool>,
        filter: Option<Filter>,
        modifications: Vec<Modification>,
    ) -> PyResult<Self> {
        let mut part = Part::group_entry(format!("member {mailbox}"), "members");
        part.set("mailbox", "mailbox", mailbox).opt("id", "id", id);
        member_keys(&mut part, direction, target, on_edit, on_delete, adopt_new_items, propagate_deletes);
        let group = first(parsed(part)?.groups, "member")?;
        let inner = with_objects(first(group.members, "member")?, filter, modifications);
        Ok(Member { inner })
    }

    /// The member's id within the group (default: the mailbox address).
    #[getter]
    fn id(&self) -> String {
        self.inner.id.clone()
    }

    /// The mailbox address.
    #[getter]
    fn mailbox(&self) -> String {
        self.inner.mailbox.clone()
    }

    /// `"one_way"` or `"two_way"`.
    #[getter]
    fn direction(&self) -> &'static str {
        direction_name(&self.inner.direction)
    }

    /// The target folder (`None`: the group's), as written in files.
    #[getter]
    fn target(&self) -> Option<String> {
        self.inner.target.as_ref().map(ToString::to_string)
    }

    fn __repr__(&self) -> String {
        format!("<Member {} {}>", self.inner.id, direction_name(&self.inner.direction))
    }
}

/// Members taken from a distribution group (expanded with ExpandDL, nested groups included) and
/// kept current: everyone in it gets the same settings; leavers lose the group's copies or keep
/// them per the group's `on_leave`.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct MemberSource {
    /// The Rust member source.
    pub inner: RustMemberSource,
}

#[pymethods]
impl MemberSource {
    #[new]
    #[pyo3(signature = (distribution_group, direction = "one_way", *, refresh_secs = 300, target = None, on_edit = None,
        on_delete = None, adopt_new_items = None, propagate_deletes = None, filter = None, modifications = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        distribution_group: String,
        direction: &str,
        refresh_secs: u64,
        target: Option<&str>,
        on_edit: Option<&str>,
        on_delete: Option<&str>,
        adopt_new_items: Option<bool>,
        propagate_deletes: Option<bool>,
        filter: Option<Filter>,
        modifications: Vec<Modification>,
    ) -> PyResult<Self> {
        let mut part = Part::group_entry(format!("member source {distribution_group}"), "member_sources");
        part.set("distribution_group", "distribution_group", distribution_group);
        part.set("refresh_secs", "refresh_secs", count(refresh_secs));
        member_keys(&mut part, direction, target, on_edit, on_delete, adopt_new_items, propagate_deletes);
        let mut inner = first(first(parsed(part)?.groups, "member source")?.member_sources, "member source")?;
        inner.template = with_objects(inner.template, filter, modifications);
        Ok(MemberSource { inner })
    }

    /// The distribution group's address.
    #[getter]
    fn distribution_group(&self) -> String {
        self.inner.distribution_group.clone()
    }

    fn __repr__(&self) -> String {
        format!("<MemberSource {}>", self.inner.distribution_group)
    }
}

/// A server connection: where the EWS endpoint is and how to authenticate.
///
/// Give `url` (the EWS URL) or `autodiscover` (an address whose domain Autodiscover resolves).
/// `auth` is `"basic"`, `"ntlm"`, `"oauth2"` or `"none"`. Secrets come from `password_env` /
/// `password_file` (or `token_env` / `token_file`), or inline `password` / `token` (validation
/// warns). Passwords are never shown by `repr`.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Connection {
    /// The Rust connection.
    pub inner: RustConnection,
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (id, url = None, *, autodiscover = None, auth = "basic", username = None, password = None,
        password_env = None, password_file = None, token = None, token_env = None, token_file = None,
        impersonation = true, ca_file = None, insecure = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: String,
        url: Option<String>,
        autodiscover: Option<String>,
        auth: &str,
        username: Option<String>,
        password: Option<String>,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
        token: Option<String>,
        token_env: Option<String>,
        token_file: Option<PathBuf>,
        impersonation: bool,
        ca_file: Option<PathBuf>,
        insecure: bool,
    ) -> PyResult<Self> {
        let mut part = Part::new(format!("connection {id}"), "connections[0]");
        let table = format!("connections.{}", key(&id));
        part.table(&table).opt("url", "url", url).opt("autodiscover", "autodiscover", autodiscover);
        part.set("auth", "auth", auth).opt("username", "username", username);
        part.opt("password", "password", password).opt("password_env", "password_env", password_env);
        part.opt("password_file", "password_file", path_text(password_file));
        part.opt("token", "token", token).opt("token_env", "token_env", token_env);
        part.opt("token_file", "token_file", path_text(token_file)).set(
            "impersonation",
            "impersonation",
            impersonation,
        );
        part.table(&format!("{table}.tls"))
            .opt("ca_file", "ca_file", path_text(ca_file))
            .set("insecure", "insecure", insecure);
        Ok(Connection { inner: first(parsed(part)?.connections, "connection")? })
    }

    /// The id groups refer to.
    #[getter]
    fn id(&self) -> String {
        self.inner.id.clone()
    }

    /// The EWS URL (or a Graph connection's host, from a configuration file), when given.
    #[getter]
    fn url(&self) -> Option<String> {
        match &self.inner.endpoint {
            Endpoint::Url(u) | Endpoint::Graph(u) => Some(u.clone()),
            Endpoint::Autodiscover(_) => None,
        }
    }

    /// The Autodiscover address, when given.
    #[getter]
    fn autodiscover(&self) -> Option<String> {
        match &self.inner.endpoint {
            Endpoint::Autodiscover(a) => Some(a.clone()),
            Endpoint::Url(_) | Endpoint::Graph(_) => None,
        }
    }

    /// The authentication scheme: `basic`, `ntlm`, `oauth2` or `none`.
    #[getter]
    fn auth(&self) -> &'static str {
        self.inner.auth.scheme()
    }

    /// Whether members are reached through impersonation.
    #[getter]
    fn impersonation(&self) -> bool {
        self.inner.impersonation
    }

    fn __repr__(&self) -> String {
        format!("<Connection {} {:?} auth={}>", self.inner.id, self.inner.endpoint, self.inner.auth.scheme())
    }
}

/// A sync group: a hub (a public folder, or a folder of a mailbox) kept in sync with members.
///
/// Give `public_folder` (a `/`-separated path) or `hub_mailbox` (with `hub_folder`, default
/// `contacts`). `conflict_policy` is `"hub_wins"`, `"newest_wins"` or `"member_priority"` (with
/// `priority`, a list of member ids). `match_key` lists the canonical fields that match existing
/// copies at the initial sync (e.g. `["email1.address"]`); a member's item that matches but differs
/// stays the user's own unless `take_over_matches` is true.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Group {
    /// The Rust group.
    pub inner: GroupConfig,
}

#[pymethods]
impl Group {
    #[new]
    #[pyo3(signature = (id, connection, *, public_folder = None, hub_mailbox = None, hub_folder = None,
        members = Vec::new(), member_sources = Vec::new(), target = None, conflict_policy = "hub_wins", priority = None,
        match_key = Vec::new(), mass_delete_max_share = None, mass_delete_min_count = None, on_leave = "remove",
        take_over_matches = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: String,
        connection: String,
        public_folder: Option<String>,
        hub_mailbox: Option<String>,
        hub_folder: Option<&str>,
        members: Vec<Member>,
        member_sources: Vec<MemberSource>,
        target: Option<&str>,
        conflict_policy: &str,
        priority: Option<Vec<String>>,
        match_key: Vec<String>,
        mass_delete_max_share: Option<f64>,
        mass_delete_min_count: Option<usize>,
        on_leave: &str,
        take_over_matches: bool,
    ) -> PyResult<Self> {
        let mut part = Part::new(format!("group {id}"), "groups[0]");
        part.table("[groups]").set("id", "id", id).set("connection", "connection", connection);
        part.opt("target", "target", target).set("conflict_policy", "conflict_policy", conflict_policy);
        part.opt("priority", "priority", priority).set("match_key", "match_key", match_key);
        part.set("take_over_matches", "take_over_matches", take_over_matches).set("on_leave", "on_leave", on_leave);
        let public_folder = public_folder.map(|p| p.trim_matches('/').to_owned());
        part.table("groups.hub").opt("public_folder", "public_folder", public_folder);
        part.opt("hub_mailbox", "mailbox", hub_mailbox).opt("hub_folder", "folder", hub_folder);
        let guard = part.table("groups.mass_delete_guard");
        guard.opt("mass_delete_max_share", "max_share", mass_delete_max_share);
        guard.opt("mass_delete_min_count", "min_count", mass_delete_min_count.map(count));
        let mut inner = first(parsed(part)?.groups, "group")?;
        inner.members = members.into_iter().map(|m| m.inner).collect();
        inner.member_sources = member_sources.into_iter().map(|s| s.inner).collect();
        Ok(Group { inner })
    }

    /// The group's id.
    #[getter]
    fn id(&self) -> String {
        self.inner.id.clone()
    }

    /// The connection's id.
    #[getter]
    fn connection(&self) -> String {
        self.inner.connection.clone()
    }

    /// The hub, described (`public folder Company Contacts`, `shared@contoso.test/contacts`).
    #[getter]
    fn hub(&self) -> String {
        self.inner.hub.to_string()
    }

    /// The members listed one by one.
    #[getter]
    fn members(&self) -> Vec<Member> {
        self.inner.members.iter().cloned().map(|inner| Member { inner }).collect()
    }

    /// The default target folder of members, as written in files.
    #[getter]
    fn target(&self) -> String {
        self.inner.default_target.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<Group {} hub={} members={}>", self.inner.id, self.inner.hub, self.inner.members.len())
    }
}

/// How the service runs: where state is kept (`"memory"` or an SQLite file path), timings,
/// concurrency and retries. Keyword names are those of the `[service]` table of the TOML file.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct ServiceSettings {
    /// The Rust settings.
    pub inner: RustServiceSettings,
}

#[pymethods]
impl ServiceSettings {
    #[new]
    #[pyo3(signature = (*, state = None, debounce_ms = None, poll_interval_secs = None, resync_interval_secs = None,
        max_concurrent_groups = None, shutdown_grace_secs = None, retry_initial_delay_ms = None,
        retry_max_delay_ms = None, retry_max_attempts = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        state: Option<String>,
        debounce_ms: Option<u64>,
        poll_interval_secs: Option<f64>,
        resync_interval_secs: Option<f64>,
        max_concurrent_groups: Option<usize>,
        shutdown_grace_secs: Option<f64>,
        retry_initial_delay_ms: Option<u64>,
        retry_max_delay_ms: Option<u64>,
        retry_max_attempts: Option<u32>,
    ) -> PyResult<Self> {
        if state.as_deref().is_some_and(exchange_sync::config::is_postgres_url) {
            return Err(invalid(
                "service.state",
                "a PostgreSQL state (worker, lease, password source) is configured in a configuration file: \
                 Config.load(path) or Config.from_toml(text)",
            ));
        }
        let mut part = Part::new("service", "service");
        part.table("service").opt("state", "state", state).opt("debounce_ms", "debounce_ms", debounce_ms.map(count));
        part.opt("poll_interval_secs", "poll_interval_secs", poll_interval_secs.map(seconds));
        part.opt("resync_interval_secs", "resync_interval_secs", resync_interval_secs.map(seconds));
        part.opt("max_concurrent_groups", "max_concurrent_groups", max_concurrent_groups.map(count));
        part.opt("shutdown_grace_secs", "shutdown_grace_secs", shutdown_grace_secs.map(seconds));
        let retry = part.table("service.retry");
        retry.opt("retry_initial_delay_ms", "initial_delay_ms", retry_initial_delay_ms.map(count));
        retry.opt("retry_max_delay_ms", "max_delay_ms", retry_max_delay_ms.map(count));
        retry.opt("retry_max_attempts", "max_attempts", retry_max_attempts.map(count));
        let s = parsed(part)?.service;
        Ok(ServiceSettings { inner: s })
    }

    /// `"memory"`, the SQLite file's path, or the PostgreSQL URL (any password in it hidden).
    #[getter]
    fn state(&self) -> String {
        match &self.inner.state {
            StateLocation::Memory => "memory".into(),
            StateLocation::Sqlite(p) => p.display().to_string(),
            StateLocation::Postgres(pg) => pg.shown_url(),
        }
    }

    /// Debounce of change hints, in milliseconds.
    #[getter]
    fn debounce_ms(&self) -> u128 {
        self.inner.debounce.as_millis()
    }

    /// Polling interval of folders without change hints, in seconds.
    #[getter]
    fn poll_interval_secs(&self) -> f64 {
        self.inner.poll_interval.as_secs_f64()
    }

    /// Interval of the safety re-sync, in seconds.
    #[getter]
    fn resync_interval_secs(&self) -> f64 {
        self.inner.resync_interval.as_secs_f64()
    }

    /// How many groups sync at the same time.
    #[getter]
    fn max_concurrent_groups(&self) -> usize {
        self.inner.max_concurrent_groups
    }

    /// How many attempts a failing pass gets.
    #[getter]
    fn retry_max_attempts(&self) -> u32 {
        self.inner.retry.max_attempts
    }

    fn __repr__(&self) -> String {
        format!("<ServiceSettings {:?}>", self.inner)
    }
}

/// The whole configuration: service settings, connections and groups.
///
/// Build it in code (`Config(connections=[...], groups=[...], service=ServiceSettings(...))`) or
/// read a TOML file (`Config.load(path)`, `Config.from_toml(text)`); either way it is validated
/// at once, and an invalid configuration raises `ConfigError` with every finding.
#[pyclass(module = "exchange_sync", frozen)]
#[derive(Clone)]
pub struct Config {
    /// The Rust configuration.
    pub inner: RustConfig,
    warnings: Vec<exchange_sync_bindings::Diagnostic>,
}

impl Config {
    fn checked(checked: exchange_sync_bindings::Result<Checked>) -> PyResult<Self> {
        let Checked { config, warnings } = checked.map_err(to_pyerr)?;
        Ok(Config { inner: config, warnings })
    }
}

#[pymethods]
impl Config {
    #[new]
    #[pyo3(signature = (*, connections = Vec::new(), groups = Vec::new(), service = None))]
    fn new(connections: Vec<Connection>, groups: Vec<Group>, service: Option<ServiceSettings>) -> PyResult<Self> {
        Self::checked(Checked::validate(RustConfig {
            service: service.map(|s| s.inner).unwrap_or_default(),
            connections: connections.into_iter().map(|c| c.inner).collect(),
            groups: groups.into_iter().map(|g| g.inner).collect(),
        }))
    }

    /// Reads, parses and validates a TOML configuration file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Self::checked(Checked::load(&path))
    }

    /// Parses and validates a configuration from TOML text (`file` names it in findings).
    #[staticmethod]
    #[pyo3(signature = (text, file = None))]
    fn from_toml(text: &str, file: Option<PathBuf>) -> PyResult<Self> {
        Self::checked(Checked::from_toml(text, file.as_deref()))
    }

    /// The warnings validation found (inline secrets, TLS verification off, ...).
    #[getter]
    fn warnings(&self) -> Vec<Diagnostic> {
        self.warnings.iter().cloned().map(Diagnostic).collect()
    }

    /// The service settings.
    #[getter]
    fn service(&self) -> ServiceSettings {
        ServiceSettings { inner: self.inner.service.clone() }
    }

    /// The connections.
    #[getter]
    fn connections(&self) -> Vec<Connection> {
        self.inner.connections.iter().cloned().map(|inner| Connection { inner }).collect()
    }

    /// The groups.
    #[getter]
    fn groups(&self) -> Vec<Group> {
        self.inner.groups.iter().cloned().map(|inner| Group { inner }).collect()
    }

    /// A copy with other service settings (e.g. in-memory state for a test).
    fn with_service(&self, service: ServiceSettings) -> PyResult<Self> {
        Self::checked(Checked::validate(RustConfig { service: service.inner, ..self.inner.clone() }))
    }

    fn __repr__(&self) -> String {
        format!("<Config connections={} groups={}>", self.inner.connections.len(), self.inner.groups.len())
    }
}

/// Adds the configuration classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Filter>()?;
    m.add_class::<Modification>()?;
    m.add_class::<Member>()?;
    m.add_class::<MemberSource>()?;
    m.add_class::<Connection>()?;
    m.add_class::<Group>()?;
    m.add_class::<ServiceSettings>()?;
    m.add_class::<Config>()?;
    Ok(())
}
