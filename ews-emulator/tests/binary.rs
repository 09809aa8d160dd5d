//! The `ews-emulator` binary: first stdout line, serving, options.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("EWS endpoint: ").unwrap_or_else(|| panic!("first line: {first}")).to_string();
    (Killed(child), url)
}

const FIND_PUBLIC: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2010_SP2"/></soap:Header><soap:Body><m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="publicfoldersroot"/></m:ParentFolderIds></m:FindFolder></soap:Body></soap:Envelope>"#;

#[tokio::test]
async fn prints_the_endpoint_first_and_serves_with_its_options() {
    let (_child, url) =
        spawn(&["--contacts", "7", "--users", "erin", "--password", "s3cret", "--server-version", "Exchange2010_SP2"]);
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/EWS/Exchange.asmx"), "{url}");
    let http = reqwest::Client::new();
    let r = http.post(&url).basic_auth("erin", Some("s3cret")).body(FIND_PUBLIC).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"Version="Exchange2010_SP2""#), "{text}");
    assert!(text.contains("<t:DisplayName>Company Contacts</t:DisplayName><t:TotalCount>7</t:TotalCount>"), "{text}");
    let r = http.post(&url).basic_auth("alice", Some("s3cret")).body(FIND_PUBLIC).send().await.unwrap();
    assert_eq!(r.status(), 401, "only the listed users exist");
    let r = http.post(&url).basic_auth("sync-admin", Some("s3cret")).body(FIND_PUBLIC).send().await.unwrap();
    assert_eq!(r.status(), 200, "sync-admin is always there");
}

#[tokio::test]
async fn serves_https_with_the_certificate_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("emulator.pem");
    let (_child, url) = spawn(&["--contacts", "1", "--tls-cert-out", cert.to_str().unwrap()]);
    assert!(url.starts_with("https://"), "{url}");
    let pem = std::fs::read(&cert).expect("certificate written before the endpoint line");
    let http =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap();
    let r = http.post(&url).basic_auth("alice", Some("exchange-sync")).body(FIND_PUBLIC).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
