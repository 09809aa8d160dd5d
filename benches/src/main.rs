//! `exchange-sync-bench`: the benchmark suite of exchange-sync, on the EWS emulator over
//! loopback HTTP, every benchmark in a child process of its own (so peak memory and CPU time
//! belong to that benchmark alone), results side by side in one table.
//!
//! ```text
//! exchange-sync-bench --quick               # seconds: proves every benchmark still runs (CI)
//! exchange-sync-bench --out results.md      # the full suite, the numbers of docs/benchmarks.md
//! exchange-sync-bench --only "6." --idle-secs 2400   # the long idle run (40 minutes)
//! ```
//!
//! The quick mode asserts nothing about timings; a benchmark that fails to run fails the suite.
//! With `RUST_LOG` set (e.g. `exchange_sync_core=debug`), a run logs its phases to stderr, with
//! the time since the process started.

mod exchangelib;
mod fanout;
mod faults;
mod graph;
mod hints;
mod idle;
mod latency;
mod measurement;
mod placement;
mod raw;
mod resources;
mod state_size;
mod suite;
mod synthetic_folder;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The allocator the service binary ships with (see `exchange-sync`'s binary), so that the
/// engine is measured as admins run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exchange-sync benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "exchange-sync-bench")]
struct Args {
    /// Small sizes: checks that every benchmark runs, in seconds.
    #[arg(long)]
    quick: bool,
    /// Writes the results table (Markdown) to this file too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The Python interpreter with exchangelib (default: target/venv/bin/python of the workspace).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Contacts of the headline fan-out (full mode; 10,000 by default).
    #[arg(long, default_value_t = 10_000)]
    contacts: usize,
    /// Idle time of row 6 (Exchange's own streaming timings) in full mode, seconds. Longer than
    /// a connection's 30-minute lifetime (e.g. 2400), it shows every connection live its full
    /// lifetime and be renewed without a resync: the long idle run of docs/benchmarks.md.
    #[arg(long, default_value_t = 150)]
    idle_secs: u64,
    /// Replicas in the members of the state-size benchmark (row 9): mailboxes of 5,000 contacts,
    /// rounded down (the issue's size: 15,000,000, 3,000 mailboxes; generating it takes long).
    #[arg(long, default_value_t = 1_500_000)]
    replicas: usize,
    /// Runs only the benchmarks whose name contains one of these words.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Runs the emulator on a core of its own, the engine or load driver on the others (as
    /// against a server on its own hardware); see `placement`.
    #[arg(long, global = true)]
    split_cores: bool,
    #[command(subcommand)]
    case: Option<Case>,
}

/// One benchmark, as the suite runs it in a child process.
#[derive(Debug, Subcommand)]
enum Case {
    /// Initial fan-out, then (with --incremental) 1% changed.
    Fanout {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        mailboxes: usize,
        #[arg(long)]
        incremental: bool,
        /// The state in this PostgreSQL database (a fresh schema) instead of an SQLite file.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A large state generated into the store, then an incremental pass with 1% changed.
    StateSize {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        mailboxes: usize,
        /// The state in this PostgreSQL database (a fresh schema) instead of an SQLite file.
        #[arg(long)]
        postgres: Option<String>,
        /// Incremental passes on the generated state, each after another 1% of the contacts
        /// changed, each its own row: a steadier figure on a noisy machine than one pass.
        #[arg(long, default_value_t = 1)]
        passes: usize,
    },
    /// The raw load driver.
    Raw {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        mailboxes: usize,
    },
    /// exchangelib.
    Exchangelib {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        mailboxes: usize,
        #[arg(long)]
        python: PathBuf,
        #[arg(long)]
        script: PathBuf,
    },
    /// Real-time latency.
    Latency {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        others: usize,
        #[arg(long)]
        samples: usize,
    },
    /// Idle cost: streaming connections kept alive, renewed, or cut once.
    Idle {
        #[arg(long)]
        name: String,
        #[arg(long)]
        groups: usize,
        #[arg(long)]
        seconds: u64,
        /// The server's ConnectionTimeout minute in milliseconds (60000: Exchange's own).
        #[arg(long, default_value_t = 60_000)]
        minute_ms: u64,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        heartbeat_ms: u64,
        /// Cuts every streaming connection this long after the idle time starts.
        #[arg(long)]
        cut_at_ms: Option<u64>,
    },
    /// The fan-out over Microsoft Graph (`--hybrid`: the hub an EWS public folder).
    Graph {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        mailboxes: usize,
        #[arg(long)]
        hybrid: bool,
    },
    /// One member's mailbox failing in turn (throttled, removed, denied) during incremental passes.
    Faults {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        members: usize,
        /// The back-off of the ErrorServerBusy faults, in milliseconds.
        #[arg(long)]
        back_off_ms: u64,
        /// The Retry-After of the HTTP 503, in seconds.
        #[arg(long)]
        retry_after_secs: u64,
        /// The client's max_inline_wait, in milliseconds.
        #[arg(long)]
        max_inline_wait_ms: u64,
        /// The service's longest delay before it tries a partly failed pass again, in milliseconds.
        #[arg(long)]
        pass_retry_max_ms: Option<u64>,
        /// How long without a progress event counts as settled, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        quiet_ms: u64,
    },
}

fn run_case(case: Case) -> Result<Vec<measurement::Measurement>, Box<dyn std::error::Error>> {
    Ok(match case {
        Case::Fanout { name, contacts, mailboxes, incremental, postgres } => {
            fanout::run(&name, contacts, mailboxes, incremental, postgres.as_deref())?
        }
        Case::Graph { name, contacts, mailboxes, hybrid } => {
            let shape = if hybrid { graph::Shape::Hybrid } else { graph::Shape::Graph };
            graph::run(&name, shape, contacts, mailboxes)?
        }
        Case::StateSize { name, contacts, mailboxes, postgres, passes } => {
            state_size::run(&name, mailboxes, contacts, postgres.as_deref(), passes)?
        }
        Case::Raw { name, contacts, mailboxes } => vec![raw::run(&name, contacts, mailboxes)?],
        Case::Exchangelib { name, contacts, mailboxes, python, script } => {
            vec![exchangelib::run(&name, &python, &script, contacts, mailboxes)?]
        }
        Case::Latency { name, contacts, others, samples } => vec![latency::run(&name, contacts, others, samples)?],
        Case::Idle { name, groups, seconds, minute_ms, heartbeat_ms, cut_at_ms } => {
            let o = idle::Idle {
                groups,
                idle: Duration::from_secs(seconds),
                minute: Duration::from_millis(minute_ms),
                heartbeat: Duration::from_millis(heartbeat_ms),
                cut_at: cut_at_ms.map(Duration::from_millis),
            };
            vec![idle::run(&name, &o)?]
        }
        Case::Faults {
            name,
            contacts,
            members,
            back_off_ms,
            retry_after_secs,
            max_inline_wait_ms,
            pass_retry_max_ms,
            quiet_ms,
        } => {
            let f = faults::Faults {
                contacts,
                members,
                long_back_off: Duration::from_millis(back_off_ms),
                retry_after: Duration::from_secs(retry_after_secs),
                max_inline_wait: Duration::from_millis(max_inline_wait_ms),
                pass_retry_max: pass_retry_max_ms.map(Duration::from_millis),
                quiet: Duration::from_millis(quiet_ms),
            };
            faults::run(&name, &f)?
        }
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    // `RUST_LOG=exchange_sync_core=debug` shows a run's phases with their times (observation,
    // planning, each folder done): where a benchmark's time goes, without a profiler.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .init();
    }
    if args.split_cores {
        placement::split_cores();
    }
    if let Some(case) = args.case {
        return match run_case(case) {
            Ok(results) => {
                results.iter().for_each(measurement::Measurement::emit);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("benchmark failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let settings = suite::Settings {
        quick: args.quick,
        contacts: args.contacts,
        python: args.python.unwrap_or_else(|| workspace.join("target/venv/bin/python")),
        script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("exchangelib_copy.py"),
        only: args.only,
        idle_secs: args.idle_secs,
        replicas: args.replicas,
    };
    match suite::run(&settings, args.out.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
