//! The admin CLI `exchange-sync`: `check`, `plan`, `run`, `status`, `conflicts`.
//!
//! Exit codes scripts can rely on ([`ExitStatus`]):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | sync errors: a group failed, or some writes failed (they are retried by the next run) |
//! | 2 | the configuration is invalid (every finding printed with file, line and column) |
//! | 3 | the mass-delete guard stopped a group; confirm with `run --once --allow-mass-delete` |
//! | 4 | a server could not be reached or refused the credentials |
//! | 5 | the state store failed |

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use exchange_sync_core::ErrorKind;

use crate::config::{Config, GroupConfig, MemberConfig};
use crate::error::Error;
use crate::ews_folders::EwsFolders;
use crate::folders::FolderProvider;
use crate::progress_display::{self, TerminalProgress};
use crate::report::{PassOutcome, RunReport};
use crate::service::{RunOptions, SyncService};

/// The process exit status of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Ok = 0,
    /// 1: a group failed, or some writes failed.
    SyncErrors = 1,
    /// 2: the configuration is invalid.
    Config = 2,
    /// 3: the mass-delete guard stopped a group.
    MassDelete = 3,
    /// 4: a server could not be reached or refused the credentials.
    Connection = 4,
    /// 5: the state store failed.
    State = 5,
}

impl ExitStatus {
    /// The exit status for an error.
    pub fn of_error(error: &Error) -> Self {
        match error {
            Error::Config(_) | Error::UnknownGroup(_) => ExitStatus::Config,
            Error::Connect { .. } => ExitStatus::Connection,
            other => match other.kind() {
                ErrorKind::Config => ExitStatus::Config,
                ErrorKind::MassDelete => ExitStatus::MassDelete,
                ErrorKind::Auth | ErrorKind::Transient | ErrorKind::Throttled => ExitStatus::Connection,
                ErrorKind::State => ExitStatus::State,
                _ => ExitStatus::SyncErrors,
            },
        }
    }

    /// The exit status for a run's report.
    pub fn of_report(report: &RunReport) -> Self {
        if report.mass_delete_stopped() {
            ExitStatus::MassDelete
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
    /// Print reports as JSON (one document per line).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The CLI's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, test every connection, and show what would be synced.
    Check {
        /// Only validate the file; do not connect.
        #[arg(long)]
        offline: bool,
    },
    /// Dry run: show what one pass would write, writing nothing.
    Plan {
        /// Only these groups (default: all).
        #[arg(long = "group", short)]
        groups: Vec<String>,
    },
    /// Run the service (until Ctrl-C), or one pass with --once.
    Run {
        /// One pass of each group, then exit.
        #[arg(long)]
        once: bool,
        /// Only these groups (default: all).
        #[arg(long = "group", short)]
        groups: Vec<String>,
        /// Confirm deletions that the mass-delete guard stopped (with --once).
        #[arg(long, requires = "once")]
        allow_mass_delete: bool,
    },
    /// Per group and member: last sync, pending work, errors.
    Status,
    /// The conflict log: every field edited differently on several sides, and what was kept.
    Conflicts {
        /// Only this group.
        #[arg(long, short)]
        group: Option<String>,
    },
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("cannot write JSON: {e}"),
    }
}

/// Runs the CLI; answers the exit status.
pub async fn run(cli: Cli) -> ExitStatus {
    let loaded = match Config::load(&cli.config) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitStatus::Config;
        }
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let config = loaded.config;
    match execute(&cli, config).await {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::of_error(&e)
        }
    }
}

async fn execute(cli: &Cli, config: Config) -> Result<ExitStatus, Error> {
    if let Command::Check { offline: true } = cli.command {
        describe(&config, None).await;
        println!("configuration OK");
        return Ok(ExitStatus::Ok);
    }
    if let Command::Status = cli.command {
        // Status reads state only: no connection needed.
        let store = SyncService::open_store(&config).await?;
        let service = SyncService::new(config, Arc::new(Offline), store)?;
        return status(cli, &service).await;
    }
    if let Command::Conflicts { group } = &cli.command {
        let store = SyncService::open_store(&config).await?;
        let service = SyncService::new(config, Arc::new(Offline), store)?;
        let log = service.conflicts(group.as_deref()).await?;
        for entry in &log {
            if cli.json { print_json(entry) } else { println!("{entry}") }
        }
        if log.is_empty() && !cli.json {
            println!("no conflicts");
        }
        return Ok(ExitStatus::Ok);
    }

    if let Command::Check { .. } = cli.command {
        let quick = exchange_sync_ews::RetryPolicy {
            max_attempts: 2,
            base_delay: std::time::Duration::from_millis(200),
            max_delay: std::time::Duration::from_secs(2),
        };
        let folders = EwsFolders::connect_with_retries(&config, quick).await?;
        let mut status = ExitStatus::Ok;
        describe(&config, Some(&folders)).await;
        for group in &config.groups {
            match folders.check_connection(group).await {
                Ok(()) => println!("group {}: hub reachable", group.id),
                Err(e) => {
                    println!("group {}: {e}", group.id);
                    status = ExitStatus::Connection;
                }
            }
        }
        return Ok(status);
    }
    let folders = Arc::new(EwsFolders::connect(&config).await?);
    let store = SyncService::open_store(&config).await?;
    let service = SyncService::new(config, folders, store)?;
    match &cli.command {
        Command::Plan { groups } => {
            let report = service.plan(RunOptions { groups: groups.clone(), allow_mass_delete: false }).await?;
            for g in &report.groups {
                if cli.json {
                    print_json(g);
                } else {
                    println!("group {}:", g.group);
                    match &g.plan {
                        Some(text) => print!("{text}"),
                        None => g.errors.iter().for_each(|e| println!("! {}", e.message)),
                    }
                }
            }
            Ok(ExitStatus::of_report(&report))
        }
        Command::Run { once: true, groups, allow_mass_delete } => {
            let progress = spawn_progress(&service, cli.json);
            let report =
                service.run_once(RunOptions { groups: groups.clone(), allow_mass_delete: *allow_mass_delete }).await?;
            progress.abort();
            for g in &report.groups {
                if cli.json {
                    print_json(g)
                } else {
                    println!("{g}")
                }
                if !cli.json {
                    for e in g.errors.iter().chain(g.members.iter().flat_map(|m| m.errors.iter())) {
                        println!("  ! {}", e.message);
                    }
                }
            }
            Ok(ExitStatus::of_report(&report))
        }
        Command::Run { .. } => {
            let progress = spawn_progress(&service, cli.json);
            service
                .run_until(async {
                    stop_signal().await;
                    eprintln!("stopping: finishing passes in flight (Ctrl-C again to abandon them)");
                    // A second signal abandons them: safe, since every write is committed as it
                    // completes and creates are recorded ahead (the next start resumes).
                    tokio::spawn(async {
                        stop_signal().await;
                        eprintln!("abandoning passes in flight");
                        std::process::exit(130);
                    });
                })
                .await?;
            // The printer may not have seen the last events yet: say it here.
            progress.abort();
            eprintln!("stopped");
            let failed = service.status().await?.iter().any(|g| {
                g.last_report.as_ref().is_some_and(|r| !matches!(r.outcome, PassOutcome::Synced | PassOutcome::Planned))
            });
            Ok(if failed { ExitStatus::SyncErrors } else { ExitStatus::Ok })
        }
        Command::Check { .. } | Command::Status | Command::Conflicts { .. } => Ok(ExitStatus::Ok),
    }
}

async fn status(cli: &Cli, service: &SyncService) -> Result<ExitStatus, Error> {
    let groups = service.status().await?;
    let mut exit = ExitStatus::Ok;
    for g in &groups {
        if cli.json {
            print_json(g);
            continue;
        }
        println!(
            "group {}{}",
            g.group,
            if g.stopped_by_mass_delete_guard { " (stopped by the mass-delete guard)" } else { "" }
        );
        for m in &g.members {
            let last =
                m.last_sync.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            println!(
                "  {:<28} {:<8} {:>6} copies  last sync {last}{}{}",
                m.member,
                m.direction,
                m.copies,
                if m.initialized { "" } else { "  (initial sync pending)" },
                if m.pending_creates > 0 { format!("  {} creates pending", m.pending_creates) } else { String::new() },
            );
            if let Some(e) = &m.last_error {
                println!("      last error: {e}");
                exit = ExitStatus::SyncErrors;
            }
        }
    }
    Ok(exit)
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
/// when stderr is a terminal, plain lines otherwise.
fn spawn_progress(service: &SyncService, json: bool) -> tokio::task::JoinHandle<()> {
    use std::io::IsTerminal;
    let mut events = service.subscribe();
    let mut bars = (!json && std::io::stderr().is_terminal()).then(TerminalProgress::default);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if json {
                        if let Ok(text) = serde_json::to_string(&event) {
                            eprintln!("{text}");
                        }
                    } else if let Some(bars) = bars.as_mut() {
                        bars.show(&event);
                    } else if let Some(text) = progress_display::line(&event) {
                        eprintln!("{text}");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("({n} progress events skipped)"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// Prints what the configuration syncs (and, connected, who the distribution groups hold).
async fn describe(config: &Config, folders: Option<&EwsFolders>) {
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
