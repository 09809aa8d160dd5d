//! NTLM against the emulator over HTTP, with the emulator refusing Basic: the handshake succeeds and
//! authenticates connections (not every request), a wrong password is a clear, non-retryable error,
//! and the password shows up in no `Debug` output, error or log line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{ADMIN, PASSWORD, emulator, quick_retries};
use ews_emulator::{EmulatorConfig, RunningEmulator};
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, ErrorKind, EwsClient, FolderRef, FolderShape, Impersonation, ItemShape,
};

async fn ntlm_only() -> RunningEmulator {
    emulator(EmulatorConfig { contacts: 5, require_ntlm: true, ..Default::default() }).await
}

fn ntlm_client(emu: &RunningEmulator, login: &str, password: &str) -> EwsClient {
    EwsClient::builder(emu.url())
        .credentials(Credentials::ntlm(login, password))
        .retry(quick_retries())
        .build()
        .unwrap()
}

#[tokio::test]
async fn ntlm_handshake_authenticates_connections() {
    let emu = ntlm_only().await;
    let client = ntlm_client(&emu, "CONTOSO\\sync-admin", PASSWORD);
    let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
    let folder = client.get_folder(&contacts, &FolderShape::default()).await.unwrap();
    assert!(folder.display_name.is_some());
    // Sequential requests reuse the authenticated connection: one handshake for all of them (two
    // if the pool had not taken the connection back yet when a request started; six without reuse).
    for _ in 0..5 {
        client.get_folder(&contacts, &FolderShape::default()).await.unwrap();
    }
    let stats = emu.request_stats();
    assert!(stats.ntlm_logins <= 2, "{stats:?}");
    assert_eq!(stats.requests, 6, "{stats:?}");

    // Concurrent requests, impersonating other mailboxes, each over its own authenticated connection.
    let mut tasks = Vec::new();
    for user in ["alice", "bob", "carol", "dave"] {
        let c = client.impersonating(Impersonation::PrimarySmtpAddress(format!("{user}@contoso.test")));
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                c.find_all_items(&FolderRef::distinguished(DistinguishedFolder::Contacts), &ItemShape::default())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = emu.request_stats();
    assert!(stats.ntlm_logins >= 1 && stats.ntlm_logins <= 5, "{stats:?}");

    // A UPN works as well (sent with an empty domain).
    let upn = ntlm_client(&emu, ADMIN, PASSWORD);
    upn.get_folder(&contacts, &FolderShape::default()).await.unwrap();

    // Basic is refused by this server.
    let basic = common::admin(&emu);
    let err = basic.get_folder(&contacts, &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    emu.shutdown().await;
}

/// Collects every log line of the test's thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn wrong_password_is_a_clear_final_error_and_secrets_stay_hidden() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = ntlm_only().await;
    let secret = "not-the-Password-42";
    let client = ntlm_client(&emu, "CONTOSO\\sync-admin", secret);
    let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
    let err = client.get_folder(&contacts, &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("authentication rejected"), "{err}");
    // Not retried: one handshake, no EWS request reached the operations.
    assert_eq!(emu.request_stats().requests, 0);

    // The right password on the same server works; then look for either password anywhere.
    let good = ntlm_client(&emu, "CONTOSO\\sync-admin", PASSWORD);
    good.get_folder(&contacts, &FolderShape::default()).await.unwrap();

    let shown = format!(
        "{err} {err:?} {client:?} {:?} {:?}",
        Credentials::ntlm("CONTOSO\\sync-admin", secret),
        Credentials::ntlm("CONTOSO\\sync-admin", PASSWORD)
    );
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!logged.is_empty(), "the subscriber captured the client's logs");
    for text in [&shown, &logged] {
        assert!(!text.contains(secret), "wrong password leaked: {text}");
        assert!(!text.contains(PASSWORD), "password leaked: {text}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn streaming_notifications_over_ntlm() {
    use exchange_sync_ews::EventKind;
    use exchange_sync_ews::operation::notifications::{ITEM_EVENTS, SubscriptionKind};
    use futures::StreamExt;
    let emu = emulator(EmulatorConfig {
        contacts: 0,
        require_ntlm: true,
        heartbeat_interval: std::time::Duration::from_millis(100),
        streaming_minute: std::time::Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    let dave = ntlm_client(&emu, "CONTOSO\\sync-admin", PASSWORD)
        .impersonating(Impersonation::PrimarySmtpAddress("dave@contoso.test".into()));
    let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
    let sub =
        dave.subscribe(std::slice::from_ref(&contacts), &ITEM_EVENTS, &SubscriptionKind::Streaming).await.unwrap();
    let mut stream =
        dave.get_streaming_events(std::slice::from_ref(&sub.id), 1, std::time::Duration::from_secs(30)).await.unwrap();
    // While the stream holds its connection, other requests authenticate their own.
    dave.create_items(&contacts, &[common::contact("Stream", "Ntlm")]).await.unwrap();
    let mut saw_created = false;
    while let Some(batch) = stream.next().await {
        saw_created |=
            batch.unwrap().notifications.iter().flat_map(|n| &n.events).any(|e| e.kind == EventKind::Created);
    }
    assert!(saw_created);
    assert!(emu.request_stats().ntlm_logins >= 2, "the stream's connection and another one");
    emu.shutdown().await;
}
