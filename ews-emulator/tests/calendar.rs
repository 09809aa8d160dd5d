//! Recurring series over HTTP: CalendarView expands masters into occurrences, occurrences have
//! ids (`OccurrenceItemId`, `RecurringMasterItemId`), and UpdateItem / DeleteItem on an
//! occurrence show up in the master's `ModifiedOccurrences` / `DeletedOccurrences`, as on
//! Exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, create, dfid, find, find_all, start_default};
use ews_emulator::xml::Element;

/// A weekly series on Mondays 09:00-09:30 Berlin time, five occurrences from 2026-03-16 (it
/// crosses the start of summer time on 2026-03-29).
const SERIES: &str = r#"<t:CalendarItem><t:Subject>Weekly all-hands</t:Subject><t:Body BodyType="Text">Agenda</t:Body><t:Start>2026-03-16T08:00:00Z</t:Start><t:End>2026-03-16T08:30:00Z</t:End><t:Location>Auditorium</t:Location><t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-03-16</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence><t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>"#;

async fn view(c: &Client, from: &str, to: &str) -> Vec<Element> {
    let a = c
        .call(&format!(
            r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:CalendarView StartDate="{from}" EndDate="{to}"/><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindItem>"#,
            dfid("calendar")
        ))
        .await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    find_all(&a.doc, "CalendarItem").into_iter().cloned().collect()
}

fn text<'a>(e: &'a Element, name: &str) -> &'a str {
    e.child_text(name).unwrap_or("")
}

async fn get_by(c: &Client, id_xml: &str) -> common::Answer {
    c.call(&format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>{id_xml}</m:ItemIds></m:GetItem>"#
    ))
    .await
}

#[tokio::test]
async fn calendar_view_expands_series_in_their_time_zone() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let master = create(&c, &dfid("calendar"), SERIES).await.remove(0).0;
    let items = view(&c, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z").await;
    let starts: Vec<&str> = items.iter().map(|i| text(i, "Start")).collect();
    // 09:00 local: 08:00 UTC in winter, 07:00 UTC in summer.
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
    for i in &items {
        assert_eq!(text(i, "CalendarItemType"), "Occurrence");
        assert_eq!(text(i, "Subject"), "Weekly all-hands");
        assert_eq!(text(i, "IsRecurring"), "true");
        assert!(i.child("Recurrence").is_none());
        assert_ne!(find(i, "ItemId").unwrap().attr("Id"), Some(master.as_str()));
    }
    // A window inside the series: only what overlaps it.
    let items = view(&c, "2026-03-30T07:15:00Z", "2026-04-07T00:00:00Z").await;
    assert_eq!(items.len(), 2);
    // An occurrence by master and index, and its master by occurrence id.
    let a = get_by(&c, &format!(r#"<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="3"/>"#)).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let occ = find(&a.doc, "CalendarItem").unwrap();
    assert_eq!(text(occ, "Start"), "2026-03-30T07:00:00Z");
    assert_eq!(text(occ, "OriginalStart"), "2026-03-30T07:00:00Z");
    assert_eq!(text(occ, "Body"), "Agenda");
    let occ_id = find(occ, "ItemId").unwrap().attr("Id").unwrap().to_string();
    let a = get_by(&c, &format!(r#"<t:RecurringMasterItemId OccurrenceId="{occ_id}"/>"#)).await;
    let m = find(&a.doc, "CalendarItem").unwrap();
    assert_eq!(find(m, "ItemId").unwrap().attr("Id"), Some(master.as_str()));
    assert_eq!(text(m, "CalendarItemType"), "RecurringMaster");
    // The occurrence id itself works as an ItemId.
    let a = get_by(&c, &format!(r#"<t:ItemId Id="{occ_id}"/>"#)).await;
    assert_eq!(text(find(&a.doc, "CalendarItem").unwrap(), "Start"), "2026-03-30T07:00:00Z");
    // Outside the series.
    let a = get_by(&c, &format!(r#"<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="6"/>"#)).await;
    assert_eq!(a.code(0), "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange");
}

#[tokio::test]
async fn occurrence_edits_and_cancellations_are_exceptions_of_the_master() {
    let emu = start_default().await;
    let c = Client::new(&emu, "bob");
    let master = create(&c, &dfid("calendar"), SERIES).await.remove(0).0;
    // Cancel the second occurrence.
    let a = c
        .call(&format!(
            r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone"><m:ItemIds><t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="2"/></m:ItemIds></m:DeleteItem>"#
        ))
        .await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    // Move the fourth to Tuesday, another room.
    let a = c
        .call(&format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="4"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2026-04-07T12:00:00Z</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>2026-04-07T13:00:00Z</t:End></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:Location"/><t:CalendarItem><t:Location>Room 7</t:Location></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        ))
        .await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let items = view(&c, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z").await;
    let seen: Vec<(&str, &str, &str)> =
        items.iter().map(|i| (text(i, "Start"), text(i, "Location"), text(i, "CalendarItemType"))).collect();
    assert_eq!(
        seen,
        [
            ("2026-03-16T08:00:00Z", "Auditorium", "Occurrence"),
            ("2026-03-30T07:00:00Z", "Auditorium", "Occurrence"),
            ("2026-04-07T12:00:00Z", "Room 7", "Exception"),
            ("2026-04-13T07:00:00Z", "Auditorium", "Occurrence"),
        ]
    );
    // The master says so.
    let a = get_by(&c, &format!(r#"<t:ItemId Id="{master}"/>"#)).await;
    let m = find(&a.doc, "CalendarItem").unwrap();
    let deleted = find_all(m.child("DeletedOccurrences").unwrap(), "Start");
    assert_eq!(deleted.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["2026-03-23T08:00:00Z"]);
    let modified = m.child("ModifiedOccurrences").unwrap();
    let o = &modified.children[0];
    assert_eq!(
        (text(o, "Start"), text(o, "End"), text(o, "OriginalStart")),
        ("2026-04-07T12:00:00Z", "2026-04-07T13:00:00Z", "2026-04-06T07:00:00Z")
    );
    let exception_id = find(o, "ItemId").unwrap().attr("Id").unwrap().to_string();
    let a = get_by(&c, &format!(r#"<t:ItemId Id="{exception_id}"/>"#)).await;
    assert_eq!(text(find(&a.doc, "CalendarItem").unwrap(), "Location"), "Room 7");
    // A cancelled occurrence cannot be read any more.
    let a = get_by(&c, &format!(r#"<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="2"/>"#)).await;
    assert_eq!(a.code(0), "ErrorCalendarOccurrenceIsDeletedFromRecurrence");
    // Moving the series to 10:00 re-times it: the exceptions are gone, as on Exchange.
    let a = c
        .call(&format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{master}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2026-03-16T09:00:00Z</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>2026-03-16T09:30:00Z</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        ))
        .await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let items = view(&c, "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z").await;
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| text(i, "CalendarItemType") == "Occurrence"));
    let a = get_by(&c, &format!(r#"<t:ItemId Id="{master}"/>"#)).await;
    let m = find(&a.doc, "CalendarItem").unwrap();
    assert!(m.child("DeletedOccurrences").is_none() && m.child("ModifiedOccurrences").is_none());
}

#[tokio::test]
async fn the_demo_series_skips_its_cancelled_monday() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let folder = common::find_folder_id(&c, "Company Calendar").await;
    let a = c
        .call(&format!(
            r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="calendar:Start"/></t:AdditionalProperties></m:ItemShape><m:CalendarView StartDate="2026-03-30T00:00:00Z" EndDate="2026-04-14T00:00:00Z"/><m:ParentFolderIds><t:FolderId Id="{folder}"/></m:ParentFolderIds></m:FindItem>"#
        ))
        .await;
    let starts: Vec<&str> = find_all(&a.doc, "Start").iter().map(|s| s.text.as_str()).collect();
    // The Monday series (Easter Monday cancelled) and the single review on Tuesday.
    assert_eq!(starts, ["2026-03-30T09:00:00Z", "2026-03-31T13:00:00Z", "2026-04-13T09:00:00Z"]);
}
