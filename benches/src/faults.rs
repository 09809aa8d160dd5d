//! Benchmark 8: faults. The same incremental pass (a public-folder hub and N one-way members, 1%
//! of the hub's contacts changed, the service running with streaming notifications) once clean
//! and then with one member's mailbox failing: HTTP 503 with `Retry-After`, ErrorServerBusy with
//! a back-off longer than the client waits inside a call (as a SOAP fault and in a response
//! message), the member's folder removed, the mailbox removed, impersonation denied. Every
//! member syncs into a folder of its own below Contacts (as admins configure a company folder),
//! so that its user can delete it.
//!
//! Per fault it reports what design rule 13 (docs/design.md) promises, from the server's side (the emulator's
//! record of every back-off it asked for and of every request, see `ews_emulator::ledger`):
//!
//! - how often a failed request was sent (the same request body to the same mailbox in the
//!   pass): at most the client's own attempts ([`RetryPolicy::max_attempts`]) for throttling, once
//!   for a refusal that cannot pass (a folder, a mailbox or a right that is not there);
//! - requests that arrived for a mailbox inside a back-off the server had asked of it: none;
//! - the other members synced in the pass that met the fault, and what the pass said of the
//!   failing one (waited, parked until, left out);
//! - the wall time of that pass and of the whole run until every member holds the change (the
//!   service schedules the pass after a back-off, or tries a member left out again).
//!
//! The failing member is not the first mailbox: that one anchors the members' shared streaming
//! connection, whose renewals would meet the fault first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ews_emulator::xml::Element;
use ews_emulator::{BackOffAnswer, MailboxAccess, MailboxThrottle};
use exchange_sync::config::{GroupConfig, TargetFolder, WellKnownFolder};
use exchange_sync::{EwsFolders, GroupReport, PassOutcome, ProgressEvent, SyncService};
use exchange_sync_core::state::sqlite::SqliteStore;
use exchange_sync_ews::RetryPolicy;
use tokio::sync::broadcast;

use crate::measurement::{Check, Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// How the fault benchmark runs.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Contacts in the public folder.
    pub contacts: usize,
    /// Members of the group (one-way readers).
    pub members: usize,
    /// The back-off of the ErrorServerBusy faults (longer than `max_inline_wait`: parked).
    pub long_back_off: Duration,
    /// The `Retry-After` of the 503 (whole seconds; up to `max_inline_wait`: waited in the call).
    pub retry_after: Duration,
    /// The client's [`RetryPolicy::max_inline_wait`].
    pub max_inline_wait: Duration,
    /// The service's longest delay before it tries a pass that partly failed again (`None`: the
    /// default, 60 s).
    pub pass_retry_max: Option<Duration>,
    /// How long no progress event must arrive before the group counts as settled (the passes
    /// that echo a pass's own writes come a debounce delay after it).
    pub quiet: Duration,
}

/// One fault of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Clean,
    RetryAfter,
    BusyFault,
    BusyInMessage,
    FolderRemoved,
    NoMailbox,
    ImpersonationDenied,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::Clean,
    Scenario::RetryAfter,
    Scenario::BusyFault,
    Scenario::BusyInMessage,
    Scenario::FolderRemoved,
    Scenario::NoMailbox,
    Scenario::ImpersonationDenied,
];

impl Scenario {
    fn label(self, f: &Faults) -> String {
        match self {
            Scenario::Clean => "none".into(),
            Scenario::RetryAfter => format!("HTTP 503, Retry-After {} s", f.retry_after.as_secs()),
            Scenario::BusyFault => format!("ErrorServerBusy fault, back-off {} s", f.long_back_off.as_secs_f64()),
            Scenario::BusyInMessage => {
                format!("ErrorServerBusy in a message, back-off {} s", f.long_back_off.as_secs_f64())
            }
            Scenario::FolderRemoved => "the member's folder removed (ErrorFolderNotFound)".into(),
            Scenario::NoMailbox => "mailbox removed (ErrorNonExistentMailbox)".into(),
            Scenario::ImpersonationDenied => "impersonation denied (ErrorImpersonateUserDenied)".into(),
        }
    }

    fn throttling(self) -> bool {
        matches!(self, Scenario::RetryAfter | Scenario::BusyFault | Scenario::BusyInMessage)
    }

    /// Whether the member stays unreachable until an admin repairs its mailbox.
    fn unreachable(self) -> bool {
        matches!(self, Scenario::NoMailbox | Scenario::ImpersonationDenied)
    }

    /// Whether the client waits the back-off inside the pass (and so the member syncs in it).
    fn waited_inline(self, f: &Faults) -> bool {
        self == Scenario::RetryAfter && f.retry_after <= f.max_inline_wait
    }
}

/// Waits until no progress event arrives for `quiet` (passes that echo a pass's own writes
/// included), at most `limit`; answers how many passes finished meanwhile.
async fn settle(events: &mut broadcast::Receiver<ProgressEvent>, quiet: Duration, limit: Duration) -> usize {
    let end = Instant::now() + limit;
    let mut passes = 0;
    while Instant::now() < end {
        match tokio::time::timeout(quiet, events.recv()).await {
            Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => break,
            Ok(Ok(ProgressEvent::PassFinished { .. })) => passes += 1,
            Ok(_) => {}
        }
    }
    passes
}

/// The next finished pass's report, with when it ended.
async fn next_report(
    events: &mut broadcast::Receiver<ProgressEvent>,
    deadline: Instant,
) -> Result<(GroupReport, Instant), BoxError> {
    next_pass(events, deadline, false).await
}

/// The report of the next pass that starts from now on (not of one already running), or with
/// `started`, of the next pass that finishes; with when it ended.
async fn next_pass(
    events: &mut broadcast::Receiver<ProgressEvent>,
    deadline: Instant,
    mut started: bool,
) -> Result<(GroupReport, Instant), BoxError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Err(_) => return Err("no pass finished in time".into()),
            Ok(Ok(ProgressEvent::PassStarted { .. })) => started = true,
            Ok(Ok(ProgressEvent::PassFinished { report })) if started => return Ok((report, Instant::now())),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

/// The folder every member syncs into (created by the service when missing), as configured.
const MEMBER_FOLDER: &str = "Company Contacts";

/// The same folder as the emulator's store finds it (below the mailbox's root).
const MEMBER_FOLDER_PATH: &str = "Contacts/Company Contacts";

/// How many copies in `mailbox`'s group folder hold `value` as their job title.
fn holding(tenant: &Tenant, mailbox: &str, value: &str) -> usize {
    let store = tenant.emulator.store();
    let Some(index) = store.mailbox_index(mailbox) else { return 0 };
    store
        .read(index, |mb| {
            let Some(folder) = mb.folder_by_path(MEMBER_FOLDER_PATH).and_then(|f| mb.folders.get(&f)) else {
                return 0;
            };
            folder
                .items
                .iter()
                .filter_map(|n| mb.items.get(n))
                .filter(|item| item.field("JobTitle").is_some_and(|e| e.text == value))
                .count()
        })
        .unwrap_or(0)
}

/// `group` with every member's copies in a folder of its own below Contacts.
fn member_folders(mut group: GroupConfig) -> GroupConfig {
    group.members = group
        .members
        .into_iter()
        .map(|m| m.with_target(TargetFolder::Named { parent: WellKnownFolder::Contacts, name: MEMBER_FOLDER.into() }))
        .collect();
    group
}

/// What the pass said of the failing member, in words.
fn member_outcome(report: &GroupReport, member: &str, changed: usize) -> String {
    let Some(m) = report.members.iter().find(|m| m.member == member) else {
        return "nothing to say (not in the report)".into();
    };
    if let Some(until) = m.parked_until {
        let parked = (until - report.started_at).num_milliseconds() as f64 / 1000.0;
        return format!("parked until {parked:.1} s after the pass started");
    }
    if let Some(reason) = &m.left_out {
        let code = m.errors.iter().find_map(|e| {
            e.message.split([' ', ':']).find(|w| w.starts_with("Error")).map(|c| format!("{}, {c}", e.kind))
        });
        return format!("left out ({})", code.unwrap_or_else(|| reason.clone()));
    }
    if m.updated == changed {
        return format!("synced ({} updated)", m.updated);
    }
    format!("{} updated, {} errors", m.updated, m.errors.len())
}

/// Runs every fault in turn; one row each.
pub fn run(name: &str, f: &Faults) -> Result<Vec<Measurement>, BoxError> {
    let tenant = Tenant::start_with(f.members, f.contacts, |c| c.request_log = 200_000)?;
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        // The service's default debounce, as admins run it.
        let mut config = tenant::config(
            &tenant.url(),
            vec![member_folders(tenant::reader_group("faults", 0, f.members))],
            Duration::from_millis(200),
        );
        if let Some(d) = f.pass_retry_max {
            config.service.retry.max_delay = d;
            config.service.retry.initial_delay = config.service.retry.initial_delay.min(d);
        }
        let policy = RetryPolicy { max_inline_wait: f.max_inline_wait, ..RetryPolicy::default() };
        let attempts = u64::from(policy.max_attempts);
        let folders = Arc::new(EwsFolders::connect_with_retries(&config, policy).await?);
        let store = Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?);
        let service = SyncService::new(config, folders, store)?;
        let mut events = service.subscribe();
        let running = tokio::spawn({
            let service = service.clone();
            async move { service.run().await }
        });
        let (first, _) = next_report(&mut events, Instant::now() + Duration::from_secs(600)).await?;
        let quiet = f.quiet;
        if first.outcome != PassOutcome::Synced {
            return Err(format!("the initial sync failed: {first}").into());
        }
        let hub_address = ews_emulator::store::public_folder_mailbox("contoso.test");
        let ids: Vec<String> = tenant
            .emulator
            .store()
            .items_in(&hub_address, tenant::PUBLIC_FOLDER)
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.id)
            .collect();
        let changed = (f.contacts / 100).max(1);
        let step = (ids.len() / changed).max(1);
        let targets: Vec<&String> = ids.iter().step_by(step).take(changed).collect();
        let faulty = tenant::mailbox(f.members / 2);
        let others: Vec<String> = (0..f.members).map(tenant::mailbox).filter(|m| *m != faulty).collect();
        let size = format!("{changed} changed, {} contacts x {} members", f.contacts, f.members);
        let mut rows = Vec::new();

        settle(&mut events, quiet, Duration::from_secs(120)).await;
        for (round, scenario) in SCENARIOS.into_iter().enumerate() {
            let label = scenario.label(f);
            let value = format!("Fault benchmark, round {round}: {label}");
            let meter = Meter::start(&tenant);
            let before = meter.stats();
            match scenario {
                Scenario::Clean => {}
                Scenario::RetryAfter => tenant.emulator.throttle_mailbox(
                    &faulty,
                    MailboxThrottle { answer: BackOffAnswer::ServiceUnavailable, back_off: f.retry_after },
                ),
                Scenario::BusyFault => tenant.emulator.throttle_mailbox(
                    &faulty,
                    MailboxThrottle { answer: BackOffAnswer::ServerBusy, back_off: f.long_back_off },
                ),
                Scenario::BusyInMessage => tenant.emulator.throttle_mailbox(
                    &faulty,
                    MailboxThrottle { answer: BackOffAnswer::ServerBusyInMessage, back_off: f.long_back_off },
                ),
                Scenario::FolderRemoved => tenant
                    .emulator
                    .store()
                    .delete_folder(&faulty, MEMBER_FOLDER_PATH)
                    .map_err(|e| format!("cannot delete {faulty}'s folder: {e:?}"))?,
                Scenario::NoMailbox => tenant.emulator.set_mailbox_access(&faulty, MailboxAccess::NoMailbox),
                Scenario::ImpersonationDenied => {
                    tenant.emulator.set_mailbox_access(&faulty, MailboxAccess::ImpersonationDenied)
                }
            }
            let edited = Instant::now();
            for id in &targets {
                tenant
                    .emulator
                    .store()
                    .edit_item(id, |item| item.set_field(Element::t_text("JobTitle", &value)))
                    .map_err(|e| format!("cannot edit a hub contact: {e:?}"))?;
            }
            let deadline = edited + f.long_back_off + Duration::from_secs(180);
            let (report, pass_end) = next_pass(&mut events, deadline, false).await?;
            let mut repaired = None;
            let mut passes = 1;
            if scenario.unreachable() {
                // Once the passes that echo this one's writes are over (they leave the member out
                // too), the admin repairs the mailbox; the service tries it again by itself.
                passes += settle(&mut events, quiet, Duration::from_secs(60)).await;
                tenant.emulator.set_mailbox_access(&faulty, MailboxAccess::Granted);
                repaired = Some(edited.elapsed());
            }
            let mut updated = report.totals().updated;
            let clean_at = loop {
                if std::iter::once(&faulty).chain(&others).all(|m| holding(&tenant, m, &value) == changed) {
                    break Some(Instant::now());
                }
                match next_report(&mut events, deadline).await {
                    Ok((later, _)) => {
                        passes += 1;
                        updated += later.totals().updated;
                    }
                    Err(_) => break None,
                }
            };
            let clean = clean_at.map_or(Duration::MAX, |t| t - edited);
            passes += settle(&mut events, quiet, Duration::from_secs(60)).await;
            let mut m = meter.finish(&tenant, &format!("{name}: {label}"), size.clone(), updated as u64);
            let stats = tenant.stats();
            m.seconds = clean.as_secs_f64();

            // From the server's record: the requests of the pass that met the fault, and every
            // request of the run that came inside a back-off.
            let log: Vec<_> = tenant.emulator.request_log().into_iter().filter(|r| r.at >= edited).collect();
            let in_pass: Vec<_> = log.iter().filter(|r| r.at <= pass_end).collect();
            let failed: Vec<u64> = in_pass
                .iter()
                .filter(|r| r.mailbox == faulty && (r.back_off.is_some() || r.code.starts_with("Error")))
                .map(|r| r.fingerprint)
                .collect();
            let mut sends: HashMap<u64, u64> = failed.iter().map(|f| (*f, 0)).collect();
            for r in &in_pass {
                if let Some(n) = sends.get_mut(&r.fingerprint) {
                    *n += 1;
                }
            }
            let most = sends.values().copied().max().unwrap_or(0);
            let inside = stats.inside_back_off - before.inside_back_off;
            let inside_ops: Vec<String> =
                log.iter().filter(|r| r.inside_back_off).map(|r| format!("{} {}", r.operation, r.code)).collect();
            let others_synced = others
                .iter()
                .filter(|o| report.members.iter().any(|r| r.member == **o && r.updated == changed))
                .count();
            let faulty_outcome = member_outcome(&report, &faulty, changed);
            m.note = format!(
                "pass {:.2} s, clean after {:.2} s{} ({passes} passes in all); {} failed requests, each sent at most \
                 {most} times; {inside} requests inside back-offs{}; {faulty}: {faulty_outcome}; {others_synced} of \
                 {} other members synced in that pass",
                report.duration.as_secs_f64(),
                clean.as_secs_f64(),
                repaired.map_or(String::new(), |r| format!(" (mailbox repaired after {:.2} s)", r.as_secs_f64())),
                sends.len(),
                if inside_ops.is_empty() { String::new() } else { format!(" ({})", inside_ops.join(", ")) },
                others.len(),
            );

            let mut checks = Vec::new();
            if scenario == Scenario::Clean {
                checks.push(Check::exactly("failed requests", sends.len() as u64, 0));
            } else {
                let (most_allowed, why) = if scenario.throttling() {
                    (attempts, "the client's attempts")
                } else {
                    (1, "a refusal that cannot pass is not sent again")
                };
                checks.push(Check::at_least("failed requests", sends.len() as u64, 1));
                checks.push(Check::at_most(format!("sends per failed request ({why})"), most, most_allowed));
            }
            checks.push(Check::exactly("requests inside a back-off", inside, 0));
            checks.push(Check::exactly(
                "other members synced in the pass that met the fault",
                others_synced as u64,
                others.len() as u64,
            ));
            let faulty_report = report.members.iter().find(|r| r.member == faulty);
            let (expected, met) = match scenario {
                Scenario::Clean => ("synced", faulty_report.is_some_and(|r| r.updated == changed)),
                _ if scenario.waited_inline(f) => {
                    ("synced after the back-off", faulty_report.is_some_and(|r| r.updated == changed))
                }
                Scenario::RetryAfter | Scenario::BusyFault | Scenario::BusyInMessage => {
                    ("parked", faulty_report.is_some_and(|r| r.parked_until.is_some()))
                }
                Scenario::FolderRemoved | Scenario::NoMailbox | Scenario::ImpersonationDenied => (
                    "left out, not parked",
                    faulty_report.is_some_and(|r| r.left_out.is_some() && r.parked_until.is_none()),
                ),
            };
            checks.push(Check::holds(format!("{faulty} in that pass"), faulty_outcome.clone(), expected, met));
            checks.push(Check::holds(
                "every member holds the change at the end",
                if clean_at.is_some() { "yes" } else { "no" },
                "yes",
                clean_at.is_some(),
            ));
            m.checks = checks;
            rows.push(m);
        }
        service.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
        Ok(rows)
    })
}
