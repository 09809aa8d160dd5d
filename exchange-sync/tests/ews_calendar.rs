//! A shared calendar with a recurring series through a sync group against the EWS emulator over
//! HTTP: the hub's cancelled and moved occurrences reach a one-way and two-way members, checked
//! occurrence by occurrence through CalendarView; a two-way member's cancellation and move reach
//! the hub and the others; later changes on the hub follow; a one-way member's move is put back;
//! two members moving the same occurrence differently is a conflict, resolved and logged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use exchange_sync::config::{GroupConfig, HubFolder, MemberConfig, TargetFolder, WellKnownFolder};
use exchange_sync::{ItemFolder, RunOptions};
use exchange_sync_ews::operation::items::DeleteType;
use exchange_sync_ews::{BaseShape, EwsItem, Field, FieldUpdate, FieldValue, ItemChange, ItemId, ItemShape, ItemType};

const CALENDAR_GROUP: &str = "company-calendar";
const TWO_WAY: [&str; 2] = ["alice@contoso.test", "bob@contoso.test"];
const ONE_WAY: &str = "carol@contoso.test";

fn target() -> TargetFolder {
    TargetFolder::Named { parent: WellKnownFolder::Calendar, name: "Company Calendar".into() }
}

fn calendar_group() -> GroupConfig {
    let mut group = GroupConfig::new(CALENDAR_GROUP, "lab", HubFolder::PublicFolder("Company Calendar".into()));
    for m in TWO_WAY {
        group = group.with_member(MemberConfig::two_way(m));
    }
    group = group.with_member(MemberConfig::one_way(ONE_WAY));
    group.default_target = target();
    group
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// What a calendar shows from March to May 2026: start, end, subject, location per entry.
async fn view(folder: &ItemFolder) -> Vec<(String, String, String, String)> {
    view_items(folder)
        .await
        .iter()
        .map(|i| {
            let text = |n: &str| i.text(n).unwrap_or("").to_owned();
            (text("Start"), text("End"), text("Subject"), text("Location"))
        })
        .collect()
}

async fn view_items(folder: &ItemFolder) -> Vec<EwsItem> {
    let shape = ItemShape { base: BaseShape::AllProperties, body_type: None, additional: vec![] };
    let page = folder
        .client()
        .find_calendar_view(folder.folder(), &shape, t("2026-03-01T00:00:00Z"), t("2026-05-01T00:00:00Z"), 1000)
        .await
        .unwrap();
    page.items
}

/// The id of the occurrence starting at `start`.
async fn occurrence(folder: &ItemFolder, start: &str) -> ItemId {
    let items = view_items(folder).await;
    let o = items
        .into_iter()
        .find(|i| i.text("Start") == Some(start))
        .unwrap_or_else(|| panic!("no occurrence at {start}"));
    ItemId::new(o.id().unwrap().id)
}

/// A user cancels one occurrence (as Outlook or a phone does: DeleteItem on the occurrence).
async fn cancel(folder: &ItemFolder, start: &str) {
    let id = occurrence(folder, start).await;
    for r in folder.client().delete_items(&[id], DeleteType::HardDelete).await.unwrap() {
        r.unwrap();
    }
}

/// A user moves one occurrence (UpdateItem on the occurrence), optionally to another room.
async fn move_occurrence(folder: &ItemFolder, start: &str, to: &str, minutes: i64, location: Option<&str>) {
    let id = occurrence(folder, start).await;
    let mut updates = vec![
        FieldUpdate::Set(Field::Simple { name: "Start".into(), value: FieldValue::DateTime(t(to)) }),
        FieldUpdate::Set(Field::Simple {
            name: "End".into(),
            value: FieldValue::DateTime(t(to) + Duration::minutes(minutes)),
        }),
    ];
    if let Some(l) = location {
        updates.push(FieldUpdate::Set(Field::text("Location", l)));
    }
    let change = ItemChange { id, item_type: ItemType::CalendarItem, updates };
    for r in folder.client().update_items(&[change]).await.unwrap() {
        r.unwrap();
    }
}

async fn run(service: &exchange_sync::SyncService) -> exchange_sync::RunReport {
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_exceptions_reach_every_member_and_come_back_from_two_way_members() {
    let emu = emulator(0).await;
    let config = config(&emu, calendar_group());
    let service = exchange_sync::SyncService::connect(config.clone()).await.unwrap();
    let folders = Folders::new(&config).await;
    let hub = folders.ews.open_public_folder("lab", "Company Calendar").await.unwrap();

    // The hub's series already has Easter Monday cancelled; the all-hands of 16 March moves to
    // Tuesday afternoon in room 2.
    move_occurrence(&hub, "2026-03-16T09:00:00Z", "2026-03-17T14:00:00Z", 30, Some("Room 2")).await;
    let hub_view = view(&hub).await;
    assert!(hub_view.iter().all(|o| o.0 != "2026-04-06T09:00:00Z"), "Easter Monday is cancelled");
    assert!(hub_view.iter().any(|o| o.0 == "2026-03-17T14:00:00Z" && o.3 == "Room 2"));

    run(&service).await;
    let mut members: Vec<ItemFolder> = Vec::new();
    for m in [TWO_WAY[0], TWO_WAY[1], ONE_WAY] {
        members.push(folders.ews.open_mailbox_folder("lab", m, &target(), true).await.unwrap());
    }
    for m in &members {
        assert_eq!(view(m).await, hub_view, "{}", m.describe());
    }

    // Alice (two-way) cancels 13 April and moves 20 April to Tuesday 10:00.
    let (alice, bob, carol) = (&members[0], &members[1], &members[2]);
    cancel(alice, "2026-04-13T09:00:00Z").await;
    move_occurrence(alice, "2026-04-20T09:00:00Z", "2026-04-21T10:00:00Z", 30, None).await;
    run(&service).await;
    run(&service).await;
    let hub_view = view(&hub).await;
    assert!(hub_view.iter().all(|o| o.0 != "2026-04-13T09:00:00Z"), "{hub_view:#?}");
    assert!(hub_view.iter().any(|o| o.0 == "2026-04-21T10:00:00Z"));
    for m in &members {
        assert_eq!(view(m).await, hub_view, "{}", m.describe());
    }

    // Later on the hub: 23 March is cancelled, the moved 16 March moves again.
    cancel(&hub, "2026-03-23T09:00:00Z").await;
    move_occurrence(&hub, "2026-03-17T14:00:00Z", "2026-03-18T15:00:00Z", 45, None).await;
    // Carol (one-way) moves 30 March on her own: put back.
    move_occurrence(carol, "2026-03-30T09:00:00Z", "2026-03-30T16:00:00Z", 30, None).await;
    run(&service).await;
    run(&service).await;
    let hub_view = view(&hub).await;
    assert!(hub_view.iter().any(|o| o.0 == "2026-03-18T15:00:00Z" && o.1 == "2026-03-18T15:45:00Z"));
    assert!(hub_view.iter().any(|o| o.0 == "2026-03-30T09:00:00Z"), "carol's move stays hers: {hub_view:#?}");
    for m in &members {
        assert_eq!(view(m).await, hub_view, "{}", m.describe());
    }

    // Alice and Bob move 27 April differently: one wins by the group's policy, the other is in
    // the conflict log under the occurrence's field.
    move_occurrence(alice, "2026-04-27T09:00:00Z", "2026-04-28T09:00:00Z", 30, None).await;
    move_occurrence(bob, "2026-04-27T09:00:00Z", "2026-04-29T09:00:00Z", 30, None).await;
    run(&service).await;
    run(&service).await;
    let log = service.conflicts(Some(CALENDAR_GROUP)).await.unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].field, format!("{}2026-04-27T09:00:00Z", exchange_sync_ews::mapping::EXCEPTION_PREFIX));
    let hub_view = view(&hub).await;
    assert_eq!(hub_view.iter().filter(|o| o.0 == "2026-04-28T09:00:00Z" || o.0 == "2026-04-29T09:00:00Z").count(), 1);
    for m in &members {
        assert_eq!(view(m).await, hub_view, "{}", m.describe());
    }
    emu.shutdown().await;
}

/// A series in Berlin created on the hub reaches every member at 09:00 local before and after
/// the change to summer time, on Exchange 2007 SP1 (`MeetingTimeZone`) as on 2016
/// (`StartTimeZone` / `EndTimeZone`).
async fn berlin_series_keeps_its_wall_clock_time(version: ews_emulator::ServerVersion) {
    use exchange_sync_core::{FieldValue as CoreValue, Item, ItemKind, field};
    let emu =
        emulator_with(ews_emulator::EmulatorConfig { contacts: 0, server_version: version, ..Default::default() })
            .await;
    let config = config(&emu, calendar_group());
    let service = exchange_sync::SyncService::connect(config.clone()).await.unwrap();
    let folders = Folders::new(&config).await;
    let hub = folders.ews.open_public_folder("lab", "Company Calendar").await.unwrap();
    let start = t("2026-03-16T08:00:00Z");
    let series = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Berlin stand-up")
        .with(field::START, CoreValue::DateTime(start))
        .with(field::END, CoreValue::DateTime(start + Duration::minutes(15)))
        .with(field::START_TIME_ZONE, "W. Europe Standard Time")
        .with(exchange_sync_ews::mapping::END_TIME_ZONE, "W. Europe Standard Time")
        .with(
            field::RECURRENCE,
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NumberedRecurrence(StartDate=2026-03-16,NumberOfOccurrences=4)",
        );
    hub.create(&series).await.unwrap();
    run(&service).await;
    let expected = ["2026-03-16T08:00:00Z", "2026-03-23T08:00:00Z", "2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z"];
    let mut all = vec![hub.clone()];
    for m in [TWO_WAY[0], TWO_WAY[1], ONE_WAY] {
        all.push(folders.ews.open_mailbox_folder("lab", m, &target(), true).await.unwrap());
    }
    for folder in all {
        let starts: Vec<String> =
            view(&folder).await.into_iter().filter(|o| o.2 == "Berlin stand-up").map(|o| o.0).collect();
        assert_eq!(starts, expected, "{} ({version:?})", folder.describe());
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_keeps_its_wall_clock_time_on_exchange_2016() {
    berlin_series_keeps_its_wall_clock_time(ews_emulator::ServerVersion::Exchange2016).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_keeps_its_wall_clock_time_on_exchange_2007_sp1() {
    berlin_series_keeps_its_wall_clock_time(ews_emulator::ServerVersion::Exchange2007Sp1).await;
}
