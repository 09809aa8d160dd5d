//! Several workers on one PostgreSQL state, as real processes against the EWS emulator over HTTP:
//! three `exchange-sync run` workers share 30 groups, started one after another, and end up with
//! 10 each; one is killed with SIGKILL in the middle of its passes and the two others take its
//! groups over within the lease time, then carry 15 each; one is paused (SIGSTOP) past its
//! leases' expiry, and once resumed it is fenced, then gets its share back. At the end every
//! folder holds every contact of the hub exactly once, with every edit made while the workers
//! failed over, and no fencing token of a group was ever taken by two workers. Besides: a
//! `run --once` on the shared state releases its leases when it is done.
//!
//! Needs the throwaway PostgreSQL server of `scripts/postgres.sh` (its URL in
//! `EXCHANGE_SYNC_TEST_POSTGRES`), which the test command starts; fails without it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::eventually;
use common::*;
use exchange_sync_core::field;
use tokio::io::{AsyncBufReadExt, BufReader};

const GROUPS: usize = 30;
const LEASE_SECS: u64 = 3;
const READERS_OF_EACH: [&str; 2] = READERS;

/// The test server's URL, split into the URL without its password and the password.
fn server() -> (String, String) {
    let url = std::env::var("EXCHANGE_SYNC_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "EXCHANGE_SYNC_TEST_POSTGRES is not set: this test needs a PostgreSQL server. Start the throwaway one \
             with `eval \"$(scripts/postgres.sh start)\"` (scripts/test-all.sh does) and run it again"
        )
    });
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user_part, host_part) = rest.rsplit_once('@').unwrap();
    let (user, password) = user_part.split_once(':').unwrap_or((user_part, ""));
    (format!("{scheme}://{user}@{host_part}"), password.to_owned())
}

fn group_target(i: usize) -> String {
    format!("Group {i:02}")
}

/// A worker's configuration: 30 groups on `Company Contacts`, each delivering to the readers'
/// `contacts/Group NN`, state in the schema shared by the workers.
fn write_config(dir: &Path, emulator: &str, schema: &str, worker: &str) -> PathBuf {
    let (url, _) = server();
    let path = dir.join(format!("{worker}.toml"));
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    let mut text = format!(
        r#"
[service]
state = "{url}"
state_password_env = "EXCHANGE_SYNC_STATE_PASSWORD"
state_schema = "{schema}"
worker = "{worker}"
lease_secs = {LEASE_SECS}
debounce_ms = 50
poll_interval_secs = 1
max_concurrent_groups = 2

[service.retry]
initial_delay_ms = 20
max_delay_ms = 500

[connections.lab]
url = "{emulator}"
auth = "basic"
username = "{ADMIN}"
password_file = "{password}"
"#,
        password = dir.join("password").display()
    );
    for i in 0..GROUPS {
        text.push_str(&format!(
            "\n[[groups]]\nid = \"g{i:02}\"\nconnection = \"lab\"\nhub = {{ public_folder = \"Company Contacts\" }}\n\
             target = \"contacts/{}\"\nmatch_key = [\"email1.address\"]\n",
            group_target(i)
        ));
        for m in READERS_OF_EACH {
            text.push_str(&format!("\n[[groups.members]]\nmailbox = \"{m}\"\ndirection = \"one_way\"\n"));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A running worker whose stderr lines are collected.
struct Worker {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn start(config: &Path) -> Self {
        let (_, password) = server();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_exchange-sync"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("RUST_LOG")
            .env("EXCHANGE_SYNC_LOG", "info")
            .env("EXCHANGE_SYNC_STATE_PASSWORD", password)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Worker { child, lines }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn pid(&self) -> String {
        self.child.id().unwrap().to_string()
    }

    async fn signal(&self, signal: &str) {
        let sent = tokio::process::Command::new("kill").args([signal, &self.pid()]).status().await.unwrap();
        assert!(sent.success(), "kill {signal}");
    }
}

/// Which worker owns each group, as the database says (expired leases left out).
async fn owners(config: &Path) -> BTreeMap<String, String> {
    let (_, password) = server();
    let out = common::cli::cli_env(config, &["--json", "status"], &[("EXCHANGE_SYNC_STATE_PASSWORD", &password)]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut owners = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(group), Some(lease)) = (doc["group"].as_str(), doc.get("lease")) else { continue };
        if lease["expired"].as_bool() == Some(false)
            && let Some(owner) = lease["owner"].as_str()
        {
            owners.insert(group.to_owned(), owner.to_owned());
        }
    }
    owners
}

/// Whether every group is owned, only by `workers`, each owning its fair share: between
/// `floor(GROUPS / n)` and `ceil(GROUPS / n)` groups.
async fn spread_evenly(config: &Path, workers: &[&str]) -> bool {
    let owners = owners(config).await;
    let count = |w: &str| owners.values().filter(|o| *o == w).count();
    let (floor, ceil) = (GROUPS / workers.len(), GROUPS.div_ceil(workers.len()));
    owners.len() == GROUPS
        && owners.values().all(|o| workers.contains(&o.as_str()))
        && workers.iter().all(|w| (floor..=ceil).contains(&count(w)))
}

/// How many groups each worker owns, for messages.
async fn shares(config: &Path) -> BTreeMap<String, usize> {
    let mut shares = BTreeMap::new();
    for owner in owners(config).await.into_values() {
        *shares.entry(owner).or_default() += 1;
    }
    shares
}

/// The `(group, fencing token)` of every lease a worker's log says it took.
fn leases_taken(log: &str) -> Vec<(String, u64)> {
    log.lines()
        .filter_map(|line| {
            let fields = &line[line.find("lease taken")?..];
            let field = |name: &str| {
                let start = fields.find(&format!(" {name}="))? + name.len() + 2;
                let value = &fields[start..];
                Some(value[..value.find(' ').unwrap_or(value.len())].to_owned())
            };
            Some((field("group")?, field("token")?.parse().ok()?))
        })
        .collect()
}

/// Every reader's folder of every group: its contacts' names (sorted, repeats kept) and each
/// name's company.
async fn delivered(folders: &Folders) -> Vec<(String, Vec<String>, BTreeMap<String, Option<String>>)> {
    let mut out = Vec::new();
    for i in 0..GROUPS {
        for m in READERS_OF_EACH {
            let target = exchange_sync::config::TargetFolder::Named {
                parent: exchange_sync::config::WellKnownFolder::Contacts,
                name: group_target(i),
            };
            let Ok(folder) = folders.ews.open_mailbox_folder("lab", m, &target, false).await else {
                out.push((format!("{m}/{}", group_target(i)), Vec::new(), BTreeMap::new()));
                continue;
            };
            let items = folder.items().await.unwrap_or_default();
            let mut names: Vec<String> = items.iter().filter_map(|i| label(&i.item)).collect();
            names.sort();
            let companies = items
                .iter()
                .filter_map(|i| label(&i.item).map(|n| (n, i.item.text(field::COMPANY).map(str::to_owned))))
                .collect();
            out.push((format!("{m}/{}", group_target(i)), names, companies));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_fail_over_without_duplicates_or_lost_edits() {
    let emu = emulator(8).await;
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("failover_{}", std::process::id());
    let configs: Vec<PathBuf> =
        ["w1", "w2", "w3"].iter().map(|w| write_config(dir.path(), emu.url(), &schema, w)).collect();
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;

    // w1 starts first and takes every group; w2, then w3 start and get their shares: w1 gives
    // groups back between their passes until each carries 10.
    let w1 = Worker::start(&configs[0]);
    eventually("w1 owns every group", || async { spread_evenly(&configs[0], &["w1"]).await }).await;
    let w2 = Worker::start(&configs[1]);
    eventually("w2 is live", || async { w2.log().contains("lease taken") }).await;
    let w3 = Worker::start(&configs[2]);
    let started = Instant::now();
    eventually("the groups spread over the three workers", || async {
        spread_evenly(&configs[0], &["w1", "w2", "w3"]).await
    })
    .await;
    eprintln!(
        "10 groups each {} ms after the third worker started: {:?}",
        started.elapsed().as_millis(),
        shares(&configs[0]).await
    );
    eventually("w1 finished some passes and not all", || async { w1.log().matches(" created, ").count() >= 2 }).await;

    // w1 dies in the middle of its passes: nothing it held is released.
    w1.signal("-KILL").await;
    let killed = Instant::now();
    // Users edit the hub while nobody runs its groups.
    let items = hub.items().await.unwrap();
    let edited: Vec<String> = items.iter().take(3).filter_map(|i| label(&i.item)).collect();
    for item in items.iter().take(3) {
        hub.update(&item.id, |i| i.set(field::COMPANY, "Failed Over Ltd")).await.unwrap();
    }
    eventually("w2 and w3 own every group", || async {
        let owners = owners(&configs[1]).await;
        owners.len() == GROUPS && owners.values().all(|w| w != "w1")
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("the groups of the killed worker were taken over {} ms after SIGKILL", takeover.as_millis());
    assert!(
        takeover < Duration::from_secs(LEASE_SECS * 2 + 5),
        "the dead worker's groups were taken over after {takeover:?} (lease {LEASE_SECS} s)"
    );
    eventually("the survivors carry 15 groups each", || async { spread_evenly(&configs[1], &["w2", "w3"]).await })
        .await;

    // w2 pauses past its leases' expiry; w3 takes its groups over; w2 resumes and is fenced.
    let before = owners(&configs[2]).await;
    let w2_groups = before.values().filter(|w| *w == "w2").count();
    eprintln!("owners before the pause: {before:?}");
    assert!(w2_groups > 0, "w2 owns some groups before its pause: {before:?}");
    w2.signal("-STOP").await;
    eventually("w3 owns every group", || async {
        let owners = owners(&configs[2]).await;
        owners.len() == GROUPS && owners.values().all(|w| w == "w3")
    })
    .await;
    let (_, password) = server();
    let text = common::cli::cli_env(&configs[2], &["status"], &[("EXCHANGE_SYNC_STATE_PASSWORD", &password)]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.matches("owned by worker w3 (lease until").count(), GROUPS, "{text}");
    w2.signal("-CONT").await;
    eventually("w2 finds it lost its leases", || async {
        let log = w2.log();
        log.contains("lease lost") || log.contains("lost the group's lease") || log.contains("write refused")
    })
    .await;
    let fenced: Vec<String> = w2.log().lines().filter(|l| l.contains("lease")).map(str::to_owned).collect();
    eprintln!("w2 after its resumption:\n{}", fenced.join("\n"));
    // Back among the live workers, w2 gets its share back from w3 (which gives groups up between
    // their passes), not by taking leases w3 holds.
    eventually("w2 gets its share back", || async { spread_evenly(&configs[2], &["w2", "w3"]).await }).await;
    eprintln!("after w2's resumption: {:?}", shares(&configs[2]).await);

    // Every folder: every contact of the hub once, with the edits.
    let mut hub_names: Vec<String> = hub.items().await.unwrap().iter().filter_map(|i| label(&i.item)).collect();
    hub_names.sort();
    eventually("every folder converged", || async {
        delivered(&folders).await.iter().all(|(_, names, companies)| {
            *names == hub_names
                && edited.iter().all(|n| companies.get(n).cloned().flatten().as_deref() == Some("Failed Over Ltd"))
        })
    })
    .await;
    for (folder, names, _) in delivered(&folders).await {
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicates in {folder}: {names:?}");
    }
    assert!(!w3.log().contains("panicked"), "{}", w3.log());
    // Every takeover of a group incremented its fencing token, and each token went to one worker.
    let mut taken: Vec<(String, u64)> = [&w1, &w2, &w3].iter().flat_map(|w| leases_taken(&w.log())).collect();
    assert!(taken.len() >= GROUPS * 2, "the leases taken: {taken:?}");
    taken.sort();
    let all = taken.len();
    taken.dedup();
    assert_eq!(taken.len(), all, "a fencing token of a group was taken twice");
    drop(w1);
    drop(w2);
    drop(w3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_once_leaves_its_groups_free_when_done() {
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("once_{}", std::process::id());
    let config = write_config(dir.path(), emu.url(), &schema, "once");
    let (_, password) = server();
    let out = common::cli::cli_env(&config, &["run", "--once"], &[("EXCHANGE_SYNC_STATE_PASSWORD", &password)]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Its leases were released as it finished, not left to expire: a worker takes them at once.
    let owners = owners(&config).await;
    assert!(owners.is_empty(), "groups still held after `run --once`: {owners:?}");
    let (_, password) = server();
    let status = common::cli::cli_env(&config, &["status"], &[("EXCHANGE_SYNC_STATE_PASSWORD", &password)]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches("free: last owned by worker once").count(), GROUPS, "{text}");
}

/// An admin request on a shared state is carried out by the worker that owns its group, and only
/// by it: a worker whose look for requests finds one for a group another worker holds runs no
/// pass for it (the request stays for the owner), and carries out the one of its own group
/// within about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_carried_out_only_by_the_owner_of_its_group() {
    use common::memory_folders::{MemoryFolders, display_names, groups_of_one_contact};
    use exchange_sync::config::{Auth, Config, Connection, StateLocation};
    use exchange_sync::{ProgressEvent, SyncService, Trigger};
    use exchange_sync_core::state::AdminRequest;
    use exchange_sync_core::state::postgres::{PostgresOptions, PostgresStore, WorkerIdentity};
    use exchange_sync_core::{GroupId, StateStore};

    let _ = server();
    let url = std::env::var("EXCHANGE_SYNC_TEST_POSTGRES").unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("requests_{}_{}", std::process::id(), nanos % 1_000_000_000);
    let store_of = |name: &str| {
        let worker = WorkerIdentity { name: name.into(), lease: Duration::from_secs(30), groups: 2 };
        let options =
            PostgresOptions { schema: schema.clone(), max_connections: 4, worker: Some(worker), ..Default::default() };
        PostgresStore::connect(&url, options)
    };
    // Another worker holds the south group's lease for the whole test.
    let other = store_of("other").await.unwrap();
    let south = GroupId::new("south");
    assert!(other.acquire_lease(&south).await.unwrap());

    let folders = Arc::new(MemoryFolders::default());
    let groups = groups_of_one_contact(&folders, &["north", "south"]);
    let mut config = Config {
        connections: vec![Connection::new("lab", "http://127.0.0.1:1/EWS/Exchange.asmx", Auth::None)],
        groups,
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(20);
    let store = Arc::new(store_of("mine").await.unwrap());
    let service = SyncService::new(config, folders.clone(), store.clone()).unwrap();
    let mut events = service.subscribe();
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while display_names(&folders.mailbox("north@contoso.test")) != ["Ann north"] {
        if tokio::time::timeout_at(deadline, events.recv()).await.is_err() {
            panic!("the north group never synced");
        }
    }

    // A request for the group the other worker holds: seen, not carried out here.
    let theirs = service.post_request("south", AdminRequest::Resync { member: None }).await.unwrap();
    let quiet = tokio::time::Instant::now() + Duration::from_millis(3000);
    while let Ok(event) = tokio::time::timeout_at(quiet, events.recv()).await {
        if let ProgressEvent::PassStarted { group, trigger } = event.unwrap() {
            assert_ne!(group, "south", "a pass ({trigger:?}) of a group another worker holds");
        }
    }
    let pending: Vec<u64> = store.requests(&south).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(pending, [theirs], "the request waits for the group's owner");
    assert!(display_names(&folders.mailbox("south@contoso.test")).is_empty());

    // A request for its own group: carried out at once.
    let posted = tokio::time::Instant::now();
    service.post_request("north", AdminRequest::Resync { member: None }).await.unwrap();
    let mut requested = false;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ProgressEvent::PassStarted { group, trigger })) => {
                assert_eq!(group, "north");
                requested |= trigger == Trigger::Request;
            }
            Ok(Ok(ProgressEvent::PassFinished { report }))
                if requested && report.notices.iter().any(|n| n.contains("carried out the admin request")) =>
            {
                break;
            }
            Ok(_) => {}
            Err(_) => panic!("the request of the worker's own group was never carried out"),
        }
    }
    assert!(posted.elapsed() < Duration::from_secs(5), "carried out {:?} after it was posted", posted.elapsed());
    assert!(store.requests(&GroupId::new("north")).await.unwrap().is_empty());
    assert_eq!(store.requests(&south).await.unwrap().len(), 1, "still the owner's to carry out");

    service.shutdown();
    running.await.unwrap().unwrap();
    other.release_lease(&south).await.unwrap();
}
