//! Series over Graph, against the Graph emulator: a copy is written with its cancelled and moved
//! occurrences, follows the source when they change (moved again, cancelled later, moved back),
//! and reads back with the same content and the master's final version. A member's own edit of
//! an occurrence is a change of the master (its version moves), as Exchange keeps exceptions on
//! the master.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use exchange_sync_core::connector::{ItemUpdate, NewItem};
use exchange_sync_core::item::{FieldValue, Item, ItemKind};
use exchange_sync_core::{Connector, EntityId, GroupId, OriginStamp, field};
use exchange_sync_graph::event_mapping::{self as mapping, Exception, Modified};
use graph_emulator::GraphEmulatorConfig;
use graph_emulator::calendar::{self, EventShape};
use serde_json::Value;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn series() -> Item {
    let start = utc("2026-03-16T08:00:00Z");
    let mut item = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Weekly all-hands")
        .with(field::LOCATION, "Auditorium")
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::minutes(30)))
        .with(field::START_TIME_ZONE, "W. Europe Standard Time")
        .with(mapping::END_TIME_ZONE, "W. Europe Standard Time")
        .with(field::IS_ALL_DAY, FieldValue::Boolean(false))
        .with(field::REMINDER_IS_SET, FieldValue::Boolean(true))
        .with(field::REMINDER_MINUTES, FieldValue::Integer(15))
        .with(field::LEGACY_FREE_BUSY, "busy")
        .with(field::SENSITIVITY, "normal")
        .with(field::IMPORTANCE, "normal")
        .with(
            field::RECURRENCE,
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NumberedRecurrence(StartDate=2026-03-16,NumberOfOccurrences=5)",
        );
    item.categories = ["Company".to_owned()].into();
    item
}

fn set(item: &mut Item, original: &str, e: &Exception) {
    item.set(&format!("{}{original}", mapping::EXCEPTION_PREFIX), FieldValue::Text(e.encode()));
}

fn moved(start: &str, end: &str, subject: Option<&str>, location: Option<&str>) -> Exception {
    Exception::Modified(Modified {
        start: start.into(),
        end: end.into(),
        subject: subject.map(str::to_owned),
        location: location.map(str::to_owned),
        ..Default::default()
    })
}

/// (start, subject, location) of every instance of a series in March and April 2026, as the
/// emulator shows them.
fn instances(emu: &graph_emulator::RunningGraphEmulator, mailbox: &str, id: &str) -> Vec<(String, String, String)> {
    let q: BTreeMap<String, String> = [
        ("startDateTime".to_owned(), "2026-03-01T00:00:00Z".to_owned()),
        ("endDateTime".to_owned(), "2026-05-01T00:00:00Z".to_owned()),
    ]
    .into();
    let all = calendar::instances(&mut emu.store(), mailbox, None, id, &q, &EventShape::default()).unwrap();
    let mut out: Vec<(String, String, String)> = all
        .iter()
        .map(|i| {
            (
                i["start"]["dateTime"].as_str().unwrap().to_owned(),
                i["subject"].as_str().unwrap_or("").to_owned(),
                i["location"]["displayName"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(a: &str, b: &str, c: &str) -> (String, String, String) {
    (format!("{a}.0000000"), b.to_owned(), c.to_owned())
}

#[tokio::test]
async fn exceptions_are_written_with_the_copy_and_follow_their_changes() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let mailbox = emu.config().address("carol");
    let c = common::fresh_calendar(&client, &mailbox, "Series").await;
    // Cancelled on 23 March (a winter Monday), moved to Tuesday 7 April in room 7.
    let mut item = series();
    set(&mut item, "2026-03-23T08:00:00Z", &Exception::Cancelled);
    set(
        &mut item,
        "2026-04-06T07:00:00Z",
        &moved("2026-04-07T12:00:00Z", "2026-04-07T13:00:00Z", None, Some("Room 7")),
    );
    let origin = OriginStamp::new(GroupId::new("g"), EntityId::new("allhands"));
    let v = c.create(&[NewItem { item: item.clone().into(), origin }]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.version, v.version, "the version answered is the master's after its exceptions");
    assert!(back.item.same_content(&item), "{:#?}\nvs\n{:#?}", back.item.canonical(), item.canonical());
    assert_eq!(
        instances(&emu, &mailbox, v.id.as_str()),
        [
            row("2026-03-16T08:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-03-30T07:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-04-07T12:00:00", "Weekly all-hands", "Room 7"),
            row("2026-04-13T07:00:00", "Weekly all-hands", "Auditorium"),
        ]
    );

    // The source moves the moved one again (another subject) and cancels 13 April.
    let mut changed = item.clone();
    set(
        &mut changed,
        "2026-04-06T07:00:00Z",
        &moved("2026-04-08T12:00:00Z", "2026-04-08T13:00:00Z", Some("All-hands (Wednesday)"), None),
    );
    set(&mut changed, "2026-04-13T07:00:00Z", &Exception::Cancelled);
    let update = |id, expected, item: &Item, previous: &Item| ItemUpdate {
        id,
        expected,
        item: item.clone().into(),
        previous: Some(previous.clone()),
        origin: None,
    };
    let v2 = c.update(&[update(v.id.clone(), v.version.clone(), &changed, &item)]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v2.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.version, v2.version);
    assert!(back.item.same_content(&changed), "{:#?}", back.item.canonical());
    assert_eq!(
        instances(&emu, &mailbox, v.id.as_str()),
        [
            row("2026-03-16T08:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-03-30T07:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-04-08T12:00:00", "All-hands (Wednesday)", "Auditorium"),
        ]
    );

    // The move is undone: the occurrence goes back to its slot with the series' content.
    let mut undone = changed.clone();
    undone.fields.remove(&format!("{}2026-04-06T07:00:00Z", mapping::EXCEPTION_PREFIX));
    let v3 =
        c.update(&[update(v2.id.clone(), v2.version.clone(), &undone, &changed)]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v3.id)).await.unwrap().remove(0).unwrap();
    assert!(back.item.same_content(&undone), "{:#?}", back.item.canonical());
    assert_eq!(
        instances(&emu, &mailbox, v.id.as_str()),
        [
            row("2026-03-16T08:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-03-30T07:00:00", "Weekly all-hands", "Auditorium"),
            row("2026-04-06T07:00:00", "Weekly all-hands", "Auditorium"),
        ]
    );

    // A new pattern (every other week) drops the exceptions, as on Exchange: the copy gets every
    // occurrence back and reads without exceptions.
    let mut retimed = series();
    retimed.set(
        field::RECURRENCE,
        FieldValue::Text(
            "WeeklyRecurrence(Interval=2,DaysOfWeek=Monday)|NumberedRecurrence(StartDate=2026-03-16,NumberOfOccurrences=3)".into(),
        ),
    );
    let v4 =
        c.update(&[update(v3.id.clone(), v3.version.clone(), &retimed, &undone)]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v4.id)).await.unwrap().remove(0).unwrap();
    assert!(back.item.same_content(&retimed), "{:#?}", back.item.canonical());
    assert_eq!(instances(&emu, &mailbox, v.id.as_str()).len(), 3);
}

#[tokio::test]
async fn a_users_edit_of_an_occurrence_moves_the_masters_version() {
    let emu = common::emulator(GraphEmulatorConfig::default()).await;
    let client = common::client(&emu);
    let mailbox = emu.config().address("dave");
    let c = common::fresh_calendar(&client, &mailbox, "Series").await;
    let origin = OriginStamp::new(GroupId::new("g"), EntityId::new("s"));
    let v = c.create(&[NewItem { item: series().into(), origin }]).await.unwrap().remove(0).unwrap();
    let listed = c.list(None).await.unwrap().items;
    assert_eq!(listed.len(), 1, "occurrences are not items: {listed:?}");
    // The user cancels the second occurrence in Outlook (a DELETE on the occurrence).
    let occurrence = format!("{}_OC20260323T080000Z", v.id.as_str());
    calendar::delete_event(&mut emu.store(), &mailbox, None, &occurrence, None).unwrap();
    let listed = c.list(None).await.unwrap().items;
    assert_ne!(listed[0].version, v.version, "the master's version moved");
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.text("recurrence.exception.2026-03-23T08:00:00Z"), Some(mapping::CANCELLED));
    // An update against the old version is refused: the edit is not overwritten.
    let stale = c
        .update(&[ItemUpdate {
            id: v.id.clone(),
            expected: v.version.clone(),
            item: series().into(),
            previous: None,
            origin: None,
        }])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(stale.unwrap_err().kind(), exchange_sync_core::ErrorKind::PreconditionFailed);
    let raw: Value =
        calendar::get_event(&mut emu.store(), &mailbox, None, v.id.as_str(), &EventShape::default()).unwrap();
    assert_eq!(raw["cancelledOccurrences"].as_array().map(Vec::len), Some(1));
}
