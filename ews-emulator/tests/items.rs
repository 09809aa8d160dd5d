//! Folder and item operations: GetFolder, FindFolder, CreateFolder, SyncFolderHierarchy,
//! CreateItem, GetItem, FindItem, UpdateItem, DeleteItem, SyncFolderItems.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ews_emulator::EmulatorConfig;
use ews_emulator::xml::Element;

const PROBE: &str = r#"<t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="0x670A" PropertyType="SystemTime"/><t:ExtendedFieldURI PropertyTag="0x670B" PropertyType="Integer"/></t:AdditionalProperties>"#;

async fn probe(c: &Client, folder: &str) -> (String, String) {
    let a = c
        .call(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape>{PROBE}</m:FolderShape><m:FolderIds>{folder}</m:FolderIds></m:GetFolder>"#))
        .await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let values = find_all(&a.doc, "Value");
    (values[0].text.clone(), values[1].text.clone())
}

#[tokio::test]
async fn distinguished_folders_and_folder_operations() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let names = [
        "root",
        "msgfolderroot",
        "contacts",
        "calendar",
        "tasks",
        "notes",
        "inbox",
        "deleteditems",
        "sentitems",
        "drafts",
    ];
    let ids: String = names.iter().map(|n| dfid(n)).collect();
    let a = c.call(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds>{ids}</m:FolderIds></m:GetFolder>"#)).await;
    assert_eq!(a.messages().len(), names.len());
    assert!((0..names.len()).all(|i| a.code(i) == "NoError"), "{}", a.text);
    assert_eq!(find(a.messages()[2], "ContactsFolder").and_then(|f| f.child_text("DisplayName")), Some("Contacts"));
    assert!(find(a.messages()[3], "CalendarFolder").is_some());
    let a = c.call(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{}<t:FolderId Id="bm90LWFuLWlk"/></m:FolderIds></m:GetFolder>"#, dfid("archiveroot"))).await;
    assert_eq!(a.code(0), "ErrorFolderNotFound");
    assert_eq!(a.code(1), "ErrorInvalidIdMalformed");

    // CreateFolder below contacts, duplicate name refused, FindFolder sees it.
    let create = |name: &str| {
        format!(
            r#"<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:ContactsFolder><t:DisplayName>{name}</t:DisplayName></t:ContactsFolder></m:Folders></m:CreateFolder>"#,
            dfid("contacts")
        )
    };
    let a = c.call(&create("Company")).await;
    assert_eq!(a.code(0), "NoError");
    let new_id = find(&a.doc, "FolderId").unwrap().attr("Id").unwrap().to_string();
    assert_eq!(c.call(&create("company")).await.code(0), "ErrorFolderExists");
    let a = c.call(&format!(r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindFolder>"#, dfid("contacts"))).await;
    assert_eq!(find(&a.doc, "FolderId").unwrap().attr("Id"), Some(new_id.as_str()));
    assert_eq!(find(&a.doc, "RootFolder").unwrap().attr("TotalItemsInView"), Some("1"));
    let a = c.call(&format!(r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="3" Offset="0" BasePoint="Beginning"/><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindFolder>"#, dfid("msgfolderroot"))).await;
    let root = find(&a.doc, "RootFolder").unwrap();
    assert_eq!(root.attr("IncludesLastItemInRange"), Some("false"));
    assert_eq!(find_all(root, "FolderId").len(), 3);
    // Bob cannot create folders in alice's mailbox.
    let bob = Client::new(&emu, "bob");
    let a = bob.call(&format!(r#"<m:CreateFolder><m:ParentFolderId><t:FolderId Id="{new_id}"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>x</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#)).await;
    assert_eq!(a.code(0), "ErrorAccessDenied");
}

#[tokio::test]
async fn sync_folder_hierarchy_reports_new_folders() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let sync = |state: &str| {
        format!(
            r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:SyncFolderId>{}</m:SyncFolderId>{state}</m:SyncFolderHierarchy>"#,
            dfid("msgfolderroot")
        )
    };
    let a = c.call(&sync("")).await;
    assert_eq!(a.code(0), "NoError");
    assert!(find_all(&a.doc, "Create").len() >= 10);
    let state = find(&a.doc, "SyncState").unwrap().text.clone();
    c.call(&format!(r#"<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:TasksFolder><t:DisplayName>Projects</t:DisplayName></t:TasksFolder></m:Folders></m:CreateFolder>"#, dfid("tasks"))).await;
    let a = c.call(&sync(&format!("<m:SyncState>{state}</m:SyncState>"))).await;
    let creates = find_all(&a.doc, "Create");
    assert_eq!(creates.len(), 1, "{}", a.text);
    assert_eq!(find(creates[0], "DisplayName").unwrap().text, "Projects");
    let a = c.call(&format!(r#"<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:SyncFolderId>{}</m:SyncFolderId></m:SyncFolderHierarchy>"#, dfid("publicfoldersroot"))).await;
    assert_eq!(a.code(0), "ErrorInvalidOperation");
}

#[tokio::test]
async fn contacts_round_trip_every_field_and_extended_properties() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let ids = create(
        &c,
        &dfid("contacts"),
        &format!("{}{}", contact_xml("Zoë", "Müller", "g1:e1"), contact_xml("José", "García", "g1:e2")),
    )
    .await;
    assert_eq!(ids.len(), 2);
    let a = get(&c, "<t:BaseShape>AllProperties</t:BaseShape>", &[&ids[0].0]).await;
    let contact = find(&a.doc, "Contact").unwrap();
    assert_eq!(contact.child_text("GivenName"), Some("Zoë"));
    assert_eq!(contact.child_text("Surname"), Some("Müller"));
    assert_eq!(find(contact, "Body").unwrap().text, "Notes about Zoë");
    assert_eq!(contact.child("EmailAddresses").unwrap().children.len(), 2);
    assert_eq!(find(contact.child("PhysicalAddresses").unwrap(), "City").unwrap().text, "Zürich");
    assert_eq!(contact.child("PhoneNumbers").unwrap().children.len(), 2);
    assert!(contact.child("ImAddresses").is_some());
    assert_eq!(find(contact, "Categories").unwrap().children[0].text, "Customer");
    assert!(contact.child("ExtendedProperty").is_none(), "extended properties only on request");
    assert!(contact.child("LastModifiedTime").is_some() && contact.child("DateTimeCreated").is_some());
    assert_eq!(contact.child_text("ItemClass"), Some("IPM.Contact"));

    // IdOnly + additional: named extended property, indexed field, a simple field.
    let shape = format!(
        r#"<t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="contacts:Surname"/><t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress2"/><t:FieldURI FieldURI="item:LastModifiedTime"/>{ORIGIN_URI}</t:AdditionalProperties>"#
    );
    let a = get(&c, &shape, &[&ids[0].0, &ids[1].0]).await;
    let contacts = find_all(&a.doc, "Contact");
    assert_eq!(contacts.len(), 2);
    let names: Vec<&str> = contacts[0].children.iter().map(|e| &*e.name).collect();
    assert_eq!(names, ["ItemId", "ExtendedProperty", "LastModifiedTime", "EmailAddresses", "Surname"], "schema order");
    assert_eq!(find(contacts[1], "Value").unwrap().text, "g1:e2");
    assert_eq!(contacts[0].child("EmailAddresses").unwrap().children[0].attr("Key"), Some("EmailAddress2"));

    // Batched GetItem fails per item.
    let gone = ids[1].0.clone();
    let a = c
        .call(&format!(
            r#"<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{gone}"/></m:ItemIds></m:DeleteItem>"#
        ))
        .await;
    assert_eq!(a.code(0), "NoError");
    let a = get(&c, "<t:BaseShape>IdOnly</t:BaseShape>", &[&ids[0].0, &gone, "garbage"]).await;
    assert_eq!(
        [a.code(0), a.code(1), a.code(2)],
        ["NoError".to_string(), "ErrorItemNotFound".into(), "ErrorInvalidIdMalformed".into()]
    );
}

#[tokio::test]
async fn other_item_kinds() {
    let emu = start_default().await;
    let c = Client::new(&emu, "dave");
    let cal = create(&c, &dfid("calendar"), r#"<t:CalendarItem><t:Subject>Standup</t:Subject><t:Start>2026-02-02T09:00:00Z</t:Start><t:End>2026-02-02T09:15:00Z</t:End><t:Location>Room 1</t:Location><t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:EndDateRecurrence><t:StartDate>2026-02-02</t:StartDate><t:EndDate>2026-03-02</t:EndDate></t:EndDateRecurrence></t:Recurrence></t:CalendarItem><t:CalendarItem><t:Subject>Lunch</t:Subject><t:Start>2026-02-03T12:00:00Z</t:Start><t:End>2026-02-03T13:00:00Z</t:End></t:CalendarItem>"#).await;
    let a = get(&c, "<t:BaseShape>AllProperties</t:BaseShape>", &[&cal[0].0, &cal[1].0]).await;
    let items = find_all(&a.doc, "CalendarItem");
    assert_eq!(items[0].child_text("CalendarItemType"), Some("RecurringMaster"));
    assert_eq!(items[0].child_text("IsRecurring"), Some("true"));
    assert_eq!(items[1].child_text("CalendarItemType"), Some("Single"));
    let a = c.call(&format!(r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Backwards</t:Subject><t:Start>2026-02-03T12:00:00Z</t:Start><t:End>2026-02-03T11:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>"#, dfid("calendar"))).await;
    assert_eq!(a.code(0), "ErrorCalendarEndDateIsEarlierThanStartDate");
    let task = create(&c, &dfid("tasks"), r#"<t:Task><t:Subject>File taxes</t:Subject><t:DueDate>2026-04-30T00:00:00Z</t:DueDate><t:Status>NotStarted</t:Status></t:Task>"#).await;
    let note = create(&c, &dfid("notes"), r#"<t:Message><t:ItemClass>IPM.StickyNote</t:ItemClass><t:Subject>Call back</t:Subject><t:Body BodyType="Text">Call Zoë back</t:Body></t:Message>"#).await;
    let dl = create(&c, &dfid("contacts"), r#"<t:DistributionList><t:DisplayName>Team</t:DisplayName><t:Members><t:Member><t:Mailbox><t:Name>Alice</t:Name><t:EmailAddress>alice@contoso.test</t:EmailAddress></t:Mailbox></t:Member></t:Members></t:DistributionList>"#).await;
    let a = get(&c, "<t:BaseShape>AllProperties</t:BaseShape>", &[&task[0].0, &note[0].0, &dl[0].0]).await;
    assert_eq!(find(&a.doc, "Task").unwrap().child_text("Status"), Some("NotStarted"));
    assert_eq!(find(&a.doc, "Message").unwrap().child_text("ItemClass"), Some("IPM.StickyNote"));
    assert_eq!(find(&a.doc, "DistributionList").unwrap().child_text("ItemClass"), Some("IPM.DistList"));
    // CalendarView keeps the items overlapping the window: the day's occurrence of the daily
    // series (not its master) and the single item.
    let a = c.call(&format!(r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:CalendarView StartDate="2026-02-03T00:00:00Z" EndDate="2026-02-04T00:00:00Z"/><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindItem>"#, dfid("calendar"))).await;
    let ids: Vec<_> = find_all(&a.doc, "ItemId").iter().map(|i| i.attr("Id").unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&cal[0].0));
    assert_eq!(ids[1], cal[1].0);
    // The public calendar has a recurring event.
    let a = c.call(&format!(r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ParentFolderIds><t:FolderId Id="{}"/></m:ParentFolderIds></m:FindItem>"#, find_folder_id(&c, "Company Calendar").await)).await;
    assert_eq!(find_all(&a.doc, "CalendarItem").len(), 3);
    assert_eq!(find_all(&a.doc, "CalendarItemType").iter().filter(|t| t.text == "RecurringMaster").count(), 1);
}

fn find_item(folder: &str, view: &str, restriction: &str) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:LastModifiedTime"/></t:AdditionalProperties></m:ItemShape>{view}{restriction}<m:ParentFolderIds>{folder}</m:ParentFolderIds></m:FindItem>"#
    )
}

#[tokio::test]
async fn find_item_pages_caps_and_filters() {
    let emu = start(EmulatorConfig { contacts: 1205, ..Default::default() }).await;
    let c = Client::new(&emu, "alice");
    let pf = format!(r#"<t:FolderId Id="{}"/>"#, find_folder_id(&c, "Company Contacts").await);
    // Asking for more than 1000 gives 1000 and says there is more.
    let a = c
        .call(&find_item(
            &pf,
            r#"<m:IndexedPageItemView MaxEntriesReturned="5000" Offset="0" BasePoint="Beginning"/>"#,
            "",
        ))
        .await;
    let root = find(&a.doc, "RootFolder").unwrap();
    assert_eq!(find_all(root, "ItemId").len(), 1000);
    assert_eq!(root.attr("TotalItemsInView"), Some("1205"));
    assert_eq!(root.attr("IncludesLastItemInRange"), Some("false"));
    assert_eq!(root.attr("IndexedPagingOffset"), Some("1000"));
    let a = c
        .call(&find_item(
            &pf,
            r#"<m:IndexedPageItemView MaxEntriesReturned="1000" Offset="1000" BasePoint="Beginning"/>"#,
            "",
        ))
        .await;
    let root = find(&a.doc, "RootFolder").unwrap();
    assert_eq!(find_all(root, "ItemId").len(), 205);
    assert_eq!(root.attr("IncludesLastItemInRange"), Some("true"));
    // Restrictions: extended property and simple field equality.
    let mine = create(
        &c,
        &dfid("contacts"),
        &format!("{}{}", contact_xml("Ann", "One", "g:1"), contact_xml("Ben", "Two", "g:2")),
    )
    .await;
    let r = format!(
        r#"<m:Restriction><t:IsEqualTo>{ORIGIN_URI}<t:FieldURIOrConstant><t:Constant Value="g:2"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>"#
    );
    let a = c.call(&find_item(&dfid("contacts"), "", &r)).await;
    let found = find_all(&a.doc, "ItemId");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].attr("Id"), Some(mine[1].0.as_str()));
    let r = r#"<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="contacts:GivenName"/><t:FieldURIOrConstant><t:Constant Value="ann"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>"#;
    let a = c.call(&find_item(&dfid("contacts"), "", r)).await;
    assert_eq!(find(&a.doc, "ItemId").unwrap().attr("Id"), Some(mine[0].0.as_str()));
    let r = r#"<m:Restriction><t:Excludes><t:FieldURI FieldURI="item:Size"/><t:Bitmask Value="1"/></t:Excludes></m:Restriction>"#;
    let a = c.call(&find_item(&dfid("contacts"), "", r)).await;
    assert_eq!(a.code(0), "ErrorUnsupportedQueryFilter");
}

async fn update(c: &Client, id: &str, ck: &str, mode: &str, changes: &str) -> common::Answer {
    c.call(&format!(r#"<m:UpdateItem ConflictResolution="{mode}" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{ck}"/><t:Updates>{changes}</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#)).await
}

#[tokio::test]
async fn update_item_fields_and_change_keys() {
    let emu = start_default().await;
    let c = Client::new(&emu, "bob");
    let (id, ck0) = create(&c, &dfid("contacts"), &contact_xml("Inès", "Dubois", "g:9")).await.remove(0);
    let before = emu.store().items_in("bob@contoso.test", "contacts").unwrap()[0].item.modified;
    let changes = format!(
        r#"<t:SetItemField><t:FieldURI FieldURI="contacts:JobTitle"/><t:Contact><t:JobTitle>Director</t:JobTitle></t:Contact></t:SetItemField><t:SetItemField><t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress3"/><t:Contact><t:EmailAddresses><t:Entry Key="EmailAddress3">ines@third.example</t:Entry></t:EmailAddresses></t:Contact></t:SetItemField><t:SetItemField><t:IndexedFieldURI FieldURI="contacts:PhysicalAddress:City" FieldIndex="Business"/><t:Contact><t:PhysicalAddresses><t:Entry Key="Business"><t:City>Genève</t:City></t:Entry></t:PhysicalAddresses></t:Contact></t:SetItemField><t:DeleteItemField><t:IndexedFieldURI FieldURI="contacts:PhoneNumber" FieldIndex="MobilePhone"/></t:DeleteItemField><t:AppendToItemField><t:FieldURI FieldURI="item:Body"/><t:Contact><t:Body BodyType="Text"> More.</t:Body></t:Contact></t:AppendToItemField><t:SetItemField>{ORIGIN_URI}<t:Contact><t:ExtendedProperty>{ORIGIN_URI}<t:Value>g:10</t:Value></t:ExtendedProperty></t:Contact></t:SetItemField><t:DeleteItemField><t:FieldURI FieldURI="contacts:CompanyName"/></t:DeleteItemField>"#
    );
    let a = update(&c, &id, &ck0, "NeverOverwrite", &changes).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let ck1 = find(&a.doc, "ItemId").unwrap().attr("ChangeKey").unwrap().to_string();
    assert_ne!(ck0, ck1);
    let view = emu.store().items_in("bob@contoso.test", "contacts").unwrap().remove(0);
    assert!(view.item.modified > before);
    let shape = format!(
        r#"<t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties>{ORIGIN_URI}</t:AdditionalProperties>"#
    );
    let a = get(&c, &shape, &[&id]).await;
    let contact = find(&a.doc, "Contact").unwrap();
    assert_eq!(contact.child_text("JobTitle"), Some("Director"));
    assert_eq!(contact.child("EmailAddresses").unwrap().children.len(), 3);
    let business = &contact.child("PhysicalAddresses").unwrap().children[0];
    assert_eq!(business.child_text("City"), Some("Genève"));
    assert_eq!(business.child_text("Street"), Some("Main 1"));
    assert_eq!(contact.child("PhoneNumbers").unwrap().children.len(), 1);
    assert_eq!(contact.child_text("Body"), Some("Notes about Inès More."));
    assert_eq!(find(contact, "Value").unwrap().text, "g:10");
    assert!(contact.child("CompanyName").is_none());

    // A stale change key: refused under NeverOverwrite, accepted under AlwaysOverwrite.
    let set_title = |t: &str| {
        format!(
            r#"<t:SetItemField><t:FieldURI FieldURI="contacts:JobTitle"/><t:Contact><t:JobTitle>{t}</t:JobTitle></t:Contact></t:SetItemField>"#
        )
    };
    let a = update(&c, &id, &ck0, "NeverOverwrite", &set_title("Stale")).await;
    assert_eq!(a.code(0), "ErrorIrresolvableConflict");
    let a = update(&c, &id, &ck0, "AlwaysOverwrite", &set_title("Forced")).await;
    assert_eq!(a.code(0), "NoError");
    // An edit made on a phone changes the key too.
    emu.store().edit_item(&id, |i| i.set_field(Element::t_text("JobTitle", "Phone"))).unwrap();
    let a = update(
        &c,
        &id,
        find(&a.doc, "ItemId").unwrap().attr("ChangeKey").unwrap(),
        "NeverOverwrite",
        &set_title("Late"),
    )
    .await;
    assert_eq!(a.code(0), "ErrorIrresolvableConflict");
    // Read-only and missing values.
    let a = update(&c, &id, "", "AlwaysOverwrite", r#"<t:SetItemField><t:FieldURI FieldURI="item:DateTimeCreated"/><t:Contact><t:DateTimeCreated>2020-01-01T00:00:00Z</t:DateTimeCreated></t:Contact></t:SetItemField>"#).await;
    assert_eq!(a.code(0), "ErrorInvalidPropertySet");
    let a = update(&c, &id, "", "AlwaysOverwrite", r#"<t:SetItemField><t:FieldURI FieldURI="contacts:JobTitle"/><t:Contact><t:Surname>x</t:Surname></t:Contact></t:SetItemField>"#).await;
    assert_eq!(a.code(0), "ErrorIncorrectUpdatePropertyCount");
}

#[tokio::test]
async fn delete_types_and_the_change_probe() {
    let emu = start_default().await;
    let c = Client::new(&emu, "carol");
    let ids = create(&c, &dfid("contacts"), &[1, 2, 3].map(|i| contact_xml("P", &format!("N{i}"), "x")).concat()).await;
    let (t0, d0) = probe(&c, &dfid("contacts")).await;
    let del = |id: &str, mode: &str| {
        format!(r#"<m:DeleteItem DeleteType="{mode}"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#)
    };
    assert_eq!(c.call(&del(&ids[0].0, "HardDelete")).await.code(0), "NoError");
    assert_eq!(c.call(&del(&ids[1].0, "SoftDelete")).await.code(0), "NoError");
    assert_eq!(c.call(&del(&ids[2].0, "MoveToDeletedItems")).await.code(0), "NoError");
    assert_eq!(c.call(&del(&ids[2].0, "HardDelete")).await.code(0), "ErrorItemNotFound");
    assert!(emu.store().items_in("carol@contoso.test", "contacts").unwrap().is_empty());
    assert_eq!(emu.store().items_in("carol@contoso.test", "deleteditems").unwrap().len(), 1);
    let (t1, d1) = probe(&c, &dfid("contacts")).await;
    assert!(t1 >= t0, "{t1} >= {t0} (one-second resolution, as on Exchange)");
    assert_eq!((d0.as_str(), d1.as_str()), ("0", "3"));
}

async fn sync(c: &Client, state: Option<&str>, max: u32, ignore: &str) -> common::Answer {
    let state = state.map(|s| format!("<m:SyncState>{s}</m:SyncState>")).unwrap_or_default();
    c.call(&format!(r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>{}</m:SyncFolderId>{state}{ignore}<m:MaxChangesReturned>{max}</m:MaxChangesReturned></m:SyncFolderItems>"#, dfid("contacts"))).await
}

#[tokio::test]
async fn sync_folder_items_pages_and_reports_changes() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let ids =
        create(&c, &dfid("contacts"), &(0..5).map(|i| contact_xml("S", &format!("N{i}"), "x")).collect::<String>())
            .await;
    let a = sync(&c, None, 2, "").await;
    assert_eq!(find_all(&a.doc, "Create").len(), 2);
    assert_eq!(find(&a.doc, "IncludesLastItemInRange").unwrap().text, "false");
    let mut state = find(&a.doc, "SyncState").unwrap().text.clone();
    let mut seen = 2;
    loop {
        let a = sync(&c, Some(&state), 2, "").await;
        seen += find_all(&a.doc, "Create").len();
        state = find(&a.doc, "SyncState").unwrap().text.clone();
        if find(&a.doc, "IncludesLastItemInRange").unwrap().text == "true" {
            break;
        }
    }
    assert_eq!(seen, 5);
    assert!(find(&sync(&c, Some(&state), 512, "").await.doc, "Changes").unwrap().children.is_empty());
    // A phone edit, a delete, a new item; the new one is ignored by id.
    emu.store().edit_item(&ids[0].0, |i| i.set_field(Element::t_text("JobTitle", "Edited"))).unwrap();
    emu.store().delete_item(&ids[1].0).unwrap();
    let new = create(&c, &dfid("contacts"), &contact_xml("New", "One", "y")).await;
    let a = sync(&c, Some(&state), 512, &format!(r#"<m:Ignore><t:ItemId Id="{}"/></m:Ignore>"#, new[0].0)).await;
    let changes = find(&a.doc, "Changes").unwrap();
    let kinds: Vec<&str> = changes.children.iter().map(|c| &*c.name).collect();
    assert_eq!(kinds, ["Update", "Delete"], "{}", a.text);
    assert_eq!(find(&changes.children[1], "ItemId").unwrap().attr("Id"), Some(ids[1].0.as_str()));
    // Errors: corrupt state, public folder, out-of-range MaxChangesReturned.
    assert_eq!(sync(&c, Some("AAAA"), 10, "").await.code(0), "ErrorInvalidSyncStateData");
    let pf = find_folder_id(&c, "Company Contacts").await;
    let a = c.call(&format!(r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:FolderId Id="{pf}"/></m:SyncFolderId><m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"#)).await;
    assert_eq!(a.code(0), "ErrorInvalidOperation");
    let a = c.raw(c.envelope(&format!(r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>{}</m:SyncFolderId><m:MaxChangesReturned>513</m:MaxChangesReturned></m:SyncFolderItems>"#, dfid("contacts")))).await;
    assert_eq!(a.status(), 500);
}
