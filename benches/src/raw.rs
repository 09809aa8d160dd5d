//! Benchmark 2: the server's limit. The very CreateItem batches the engine sends (same items,
//! same origin stamps, same batch size, same number of mailboxes written at once), built before
//! the clock starts and posted straight to the emulator with no sync logic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exchange_sync::EwsFolders;
use exchange_sync_core::{EntityId, GroupId, OriginStamp};
use exchange_sync_ews::operation::items::create_item_request;
use exchange_sync_ews::{DistinguishedFolder, ExchangeVersion, FolderRef, Impersonation, ItemDraft, mapping, soap};

use crate::measurement::{Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// Mailboxes written at once: the executor's default.
pub const CONCURRENCY: usize = 8;

/// Copies the public folder's `contacts` into `mailboxes` mailboxes, in batches of the EWS
/// connector's default size.
pub fn run(name: &str, contacts: usize, mailboxes: usize) -> Result<Measurement, BoxError> {
    let tenant = Tenant::start(mailboxes, contacts)?;
    let runtime = tenant::engine_runtime()?;
    runtime.block_on(async {
        let url = tenant.url();
        let config = tenant::config(&url, vec![tenant::reader_group("bench", 0, mailboxes)], Duration::ZERO);
        let folders = EwsFolders::connect(&config).await?;
        let hub = folders.open_public_folder(tenant::CONNECTION, tenant::PUBLIC_FOLDER).await?;
        let group = GroupId::new("bench");
        let drafts: Vec<ItemDraft> = hub
            .items()
            .await?
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let origin = OriginStamp::new(group.clone(), EntityId::new(format!("entity-{n}")));
                let (item_type, fields) = mapping::to_fields(&i.item, Some(&origin));
                ItemDraft { item_type, fields }
            })
            .collect();
        let folder = FolderRef::distinguished(DistinguishedFolder::Contacts);
        let batches: Arc<Vec<String>> = Arc::new(
            drafts
                .chunks(exchange_sync_ews::ConnectorOptions::default().max_batch.max(1))
                .map(|chunk| create_item_request(&folder, chunk))
                .collect(),
        );
        let http = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));

        let meter = Meter::start(&tenant);
        let workers: Vec<_> = (0..CONCURRENCY.min(mailboxes))
            .map(|_| {
                let (http, url, batches, next) = (http.clone(), url.clone(), batches.clone(), next.clone());
                tokio::spawn(async move {
                    let mut created = 0u64;
                    loop {
                        let m = next.fetch_add(1, Ordering::Relaxed);
                        if m >= mailboxes {
                            return Ok::<u64, reqwest::Error>(created);
                        }
                        let who = Impersonation::PrimarySmtpAddress(tenant::mailbox(m));
                        for batch in batches.iter() {
                            let body = soap::envelope(ExchangeVersion::Exchange2016, Some(&who), batch);
                            let text = http
                                .post(&url)
                                .basic_auth(tenant::ADMIN, Some(tenant::PASSWORD))
                                .header("Content-Type", "text/xml; charset=utf-8")
                                .body(body)
                                .send()
                                .await?
                                .text()
                                .await?;
                            created += text.matches(r#"ResponseClass="Success""#).count() as u64;
                        }
                    }
                })
            })
            .collect();
        let mut created = 0;
        for w in workers {
            created += w.await??;
        }
        let mut m = meter.finish(&tenant, name, format!("{contacts} contacts x {mailboxes} mailboxes"), created);
        let expected = (contacts * mailboxes) as u64;
        if created != expected {
            m.note = format!("expected {expected} copies, created {created}");
        }
        Ok(m)
    })
}
