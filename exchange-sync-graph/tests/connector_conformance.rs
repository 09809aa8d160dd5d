//! The core's connector conformance suite against the Graph connector, over HTTP against the
//! Graph emulator: each check gets a fresh contact folder, and small pages so that paging (list
//! and delta) is crossed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;

use exchange_sync_core::Connector;
use exchange_sync_core::testkit::conformance;
use exchange_sync_graph::ConnectorOptions;
use graph_emulator::GraphEmulatorConfig;

async fn conforms(mailbox: &str) {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let mailbox = emu.config().address(mailbox);
    let result = conformance::run(|| {
        let client = client.clone();
        let mailbox = mailbox.clone();
        async move {
            let options = ConnectorOptions { page_size: 7, delta_page_size: 7, ..Default::default() };
            Arc::new(common::fresh_folder(&client, &mailbox, "conformance").await.with_options(options))
                as Arc<dyn Connector>
        }
    })
    .await;
    if let Err(failures) = result {
        panic!("{failures}");
    }
    assert!(emu.token_requests() <= 1, "the token is cached: {} token requests", emu.token_requests());
}

#[tokio::test]
async fn user_mailbox_contact_folder_conforms() {
    conforms("alice").await;
}

#[tokio::test]
async fn shared_mailbox_contact_folder_conforms() {
    conforms("contacts").await;
}
