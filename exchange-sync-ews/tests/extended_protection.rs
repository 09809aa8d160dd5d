//! NTLM with Extended Protection against the emulator over HTTPS on loopback, as Exchange 2019 CU14
//! and later run it (`ExtendedProtectionTokenChecking`): with `Require` the client's channel
//! binding (a hash of the server's certificate) and target name get it in, a client sending no
//! binding is refused and told why; with `Allow` both are accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{PASSWORD, emulator, quick_retries};
use ews_emulator::{EmulatorConfig, ExtendedProtection, RunningEmulator};
use exchange_sync_ews::{
    Credentials, DistinguishedFolder, ErrorKind, EwsClient, FolderRef, FolderShape, TransportConfig,
};

async fn hardened(mode: ExtendedProtection, tls: bool) -> RunningEmulator {
    emulator(EmulatorConfig { contacts: 3, require_ntlm: true, tls, extended_protection: mode, ..Default::default() })
        .await
}

/// An NTLM client trusting the emulator's certificate, sending a channel binding or not.
fn client(emu: &RunningEmulator, password: &str, channel_binding: bool) -> EwsClient {
    let transport = TransportConfig {
        ca_bundle_pem: emu.certificate_pem().map(String::into_bytes),
        only_custom_roots: true,
        ntlm_channel_binding: channel_binding,
        ..TransportConfig::default()
    };
    EwsClient::builder(emu.url())
        .credentials(Credentials::ntlm("CONTOSO\\sync-admin", password))
        .transport(transport)
        .retry(quick_retries())
        .build()
        .unwrap()
}

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

#[tokio::test]
async fn require_accepts_the_channel_binding_and_refuses_a_client_without() {
    let emu = hardened(ExtendedProtection::Require, true).await;
    assert!(emu.url().starts_with("https://"), "{}", emu.url());

    // With the binding (the default), the hardened server lets the client in.
    let bound = client(&emu, PASSWORD, true);
    let folder = bound.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    assert!(folder.display_name.is_some());
    let stats = emu.request_stats();
    assert_eq!((stats.ntlm_logins, stats.binding_refusals), (1, 0), "{stats:?}");

    // Without it, the server refuses the handshake, and the client says why.
    let unbound = client(&emu, PASSWORD, false);
    let err = unbound.get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("authentication rejected"), "{text}");
    assert!(text.contains("server requires channel binding (Extended Protection)"), "{text}");
    assert!(text.contains("ntlm_channel_binding"), "{text}");
    let after = emu.request_stats();
    assert_eq!(after.binding_refusals, 1, "refused for want of a binding: {after:?}");
    // The request itself was never performed (the probe that told the refusal apart carries no
    // operation).
    assert_eq!(after.requests - stats.requests, 1, "{after:?}");

    // A wrong password with the binding is the usual refusal, naming channel binding only as a
    // possibility (the proof fails before the binding is looked at).
    let wrong = client(&emu, "not-the-password", true);
    let err = wrong.get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let text = err.to_string();
    assert!(text.contains("NTLM with channel binding (Extended Protection)"), "{text}");
    assert!(!text.contains("server requires channel binding") && !text.contains("not-the-password"), "{text}");
    assert_eq!(emu.request_stats().binding_refusals, 1);

    // A wrong password without the binding: the probe with it fails as well, so no claim about
    // channel binding is made.
    let err = client(&emu, "not-the-password", false).get_folder(&contacts(), &FolderShape::default()).await;
    let text = err.unwrap_err().to_string();
    assert!(!text.contains("channel binding"), "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn allow_accepts_clients_with_and_without_a_binding() {
    let emu = hardened(ExtendedProtection::Allow, true).await;
    client(&emu, PASSWORD, true).get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    client(&emu, PASSWORD, false).get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    let stats = emu.request_stats();
    assert_eq!((stats.ntlm_logins, stats.binding_refusals), (2, 0), "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn require_over_plain_http_checks_the_target_name() {
    // No TLS channel to bind to: the server checks the service the client names (HTTP/<host>).
    let emu = hardened(ExtendedProtection::Require, false).await;
    client(&emu, PASSWORD, true).get_folder(&contacts(), &FolderShape::default()).await.unwrap();
    assert_eq!(emu.request_stats().binding_refusals, 0);
    emu.shutdown().await;
}
