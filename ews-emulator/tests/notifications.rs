//! Subscribe, GetEvents, GetStreamingEvents, Unsubscribe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use ews_emulator::{EmulatorConfig, ServerVersion};

fn pull_subscribe(folder: &str) -> String {
    format!(
        r#"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{folder}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#
    )
}

fn streaming_subscribe(folder: &str) -> String {
    format!(
        r#"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>{folder}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType><t:EventType>MovedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#
    )
}

fn get_events(id: &str, wm: &str) -> String {
    format!(r#"<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{wm}</m:Watermark></m:GetEvents>"#)
}

#[tokio::test]
async fn pull_subscription_sees_changes_with_watermarks() {
    let emu = start_default().await;
    let c = Client::new(&emu, "sync-admin").impersonating("alice@contoso.test");
    let a = c.call(&pull_subscribe(&dfid("contacts"))).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    let id = find(&a.doc, "SubscriptionId").unwrap().text.clone();
    let wm0 = find(&a.doc, "Watermark").unwrap().text.clone();
    let a = c.call(&get_events(&id, &wm0)).await;
    assert!(find(&a.doc, "StatusEvent").is_some());
    let created = create(&c, &dfid("contacts"), &contact_xml("Pull", "Event", "p")).await;
    emu.store().edit_item(&created[0].0, |i| i.set_field(ews_emulator::xml::Element::t_text("JobTitle", "x"))).unwrap();
    // A change elsewhere is not reported.
    create(&c, &dfid("calendar"), r#"<t:CalendarItem><t:Subject>x</t:Subject><t:Start>2026-01-01T10:00:00Z</t:Start><t:End>2026-01-01T11:00:00Z</t:End></t:CalendarItem>"#).await;
    let a = c.call(&get_events(&id, &wm0)).await;
    assert_eq!(a.code(0), "NoError");
    assert_eq!(find(&a.doc, "PreviousWatermark").unwrap().text, wm0);
    let ev = find(&a.doc, "CreatedEvent").expect("created event");
    assert_eq!(find(ev, "ItemId").unwrap().attr("Id"), Some(created[0].0.as_str()));
    assert!(find(&a.doc, "ModifiedEvent").is_some());
    let wm1 = find_all(&a.doc, "Watermark").last().unwrap().text.clone();
    let a = c.call(&get_events(&id, &wm1)).await;
    assert!(find(&a.doc, "StatusEvent").is_some() && find(&a.doc, "CreatedEvent").is_none());
    // Another account cannot read it, then unsubscribe.
    let other = Client::new(&emu, "bob");
    assert_eq!(other.call(&get_events(&id, &wm1)).await.code(0), "ErrorSubscriptionNotFound");
    let unsub = format!("<m:Unsubscribe><m:SubscriptionId>{id}</m:SubscriptionId></m:Unsubscribe>");
    assert_eq!(c.call(&unsub).await.code(0), "NoError");
    assert_eq!(c.call(&get_events(&id, &wm1)).await.code(0), "ErrorSubscriptionNotFound");
    assert_eq!(c.call(&unsub).await.code(0), "ErrorSubscriptionNotFound");
}

#[tokio::test]
async fn subscription_rules() {
    let emu = start_default().await;
    let alice = Client::new(&emu, "alice");
    // Public folders: one folder per subscription works.
    let pf = find_folder_id(&alice, "Company Contacts").await;
    assert_eq!(alice.call(&pull_subscribe(&format!(r#"<t:FolderId Id="{pf}"/>"#))).await.code(0), "NoError");
    // Another user's mailbox is not subscribable without rights.
    let other = r#"<t:DistinguishedFolderId Id="contacts"><t:Mailbox><t:EmailAddress>bob@contoso.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#;
    assert_eq!(alice.call(&pull_subscribe(other)).await.code(0), "ErrorAccessDenied");
    // Exchange 2007 SP1 has no streaming.
    let old =
        start(EmulatorConfig { contacts: 1, server_version: ServerVersion::Exchange2007Sp1, ..Default::default() })
            .await;
    let mut c = Client::new(&old, "alice");
    c.version = "Exchange2007_SP1".into();
    assert_eq!(c.call(&pull_subscribe(&dfid("contacts"))).await.code(0), "NoError");
    let a = c.call(&streaming_subscribe(&dfid("contacts"))).await;
    assert_eq!(a.status, 500);
    let a = c.call(r#"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>x</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"#).await;
    assert!(a.fault_code().is_some());
}

/// Splits a growing buffer into complete envelopes.
fn take_documents(buf: &mut String) -> Vec<String> {
    let mut docs = Vec::new();
    while let Some(end) = buf.find("</s:Envelope>") {
        let end = end + "</s:Envelope>".len();
        docs.push(buf[..end].to_string());
        buf.replace_range(..end, "");
    }
    docs
}

#[tokio::test]
async fn streaming_connection_carries_heartbeats_notifications_and_closes() {
    let emu = start(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_millis(300),
        streaming_minute: Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    let c = Client::new(&emu, "sync-admin").impersonating("bob@contoso.test");
    let a = c.call(&streaming_subscribe(&dfid("contacts"))).await;
    assert_eq!(a.code(0), "NoError", "{}", a.text);
    assert!(find(&a.doc, "Watermark").is_none());
    let id = find(&a.doc, "SubscriptionId").unwrap().text.clone();
    let mut resp = c
        .raw(c.envelope(&format!(r#"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"#)))
        .await;
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    let mut docs = Vec::new();
    let mut created = false;
    while let Some(chunk) = resp.chunk().await.expect("stream") {
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        for d in take_documents(&mut buf) {
            if !created {
                created = true;
                create(&c, &dfid("contacts"), &contact_xml("Stream", "Event", "s")).await;
            }
            docs.push(d);
        }
    }
    assert!(buf.trim().is_empty());
    let parsed: Vec<_> =
        docs.iter().map(|d| ews_emulator::xml::parse(d.as_bytes()).expect("each chunk is a whole envelope")).collect();
    let statuses: Vec<String> =
        parsed.iter().filter_map(|d| find(d, "ConnectionStatus").map(|s| s.text.clone())).collect();
    assert_eq!(statuses.first().map(String::as_str), Some("OK"));
    assert_eq!(statuses.last().map(String::as_str), Some("Closed"));
    let stats = emu.request_stats();
    assert_eq!((stats.streams_opened, stats.streams_closed, stats.streams_cut, stats.streams_dropped), (1, 1, 0, 0));
    let notes: Vec<_> = parsed.iter().filter_map(|d| find(d, "Notification")).collect();
    assert!(!notes.is_empty(), "the change arrives on the stream");
    assert_eq!(notes[0].ns, ews_emulator::xml::NS_MESSAGES, "m:Notification, as Exchange sends it");
    assert!(find(notes[0], "CreatedEvent").is_some());
    // An unknown subscription id answers an error instead of a stream.
    let a = c.call(r#"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>bm9wZQ==</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"#).await;
    assert_eq!(a.code(0), "ErrorInvalidSubscription");
}

#[tokio::test]
async fn a_cut_stream_ends_without_closed() {
    let emu = start(EmulatorConfig {
        contacts: 1,
        heartbeat_interval: Duration::from_millis(100),
        streaming_minute: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let c = Client::new(&emu, "sync-admin").impersonating("bob@contoso.test");
    let a = c.call(&streaming_subscribe(&dfid("contacts"))).await;
    let id = find(&a.doc, "SubscriptionId").unwrap().text.clone();
    let mut resp = c
        .raw(c.envelope(&format!(r#"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>30</m:ConnectionTimeout></m:GetStreamingEvents>"#)))
        .await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"));
    assert_eq!(emu.cut_streams(), 1);
    let mut rest = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.expect("ends").unwrap() {
        rest.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!rest.contains("Closed"), "{rest}");
    let stats = emu.request_stats();
    assert_eq!((stats.streams_opened, stats.streams_closed, stats.streams_cut, stats.streams_open), (1, 0, 1, 0));
    // A stream its client lets go of is counted as dropped.
    let mut resp = c
        .raw(c.envelope(&format!(r#"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{id}</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>30</m:ConnectionTimeout></m:GetStreamingEvents>"#)))
        .await;
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while emu.request_stats().streams_dropped == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = emu.request_stats();
    assert_eq!((stats.streams_opened, stats.streams_dropped, stats.streams_open), (2, 1, 0));
}

/// Sends `body` with routing headers and an optional cookie; answers (Set-Cookie, parsed answer).
async fn routed(c: &Client, body: &str, anchor: &str, cookie: Option<&str>) -> (Option<String>, Answer) {
    let mut req = c
        .http
        .post(&c.url)
        .basic_auth(&c.user, Some(common::PASSWORD))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("X-AnchorMailbox", anchor)
        .header("X-PreferServerAffinity", "true");
    if let Some(v) = cookie {
        req = req.header("Cookie", v);
    }
    let resp = req.body(c.envelope(body)).send().await.unwrap();
    let set_cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let doc = ews_emulator::xml::parse(text.as_bytes()).unwrap();
    (set_cookie, Answer { status, text, doc })
}

#[tokio::test]
async fn subscriptions_are_held_by_the_mailbox_server_named_in_the_affinity_cookie() {
    let emu = start(EmulatorConfig { contacts: 1, backend_servers: 2, ..Default::default() }).await;
    let mut cookies = Vec::new();
    let mut ids = Vec::new();
    for who in ["alice@contoso.test", "bob@contoso.test", "carol@contoso.test"] {
        let c = Client::new(&emu, "sync-admin").impersonating(who);
        let (cookie, a) = routed(&c, &streaming_subscribe(&dfid("contacts")), who, None).await;
        assert_eq!(a.code(0), "NoError", "{}", a.text);
        let cookie = cookie.expect("Subscribe with X-PreferServerAffinity answers the affinity cookie");
        assert!(cookie.starts_with("X-BackEndOverrideCookie="), "{cookie}");
        cookies.push(cookie.split(';').next().unwrap().to_string());
        ids.push(find(&a.doc, "SubscriptionId").unwrap().text.clone());
    }
    // Three consecutive mailboxes on two servers: two of them share one, the third is elsewhere.
    assert!(cookies[0] != cookies[1] || cookies[1] != cookies[2], "{cookies:?}");
    let (same, other) = if cookies[0] == cookies[1] {
        ((0, 1), 2)
    } else if cookies[0] == cookies[2] {
        ((0, 2), 1)
    } else {
        ((1, 2), 0)
    };
    let c = Client::new(&emu, "sync-admin").impersonating("alice@contoso.test");
    let gse = |ids: &[&String]| {
        let list: String = ids.iter().map(|i| format!("<t:SubscriptionId>{i}</t:SubscriptionId>")).collect();
        format!(
            "<m:GetStreamingEvents><m:SubscriptionIds>{list}</m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
        )
    };
    // Routed by the cookie of the third mailbox's server, the other two are not found.
    let (_, a) = routed(&c, &gse(&[&ids[same.0], &ids[same.1]]), "alice@contoso.test", Some(&cookies[other])).await;
    assert_eq!(a.code(0), "ErrorInvalidSubscription", "{}", a.text);
    assert_eq!(find_all(&a.doc, "SubscriptionId").len(), 2);
    // Routed to their own server, both stream on one connection.
    let before = emu.request_stats().streams_opened;
    let mut resp = c
        .http
        .post(&c.url)
        .basic_auth(&c.user, Some(common::PASSWORD))
        .header("Cookie", &cookies[same.0])
        .body(c.envelope(&gse(&[&ids[same.0], &ids[same.1]])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"));
    assert_eq!(emu.request_stats().streams_opened, before + 1);
    assert_eq!(emu.request_stats().streams_open, 1);
    // An expired subscription is reported on the stream that carries it.
    let bob = emu.store().mailbox_index("bob@contoso.test").unwrap();
    let alice = emu.store().mailbox_index("alice@contoso.test").unwrap();
    let carol = emu.store().mailbox_index("carol@contoso.test").unwrap();
    let expired_mailbox = [alice, bob, carol][same.1];
    assert_eq!(emu.store().hub().expire_mailbox(expired_mailbox), 1);
    let mut seen = String::new();
    while !seen.contains("ErrorSubscriptionIds") {
        let chunk = resp.chunk().await.unwrap().expect("stream still open");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains(&ids[same.1]) && seen.contains("ErrorSubscriptionNotFound"), "{seen}");
}
