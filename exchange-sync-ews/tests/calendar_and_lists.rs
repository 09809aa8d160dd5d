//! Calendar items with time zones (all-day events included) and distribution lists with members,
//! through the mailbox connector against the emulator: written, read back, updated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use ews_emulator::{EmulatorConfig, ServerVersion};
use exchange_sync_core::{
    Connector, EntityId, FieldValue, GroupId, Item, ItemKind, ItemUpdate, NewItem, OriginStamp, field,
};
use exchange_sync_ews::*;

fn all_day_in_berlin() -> Item {
    // 15 March 2027, midnight to midnight in Berlin (UTC+1).
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-14T23:00:00Z").unwrap().with_timezone(&chrono::Utc);
    Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Company holiday")
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::days(1)))
        .with(field::IS_ALL_DAY, FieldValue::Boolean(true))
        .with(field::LEGACY_FREE_BUSY, "free")
        .with(field::START_TIME_ZONE, "W. Europe Standard Time")
        .with(mapping::END_TIME_ZONE, "W. Europe Standard Time")
}

fn calendar(client: &EwsClient) -> EwsFolderConnector {
    EwsFolderConnector::mailbox_folder(client.clone(), FolderRef::distinguished(DistinguishedFolder::Calendar), "cal")
}

fn origin(n: &str) -> OriginStamp {
    OriginStamp::new(GroupId::new("calendar"), EntityId::new(n))
}

#[tokio::test]
async fn time_zones_are_written_read_and_updated() {
    let emu = common::small_tenant().await;
    let c = calendar(&common::as_user(&emu, "alice"));
    let item = all_day_in_berlin();
    let v =
        c.create(&[NewItem { item: item.clone().into(), origin: origin("holiday") }]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.canonical(), item.canonical());
    assert_eq!(back.item.text(field::START_TIME_ZONE), Some("W. Europe Standard Time"));

    // The same event moved to New York: zones and times change together.
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-15T04:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let moved = item
        .clone()
        .with(field::START_TIME_ZONE, "Eastern Standard Time")
        .with(mapping::END_TIME_ZONE, "Eastern Standard Time")
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::days(1)));
    let update = ItemUpdate {
        id: v.id.clone(),
        expected: v.version,
        item: moved.clone().into(),
        previous: Some(item),
        origin: None,
    };
    let v2 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(&[v2.id]).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.canonical(), moved.canonical());
    emu.shutdown().await;
}

#[tokio::test]
async fn exchange_2007_round_trips_time_zones_as_meeting_time_zone() {
    let emu = common::emulator(EmulatorConfig {
        contacts: 0,
        server_version: ServerVersion::Exchange2007Sp1,
        ..Default::default()
    })
    .await;
    let alice = common::as_user(&emu, "alice");
    // Negotiate the version down first.
    alice.get_folder(&FolderRef::distinguished(DistinguishedFolder::Calendar), &FolderShape::default()).await.unwrap();
    assert_eq!(alice.version(), ExchangeVersion::Exchange2007Sp1);
    let c = calendar(&alice);
    let item = all_day_in_berlin();
    let v = c.create(&[NewItem { item: item.clone().into(), origin: origin("old") }]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    // Written as MeetingTimeZone (no StartTimeZone in the 2007 schema), read back as both zones.
    let stored = emu.store().items_in("alice@contoso.test", "calendar").unwrap();
    let zone = stored[0].item.field("MeetingTimeZone").expect("MeetingTimeZone");
    assert_eq!(zone.attr("TimeZoneName"), Some("W. Europe Standard Time"));
    assert_eq!(zone.child_text("BaseOffset"), Some("-PT1H"));
    assert!(stored[0].item.field("StartTimeZone").is_none());
    assert_eq!(back.item.canonical(), item.canonical());
    assert_eq!(back.item.get(field::IS_ALL_DAY), Some(&FieldValue::Boolean(true)));

    // A series in Berlin keeps 09:00 local across the change to summer time on 2007 too.
    let series = series();
    let v2 = c
        .create(&[NewItem { item: series.clone().into(), origin: origin("weekly") }])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let back = c.get(&[v2.id]).await.unwrap().remove(0).unwrap();
    assert!(back.item.same_content(&series), "{:#?}", back.item.canonical());
    let starts: Vec<String> = occurrences(&alice).await.into_iter().map(|o| o.0).collect();
    assert_eq!(
        starts,
        [
            "2026-03-16T08:00:00Z",
            "2026-03-23T08:00:00Z",
            "2026-03-30T07:00:00Z",
            "2026-04-06T07:00:00Z",
            "2026-04-13T07:00:00Z"
        ]
    );
    // Moving the zone is an update of MeetingTimeZone.
    let moved = item
        .clone()
        .with(field::START_TIME_ZONE, "Pacific Standard Time")
        .with(mapping::END_TIME_ZONE, "Pacific Standard Time");
    let update = ItemUpdate {
        id: v.id.clone(),
        expected: v.version,
        item: moved.clone().into(),
        previous: Some(item),
        origin: None,
    };
    let v3 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(&[v3.id]).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.text(field::START_TIME_ZONE), Some("Pacific Standard Time"));
    assert_eq!(back.item.canonical(), moved.canonical());
    emu.shutdown().await;
}

#[tokio::test]
async fn distribution_list_members_are_written_read_and_updated() {
    let emu = common::small_tenant().await;
    let c = EwsFolderConnector::mailbox_folder(
        common::as_user(&emu, "bob"),
        FolderRef::distinguished(DistinguishedFolder::Contacts),
        "bob/contacts",
    );
    let members = |list: &[&str]| FieldValue::TextList(list.iter().map(|s| (*s).to_owned()).collect());
    let list = Item::new(ItemKind::DistributionList).with(field::DISPLAY_NAME, "Project team").with(
        mapping::MEMBERS,
        members(&["Alice Wilson <SMTP:alice@contoso.test>", "Zoë Müller <SMTP:zoe@example.test>"]),
    );
    let v =
        c.create(&[NewItem { item: list.clone().into(), origin: origin("team") }]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.kind, ItemKind::DistributionList);
    assert_eq!(back.item.canonical(), list.canonical());

    // A member leaves, another joins.
    let changed = list
        .clone()
        .with(mapping::MEMBERS, members(&["Zoë Müller <SMTP:zoe@example.test>", "Carol <SMTP:carol@contoso.test>"]));
    let update = ItemUpdate {
        id: v.id.clone(),
        expected: v.version,
        item: changed.clone().into(),
        previous: Some(list),
        origin: None,
    };
    let v2 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(&[v2.id]).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.canonical(), changed.canonical());
    emu.shutdown().await;
}

#[tokio::test]
async fn recurrence_exceptions_are_content_of_the_copies() {
    let emu = common::small_tenant().await;
    let folder = common::public_folder(&emu, "Company Calendar").await;
    let hub = EwsFolderConnector::public_folder(common::public(&emu), folder, "Public/Company Calendar");
    let listed = hub.list(None).await.unwrap();
    let ids: Vec<_> = listed.items.iter().map(|i| i.id.clone()).collect();
    let items: Vec<Item> = hub.get(&ids).await.unwrap().into_iter().map(|r| r.unwrap().item).collect();
    let master = items.iter().find(|i| i.get(field::RECURRENCE).is_some()).expect("the recurring event");
    assert_eq!(
        master.get(mapping::DELETED_OCCURRENCES),
        Some(&FieldValue::TextList(vec!["2026-04-06T09:00:00Z".into()]))
    );
    assert_eq!(master.text(&format!("{}2026-04-06T09:00:00Z", mapping::EXCEPTION_PREFIX)), Some(mapping::CANCELLED));
    // A copy is written with the cancelled occurrence: the same content as the master.
    let alice = calendar(&common::as_user(&emu, "alice"));
    let v = alice
        .create(&[NewItem { item: master.clone().into(), origin: origin("weekly") }])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let copy = alice.get(&[v.id]).await.unwrap().remove(0).unwrap().item;
    assert_eq!(
        copy.get(mapping::DELETED_OCCURRENCES),
        Some(&FieldValue::TextList(vec!["2026-04-06T09:00:00Z".into()]))
    );
    assert!(copy.same_content(master));
    emu.shutdown().await;
}

/// Starts of the occurrences (and single items) of alice's calendar in March and April 2026,
/// with their subject and location, through CalendarView.
async fn occurrences(client: &EwsClient) -> Vec<(String, String, String)> {
    let from = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let page = client
        .find_calendar_view(
            &FolderRef::distinguished(DistinguishedFolder::Calendar),
            &ItemShape { base: BaseShape::AllProperties, body_type: None, additional: vec![] },
            from,
            from + chrono::Duration::days(61),
            1000,
        )
        .await
        .unwrap();
    page.items
        .iter()
        .map(|i| {
            (
                i.text("Start").unwrap_or("").to_owned(),
                i.text("Subject").unwrap_or("").to_owned(),
                i.text("Location").unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn series() -> Item {
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-16T08:00:00Z").unwrap().with_timezone(&chrono::Utc);
    Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Weekly all-hands")
        .with(field::LOCATION, "Auditorium")
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::minutes(30)))
        .with(field::START_TIME_ZONE, "W. Europe Standard Time")
        .with(mapping::END_TIME_ZONE, "W. Europe Standard Time")
        .with(
            field::RECURRENCE,
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NumberedRecurrence(StartDate=2026-03-16,NumberOfOccurrences=5)",
        )
}

fn exception(original: &str, e: mapping::Exception) -> (String, FieldValue) {
    (format!("{}{original}", mapping::EXCEPTION_PREFIX), FieldValue::Text(e.encode()))
}

fn moved(start: &str, end: &str, location: Option<&str>) -> mapping::Exception {
    mapping::Exception::Modified(mapping::Modified {
        start: start.into(),
        end: end.into(),
        location: location.map(str::to_owned),
        ..Default::default()
    })
}

#[tokio::test]
async fn exceptions_are_written_with_the_copy_and_follow_their_changes() {
    let emu = common::small_tenant().await;
    let client = common::as_user(&emu, "carol");
    let c = calendar(&client);
    // Cancelled on 23 March (a winter Monday), moved to Tuesday 7 April in room 7.
    let mut item = series();
    for (k, v) in [
        exception("2026-03-23T08:00:00Z", mapping::Exception::Cancelled),
        exception("2026-04-06T07:00:00Z", moved("2026-04-07T12:00:00Z", "2026-04-07T13:00:00Z", Some("Room 7"))),
    ] {
        item.set(&k, v);
    }
    let v = c
        .create(&[NewItem { item: item.clone().into(), origin: origin("allhands") }])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let back = c.get(std::slice::from_ref(&v.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.version, v.version, "the version answered is the master's after its exceptions");
    assert!(back.item.same_content(&item), "{:#?}\nvs\n{:#?}", back.item.canonical(), item.canonical());
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        occurrences(&client).await,
        [
            s("2026-03-16T08:00:00Z", "Weekly all-hands", "Auditorium"),
            s("2026-03-30T07:00:00Z", "Weekly all-hands", "Auditorium"),
            s("2026-04-07T12:00:00Z", "Weekly all-hands", "Room 7"),
            s("2026-04-13T07:00:00Z", "Weekly all-hands", "Auditorium"),
        ]
    );

    // The hub moves the moved one again (another subject), cancels 13 April.
    let mut changed = item.clone();
    let again = mapping::Exception::Modified(mapping::Modified {
        start: "2026-04-08T12:00:00Z".into(),
        end: "2026-04-08T13:00:00Z".into(),
        subject: Some("All-hands (Wednesday)".into()),
        ..Default::default()
    });
    for (k, v) in
        [exception("2026-04-06T07:00:00Z", again), exception("2026-04-13T07:00:00Z", mapping::Exception::Cancelled)]
    {
        changed.set(&k, v);
    }
    let update = ItemUpdate {
        id: v.id.clone(),
        expected: v.version.clone(),
        item: changed.clone().into(),
        previous: Some(item.clone()),
        origin: None,
    };
    let v2 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v2.id)).await.unwrap().remove(0).unwrap();
    assert_eq!(back.version, v2.version);
    assert!(back.item.same_content(&changed));
    assert_eq!(
        occurrences(&client).await,
        [
            s("2026-03-16T08:00:00Z", "Weekly all-hands", "Auditorium"),
            s("2026-03-30T07:00:00Z", "Weekly all-hands", "Auditorium"),
            s("2026-04-08T12:00:00Z", "All-hands (Wednesday)", "Auditorium"),
        ]
    );

    // The move is undone on the hub: the occurrence goes back to its slot.
    let mut undone = changed.clone();
    undone.fields.remove(&format!("{}2026-04-06T07:00:00Z", mapping::EXCEPTION_PREFIX));
    let update = ItemUpdate {
        id: v2.id.clone(),
        expected: v2.version.clone(),
        item: undone.clone().into(),
        previous: Some(changed.clone()),
        origin: None,
    };
    let v3 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(std::slice::from_ref(&v3.id)).await.unwrap().remove(0).unwrap();
    assert!(back.item.same_content(&undone), "{:#?}", back.item.canonical());
    assert_eq!(occurrences(&client).await.len(), 3);
    assert_eq!(occurrences(&client).await[2], s("2026-04-06T07:00:00Z", "Weekly all-hands", "Auditorium"));

    // A pattern change on the hub restores every occurrence (the hub's exceptions are gone too).
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-16T09:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let retimed = series()
        .with(field::START, FieldValue::DateTime(start))
        .with(field::END, FieldValue::DateTime(start + chrono::Duration::minutes(30)));
    let update = ItemUpdate {
        id: v3.id.clone(),
        expected: v3.version.clone(),
        item: retimed.clone().into(),
        previous: Some(undone),
        origin: None,
    };
    let v4 = c.update(&[update]).await.unwrap().remove(0).unwrap();
    let back = c.get(&[v4.id]).await.unwrap().remove(0).unwrap();
    assert!(back.item.same_content(&retimed), "{:#?}", back.item.canonical());
    let starts: Vec<String> = occurrences(&client).await.into_iter().map(|o| o.0).collect();
    assert_eq!(
        starts,
        [
            "2026-03-16T09:00:00Z",
            "2026-03-23T09:00:00Z",
            "2026-03-30T08:00:00Z",
            "2026-04-06T08:00:00Z",
            "2026-04-13T08:00:00Z"
        ]
    );
    emu.shutdown().await;
}
