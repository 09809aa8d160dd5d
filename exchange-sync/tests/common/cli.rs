//! Driving the `exchange-sync` binary: configuration files, commands, a running service.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{ADMIN, GROUP, PASSWORD};

/// One `[[groups.members]]` table.
pub fn member(mailbox: &str, direction: &str, extra: &str) -> String {
    format!("\n[[groups.members]]\nmailbox = \"{mailbox}\"\ndirection = \"{direction}\"\n{extra}\n")
}

/// A configuration file in `dir` for the server at `url`: `[service]` with `service_extra`, a
/// connection `lab` (Basic, the password from a file) with `connection_extra`, the group on
/// `Company Contacts` delivering into `contacts/Company Contacts`, matching by e-mail address,
/// with `group_extra` and `members`.
pub fn write_config_with(
    dir: &Path,
    url: &str,
    service_extra: &str,
    connection_extra: &str,
    group_extra: &str,
    members: &[String],
) -> PathBuf {
    let path = dir.join("exchange-sync.toml");
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    let mut text = format!(
        r#"
[service]
state = "{state}"
debounce_ms = 50
poll_interval_secs = 1
{service_extra}

[service.retry]
initial_delay_ms = 20
max_delay_ms = 500

[connections.lab]
url = "{url}"
auth = "basic"
username = "{ADMIN}"
{connection_extra}

[[groups]]
id = "{GROUP}"
connection = "lab"
hub = {{ public_folder = "Company Contacts" }}
target = "contacts/Company Contacts"
match_key = ["email1.address"]
{group_extra}
"#,
        state = dir.join("state.sqlite").display(),
    );
    for m in members {
        text.push_str(m);
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// [`write_config_with`] with the password read from a file beside the configuration.
pub fn write_config(dir: &Path, url: &str, group_extra: &str, members: &[String]) -> PathBuf {
    let password = format!("password_file = \"{}\"", dir.join("password").display());
    write_config_with(dir, url, "", &password, group_extra, members)
}

/// Runs the CLI with `args` on `config`.
pub async fn cli(config: &Path, args: &[&str]) -> Output {
    cli_env(config, args, &[]).await
}

/// Runs the CLI with `args` on `config` and extra environment variables.
pub async fn cli_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_exchange-sync"));
    command.arg("--config").arg(config).args(args);
    command.env_remove("RUST_LOG").env_remove("EXCHANGE_SYNC_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output()).await.expect("the command ends").unwrap()
}

/// stdout and stderr of a command, together.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Waits (generously) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `exchange-sync run` service whose stderr lines are collected.
pub struct Service {
    child: tokio::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    /// Starts `exchange-sync [extra args] run` on `config`.
    pub fn start(config: &Path, extra: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_exchange-sync"))
            .arg("--config")
            .arg(config)
            .args(extra)
            .arg("run")
            .env_remove("RUST_LOG")
            .env_remove("EXCHANGE_SYNC_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Service { child, lines }
    }

    /// Every stderr line so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a stderr line contains `needle`.
    pub async fn wait_for_line(&self, needle: &str) {
        eventually(&format!("the service logs {needle:?}"), || async { self.log().contains(needle) }).await;
    }

    /// The status page's address, once the service said it.
    pub async fn http_address(&self) -> String {
        self.wait_for_line("status page on http://").await;
        let log = self.log();
        let at = log.find("status page on http://").unwrap() + "status page on http://".len();
        log[at..].split('/').next().unwrap().to_owned()
    }

    /// Kills it with SIGKILL, as a crash or `kill -9` would: nothing of it runs after this.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.unwrap().unwrap();
    }

    /// Stops it with SIGTERM (checking that it says it stops); answers its exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.unwrap().unwrap();
        let log = self.log();
        assert!(log.contains("stopping") && log.contains("stopped"), "the service says it stops: {log}");
        status.code()
    }
}

/// Deletes every item of `Company Contacts` in one step, so that a running service sees them all
/// gone at once (deleted one by one, the first deletions would be few enough to pass the guard).
pub fn empty_public_folder(emu: &ews_emulator::RunningEmulator) {
    use ews_emulator::store::{IdKind, decode_id, public_folder_mailbox};
    let store = emu.store();
    let items = store.items_in(&public_folder_mailbox("contoso.test"), "Company Contacts").unwrap();
    let numbers: Vec<u64> = items.iter().filter_map(|i| decode_id(IdKind::Item, &i.id)).map(|(_, n)| n).collect();
    store
        .write(store.public_index(), |mb| {
            for n in &numbers {
                mb.delete_item(*n, false).unwrap();
            }
        })
        .unwrap();
}
