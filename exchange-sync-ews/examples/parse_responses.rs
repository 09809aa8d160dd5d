//! Measures parsing of the two responses the engine receives most when it copies many items: a
//! CreateItem response for a batch of 50 contacts, and an IdOnly SyncFolderItems page of 512 creates.
//! Each document goes through the same steps the client and the connector take (envelope, response
//! messages, item ids). Prints microseconds and heap allocations per document; the numbers depend on
//! the machine and on its load.
//!
//!     cargo run --release -p exchange-sync-ews --example parse_responses -- 2000

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use exchange_sync_ews::ParseLimits;
use exchange_sync_ews::internals::scan_item_ids;
use exchange_sync_ews::operation::items::parse_create_item;
use exchange_sync_ews::operation::sync::{ItemChangeEvent, parse_sync_folder_items};
use exchange_sync_ews::soap::parse_envelope;
use exchange_sync_ews::{ItemId, Result};

/// The system allocator, counting calls and bytes so that the measurement can report them.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// Counting needs a global allocator, which is an unsafe trait; it only forwards to the system one.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the layout comes from the caller, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` come from the caller, as `GlobalAlloc::realloc` requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></s:Header><s:Body xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">"#;
const TAIL: &str = "</s:Body></s:Envelope>";

/// An item id of the length Exchange 2013+ uses (base64 of a 100-odd byte entry id).
fn item_id(n: usize) -> String {
    format!(
        "AAMkADk0N2Y0YjA1LTg3ZDItNGVmNi1hOTk4LWQ2NTg3ZTM2OWM0ZgBGAAAAAADsYbYUdCHOQrKwcFHd1g7nBwDV2qpzg3CyTbZlGiVRAAAAAAEOAADV2qpzg3CyTbZlGiVRAAAA{n:08}AAA="
    )
}

fn change_key(n: usize) -> String {
    format!("EQAAABYAAADV2qpzg3CyTbZlGiVRAAAA{n:08}")
}

fn create_item_response(messages: usize) -> String {
    let mut s = String::from(HEAD);
    s.push_str("<m:CreateItemResponse><m:ResponseMessages>");
    for n in 0..messages {
        s.push_str(&format!(
            r#"<m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Contact><t:ItemId Id="{}" ChangeKey="{}"/></t:Contact></m:Items></m:CreateItemResponseMessage>"#,
            item_id(n),
            change_key(n)
        ));
    }
    s.push_str("</m:ResponseMessages></m:CreateItemResponse>");
    s.push_str(TAIL);
    s
}

fn sync_folder_items_response(changes: usize) -> String {
    let mut s = String::from(HEAD);
    s.push_str(r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>"#);
    s.push_str("<m:SyncState>H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0oQiAYBMk2JBAEOzBiM3mkuwdaUcjKasqgcplVmVdZhZAzO2dvPfee++999577733</m:SyncState>");
    s.push_str("<m:IncludesLastItemInRange>false</m:IncludesLastItemInRange><m:Changes>");
    for n in 0..changes {
        s.push_str(&format!(
            r#"<t:Create><t:Contact><t:ItemId Id="{}" ChangeKey="{}"/></t:Contact></t:Create>"#,
            item_id(n),
            change_key(n)
        ));
    }
    s.push_str("</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>");
    s.push_str(TAIL);
    s
}

/// The envelope alone: the element tree and moving the operation element out of it.
fn envelope_only(doc: &[u8]) -> Result<usize> {
    let response = parse_envelope("any", doc, ParseLimits::default())?;
    Ok(response.body.children.len())
}

/// What the client and the connector do with a CreateItem response: the created ids.
fn created_ids(doc: &[u8]) -> Result<usize> {
    let response = parse_envelope("CreateItem", doc, ParseLimits::default())?;
    Ok(parse_create_item(response.body)?.into_iter().flatten().count())
}

/// What the client does first with a CreateItem response: the ids read without the element tree
/// (`exchange_sync_ews::internals`).
fn scanned_ids(doc: &[u8]) -> Result<usize> {
    // Not the plain case would count 0 ids, which `measure` reports.
    Ok(scan_item_ids(doc, ParseLimits::default()).map_or(0, |s| s.ids.len()))
}

/// What the client and the connector do with an IdOnly SyncFolderItems page: the changed ids.
fn synced_ids(doc: &[u8]) -> Result<usize> {
    let response = parse_envelope("SyncFolderItems", doc, ParseLimits::default())?;
    let page = parse_sync_folder_items(response.body)?;
    let ids: Vec<ItemId> = page
        .changes
        .into_iter()
        .filter_map(|c| match c {
            ItemChangeEvent::Create(i) | ItemChangeEvent::Update(i) => i.into_id(),
            _ => None,
        })
        .collect();
    Ok(ids.len())
}

fn measure(name: &str, doc: &str, expected: usize, rounds: u32, step: fn(&[u8]) -> Result<usize>) -> Result<()> {
    assert_eq!(step(doc.as_bytes())?, expected, "{name}: every id is read");
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let bytes = BYTES.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(step(black_box(doc.as_bytes()))?);
    }
    let elapsed = start.elapsed();
    let per = |v: u64| v as f64 / f64::from(rounds);
    println!(
        "{name:<34} {:>6} KiB  {:>9.1} µs/doc  {:>8.0} allocations/doc  {:>9.0} bytes allocated/doc",
        doc.len() / 1024,
        elapsed.as_secs_f64() * 1e6 / f64::from(rounds),
        per(ALLOCATIONS.load(Ordering::Relaxed) - allocations),
        per(BYTES.load(Ordering::Relaxed) - bytes),
    );
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let create = create_item_response(50);
    let sync = sync_folder_items_response(512);
    // Like the tests, leave the documents for schema validation when asked to.
    if let Some(dir) = std::env::var_os("EWS_TRACE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("parse_responses-createitem.xml"), &create)?;
        std::fs::write(dir.join("parse_responses-syncfolderitems.xml"), &sync)?;
    }
    measure("CreateItem, 50 contacts: envelope", &create, 1, rounds, envelope_only)?;
    measure("CreateItem, 50 contacts: ids", &create, 50, rounds, created_ids)?;
    measure("CreateItem, 50 contacts: ids scanned", &create, 50, rounds, scanned_ids)?;
    measure("SyncFolderItems, 512: envelope", &sync, 1, rounds, envelope_only)?;
    measure("SyncFolderItems, 512: ids", &sync, 512, rounds, synced_ids)?;
    Ok(())
}
