//! Every request the client can build, wrapped exactly as it is sent, validates against the EWS schema
//! (element order, namespaces, ranges). Needs `xmllint`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use exchange_sync_ews::item::ADDRESS_PARTS;
use exchange_sync_ews::operation::directory::expand_dl_request;
use exchange_sync_ews::operation::folders::{
    Traversal, create_folder_request, find_folder_request, get_folder_request,
};
use exchange_sync_ews::operation::items::{
    DeleteType, Restriction, create_item_request, delete_item_request, find_item_request, get_item_request,
    move_item_request, update_item_request,
};
use exchange_sync_ews::operation::notifications::{
    ITEM_EVENTS, SubscriptionKind, get_events_request, get_streaming_events_request, subscribe_request,
    unsubscribe_request,
};
use exchange_sync_ews::operation::sync::{sync_folder_hierarchy_request, sync_folder_items_request};
use exchange_sync_ews::property::{deleted_count_total, local_commit_time_max};
use exchange_sync_ews::soap::envelope;
use exchange_sync_ews::*;

fn origin() -> ExtendedFieldUri {
    ExtendedFieldUri::named("5f0b7c1e-2d8a-4c3b-9e61-7a4d2c9b8e10", "ExchangeSyncOrigin", "String")
}

fn contact() -> ItemDraft {
    let mut fields = vec![
        Field::text("Subject", "Jane Doe"),
        Field::Simple {
            name: "Body".into(),
            value: FieldValue::Body { body_type: "Text", text: "notes & more".into() },
        },
        Field::Simple { name: "Categories".into(), value: FieldValue::Strings(vec!["Customers".into()]) },
        Field::Extended { uri: origin(), value: "group/entity".into() },
        Field::text("FileAs", "Doe, Jane"),
        Field::text("FileAsMapping", "None"),
        Field::text("DisplayName", "Jane Doe"),
        Field::text("GivenName", "Jane"),
        Field::text("CompanyName", "Contoso"),
        Field::text("JobTitle", "Buyer"),
        Field::text("Surname", "Doe"),
        Field::Simple {
            name: "Birthday".into(),
            value: FieldValue::DateTime(chrono::DateTime::from_timestamp(0, 0).unwrap()),
        },
    ];
    for (i, key) in ["EmailAddress1", "EmailAddress2", "EmailAddress3"].iter().enumerate() {
        fields.push(Field::Entry {
            dictionary: "EmailAddresses".into(),
            key: (*key).into(),
            value: format!("jane{i}@example.test"),
        });
    }
    for key in ["BusinessPhone", "MobilePhone", "HomePhone", "BusinessFax"] {
        fields.push(Field::Entry { dictionary: "PhoneNumbers".into(), key: key.into(), value: "+1 555 0100".into() });
    }
    fields.push(Field::Entry {
        dictionary: "ImAddresses".into(),
        key: "ImAddress1".into(),
        value: "jane@im.test".into(),
    });
    for key in ["Business", "Home", "Other"] {
        for part in ADDRESS_PARTS {
            fields.push(Field::Address { key: key.into(), part: part.into(), value: format!("{key} {part}") });
        }
    }
    ItemDraft { item_type: ItemType::Contact, fields }
}

fn appointment() -> ItemDraft {
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    ItemDraft {
        item_type: ItemType::CalendarItem,
        fields: vec![
            Field::text("Location", "Room 1"),
            Field::Simple { name: "End".into(), value: FieldValue::DateTime(start + chrono::Duration::hours(1)) },
            Field::Simple { name: "Start".into(), value: FieldValue::DateTime(start) },
            Field::text("Subject", "Weekly"),
            Field::Simple { name: "IsAllDayEvent".into(), value: FieldValue::Bool(false) },
            Field::Simple {
                name: "Recurrence".into(),
                value: FieldValue::Xml(
                    "<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence>\
                     <t:NumberedRecurrence><t:StartDate>2027-01-04</t:StartDate><t:NumberOfOccurrences>10</t:NumberOfOccurrences></t:NumberedRecurrence>"
                        .into(),
                ),
            },
        ],
    }
}

#[test]
fn every_request_validates() {
    let dir = tempfile::tempdir().unwrap();
    let contacts = FolderRef::distinguished(DistinguishedFolder::Contacts);
    let public = FolderRef::id("AAEuAAAAAAAaRHOQqmYRzZvIAKoAL8RaAQBGpEs=");
    let other_mailbox =
        FolderRef::Distinguished { folder: DistinguishedFolder::Calendar, mailbox: Some("bob@contoso.test".into()) };
    let id = ItemId::with_change_key("AAMkAGI2=", "EQAAABYAAAA=");
    let shape = ItemShape::all(vec![PropertyPath::Extended(origin())]);
    let folder_shape = FolderShape {
        base: BaseShape::Default,
        additional: vec![
            PropertyPath::Extended(local_commit_time_max()),
            PropertyPath::Extended(deleted_count_total()),
        ],
    };
    let id_only = ItemShape::id_only(vec![PropertyPath::field("item:LastModifiedTime")]);
    let change = ItemChange {
        id: id.clone(),
        item_type: ItemType::Contact,
        updates: vec![
            FieldUpdate::Set(Field::text("GivenName", "Janet")),
            FieldUpdate::Set(Field::Entry {
                dictionary: "EmailAddresses".into(),
                key: "EmailAddress1".into(),
                value: "j@x.test".into(),
            }),
            FieldUpdate::Set(Field::Address { key: "Business".into(), part: "City".into(), value: "Town".into() }),
            FieldUpdate::Set(Field::Extended { uri: origin(), value: "g/e".into() }),
            FieldUpdate::Delete(PropertyPath::Indexed {
                uri: "contacts:PhoneNumber".into(),
                index: "HomePhone".into(),
            }),
            FieldUpdate::Delete(PropertyPath::Indexed {
                uri: "contacts:PhysicalAddress:Street".into(),
                index: "Home".into(),
            }),
            FieldUpdate::Delete(PropertyPath::field("contacts:JobTitle")),
        ],
    };
    let task = ItemDraft {
        item_type: ItemType::Task,
        fields: vec![
            Field::Simple { name: "PercentComplete".into(), value: FieldValue::Int(50) },
            Field::text("Subject", "Call back"),
            Field::text("Status", "InProgress"),
            Field::Simple {
                name: "DueDate".into(),
                value: FieldValue::DateTime(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
            },
        ],
    };
    let note = ItemDraft {
        item_type: ItemType::Message,
        fields: vec![
            Field::text("ItemClass", "IPM.StickyNote"),
            Field::text("Subject", "Remember"),
            Field::Simple { name: "Body".into(), value: FieldValue::Body { body_type: "Text", text: "milk".into() } },
        ],
    };
    let bodies = vec![
        ("GetFolder", get_folder_request(&[contacts.clone(), public.clone(), other_mailbox.clone()], &folder_shape)),
        (
            "FindFolder",
            find_folder_request(
                &FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot),
                &FolderShape::default(),
                Traversal::Shallow,
                0,
                1000,
            ),
        ),
        (
            "CreateFolder",
            create_folder_request(
                &FolderRef::distinguished(DistinguishedFolder::MsgFolderRoot),
                "Company Contacts",
                "IPF.Contact",
            ),
        ),
        ("FindItem", find_item_request(&public, &id_only, None, 2000, 1000)),
        (
            "FindItemWhere",
            find_item_request(
                &contacts,
                &id_only,
                Some(&Restriction::IsEqualTo(PropertyPath::Extended(origin()), "g/e".into())),
                0,
                10,
            ),
        ),
        ("GetItem", get_item_request(&[id.clone(), ItemId::new("AAMkB=")], &shape)),
        ("CreateItem", create_item_request(&contacts, &[contact(), appointment(), task, note])),
        ("UpdateItem", update_item_request(&[change])),
        ("DeleteItem", delete_item_request(std::slice::from_ref(&id), DeleteType::HardDelete)),
        (
            "FindItemAnyStamp",
            find_item_request(
                &FolderRef::distinguished(DistinguishedFolder::RecoverableItemsDeletions),
                &id_only,
                Some(&Restriction::Or(vec![
                    Restriction::IsEqualTo(PropertyPath::Extended(origin()), "g/e1".into()),
                    Restriction::IsEqualTo(PropertyPath::Extended(origin()), "g/e2".into()),
                ])),
                0,
                100,
            ),
        ),
        (
            "FindItemOneStamp",
            find_item_request(
                &contacts,
                &id_only,
                Some(&Restriction::Or(vec![Restriction::IsEqualTo(PropertyPath::Extended(origin()), "g/e".into())])),
                0,
                100,
            ),
        ),
        ("MoveItem", move_item_request(&[id.clone(), ItemId::new("AAMkB=")], &contacts, true)),
        ("MoveItemOld", move_item_request(std::slice::from_ref(&id), &other_mailbox, false)),
        (
            "GetFolderIdOnly",
            get_folder_request(
                &[FolderRef::distinguished(DistinguishedFolder::RecoverableItemsDeletions)],
                &FolderShape { base: BaseShape::IdOnly, additional: Vec::new() },
            ),
        ),
        (
            "UpdateItemFileAs",
            update_item_request(&[ItemChange {
                id: id.clone(),
                item_type: ItemType::Contact,
                updates: vec![
                    FieldUpdate::Set(Field::text("FileAs", "Boss")),
                    FieldUpdate::Set(Field::text("FileAsMapping", "None")),
                    FieldUpdate::Set(Field::text("DisplayName", "Jane Doe")),
                    FieldUpdate::Delete(PropertyPath::field("contacts:DisplayName")),
                ],
            }]),
        ),
        ("SyncFolderItems", sync_folder_items_request(&contacts, &id_only, Some("H4sIAAAA"), 512)),
        ("SyncFolderItemsFirst", sync_folder_items_request(&contacts, &id_only, None, 100_000)),
        ("SyncFolderHierarchy", sync_folder_hierarchy_request(&FolderShape::default(), Some(&contacts), None)),
        (
            "SubscribePull",
            subscribe_request(
                std::slice::from_ref(&contacts),
                &ITEM_EVENTS,
                &SubscriptionKind::Pull { timeout_minutes: 30, watermark: Some("AQAAAA==".into()) },
            ),
        ),
        (
            "SubscribeStreaming",
            subscribe_request(std::slice::from_ref(&public), &ITEM_EVENTS, &SubscriptionKind::Streaming),
        ),
        ("GetEvents", get_events_request("sub1", "AQAAAA==")),
        ("GetStreamingEvents", get_streaming_events_request(&["sub1".into(), "sub2".into()], 45)),
        ("Unsubscribe", unsubscribe_request("sub1")),
        ("ExpandDL", expand_dl_request("sales@contoso.test")),
    ];
    let impersonations = [
        None,
        Some(Impersonation::PrimarySmtpAddress("alice@contoso.test".into())),
        Some(Impersonation::Sid("S-1-5-21-1-2-3-1001".into())),
        Some(Impersonation::PrincipalName("alice@contoso.test".into())),
    ];
    for (i, (name, body)) in bodies.iter().enumerate() {
        let version = ExchangeVersion::ALL[i % ExchangeVersion::ALL.len()];
        let doc = envelope(version, impersonations[i % impersonations.len()].as_ref(), body);
        common::write_doc(dir.path(), &format!("{name}.xml"), &doc);
    }
    common::validate(&[dir.path()]);
}

#[test]
fn a_wrong_order_is_caught_by_the_validator() {
    // Guards the guard: the validator must reject what Exchange would reject.
    let dir = tempfile::tempdir().unwrap();
    let body = "<m:GetItem><m:ItemIds><t:ItemId Id=\"x\"/></m:ItemIds><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape></m:GetItem>";
    std::fs::write(dir.path().join("bad.xml"), envelope(ExchangeVersion::Exchange2016, None, body)).unwrap();
    let out = std::process::Command::new(common::schema_dir().join("validate")).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
}
