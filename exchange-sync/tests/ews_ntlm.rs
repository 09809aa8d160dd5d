//! `auth = "ntlm"` against the emulator refusing Basic: the service syncs the quickstart group over
//! NTLM-authenticated connections, and a wrong password is a clear connection error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use ews_emulator::{Emulator, EmulatorConfig};
use exchange_sync::config::{Auth, Secret};
use exchange_sync::{RunOptions, SyncService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_connection_syncs_and_a_wrong_password_is_reported() {
    let emu = Emulator::start(EmulatorConfig {
        contacts: 3,
        require_ntlm: true,
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        heartbeat_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let mut ntlm = config(&emu, group());
    ntlm.connections[0].auth =
        Auth::Ntlm { username: "CONTOSO\\sync-admin".into(), password: Secret::Inline(PASSWORD.into()) };
    let service = SyncService::connect(ntlm.clone()).await.unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.groups[0].totals().created, 12);
    assert!(emu.request_stats().ntlm_logins >= 1);

    let mut wrong = ntlm;
    wrong.connections[0].auth =
        Auth::Ntlm { username: "CONTOSO\\sync-admin".into(), password: Secret::Inline("not-it".into()) };
    let failed = match SyncService::connect(wrong).await {
        Err(e) => e.to_string(),
        Ok(service) => format!("{:?}", service.run_once(RunOptions::default()).await),
    };
    assert!(failed.contains("authentication rejected"), "{failed}");
    assert!(!failed.contains("not-it"), "{failed}");
}

/// Exchange 2019 CU14 and later: Extended Protection required on EWS, over HTTPS. The default
/// connection binds NTLM to the TLS channel and syncs; one with `tls.channel_binding = false` is
/// refused, and the error says the server requires channel binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protection_required_over_https() {
    let emu = Emulator::start(EmulatorConfig {
        contacts: 3,
        require_ntlm: true,
        tls: true,
        extended_protection: ews_emulator::ExtendedProtection::Require,
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        heartbeat_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.certificate_pem().unwrap()).unwrap();
    let mut bound = config(&emu, group());
    bound.connections[0].auth =
        Auth::Ntlm { username: "CONTOSO\\sync-admin".into(), password: Secret::Inline(PASSWORD.into()) };
    bound.connections[0].tls.ca_file = Some(ca);
    let service = SyncService::connect(bound.clone()).await.unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(emu.request_stats().binding_refusals, 0);

    let mut unbound = bound;
    unbound.connections[0].tls.channel_binding = false;
    assert!(unbound.validate().unwrap().iter().any(|w| w.path == "connections[0].tls.channel_binding"));
    let failed = match SyncService::connect(unbound).await {
        Err(e) => e.to_string(),
        Ok(service) => format!("{:?}", service.run_once(RunOptions::default()).await),
    };
    assert!(failed.contains("server requires channel binding (Extended Protection)"), "{failed}");
    assert!(emu.request_stats().binding_refusals >= 1);
}
