//! HTTP and SOAP level behaviour: authentication, hardening, versions, impersonation,
//! throttling, fault injection, autodiscover, ExpandDL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ews_emulator::{BackOffAnswer, EmulatorConfig, Fault, MailboxAccess, MailboxThrottle, ServerVersion};
use std::time::Duration;

const GET_CONTACTS: &str = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="contacts"/></m:FolderIds></m:GetFolder>"#;

#[tokio::test]
async fn basic_auth_is_required() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    let http = reqwest::Client::new();
    let r = http.post(emu.url()).body(c.envelope(GET_CONTACTS)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let r =
        http.post(emu.url()).basic_auth("alice", Some("wrong")).body(c.envelope(GET_CONTACTS)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(emu.url()).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = http.post(format!("http://{}/other", emu.addr())).basic_auth("alice", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let ok = c.call(GET_CONTACTS).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.code(0), "NoError");
    let info = find(&ok.doc, "ServerVersionInfo").expect("ServerVersionInfo header");
    assert_eq!(info.attr("MajorVersion"), Some("15"));
    // Other spellings of the login work too.
    let c2 = Client::new(&emu, "CONTOSO\\bob");
    assert_eq!(c2.call(GET_CONTACTS).await.code(0), "NoError");
}

#[tokio::test]
async fn hostile_and_broken_requests_get_faults_not_crashes() {
    let emu = start(EmulatorConfig { contacts: 1, max_request_bytes: 64 * 1024, ..Default::default() }).await;
    let c = Client::new(&emu, "alice");
    let cases: Vec<(String, &str)> = vec![
        ("<not xml".into(), "ErrorSchemaValidation"),
        (r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol2;</soap:Body></soap:Envelope>"#.into(), "ErrorSchemaValidation"),
        (c.envelope(GET_CONTACTS).replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"), "ErrorSchemaValidation"),
        (c.envelope(GET_CONTACTS).replace("xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"", "xmlns:m=\"urn:wrong\""), "ErrorSchemaValidation"),
        (c.envelope("<m:FrobnicateItem/>"), "ErrorInvalidRequest"),
        (format!("<a>{}</a>", "<b>".repeat(200)), "ErrorSchemaValidation"),
        (c.envelope("<m:GetItem><m:ItemIds/></m:GetItem>"), "ErrorSchemaValidation"),
    ];
    for (payload, code) in cases {
        let r = c.raw(payload.clone()).await;
        assert_eq!(r.status(), 500, "{payload}");
        let text = r.text().await.unwrap();
        let doc = ews_emulator::xml::parse(text.as_bytes()).unwrap();
        assert!(find(&doc, "faultcode").unwrap().text.ends_with(code), "{payload} -> {text}");
    }
    let big = "x".repeat(100 * 1024);
    assert_eq!(c.raw(big).await.status(), 413);
    // Still serving after all that.
    assert_eq!(c.call(GET_CONTACTS).await.code(0), "NoError");
}

#[tokio::test]
async fn request_versions_are_checked() {
    let emu =
        start(EmulatorConfig { contacts: 1, server_version: ServerVersion::Exchange2010Sp2, ..Default::default() })
            .await;
    let mut c = Client::new(&emu, "alice");
    c.version = "Exchange2010_SP1".into();
    let ok = c.call(GET_CONTACTS).await;
    assert_eq!(ok.code(0), "NoError");
    assert_eq!(find(&ok.doc, "ServerVersionInfo").unwrap().attr("Version"), Some("Exchange2010_SP2"));
    c.version = "Exchange2013".into();
    let a = c.call(GET_CONTACTS).await;
    assert_eq!((a.status, a.fault_code().as_deref()), (500, Some("ErrorInvalidServerVersion")));
    c.version = "Exchange2099".into();
    assert_eq!(c.call(GET_CONTACTS).await.fault_code().as_deref(), Some("ErrorInvalidServerVersion"));
}

#[tokio::test]
async fn impersonation_and_access_rights() {
    let emu = start_default().await;
    // sync-admin acting as alice sees alice's folders.
    let admin_as_alice = Client::new(&emu, "sync-admin").impersonating("alice@contoso.test");
    let a = admin_as_alice.call(GET_CONTACTS).await;
    assert_eq!(a.code(0), "NoError");
    let alice = Client::new(&emu, "alice");
    let own = alice.call(GET_CONTACTS).await;
    assert_eq!(find(&a.doc, "FolderId").unwrap().attr("Id"), find(&own.doc, "FolderId").unwrap().attr("Id"));
    // Without the role: denied.
    let a = Client::new(&emu, "alice").impersonating("bob@contoso.test").call(GET_CONTACTS).await;
    assert_eq!((a.status, a.fault_code().as_deref()), (500, Some("ErrorImpersonateUserDenied")));
    let a = Client::new(&emu, "sync-admin").impersonating("ghost@contoso.test").call(GET_CONTACTS).await;
    assert_eq!(a.fault_code().as_deref(), Some("ErrorNonExistentMailbox"));
    // Another user's mailbox without rights, and an unknown mailbox.
    let other = |who: &str| {
        format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="contacts"><t:Mailbox><t:EmailAddress>{who}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>"#
        )
    };
    assert_eq!(alice.call(&other("bob@contoso.test")).await.code(0), "ErrorAccessDenied");
    assert_eq!(alice.call(&other("nobody@contoso.test")).await.code(0), "ErrorNonExistentMailbox");
    // Public folders: users read, only the owner writes.
    let pf = find_folder_id(&alice, "Company Contacts").await;
    let folder = format!(r#"<t:FolderId Id="{pf}"/>"#);
    let denied = alice
        .call(&format!(
            r#"<m:CreateItem><m:SavedItemFolderId>{folder}</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
            contact_xml("Ann", "Denied", "x")
        ))
        .await;
    assert_eq!(denied.code(0), "ErrorAccessDenied");
    let admin = Client::new(&emu, "sync-admin");
    let created = create(&admin, &folder, &contact_xml("Ann", "Allowed", "y")).await;
    assert_eq!(created.len(), 1);
    // Routing headers of Exchange 2013+ public folder access are accepted.
    let r = alice
        .http
        .post(&alice.url)
        .basic_auth("alice", Some(PASSWORD))
        .header("X-AnchorMailbox", "publicfolders@contoso.test")
        .header("X-PublicFolderMailbox", "publicfolders@contoso.test")
        .body(alice.envelope(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{folder}</m:FolderIds></m:GetFolder>"#)))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("NoError"));
    // A delegate with rights on bob's contacts reads them, but cannot subscribe.
    emu.store()
        .grant("bob@contoso.test", "contacts", "carol@contoso.test", ews_emulator::Permission::Reviewer)
        .unwrap();
    let carol = Client::new(&emu, "carol");
    let bob_contacts = r#"<t:DistinguishedFolderId Id="contacts"><t:Mailbox><t:EmailAddress>bob@contoso.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#;
    let a = carol.call(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{bob_contacts}</m:FolderIds></m:GetFolder>"#)).await;
    assert_eq!(a.code(0), "NoError");
    let a = carol.call(&format!(r#"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{bob_contacts}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#)).await;
    assert_eq!(a.code(0), "ErrorSubscriptionDelegateAccessNotSupported");
    // Alice cannot read an item of bob's mailbox by id either.
    let bobs = create(&Client::new(&emu, "bob"), &dfid("contacts"), &contact_xml("Bob", "Own", "z")).await;
    assert_eq!(get(&alice, "<t:BaseShape>IdOnly</t:BaseShape>", &[&bobs[0].0]).await.code(0), "ErrorAccessDenied");
}

#[tokio::test]
async fn concurrency_limit_answers_server_busy() {
    let emu = start(EmulatorConfig {
        contacts: 1,
        max_concurrency: 2,
        latency: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let c = Client::new(&emu, "alice");
    let calls = (0..8).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.call(GET_CONTACTS).await })
    });
    let answers = futures::future::join_all(calls).await;
    let busy: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().unwrap())
        .filter(|a| a.fault_code().as_deref() == Some("ErrorServerBusy"))
        .collect();
    assert!(!busy.is_empty(), "eight concurrent requests against a limit of two");
    assert!(busy.len() <= 6);
    let b = busy[0];
    assert_eq!(b.status, 500);
    let backoff =
        find_all(&b.doc, "Value").into_iter().find(|v| v.attr("Name") == Some("BackOffMilliseconds")).unwrap();
    assert!(backoff.text.parse::<u64>().unwrap() > 0);
    // Another account is not affected by alice's load.
    assert_eq!(Client::new(&emu, "bob").call(GET_CONTACTS).await.code(0), "NoError");
}

#[tokio::test]
async fn injected_faults() {
    let emu = start_default().await;
    let c = Client::new(&emu, "alice");
    emu.inject(Fault::ServiceUnavailable);
    let r = c.raw(c.envelope(GET_CONTACTS)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    emu.inject(Fault::InternalServerError);
    assert_eq!(c.call(GET_CONTACTS).await.fault_code().as_deref(), Some("ErrorInternalServerError"));
    emu.inject(Fault::ServerBusy);
    assert_eq!(c.call(GET_CONTACTS).await.fault_code().as_deref(), Some("ErrorServerBusy"));
    emu.inject(Fault::ServerBusyInMessage);
    let a = get(&c, "<t:BaseShape>IdOnly</t:BaseShape>", &["QUFNa0kAAAAAAQAAAAAAAAA="]).await;
    assert_eq!((a.status, a.code(0).as_str()), (200, "ErrorServerBusy"));
    let backoff =
        find_all(&a.doc, "Value").into_iter().find(|v| v.attr("Name") == Some("BackOffMilliseconds")).unwrap();
    assert!(backoff.text.parse::<u64>().unwrap() > 0);
    // A batch stopped after its first item: the rest is a Warning with ErrorBatchProcessingStopped.
    emu.inject(Fault::StopBatchAfter(1));
    let body = format!(
        r#"<m:CreateItem><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{}{}{}</m:Items></m:CreateItem>"#,
        dfid("contacts"),
        contact_xml("First", "Done", "b1"),
        contact_xml("Second", "Stopped", "b2"),
        contact_xml("Third", "Stopped", "b3")
    );
    let a = c.call(&body).await;
    assert_eq!(
        [a.code(0), a.code(1), a.code(2)],
        ["NoError".to_string(), "ErrorBatchProcessingStopped".into(), "ErrorBatchProcessingStopped".into()]
    );
    assert_eq!(a.messages()[1].attr("ResponseClass"), Some("Warning"));
    assert_eq!(emu.store().items_in("alice@contoso.test", "contacts").unwrap().len(), 1);
    // Drop after write: the read goes through, the write happens but its answer is lost.
    emu.inject(Fault::DropAfterWrite);
    assert_eq!(c.call(GET_CONTACTS).await.code(0), "NoError");
    let body = format!(
        r#"<m:CreateItem><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
        dfid("contacts"),
        contact_xml("Lost", "Answer", "o1")
    );
    let r = c.http.post(&c.url).basic_auth("alice", Some(PASSWORD)).body(c.envelope(&body)).send().await;
    assert!(r.is_err(), "the connection is dropped");
    let items = emu.store().items_in("alice@contoso.test", "contacts").unwrap();
    assert_eq!(items.len(), 2, "the write was performed");
}

#[tokio::test]
async fn a_busy_mailbox_counts_the_requests_sent_inside_its_back_off() {
    let emu = start(EmulatorConfig { contacts: 1, request_log: 100, ..Default::default() }).await;
    let admin = Client::new(&emu, "sync-admin");
    let bob = admin.clone().impersonating("bob@contoso.test");
    let carol = admin.clone().impersonating("carol@contoso.test");
    let dave = admin.clone().impersonating("dave@contoso.test");
    let long = Duration::from_secs(600);
    emu.throttle_mailbox("Bob@contoso.test", MailboxThrottle { answer: BackOffAnswer::ServerBusy, back_off: long });
    emu.throttle_mailbox(
        "carol@contoso.test",
        MailboxThrottle { answer: BackOffAnswer::ServerBusyInMessage, back_off: long },
    );
    emu.throttle_mailbox(
        "dave@contoso.test",
        MailboxThrottle { answer: BackOffAnswer::ServiceUnavailable, back_off: Duration::from_millis(1500) },
    );
    // Other mailboxes are served; each busy one is told to back off once, and everything sent
    // to it afterwards, inside the back-off, is counted.
    assert_eq!(admin.clone().impersonating("alice@contoso.test").call(GET_CONTACTS).await.code(0), "NoError");
    let first = bob.call(GET_CONTACTS).await;
    assert_eq!(first.fault_code().as_deref(), Some("ErrorServerBusy"));
    let asked = find_all(&first.doc, "Value").into_iter().find(|v| v.attr("Name") == Some("BackOffMilliseconds"));
    assert_eq!(asked.unwrap().text, "600000");
    let again = bob.call(GET_CONTACTS).await;
    let left = find_all(&again.doc, "Value").into_iter().find(|v| v.attr("Name") == Some("BackOffMilliseconds"));
    assert!(left.unwrap().text.parse::<u64>().unwrap() <= 600_000, "what is left of it");
    let a = carol.call(GET_CONTACTS).await;
    assert_eq!((a.status, a.code(0).as_str()), (200, "ErrorServerBusy"));
    let r = dave.raw(dave.envelope(GET_CONTACTS)).await;
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (503, "2"));
    let stats = emu.request_stats();
    assert_eq!((stats.back_offs, stats.inside_back_off), (4, 1));
    // Once its back-off has ended, dave is served again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(dave.call(GET_CONTACTS).await.code(0), "NoError");
    assert_eq!(emu.request_stats().inside_back_off, 1);
    let log = emu.request_log();
    let codes: Vec<(&str, &str, bool)> =
        log.iter().map(|r| (r.mailbox.as_str(), r.code.as_str(), r.inside_back_off)).collect();
    assert_eq!(
        codes,
        [
            ("alice@contoso.test", "NoError", false),
            ("bob@contoso.test", "ErrorServerBusy", false),
            ("bob@contoso.test", "ErrorServerBusy", true),
            ("carol@contoso.test", "ErrorServerBusy", false),
            ("dave@contoso.test", "HTTP 503", false),
            ("dave@contoso.test", "NoError", false),
        ]
    );
    assert_eq!(log[1].fingerprint, log[2].fingerprint, "the same request sent again");
    assert_ne!(log[0].fingerprint, log[1].fingerprint);
    assert_eq!(log[4].back_off, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn impersonation_can_be_withdrawn_from_one_mailbox() {
    let emu = start_default().await;
    let admin = Client::new(&emu, "sync-admin");
    let bob = admin.clone().impersonating("bob@contoso.test");
    emu.set_mailbox_access("bob@contoso.test", MailboxAccess::ImpersonationDenied);
    assert_eq!(bob.call(GET_CONTACTS).await.fault_code().as_deref(), Some("ErrorImpersonateUserDenied"));
    emu.set_mailbox_access("bob@contoso.test", MailboxAccess::NoMailbox);
    assert_eq!(bob.call(GET_CONTACTS).await.fault_code().as_deref(), Some("ErrorNonExistentMailbox"));
    let alice = admin.clone().impersonating("alice@contoso.test");
    assert_eq!(alice.call(GET_CONTACTS).await.code(0), "NoError", "other mailboxes are not affected");
    emu.set_mailbox_access("bob@contoso.test", MailboxAccess::Granted);
    assert_eq!(bob.call(GET_CONTACTS).await.code(0), "NoError");
    assert_eq!(emu.request_stats().back_offs, 0, "no back-off asked for");
}

#[tokio::test]
async fn random_busy_rate_is_reproducible() {
    let run = || async {
        let emu = start(EmulatorConfig { contacts: 1, busy_rate: 0.5, seed: 7, ..Default::default() }).await;
        let c = Client::new(&emu, "alice");
        let mut pattern = Vec::new();
        for _ in 0..12 {
            pattern.push(c.call(GET_CONTACTS).await.fault_code().is_some());
        }
        pattern
    };
    let a = run().await;
    assert!(a.iter().any(|b| *b) && a.iter().any(|b| !*b));
    assert_eq!(a, run().await);
}

#[tokio::test]
async fn expand_dl_and_autodiscover() {
    let emu = start_default().await;
    let c = Client::new(&emu, "carol");
    let a = c
        .call(r#"<m:ExpandDL><m:Mailbox><t:EmailAddress>sales@contoso.test</t:EmailAddress></m:Mailbox></m:ExpandDL>"#)
        .await;
    assert_eq!(a.code(0), "NoError");
    let mut members: Vec<String> = find_all(&a.doc, "EmailAddress").iter().map(|e| e.text.clone()).collect();
    members.sort();
    assert_eq!(members, ["alice@contoso.test", "bob@contoso.test"]);
    let a = c
        .call(r#"<m:ExpandDL><m:Mailbox><t:EmailAddress>nobody@contoso.test</t:EmailAddress></m:Mailbox></m:ExpandDL>"#)
        .await;
    assert_eq!(a.code(0), "ErrorNameResolutionNoResults");

    let req = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>carol@contoso.test</a:Mailbox></a:User><a:User><a:Mailbox>ghost@contoso.test</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>PublicFolderInformation</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#;
    let r = c.http.post(emu.autodiscover_url()).basic_auth("carol", Some(PASSWORD)).body(req).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc = ews_emulator::xml::parse(r.text().await.unwrap().as_bytes()).unwrap();
    let values: Vec<String> = find_all(&doc, "Value").iter().map(|v| v.text.clone()).collect();
    assert_eq!(values, [emu.url().to_string(), "publicfolders@contoso.test".to_string()]);
    assert_eq!(find_all(&doc, "ErrorCode").iter().filter(|e| e.text == "InvalidUser").count(), 1);
}

#[tokio::test]
async fn mutated_operations_always_get_an_answer() {
    use rand::{Rng, SeedableRng};
    let emu = start(EmulatorConfig { contacts: 3, trace_dir: None, ..Default::default() }).await;
    let c = Client::new(&emu, "alice");
    let id = create(&c, &dfid("contacts"), &contact_xml("Fuzz", "Target", "f")).await.remove(0).0;
    let bodies = [
        format!(r#"<m:CreateItem><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#, dfid("contacts"), contact_xml("A", "B", "c")),
        format!(r#"<m:UpdateItem ConflictResolution="NeverOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:IndexedFieldURI FieldURI="contacts:PhysicalAddress:City" FieldIndex="Business"/><t:Contact><t:PhysicalAddresses><t:Entry Key="Business"><t:City>Bern</t:City></t:Entry></t:PhysicalAddresses></t:Contact></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#),
        format!(r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="5" Offset="0" BasePoint="End"/><m:Restriction><t:IsEqualTo>{ORIGIN_URI}<t:FieldURIOrConstant><t:Constant Value="f"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindItem>"#, dfid("contacts")),
        format!(r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>{}</m:SyncFolderId><m:MaxChangesReturned>5</m:MaxChangesReturned></m:SyncFolderItems>"#, dfid("contacts")),
        r#"<m:Subscribe><m:PullSubscriptionRequest SubscribeToAllFolders="true"><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#.to_string(),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for round in 0..300 {
        let mut doc = c.envelope(&bodies[round % bodies.len()]).into_bytes();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..doc.len());
            doc[i] = b"<>/\"= aZ9:"[rng.gen_range(0..10)];
        }
        let r = c.raw(doc).await;
        assert!(matches!(r.status().as_u16(), 200 | 500), "{}", r.status());
    }
    assert_eq!(get(&c, "<t:BaseShape>IdOnly</t:BaseShape>", &[&id]).await.code(0), "NoError");
}

#[tokio::test]
async fn tls_with_a_generated_certificate() {
    let emu = start(EmulatorConfig { contacts: 1, tls: true, ..Default::default() }).await;
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    let pem = emu.certificate_pem().expect("a certificate with TLS on");
    let body = Client::new(&emu, "alice").envelope(GET_CONTACTS);
    // Without the certificate in the trust store, verification fails.
    let untrusting = reqwest::Client::builder().build().unwrap();
    assert!(untrusting.post(emu.url()).basic_auth("alice", Some(PASSWORD)).body(body.clone()).send().await.is_err());
    // With it, EWS works over HTTPS.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = trusting.post(emu.url()).basic_auth("alice", Some(PASSWORD)).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("NoError"));
    let plain = start(EmulatorConfig { contacts: 1, ..Default::default() }).await;
    assert!(plain.certificate_pem().is_none());
}
