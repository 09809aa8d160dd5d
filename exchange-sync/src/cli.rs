//! The admin CLI `exchange-sync`: `check`, `plan`, `run`, `status`, `groups`, `show`,
//! `conflicts`, `confirm`, `resync`, `fields`.
//!
//! Exit codes scripts can rely on ([`ExitStatus`]), the same for every command:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | sync errors: a group failed, or some writes failed (they are retried by the next run); `status`: a group needs attention |
//! | 2 | the configuration (or a command's arguments: an unknown group or member, a bad log level) is invalid; every finding printed with file, line and column |
//! | 3 | the mass-delete guard stopped a group, or a folder is held because every copy vanished; confirm with `confirm --group G` |
//! | 4 | a server, a member's mailbox or the hub's folder could not be reached, or credentials or rights were refused |
//! | 5 | the state store failed (read-only, damaged, full), or another process holds it (one writer per state) |
//!
//! One writer per state (design rule 12): `run` (with or without `--once`) opens the state as its
//! only writer, and a second writer is refused at once (exit 5, naming the process that holds it).
//! `status`, `groups`, `show`, `conflicts`, `plan` and `check` only read it and work beside a
//! running service. `confirm` and `resync` post a request through the state, which the running
//! service carries out within seconds (or the next run, when none runs). Commands that never
//! connect (`check --offline`, `status`, `groups`, `show`, `conflicts`, `confirm`, `resync`,
//! `fields`) never read a secret.
//!
//! Output: reports on stdout, progress and logs on stderr. With `--json`, stdout holds JSON
//! documents only (one per line) and stderr JSON lines only (events, log records, warnings and
//! errors); colours only on a terminal, never with `NO_COLOR`. The log level comes from
//! `--log-level`, `EXCHANGE_SYNC_LOG`, `RUST_LOG` or `service.log.level` (see [`crate::logging`]).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use exchange_sync_core::state::AdminRequest;
use exchange_sync_core::{ErrorKind, MemberId};

use crate::config::{Config, ConfigError, Diagnostic, GroupConfig, MemberConfig, Secrets, StateLocation};
use crate::connection_folders::ConnectionFolders;
use crate::error::Error;
use crate::folders::FolderProvider;
use crate::hints::{self, HintContext};
use crate::progress_display::{self, TerminalProgress};
use crate::report::{ErrorReport, RunReport};
use crate::service::{RunOptions, SyncService};

/// The process exit status of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Ok = 0,
    /// 1: a group failed, or some writes failed.
    SyncErrors = 1,
    /// 2: the configuration (or an argument) is invalid.
    Config = 2,
    /// 3: the mass-delete guard stopped a group, or a folder is held because every copy vanished.
    MassDelete = 3,
    /// 4: a server, a member's mailbox or the hub's folder could not be reached, or credentials
    /// or rights were refused.
    Connection = 4,
    /// 5: the state store failed, or another process holds it.
    State = 5,
}

/// The exit status of an error kind.
fn of_kind(kind: ErrorKind) -> ExitStatus {
    match kind {
        ErrorKind::Config => ExitStatus::Config,
        ErrorKind::MassDelete => ExitStatus::MassDelete,
        ErrorKind::Auth | ErrorKind::Unreachable | ErrorKind::Transient | ErrorKind::Throttled => {
            ExitStatus::Connection
        }
        ErrorKind::State => ExitStatus::State,
        _ => ExitStatus::SyncErrors,
    }
}

impl ExitStatus {
    /// The exit status for an error.
    pub fn of_error(error: &Error) -> Self {
        match error {
            Error::Config(_) | Error::UnknownGroup(_) => ExitStatus::Config,
            Error::Connect { .. } | Error::MissingFolder { .. } => ExitStatus::Connection,
            other => of_kind(other.kind()),
        }
    }

    /// The exit status for a run's report: the guard first (an admin must act), then a failed
    /// state store, then a server, mailbox or hub folder that could not be reached (a pass that
    /// could not run, or a member left out for it), then any other failure.
    pub fn of_report(report: &RunReport) -> Self {
        if report.mass_delete_stopped() {
            return ExitStatus::MassDelete;
        }
        let kinds: Vec<&str> = report.errors().map(|(_, e)| e.kind.as_str()).collect();
        // A pass that could not run at all: why decides (the hub's server, the state, ...).
        let failed: Vec<&str> = report
            .groups
            .iter()
            .filter(|g| g.outcome == crate::report::PassOutcome::Failed)
            .flat_map(|g| g.errors.iter().map(|e| e.kind.as_str()))
            .collect();
        if kinds.contains(&"state") {
            ExitStatus::State
        } else if kinds.iter().any(|k| matches!(*k, "auth" | "unreachable"))
            || failed.iter().any(|k| matches!(*k, "transient" | "throttled" | "not_found"))
        {
            ExitStatus::Connection
        } else if failed.contains(&"config") {
            ExitStatus::Config
        } else if report.is_clean() {
            ExitStatus::Ok
        } else {
            ExitStatus::SyncErrors
        }
    }
}

/// Keeps Exchange folders in sync: a shared (public) folder and many users' mailbox folders.
#[derive(Debug, Parser)]
#[command(name = "exchange-sync", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short, env = "EXCHANGE_SYNC_CONFIG", default_value = "exchange-sync.toml", global = true)]
    pub config: PathBuf,
    /// JSON only: reports on stdout as one JSON document per line; events, logs, warnings and
    /// errors on stderr as JSON lines.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level or filter in RUST_LOG syntax (error, warn, info, debug, trace, or
    /// "exchange_sync=debug,warn"); default: warn on stderr, info in the log file.
    #[arg(long, env = "EXCHANGE_SYNC_LOG", global = true)]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The CLI's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, test every connection, and show what would be synced.
    Check {
        /// Only validate the file; do not connect (needs no secret).
        #[arg(long)]
        offline: bool,
    },
    /// Dry run: show what one pass would write, writing nothing.
    Plan {
        /// Only these groups (default: all).
        #[arg(long = "group", short)]
        groups: Vec<String>,
        /// Only what concerns this member (with one --group): writes to its folder, and the hub's
        /// writes its changes cause.
        #[arg(long, short, requires = "groups")]
        member: Option<String>,
    },
    /// Run the service (until Ctrl-C or SIGTERM), or one pass with --once. Holds the state as its
    /// only writer: a second `run` on the same state is refused.
    Run {
        /// One pass of each group, then exit.
        #[arg(long)]
        once: bool,
        /// Only these groups (default: all).
        #[arg(long = "group", short)]
        groups: Vec<String>,
        /// Confirm deletions that the mass-delete guard stopped (with --once, when no service
        /// runs; while one runs, use `confirm`).
        #[arg(long, requires = "once")]
        allow_mass_delete: bool,
    },
    /// Confirm the deletions the mass-delete guard stopped in a group (and folders held because
    /// every copy vanished): the running service carries them out within seconds; without a
    /// running service, the next run does.
    Confirm {
        /// The group.
        #[arg(long, short)]
        group: String,
    },
    /// Compare a group's folders (or one member's) completely at the next pass, keeping state:
    /// what an admin does after restoring a mailbox, or when a folder looks out of sync.
    Resync {
        /// The group.
        #[arg(long, short)]
        group: String,
        /// Only this member's folder (`hub` for the hub; default: every folder).
        #[arg(long, short)]
        member: Option<String>,
    },
    /// Per group and member (listed or from distribution groups): last sync, copies, problems,
    /// guard stops, pending confirmations, the last pass's errors.
    Status,
    /// The groups: hub, members, how the last pass ended.
    Groups,
    /// An item of the group: its copies in every folder, their versions, its conflicts. By entity
    /// id, or by a text its name or e-mail address contains.
    Show {
        /// Only this group (default: every group).
        #[arg(long, short)]
        group: Option<String>,
        /// The entity id, a name, or an e-mail address.
        query: String,
    },
    /// The conflict log: every field edited differently on several sides, and what was kept.
    Conflicts {
        /// Only this group.
        #[arg(long, short)]
        group: Option<String>,
    },
    /// The canonical field names filters, modifications and match keys use.
    Fields,
}

impl Command {
    /// Whether the command connects to a server (and needs the connections' secrets).
    fn connects(&self) -> bool {
        matches!(self, Command::Check { offline: false } | Command::Plan { .. } | Command::Run { .. })
    }
}

/// Where the CLI writes: plain text, or JSON only.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    /// A document on stdout (one JSON line with `--json`).
    fn doc<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string(value) {
            Ok(text) => println!("{text}"),
            Err(e) => self.error(&format!("cannot write JSON: {e}"), None, None),
        }
    }

    /// A line on stdout (nothing with `--json`: the documents say it).
    fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    /// A message on stderr: a plain line, or a JSON line with its level.
    fn message(&self, level: &str, text: &str, hint: Option<&str>, kind: Option<&str>) {
        if self.json {
            let value = serde_json::json!({ "level": level, "message": text, "hint": hint, "kind": kind });
            eprintln!("{value}");
        } else {
            eprintln!("{level}: {text}");
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
        }
    }

    fn error(&self, text: &str, hint: Option<&str>, kind: Option<&str>) {
        self.message("error", text, hint, kind);
    }

    fn warning(&self, diagnostic: &Diagnostic) {
        if self.json {
            eprintln!("{}", serde_json::json!({ "level": "warning", "message": diagnostic.to_string() }));
        } else {
            eprintln!("{diagnostic}");
        }
    }

    fn config_error(&self, error: &ConfigError) {
        if self.json {
            for d in &error.diagnostics {
                let level = match d.severity {
                    crate::config::Severity::Error => "error",
                    crate::config::Severity::Warning => "warning",
                };
                eprintln!("{}", serde_json::json!({ "level": level, "message": d.to_string(), "kind": "config" }));
            }
        } else {
            eprintln!("{error}");
        }
    }
}

/// The CLI's entry point: parses arguments, loads the configuration, installs the log, runs the
/// command; answers the process's exit code.
pub async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let status = run(cli).await;
    std::process::ExitCode::from(status as u8)
}

/// Runs the CLI; answers the exit status.
pub async fn run(cli: Cli) -> ExitStatus {
    let out = Out { json: cli.json };
    if let Command::Fields = cli.command {
        return fields(out);
    }
    let secrets = if cli.command.connects() { Secrets::Check } else { Secrets::Ignore };
    let loaded = match Config::load_with(&cli.config, secrets) {
        Ok(loaded) => loaded,
        Err(e) => {
            out.config_error(&e);
            return ExitStatus::Config;
        }
    };
    #[cfg(unix)]
    if let Command::Run { once: false, .. } = cli.command {
        // The service's files (state, lock, log files) are its own: no access for group and
        // others, whatever the umask it was started with.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    }
    let _log = match crate::logging::init(cli.log_level.as_deref(), &loaded.config.service.log, cli.json) {
        Ok(guard) => Some(guard),
        Err(message) if message.contains("cannot install the log") => None,
        Err(message) => {
            out.error(&message, None, Some("config"));
            return ExitStatus::Config;
        }
    };
    for warning in &loaded.warnings {
        out.warning(warning);
    }
    let config = loaded.config;
    match execute(&cli, out, config.clone()).await {
        Ok(status) => status,
        Err(e) => {
            if let Error::Config(c) = &e {
                out.config_error(c);
                return ExitStatus::Config;
            }
            let report = ErrorReport::from_service(&e);
            let ctx = HintContext { connection: connection_of(&e), ..HintContext::global(&config) };
            let hint = hints::hint_with_probe(&e, e.kind(), &ctx).await;
            out.error(&report.message, hint.as_deref(), Some(&report.kind));
            ExitStatus::of_error(&e)
        }
    }
}

fn connection_of(e: &Error) -> Option<&str> {
    match e {
        Error::Connect { connection, .. } => Some(connection),
        _ => None,
    }
}

/// A service over the state only (no connection, no secret): for commands that read or post.
async fn offline_service(config: Config) -> Result<SyncService, Error> {
    let store = SyncService::open_store_for_reading(&config).await?;
    SyncService::build(config, Arc::new(Offline), store, false)
}

async fn execute(cli: &Cli, out: Out, config: Config) -> Result<ExitStatus, Error> {
    match &cli.command {
        Command::Check { offline: true } => {
            if out.json {
                out.doc(&serde_json::json!({ "configuration": "ok", "groups": describe_json(&config) }));
            } else {
                describe(&config, None).await;
                println!("configuration OK");
            }
            Ok(ExitStatus::Ok)
        }
        Command::Check { offline: false } => check(out, config).await,
        Command::Status => status(out, &offline_service(config).await?).await,
        Command::Groups => groups(out, &offline_service(config).await?).await,
        Command::Show { group, query } => {
            let service = offline_service(config).await?;
            let found = service.lookup(group.as_deref(), query, 20).await?;
            if found.is_empty() {
                out.error(&format!("no item of the group's state matches {query:?}"), None, Some("not_found"));
                return Ok(ExitStatus::SyncErrors);
            }
            for view in &found {
                if out.json {
                    out.doc(view);
                } else {
                    println!("{view}\n");
                }
            }
            Ok(ExitStatus::Ok)
        }
        Command::Conflicts { group } => {
            let service = offline_service(config).await?;
            let log = service.conflicts(group.as_deref()).await?;
            for entry in &log {
                if out.json { out.doc(entry) } else { println!("{entry}") }
            }
            if log.is_empty() {
                out.line("no conflicts");
            }
            Ok(ExitStatus::Ok)
        }
        Command::Confirm { group } => post_request(out, config, group, AdminRequest::ConfirmDeletions).await,
        Command::Resync { group, member } => {
            let member = member.as_ref().map(|m| MemberId::new(crate::config::member_id(m)));
            post_request(out, config, group, AdminRequest::Resync { member }).await
        }
        Command::Plan { groups, member } => {
            // A dry run reads state beside a running service and writes nothing anywhere.
            let store = SyncService::open_store_for_reading(&config).await?;
            let folders = Arc::new(ConnectionFolders::connect(&config).await?);
            let service = SyncService::build(config, folders, store, false)?;
            let report = match member {
                Some(m) => {
                    let [group] = groups.as_slice() else {
                        return Err(Error::Config(ConfigError::single("", "--member needs exactly one --group", None)));
                    };
                    service.plan_member(group, m).await?
                }
                None => service.plan(RunOptions { groups: groups.clone(), allow_mass_delete: false }).await?,
            };
            for g in &report.groups {
                if out.json {
                    out.doc(g);
                    continue;
                }
                println!("group {}:", g.group);
                match &g.plan {
                    Some(text) => print!("{text}"),
                    None => {
                        if let Some(guard) = &g.guard {
                            println!("{guard}");
                        }
                        for e in g.all_errors() {
                            println!("! {}", e.with_hint());
                        }
                    }
                }
            }
            Ok(ExitStatus::of_report(&report))
        }
        Command::Run { once, groups, allow_mass_delete } => {
            // The state first: a second writer is refused before anything else happens.
            let store = match open_state(&config).await {
                Ok(store) => store,
                Err(e) => {
                    if e.kind() == ErrorKind::State && *allow_mass_delete {
                        let group = groups.first().or_else(|| config.groups.first().map(|g| &g.id));
                        out.message(
                            "hint",
                            &format!(
                                "while a service runs, confirm through it: exchange-sync confirm --group {}",
                                group.map_or("<group>", String::as_str)
                            ),
                            None,
                            None,
                        );
                    }
                    return Err(e);
                }
            };
            let folders = Arc::new(ConnectionFolders::connect(&config).await?);
            let http = config.service.http.clone();
            let service = SyncService::build(config, folders, store, false)?;
            if *once {
                run_once(out, &service, groups, *allow_mass_delete).await
            } else {
                run_service(out, &service, http).await
            }
        }
        Command::Fields => Ok(fields(out)),
    }
}

/// Opens the state as its writer; a new state file (and its directory) is created without access
/// for group and others.
async fn open_state(config: &Config) -> Result<Arc<dyn exchange_sync_core::StateStore>, Error> {
    if let StateLocation::Sqlite(path) = &config.service.state {
        tighten(path);
    }
    SyncService::open_store(config).await
}

/// Creates a missing state file's directory (0700) and the file itself (0600) before SQLite does,
/// so that its journal files inherit the mode; an existing file readable by others is made the
/// owner's.
fn tighten(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                    tracing::warn!(
                        "the state file {} is readable by others and cannot be restricted: {e}",
                        path.display()
                    );
                }
            }
            Ok(_) => {}
            Err(_) => {
                let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

async fn run_once(
    out: Out,
    service: &SyncService,
    groups: &[String],
    allow_mass_delete: bool,
) -> Result<ExitStatus, Error> {
    let progress = Progress::start(service, out.json);
    let report = service.run_once(RunOptions { groups: groups.to_vec(), allow_mass_delete }).await;
    progress.finish().await;
    let report = report?;
    for g in &report.groups {
        if out.json {
            out.doc(g);
            continue;
        }
        println!("{g}");
        if let Some(guard) = &g.guard {
            for line in guard.to_string().lines() {
                println!("  ! {line}");
            }
        }
        for notice in &g.notices {
            println!("  * {notice}");
        }
        for e in g.all_errors() {
            if g.guard.is_some() && e.kind == "mass_delete" {
                continue;
            }
            let item = e.item_name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default();
            println!("  ! {item}{}", e.with_hint());
        }
    }
    Ok(ExitStatus::of_report(&report))
}

/// The real-time service, until SIGTERM or Ctrl-C. A stop asked for this way ends with exit 0
/// once the passes in flight ended or were abandoned (safely: every write is committed as it
/// completes and creates are recorded ahead); how the passes went is in the log and `status`.
async fn run_service(
    out: Out,
    service: &SyncService,
    http: Option<crate::config::HttpSettings>,
) -> Result<ExitStatus, Error> {
    let progress = Progress::start(service, out.json);
    let server = match http {
        Some(settings) => {
            let token = match &settings.admin_token {
                Some(secret) => Some(secret.resolve().map_err(|m| {
                    Error::Config(ConfigError::single("service.http.admin_token", format!("secret missing: {m}"), None))
                })?),
                None => None,
            };
            let server = crate::http::serve(service.clone(), settings.listen, token).await.map_err(|e| {
                Error::Config(ConfigError::single(
                    "service.http.listen",
                    format!("cannot listen on {}: {e}", settings.listen),
                    None,
                ))
            })?;
            out.message(
                "info",
                &format!(
                    "status page on http://{0}/ (metrics: http://{0}/metrics, health: http://{0}/healthz)",
                    server.address
                ),
                None,
                None,
            );
            Some(server)
        }
        None => None,
    };
    service
        .run_until(async move {
            stop_signal().await;
            out.message("info", "stopping: finishing passes in flight (Ctrl-C again to abandon them)", None, None);
            // A second signal abandons them: safe, since every write is committed as it
            // completes and creates are recorded ahead (the next start resumes).
            tokio::spawn(async move {
                stop_signal().await;
                out.message("info", "abandoning passes in flight", None, None);
                std::process::exit(130);
            });
        })
        .await?;
    if let Some(server) = server {
        server.stop();
    }
    progress.finish().await;
    out.message("info", "stopped", None, None);
    Ok(ExitStatus::Ok)
}

/// `check`: opens every folder (the hub, each member with impersonation, distribution groups'
/// members), creating and writing nothing; reports each folder that cannot be reached by name
/// with what to do (exit 4), what the next run would do beyond syncing (folders to create,
/// re-homes), and what the server's version means (no streaming on Exchange 2007 SP1).
async fn check(out: Out, config: Config) -> Result<ExitStatus, Error> {
    let quick = exchange_sync_ews::RetryPolicy {
        max_attempts: 2,
        base_delay: std::time::Duration::from_millis(200),
        max_delay: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let folders = ConnectionFolders::connect_with_retries(&config, quick).await?;
    let mut exit = ExitStatus::Ok;
    let store = match SyncService::open_store_for_reading(&config).await {
        Ok(store) => store,
        Err(e) => {
            let ctx = HintContext::global(&config);
            out.error(&format!("state: {e}"), hints::hint(&e, e.kind(), &ctx).as_deref(), Some("state"));
            exit = ExitStatus::State;
            Arc::new(exchange_sync_core::state::memory::MemoryStore::new())
        }
    };
    if !out.json {
        describe(&config, Some(&folders)).await;
    }
    let service = SyncService::build(config.clone(), Arc::new(folders), store, false)?;
    for mut group in service.check().await {
        // The hub's credentials refused: ask the server what it offers (an NTLM-only server).
        if let (Some(gc), Some(hub)) = (config.group(&group.group), group.folders.first_mut())
            && let Some(problem) = &mut hub.problem
            && problem.kind == "auth"
        {
            let ctx = HintContext::group(&config, gc);
            let error = exchange_sync_core::Error::Auth { message: problem.message.clone(), context: Box::default() };
            problem.hint = hints::hint_with_probe(&error, ErrorKind::Auth, &ctx).await.or(problem.hint.take());
        }
        if out.json {
            out.doc(&group);
        } else {
            for f in &group.folders {
                let name = if f.member == crate::config::HUB_MEMBER_ID { "hub".to_owned() } else { f.member.clone() };
                match &f.problem {
                    None if f.member == crate::config::HUB_MEMBER_ID => {
                        println!("group {}: hub reachable ({})", group.group, f.folder)
                    }
                    None => println!("group {}: {name} reachable ({})", group.group, f.folder),
                    Some(p) => {
                        println!("group {}: {name} cannot be reached ({}): {}", group.group, f.folder, p.message);
                        if let Some(hint) = &p.hint {
                            println!("  hint: {hint}");
                        }
                    }
                }
                for note in &f.notes {
                    println!("  * {note}");
                }
            }
            for note in &group.notes {
                println!("group {}: note: {note}", group.group);
            }
            if let Some(e) = &group.state_error {
                println!("group {}: state: {e}", group.group);
            }
        }
        for worst in group.unreachable().map(check_exit) {
            exit = exit.max_by(worst);
        }
    }
    Ok(exit)
}

/// The exit status of a folder `check` cannot reach.
fn check_exit(f: &crate::status::FolderCheck) -> ExitStatus {
    match f.problem.as_ref().map(|p| p.kind.as_str()) {
        Some("state") => ExitStatus::State,
        Some("config") => ExitStatus::Config,
        _ => ExitStatus::Connection,
    }
}

impl ExitStatus {
    /// The more serious of two statuses (state above connection above the rest).
    fn max_by(self, other: ExitStatus) -> ExitStatus {
        let rank = |s: ExitStatus| match s {
            ExitStatus::Ok => 0,
            ExitStatus::SyncErrors => 1,
            ExitStatus::Connection => 2,
            ExitStatus::MassDelete => 3,
            ExitStatus::Config => 4,
            ExitStatus::State => 5,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// Posts an admin request through the state, for the running service (or the next run).
async fn post_request(out: Out, config: Config, group: &str, request: AdminRequest) -> Result<ExitStatus, Error> {
    if config.group(group).is_none() {
        return Err(Error::UnknownGroup(group.to_owned()));
    }
    if let StateLocation::Postgres(_) = &config.service.state {
        // A shared database: the request waits there for the worker that owns the group.
        let store = SyncService::open_store_for_reading(&config).await?;
        let owner =
            store.leases().await?.into_iter().find(|l| l.group.as_str() == group && !l.expired).map(|l| l.owner);
        let service = SyncService::build(config, Arc::new(Offline), store, false)?;
        let id = service.post_request(group, request).await?;
        let text = match &owner {
            Some(worker) => format!(
                "posted the request for group {group} (request {id}); worker {worker} owns the group and carries \
                 it out within a few seconds (see `exchange-sync status`)"
            ),
            None => format!(
                "posted the request for group {group} (request {id}); no worker owns the group now: the first \
                 worker to take it carries it out"
            ),
        };
        if out.json {
            out.doc(&serde_json::json!({
                "group": group, "request": id, "owner": owner, "service_running": owner.is_some(), "message": text
            }));
        } else {
            println!("{text}");
        }
        return Ok(ExitStatus::Ok);
    }
    let StateLocation::Sqlite(path) = config.service.state.clone() else {
        out.error(
            "state = \"memory\" keeps no state between processes: nothing can reach a running service; confirm with \
             `exchange-sync run --once --allow-mass-delete` instead",
            None,
            Some("config"),
        );
        return Ok(ExitStatus::Config);
    };
    use exchange_sync_core::state::sqlite::SqliteStore;
    // Posted through a reader: it works beside a running service (the state's writer). A state
    // that does not exist yet (or has an older schema, which readers do not migrate) is opened
    // as its writer, which no service holds then.
    let (store, writer): (Arc<dyn exchange_sync_core::StateStore>, bool) = match SqliteStore::open_reader(&path).await {
        Ok(reader) => (Arc::new(reader), false),
        Err(_) => {
            tighten(&path);
            (Arc::new(SqliteStore::open(&path).await?), true)
        }
    };
    let service = SyncService::build(config, Arc::new(Offline), Arc::clone(&store), false)?;
    let what = match &request {
        AdminRequest::ConfirmDeletions => "confirmation of the deletions".to_owned(),
        AdminRequest::Resync { member: Some(m) } => format!("resync of {m}"),
        AdminRequest::Resync { member: None } => "resync of every folder".to_owned(),
    };
    let id = service.post_request(group, request).await?;
    drop(service);
    drop(store);
    // Is a service holding the state? Only its writer lock says: try it, and let go at once.
    let running = if writer {
        None
    } else {
        match SqliteStore::open(&path).await {
            Ok(free) => {
                drop(free);
                None
            }
            Err(e) => Some(e.to_string()),
        }
    };
    let text = match &running {
        Some(holder) => format!(
            "posted the {what} for group {group} (request {id}); the running service carries it out within a few \
             seconds (see `exchange-sync status`). The state is held: {holder}"
        ),
        None => format!(
            "posted the {what} for group {group} (request {id}); no service is running: it applies at the next run \
             (`exchange-sync run --once`, or the service when it starts)"
        ),
    };
    if out.json {
        out.doc(&serde_json::json!({
            "group": group, "request": id, "posted": what, "service_running": running.is_some(), "message": text
        }));
    } else {
        println!("{text}");
    }
    Ok(ExitStatus::Ok)
}

async fn status(out: Out, service: &SyncService) -> Result<ExitStatus, Error> {
    let groups = service.status().await?;
    let mut exit = ExitStatus::Ok;
    for g in &groups {
        if g.stopped_by_mass_delete_guard {
            exit = exit.max_by(ExitStatus::MassDelete);
        } else if g.needs_attention() {
            exit = exit.max_by(ExitStatus::SyncErrors);
        }
        if out.json {
            out.doc(g);
            continue;
        }
        let last = match (&g.last_outcome, g.last_pass) {
            (Some(outcome), Some(at)) => {
                format!("last pass {} ({outcome:?})", at.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            _ => "no pass recorded yet".to_owned(),
        };
        println!(
            "group {}: {last}{}; {} conflicts recorded",
            g.group,
            if g.stopped_by_mass_delete_guard { "; STOPPED BY THE MASS-DELETE GUARD" } else { "" },
            g.conflicts
        );
        if let Some(lease) = &g.lease {
            let until = lease.expires_at.format("%Y-%m-%d %H:%M:%S UTC");
            if lease.expired {
                // Its worker died, stopped or gave it to a worker under its share: free until
                // another worker takes it.
                println!(
                    "  free: last owned by worker {} (lease ended {until}, fencing token {})",
                    lease.owner, lease.token
                );
            } else {
                println!("  owned by worker {} (lease until {until}, fencing token {})", lease.owner, lease.token);
            }
        }
        if let Some(guard) = &g.guard {
            for line in guard.to_string().lines() {
                println!("  ! {line}");
            }
        }
        for e in &g.last_errors {
            if g.guard.is_some() && e.kind == "mass_delete" {
                continue;
            }
            let who = e.member.as_ref().map(|m| format!("{m}: ")).unwrap_or_default();
            println!("  ! {who}{}", e.with_hint());
        }
        for m in &g.members {
            let last =
                m.last_sync.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            let direction = m.direction.replace('_', "-");
            let source =
                if m.source == "listed" || m.source == "hub" { String::new() } else { format!(" [{}]", m.source) };
            println!(
                "  {:<28} {:<8} {:>6} copies  last sync {last}{}{}{source}",
                m.member,
                direction,
                m.copies,
                if m.initialized || m.member == crate::config::HUB_MEMBER_ID { "" } else { "  (initial sync pending)" },
                if m.pending_creates > 0 { format!("  {} creates pending", m.pending_creates) } else { String::new() },
            );
            println!("      {}", m.folder);
            if let Some(e) = &m.last_error {
                println!("      {}: {e}", m.condition.replace('_', " "));
            }
        }
        for request in &g.pending_requests {
            println!("  pending admin request: {request}");
        }
    }
    Ok(exit)
}

async fn groups(out: Out, service: &SyncService) -> Result<ExitStatus, Error> {
    let statuses = service.status().await?;
    for (g, s) in service.config().groups.iter().zip(&statuses) {
        let members = s.members.iter().filter(|m| m.member != crate::config::HUB_MEMBER_ID).count();
        let from_dl = s.members.iter().filter(|m| m.source.starts_with("distribution group")).count();
        let outcome = s.last_outcome.map_or_else(|| "no pass yet".to_owned(), |o| format!("{o:?}"));
        if out.json {
            out.doc(&serde_json::json!({
                "group": g.id, "hub": g.hub.to_string(), "connection": g.connection, "members": members,
                "from_distribution_groups": from_dl, "last_outcome": s.last_outcome, "last_pass": s.last_pass,
                "stopped_by_mass_delete_guard": s.stopped_by_mass_delete_guard, "conflicts": s.conflicts,
                "pending_requests": s.pending_requests,
            }));
        } else {
            println!(
                "{:<24} hub {}  {members} members ({from_dl} from distribution groups)  last pass: {outcome}{}",
                g.id,
                g.hub,
                if s.stopped_by_mass_delete_guard { "  STOPPED BY THE GUARD" } else { "" }
            );
        }
    }
    Ok(ExitStatus::Ok)
}

fn fields(out: Out) -> ExitStatus {
    let names = crate::config::known_fields();
    if out.json {
        out.doc(&names);
    } else {
        for n in names {
            println!("{n}");
        }
        println!("body  (filters only: the item's notes)");
    }
    ExitStatus::Ok
}

/// Completes on Ctrl-C, or on SIGTERM (how service managers stop a service) on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Shows progress events on stderr while a command runs: JSON lines with `--json`, progress bars
/// when stderr is a terminal, plain lines otherwise. [`Progress::finish`] prints every event
/// sent before it was called, so the last one is never lost.
struct Progress {
    task: tokio::task::JoinHandle<()>,
    done: tokio::sync::oneshot::Sender<()>,
}

impl Progress {
    fn start(service: &SyncService, json: bool) -> Self {
        use std::io::IsTerminal;
        let mut events = service.subscribe();
        let mut bars = (!json && std::io::stderr().is_terminal()).then(TerminalProgress::default);
        let (done, mut finish) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut show = |event: &crate::event::ProgressEvent| {
                if json {
                    if let Ok(text) = serde_json::to_string(event) {
                        eprintln!("{text}");
                    }
                } else if let Some(bars) = bars.as_mut() {
                    bars.show(event);
                } else if let Some(text) = progress_display::line(event) {
                    eprintln!("{text}");
                }
            };
            loop {
                tokio::select! {
                    biased;
                    received = events.recv() => match received {
                        Ok(event) => show(&event),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            if json {
                                eprintln!("{}", serde_json::json!({ "event": "events_skipped", "count": n }));
                            } else {
                                eprintln!("({n} progress events skipped)");
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = &mut finish => break,
                }
            }
            // Everything sent before `finish` was asked for.
            while let Ok(event) = events.try_recv() {
                show(&event);
            }
        });
        Progress { task, done }
    }

    /// Prints the events still queued, then stops.
    async fn finish(self) {
        let _ = self.done.send(());
        let _ = self.task.await;
    }
}

/// What `check --offline --json` says about each group.
fn describe_json(config: &Config) -> Vec<serde_json::Value> {
    config
        .groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "group": g.id,
                "connection": g.connection,
                "hub": g.hub.to_string(),
                "members": g.members.iter().map(|m| serde_json::json!({
                    "member": m.id,
                    "connection": g.member_connection(m),
                    "direction": if m.direction.is_two_way() { "two_way" } else { "one_way" },
                    "folder": g.folder_path_of(m),
                    "filtered": m.filter.is_some(),
                    "modifications": m.modifications.len(),
                })).collect::<Vec<_>>(),
                "distribution_groups": g.member_sources.iter().map(|s| s.distribution_group.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Prints what the configuration syncs (and, connected, who the distribution groups hold).
async fn describe(config: &Config, folders: Option<&ConnectionFolders>) {
    for group in &config.groups {
        println!("group {} on connection {}: hub {}", group.id, group.connection, group.hub);
        for m in &group.members {
            println!("  member {}", member_line(group, m));
        }
        for source in &group.member_sources {
            let template = &source.template;
            let direction = if template.direction.is_two_way() { "two-way" } else { "one-way" };
            match folders {
                Some(f) => match f.expand_distribution_group(group, &source.distribution_group).await {
                    Ok(members) => println!(
                        "  distribution group {} ({direction}): {} members: {}",
                        source.distribution_group,
                        members.len(),
                        members.join(", ")
                    ),
                    Err(e) => println!("  distribution group {}: {e}", source.distribution_group),
                },
                None => println!("  distribution group {} ({direction})", source.distribution_group),
            }
        }
    }
}

fn member_line(group: &GroupConfig, m: &MemberConfig) -> String {
    let direction = if m.direction.is_two_way() { "two-way" } else { "one-way" };
    let mut line = format!("{} ({direction}) into {}", m.id, group.target_of(m));
    if let Some(connection) = &m.connection {
        line.push_str(&format!(" on connection {connection}"));
    }
    if m.filter.is_some() {
        line.push_str(", filtered");
    }
    if !m.modifications.is_empty() {
        line.push_str(&format!(", {} modifications", m.modifications.len()));
    }
    line
}

/// A provider for commands that read state only.
struct Offline;

#[async_trait::async_trait]
impl FolderProvider for Offline {
    async fn hub(&self, group: &GroupConfig) -> crate::Result<Arc<dyn exchange_sync_core::Connector>> {
        Err(Error::Connect { connection: group.connection.clone(), message: "offline".into(), retryable: false })
    }

    async fn member(
        &self,
        group: &GroupConfig,
        _member: &MemberConfig,
        _target: &crate::config::TargetFolder,
    ) -> crate::Result<Arc<dyn exchange_sync_core::Connector>> {
        self.hub(group).await
    }

    async fn expand_distribution_group(&self, group: &GroupConfig, _address: &str) -> crate::Result<Vec<String>> {
        self.hub(group).await.map(|_| Vec::new())
    }
}
