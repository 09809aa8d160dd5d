//! The service over Microsoft Graph: a group whose hub is a shared mailbox's contact folder and
//! whose members are Exchange Online mailboxes, opened by [`GraphFolders`] against the Graph
//! emulator over HTTP. Copies reach the members, an editor's edit reaches the hub, a dry run
//! writes nothing, and targets Graph cannot open are reported as configuration errors. A calendar
//! group (a shared mailbox's calendar as the hub, named calendars as targets) copies single
//! events and series.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::Arc;
use std::time::Duration;

use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, StateLocation, TargetFolder, WellKnownFolder,
};
use exchange_sync::{GraphFolders, PassOutcome, RunOptions, SyncService};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_graph::{ClientCredentials, GraphClient, Secret};
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};
use serde_json::json;

const FOLDER: &str = "Company Contacts";

fn target() -> TargetFolder {
    TargetFolder::Named { parent: WellKnownFolder::Contacts, name: FOLDER.into() }
}

fn group() -> GroupConfig {
    let hub = HubFolder::Mailbox { mailbox: "contacts@contoso.test".into(), folder: target() };
    let mut g = GroupConfig::new("company", "online", hub)
        .with_member(MemberConfig::two_way("alice@contoso.test"))
        .with_member(MemberConfig::one_way("carol@contoso.test"));
    g.default_target = target();
    g
}

fn service(emu: &RunningGraphEmulator, group: GroupConfig) -> SyncService {
    let mut config = Config {
        connections: vec![Connection::new("online", format!("{}/v1.0", emu.url()), Auth::None)],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(20);
    let credentials = ClientCredentials {
        authority: emu.authority(),
        client_id: emu.config().client_id.clone(),
        secret: Secret::new(emu.config().client_secret.clone()),
    };
    let client = GraphClient::builder(credentials).graph_url(emu.url()).build().unwrap();
    SyncService::new(config, Arc::new(GraphFolders::new(client)), Arc::new(MemoryStore::new())).unwrap()
}

fn folder_contacts(emu: &RunningGraphEmulator, mailbox: &str) -> Vec<graph_emulator::Contact> {
    emu.store().contacts_in(mailbox, FOLDER)
}

#[tokio::test]
async fn a_shared_mailbox_hub_reaches_graph_members_and_back() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 12, ..Default::default() }).await.unwrap();
    let service = service(&emu, group());

    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert_eq!(plan.groups[0].outcome, PassOutcome::Planned, "{:?}", plan.groups[0]);
    assert!(folder_contacts(&emu, "alice@contoso.test").is_empty(), "a dry run writes nothing");

    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(folder_contacts(&emu, "alice@contoso.test").len(), 12);
    assert_eq!(folder_contacts(&emu, "carol@contoso.test").len(), 12);

    let copy = folder_contacts(&emu, "alice@contoso.test").remove(0);
    emu.store().edit_contact("alice@contoso.test", &copy.id, "jobTitle", json!("Head of Sales")).unwrap();
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let titles: Vec<_> = folder_contacts(&emu, "contacts@contoso.test")
        .into_iter()
        .filter(|c| c.properties.get("jobTitle") == Some(&json!("Head of Sales")))
        .collect();
    assert_eq!(titles.len(), 1, "the editor's edit did not reach the hub");
    let carol: Vec<_> = folder_contacts(&emu, "carol@contoso.test")
        .into_iter()
        .filter(|c| c.properties.get("jobTitle") == Some(&json!("Head of Sales")))
        .collect();
    assert_eq!(carol.len(), 1, "the edit did not reach the reader");
}

#[tokio::test]
async fn targets_graph_cannot_open_are_configuration_errors() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 1, ..Default::default() }).await.unwrap();
    let public_hub = GroupConfig::new("public", "online", HubFolder::PublicFolder("Company Contacts".into()))
        .with_member(MemberConfig::one_way("alice@contoso.test"));
    let report = service(&emu, public_hub).run_once(RunOptions::default()).await.unwrap();
    assert!(!report.is_clean());
    let text = format!("{report:?}");
    assert!(text.contains("Graph has no public folders"), "{text}");
}

#[tokio::test]
async fn a_shared_calendar_hub_reaches_graph_members_calendars() {
    let emu = GraphEmulator::start(GraphEmulatorConfig::default()).await.unwrap();
    let hub_box = "contacts@contoso.test";
    let calendar = "Company Calendar";
    let target = TargetFolder::Named { parent: WellKnownFolder::Calendar, name: calendar.into() };
    // The hub calendar with a single event and a weekly series.
    let hub_id = graph_emulator::calendar::create_calendar(&mut emu.store(), hub_box, &json!({"name": calendar}))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for event in [
        json!({"subject": "Quarterly review", "start": {"dateTime": "2026-03-31T15:00:00", "timeZone": "W. Europe Standard Time"},
               "end": {"dateTime": "2026-03-31T17:00:00", "timeZone": "W. Europe Standard Time"}}),
        json!({"subject": "All-hands", "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "W. Europe Standard Time"},
               "end": {"dateTime": "2026-03-02T10:30:00", "timeZone": "W. Europe Standard Time"},
               "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                              "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 10}}}),
    ] {
        graph_emulator::calendar::create_event(&mut emu.store(), hub_box, Some(&hub_id), &event).unwrap();
    }
    let hub = HubFolder::Mailbox { mailbox: hub_box.into(), folder: target.clone() };
    let mut g = GroupConfig::new("calendar", "online", hub)
        .with_member(MemberConfig::two_way("alice@contoso.test"))
        .with_member(MemberConfig::one_way("carol@contoso.test"));
    g.default_target = target;
    let service = service(&emu, g);
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    for member in ["alice@contoso.test", "carol@contoso.test"] {
        let events = graph_emulator::calendar::events_in(&mut emu.store(), member, calendar);
        assert_eq!(events.len(), 2, "{member}");
        assert_eq!(events.iter().filter(|e| e.is_master()).count(), 1, "{member}: the series is a series");
    }
    // A second pass finds nothing to do.
    let plan = service.plan(RunOptions::default()).await.unwrap();
    assert_eq!(plan.groups[0].outcome, PassOutcome::Planned, "{:?}", plan.groups[0]);
    let report = service.run_once(RunOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let after = graph_emulator::calendar::events_in(&mut emu.store(), "carol@contoso.test", calendar);
    assert_eq!(after.len(), 2, "no duplicates after a second pass");
}
