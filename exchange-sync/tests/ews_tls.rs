//! TLS options of a connection against the emulator serving HTTPS with a self-signed certificate:
//! verification on by default, an internal CA trusted through `ca_file`, `insecure` as the
//! explicit way out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use ews_emulator::{Emulator, EmulatorConfig};
use exchange_sync::{EwsFolders, FolderProvider, RunOptions, SyncService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_ca_file_and_insecure() {
    let emu = Emulator::start(EmulatorConfig {
        contacts: 3,
        tls: true,
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        heartbeat_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(emu.url().starts_with("https://"), "{}", emu.url());
    let dir = tempfile::tempdir().unwrap();

    // Verification on: the self-signed certificate is refused (one attempt: a refused certificate
    // does not become trusted by retrying).
    let strict = config(&emu, group());
    let once = exchange_sync_ews::RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        ..Default::default()
    };
    let folders = EwsFolders::connect_with_retries(&strict, once).await.unwrap();
    assert!(folders.check_connection(&strict.groups[0]).await.is_err());

    // The certificate trusted as an internal CA.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.certificate_pem().unwrap()).unwrap();
    let mut trusted = strict.clone();
    trusted.connections[0].tls.ca_file = Some(ca);
    let service = SyncService::connect(trusted).await.unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].totals().created, 12);

    // Verification off, explicitly (validation warns about it).
    let mut insecure = strict;
    insecure.connections[0].tls.insecure = true;
    assert!(insecure.validate().unwrap().iter().any(|w| w.path == "connections[0].tls.insecure"));
    let service = SyncService::connect(insecure).await.unwrap();
    assert!(service.run_once(RunOptions::default()).await.unwrap().is_clean());
}
