//! Certificate credentials against the Graph emulator over HTTP: a throwaway RSA key and
//! self-signed certificate made with the openssl command for each test; the emulator registers the
//! certificate and checks every client assertion (signature, thumbprint, audience, time range)
//! with Entra ID's error codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use exchange_sync_graph::{CertificateError, ClientCertificate, ClientCredentials, GraphClient, GraphError};
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// A new key and certificate in `dir` as `{name}.key` and `{name}.crt`.
fn make_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=exchange-sync test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (scripts/test-all.sh installs it)");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    (cert, key)
}

async fn emulator(registered: &Path) -> RunningGraphEmulator {
    let der = CertificateDer::from_pem_file(registered).unwrap().as_ref().to_vec();
    let config = GraphEmulatorConfig { seed_contacts: 3, client_certificate: Some(der), ..Default::default() };
    GraphEmulator::start(config).await.unwrap()
}

fn client(emu: &RunningGraphEmulator, certificate: ClientCertificate) -> GraphClient {
    let credentials = ClientCredentials::for_certificate(emu.authority(), emu.config().client_id.clone());
    GraphClient::builder(credentials).graph_url(emu.url()).client_certificate(certificate).build().unwrap()
}

fn token_url(emu: &RunningGraphEmulator) -> String {
    format!("{}/oauth2/v2.0/token", emu.authority())
}

/// Posts a client assertion to the token endpoint; answers the status and the error description.
async fn post_assertion(emu: &RunningGraphEmulator, assertion: &str) -> (u16, String) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", emu.config().client_id.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    let r = reqwest::Client::new().post(token_url(emu)).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    (status, body["error_description"].as_str().unwrap_or_default().to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_certificate_signs_in_and_reads_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "app");
    let emu = emulator(&cert).await;
    let certificate = ClientCertificate::from_pem_files(&cert, &key).unwrap();
    assert!(!format!("{certificate:?}").contains("PRIVATE"), "the key never shows");
    assert_eq!(certificate.thumbprint_hex().len(), 40);
    let client = client(&emu, certificate);
    let folder = client.contact_folder_by_name("contacts@contoso.test", "Company Contacts").await.unwrap();
    assert!(folder.is_some());
    assert_eq!(emu.token_requests(), 1);
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_assertions_with_entra_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "app");
    let (other_cert, other_key) = make_certificate(dir.path(), "other");
    let emu = emulator(&cert).await;
    let certificate = ClientCertificate::from_pem_files(&cert, &key).unwrap();
    let client_id = emu.config().client_id.clone();

    let good = certificate.assertion(&client_id, &token_url(&emu), now()).unwrap();
    assert_eq!(post_assertion(&emu, &good).await.0, 200);

    // Claims changed after signing: the signature no longer matches.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged = certificate.assertion("another-app", &token_url(&emu), now()).unwrap();
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();
    let (status, why) = post_assertion(&emu, &parts.join(".")).await;
    assert_eq!(status, 401);
    assert!(why.starts_with("AADSTS700027") && why.contains("signature"), "{why}");

    // Signed by another certificate's key: not the registered certificate.
    let other = ClientCertificate::from_pem_files(&other_cert, &other_key).unwrap();
    let (status, why) = post_assertion(&emu, &other.assertion(&client_id, &token_url(&emu), now()).unwrap()).await;
    assert_eq!(status, 401);
    assert!(why.starts_with("AADSTS700027"), "{why}");

    // Expired an hour ago.
    let (status, why) =
        post_assertion(&emu, &certificate.assertion(&client_id, &token_url(&emu), now() - 3600).unwrap()).await;
    assert_eq!(status, 401);
    assert!(why.starts_with("AADSTS700024"), "{why}");

    // For another token endpoint.
    let elsewhere = "https://login.microsoftonline.com/other-tenant/oauth2/v2.0/token";
    let (status, why) = post_assertion(&emu, &certificate.assertion(&client_id, elsewhere, now()).unwrap()).await;
    assert_eq!(status, 401);
    assert!(why.starts_with("AADSTS50013"), "{why}");

    // Through the client: the refusal is an authentication error naming the reason.
    let refused = client(&emu, other).contact_folder_by_name("contacts@contoso.test", "Company Contacts").await;
    match refused {
        Err(e @ GraphError::Token { .. }) => assert!(e.to_string().contains("AADSTS700027"), "{e}"),
        other => panic!("expected a token refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_without_one_registered_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "app");
    let emu = GraphEmulator::start(GraphEmulatorConfig::default()).await.unwrap();
    let certificate = ClientCertificate::from_pem_files(&cert, &key).unwrap();
    let (status, why) =
        post_assertion(&emu, &certificate.assertion(&emu.config().client_id, &token_url(&emu), now()).unwrap()).await;
    assert_eq!(status, 401);
    assert!(why.starts_with("AADSTS700027"), "{why}");
}

#[test]
fn files_that_cannot_be_used_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "app");
    let (other_cert, _) = make_certificate(dir.path(), "other");
    let missing = dir.path().join("missing.key");
    let e = ClientCertificate::from_pem_files(&cert, &missing).unwrap_err();
    assert!(matches!(e, CertificateError::Read { .. }) && e.to_string().contains("missing.key"), "{e}");
    let e = ClientCertificate::from_pem_files(&key, &key).unwrap_err();
    assert!(matches!(e, CertificateError::NoCertificate { .. }) && e.to_string().contains("app.key"), "{e}");
    let e = ClientCertificate::from_pem_files(&cert, &cert).unwrap_err();
    assert!(matches!(e, CertificateError::NoKey { .. }) && e.to_string().contains("app.crt"), "{e}");
    let e = ClientCertificate::from_pem_files(&other_cert, &key).unwrap_err();
    assert!(matches!(e, CertificateError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("app.key") && e.to_string().contains("other.crt"), "{e}");
    assert_eq!(e.kind(), exchange_sync_graph::ErrorKind::Configuration);
}
