//! The admin CLI against the EWS emulator: every command, and the exit codes scripts rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::path::Path;

use common::cli::*;
use common::*;

/// The configuration of these tests: alice two-way, carol one-way.
fn config_file(dir: &Path, url: &str) -> std::path::PathBuf {
    let members = [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")];
    write_config(dir, url, "", &members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_exit_codes() {
    let emu = emulator(20).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), emu.url());

    let out = cli(&config, &["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("hub reachable"), "{}", text(&out));

    let out = cli(&config, &["plan"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(text(&out).matches("create contact").count(), 40, "{}", text(&out));

    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("40 created"), "{}", text(&out));

    let out = cli(&config, &["status"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("carol@contoso.test"), "{}", text(&out));
    assert!(!text(&out).contains("initial sync pending"), "{}", text(&out));

    let out = cli(&config, &["--json", "status"]).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["members"].as_array().unwrap().len(), 3);

    let out = cli(&config, &["conflicts"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no conflicts"));

    // The public folder is emptied (a wrong path, an outage, an accident): members are not wiped.
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    for item in hub.items().await.unwrap() {
        hub.delete(&item.id).await.unwrap();
    }
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("vanished at once"), "{}", text(&out));
    assert_eq!(folders.member("carol@contoso.test").await.items().await.unwrap().len(), 20);

    let out = cli(&config, &["run", "--once", "--allow-mass-delete"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(folders.member("carol@contoso.test").await.items().await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_configuration_exits_2_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "http://127.0.0.1:9/EWS/Exchange.asmx");
    let text_before = std::fs::read_to_string(&config).unwrap();
    let broken = text_before.replace("direction = \"one_way\"", "direction = \"sideways\"");
    let line = broken.lines().position(|l| l.contains("sideways")).unwrap() + 1;
    std::fs::write(&config, broken).unwrap();
    let out = cli(&config, &["check", "--offline"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("exchange-sync.toml:{line}:13")), "{}", text(&out));
}

#[tokio::test]
async fn an_unreachable_server_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "http://127.0.0.1:9/EWS/Exchange.asmx");
    let out = cli(&config, &["check"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_until_terminated_and_stops_cleanly() {
    let emu = emulator(5).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), emu.url());
    let service = Service::start(&config, &[]);
    let folders = Folders::new(&common::config(&emu, group())).await;
    let carol = folders.member("carol@contoso.test").await;
    eventually("the running service syncs carol", || async { carol.items().await.unwrap().len() == 5 }).await;
    assert_eq!(service.terminate().await, Some(0));
}
