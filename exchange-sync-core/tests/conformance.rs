//! The connector conformance suite run against the in-memory connector, in both change-detection
//! modes and with scrambled listing order.

use exchange_sync_core::testkit::{MemoryConnector, conformance};

#[tokio::test]
async fn memory_connector_incremental_conforms() {
    conformance::run(|| async { MemoryConnector::new("conformance").shared() }).await.unwrap();
}

#[tokio::test]
async fn memory_connector_snapshot_conforms() {
    conformance::run(|| async { MemoryConnector::snapshot("conformance").shared() }).await.unwrap();
}

#[tokio::test]
async fn memory_connector_conforms_with_scrambled_pages() {
    conformance::run(|| async {
        let c = MemoryConnector::new("conformance");
        c.scramble_order(Some(42));
        c.set_page_size(4);
        c.shared()
    })
    .await
    .unwrap();
}

/// The suite must be able to fail: a folder that loses its stamps is caught.
#[tokio::test]
async fn suite_catches_a_broken_connector() {
    use exchange_sync_core::testkit::{Fault, FaultKind, Operation};
    let failures = conformance::run(|| async {
        let c = MemoryConnector::new("broken");
        // The first update call fails as a whole, so the stale-version check cannot pass.
        c.inject(Fault::on(Operation::Update, 1, FaultKind::Fail(exchange_sync_core::ErrorKind::Permanent)));
        c.shared()
    })
    .await
    .unwrap_err();
    assert!(failures.0.iter().any(|f| f.check == "update_with_stale_version"), "{failures}");
}

/// The suite on calendar items: its sample events (single events and weekly series) pass a
/// faithful folder, so a calendar connector that fails them has a fault of its own.
#[tokio::test]
async fn memory_connector_conforms_with_calendar_items() {
    let options = conformance::Options { kind: exchange_sync_core::item::ItemKind::CalendarItem, ..Default::default() };
    conformance::run_with(|| async { MemoryConnector::new("calendar").shared() }, options).await.unwrap();
    let event = conformance::sample(&exchange_sync_core::item::ItemKind::CalendarItem, 3);
    assert!(event.get(exchange_sync_core::field::RECURRENCE).is_some(), "every third sample event is a series");
}
