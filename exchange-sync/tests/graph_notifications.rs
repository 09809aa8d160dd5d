//! Real time over Graph: the service subscribes its Graph folders, answers the emulator's
//! validation handshake on its HTTP listener, and syncs when a change notification arrives, with
//! a poll interval of an hour so that only the notification can explain a quick sync. Also: a
//! notification with a wrong `clientState` is refused, subscriptions are renewed before they
//! expire, `missed` and `subscriptionRemoved` lead to a look at the delta link (and a new
//! subscription), the subscriptions are deleted at shutdown, and a service whose notification
//! URL Graph cannot reach falls back to polling.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HttpSettings, HubFolder, MemberConfig, StateLocation, TargetFolder,
    WellKnownFolder,
};
use exchange_sync::{GraphFolders, SyncService};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_graph::{ChangeNotifications, ClientCredentials, GraphClient, NotificationSettings, Secret};
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};
use serde_json::json;

const FOLDER: &str = "Company Contacts";
const HUB: &str = "contacts@contoso.test";

fn target() -> TargetFolder {
    TargetFolder::Named { parent: WellKnownFolder::Contacts, name: FOLDER.into() }
}

fn group() -> GroupConfig {
    let hub = HubFolder::Mailbox { mailbox: HUB.into(), folder: target() };
    let mut g = GroupConfig::new("company", "online", hub)
        .with_member(MemberConfig::two_way("alice@contoso.test"))
        .with_member(MemberConfig::one_way("carol@contoso.test"));
    g.default_target = target();
    g
}

/// A free port on loopback for the service's listener (its URL is configured before it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Running {
    service: SyncService,
    notifications: ChangeNotifications,
    url: String,
    run: tokio::task::JoinHandle<()>,
    http: exchange_sync::http::HttpServer,
}

/// The service over the emulator with notifications to `url` (served on `port`), polling only
/// every `poll`.
async fn start(emu: &RunningGraphEmulator, settings: NotificationSettings, port: u16, poll: Duration) -> Running {
    let url = settings.notification_url.clone();
    let listen: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut config = Config {
        connections: vec![Connection::new("online", format!("{}/v1.0", emu.url()), Auth::None)],
        groups: vec![group()],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(20);
    config.service.poll_interval = poll;
    config.service.resync_interval = Duration::from_secs(3600);
    config.service.http = Some(HttpSettings { listen, admin_token: None });
    config.service.graph_notification_url = Some(url.clone());
    let credentials = ClientCredentials {
        authority: emu.authority(),
        client_id: emu.config().client_id.clone(),
        secret: Secret::new(emu.config().client_secret.clone()),
    };
    let client = GraphClient::builder(credentials).graph_url(emu.url()).build().unwrap();
    let notifications = ChangeNotifications::new(settings);
    let folders = GraphFolders::new(client).with_notifications(notifications.clone());
    let service = SyncService::new(config, Arc::new(folders), Arc::new(MemoryStore::new())).unwrap();
    let http = exchange_sync::http::serve(service.clone(), listen, None).await.unwrap();
    let run = {
        let service = service.clone();
        tokio::spawn(async move { service.run().await.unwrap() })
    };
    Running { service, notifications, url, run, http }
}

fn contacts(emu: &RunningGraphEmulator, mailbox: &str) -> Vec<graph_emulator::Contact> {
    emu.store().contacts_in(mailbox, FOLDER)
}

fn with_title(emu: &RunningGraphEmulator, mailbox: &str, title: &str) -> usize {
    contacts(emu, mailbox).iter().filter(|c| c.properties.get("jobTitle") == Some(&json!(title))).count()
}

/// Waits up to `limit` for `f`; answers how long it took.
async fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    start.elapsed()
}

fn hub_subscription(emu: &RunningGraphEmulator) -> graph_emulator::Subscription {
    emu.subscriptions().into_iter().find(|s| s.resource.starts_with("users/contacts@")).expect("the hub's subscription")
}

fn edit_hub(emu: &RunningGraphEmulator, title: &str) {
    let first = contacts(emu, HUB).into_iter().min_by_key(|c| c.id.clone()).unwrap();
    emu.store().edit_contact(HUB, &first.id, "jobTitle", json!(title)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_bring_edits_at_once_and_subscriptions_live_and_end_with_the_service() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 5, ..Default::default() }).await.unwrap();
    let port = free_port();
    let mut settings = NotificationSettings::new(format!("http://127.0.0.1:{port}/graph/notify"));
    // Short-lived subscriptions, renewed a second after they are made.
    settings.lifetime = Duration::from_secs(4);
    settings.renew_before = Duration::from_secs(3);
    let r = start(&emu, settings, port, Duration::from_secs(3600)).await;

    wait_for(Duration::from_secs(30), "the initial copies", || contacts(&emu, "carol@contoso.test").len() == 5).await;
    wait_for(Duration::from_secs(30), "three subscriptions (hub, alice, carol)", || emu.subscriptions().len() == 3)
        .await;
    let subs = emu.subscriptions();
    for s in &subs {
        assert_eq!(s.change_type, "created,updated,deleted");
        assert_eq!(s.notification_url, r.url);
        assert!(s.lifecycle_url.is_some(), "a lifecycle URL is given");
        assert!(s.resource.contains("/contactFolders/") && s.resource.ends_with("/contacts"), "{}", s.resource);
        assert!(s.client_state.as_ref().is_some_and(|c| c.len() >= 32), "a random clientState");
    }
    let states: std::collections::BTreeSet<_> = subs.iter().map(|s| s.client_state.clone()).collect();
    assert_eq!(states.len(), 3, "each subscription has its own clientState");

    // An edit on the hub reaches the members through a notification: the poll interval is an hour.
    edit_hub(&emu, "Notified");
    let took = wait_for(Duration::from_secs(10), "the hub's edit at carol", || {
        with_title(&emu, "carol@contoso.test", "Notified") == 1
    })
    .await;
    assert!(r.notifications.accepted() >= 1, "no notification was taken");
    println!("hub edit reached a member {} ms after the edit", took.as_millis());

    // A notification with a wrong clientState is refused and wakes nothing.
    let hub = hub_subscription(&emu);
    let forged = json!({"value": [{
        "subscriptionId": hub.id, "clientState": "forged", "changeType": "updated",
        "resource": "Users/x/Contacts/y", "tenantId": emu.config().tenant_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
    }]});
    let answer = reqwest::Client::new().post(&r.url).json(&forged).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert_eq!(r.notifications.refused(), 1);
    let metrics = reqwest::get(r.url.replace("/graph/notify", "/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("exchange_sync_graph_notifications_total{outcome=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("exchange_sync_graph_subscriptions 3"), "{metrics}");

    // Renewal before expiry: the subscriptions outlive their 4 s lifetime and are the same ones.
    wait_for(Duration::from_secs(15), "renewals", || emu.subscriptions().iter().all(|s| s.renewals >= 2)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ids = |emu: &RunningGraphEmulator| {
        emu.subscriptions().into_iter().map(|s| s.id).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(ids(&emu), subs.iter().map(|s| s.id.clone()).collect(), "renewed, not replaced");
    assert!(r.notifications.renewed() >= 6);

    // Notifications lost, then `missed`: the service reads the delta link and finds the edit.
    emu.drop_notifications(true);
    edit_hub(&emu, "Missed");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(with_title(&emu, "carol@contoso.test", "Missed"), 0, "a lost notification cannot have brought it");
    emu.drop_notifications(false);
    assert!(emu.send_lifecycle_event(&hub_subscription(&emu).id, "missed").await.unwrap());
    wait_for(Duration::from_secs(10), "the missed edit at carol", || {
        with_title(&emu, "carol@contoso.test", "Missed") == 1
    })
    .await;

    // `subscriptionRemoved`: a new subscription is made and notifications flow again.
    let old = hub_subscription(&emu).id;
    assert!(emu.send_lifecycle_event(&old, "subscriptionRemoved").await.unwrap());
    wait_for(Duration::from_secs(10), "a new hub subscription", || {
        emu.subscriptions().iter().any(|s| s.resource.starts_with("users/contacts@") && s.id != old)
    })
    .await;
    assert_eq!(r.notifications.recreated(), 1);
    edit_hub(&emu, "After removal");
    wait_for(Duration::from_secs(10), "an edit after the new subscription", || {
        with_title(&emu, "carol@contoso.test", "After removal") == 1
    })
    .await;

    // `reauthorizationRequired`: the subscription is renewed at once.
    let before = r.notifications.renewed();
    let hub = hub_subscription(&emu);
    assert!(emu.send_lifecycle_event(&hub.id, "reauthorizationRequired").await.unwrap());
    wait_for(Duration::from_secs(10), "a renewal on reauthorizationRequired", || r.notifications.renewed() > before)
        .await;

    // Shutdown deletes every subscription.
    r.service.shutdown();
    tokio::time::timeout(Duration::from_secs(30), r.run).await.unwrap().unwrap();
    assert!(emu.subscriptions().is_empty(), "left behind: {:?}", emu.subscriptions());
    r.http.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_url_graph_cannot_reach_falls_back_to_polling() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 2, ..Default::default() }).await.unwrap();
    let port = free_port();
    // Nothing answers the validation handshake at this path: the listener has another one.
    let unreachable = NotificationSettings::new(format!("http://127.0.0.1:{}/graph/notify", free_port()));
    let r = start(&emu, unreachable, port, Duration::from_secs(1)).await;
    wait_for(Duration::from_secs(30), "the initial copies", || contacts(&emu, "carol@contoso.test").len() == 2).await;
    assert!(emu.subscriptions().is_empty(), "a subscription without a validated endpoint");
    edit_hub(&emu, "Polled");
    wait_for(Duration::from_secs(15), "the edit by polling", || with_title(&emu, "carol@contoso.test", "Polled") == 1)
        .await;
    assert_eq!(r.notifications.accepted(), 0);
    // Several polls went by: after the first refusal, no folder asked Graph again.
    assert_eq!(emu.subscription_validation_failures(), 1);
    r.service.shutdown();
    tokio::time::timeout(Duration::from_secs(30), r.run).await.unwrap().unwrap();
    r.http.stop();
}

#[tokio::test]
async fn check_says_whether_changes_come_by_notification_or_by_polling() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 1, ..Default::default() }).await.unwrap();
    let credentials = ClientCredentials {
        authority: emu.authority(),
        client_id: emu.config().client_id.clone(),
        secret: Secret::new(emu.config().client_secret.clone()),
    };
    let client = GraphClient::builder(credentials).graph_url(emu.url()).build().unwrap();
    let mut config = Config {
        connections: vec![Connection::new("online", format!("{}/v1.0", emu.url()), Auth::None)],
        groups: vec![group()],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    let polled =
        SyncService::new(config.clone(), Arc::new(GraphFolders::new(client.clone())), Arc::new(MemoryStore::new()))
            .unwrap();
    let notes = polled.check().await.remove(0).notes.join("\n");
    assert!(notes.contains("polling") && notes.contains("graph_notification_url"), "{notes}");

    let url = "https://sync.contoso.test/graph/notify";
    let notified = ChangeNotifications::new(NotificationSettings::new(url));
    let folders = GraphFolders::new(client).with_notifications(notified);
    let notified = SyncService::new(config, Arc::new(folders), Arc::new(MemoryStore::new())).unwrap();
    let notes = notified.check().await.remove(0).notes.join("\n");
    assert!(notes.contains("change notifications") && notes.contains(url), "{notes}");
    assert!(emu.subscriptions().is_empty(), "check subscribes nothing");
}
