//! The core's connector conformance suite, run against both EWS connectors over HTTP against the
//! emulator: each check gets a fresh, empty folder (created with CreateFolder), and small pages so
//! that paging is crossed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use exchange_sync_core::Connector;
use exchange_sync_core::testkit::conformance;
use exchange_sync_ews::*;

static FOLDERS: AtomicUsize = AtomicUsize::new(0);

async fn fresh_folder(client: &EwsClient, parent: DistinguishedFolder, prefix: &str) -> (FolderRef, String) {
    let name = format!("{prefix} {}", FOLDERS.fetch_add(1, Ordering::Relaxed));
    let folder =
        client.create_folder(&FolderRef::distinguished(parent), &name, "IPF.Contact").await.expect("CreateFolder");
    (FolderRef::Id(folder.id), name)
}

#[tokio::test]
async fn mailbox_folder_connector_conforms() {
    let emu = common::small_tenant().await;
    let alice = common::as_user(&emu, "alice");
    let result = conformance::run(|| {
        let alice = alice.clone();
        async move {
            let (folder, name) = fresh_folder(&alice, DistinguishedFolder::MsgFolderRoot, "mailbox conformance").await;
            let options = ConnectorOptions { page_size: 7, sync_page_size: 7, ..Default::default() };
            Arc::new(
                EwsFolderConnector::mailbox_folder(alice, folder, format!("alice@contoso.test/{name}"))
                    .with_options(options),
            ) as Arc<dyn Connector>
        }
    })
    .await;
    if let Err(failures) = result {
        panic!("{failures}");
    }
}

#[tokio::test]
async fn public_folder_connector_conforms() {
    let emu = common::small_tenant().await;
    let public = common::public(&emu);
    let result = conformance::run(|| {
        let public = public.clone();
        async move {
            let (folder, name) =
                fresh_folder(&public, DistinguishedFolder::PublicFoldersRoot, "public conformance").await;
            let options = ConnectorOptions { page_size: 7, ..Default::default() };
            Arc::new(EwsFolderConnector::public_folder(public, folder, format!("Public/{name}")).with_options(options))
                as Arc<dyn Connector>
        }
    })
    .await;
    if let Err(failures) = result {
        panic!("{failures}");
    }
}
