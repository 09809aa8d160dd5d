//! Answers held to Exchange's where clients depend on them: SyncFolderItems error messages
//! carry `SyncState` and `IncludesLastItemInRange`, SOAP faults carry `ServerVersionInfo`,
//! ConvertId converts between id formats and refuses invalid ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, create, dfid, find, start_default};

#[tokio::test]
async fn sync_errors_carry_state_and_range() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let a = c
        .call(&format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>{}</m:SyncFolderId><m:SyncState>bm90IGEgc3RhdGU=</m:SyncState><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"#,
            dfid("contacts")
        ))
        .await;
    assert_eq!(a.code(0), "ErrorInvalidSyncStateData");
    let m = a.messages()[0];
    assert!(m.child("SyncState").is_some());
    assert_eq!(m.child_text("IncludesLastItemInRange"), Some("true"));
}

#[tokio::test]
async fn faults_carry_the_server_version() {
    let emu = start_default().await;
    let mut c = Client::new(&emu, "alice");
    c.version = "Exchange2099".into();
    let a = c.call("<m:GetFolder/>").await;
    assert_eq!(a.fault_code().as_deref(), Some("ErrorInvalidServerVersion"));
    let info = find(a.doc.child("Header").expect("a header"), "ServerVersionInfo").expect("ServerVersionInfo");
    assert_eq!(info.attr("MajorVersion"), Some("15"));
}

#[tokio::test]
async fn convert_id_round_trips_and_refuses_invalid_ids() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let (id, _) = create(
        &c,
        &dfid("calendar"),
        "<t:CalendarItem><t:Subject>x</t:Subject><t:Start>2026-05-04T09:00:00Z</t:Start><t:End>2026-05-04T10:00:00Z</t:End></t:CalendarItem>",
    )
    .await
    .remove(0);
    let convert = |format: &str, id: &str, to: &str, mailbox: &str| {
        format!(
            r#"<m:ConvertId DestinationFormat="{to}"><m:SourceIds><t:AlternateId Format="{format}" Id="{id}" Mailbox="{mailbox}"/></m:SourceIds></m:ConvertId>"#
        )
    };
    let a = c.call(&convert("EwsId", &id, "HexEntryId", "alice@contoso.test")).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let hex = find(&a.doc, "AlternateId").unwrap().attr("Id").unwrap().to_string();
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    let a = c.call(&convert("HexEntryId", &hex, "EntryId", "alice@contoso.test")).await;
    let entry = find(&a.doc, "AlternateId").unwrap().attr("Id").unwrap().to_string();
    let a = c.call(&convert("EntryId", &entry, "EwsId", "alice@contoso.test")).await;
    assert_eq!(find(&a.doc, "AlternateId").unwrap().attr("Id"), Some(id.as_str()));
    let a = c.call(&convert("EwsId", "DUMMY", "EntryId", "alice@contoso.test")).await;
    assert_eq!(a.code(0), "ErrorInvalidIdMalformed");
    let a = c.call(&convert("EwsId", &id, "EntryId", "nobody@contoso.test")).await;
    assert_eq!(a.code(0), "ErrorNonExistentMailbox");
}
