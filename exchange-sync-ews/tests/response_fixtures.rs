//! The response parsers on documents shaped like real Exchange 2010, 2013 and 2016 output: different
//! prefixes and header layouts, per-message errors, and elements a newer server adds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use exchange_sync_core::{OriginStamp, field};
use exchange_sync_ews::mapping::to_item;
use exchange_sync_ews::operation::sync::ItemChangeEvent;
use exchange_sync_ews::operation::{directory, folders, items, notifications, sync};
use exchange_sync_ews::property::{deleted_count_total, local_commit_time_max};
use exchange_sync_ews::soap::parse_envelope;
use exchange_sync_ews::streaming::EnvelopeSplitter;
use exchange_sync_ews::{Element, ParseLimits};
use exchange_sync_ews::{ErrorKind, EventKind, ItemType};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn body(name: &str) -> Element {
    parse_envelope("fixture", &fixture(name), ParseLimits::default()).unwrap().body
}

#[test]
fn fixtures_are_valid_exchange_documents() {
    // The fixtures stand for real servers: apart from the one that deliberately carries elements of a
    // future schema, each validates against the EWS schema.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".xml") && !name.contains("future") {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    common::validate(&[dir.path()]);
}

#[test]
fn exchange2010_contact_with_a_missing_neighbour() {
    let r = parse_envelope("GetItem", &fixture("exchange2010-getitem-contact.xml"), ParseLimits::default()).unwrap();
    assert_eq!(r.server_version.as_ref().and_then(|v| v.major), Some(14));
    let results = items::parse_get_item(r.body).unwrap();
    assert_eq!(results.len(), 2);
    let contact = results[0].as_ref().unwrap();
    assert_eq!(contact.item_type, ItemType::Contact);
    assert_eq!(contact.id().unwrap().change_key.as_deref(), Some("EQAAABYAAACmCvb4LF7kTI3nVNvf4oSYAAAAAB0Y"));
    let (item, origin) = to_item(contact);
    assert_eq!(origin, Some("xsync1:7:company:0a1b2c".parse::<OriginStamp>().unwrap()));
    assert_eq!(item.text(field::GIVEN_NAME), Some("Jane"));
    assert_eq!(item.text(field::SURNAME), Some("Doe"));
    assert_eq!(item.text(field::EMAIL2), Some("jane.doe@example.test"));
    assert_eq!(item.text(field::PHONE_MOBILE), Some("+1 217 555 0199"));
    assert_eq!(item.get(field::PHONE_HOME), None, "empty entries are absent");
    assert_eq!(item.text("address.business.country"), Some("United States"));
    assert_eq!(item.text(field::SENSITIVITY), Some("normal"));
    assert_eq!(item.categories.len(), 2);
    assert!(item.body.as_ref().unwrap().content.contains("Prefers e-mail."));
    assert!(item.get(field::SERVER_LAST_MODIFIED).is_some());
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn exchange2013_find_item_paging() {
    let page = items::parse_find_item(body("exchange2013-finditem-page.xml")).unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(!page.includes_last);
    assert_eq!(page.next_offset, Some(2));
    assert_eq!(page.total, Some(3));
    assert_eq!(page.items[1].item_type, ItemType::DistributionList);
}

#[test]
fn exchange2013_recurring_master() {
    let results = items::parse_get_item(body("exchange2013-getitem-recurring.xml")).unwrap();
    let (item, _) = to_item(results[0].as_ref().unwrap());
    assert_eq!(
        item.text(field::RECURRENCE),
        Some(
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|EndDateRecurrence(StartDate=2027-01-04,EndDate=2027-06-28)"
        )
    );
    assert_eq!(item.text(field::ATTENDEES), Some("required:alice@contoso.test,bob@contoso.test"));
    assert_eq!(item.text(field::LEGACY_FREE_BUSY), Some("busy"));
    assert_eq!(item.text(field::IMPORTANCE), Some("high"));
    assert_eq!(item.text(field::START_TIME_ZONE), Some("W. Europe Standard Time"));
    assert_eq!(item.text(exchange_sync_ews::mapping::END_TIME_ZONE), Some("W. Europe Standard Time"));
    // Exceptions are read, but stay out of the content (copies are written without them).
    let text_list = |name: &str| match item.get(name) {
        Some(exchange_sync_core::FieldValue::TextList(l)) => l.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(text_list(exchange_sync_ews::mapping::DELETED_OCCURRENCES), ["2027-01-11T09:00:00Z"]);
    assert_eq!(
        text_list(exchange_sync_ews::mapping::MODIFIED_OCCURRENCES),
        ["2027-01-13T09:00:00Z -> 2027-01-13T10:00:00Z/2027-01-13T11:00:00Z"]
    );
    assert!(!item.canonical().fields.contains_key(exchange_sync_ews::mapping::DELETED_OCCURRENCES));
    assert_eq!(item.get(field::REMINDER_MINUTES), Some(&exchange_sync_core::FieldValue::Integer(15)));
    assert_eq!(item.body.as_ref().unwrap().format, exchange_sync_core::BodyFormat::Html);
}

#[test]
fn exchange2016_sync_with_unknown_elements() {
    let page = sync::parse_sync_folder_items(body("exchange2016-syncfolderitems-future.xml")).unwrap();
    assert!(!page.includes_last);
    assert!(page.sync_state.starts_with("H4sI"));
    assert_eq!(page.changes.len(), 4, "the unknown change kind is skipped");
    assert!(matches!(&page.changes[0], ItemChangeEvent::Create(i) if i.item_type == ItemType::Contact));
    assert!(matches!(&page.changes[2], ItemChangeEvent::Delete(id) if id.id == "AAMkAGRkYmQ1ZDEwBGAAA3"));
    assert!(matches!(&page.changes[3], ItemChangeEvent::ReadFlagChange(_, true)));
}

#[test]
fn batch_entries_fail_one_by_one() {
    let r = items::parse_create_item(body("exchange2010-createitem-batch-stopped.xml")).unwrap();
    assert_eq!(r[0].as_ref().unwrap().id, "AAMkNew1=");
    let busy = r[1].as_ref().unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Throttled);
    assert_eq!(busy.retry_after(), Some(Duration::from_millis(1200)));
    assert_eq!(r[2].as_ref().unwrap_err().kind(), ErrorKind::BatchStopped);

    let u = items::parse_update_item(body("exchange2013-updateitem-conflict.xml")).unwrap();
    assert_eq!(u[0].as_ref().unwrap_err().kind(), ErrorKind::PreconditionFailed);
    assert_eq!(u[1].as_ref().unwrap().change_key.as_deref(), Some("EQAAAB3"));

    let e = sync::parse_sync_folder_items(body("exchange2016-syncfolderitems-invalid-state.xml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidSyncState);
}

#[test]
fn folder_probe_and_directory() {
    let f = folders::parse_get_folder(&body("exchange2013-getfolder-probe.xml")).unwrap().remove(0).unwrap();
    assert_eq!(f.folder_type, "ContactsFolder");
    assert_eq!(f.total_count, Some(1250));
    assert_eq!(f.extended(&local_commit_time_max()), Some("2016-04-05T18:20:22Z"));
    assert_eq!(f.extended(&deleted_count_total()), Some("17"));
    let members = directory::parse_expand_dl(&body("exchange2010-expanddl.xml")).unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].mailbox_type.as_deref(), Some("PublicDL"));
}

#[test]
fn notifications_pull_and_streaming() {
    let s = notifications::parse_subscribe(&body("exchange2016-subscribe.xml")).unwrap();
    assert_eq!(s.watermark.as_deref(), Some("AQAAAHgSgNkBAAAA"));
    let n = notifications::parse_get_events(&body("exchange2016-getevents.xml")).unwrap();
    assert_eq!(n.events.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![EventKind::Modified, EventKind::Moved]);
    assert_eq!(n.last_watermark(), Some("AQAAAHoSgNkBAAAA"));
    assert!(n.events[1].old_parent_folder_id.is_some());

    let mut splitter = EnvelopeSplitter::new(1 << 20);
    let docs = splitter.push(&fixture("exchange2016-streaming-closed.stream")).unwrap();
    assert_eq!(docs.len(), 3);
    let batches: Vec<_> = docs
        .iter()
        .map(|d| {
            notifications::parse_streaming_batch(&parse_envelope("s", d, ParseLimits::default()).unwrap().body).unwrap()
        })
        .collect();
    assert!(batches[0].notifications.is_empty() && !batches[0].closed);
    assert_eq!(batches[1].notifications[0].events[0].kind, EventKind::Deleted);
    assert!(batches[2].closed);
    assert_eq!(batches[2].failed_subscriptions, vec!["FgBkYjEw".to_owned()]);
    assert_eq!(batches[2].error.as_deref(), Some("ErrorSubscriptionNotFound"));
}

#[test]
fn truncated_and_hostile_documents_are_errors_not_panics() {
    let full = fixture("exchange2010-getitem-contact.xml");
    for cut in (0..full.len()).step_by(97) {
        let _ = parse_envelope("cut", &full[..cut], ParseLimits::default()).and_then(|r| items::parse_get_item(r.body));
    }
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&b;</s:Body></s:Envelope>"#;
    assert_eq!(parse_envelope("bomb", bomb, ParseLimits::default()).unwrap_err().kind(), ErrorKind::Protocol);
}
