//! Shared helpers of the integration tests: an emulator per test and clients for it.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exchange_sync_graph::{ClientCredentials, GraphClient, GraphContactsConnector, RetryPolicy, Secret};
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};

/// An emulator of the demo tenant.
pub async fn emulator(config: GraphEmulatorConfig) -> RunningGraphEmulator {
    GraphEmulator::start(config).await.expect("emulator starts")
}

/// Credentials of the demo application against the emulator's authority.
pub fn credentials(emu: &RunningGraphEmulator) -> ClientCredentials {
    ClientCredentials {
        authority: emu.authority(),
        client_id: emu.config().client_id.clone(),
        secret: Secret::new(emu.config().client_secret.clone()),
    }
}

/// A client of the emulator with quick retries.
pub fn client(emu: &RunningGraphEmulator) -> GraphClient {
    GraphClient::builder(credentials(emu))
        .graph_url(emu.url())
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .build()
        .expect("client builds")
}

static FOLDERS: AtomicUsize = AtomicUsize::new(0);

/// A connector on a fresh contact folder of `mailbox`.
pub async fn fresh_folder(client: &GraphClient, mailbox: &str, prefix: &str) -> GraphContactsConnector {
    let name = format!("{prefix} {}", FOLDERS.fetch_add(1, Ordering::Relaxed));
    GraphContactsConnector::open(client.clone(), mailbox, &name, true).await.expect("folder created")
}

/// A connector on a fresh calendar of `mailbox`.
pub async fn fresh_calendar(
    client: &GraphClient,
    mailbox: &str,
    prefix: &str,
) -> exchange_sync_graph::GraphCalendarConnector {
    let name = format!("{prefix} {}", FOLDERS.fetch_add(1, Ordering::Relaxed));
    exchange_sync_graph::GraphCalendarConnector::open(client.clone(), mailbox, &name, true)
        .await
        .expect("calendar created")
}
