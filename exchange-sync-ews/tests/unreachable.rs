//! A server that cannot be reached or is not trusted fails fast, with an error saying which and
//! what to check, and maps to the core's `Unreachable` (it used to be retried for minutes as a
//! transient failure).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use ews_emulator::EmulatorConfig;
use exchange_sync_ews::connector::to_core_error;
use exchange_sync_ews::*;

/// Far below what the default policy's eight attempts used to take (about 25 s of back-off).
const FAST: Duration = Duration::from_secs(8);

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

async fn fails_fast(url: &str) -> EwsError {
    let client =
        EwsClient::builder(url).credentials(Credentials::basic(common::ADMIN, common::PASSWORD)).build().unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), client.get_folder(&contacts(), &FolderShape::default()))
        .await
        .expect("gives up")
        .unwrap_err();
    assert!(started.elapsed() < FAST, "took {:?}: {err}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(!err.is_retryable());
    let core = to_core_error(err.clone(), "alice@contoso.test/Contacts");
    assert_eq!(core.kind(), exchange_sync_core::ErrorKind::Unreachable, "{core}");
    assert!(!core.is_retryable());
    for text in [err.to_string(), format!("{err:?}"), core.to_string()] {
        assert!(!text.contains(common::PASSWORD), "{text}");
    }
    err
}

#[tokio::test]
async fn connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = fails_fast(&format!("http://127.0.0.1:{port}/EWS/Exchange.asmx")).await;
    assert!(matches!(err, EwsError::Unreachable { cause: UnreachableCause::ConnectionRefused, .. }), "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn unknown_host() {
    let err = fails_fast("https://ews.nowhere.invalid/EWS/Exchange.asmx").await;
    assert!(matches!(err, EwsError::Unreachable { cause: UnreachableCause::UnknownHost, .. }), "{err}");
    assert!(err.to_string().contains("ews.nowhere.invalid"), "names the host: {err}");
}

#[tokio::test]
async fn untrusted_certificate() {
    let emu = common::emulator(EmulatorConfig { contacts: 1, tls: true, ..Default::default() }).await;
    let err = fails_fast(emu.url()).await;
    assert!(matches!(err, EwsError::Unreachable { cause: UnreachableCause::UntrustedCertificate, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("UnknownIssuer") && text.contains("tls.ca_file"), "says which and what to do: {text}");
    assert_eq!(emu.request_stats().requests, 0, "nothing reached the server");

    // Trusted through the CA bundle, the same server answers.
    let trusted = TransportConfig {
        ca_bundle_pem: Some(emu.certificate_pem().unwrap().into_bytes()),
        ..TransportConfig::default()
    };
    let client = EwsClient::builder(emu.url())
        .credentials(Credentials::basic(common::ADMIN, common::PASSWORD))
        .transport(trusted)
        .build()
        .unwrap()
        .impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()));
    client.get_folder(&contacts(), &FolderShape::default()).await.unwrap();
}
