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

/// A server speaking NTLM per connection without checking the proof: NEGOTIATE gets a CHALLENGE,
/// AUTHENTICATE authenticates the connection (the first connection is closed right after it, as a
/// server dropping an idle connection would), and requests without credentials pass only on an
/// authenticated connection. Logs (connection number, what the request carried).
async fn ntlm_server() -> (String, Arc<std::sync::Mutex<Vec<(usize, &'static str)>>>) {
    use base64::Engine as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/EWS/Exchange.asmx", listener.local_addr().unwrap());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    let mut challenge = b"NTLMSSP\0".to_vec();
    challenge.extend_from_slice(&2u32.to_le_bytes());
    challenge.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]);
    challenge.extend_from_slice(&0x0088_8205u32.to_le_bytes());
    challenge.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    challenge.extend_from_slice(&[12, 0, 12, 0, 48, 0, 0, 0]);
    challenge.extend_from_slice(&[2, 0, 4, 0, b'C', 0, b'O', 0, 0, 0, 0, 0]);
    let challenge = base64::engine::general_purpose::STANDARD.encode(challenge);
    tokio::spawn(async move {
        for connection in 1.. {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (log, challenge) = (Arc::clone(&log), challenge.clone());
            tokio::spawn(async move {
                let mut authenticated = false;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = sock.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    buf.drain(..head_end + length);
                    let auth = head.lines().find_map(|l| l.strip_prefix("authorization: ntlm ")).map(str::to_owned);
                    // TlRMTVNTUAAB... is "NTLMSSP\0" + type 1; ...AAD is type 3 (base64, lowercased).
                    let (what, reply) = match auth.as_deref() {
                        Some(t) if t.starts_with("tlrmtvntuaab") => (
                            "negotiate",
                            format!(
                                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM {challenge}\r\nContent-Length: 0\r\n\r\n"
                            ),
                        ),
                        Some(t) if t.starts_with("tlrmtvntuaad") => {
                            authenticated = true;
                            let close = if connection == 1 { "Connection: close\r\n" } else { "" };
                            (
                                "authenticate",
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n{close}Content-Length: {}\r\n\r\n{GET_FOLDER_OK}",
                                    GET_FOLDER_OK.len()
                                ),
                            )
                        }
                        _ if authenticated => (
                            "none",
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{GET_FOLDER_OK}",
                                GET_FOLDER_OK.len()
                            ),
                        ),
                        _ => (
                            "none",
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"
                                .to_owned(),
                        ),
                    };
                    log.lock().unwrap().push((connection, what));
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    if connection == 1 && what == "authenticate" {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn ntlm_handshake_stays_on_one_connection_and_reruns_when_it_is_closed() {
    let (url, log) = ntlm_server().await;
    let client = EwsClient::builder(url).credentials(Credentials::ntlm("CONTOSO\\admin", "pw")).build().unwrap();
    let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
    for _ in 0..3 {
        assert_eq!(client.get_folder(&contacts, &FolderShape::default()).await.unwrap().id.id, "F1");
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            (1, "negotiate"),
            (1, "authenticate"),
            // The connection was closed: the request meets a new, unauthenticated one (401).
            (2, "none"),
            (2, "negotiate"),
            (2, "authenticate"),
            // Now authenticated and kept alive: no handshake.
            (2, "none"),
        ]
    );
}
