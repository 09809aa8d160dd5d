//! The core's connector conformance suite against the Graph calendar connector, over HTTP
//! against the Graph emulator: each check gets a fresh calendar, the items are the suite's sample
//! events (every third a weekly series), and pages are small so that listing crosses them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;

use exchange_sync_core::Connector;
use exchange_sync_core::item::ItemKind;
use exchange_sync_core::testkit::conformance::{self, Options};
use exchange_sync_graph::ConnectorOptions;
use graph_emulator::GraphEmulatorConfig;

async fn conforms(mailbox: &str) {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let mailbox = emu.config().address(mailbox);
    let result = conformance::run_with(
        || {
            let client = client.clone();
            let mailbox = mailbox.clone();
            async move {
                let options = ConnectorOptions { page_size: 7, ..Default::default() };
                Arc::new(common::fresh_calendar(&client, &mailbox, "conformance").await.with_options(options))
                    as Arc<dyn Connector>
            }
        },
        Options { kind: ItemKind::CalendarItem, ..Options::default() },
    )
    .await;
    if let Err(failures) = result {
        panic!("{failures}");
    }
}

#[tokio::test]
async fn user_mailbox_calendar_conforms() {
    conforms("alice").await;
}

#[tokio::test]
async fn shared_mailbox_calendar_conforms() {
    conforms("contacts").await;
}
