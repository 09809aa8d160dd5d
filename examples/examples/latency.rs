//! Real-time latency on the emulator: an editor's edit, as made from a phone, until it is visible
//! in the public folder and in 100 other mailboxes. Prints p50 and p99 over the rounds.
//!
//! `cargo run --release --example latency [ROUNDS]` (default 30 rounds). The time runs from the
//! moment the edit is sent until every folder holds it, read from the emulator's store directly so
//! that measuring costs no EWS traffic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ews_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, Secret, StateLocation, TargetFolder,
    WellKnownFolder,
};
use exchange_sync::{EwsFolders, PassOutcome, ProgressEvent, SyncService};
use exchange_sync_core::field;
use exchange_sync_core::state::memory::MemoryStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const READERS: usize = 100;

fn reader(i: usize) -> String {
    format!("reader{i:03}")
}

/// Whether the folder holds an item whose job title is `title`.
fn holds(emu: &RunningEmulator, address: &str, path: &str, title: &str) -> bool {
    emu.store()
        .items_in(address, path)
        .is_some_and(|items| items.iter().any(|v| v.item.field("JobTitle").is_some_and(|f| f.text == title)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let mut users = vec!["alice".to_owned()];
    users.extend((0..READERS).map(reader));
    let emu = Emulator::start(EmulatorConfig {
        users,
        contacts: 20,
        heartbeat_interval: Duration::from_secs(1),
        ..EmulatorConfig::default()
    })
    .await?;

    let target = TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company Contacts".into() };
    let mut group = GroupConfig::new("company-contacts", "lab", HubFolder::PublicFolder("Company Contacts".into()))
        .with_member(MemberConfig::two_way("alice@contoso.test"));
    for i in 0..READERS {
        group = group.with_member(MemberConfig::one_way(format!("{}@contoso.test", reader(i))));
    }
    group.default_target = target.clone();
    let mut config = Config {
        connections: vec![Connection::new(
            "lab",
            emu.url(),
            Auth::Basic {
                username: "sync-admin@contoso.test".into(),
                password: Secret::Inline("exchange-sync".into()),
            },
        )],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(10);
    config.service.poll_interval = Duration::from_secs(5);

    let folders = Arc::new(EwsFolders::connect(&config).await?);
    let service = SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new()))?;
    let mut events = service.subscribe();
    let started = Instant::now();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    loop {
        if let ProgressEvent::PassFinished { report } = events.recv().await? {
            if report.outcome != PassOutcome::Synced {
                return Err(format!("initial sync failed: {report:?}").into());
            }
            println!("initial sync of {} mailboxes: {:.1} s ({report})", READERS + 1, started.elapsed().as_secs_f64());
            break;
        }
    }
    // Let the echo of the initial writes settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let alice = folders.open_mailbox_folder("lab", "alice@contoso.test", &target, false).await?;
    let item = alice.items().await?.into_iter().next().ok_or("alice holds no copy")?;
    let mailboxes: Vec<String> = (0..READERS).map(|i| format!("{}@contoso.test", reader(i))).collect();
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let title = format!("title {round}");
        let t0 = Instant::now();
        alice.update(&item.id, |i| i.set(field::JOB_TITLE, title.as_str())).await?;
        let deadline = t0 + Duration::from_secs(60);
        let mut pending: Vec<(&str, &str)> = vec![("publicfolders@contoso.test", "Company Contacts")];
        pending.extend(mailboxes.iter().map(|m| (m.as_str(), "Contacts/Company Contacts")));
        while !pending.is_empty() {
            pending.retain(|(address, path)| !holds(&emu, address, path, &title));
            if Instant::now() > deadline {
                return Err(format!("round {round}: {} folders never got the edit", pending.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    println!(
        "edit on one member -> hub + {READERS} mailboxes, {rounds} rounds: p50 {} ms, p99 {} ms, max {} ms",
        percentile(&latencies, 50.0).as_millis(),
        percentile(&latencies, 99.0).as_millis(),
        latencies.last().map_or(0, Duration::as_millis),
    );
    // Every watched folder's subscription travels on shared streaming connections.
    println!("{} watched folders on {} streaming connection(s)", READERS + 2, emu.request_stats().streams_open);
    service.shutdown();
    running.await??;
    Ok(())
}
