//! The service's HTTP endpoint: `/metrics` scraped and parsed, `/healthz`, the JSON API, the admin
//! token, and the status page in a real browser (Debian's chromium, headless).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::*;
use common::*;

/// A configuration with the HTTP endpoint on a free loopback port, and optionally an admin token
/// read from a file.
fn http_config(dir: &Path, url: &str, token: Option<&str>) -> PathBuf {
    let mut http = "\n[service.http]\nlisten = \"127.0.0.1:0\"\n".to_owned();
    if let Some(token) = token {
        std::fs::write(dir.join("admin-token"), format!("{token}\n")).unwrap();
        http.push_str(&format!("admin_token_file = \"{}\"\n", dir.join("admin-token").display()));
    }
    let password = format!("password_file = \"{}\"", dir.join("password").display());
    let members = [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")];
    let config = write_config_with(dir, url, "", &password, "", &members);
    let text =
        std::fs::read_to_string(&config).unwrap().replacen("[service.retry]", &format!("{http}\n[service.retry]"), 1);
    std::fs::write(&config, text).unwrap();
    config
}

/// One sample of the Prometheus text format: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (what a scraper reads): every line is a comment (`# HELP`,
/// `# TYPE`) or a sample `name{label="value",...} number`.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP") | Some(&"TYPE")), "bad comment: {line}");
            if words[0] == "TYPE" {
                assert!(["counter", "gauge", "histogram"].contains(&words[2]), "bad type: {line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("bad value in {line}: {e}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name: {line}");
        samples.push(Sample { name, labels, value });
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_the_json_api_are_served_read_only_without_a_token() {
    let emu = emulator(6).await;
    let dir = tempfile::tempdir().unwrap();
    let config = http_config(dir.path(), emu.url(), None);
    let service = Service::start(&config, &[]);
    let address = service.http_address().await;
    assert!(address.starts_with("127.0.0.1:"), "loopback: {address}");
    service.wait_for_line("Synced").await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{address}{path}")).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let response = get("/metrics").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let samples = parse_metrics(&response.text().await.unwrap());
    let g = ("group", GROUP);
    assert!(value(&samples, "exchange_sync_passes_total", &[g, ("outcome", "synced")]).unwrap() >= 1.0);
    assert_eq!(value(&samples, "exchange_sync_items_written_total", &[g, ("kind", "created")]), Some(12.0));
    assert_eq!(value(&samples, "exchange_sync_guard_stopped", &[g]), Some(0.0));
    assert_eq!(value(&samples, "exchange_sync_parked_members", &[g]), Some(0.0));
    assert!(value(&samples, "exchange_sync_pass_duration_seconds_count", &[g]).unwrap() >= 1.0);
    assert!(value(&samples, "exchange_sync_last_pass_timestamp_seconds", &[g]).unwrap() > 1.7e9);
    for family in ["exchange_sync_notification_to_write_seconds_bucket", "exchange_sync_throttle_waits_total"] {
        let present = samples.iter().any(|s| s.name == family) || family.ends_with("_bucket");
        assert!(present, "{family}");
    }

    // A change notification's edit is counted in the latency histogram.
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    let name = unique_names(&hub).await[0].clone();
    let item = find(&hub, &name).await.unwrap();
    hub.update(&item.id, |i| i.set(exchange_sync_core::field::JOB_TITLE, "Measured")).await.unwrap();
    let carol = folders.member("carol@contoso.test").await;
    eventually("the edit reaches carol", || async {
        field_of(&carol, &name, exchange_sync_core::field::JOB_TITLE).await.as_deref() == Some("Measured")
    })
    .await;
    eventually("the latency is measured", || async {
        let text = get("/metrics").await.unwrap().text().await.unwrap();
        value(&parse_metrics(&text), "exchange_sync_notification_to_write_seconds_count", &[g])
            .is_some_and(|n| n >= 1.0)
    })
    .await;

    let status: serde_json::Value =
        serde_json::from_str(&get("/api/status").await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(status[0]["group"], GROUP);
    assert_eq!(status[0]["members"].as_array().unwrap().len(), 3);
    let page = get("/").await.unwrap().text().await.unwrap();
    assert!(page.contains("carol@contoso.test") && page.contains("read-only"), "{page}");
    assert!(!page.contains("<form"), "no actions without a token");

    let post = client.post(format!("http://{address}/api/groups/{GROUP}/confirm")).send().await.unwrap();
    assert_eq!(post.status(), 403, "read-only without an admin token");
    assert_eq!(get("/nothing").await.unwrap().status(), 404);
    assert_eq!(service.terminate().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_allows_confirming_and_resyncing() {
    let emu = emulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let token = "correct horse battery staple";
    let config = http_config(dir.path(), emu.url(), Some(token));
    // `info` shows the service carrying the requests out.
    let service = Service::start(&config, &["--log-level", "info"]);
    let address = service.http_address().await;
    service.wait_for_line("Synced").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("http://{address}/api/groups/{GROUP}/resync");

    let wrong = client.post(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let missing = client.post(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let ok = client.post(&url).bearer_auth(token).form(&[("member", "carol@contoso.test")]).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let answer: serde_json::Value = serde_json::from_str(&ok.text().await.unwrap()).unwrap();
    assert!(answer["posted"].as_str().unwrap().contains("resync of carol@contoso.test"), "{answer}");
    service.wait_for_line("carried out the admin request: resync carol@contoso.test").await;

    // The page's form: the token in the form, answered by a redirect to the page.
    let page = client.get(format!("http://{address}/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form") && !page.contains(token), "forms, never the token");
    let form = client.post(&url).form(&[("token", token), ("member", "")]).send().await.unwrap();
    assert_eq!(form.status(), 303);
    assert!(form.headers()["location"].to_str().unwrap().starts_with("/?done="));
    let unknown =
        client.post(format!("http://{address}/api/groups/nope/confirm")).bearer_auth(token).send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(service.terminate().await, Some(0));
}

/// The installed headless browser, if any (Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
    })
}

async fn browser(binary: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output()).await.expect("the browser ends").unwrap()
}

/// The status page in a real browser: after a guard stop, a phone-sized window shows the group,
/// its members, the stop with what would be deleted, and the command to confirm. A screenshot is
/// written to `target/status-page.png` (and to `$STATUS_PAGE_SCREENSHOT` when set).
///
/// Without a browser the test says so and passes, unless `REQUIRE_BROWSER=1` (the test command
/// installs chromium and sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_a_real_browser() {
    let Some(binary) = chromium() else {
        assert!(std::env::var_os("REQUIRE_BROWSER").is_none(), "REQUIRE_BROWSER is set but no chromium is installed");
        eprintln!("no chromium installed: the browser test is skipped (scripts/test-all.sh installs it)");
        return;
    };
    let emu = emulator(8).await;
    let dir = tempfile::tempdir().unwrap();
    let config = http_config(dir.path(), emu.url(), Some("token for the page"));
    let service = Service::start(&config, &[]);
    let address = service.http_address().await;
    let folders = Folders::new(&common::config(&emu, group())).await;
    let carol = folders.member("carol@contoso.test").await;
    eventually("carol receives the contacts", || async { carol.items().await.unwrap().len() == 8 }).await;
    let names = unique_names(&folders.hub().await).await;
    empty_public_folder(&emu);
    service.wait_for_line("StoppedByMassDeleteGuard").await;

    let profile = tempfile::tempdir().unwrap();
    let page = format!("http://{address}/");
    let out = browser(&binary, profile.path(), &["--dump-dom".to_owned(), page.clone()]).await;
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains(&format!("id=\"group-{GROUP}\"")), "{dom}");
    assert!(dom.contains("stopped by the mass-delete guard"), "{dom}");
    assert!(dom.contains("carol@contoso.test/contacts/Company Contacts"), "{dom}");
    assert!(dom.contains(&format!("exchange-sync confirm --group {GROUP}")), "{dom}");
    assert!(dom.contains(&names[0]), "the deletions are listed by name: {dom}");
    assert!(dom.contains("Confirm the deletions"), "the admin form: {dom}");

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-page.png");
    let shot = dir.path().join("status-page.png");
    let args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=412,1100".to_owned(),
        "--force-device-scale-factor=1".to_owned(),
        page,
    ];
    let out = browser(&binary, profile.path(), &args).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real screenshot ({} bytes)", png.len());
    std::fs::write(&target, &png).unwrap();
    if let Some(copy) = std::env::var_os("STATUS_PAGE_SCREENSHOT") {
        std::fs::write(copy, &png).unwrap();
    }
    assert_eq!(service.terminate().await, Some(0));
}
