//! `auth = "negotiate"` against the emulator over HTTPS with tickets from the loopback MIT KDC
//! (`scripts/kdc.sh start`, then `. target/kdc/env`; `scripts/test-all.sh` does both): the service
//! syncs the quickstart group with the service account's Kerberos ticket.
//!
//! Needs the `kerberos` features of this crate and of the emulator: the workspace's
//! `--all-features`, or `cargo test -p exchange-sync --features kerberos,ews-emulator/kerberos`.

#![cfg(feature = "kerberos")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use ews_emulator::{Emulator, EmulatorConfig};
use exchange_sync::config::{Auth, Endpoint};
use exchange_sync::{RunOptions, SyncService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_connection_syncs_with_a_kerberos_ticket() {
    let realm = std::env::var("EXCHANGE_SYNC_TEST_KDC").unwrap_or_else(|_| {
        panic!(
            "no test KDC: run `scripts/kdc.sh start` (Debian packages krb5-kdc, krb5-admin-server, krb5-user) \
             and load its environment (`. target/kdc/env`) before the tests; scripts/test-all.sh does both"
        )
    });
    let emu = Emulator::start(EmulatorConfig {
        contacts: 3,
        require_ntlm: true,
        tls: true,
        kerberos: true,
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        heartbeat_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.certificate_pem().unwrap()).unwrap();
    let mut config = config(&emu, group());
    // The service principal is HTTP/localhost: the URL names that host.
    config.connections[0].endpoint = Endpoint::Url(emu.url().replace("127.0.0.1", "localhost"));
    config.connections[0].auth = Auth::Negotiate { username: format!("sync-admin@{realm}"), password: None };
    config.connections[0].tls.ca_file = Some(ca);
    let service = SyncService::connect(config).await.unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].totals().created, 12);
    let stats = emu.request_stats();
    assert!(stats.kerberos_logins >= 1 && stats.ntlm_logins == 0, "{stats:?}");
}
