//! The admin CLI against the EWS emulator: every command, and the exit codes scripts rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

fn config_file(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("exchange-sync.toml");
    let state = dir.join("state.sqlite");
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    let text = format!(
        r#"
[service]
state = "{state}"

[connections.lab]
url = "{url}"
auth = "basic"
username = "{ADMIN}"
password_file = "{password}"

[[groups]]
id = "{GROUP}"
connection = "lab"
hub = {{ public_folder = "Company Contacts" }}
target = "contacts/Company Contacts"

[[groups.members]]
mailbox = "alice@contoso.test"
direction = "two_way"

[[groups.members]]
mailbox = "carol@contoso.test"
direction = "one_way"
"#,
        state = state.display(),
        password = dir.join("password").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn cli(config: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_exchange-sync"));
    command.arg("--config").arg(config).args(args);
    command.output().await.unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
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
    assert!(text(&out).contains("mass-delete guard"), "{}", text(&out));
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
    std::fs::write(&config, text_before.replace("direction = \"one_way\"", "direction = \"sideways\"")).unwrap();
    let out = cli(&config, &["check", "--offline"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("exchange-sync.toml:23:13"), "{}", text(&out));
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
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_exchange-sync"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let folders = Folders::new(&common::config(&emu, group())).await;
    let carol = folders.member("carol@contoso.test").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while carol.items().await.unwrap().len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "the running service never synced");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let out =
        tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopping") && stderr.contains("stopped"), "{stderr}");
}
