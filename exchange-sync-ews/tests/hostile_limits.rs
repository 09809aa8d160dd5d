//! Bounded resources against a misbehaving server (design rule 14): bodies are refused as they
//! arrive once past the limit, listings that never end or do not advance stop, pages larger than
//! asked are refused, and a hostile notification stream costs the client linear work and a bounded
//! buffer.
//!
//! Memory is checked by counting the bytes the server managed to write before the client gave up
//! (what the client read, plus what the kernel's socket buffers held: the slack), never by RSS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::hostile::{self, HostileServer, Parts, Reply};
use exchange_sync_core::Connector;
use exchange_sync_ews::ParseLimits;
use exchange_sync_ews::*;
use futures::StreamExt;

const MIB: usize = 1024 * 1024;
/// What loopback socket buffers may hold beyond what the client read.
const SOCKET_SLACK: u64 = 32 * MIB as u64;
/// What an old client read before the server gave up on it: far beyond any limit here.
const SERVER_CAP: usize = 512 * MIB;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

fn client_with(server: &HostileServer, transport: TransportConfig) -> EwsClient {
    EwsClient::builder(&server.url)
        .credentials(Credentials::basic("sync-admin@contoso.test", "pw"))
        .retry(RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(10), ..RetryPolicy::default() })
        .transport(TransportConfig { request_timeout: Duration::from_secs(60), ..transport })
        .build()
        .unwrap()
        .impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()))
}

fn client(server: &HostileServer) -> EwsClient {
    client_with(server, TransportConfig::default())
}

/// `total` bytes of filler in 64 KiB parts, made as they are written.
fn filler(total: usize) -> Parts {
    let part = vec![b' '; 64 * 1024];
    Box::new(std::iter::repeat_n(part, total / (64 * 1024)).map(|p| (Duration::ZERO, p)))
}

#[tokio::test]
async fn bodies_are_refused_as_soon_as_they_pass_the_limit() {
    let limited = TransportConfig { max_response_bytes: MIB, ..TransportConfig::default() };
    // A declared length over the limit: refused before reading.
    let server = HostileServer::start(|_, _| Reply::Body {
        status: 200,
        headers: vec![],
        content_length: Some(SERVER_CAP as u64),
        parts: filler(SERVER_CAP),
    })
    .await;
    let err = client_with(&server, limited.clone()).get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    assert!(server.served() <= MIB as u64 + SOCKET_SLACK, "served {} bytes", server.served());
    assert_eq!(server.requests().len(), 1, "a too large answer is not asked for again");

    // An endless chunked body (it used to grow the process by 300 MB a second until the timeout).
    let server = HostileServer::start(|_, _| Reply::chunked(200, filler(SERVER_CAP))).await;
    let err = client_with(&server, limited).get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(server.served() <= MIB as u64 + SOCKET_SLACK, "served {} bytes", server.served());
}

/// A contact with a body of `body` bytes, as GetItem answers it.
fn full_contact(id: &str, body: usize) -> String {
    format!(
        r#"<m:Items><t:Contact><t:ItemId Id="{id}" ChangeKey="EQAAAB"/><t:Body BodyType="Text">{}</t:Body><t:DisplayName>{id}</t:DisplayName></t:Contact></m:Items>"#,
        "x".repeat(body)
    )
}

#[tokio::test]
async fn a_batch_whose_answer_is_too_large_is_split_and_only_a_too_large_item_fails() {
    // Items of 300 KiB under a 1 MiB limit: a batch of 4 is too large, halves fit; item 3 alone
    // is too large.
    let server = HostileServer::start(|seen, _| {
        let messages: Vec<String> = (0..8)
            .filter(|i| seen.body.contains(&format!("\"AAMkItem{i}\"")))
            .map(|i| {
                let size = if i == 3 { 2 * MIB } else { 300 * 1024 };
                hostile::success("GetItem", &full_contact(&format!("AAMkItem{i}"), size))
            })
            .collect();
        Reply::ok(hostile::response("GetItem", &messages))
    })
    .await;
    let client = client_with(&server, TransportConfig { max_response_bytes: MIB, ..TransportConfig::default() });
    let ids: Vec<ItemId> = (0..8).map(|i| ItemId::new(format!("AAMkItem{i}"))).collect();
    let got = client.get_items(&ids, &ItemShape::all(vec![])).await.unwrap();
    for (i, r) in got.iter().enumerate() {
        match (i, r) {
            (3, Err(e)) => assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}"),
            (3, Ok(_)) => panic!("item 3 is over the limit"),
            (_, r) => assert!(r.is_ok(), "item {i}: {r:?}"),
        }
    }
    assert!(server.requests().len() <= 8 + 4 + 2 + 1, "{}", server.requests().len());
}

#[tokio::test]
async fn listings_that_never_end_or_never_advance_stop() {
    // IncludesLastItemInRange="false" forever, one item a page: stops at the page bound.
    let server = HostileServer::start(|seen, _| {
        let offset = seen.body.split("Offset=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("0");
        let offset: usize = offset.parse().unwrap();
        hostile::find_item_page(offset, 1, offset + 1, false)
    })
    .await;
    let err = tokio::time::timeout(
        Duration::from_secs(120),
        client(&server).find_all_items(&contacts(), &ItemShape::default()),
    )
    .await
    .expect("the listing ends")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert_eq!(server.count("FindItem"), client::MAX_FIND_ITEM_PAGES);

    // The same offset again: refused at the second page.
    let server = HostileServer::start(|_, _| hostile::find_item_page(0, 5, 5, false)).await;
    let shape = ItemShape::default();
    let err = tokio::time::timeout(Duration::from_secs(60), async {
        let c = client(&server);
        // The server names offset 5 after 0 (fine), then 5 after 5.
        c.find_items_where(&contacts(), &shape, None).await
    })
    .await
    .expect("the listing ends")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("does not advance"), "{err}");
    assert_eq!(server.count("FindItem"), 2);

    // The connector's listing, page by page, refuses it too.
    let server = HostileServer::start(|_, _| hostile::find_item_page(0, 5, 0, false)).await;
    let folder = EwsFolderConnector::mailbox_folder(client(&server), contacts(), "alice@contoso.test/Contacts");
    let err = folder.list(None).await.unwrap_err();
    assert!(err.to_string().contains("does not advance"), "{err}");
}

#[tokio::test]
async fn a_page_larger_than_asked_is_refused() {
    let server = HostileServer::start(|_, _| hostile::find_item_page(0, 11, 11, true)).await;
    let err = client(&server).find_items_page(&contacts(), &ItemShape::default(), None, 0, 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("11 entries for a page of at most 10"), "{err}");

    let server = HostileServer::start(|_, _| hostile::sync_page("S1", true, 0, 20)).await;
    let err = client(&server).sync_folder_items(&contacts(), &ItemShape::default(), None, 10).await.unwrap_err();
    assert!(err.to_string().contains("20 entries for a page of at most 10"), "{err}");
}

#[tokio::test]
async fn sync_folder_items_that_does_not_advance_or_never_ends_stops() {
    // The same sync state answered with more to come: refused at once.
    let server = HostileServer::start(|_, n| hostile::sync_page("S-stuck", false, n, 1)).await;
    let c = client(&server);
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        c.sync_all_folder_items(&contacts(), &ItemShape::default(), None),
    )
    .await
    .expect("the sync ends")
    .unwrap_err();
    assert!(err.to_string().contains("does not advance"), "{err}");
    assert_eq!(server.count("SyncFolderItems"), 2);
    let folder = EwsFolderConnector::mailbox_folder(c, contacts(), "alice@contoso.test/Contacts");
    let token = exchange_sync_core::SyncToken::new("S-stuck".to_owned());
    assert!(folder.changes(Some(&token)).await.is_err());

    // New states forever: stops at the page bound.
    let server = HostileServer::start(|_, n| hostile::sync_page(&format!("S{n}"), false, n, 1)).await;
    let err = tokio::time::timeout(
        Duration::from_secs(120),
        client(&server).sync_all_folder_items(&contacts(), &ItemShape::default(), None),
    )
    .await
    .expect("the sync ends")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert_eq!(server.count("SyncFolderItems"), client::MAX_SYNC_PAGES);
}

/// A server that answers GetStreamingEvents with an end tag that never closes, one KiB at a time:
/// the client examines each byte once and gives up when the document passes its bound (the
/// splitter used to rescan everything after `</` for every piece: 96 s of CPU in 60 s).
#[tokio::test]
async fn hostile_streaming_bytes_cost_linear_work_and_a_bounded_buffer() {
    const DOCUMENT_BOUND: usize = 8 * MIB;
    let server = HostileServer::start(|seen, _| match seen.operation.as_str() {
        "GetStreamingEvents" => {
            let mut head = hostile::streaming_status("OK");
            head.extend_from_slice(b"<Envelope><Body></");
            let hostile = std::iter::once((Duration::ZERO, head))
                .chain(std::iter::repeat_n(vec![b'x'; 1024], SERVER_CAP / 1024).map(|p| (Duration::ZERO, p)));
            Reply::chunked(200, Box::new(hostile))
        }
        _ => Reply::full(500, ""),
    })
    .await;
    let limits = ParseLimits { max_bytes: DOCUMENT_BOUND, ..ParseLimits::default() };
    let c = client_with(&server, TransportConfig { parse_limits: limits, ..TransportConfig::default() });
    let mut stream = c.get_streaming_events(&["sub-1".to_owned()], 30, Duration::from_secs(30)).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b);
        }
        batches
    })
    .await
    .expect("the hostile stream is given up, not scanned again and again");
    assert!(outcome[0].is_ok(), "the heartbeat before it is read: {:?}", outcome[0]);
    let last = outcome.last().unwrap().as_ref().unwrap_err();
    assert!(last.to_string().contains("larger than"), "{last}");
    assert!(server.served() <= (DOCUMENT_BOUND as u64) + SOCKET_SLACK, "served {}", server.served());
}
