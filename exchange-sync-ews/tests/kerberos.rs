//! Negotiate/Kerberos against the emulator over HTTPS, with tickets from a real MIT KDC on loopback
//! (`scripts/kdc.sh start`, then `. target/kdc/env`; `scripts/test-all.sh` does both): the service
//! account's ticket gets in, a server offering only NTLM gets NTLM, and a missing ticket or password
//! is an error that says what to do.
//!
//! Needs the `kerberos` features of this crate and of the emulator: the workspace's
//! `--all-features`, or `cargo test -p exchange-sync-ews --features kerberos,ews-emulator/kerberos`.

#![cfg(feature = "kerberos")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{PASSWORD, emulator, quick_retries};
use ews_emulator::{EmulatorConfig, RunningEmulator};
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, ErrorKind, EwsClient, FolderRef, FolderShape, TransportConfig,
};

/// The realm of the test KDC; fails the test, saying how to start one, when there is none.
fn realm() -> String {
    std::env::var("EXCHANGE_SYNC_TEST_KDC").unwrap_or_else(|_| {
        panic!(
            "no test KDC: run `scripts/kdc.sh start` (Debian packages krb5-kdc, krb5-admin-server, krb5-user) \
             and load its environment (`. target/kdc/env`) before the tests; scripts/test-all.sh does both"
        )
    })
}

async fn server(kerberos: bool) -> RunningEmulator {
    emulator(EmulatorConfig { contacts: 3, require_ntlm: true, tls: true, kerberos, ..Default::default() }).await
}

/// A client of the emulator by the name its service principal has (`HTTP/localhost`).
fn client(emu: &RunningEmulator, credentials: Credentials) -> EwsClient {
    let transport = TransportConfig {
        ca_bundle_pem: emu.certificate_pem().map(String::into_bytes),
        only_custom_roots: true,
        ..TransportConfig::default()
    };
    EwsClient::builder(emu.url().replace("127.0.0.1", "localhost"))
        .credentials(credentials)
        .transport(transport)
        .retry(quick_retries())
        .build()
        .unwrap()
}

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_accounts_ticket_gets_in() {
    let principal = format!("sync-admin@{}", realm());
    let emu = server(true).await;
    let c = client(&emu, Credentials::negotiate(&principal, None));
    let folder = c.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    assert!(folder.display_name.is_some());
    c.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    let stats = emu.request_stats();
    assert_eq!((stats.kerberos_logins, stats.ntlm_logins), (2, 0), "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ticket_the_error_says_kinit_or_keytab() {
    let principal = format!("ghost@{}", realm());
    let emu = server(true).await;
    let err = client(&emu, Credentials::negotiate(&principal, None))
        .get_folder(&contacts(), &FolderShape::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("no Kerberos ticket for {principal}: kinit or keytab")), "{text}");
    assert_eq!(emu.request_stats().kerberos_logins, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_offering_only_ntlm_gets_ntlm() {
    let _ = realm();
    let emu = server(false).await;
    let with_password = Credentials::negotiate("sync-admin@contoso.test", Some(PASSWORD.to_owned()));
    let c = client(&emu, with_password);
    c.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    c.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    let stats = emu.request_stats();
    assert!(stats.ntlm_logins >= 1 && stats.kerberos_logins == 0, "{stats:?}");

    let err = client(&emu, Credentials::negotiate("sync-admin@contoso.test", None))
        .get_folder(&contacts(), &FolderShape::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("the server offers only NTLM, not Negotiate/Kerberos"), "{err}");
    emu.shutdown().await;
}
