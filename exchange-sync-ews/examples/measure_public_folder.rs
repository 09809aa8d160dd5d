//! Measures the public folder path against a local emulator: a full snapshot listing (paged FindItem),
//! a full read (batched GetItem + mapping), a probe-answered listing, and a mailbox SyncFolderItems
//! pass. Prints wall-clock times; numbers depend on the machine and the build profile.
//!
//!     cargo run --release -p exchange-sync-ews --example measure_public_folder -- 10000

use std::time::Instant;

use exchange_sync_core::{Connector, ItemId as CoreItemId, PageCursor};
use exchange_sync_ews::operation::folders::Traversal;
use exchange_sync_ews::{
    ConnectorOptions, Credentials, DistinguishedFolder, EwsClient, EwsFolderConnector, FolderRef, FolderShape,
    Impersonation, ItemShape, Routing,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let contacts: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let emu = ews_emulator::Emulator::start(ews_emulator::EmulatorConfig { contacts, ..Default::default() }).await?;
    let client = EwsClient::builder(emu.url())
        .credentials(Credentials::basic("sync-admin@contoso.test", "exchange-sync"))
        .build()?;
    let public = client.with_routing(Routing {
        public_folder_mailbox: Some("publicfolders@contoso.test".into()),
        ..Default::default()
    });
    let root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
    let folders = public.find_folders(&root, &FolderShape::default(), Traversal::Shallow).await?;
    let id = folders
        .into_iter()
        .find(|f| f.display_name.as_deref() == Some("Company Contacts"))
        .ok_or("no Company Contacts")?
        .id;
    let options = ConnectorOptions { probe_quiet_period: std::time::Duration::ZERO, ..Default::default() };
    let folder =
        EwsFolderConnector::public_folder(public.clone(), FolderRef::Id(id), "Company Contacts").with_options(options);

    let list = || async {
        let mut all = Vec::new();
        let mut cursor: Option<PageCursor> = None;
        loop {
            let page = folder.list(cursor.as_ref()).await?;
            all.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok::<_, exchange_sync_core::Error>(all),
            }
        }
    };
    // Let the folder's last commit age past a second, so the probe can be trusted.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let t = Instant::now();
    let listed = list().await?;
    println!("snapshot listing: {} items in {:?}", listed.len(), t.elapsed());

    let t = Instant::now();
    let again = list().await?;
    println!("unchanged listing answered by the probe: {} items in {:?}", again.len(), t.elapsed());

    let ids: Vec<CoreItemId> = listed.iter().map(|v| v.id.clone()).collect();
    let t = Instant::now();
    let mut read = 0;
    for chunk in ids.chunks(folder.capabilities().max_batch) {
        read += folder.get(chunk).await?.into_iter().filter(Result::is_ok).count();
    }
    println!(
        "full read (GetItem batches of {} + mapping): {read} items in {:?}",
        folder.capabilities().max_batch,
        t.elapsed()
    );

    let raw_ids: Vec<exchange_sync_ews::ItemId> =
        ids.iter().map(|i| exchange_sync_ews::ItemId::new(i.as_str())).collect();
    let t = Instant::now();
    let raw = public.get_items(&raw_ids, &exchange_sync_ews::mapping::full_shape()).await?;
    println!("the same read without mapping (client only): {} items in {:?}", raw.len(), t.elapsed());
    let t = Instant::now();
    let items: Vec<_> = raw.into_iter().flatten().collect();
    let mapped = items.iter().map(exchange_sync_ews::mapping::to_item).count();
    println!("mapping alone: {mapped} items in {:?}", t.elapsed());

    let alice = client.impersonating(Impersonation::PrimarySmtpAddress("alice@contoso.test".into()));
    let contacts_folder = FolderRef::distinguished(DistinguishedFolder::Contacts);
    let drafts: Vec<_> = (0..2000)
        .map(|i| exchange_sync_ews::ItemDraft {
            item_type: exchange_sync_ews::ItemType::Contact,
            fields: vec![
                exchange_sync_ews::Field::text("GivenName", format!("Given{i}")),
                exchange_sync_ews::Field::text("Surname", "Measured"),
            ],
        })
        .collect();
    let t = Instant::now();
    let created = alice.create_items(&contacts_folder, &drafts).await?;
    println!(
        "CreateItem (batches of 50): {} contacts in {:?}",
        created.iter().filter(|r| r.is_ok()).count(),
        t.elapsed()
    );
    let t = Instant::now();
    let (changes, _) = alice.sync_all_folder_items(&contacts_folder, &ItemShape::id_only(vec![]), None).await?;
    println!("mailbox SyncFolderItems from scratch: {} changes in {:?}", changes.len(), t.elapsed());
    emu.shutdown().await;
    Ok(())
}
