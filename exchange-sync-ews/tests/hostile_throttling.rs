//! Retries against a misbehaving server: the client is the only layer that retries, honours the
//! server's back-off in full and per mailbox (no request reaches a mailbox inside its back-off, from
//! any clone), returns at once when the back-off is longer than it waits inline, never retries at
//! once, fails fast on permanent errors, and hands upper layers errors marked exhausted.
//!
//! Timing assertions are one-sided ("not before the back-off ended", "returned well before the
//! back-off would have"), with wide margins: they hold on a loaded machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::hostile::{self, HostileServer, Reply};
use exchange_sync_core::Connector;
use exchange_sync_ews::connector::to_core_error;
use exchange_sync_ews::operation::items::DeleteType;
use exchange_sync_ews::*;

fn contacts() -> FolderRef {
    FolderRef::distinguished(DistinguishedFolder::Contacts)
}

fn client(server: &HostileServer, retry: RetryPolicy) -> EwsClient {
    EwsClient::builder(&server.url)
        .credentials(Credentials::basic("sync-admin@contoso.test", "not-the-secret"))
        .retry(retry)
        .build()
        .unwrap()
}

fn as_user(client: &EwsClient, user: &str) -> EwsClient {
    client.impersonating(Impersonation::PrimarySmtpAddress(format!("{user}@contoso.test")))
}

/// Short delays of the client's own choosing; server back-offs are what they are.
fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        ..RetryPolicy::default()
    }
}

fn anchored(seen: &hostile::Seen, user: &str) -> bool {
    seen.head.to_ascii_lowercase().contains(&format!("x-anchormailbox: {user}@contoso.test"))
}

/// Gaps between the arrivals of consecutive requests.
fn gaps(requests: &[hostile::Seen]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect()
}

async fn page(client: &EwsClient) -> Result<operation::items::ItemPage> {
    client.find_items_page(&contacts(), &ItemShape::id_only(vec![]), None, 0, 100).await
}

#[tokio::test]
async fn a_503_is_retried_after_its_retry_after_and_then_given_up_as_exhausted() {
    // Once: one more request, not before the second the server asked for.
    let server = HostileServer::start(|_, n| match n {
        0 => Reply::full(503, "").header("Retry-After", "1"),
        _ => hostile::find_item_page(0, 3, 3, true),
    })
    .await;
    let first = page(&client(&server, quick(3))).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert!(gaps(&seen)[0] >= Duration::from_secs(1), "sent again inside Retry-After: {:?}", gaps(&seen));

    // Always: max_attempts requests in all, each after the delay, and an error no upper layer
    // retries (it used to be retried again by the engine and the service: 160 requests).
    let server = HostileServer::start(|_, _| Reply::full(503, "").header("Retry-After", "1")).await;
    let err = page(&client(&server, quick(3))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    let seen = server.requests();
    assert_eq!(seen.len(), 3, "max_attempts requests in all");
    assert!(gaps(&seen).iter().all(|g| *g >= Duration::from_secs(1)), "{:?}", gaps(&seen));
    let core = to_core_error(err, "alice@contoso.test/Contacts");
    assert_eq!(core.kind(), exchange_sync_core::ErrorKind::Throttled);
    assert!(core.retries_exhausted() && !core.is_retryable(), "{core}");
}

/// Each way Exchange says "back off for a long time": the call returns at once with the whole
/// delay, later calls for the mailbox fail fast without a request until it ends, and other
/// mailboxes are served.
#[tokio::test]
async fn a_long_back_off_is_honoured_in_full_without_waiting_inline() {
    type Form = (&'static str, fn() -> Reply, Duration);
    let forms: [Form; 3] = [
        ("fault", || hostile::busy_fault(297_749), Duration::from_millis(297_749)),
        ("message", || hostile::busy_message("FindItem", 297_749), Duration::from_millis(297_749)),
        ("503", || Reply::full(503, "").header("Retry-After", "999999"), Duration::from_secs(999_999)),
    ];
    for (form, busy, asked) in forms {
        let server =
            HostileServer::start(
                move |seen, _| {
                    if anchored(seen, "alice") { busy() } else { hostile::find_item_page(0, 1, 1, true) }
                },
            )
            .await;
        let service = client(&server, RetryPolicy::default());
        let alice = as_user(&service, "alice");
        let started = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(20), page(&alice))
            .await
            .unwrap_or_else(|_| panic!("{form}: the call waited for the back-off"))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20), "{form}");
        assert_eq!(err.kind(), ErrorKind::Throttled, "{form}: {err}");
        assert_eq!(err.retry_after(), Some(asked), "{form}: the server's delay, not cut");
        assert_eq!(server.count("FindItem"), 1, "{form}: not sent again");

        // Another clone for the same mailbox: fails fast, nothing sent, the rest of the delay.
        let again = as_user(&service, "ALICE").find_items_page(&contacts(), &ItemShape::default(), None, 0, 10).await;
        let again = again.unwrap_err();
        assert!(matches!(again, EwsError::BackingOff { .. }), "{form}: {again}");
        let left = again.retry_after().unwrap();
        assert!(left <= asked && left > asked - Duration::from_secs(20), "{form}: {left:?}");
        assert_eq!(server.count("FindItem"), 1, "{form}: no request inside the back-off");
        assert!(alice.back_off_remaining().is_some_and(|d| d > asked - Duration::from_secs(20)), "{form}");

        // Another mailbox is served meanwhile.
        assert_eq!(page(&as_user(&service, "bob")).await.unwrap().items.len(), 1, "{form}");

        // What the engine gets: throttled with the remaining delay, exhausted (park, do not retry).
        let core = to_core_error(again, "alice@contoso.test/Contacts");
        assert!(core.retries_exhausted(), "{form}: {core}");
        assert!(core.retry_after().is_some_and(|d| d > asked - Duration::from_secs(20)), "{form}: {core}");
    }
}

#[tokio::test]
async fn no_request_reaches_a_mailbox_inside_its_back_off_from_any_clone() {
    let server = HostileServer::start(|seen, n| match (n, seen.operation.as_str()) {
        (0, _) => hostile::busy_message("FindItem", 1500),
        (_, "GetFolder") => hostile::contacts_folder(),
        _ => hostile::find_item_page(0, 2, 2, true),
    })
    .await;
    let service = client(&server, quick(4));
    let first = tokio::spawn({
        let alice = as_user(&service, "alice");
        async move { page(&alice).await }
    });
    // Once the first answer told the mailbox to back off, clones act on it.
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (alice_again, alice_too) = (as_user(&service, "alice"), as_user(&service, "alice"));
    let (folder, shape) = (contacts(), FolderShape::default());
    let (a, b) = tokio::join!(page(&alice_again), alice_too.get_folder(&folder, &shape));
    a.unwrap();
    b.unwrap();
    first.await.unwrap().unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 4);
    for later in &seen[1..] {
        let after = later.at.duration_since(seen[0].at);
        assert!(after >= Duration::from_millis(1500), "{} sent {after:?} after the back-off began", later.operation);
    }
}

#[tokio::test]
async fn the_client_s_own_delays_are_never_zero() {
    // 502, 504 and a 503 without Retry-After: retried after growing delays, not at once.
    let server = HostileServer::start(|_, n| match n {
        0 => Reply::full(502, ""),
        1 => Reply::full(504, ""),
        2 => Reply::full(503, ""),
        _ => hostile::find_item_page(0, 1, 1, true),
    })
    .await;
    page(&client(&server, quick(8))).await.unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 4);
    let gaps = gaps(&seen);
    // Each delay is drawn between half and all of base * 2^attempt.
    for (i, gap) in gaps.iter().enumerate() {
        let least = Duration::from_millis(50) * (1 << i);
        assert!(*gap >= least, "retry {i} after {gap:?}: sooner than {least:?} ({gaps:?})");
    }
}

fn item_ids(n: usize) -> Vec<ItemId> {
    (0..n).map(|i| ItemId::new(format!("AAMkItem{i:07}"))).collect()
}

#[tokio::test]
async fn batch_entries_that_failed_for_a_passing_reason_are_retried_after_a_delay() {
    // ErrorInternalServerError without an inner error, twice, then success.
    let server = HostileServer::start(|seen, n| {
        if n < 2 {
            hostile::internal_errors("DeleteItem", hostile::batch_len(seen), None)
        } else {
            hostile::deleted(hostile::batch_len(seen))
        }
    })
    .await;
    let alice = as_user(&client(&server, quick(8)), "alice");
    let r = alice.delete_items(&item_ids(3), DeleteType::SoftDelete).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let seen = server.requests();
    assert!(seen.len() >= 3, "{}", seen.len());
    // Each entry was sent again only after a delay (it used to be at once: 8 times in 10 ms).
    for id in item_ids(3) {
        let sent: Vec<_> = seen.iter().filter(|s| s.body.contains(&format!("\"{}\"", id.id))).cloned().collect();
        assert!(sent.len() >= 2, "{}", id.id);
        for gap in gaps(&sent) {
            assert!(gap >= Duration::from_millis(50), "{} sent again {gap:?} after failing", id.id);
        }
    }
}

#[tokio::test]
async fn an_internal_error_with_a_permanent_inner_error_is_not_retried() {
    // Exchange's answer to a delete over the dumpster quota: ErrorInternalServerError, inner
    // ErrorQuotaExceededOnDelete. It used to be sent 8 times in 10 ms.
    let server = HostileServer::start(|seen, _| {
        hostile::internal_errors(
            "DeleteItem",
            hostile::batch_len(seen),
            Some(("ErrorQuotaExceededOnDelete", "The Recoverable Items folder is over its quota.")),
        )
    })
    .await;
    let alice = as_user(&client(&server, quick(8)), "alice");
    let r = alice.delete_items(&item_ids(3), DeleteType::SoftDelete).await.unwrap();
    assert_eq!(server.count("DeleteItem"), 1, "one request, no retry");
    for e in &r {
        let e = e.as_ref().unwrap_err();
        assert_eq!(e.inner_code(), Some("ErrorQuotaExceededOnDelete"));
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("over its quota"), "{e}");
        let core = to_core_error(e.clone(), "alice@contoso.test/Contacts");
        assert_eq!(core.kind(), exchange_sync_core::ErrorKind::Permanent, "{core}");
    }
}

#[tokio::test]
async fn throttled_batch_entries_wait_for_the_mailbox_and_long_back_offs_fail_them_at_once() {
    // A short back-off on some entries: they are sent again after it, alone.
    let server =
        HostileServer::start(|seen, n| {
            let len = hostile::batch_len(seen);
            if n == 0 {
                let mut m = vec![hostile::success("DeleteItem", "")];
                m.extend((1..len).map(|_| {
                    hostile::failure("DeleteItem", "ErrorServerBusy", "busy", &[("BackOffMilliseconds", "800")])
                }));
                Reply::ok(hostile::response("DeleteItem", &m))
            } else {
                hostile::deleted(len)
            }
        })
        .await;
    let alice = as_user(&client(&server, quick(4)), "alice");
    let r = alice.delete_items(&item_ids(3), DeleteType::SoftDelete).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(hostile::batch_len(&seen[1]), 2, "only the throttled entries again");
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(800));

    // A long one: the call returns at once, the entries throttled with the whole delay.
    let server = HostileServer::start(|_, _| hostile::busy_message("DeleteItem", 600_000)).await;
    let alice = as_user(&client(&server, quick(4)), "alice");
    let r = tokio::time::timeout(Duration::from_secs(20), alice.delete_items(&item_ids(120), DeleteType::SoftDelete))
        .await
        .expect("not waited inline")
        .unwrap();
    assert_eq!(server.count("DeleteItem"), 1, "the other batches were not sent inside the back-off");
    for e in &r {
        let e = e.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert!(e.retry_after().is_some_and(|d| d > Duration::from_secs(500)), "{e}");
    }
}

#[tokio::test]
async fn rejected_credentials_are_not_retried_anywhere() {
    let server =
        HostileServer::start(|_, _| Reply::full(401, "").header("WWW-Authenticate", "Basic realm=\"ews\"")).await;
    let alice = as_user(&client(&server, quick(8)), "alice");
    let err = alice.get_folder(&contacts(), &FolderShape::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(server.requests().len(), 1);
    assert!(!err.to_string().contains("not-the-secret") && !format!("{err:?}").contains("not-the-secret"));
    let core = to_core_error(err, "alice@contoso.test/Contacts");
    assert_eq!(core.kind(), exchange_sync_core::ErrorKind::Auth);

    // A watcher does not knock again every few seconds (that can lock the account): it stops,
    // and the engine polls.
    let options = ConnectorOptions {
        watch: watch::WatchOptions { retry_delay: Duration::from_millis(20), ..Default::default() },
        ..Default::default()
    };
    let folder =
        EwsFolderConnector::mailbox_folder(alice, contacts(), "alice@contoso.test/Contacts").with_options(options);
    let mut hints = folder.watch().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut hints)).await;
    assert!(matches!(ended, Ok(None)), "the hint stream ends: {ended:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.count("Subscribe"), 1, "one refused Subscribe, not one every retry_delay");
}

/// The server's answers stand for Exchange's: those meant to be valid EWS validate against the
/// schema (faults too), so that a test fails for the failure it stages and not for a typo.
#[test]
fn the_hostile_server_s_documents_are_valid_ews() {
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        ("busy-fault", hostile::busy_fault(297_749)),
        ("busy-message", hostile::busy_message("FindItem", 297_749)),
        ("internal-errors", hostile::internal_errors("DeleteItem", 2, Some(("ErrorQuotaExceededOnDelete", "quota")))),
        ("internal-error", hostile::internal_errors("DeleteItem", 1, None)),
        ("find-item", hostile::find_item_page(0, 3, 3, false)),
        ("sync", hostile::sync_page("S1", true, 0, 2)),
        ("get-folder", hostile::contacts_folder()),
        ("deleted", hostile::deleted(2)),
        ("subscribed", hostile::subscribed("sub-1")),
    ];
    for (name, reply) in documents {
        let body = String::from_utf8(reply.into_body()).unwrap();
        common::write_doc(dir.path(), &format!("hostile-{name}.xml"), &body);
    }
    common::validate(&[dir.path()]);
    let stream = dir.path().join("streaming.stream");
    let mut body = hostile::streaming_status("OK");
    body.extend(hostile::streaming_status("Closed"));
    std::fs::write(&stream, body).unwrap();
    common::validate(&[std::path::Path::new("--stream"), &stream]);
}
