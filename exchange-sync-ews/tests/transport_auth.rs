//! Transport behaviour that the emulator does not exercise: OAuth2 bearer tokens refreshed after a
//! 401, credentials kept out of errors, and TLS configuration errors. A tiny scripted HTTP server
//! stands in for Exchange.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use exchange_sync_ews::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GET_FOLDER_OK: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:ContactsFolder><t:FolderId Id="F1" ChangeKey="C1"/><t:DisplayName>Contacts</t:DisplayName></t:ContactsFolder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#;

/// Serves HTTP/1.1 requests on a local port: answers 200 with `GET_FOLDER_OK` when the request's
/// Authorization header is `Bearer fresh-token`, 401 otherwise. Returns the URL and the headers seen.
async fn scripted_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/EWS/Exchange.asmx", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                loop {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = sock.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let auth = head
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                        .unwrap_or("")
                        .to_owned();
                    log.lock().unwrap().push(auth.clone());
                    let reply = if auth.ends_with("Bearer fresh-token") {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{GET_FOLDER_OK}",
                            GET_FOLDER_OK.len()
                        )
                    } else {
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n".to_owned()
                    };
                    sock.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, seen)
}

/// Hands out a stale token until asked to refresh.
struct Tokens {
    refreshes: AtomicUsize,
}

#[async_trait]
impl TokenProvider for Tokens {
    async fn token(&self, force_refresh: bool) -> Result<String> {
        if force_refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            Ok("fresh-token".into())
        } else {
            Ok("stale-token".into())
        }
    }
}

#[tokio::test]
async fn bearer_token_is_refreshed_once_after_a_401() {
    let (url, seen) = scripted_server().await;
    let tokens = Arc::new(Tokens { refreshes: AtomicUsize::new(0) });
    let client = EwsClient::builder(url).credentials(Credentials::bearer(tokens.clone())).build().unwrap();
    let folder = client
        .get_folder(&FolderRef::distinguished(DistinguishedFolder::Contacts), &FolderShape::default())
        .await
        .unwrap();
    assert_eq!(folder.id.id, "F1");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].ends_with("stale-token") && seen[1].ends_with("fresh-token"));
}

#[tokio::test]
async fn rejected_basic_credentials_stay_out_of_errors() {
    let (url, _) = scripted_server().await;
    let client =
        EwsClient::builder(url).credentials(Credentials::basic("admin@contoso.test", "s3cret-pass")).build().unwrap();
    let err = client
        .get_folder(&FolderRef::distinguished(DistinguishedFolder::Contacts), &FolderShape::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!text.contains("s3cret-pass"), "{text}");
    }
}

#[test]
fn tls_configuration_errors() {
    let bad_bundle = TransportConfig { ca_bundle_pem: Some(b"not a certificate".to_vec()), ..Default::default() };
    let err =
        EwsClient::builder("https://mail.contoso.test/EWS/Exchange.asmx").transport(bad_bundle).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    let insecure = TransportConfig { danger_accept_invalid_certs: true, ..Default::default() };
    assert!(EwsClient::builder("https://mail.contoso.test/EWS/Exchange.asmx").transport(insecure).build().is_ok());
    assert_eq!(EwsClient::builder("not a url").build().unwrap_err().kind(), ErrorKind::Configuration);
}

/// Serves requests, closing the connection without an answer on the first one it receives (after
/// reading it, as if the server died mid-request). Answers a GetFolder or an empty CreateItem reply.
async fn flaky_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/EWS/Exchange.asmx", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.ends_with(b"</soap:Envelope>") {
                        break;
                    }
                }
                if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    return; // drop the connection: the client cannot know what happened
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{GET_FOLDER_OK}",
                    GET_FOLDER_OK.len()
                );
                sock.write_all(reply.as_bytes()).await.unwrap();
            });
        }
    });
    (url, requests)
}

#[tokio::test]
async fn a_lost_answer_is_resent_for_reads_only() {
    let (url, requests) = flaky_server().await;
    let client = EwsClient::builder(url).build().unwrap();
    let folder =
        client.get_folder(&FolderRef::distinguished(DistinguishedFolder::Contacts), &FolderShape::default()).await;
    assert_eq!(folder.unwrap().id.id, "F1", "a read is sent again");
    assert_eq!(requests.load(Ordering::SeqCst), 2);

    let (url, requests) = flaky_server().await;
    let client = EwsClient::builder(url).build().unwrap();
    let draft = ItemDraft { item_type: ItemType::Contact, fields: vec![Field::text("GivenName", "Once")] };
    let r = client.create_items(&FolderRef::distinguished(DistinguishedFolder::Contacts), &[draft]).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().kind(), ErrorKind::Indeterminate);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a write whose outcome is unknown is not sent again");
}
