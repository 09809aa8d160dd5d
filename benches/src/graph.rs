//! Benchmark 9: the fan-out over Microsoft Graph. Row 9 runs a group whose hub is a shared
//! mailbox's contact folder and whose one-way members are user mailboxes, all on the Graph
//! emulator; row 9h a hybrid group, the hub the EWS emulator's public folder and the members
//! Graph mailboxes, as an organisation whose mailboxes moved to Exchange Online runs it. Each
//! fans out, then syncs again after 1% of the hub's contacts changed. Both emulators run on a
//! runtime of their own, so their CPU time is told apart from the engine's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync::config::{Auth, Connection, GroupConfig, HubFolder, MemberConfig, TargetFolder, WellKnownFolder};
use exchange_sync::{ConnectionFolders, EwsFolders, RunOptions, SyncService};
use exchange_sync_core::StateStore;
use exchange_sync_core::field;
use exchange_sync_core::state::sqlite::SqliteStore;
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};

use crate::fanout::totals;
use crate::measurement::{Check, Measurement};
use crate::resources::{self, EMULATOR_THREADS};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// The Graph connection's id in the benchmark configuration.
const GRAPH: &str = "online";
/// The hub's folder (the Graph emulator seeds its shared mailbox's folder of this name).
const FOLDER: &str = "Company Contacts";
/// The value the incremental pass's edits write.
const CHANGED: &str = "Changed for the incremental benchmark";

/// Which group row 9 runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Hub and members over Graph.
    Graph,
    /// The hub an EWS public folder, the members over Graph.
    Hybrid,
}

/// The Graph emulator on a runtime of its own.
struct GraphTenant {
    emulator: RunningGraphEmulator,
    runtime: Option<tokio::runtime::Runtime>,
}

impl GraphTenant {
    /// `mailboxes` users (`m0000`, ...) and, when `contacts` > 0, that many contacts in the
    /// shared mailbox `contacts@`'s `Company Contacts`.
    fn start(mailboxes: usize, contacts: usize) -> Result<GraphTenant, BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(EMULATOR_THREADS)
            .enable_all()
            .build()?;
        let config = GraphEmulatorConfig {
            users: (0..mailboxes).map(tenant::mailbox_name).collect(),
            seed_contacts: contacts,
            trace_dir: None,
            ..GraphEmulatorConfig::default()
        };
        let emulator = runtime.block_on(GraphEmulator::start(config))?;
        Ok(GraphTenant { emulator, runtime: Some(runtime) })
    }
}

impl Drop for GraphTenant {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Requests both emulators answered so far (a Graph `$batch` counts once).
fn requests(graph: &GraphTenant, ews: Option<&Tenant>) -> (u64, u64) {
    (graph.emulator.requests(), ews.map_or(0, |t| t.stats().requests))
}

/// Measures from `started` (time, CPU, requests at the start) to now.
fn measurement(
    name: &str,
    size: String,
    items: u64,
    started: (Instant, resources::CpuTimes, (u64, u64)),
    now: (u64, u64),
) -> Measurement {
    let cpu = resources::cpu_now().since(started.1);
    let (graph, ews) = (now.0 - started.2.0, now.1 - started.2.1);
    Measurement {
        name: name.to_owned(),
        size,
        items,
        seconds: started.0.elapsed().as_secs_f64(),
        requests: graph + ews,
        peak_rss_mib: resources::peak_rss_mib(),
        cpu_client_s: cpu.client().as_secs_f64(),
        cpu_emulator_s: cpu.emulator.as_secs_f64(),
        note: if ews > 0 { format!("{graph} Graph requests, {ews} EWS requests") } else { String::new() },
        ..Measurement::default()
    }
}

/// Fans `contacts` out to `mailboxes` Graph members of a group shaped as `shape`, then syncs
/// again after 1% of the hub's contacts changed.
pub fn run(name: &str, shape: Shape, contacts: usize, mailboxes: usize) -> Result<Vec<Measurement>, BoxError> {
    let hub_contacts = if shape == Shape::Graph { contacts } else { 0 };
    let graph = GraphTenant::start(mailboxes, hub_contacts)?;
    let ews = match shape {
        Shape::Graph => None,
        Shape::Hybrid => Some(Tenant::start(0, contacts)?),
    };
    let runtime = tenant::engine_runtime()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let target = TargetFolder::Named { parent: WellKnownFolder::Contacts, name: FOLDER.into() };
        let (mut config, mut group) = match &ews {
            Some(t) => {
                let config = tenant::config(&t.url(), Vec::new(), Duration::ZERO);
                let group = GroupConfig::new("bench", tenant::CONNECTION, HubFolder::PublicFolder(FOLDER.into()));
                (config, group)
            }
            None => {
                let config = tenant::config("http://unused.invalid/EWS/Exchange.asmx", Vec::new(), Duration::ZERO);
                let hub =
                    HubFolder::Mailbox { mailbox: graph.emulator.config().address("contacts"), folder: target.clone() };
                (config, GroupConfig::new("bench", GRAPH, hub))
            }
        };
        if ews.is_none() {
            config.connections.clear();
        }
        let e = graph.emulator.config();
        let auth = Auth::ClientSecret {
            authority: format!("{}/{}", graph.emulator.authority(), e.tenant_id),
            client_id: e.client_id.clone(),
            secret: exchange_sync::config::Secret::Inline(e.client_secret.clone()),
        };
        config.connections.push(Connection::graph(GRAPH, graph.emulator.url(), auth));
        group.default_target = target;
        for i in 0..mailboxes {
            let mut member = MemberConfig::one_way(tenant::mailbox(i));
            member.connection = Some(GRAPH.to_owned());
            group.members.push(member);
        }
        config.groups = vec![group];
        // The hub's own server, to play the edits of the incremental pass (hybrid).
        let editor = match ews {
            Some(_) => Some(EwsFolders::connect(&config).await?),
            None => None,
        };
        let folders = Arc::new(ConnectionFolders::connect(&config).await?);
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(dir.path().join("state.sqlite")).await?);
        let service = SyncService::new(config, folders, store)?;
        let size = format!("{contacts} contacts x {mailboxes} mailboxes");
        let mut out = Vec::new();

        let start = (Instant::now(), resources::cpu_now(), requests(&graph, ews.as_ref()));
        let report = service.run_once(RunOptions::default()).await?;
        let (created, _, errors, first) = totals(&report);
        let mut m = measurement(name, size.clone(), created, start, requests(&graph, ews.as_ref()));
        let expected = (contacts * mailboxes) as u64;
        m.checks.push(Check::exactly("copies created", created, expected));
        if errors > 0 {
            m.note = format!("{errors} errors{first}; {}", m.note);
        }
        out.push(m);

        // 1% of the hub's contacts changed, as a user would change them on the hub's server.
        let changed = (contacts / 100).max(1);
        match &ews {
            Some(t) => {
                let hub =
                    editor.as_ref().ok_or("no EWS connection")?.open_public_folder(tenant::CONNECTION, FOLDER).await?;
                let address = ews_emulator::store::public_folder_mailbox("contoso.test");
                let ids: Vec<String> = t
                    .emulator
                    .store()
                    .items_in(&address, FOLDER)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| v.id)
                    .collect();
                let step = (ids.len() / changed).max(1);
                for id in ids.iter().step_by(step).take(changed) {
                    hub.update(id, |i| i.set(field::JOB_TITLE, CHANGED)).await?;
                }
            }
            None => {
                let hub = graph.emulator.config().address("contacts");
                let ids: Vec<String> =
                    graph.emulator.store().contacts_in(&hub, FOLDER).into_iter().map(|c| c.id).collect();
                let step = (ids.len() / changed).max(1);
                for id in ids.iter().step_by(step).take(changed) {
                    graph.emulator.store().edit_contact(&hub, id, "jobTitle", serde_json::json!(CHANGED))?;
                }
            }
        }
        let start = (Instant::now(), resources::cpu_now(), requests(&graph, ews.as_ref()));
        let report = service.run_once(RunOptions::default()).await?;
        let (_, updated, errors, first) = totals(&report);
        let incremental = format!("{name} incremental (1%)");
        let mut m = measurement(
            &incremental,
            format!("{changed} changed, {size}"),
            updated,
            start,
            requests(&graph, ews.as_ref()),
        );
        m.checks.push(Check::exactly("copies updated", updated, (changed * mailboxes) as u64));
        if errors > 0 {
            m.note = format!("{errors} errors{first}; {}", m.note);
        }
        out.push(m);
        // The members hold exactly the hub's contacts, the changed ones changed.
        let member = tenant::mailbox(mailboxes.saturating_sub(1));
        let copies = graph.emulator.store().contacts_in(&member, FOLDER);
        let with_change =
            copies.iter().filter(|c| c.properties.get("jobTitle").and_then(|v| v.as_str()) == Some(CHANGED)).count();
        if let Some(last) = out.last_mut() {
            last.checks.push(Check::exactly(format!("copies in {member}"), copies.len() as u64, contacts as u64));
            last.checks.push(Check::exactly(format!("changed copies in {member}"), with_change as u64, changed as u64));
        }
        Ok(out)
    })
}
