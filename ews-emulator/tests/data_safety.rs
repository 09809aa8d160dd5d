//! What Exchange does to deleted, moved and derived data, as the emulator plays it: DeleteItem
//! ignores change keys, SoftDelete keeps items in Recoverable Items where FindItem and GetItem
//! reach them and MoveItem takes them out (new ids), an edit can land right before a delete,
//! Exchange Online's CreateItem answers without ids, a recreated folder is another folder, and
//! a contact's FileAs follows its names while it has a FileAsMapping.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Client, ORIGIN_URI, contact_xml, create, dfid, find, find_all, get, start, start_default};
use ews_emulator::xml::Element;
use ews_emulator::{EmulatorConfig, Permission, ServerVersion};

fn delete(id: &str, change_key: &str, mode: &str) -> String {
    format!(
        r#"<m:DeleteItem DeleteType="{mode}"><m:ItemIds><t:ItemId Id="{id}" ChangeKey="{change_key}"/></m:ItemIds></m:DeleteItem>"#
    )
}

fn set_job_title(id: &str, change_key: &str, title: &str) -> String {
    format!(
        r#"<m:UpdateItem ConflictResolution="NeverOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{change_key}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="contacts:JobTitle"/><t:Contact><t:JobTitle>{title}</t:JobTitle></t:Contact></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    )
}

/// FindItem in a folder for items whose origin stamp is `origin`.
fn find_stamped(folder: &str, origin: &str) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{ORIGIN_URI}<t:FieldURI FieldURI="contacts:JobTitle"/></t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/><m:Restriction><t:IsEqualTo>{ORIGIN_URI}<t:FieldURIOrConstant><t:Constant Value="{origin}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>{folder}</m:ParentFolderIds></m:FindItem>"#
    )
}

fn move_to(id: &str, folder: &str) -> String {
    format!(
        r#"<m:MoveItem><m:ToFolderId>{folder}</m:ToFolderId><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds><m:ReturnNewItemIds>true</m:ReturnNewItemIds></m:MoveItem>"#
    )
}

fn item_id(e: &Element) -> (String, String) {
    let id = find(e, "ItemId").expect("an ItemId");
    (id.attr("Id").unwrap().to_owned(), id.attr("ChangeKey").unwrap().to_owned())
}

#[tokio::test]
async fn delete_item_ignores_the_change_key() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let (id, old_key) = create(&c, &dfid("contacts"), &contact_xml("Stale", "Key", "g:stale")).await.remove(0);
    let a = c.call(&set_job_title(&id, &old_key, "Edited")).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let (_, new_key) = item_id(a.messages()[0]);
    assert_ne!(new_key, old_key);
    // Exchange deletes whatever the change key says: DeleteItem is not conditional.
    let a = c.call(&delete(&id, &old_key, "SoftDelete")).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    assert!(emu.store().items_in("alice@contoso.test", "contacts").unwrap().is_empty());
}

#[tokio::test]
async fn soft_deleted_items_are_in_recoverable_items_and_move_out_with_new_ids() {
    let emu = start_default().await;
    let c = Client::new(&emu, "sync-admin@contoso.test").impersonating("bob@contoso.test");
    let (id, key) = create(&c, &dfid("contacts"), &contact_xml("Soft", "Deleted", "g:soft")).await.remove(0);
    assert_eq!(c.call(&delete(&id, &key, "SoftDelete")).await.code(0), "NoError");
    assert!(emu.store().items_in("bob@contoso.test", "contacts").unwrap().is_empty());

    // FindItem with a restriction on the extended property finds it in the dumpster.
    let a = c.call(&find_stamped(&dfid("recoverableitemsdeletions"), "g:soft")).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let found = find_all(&a.doc, "Contact");
    assert_eq!(found.len(), 1, "{}", a.text);
    let (dumped, dumped_key) = item_id(found[0]);
    assert_ne!(dumped, id, "a deleted item moved to the dumpster has a new id");
    assert_eq!(c.call(&find_stamped(&dfid("recoverableitemsdeletions"), "g:other")).await.messages().len(), 1);
    let a = get(&c, "<t:BaseShape>AllProperties</t:BaseShape>", &[&dumped]).await;
    assert_eq!(a.code(0), "NoError");
    assert_eq!(find(&a.doc, "GivenName").unwrap().text, "Soft");

    // MoveItem answers the new id in m:Items; the item is back, the dumpster empty.
    let a = c.call(&move_to(&dumped, &dfid("contacts"))).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    assert_eq!(a.body().name, "MoveItemResponse");
    let (back, back_key) = item_id(a.messages()[0]);
    assert!(back != dumped && back != id, "a moved item has a new id");
    assert_ne!(back_key, dumped_key, "and a new change key");
    let contacts = emu.store().items_in("bob@contoso.test", "contacts").unwrap();
    assert_eq!(contacts.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [back.as_str()]);
    assert_eq!(contacts[0].change_key, back_key);
    assert!(emu.store().items_in("bob@contoso.test", "recoverableitemsdeletions").unwrap().is_empty());
    // The old id is gone; moving it again fails per item.
    let a = c.call(&move_to(&dumped, &dfid("contacts"))).await;
    assert_eq!(a.code(0), "ErrorItemNotFound");
    // Moves between mailboxes are not emulated.
    emu.store().grant("carol@contoso.test", "contacts", "bob@contoso.test", Permission::Editor).unwrap();
    let a = c.call(&move_to(&back, r#"<t:DistinguishedFolderId Id="contacts"><t:Mailbox><t:EmailAddress>carol@contoso.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#)).await;
    assert_eq!(a.code(0), "ErrorCrossMailboxMoveCopy");
}

#[tokio::test]
async fn an_edit_saved_as_the_delete_arrives_is_in_the_deleted_copy() {
    let emu = start_default().await;
    let c = Client::new(&emu, "carol");
    let (id, key) = create(&c, &dfid("contacts"), &contact_xml("Racing", "Edit", "g:race")).await.remove(0);
    emu.store()
        .edit_before_delete(&id, |item| item.set_field(Element::t_text("JobTitle", "Saved on a phone")))
        .unwrap();
    // The client read `key` before; the edit lands between its read and its delete.
    assert_eq!(c.call(&delete(&id, &key, "SoftDelete")).await.code(0), "NoError");
    let a = c.call(&find_stamped(&dfid("recoverableitemsdeletions"), "g:race")).await;
    let found = find_all(&a.doc, "Contact");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].child_text("JobTitle"), Some("Saved on a phone"));
    // The hook runs once.
    let (id, key) = create(&c, &dfid("contacts"), &contact_xml("Plain", "Delete", "g:plain")).await.remove(0);
    assert_eq!(c.call(&delete(&id, &key, "HardDelete")).await.code(0), "NoError");
}

#[tokio::test]
async fn before_exchange_2010_sp1_the_dumpster_is_out_of_reach() {
    let emu =
        start(EmulatorConfig { contacts: 1, server_version: ServerVersion::Exchange2010, ..Default::default() }).await;
    let mut c = Client::new(&emu, "dave");
    c.version = "Exchange2010".into();
    let (id, key) = create(&c, &dfid("contacts"), &contact_xml("Old", "Server", "g:old")).await.remove(0);
    assert_eq!(c.call(&delete(&id, &key, "SoftDelete")).await.code(0), "NoError");
    let a = c.call(&find_stamped(&dfid("recoverableitemsdeletions"), "g:old")).await;
    assert_eq!(a.code(0), "ErrorFolderNotFound", "{}", a.text);
}

#[tokio::test]
async fn exchange_online_creates_answer_without_ids() {
    let emu = start(EmulatorConfig { contacts: 1, omit_created_item_ids: true, ..Default::default() }).await;
    let c = Client::new(&emu, "alice");
    let a = c
        .call(&format!(
            r#"<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{}{}</m:Items></m:CreateItem>"#,
            dfid("contacts"),
            contact_xml("No", "Id", "g:n1"),
            contact_xml("No", "Id2", "g:n2")
        ))
        .await;
    assert_eq!(a.messages().len(), 2);
    for m in a.messages() {
        assert_eq!(m.attr("ResponseClass"), Some("Success"));
        assert_eq!(m.child_text("ResponseCode"), Some("NoError"));
        assert!(m.child("Items").is_some_and(|i| i.children.is_empty()), "{}", a.text);
    }
    assert_eq!(emu.store().items_in("alice@contoso.test", "contacts").unwrap().len(), 2, "created all the same");
}

#[tokio::test]
async fn a_recreated_folder_is_another_folder_and_a_renamed_one_is_not() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let create_folder = |name: &str| {
        format!(
            r#"<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:ContactsFolder><t:DisplayName>{name}</t:DisplayName></t:ContactsFolder></m:Folders></m:CreateFolder>"#,
            dfid("msgfolderroot")
        )
    };
    let a = c.call(&create_folder("Shared Contacts")).await;
    let first = find(&a.doc, "FolderId").unwrap().attr("Id").unwrap().to_owned();
    assert_eq!(emu.store().folder_id("alice@contoso.test", "Shared Contacts").as_deref(), Some(first.as_str()));
    emu.store().delete_folder("alice@contoso.test", "Shared Contacts").unwrap();
    assert!(emu.store().folder_id("alice@contoso.test", "Shared Contacts").is_none());
    let get_folder = |id: &str| {
        format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="{id}"/></m:FolderIds></m:GetFolder>"#
        )
    };
    assert_eq!(c.call(&get_folder(&first)).await.code(0), "ErrorFolderNotFound");
    let a = c.call(&create_folder("Shared Contacts")).await;
    let second = find(&a.doc, "FolderId").unwrap().attr("Id").unwrap().to_owned();
    assert_ne!(first, second, "the same name, another folder");

    emu.store().move_folder("alice@contoso.test", "Shared Contacts", Some("contacts"), Some("Team")).unwrap();
    let a = c.call(&get_folder(&second)).await;
    assert_eq!(a.code(0), "NoError");
    assert_eq!(find(&a.doc, "DisplayName").unwrap().text, "Team", "renamed and moved, same id");
    assert_eq!(emu.store().folder_id("alice@contoso.test", "Contacts/Team").as_deref(), Some(second.as_str()));
    assert!(emu.store().delete_folder("alice@contoso.test", "contacts").is_err(), "distinguished folders stay");
}

#[tokio::test]
async fn file_as_follows_the_names_while_it_has_a_mapping() {
    let emu = start_default().await;
    let c = Client::new(&emu, "bob");
    let plain = r#"<t:Contact><t:GivenName>Henrik</t:GivenName><t:Surname>Andersson</t:Surname></t:Contact>"#;
    let (id, key) = create(&c, &dfid("contacts"), plain).await.remove(0);
    let read = |id: String| {
        let c = c.clone();
        async move {
            let a = get(&c, "<t:BaseShape>AllProperties</t:BaseShape>", &[&id]).await;
            let contact = find(&a.doc, "Contact").unwrap().clone();
            (
                contact.child_text("FileAs").map(str::to_owned),
                contact.child_text("FileAsMapping").map(str::to_owned),
                contact.child_text("DisplayName").map(str::to_owned),
            )
        }
    };
    assert_eq!(
        read(id.clone()).await,
        (Some("Andersson, Henrik".into()), Some("LastCommaFirst".into()), Some("Henrik Andersson".into()))
    );
    // A new surname through UpdateItem, FileAs untouched: the store recomputes it.
    let rename = format!(
        r#"<m:UpdateItem ConflictResolution="NeverOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{key}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="contacts:Surname"/><t:Contact><t:Surname>Berg</t:Surname></t:Contact></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    let a = c.call(&rename).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let (_, key) = item_id(a.messages()[0]);
    assert_eq!(read(id.clone()).await.0.as_deref(), Some("Berg, Henrik"));
    // A FileAs of the client's own sticks only with the mapping None.
    let own = format!(
        r#"<m:UpdateItem ConflictResolution="NeverOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{key}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="contacts:FileAs"/><t:Contact><t:FileAs>Boss</t:FileAs></t:Contact></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="contacts:FileAsMapping"/><t:Contact><t:FileAsMapping>None</t:FileAsMapping></t:Contact></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    assert_eq!(c.call(&own).await.code(0), "NoError");
    assert_eq!(read(id).await.0.as_deref(), Some("Boss"));
}
