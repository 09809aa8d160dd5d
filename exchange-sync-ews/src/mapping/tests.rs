use exchange_sync_core::item::{Body, FieldValue as CoreValue, Item, ItemKind};
use exchange_sync_core::{EntityId, GroupId, OriginStamp, field};

use super::*;
use crate::item::{EwsItem, write_item_element};
use crate::xml::{ParseLimits, XmlWriter, parse};

/// Writes an item as CreateItem would and reads the element back as GetItem would return it.
fn round_trip(item: &Item, origin: Option<&OriginStamp>) -> (Item, Option<OriginStamp>) {
    let (item_type, fields) = to_fields(item, origin);
    let mut w = XmlWriter::new();
    w.raw(r#"<r xmlns:t="urn:t">"#);
    write_item_element(&mut w, item_type, &fields);
    w.raw("</r>");
    let root = parse(w.finish().as_bytes(), ParseLimits::default()).unwrap();
    let ews = EwsItem::from_element(root.children[0].clone()).unwrap();
    to_item(&ews)
}

fn full_contact() -> Item {
    let mut c = Item::new(ItemKind::Contact);
    for (i, m) in mappings(&ItemKind::Contact).iter().enumerate() {
        let v = match m.value {
            ValueKind::DateTime => {
                CoreValue::DateTime(chrono::DateTime::from_timestamp(600_000_000 + i as i64, 0).unwrap())
            }
            ValueKind::TextList => CoreValue::TextList(vec![format!("a{i}"), format!("b{i}")]),
            ValueKind::Enum(t) => CoreValue::Text(t[t.len() - 1].1.to_owned()),
            _ => CoreValue::Text(format!("value {i} <&>")),
        };
        c.set(&m.canonical, v);
    }
    c.body = Some(Body::text("notes\nline 2"));
    c.categories = ["Customers".to_owned(), "VIP".to_owned()].into_iter().collect();
    c
}

#[test]
fn every_contact_field_round_trips() {
    let c = full_contact();
    let stamp = OriginStamp::new(GroupId::new("company"), EntityId::new("e1"));
    let (back, origin) = round_trip(&c, Some(&stamp));
    assert_eq!(origin, Some(stamp));
    assert_eq!(back.canonical(), c.canonical());
    assert!(c.fields.len() > 60, "every indexed field is mapped: {}", c.fields.len());
}

#[test]
fn calendar_task_and_note_round_trip() {
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut cal = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Weekly sync")
        .with(field::LOCATION, "Room 1")
        .with(field::START, CoreValue::DateTime(start))
        .with(field::END, CoreValue::DateTime(start + chrono::Duration::hours(1)))
        .with(field::IS_ALL_DAY, CoreValue::Boolean(false))
        .with(field::LEGACY_FREE_BUSY, "busy")
        .with(field::ATTENDEES, "required:bob@contoso.test")
        .with(
            field::RECURRENCE,
            "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|EndDateRecurrence(StartDate=2027-01-04,EndDate=2027-06-28)",
        );
    cal.body = Some(Body { format: exchange_sync_core::BodyFormat::Html, content: "<p>agenda</p>".into() });
    let task = Item::new(ItemKind::Task)
        .with(field::SUBJECT, "Call back")
        .with(field::STATUS, "in_progress")
        .with(field::PERCENT_COMPLETE, CoreValue::Integer(50))
        .with(field::DUE_DATE, CoreValue::DateTime(start));
    let mut note = Item::new(ItemKind::Note).with(field::SUBJECT, "Remember");
    note.body = Some(Body::text("milk"));
    for item in [cal, task, note] {
        let (back, _) = round_trip(&item, None);
        assert_eq!(back.canonical(), item.canonical(), "{:?}", item.kind);
    }
}

#[test]
fn updates_send_only_what_changed() {
    let before = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, "Jane")
        .with(field::PHONE_MOBILE, "1")
        .with(field::SURNAME, "Doe");
    let after = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Janet").with(field::SURNAME, "Doe");
    let u = to_updates(&after, Some(&before), None);
    assert_eq!(u.len(), 4, "{u:?}");
    assert!(u.contains(&FieldUpdate::Set(Field::text("GivenName", "Janet"))));
    // The names changed: the derived display name and "file as" go with them.
    assert!(u.contains(&FieldUpdate::Set(Field::text("DisplayName", "Janet Doe"))));
    assert!(u.contains(&FieldUpdate::Set(Field::text("FileAs", "Doe, Janet"))));
    assert!(u.contains(&FieldUpdate::Delete(PropertyPath::Indexed {
        uri: "contacts:PhoneNumber".into(),
        index: "MobilePhone".into()
    })));
    assert!(to_updates(&after, Some(&after), None).is_empty());
}

#[test]
fn without_previous_every_field_is_set_or_cleared() {
    let after = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Janet");
    let u = to_updates(&after, None, None);
    assert!(u.contains(&FieldUpdate::Set(Field::text("GivenName", "Janet"))));
    assert!(u.iter().any(|x| matches!(x, FieldUpdate::Delete(PropertyPath::Field(f)) if f == "contacts:Surname")));
    assert!(u.iter().any(|x| matches!(x, FieldUpdate::Delete(PropertyPath::Field(f)) if f == "item:Body")));
}

#[test]
fn server_rewrites_do_not_change_the_hash() {
    // Exchange 2016 adds elements we do not map, and may append an offset to recurrence dates.
    let doc = r#"<t:CalendarItem xmlns:t="x"><t:ItemId Id="A" ChangeKey="B"/><t:Subject>S</t:Subject>
      <t:LastModifiedTime>2026-01-01T10:00:00Z</t:LastModifiedTime><t:Start>2027-01-04T09:00:00Z</t:Start><t:End>2027-01-04T10:00:00Z</t:End>
      <t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek><t:FirstDayOfWeek>Sunday</t:FirstDayOfWeek></t:WeeklyRecurrence>
      <t:NoEndRecurrence><t:StartDate>2027-01-04-08:00</t:StartDate></t:NoEndRecurrence></t:Recurrence>
      <t:EnhancedLocation><t:DisplayName>x</t:DisplayName></t:EnhancedLocation><t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>Bob@Contoso.test</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees></t:CalendarItem>"#;
    let ews = EwsItem::from_element(parse(doc.as_bytes(), ParseLimits::default()).unwrap()).unwrap();
    let (item, _) = to_item(&ews);
    assert_eq!(
        item.text(field::RECURRENCE),
        Some("WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NoEndRecurrence(StartDate=2027-01-04)")
    );
    assert_eq!(item.text(field::ATTENDEES), Some("required:bob@contoso.test"));
    let copy = round_trip(&item, None).0;
    assert_eq!(copy.content_hash(), item.content_hash());
}

#[test]
fn malformed_recurrence_text_is_not_written() {
    assert!(recurrence::write("Weekly<x>(Interval=1)|NoEnd()").is_none());
    assert!(recurrence::write("nonsense").is_none());
}

#[test]
fn derived_contact_names_are_not_content() {
    let doc = r#"<t:Contact xmlns:t="x"><t:FileAs>Doe, Jane</t:FileAs><t:DisplayName>Jane Doe</t:DisplayName>
      <t:GivenName>Jane</t:GivenName><t:Surname>Doe</t:Surname></t:Contact>"#;
    let (item, _) = to_item(&EwsItem::from_element(parse(doc.as_bytes(), ParseLimits::default()).unwrap()).unwrap());
    assert_eq!(item.get(field::DISPLAY_NAME), None);
    assert_eq!(item.get(field::FILE_AS), None);
    let chosen = doc.replace("Jane Doe<", "Dr. J. Doe (Sales)<");
    let (item, _) = to_item(&EwsItem::from_element(parse(chosen.as_bytes(), ParseLimits::default()).unwrap()).unwrap());
    assert_eq!(item.text(field::DISPLAY_NAME), Some("Dr. J. Doe (Sales)"), "a name the user chose is content");
}

#[test]
fn time_zones_round_trip_and_are_set_before_the_times() {
    // An all-day event in Berlin: midnight to midnight local time, 23:00 UTC the day before.
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-14T23:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let cal = Item::new(ItemKind::CalendarItem)
        .with(field::SUBJECT, "Company holiday")
        .with(field::START, CoreValue::DateTime(start))
        .with(field::END, CoreValue::DateTime(start + chrono::Duration::days(1)))
        .with(field::IS_ALL_DAY, CoreValue::Boolean(true))
        .with(field::START_TIME_ZONE, "W. Europe Standard Time")
        .with(schema::END_TIME_ZONE, "W. Europe Standard Time");
    let (back, _) = round_trip(&cal, None);
    assert_eq!(back.canonical(), cal.canonical());
    let (_, fields) = to_fields(&cal, None);
    assert!(fields.contains(&Field::Simple {
        name: "StartTimeZone".into(),
        value: FieldValue::TimeZone("W. Europe Standard Time".into())
    }));
    let mut w = XmlWriter::new();
    write_item_element(&mut w, ItemType::CalendarItem, &fields);
    let xml = w.finish();
    assert!(xml.contains(r#"<t:StartTimeZone Id="W. Europe Standard Time"/>"#), "{xml}");
    assert!(xml.find("<t:IsAllDayEvent>").unwrap() < xml.find("<t:StartTimeZone").unwrap(), "schema order: {xml}");

    // An update that moves the event to New York sets the zones before the instants.
    let moved = cal
        .clone()
        .with(field::START_TIME_ZONE, "Eastern Standard Time")
        .with(field::START, CoreValue::DateTime(start + chrono::Duration::hours(6)));
    let u = to_updates(&moved, Some(&cal), None);
    let pos =
        |name: &str| u.iter().position(|x| matches!(x, FieldUpdate::Set(Field::Simple { name: n, .. }) if n == name));
    assert!(pos("StartTimeZone").unwrap() < pos("Start").unwrap(), "{u:?}");
    assert_eq!(pos("EndTimeZone"), None, "unchanged end zone is not sent");

    // Exchange 2007 SP1 has no StartTimeZone/EndTimeZone: the start zone goes as
    // MeetingTimeZone, the end zone is left out.
    let draft = crate::item::ItemDraft { item_type: ItemType::CalendarItem, fields };
    let old = draft.for_version(crate::ExchangeVersion::Exchange2007Sp1);
    assert_eq!(old.fields.len(), draft.fields.len() - 1);
    assert!(old.fields.contains(&Field::Simple {
        name: "MeetingTimeZone".into(),
        value: FieldValue::MeetingTimeZone("W. Europe Standard Time".into())
    }));
    assert_eq!(draft.for_version(crate::ExchangeVersion::Exchange2010).fields.len(), draft.fields.len());
}

#[test]
fn derived_names_follow_the_names_and_own_ones_are_kept() {
    let jane = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Jane").with(field::SURNAME, "Doe");
    // Another field only: nothing about the names.
    let phone = jane.clone().with(field::PHONE_MOBILE, "1");
    assert_eq!(to_updates(&phone, Some(&jane), None).len(), 1);
    // A "file as" of the user's own is written with the mapping that keeps it.
    let own = jane.clone().with(field::FILE_AS, "Boss");
    let u = to_updates(&own, Some(&jane), None);
    assert_eq!(
        u,
        vec![FieldUpdate::Set(Field::text("FileAs", "Boss")), FieldUpdate::Set(Field::text("FileAsMapping", "None"))]
    );
    let (_, fields) = to_fields(&own, None);
    assert!(fields.contains(&Field::text("FileAsMapping", "None")), "{fields:?}");
    // Dropping it makes it derived again, recomputed by the server from then on.
    let u = to_updates(&jane, Some(&own), None);
    assert_eq!(
        u,
        vec![
            FieldUpdate::Set(Field::text("FileAs", "Doe, Jane")),
            FieldUpdate::Set(Field::text("FileAsMapping", "LastCommaFirst"))
        ]
    );
    // Derived values written by an update read back as derived.
    let renamed = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, "Henrik")
        .with(field::MIDDLE_NAME, "A.")
        .with(field::SURNAME, "Berg")
        .with(field::NAME_SUFFIX, "Jr.");
    let (display, file_as) = derived_names(&renamed);
    assert_eq!((display.as_deref(), file_as.as_deref()), (Some("Henrik A. Berg Jr."), Some("Berg, Henrik A.")));
    let mut read = renamed.clone();
    read.set(field::DISPLAY_NAME, display.unwrap_or_default());
    read.set(field::FILE_AS, file_as.unwrap_or_default());
    drop_derived_names(&mut read);
    assert_eq!(read.canonical(), renamed.canonical());
    let company = Item::new(ItemKind::Contact).with(field::COMPANY, "Contoso");
    assert_eq!(derived_names(&company), (Some("Contoso".into()), Some("Contoso".into())));
}
