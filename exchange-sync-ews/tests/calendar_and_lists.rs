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
async fn exchange_2007_gets_no_time_zone_elements() {
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
    let back = c.get(&[v.id]).await.unwrap().remove(0).unwrap();
    assert_eq!(back.item.text(field::START_TIME_ZONE), None, "not sent to a 2007 server");
    assert_eq!(back.item.get(field::START), item.get(field::START));
    assert_eq!(back.item.get(field::IS_ALL_DAY), Some(&FieldValue::Boolean(true)));
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
async fn recurrence_exceptions_are_read_but_not_content() {
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
    // Copies are written without exceptions and still have the master's content.
    let alice = calendar(&common::as_user(&emu, "alice"));
    let v = alice
        .create(&[NewItem { item: master.clone().into(), origin: origin("weekly") }])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let copy = alice.get(&[v.id]).await.unwrap().remove(0).unwrap().item;
    assert_eq!(copy.get(mapping::DELETED_OCCURRENCES), None);
    assert!(copy.same_content(master));
    emu.shutdown().await;
}
