//! Exchange Online from the configuration file: a `kind = "graph"` connection (application id,
//! client secret from a file, the authority and Graph host of the Graph emulator) drives the same
//! `exchange-sync` commands as an EWS one, over HTTP, for contact and calendar groups. Mistakes in
//! such a connection are refused with their place and what to write instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::cli::{cli, text};
use exchange_sync::Config;
use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};

const FOLDER: &str = "Company Contacts";

/// A configuration with one Graph connection and one group: the shared mailbox's `Company
/// Contacts` as the hub, alice (two-way) and carol (one-way) as members.
fn write_config(dir: &Path, emu: &RunningGraphEmulator, secret: &str) -> PathBuf {
    let group = format!(
        r#"
[[groups]]
id = "company"
connection = "online"
hub = {{ mailbox = "contacts@contoso.test", folder = "contacts/{FOLDER}" }}
target = "contacts/{FOLDER}"
"#
    );
    write_config_with(dir, emu, secret, &group)
}

/// A configuration with one Graph connection and `group` (its `[[groups]]` table without
/// members), alice (two-way) and carol (one-way) as members.
fn write_config_with(dir: &Path, emu: &RunningGraphEmulator, secret: &str, group: &str) -> PathBuf {
    std::fs::write(dir.join("client-secret"), format!("{secret}\n")).unwrap();
    let text = format!(
        r#"
[service]
state = "{state}"

[connections.online]
kind = "graph"
url = "{url}"
authority = "{url}"
tenant = "{tenant}"
auth = "client_secret"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
{group}
[[groups.members]]
mailbox = "alice@contoso.test"
direction = "two_way"

[[groups.members]]
mailbox = "carol@contoso.test"
direction = "one_way"
"#,
        state = dir.join("state.sqlite").display(),
        url = emu.url(),
        tenant = emu.config().tenant_id,
        client_id = emu.config().client_id,
        secret_file = dir.join("client-secret").display(),
    );
    let path = dir.join("exchange-sync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_graph_connection_in_the_file_runs_checks_and_syncs() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 7, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu, &emu.config().client_secret);

    let check = cli(&config, &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let run = cli(&config, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    for mailbox in ["alice@contoso.test", "carol@contoso.test"] {
        assert_eq!(emu.store().contacts_in(mailbox, FOLDER).len(), 7, "{mailbox}: {}", text(&run));
    }
    // A second run finds nothing to do: the copies are recognised, not made again.
    let again = cli(&config, &["run", "--once"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(emu.store().contacts_in("carol@contoso.test", FOLDER).len(), 7);
    let log = format!("{}{}", text(&check), text(&run));
    assert!(!log.contains(&emu.config().client_secret), "the client secret was printed");
}

#[tokio::test]
async fn a_calendar_group_in_the_file_checks_and_syncs_events_and_series() {
    let emu = GraphEmulator::start(GraphEmulatorConfig::default()).await.unwrap();
    let hub = "contacts@contoso.test";
    let calendar = "Company Calendar";
    let created =
        graph_emulator::calendar::create_calendar(&mut emu.store(), hub, &serde_json::json!({"name": calendar}));
    let hub_calendar = created.unwrap()["id"].as_str().unwrap().to_owned();
    for event in [
        serde_json::json!({"subject": "Review", "start": {"dateTime": "2026-03-31T15:00:00", "timeZone": "UTC"},
                           "end": {"dateTime": "2026-03-31T16:00:00", "timeZone": "UTC"}}),
        serde_json::json!({"subject": "All-hands", "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "UTC"},
                           "end": {"dateTime": "2026-03-02T10:30:00", "timeZone": "UTC"},
                           "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                                          "range": {"type": "noEnd", "startDate": "2026-03-02"}}}),
    ] {
        graph_emulator::calendar::create_event(&mut emu.store(), hub, Some(&hub_calendar), &event).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let group = format!(
        r#"
[[groups]]
id = "calendar"
connection = "online"
hub = {{ mailbox = "{hub}", folder = "calendar/{calendar}" }}
target = "calendar/{calendar}"
"#
    );
    let config = write_config_with(dir.path(), &emu, &emu.config().client_secret, &group);
    let check = cli(&config, &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let run = cli(&config, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    for mailbox in ["alice@contoso.test", "carol@contoso.test"] {
        let events = graph_emulator::calendar::events_in(&mut emu.store(), mailbox, calendar);
        assert_eq!(events.len(), 2, "{mailbox}: {}", text(&run));
        assert_eq!(events.iter().filter(|e| e.is_master()).count(), 1, "{mailbox}: the series is a series");
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_auth_failure_that_names_the_application() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 1, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu, "not-the-secret");
    let check = cli(&config, &["check"]).await;
    let out = text(&check);
    assert_eq!(check.status.code(), Some(4), "{out}");
    assert!(out.contains(&emu.config().client_id), "the hint names the application: {out}");
    assert!(!out.contains("not-the-secret"), "the secret was printed: {out}");
    assert!(emu.store().contacts_in("alice@contoso.test", FOLDER).is_empty());
}

/// A group on the Graph connection `online`, for the tests of configuration mistakes.
const GROUP_ON_ONLINE: &str = r#"
[[groups]]
id = "company"
connection = "online"
hub = { mailbox = "contacts@contoso.test", folder = "contacts/Company Contacts" }
target = "contacts/Company Contacts"
[[groups.members]]
mailbox = "alice@contoso.test"
direction = "one_way"
"#;

#[test]
fn graph_connection_mistakes_are_refused_with_their_place() {
    let base = r#"
[connections.online]
kind = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret_env = "GRAPH_SECRET"
"#;
    let group = GROUP_ON_ONLINE;
    let cases = [
        ("auth = \"ntlm\"\nusername = \"x\"\npassword_env = \"P\"\n", "auth = \"client_secret\""),
        ("auth = \"client_secret\"\nautodiscover = \"a@contoso.test\"\n", "autodiscover belongs to EWS connections"),
        ("auth = \"client_secret\"\nimpersonation = false\n", "impersonation is EWS's"),
    ];
    for (extra, expected) in cases {
        let text = format!("{base}{extra}{group}");
        let e = Config::from_toml_str(&text, None).err().unwrap_or_else(|| panic!("accepted: {extra}"));
        let message = e.to_string();
        assert!(message.contains(expected), "{extra}: {message}");
        assert!(message.contains("connections[0]"), "{extra}: the place is named: {message}");
    }
    // client_secret on an EWS connection.
    let ews = "[connections.lab]\nurl = \"https://mail.contoso.test/EWS/Exchange.asmx\"\nauth = \"client_secret\"\nclient_secret_env = \"S\"\n";
    let e = Config::from_toml_str(&format!("{ews}{}", group.replace("\"online\"", "\"lab\"")), None).err().unwrap();
    assert!(e.to_string().contains("add kind = \"graph\""), "{e}");
    // The defaults: the public cloud's Graph and authority.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let with_file =
        base.replace("client_secret_env = \"GRAPH_SECRET\"", &format!("client_secret_file = \"{}\"", secret.display()));
    let ok = Config::from_toml_str(&format!("{with_file}auth = \"client_secret\"\n{group}"), None).unwrap().config;
    let c = &ok.connections[0];
    assert!(c.is_graph());
    assert_eq!(c.endpoint, exchange_sync::config::Endpoint::Graph("https://graph.microsoft.com".into()));
    match &c.auth {
        exchange_sync::config::Auth::ClientSecret { authority, .. } => {
            assert_eq!(authority, "https://login.microsoftonline.com/contoso.onmicrosoft.com")
        }
        other => panic!("{other:?}"),
    }
}

/// A hybrid organisation from the configuration file: the hub is the on-premises public folder
/// `Company Contacts` over EWS (connection `lab`), alice (two-way) and carol (one-way) are
/// Exchange Online mailboxes over Graph (connection `online`, named on the member), dave stays on
/// premises. alice's own contact in the folder the group writes to is hers.
fn write_hybrid_config(dir: &Path, ews: &ews_emulator::RunningEmulator, graph: &RunningGraphEmulator) -> PathBuf {
    std::fs::write(dir.join("password"), format!("{}\n", common::PASSWORD)).unwrap();
    std::fs::write(dir.join("client-secret"), format!("{}\n", graph.config().client_secret)).unwrap();
    let text = format!(
        r#"
[service]
state = "{state}"

[connections.lab]
url = "{ews}"
auth = "basic"
username = "{admin}"
password_file = "{password}"

[connections.online]
kind = "graph"
url = "{graph}"
authority = "{graph}"
tenant = "{tenant}"
auth = "client_secret"
client_id = "{client_id}"
client_secret_file = "{secret_file}"

[[groups]]
id = "company"
connection = "lab"
hub = {{ public_folder = "Company Contacts" }}
target = "contacts/{FOLDER}"
match_key = ["email1.address"]

[[groups.members]]
mailbox = "alice@contoso.test"
connection = "online"
direction = "two_way"

[[groups.members]]
mailbox = "carol@contoso.test"
connection = "online"
direction = "one_way"

[[groups.members]]
mailbox = "dave@contoso.test"
direction = "one_way"
"#,
        state = dir.join("state.sqlite").display(),
        ews = ews.url(),
        admin = common::ADMIN,
        password = dir.join("password").display(),
        graph = graph.url(),
        tenant = graph.config().tenant_id,
        client_id = graph.config().client_id,
        secret_file = dir.join("client-secret").display(),
    );
    let path = dir.join("exchange-sync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The names of the contacts of a Graph folder, sorted.
fn graph_names(graph: &RunningGraphEmulator, mailbox: &str) -> Vec<String> {
    let mut names: Vec<String> = graph
        .store()
        .contacts_in(mailbox, FOLDER)
        .iter()
        .filter_map(|c| c.properties.get("displayName").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// alice's own contact `Mum`, made in the folder the group will write to before the group exists:
/// hers, never the group's. Answers its id and version.
fn alice_keeps_her_own_contact(graph: &RunningGraphEmulator) -> (String, String) {
    let alice = "alice@contoso.test";
    let folder = graph.store().create_folder(alice, &serde_json::json!({"displayName": FOLDER})).unwrap();
    let folder_id = folder["id"].as_str().unwrap().to_owned();
    let mum =
        graph.store().create_contact(alice, Some(&folder_id), &serde_json::json!({"displayName": "Mum"})).unwrap();
    (mum["id"].as_str().unwrap().to_owned(), mum["changeKey"].as_str().unwrap().to_owned())
}

/// Each member holds every hub contact once (`hub_names`, sorted), alice beside her own contact,
/// which nothing wrote to.
fn assert_members_hold_the_hub_once(graph: &RunningGraphEmulator, hub_names: &[String], mum: &(String, String)) {
    assert_eq!(graph_names(graph, "carol@contoso.test"), hub_names, "carol: a copy missing or made twice");
    let mut with_mum = hub_names.to_vec();
    with_mum.push("Mum".into());
    with_mum.sort();
    assert_eq!(graph_names(graph, "alice@contoso.test"), with_mum, "alice: a copy missing or made twice");
    let now = graph.store().contacts_in("alice@contoso.test", FOLDER).into_iter().find(|c| c.id == mum.0);
    assert_eq!(now.map(|c| c.change_key), Some(mum.1.clone()), "alice's own contact was written");
}

#[tokio::test]
async fn a_hybrid_group_from_the_file_syncs_a_public_folder_with_graph_members() {
    const HUB_CONTACTS: usize = 6;
    let ews = common::emulator(HUB_CONTACTS).await;
    let graph = GraphEmulator::start(GraphEmulatorConfig::default()).await.unwrap();
    let alice = "alice@contoso.test";
    let mum = alice_keeps_her_own_contact(&graph);
    let dir = tempfile::tempdir().unwrap();
    let path = write_hybrid_config(dir.path(), &ews, &graph);

    let offline = cli(&path, &["check", "--offline"]).await;
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));
    assert!(
        text(&offline).contains("alice@contoso.test (two-way) into contacts/Company Contacts on connection online")
    );
    let check = cli(&path, &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let run = cli(&path, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let config = Config::from_toml_str(&std::fs::read_to_string(&path).unwrap(), None).unwrap().config;
    let folders = common::Folders::new(&config).await;
    let hub_names = common::names(&folders.hub().await).await;
    assert_eq!(hub_names.len(), HUB_CONTACTS);
    assert_eq!(common::names(&folders.member("dave@contoso.test").await).await, hub_names, "the EWS member");
    assert_members_hold_the_hub_once(&graph, &hub_names, &mum);

    // alice edits a copy on her phone (Exchange Online): the hub and both other members get it.
    let name = hub_names[0].clone();
    let copy = graph
        .store()
        .contacts_in(alice, FOLDER)
        .into_iter()
        .find(|c| c.properties.get("displayName").and_then(|v| v.as_str()) == Some(name.as_str()))
        .unwrap();
    graph.store().edit_contact(alice, &copy.id, "jobTitle", serde_json::json!("Head of Hybrid")).unwrap();
    let again = cli(&path, &["run", "--once"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let job = exchange_sync_core::field::JOB_TITLE;
    assert_eq!(common::field_of(&folders.hub().await, &name, job).await.as_deref(), Some("Head of Hybrid"));
    assert_eq!(
        common::field_of(&folders.member("dave@contoso.test").await, &name, job).await.as_deref(),
        Some("Head of Hybrid")
    );
    let carol_copy = graph.store().contacts_in("carol@contoso.test", FOLDER);
    let carol_job = carol_copy
        .iter()
        .find(|c| c.properties.get("displayName").and_then(|v| v.as_str()) == Some(name.as_str()))
        .and_then(|c| c.properties.get("jobTitle").and_then(|v| v.as_str()).map(str::to_owned));
    assert_eq!(carol_job.as_deref(), Some("Head of Hybrid"));

    // Nothing is made twice across the two transports, and alice's own contact is untouched.
    assert_eq!(common::names(&folders.hub().await).await.len(), HUB_CONTACTS);
    assert_members_hold_the_hub_once(&graph, &hub_names, &mum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_service_killed_while_it_creates_copies_restarts_without_duplicates() {
    const HUB_CONTACTS: usize = 200;
    let ews = common::emulator(HUB_CONTACTS).await;
    // Slow answers from Exchange Online, so that the kill lands while most copies are to come.
    let graph = GraphEmulator::start(GraphEmulatorConfig {
        latency: std::time::Duration::from_millis(40),
        ..Default::default()
    })
    .await
    .unwrap();
    let mum = alice_keeps_her_own_contact(&graph);
    let dir = tempfile::tempdir().unwrap();
    let path = write_hybrid_config(dir.path(), &ews, &graph);

    let service = common::cli::Service::start(&path, &[]);
    let copies = |graph: &RunningGraphEmulator| {
        ["alice@contoso.test", "carol@contoso.test"]
            .iter()
            .map(|m| graph.store().contacts_in(m, FOLDER).len())
            .sum::<usize>()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while copies(&graph) <= 1 {
        assert!(tokio::time::Instant::now() < deadline, "no copy was ever written: {}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    service.kill().await;
    let written = copies(&graph);
    assert!(written < 1 + 2 * HUB_CONTACTS, "the kill came too late to interrupt anything ({written} copies)");

    // The restart finds what the killed process wrote by its origin stamp and makes the rest.
    let run = cli(&path, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let config = Config::from_toml_str(&std::fs::read_to_string(&path).unwrap(), None).unwrap().config;
    let folders = common::Folders::new(&config).await;
    let hub_names = common::names(&folders.hub().await).await;
    assert_eq!(hub_names.len(), HUB_CONTACTS);
    assert_members_hold_the_hub_once(&graph, &hub_names, &mum);
    assert_eq!(common::names(&folders.member("dave@contoso.test").await).await, hub_names, "dave (EWS)");
}

#[test]
fn a_member_on_an_unknown_connection_is_refused_with_its_place() {
    let text = r#"
[connections.lab]
url = "https://mail.contoso.test/EWS/Exchange.asmx"
auth = "basic"
username = "admin@contoso.test"
password_env = "P"

[[groups]]
id = "company"
connection = "lab"
hub = { public_folder = "Company Contacts" }
[[groups.members]]
mailbox = "alice@contoso.test"
connection = "onlin"
direction = "one_way"
"#;
    let Err(e) = Config::from_toml_str(text, None) else { panic!("accepted") };
    let message = e.to_string();
    assert!(message.contains("groups[0].members[0].connection"), "{message}");
    assert!(message.contains("no connection has the id \"onlin\""), "{message}");
}

#[tokio::test]
async fn members_of_a_microsoft_365_group_are_expanded_through_graph() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 4, ..Default::default() }).await.unwrap();
    // sales: alice, the nested team (bob), and an external partner, who has no mailbox.
    emu.store().directory.add_group("team@contoso.test", "Team", false, &["bob@contoso.test"]);
    emu.store().directory.add_group(
        "sales@contoso.test",
        "Sales",
        true,
        &["alice@contoso.test", "team@contoso.test", "partner@example.test"],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &emu, &emu.config().client_secret);
    let text_before = std::fs::read_to_string(&path).unwrap();
    let start = text_before.find("[[groups.members]]").unwrap();
    let sourced = format!(
        "{}[[groups.member_sources]]\ndistribution_group = \"sales@contoso.test\"\ndirection = \"one_way\"\n",
        &text_before[..start]
    );
    std::fs::write(&path, sourced).unwrap();

    let check = cli(&path, &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let run = cli(&path, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(emu.store().contacts_in("alice@contoso.test", FOLDER).len(), 4, "{}", text(&run));
    assert_eq!(emu.store().contacts_in("bob@contoso.test", FOLDER).len(), 4, "a nested group's member: {}", text(&run));
    assert!(emu.store().contacts_in("carol@contoso.test", FOLDER).is_empty(), "not in the group");

    // bob leaves the team: his copies go at the next expansion, his own contact stays.
    let bob_folder = emu.store().contacts_in("bob@contoso.test", FOLDER)[0].folder_id.clone();
    emu.store()
        .create_contact("bob@contoso.test", Some(&bob_folder), &serde_json::json!({"displayName": "Bob's own"}))
        .unwrap();
    emu.store().directory.add_group("team@contoso.test", "Team", false, &[]);
    let again = cli(&path, &["run", "--once"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let left: Vec<Option<String>> = emu
        .store()
        .contacts_in("bob@contoso.test", FOLDER)
        .iter()
        .map(|c| c.properties.get("displayName").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(left, [Some("Bob's own".to_owned())], "{}", text(&again));
    assert_eq!(emu.store().contacts_in("alice@contoso.test", FOLDER).len(), 4);
}

#[tokio::test]
async fn check_says_how_changes_come_with_and_without_a_notification_url() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 1, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu, &emu.config().client_secret);
    let polled = cli(&config, &["check"]).await;
    assert_eq!(polled.status.code(), Some(0), "{}", text(&polled));
    assert!(text(&polled).contains("polling each folder's delta link"), "{}", text(&polled));

    // The keys go under [service], after its state line and before the connections.
    let notified = std::fs::read_to_string(&config).unwrap().replacen(
        "[connections.online]",
        "graph_notification_url = \"https://sync.contoso.test/graph/notify\"\n\
         [service.http]\nlisten = \"127.0.0.1:0\"\n\n[connections.online]",
        1,
    );
    std::fs::write(&config, notified).unwrap();
    let out = cli(&config, &["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("change notifications to https://sync.contoso.test/graph/notify"), "{}", text(&out));
    assert!(emu.subscriptions().is_empty(), "check subscribes nothing");
}

#[test]
fn a_notification_url_needs_https_and_the_http_listener() {
    let group = r#"
[connections.online]
kind = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret_env = "GRAPH_SECRET"
auth = "client_secret"

[[groups]]
id = "company"
connection = "online"
hub = { mailbox = "contacts@contoso.test", folder = "contacts/Company Contacts" }
target = "contacts/Company Contacts"
[[groups.members]]
mailbox = "alice@contoso.test"
direction = "one_way"
"#;
    let with = |service: &str| format!("[service]\nstate = \"memory\"\n{service}\n{group}");
    let parsed = Config::from_toml_str(
        &with(
            "graph_notification_url = \"https://sync.contoso.test/graph/notify\"\n[service.http]\nlisten = \"127.0.0.1:9464\"",
        ),
        None,
    );
    // The secret's variable is not set here: only the notification URL's findings matter.
    let findings = parsed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!findings.contains("graph_notification_url"), "{findings}");
    for (service, expected) in [
        ("graph_notification_url = \"https://sync.contoso.test/graph/notify\"", "[service.http]"),
        (
            "graph_notification_url = \"http://sync.contoso.test/graph/notify\"\n[service.http]\nlisten = \"127.0.0.1:9464\"",
            "only to a public https:// URL",
        ),
        (
            "graph_notification_url = \"https://sync.contoso.test/metrics\"\n[service.http]\nlisten = \"127.0.0.1:9464\"",
            "the status page's",
        ),
    ] {
        let e = Config::from_toml_str(&with(service), None).err().unwrap_or_else(|| panic!("accepted: {service}"));
        let message = e.to_string();
        assert!(message.contains("service.graph_notification_url") && message.contains(expected), "{message}");
    }
}

/// A throwaway RSA key and self-signed certificate made with the openssl command.
fn make_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=exchange-sync test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (scripts/test-all.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

#[tokio::test]
async fn a_certificate_credential_in_the_file_checks_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "app");
    // The certificate as the app registration holds it (DER).
    let der_file = dir.path().join("app.der");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&der_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let der = std::fs::read(&der_file).unwrap();
    let emu = GraphEmulator::start(GraphEmulatorConfig {
        seed_contacts: 4,
        client_certificate: Some(der),
        ..Default::default()
    })
    .await
    .unwrap();
    let config = write_config(dir.path(), &emu, "unused");
    let text_with_certificate = std::fs::read_to_string(&config).unwrap().replace(
        &format!("auth = \"client_secret\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"", emu.config().client_id, dir.path().join("client-secret").display()),
        &format!(
            "auth = \"client_certificate\"\nclient_id = \"{}\"\nclient_certificate_file = \"{}\"\nclient_key_file = \"{}\"",
            emu.config().client_id,
            cert.display(),
            key.display()
        ),
    );
    assert!(text_with_certificate.contains("client_certificate_file"), "{text_with_certificate}");
    std::fs::write(&config, &text_with_certificate).unwrap();
    let check = cli(&config, &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let run = cli(&config, &["run", "--once"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(emu.store().contacts_in("carol@contoso.test", FOLDER).len(), 4, "{}", text(&run));
    let log = format!("{}{}", text(&check), text(&run));
    assert!(!log.contains("PRIVATE KEY"), "the key was printed");

    // A key of another certificate: refused at start, naming both files.
    let (other_cert, _) = make_certificate(dir.path(), "other");
    std::fs::write(
        &config,
        text_with_certificate.replace(&cert.display().to_string(), &other_cert.display().to_string()),
    )
    .unwrap();
    let check = cli(&config, &["check"]).await;
    let out = text(&check);
    assert_ne!(check.status.code(), Some(0), "{out}");
    assert!(out.contains("does not belong to the certificate") && out.contains("other.crt"), "{out}");

    // A certificate the application does not have registered: the authority refuses it, and the
    // hint says where to upload it.
    let other_key = dir.path().join("other.key");
    let unregistered = text_with_certificate
        .replace(&cert.display().to_string(), &other_cert.display().to_string())
        .replace(&key.display().to_string(), &other_key.display().to_string());
    std::fs::write(&config, unregistered).unwrap();
    let check = cli(&config, &["check"]).await;
    let out = text(&check);
    assert_eq!(check.status.code(), Some(4), "{out}");
    assert!(out.contains("AADSTS700027") && out.contains("Certificates & secrets"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
}

#[test]
fn certificate_mistakes_are_refused_with_their_place() {
    let base = r#"
[connections.online]
kind = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
"#;
    let group = GROUP_ON_ONLINE;
    let files =
        "client_certificate_file = \"/etc/exchange-sync/app.crt\"\nclient_key_file = \"/etc/exchange-sync/app.key\"\n";
    let cases = [
        (format!("auth = \"client_certificate\"\n{files}client_secret_env = \"S\"\n"), "not both"),
        (format!("auth = \"client_secret\"\nclient_secret_env = \"S\"\n{files}"), "not both"),
        (format!("auth = \"client_secret\"\n{files}"), "belong to auth = \"client_certificate\""),
        (
            "auth = \"client_certificate\"\nclient_certificate_file = \"/x.crt\"\n".to_owned(),
            "client_key_file is missing",
        ),
    ];
    for (extra, expected) in cases {
        let text = format!("{base}{extra}{group}");
        let e = Config::from_toml_str(&text, None).err().unwrap_or_else(|| panic!("accepted: {extra}"));
        let message = e.to_string();
        assert!(message.contains(expected), "{extra}: {message}");
        assert!(message.contains("connections[0]") || message.contains("connections.online"), "{extra}: {message}");
    }
    let ok =
        Config::from_toml_str(&format!("{base}auth = \"client_certificate\"\n{files}{group}"), None).unwrap().config;
    match &ok.connections[0].auth {
        exchange_sync::config::Auth::ClientCertificate { certificate_file, key_file, authority, .. } => {
            assert_eq!(certificate_file, Path::new("/etc/exchange-sync/app.crt"));
            assert_eq!(key_file, Path::new("/etc/exchange-sync/app.key"));
            assert_eq!(authority, "https://login.microsoftonline.com/contoso.onmicrosoft.com");
        }
        other => panic!("{other:?}"),
    }
    // On an EWS connection.
    let ews = format!(
        "[connections.lab]\nurl = \"https://mail.contoso.test/EWS/Exchange.asmx\"\nauth = \"ntlm\"\nusername = \"u\"\npassword_env = \"P\"\n{files}"
    );
    let e = Config::from_toml_str(&format!("{ews}{}", group.replace("\"online\"", "\"lab\"")), None).err().unwrap();
    assert!(e.to_string().contains("belong to auth = \"client_certificate\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_from_a_file_syncs_by_notification_and_deletes_its_subscriptions() {
    let emu = GraphEmulator::start(GraphEmulatorConfig { seed_contacts: 3, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu, &emu.config().client_secret);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // An hour between polls: only a notification can bring an edit in seconds.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[connections.online]",
        &format!(
            "poll_interval_secs = 3600\nresync_interval_secs = 3600\ndebounce_ms = 20\n\
             graph_notification_url = \"http://127.0.0.1:{port}/graph/notify\"\n\
             [service.http]\nlisten = \"127.0.0.1:{port}\"\n\n[connections.online]"
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let service = common::cli::Service::start(&config, &[]);
    let copies = || emu.store().contacts_in("carol@contoso.test", FOLDER);
    common::cli::eventually("the initial copies", || async { copies().len() == 3 }).await;
    common::cli::eventually("three subscriptions", || async { emu.subscriptions().len() == 3 }).await;
    service.wait_for_line("change notifications to http://127.0.0.1").await;

    let hub = emu.store().contacts_in("contacts@contoso.test", FOLDER).remove(0);
    emu.store()
        .edit_contact("contacts@contoso.test", &hub.id, "jobTitle", serde_json::json!("By notification"))
        .unwrap();
    let start = std::time::Instant::now();
    while !copies().iter().any(|c| c.properties.get("jobTitle") == Some(&serde_json::json!("By notification"))) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "no notification brought the edit: {}",
            service.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(service.terminate().await, Some(0));
    assert!(emu.subscriptions().is_empty(), "the service left subscriptions behind");
}
