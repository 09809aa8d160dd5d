//! The admin's tool, tried as a new admin would: `status` tells the truth, exit codes are the
//! documented ones, items are named and changes shown old -> new, errors say what to do, offline
//! commands need no secret, `--json` is JSON only, and the admin commands (`groups`, `show`,
//! `plan --member`, `resync`, `confirm`) work. Each test drives the `exchange-sync` binary against
//! the EWS emulator over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::cli::*;
use common::*;
use exchange_sync_core::field;
use serde_json::Value;

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn two_members() -> [String; 2] {
    [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")]
}

/// After the running service stopped a group at the guard, `status` (another process) says so,
/// lists what confirming would delete by name, blames the hub (where the deletions came from),
/// names the command, and exits 3; `plan` and `run --once` say the same. After the confirmation,
/// status is clean again.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_the_truth_after_a_guard_stop_in_the_running_service() {
    let emu = emulator(12).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub_names = unique_names(&folders.hub().await).await;
    let service = Service::start(&config, &[]);
    let carol = folders.member("carol@contoso.test").await;
    eventually("carol receives the contacts", || async { carol.items().await.unwrap().len() == 12 }).await;

    empty_public_folder(&emu);
    service.wait_for_line("StoppedByMassDeleteGuard").await;

    let out = cli(&config, &["--json", "status"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let status = &json_lines(&out.stdout)[0];
    assert_eq!(status["stopped_by_mass_delete_guard"], true, "{status}");
    assert_eq!(status["last_outcome"], "stopped_by_mass_delete_guard", "{status}");
    let guard = &status["guard"];
    assert!(guard["origin"].as_str().unwrap().contains("vanished at once"), "{guard}");
    assert_eq!(guard["folder"], "public folder Company Contacts", "the hub is named, not a member: {guard}");
    assert!(guard["confirm"].as_str().unwrap().contains(&format!("exchange-sync confirm --group {GROUP}")));
    assert!(guard["confirm"].as_str().unwrap().contains("--allow-mass-delete"));
    assert_eq!(guard["deletions_total"], 24, "12 copies in each of the two members: {guard}");
    let listed: Vec<&str> =
        guard["deletions"].as_array().unwrap().iter().map(|d| d["item"].as_str().unwrap()).collect();
    for name in &hub_names {
        assert!(listed.iter().any(|i| i.contains(name.as_str())), "{name} is listed by name: {listed:?}");
    }
    assert!(!status["last_errors"].as_array().unwrap().is_empty(), "{status}");

    let out = cli(&config, &["status"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("STOPPED BY THE MASS-DELETE GUARD"), "{t}");
    assert!(t.contains(&format!("delete contact \"{}\"", hub_names[0])), "{t}");
    assert!(t.contains("carol@contoso.test/contacts/Company Contacts"), "{t}");

    let out = cli(&config, &["plan"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("confirming deletes 24 copies"), "{}", text(&out));

    let out = cli(&config, &["confirm", "--group", GROUP]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eventually("the confirmed deletions reach carol", || async { carol.items().await.unwrap().is_empty() }).await;
    eventually("status is clean again", || async {
        let out = cli(&config, &["--json", "status"]).await;
        out.status.code() == Some(0) && json_lines(&out.stdout)[0]["stopped_by_mass_delete_guard"] == false
    })
    .await;
    assert_eq!(service.terminate().await, Some(0));
}

/// The hub deleting many items (not all): the guard's stop blames the hub, not the member whose
/// folder the deletions would reach, lists the items by name and names both ways to confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_stop_names_the_hub_when_the_hub_deleted() {
    let emu = emulator(20).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    let gone: Vec<String> = unique_names(&hub).await.into_iter().take(12).collect();
    for name in &gone {
        hub.delete(&find(&hub, name).await.unwrap().id).await.unwrap();
    }
    let out = cli(&config, &["run", "--once"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("the hub (public folder Company Contacts) deleted 12 items"), "the hub is blamed: {t}");
    assert!(!t.contains("alice@contoso.test deleted"), "no member is blamed: {t}");
    assert!(t.contains(&format!("exchange-sync confirm --group {GROUP}")) && t.contains("--allow-mass-delete"), "{t}");
    for name in &gone {
        assert!(t.contains(&format!("delete contact \"{name}\"")), "{name} is listed: {t}");
    }
    let carol = folders.member("carol@contoso.test").await;
    assert_eq!(carol.items().await.unwrap().len(), 20, "nothing was deleted before the confirmation");
    let out = cli(&config, &["run", "--once", "--allow-mass-delete"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(carol.items().await.unwrap().len(), 8);
}

/// A run that fails (the server went away) leaves its error, with a hint, in `status`; `status`
/// exits 1, and the member rows keep their last good sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_errors_of_failed_runs() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let url = emu.url().to_owned();
    emu.shutdown().await;

    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = cli(&config, &["--json", "status"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = &json_lines(&out.stdout)[0];
    assert_eq!(status["last_outcome"], "failed", "{status}");
    let error = &status["last_errors"][0];
    assert_eq!(error["kind"], "unreachable", "{error}");
    assert!(error["hint"].as_str().unwrap().contains(&url), "{error}");
    let alice = status["members"].as_array().unwrap().iter().find(|m| m["member"] == "alice@contoso.test").unwrap();
    assert!(alice["last_sync"].is_string(), "the last good sync stays: {alice}");
    let out = cli(&config, &["status"]).await;
    assert!(text(&out).contains("nothing accepts connections"), "{}", text(&out));
}

/// Members from a distribution group are listed with their source, and members only the state
/// still knows (removed from the configuration) are listed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_every_member_however_it_joined() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let source = "\n[[groups.member_sources]]\ndistribution_group = \"sales@contoso.test\"\ndirection = \"one_way\"\n";
    let members = [member("carol@contoso.test", "one_way", ""), member("dave@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + source).unwrap();
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = cli(&config, &["--json", "status"]).await;
    let status = &json_lines(&out.stdout)[0];
    let rows = status["members"].as_array().unwrap();
    let source_of = |m: &str| rows.iter().find(|r| r["member"] == m).map(|r| r["source"].as_str().unwrap().to_owned());
    assert_eq!(source_of("alice@contoso.test").as_deref(), Some("distribution group sales@contoso.test"), "{status}");
    assert_eq!(source_of("bob@contoso.test").as_deref(), Some("distribution group sales@contoso.test"));
    assert_eq!(source_of("carol@contoso.test").as_deref(), Some("listed"));
    let alice = rows.iter().find(|r| r["member"] == "alice@contoso.test").unwrap();
    assert_eq!(alice["copies"], 3, "{alice}");

    // Dave is removed from the file: the state still holds his copies until the next run.
    let without_dave = std::fs::read_to_string(&config).unwrap().replace(&members[1], "");
    std::fs::write(&config, without_dave).unwrap();
    let out = cli(&config, &["--json", "status"]).await;
    let status = &json_lines(&out.stdout)[0];
    let dave = status["members"].as_array().unwrap().iter().find(|r| r["member"] == "dave@contoso.test").unwrap();
    assert_eq!(dave["source"], "no longer configured", "{dave}");
    assert_eq!(dave["copies"], 3, "{dave}");
    let out = cli(&config, &["groups"]).await;
    assert!(text(&out).contains("2 from distribution groups"), "{}", text(&out));
}

/// `plan` names items by name and address, shows updates old -> new and deletes by name; `plan
/// --member` shows one member's writes only; `show` finds an item by name with its copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_show_name_items_and_show_changes() {
    let emu = emulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    let names = unique_names(&hub).await;
    let (edited, deleted) = (&names[0], &names[1]);
    let item = find(&hub, edited).await.unwrap();
    let before = item.item.text(field::JOB_TITLE).map(str::to_owned);
    let address = item.item.text(field::EMAIL1).unwrap().to_owned();
    hub.update(&item.id, |i| i.set(field::JOB_TITLE, "Chief Plumber")).await.unwrap();
    hub.delete(&find(&hub, deleted).await.unwrap().id).await.unwrap();

    let out = cli(&config, &["plan"]).await;
    let plan = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    let old = before.map_or_else(|| "(empty)".to_owned(), |b| format!("{b:?}"));
    assert!(
        plan.contains(&format!(
            "- update contact \"{edited}\" <{address}> in carol@contoso.test/contacts/Company Contacts (changed in hub): \
             job_title {old} -> \"Chief Plumber\""
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("- delete contact \"{deleted}\"")) && plan.contains("(deleted in hub)"),
        "deletes are named: {plan}"
    );
    assert!(!plan.contains("delete item"), "{plan}");

    let out = cli(&config, &["--json", "plan"]).await;
    let report = &json_lines(&out.stdout)[0];
    assert!(report.get("plan").is_none(), "JSON carries no text plan: {report}");
    assert!(report["duration_ms"].is_u64(), "{report}");
    let update = report["planned"].as_array().unwrap().iter().find(|a| a["action"] == "update").unwrap();
    assert_eq!(update["changes"][0]["field"], "job_title", "{update}");
    assert_eq!(update["changes"][0]["new"], "\"Chief Plumber\"", "{update}");

    let out = cli(&config, &["plan", "--group", GROUP, "--member", "carol@contoso.test"]).await;
    let plan = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    assert!(plan.contains("in carol@contoso.test") || plan.contains("from carol@contoso.test"), "{plan}");
    assert!(!plan.contains("alice@contoso.test/contacts"), "only carol's writes: {plan}");
    let out = cli(&config, &["plan", "--group", GROUP, "--member", "nobody@contoso.test"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&config, &["show", edited]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains(&format!("contact \"{edited}\" <{address}> in group {GROUP}")), "{shown}");
    assert!(shown.contains("Chief Plumber"), "{shown}");
    for m in ["hub", "alice@contoso.test", "carol@contoso.test"] {
        assert!(
            shown.lines().any(|l| l.trim_start().starts_with(m) && l.contains("holds the shared content")),
            "{m}: {shown}"
        );
    }
    let out = cli(&config, &["--json", "show", &address]).await;
    let view = &json_lines(&out.stdout)[0];
    assert_eq!(view["copies"].as_array().unwrap().len(), 3, "{view}");
    let out = cli(&config, &["show", "no such person"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A conflict names its item, in the run's report and in `conflicts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_name_their_items() {
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let members = [member("alice@contoso.test", "two_way", ""), member("bob@contoso.test", "two_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let name = unique_names(&folders.hub().await).await[0].clone();
    for (who, title) in [("alice@contoso.test", "Alice's title"), ("bob@contoso.test", "Bob's title")] {
        let f = folders.member(who).await;
        let item = find(&f, &name).await.unwrap();
        f.update(&item.id, |i| i.set(field::JOB_TITLE, title)).await.unwrap();
    }
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&config, &["conflicts"]).await;
    let log = text(&out);
    assert!(log.contains(&format!("contact \"{name}\"")), "{log}");
    assert!(log.contains("field job_title"), "{log}");
    let out = cli(&config, &["--json", "conflicts"]).await;
    let entry = &json_lines(&out.stdout)[0];
    assert!(entry["item"].as_str().unwrap().contains(&name), "{entry}");
}

/// Every exit code the README documents, for the commands that give it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_the_documented_ones() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    // 0
    for args in [&["check"][..], &["plan"], &["run", "--once"], &["status"], &["groups"], &["conflicts"]] {
        let out = cli(&config, args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
    // 2: arguments the configuration does not know, and a bad log level.
    for args in [
        &["confirm", "--group", "nope"][..],
        &["resync", "--group", GROUP, "--member", "nobody@contoso.test"],
        &["plan", "--group", "nope"],
        &["--log-level", "loud", "status"],
    ] {
        let out = cli(&config, args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    // 4: the hub's public folder does not exist.
    let wrong = std::fs::read_to_string(&config).unwrap().replace("\"Company Contacts\"", "\"Company Contact\"");
    let other = dir.path().join("wrong-hub.toml");
    std::fs::write(&other, wrong).unwrap();
    for args in [&["check"][..], &["plan"], &["run", "--once"]] {
        let out = cli(&other, args).await;
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
    }

    // 5: a damaged state file (every command that reads it), and a read-only one (run).
    let state = dir.path().join("state.sqlite");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"this is not a database, it was overwritten by accident".repeat(100)).unwrap();
    for args in [&["status"][..], &["conflicts"], &["plan"], &["run", "--once"]] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {t}");
        assert!(t.contains("not a database"), "SQLite's cause is kept: {t}");
        assert!(t.contains("damaged"), "and what to do: {t}");
    }
    std::fs::write(&state, &good).unwrap();
    #[cfg(unix)]
    if !running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o400)).unwrap();
        let out = cli(&config, &["run", "--once"]).await;
        assert_eq!(out.status.code(), Some(5), "{}", text(&out));
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // 1: `show` finds nothing; `status` after a failed pass is covered elsewhere.
    let out = cli(&config, &["show", "nobody at all"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[cfg(unix)]
fn running_as_root() -> bool {
    // Root writes read-only files anyway: only a non-root user sees the read-only state refused.
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// A state directory that cannot be written (read-only file system) is a state error, exit 5,
/// with SQLite's reason and what to do; `chattr`-free, so it works as root too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_cannot_be_written_exits_5_with_its_cause() {
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    // /proc is never writable, even for root.
    let text_before = std::fs::read_to_string(&config).unwrap();
    let state_line = format!("state = \"{}\"", dir.path().join("state.sqlite").display());
    std::fs::write(&config, text_before.replace(&state_line, "state = \"/proc/exchange-sync/state.sqlite\"")).unwrap();
    let out = cli(&config, &["run", "--once"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("/proc/exchange-sync/state.sqlite"), "{t}");
}

/// The errors that stumped admins, each with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do() {
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let variant = |name: &str, from: &str, to: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, std::fs::read_to_string(&config).unwrap().replace(from, to)).unwrap();
        path
    };

    // A wrong EWS URL path (HTTP 404).
    let wrong_path = variant("404.toml", "/EWS/Exchange.asmx", "/EWS/Exchange.asm");
    for args in [&["run", "--once"][..], &["plan"], &["check"]] {
        let out = cli(&wrong_path, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {t}");
        assert!(t.contains("no EWS endpoint"), "{t}");
        assert!(t.contains("check connections.lab.url"), "{t}");
        if args[0] != "check" {
            // (`check` names each folder it could not open.)
            assert_eq!(t.matches("check connections.lab.url").count(), 1, "said once: {t}");
        }
    }

    // A wrong public folder name lists the folders that exist.
    let wrong_hub = variant("hub.toml", "\"Company Contacts\" }", "\"Company Contact\" }");
    let out = cli(&wrong_hub, &["plan"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("there is no public folder \"Company Contact\""), "{t}");
    assert!(t.contains("the public folder root holds \"Company Contacts\""), "{t}");
    assert!(t.contains("did you mean \"Company Contacts\"?"), "{t}");

    // A wrong password names the account and where the password comes from.
    std::fs::write(dir.path().join("password"), "not the password\n").unwrap();
    let out = cli(&config, &["run", "--once"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains(&format!("refused the credentials of {ADMIN}")), "{t}");
    assert!(t.contains("password from file"), "{t}");
    assert!(!t.contains("not the password"), "never the password itself: {t}");
}

/// Basic against an NTLM-only server: the hint says the server offers NTLM (exit 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_against_an_ntlm_only_server_is_told_to_use_ntlm() {
    let emu = emulator_with(ews_emulator::EmulatorConfig {
        contacts: 2,
        require_ntlm: true,
        ..ews_emulator::EmulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    for args in [&["run", "--once"][..], &["check"]] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {t}");
        assert!(t.contains("it offers NTLM"), "{t}");
        assert!(t.contains("connections.lab.auth = \"ntlm\""), "{t}");
    }
}

/// An untrusted certificate: the hint names `tls.ca_file` (exit 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_points_at_tls_ca_file() {
    let emu = emulator_with(ews_emulator::EmulatorConfig {
        contacts: 2,
        tls: true,
        ..ews_emulator::EmulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    for args in [&["run", "--once"][..], &["plan"], &["check"]] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {t}");
        assert!(t.contains("connections.lab.tls.ca_file"), "{t}");
    }
    // With the CA given, it works.
    std::fs::write(dir.path().join("ca.pem"), emu.certificate_pem().unwrap()).unwrap();
    let ca = format!("\n[connections.lab.tls]\nca_file = \"{}\"\n", dir.path().join("ca.pem").display());
    let text_now = std::fs::read_to_string(&config).unwrap();
    let at = text_now.find("[[groups]]").unwrap();
    std::fs::write(&config, format!("{}{ca}\n{}", &text_now[..at], &text_now[at..])).unwrap();
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A filter, a modification or a match key on a misspelled field is refused at validation (exit
/// 2), with its place and the closest field names.
#[tokio::test]
async fn misspelled_field_names_are_refused_with_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    let members = [
        member("alice@contoso.test", "two_way", ""),
        member("carol@contoso.test", "one_way", "filter = { field = \"phone.hom\", exists = true }"),
        member("dave@contoso.test", "one_way", "modify = [{ clear = \"phone.mobil\" }]"),
    ];
    let config = write_config(dir.path(), "http://127.0.0.1:9/EWS/Exchange.asmx", "", &members);
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_before.replace("match_key = [\"email1.address\"]", "match_key = [\"email.address\"]"))
        .unwrap();
    let out = cli(&config, &["check", "--offline"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("unknown field \"phone.hom\": did you mean one of \"phone.home\""), "{t}");
    assert!(t.contains("unknown field \"phone.mobil\": did you mean \"phone.mobile\"?"), "{t}");
    assert!(t.contains("unknown field \"email.address\""), "{t}");
    assert!(t.contains("exchange-sync.toml:34:10"), "the filter's line: {t}");
    let out = cli(&config, &["fields"]).await;
    assert!(text(&out).lines().any(|l| l == "phone.home"), "{}", text(&out));
}

/// Commands that never connect need no secret; those that connect say which one is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_commands_need_no_secret() {
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_file(dir.path().join("password")).unwrap();
    for args in [
        &["check", "--offline"][..],
        &["status"],
        &["groups"],
        &["conflicts"],
        &["show", "contoso"],
        &["resync", "--group", GROUP, "--member", "carol@contoso.test"],
        &["confirm", "--group", GROUP],
    ] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert!(matches!(out.status.code(), Some(0) | Some(1)), "{args:?}: {t}");
        assert!(!t.contains("secret missing"), "{args:?}: {t}");
    }
    for args in [&["check"][..], &["plan"], &["run", "--once"]] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("secret missing: cannot read file"), "{t}");
    }
}

/// `--json`: stdout and stderr are JSON lines only, over 20 runs, and the last event of each run
/// (`pass_finished`) is never lost; durations carry their unit; no colour codes in files; the
/// plain-http warning is said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_json_only_and_no_event_is_lost() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    for run in 0..20 {
        let out = cli(&config, &["--json", "run", "--once"]).await;
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", text(&out));
        let reports = json_lines(&out.stdout);
        assert_eq!(reports.len(), 1, "run {run}");
        assert!(reports[0]["duration_ms"].is_u64(), "{}", reports[0]);
        let events = json_lines(&out.stderr);
        let last = events.iter().rev().find(|e| e.get("event").is_some()).unwrap();
        assert_eq!(last["event"], "pass_finished", "run {run}: the last event arrives: {events:?}");
        assert!(events.iter().any(|e| e["event"] == "pass_started"), "run {run}");
    }
    for args in [
        &["--json", "check"][..],
        &["--json", "check", "--offline"],
        &["--json", "plan"],
        &["--json", "status"],
        &["--json", "groups"],
    ] {
        let out = cli(&config, args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(!json_lines(&out.stdout).is_empty(), "{args:?}");
        json_lines(&out.stderr);
    }
    // Plain output to files: no colours, the warning once, events with units.
    let out = cli_env(&config, &["run", "--once"], &[("RUST_LOG", "info")]).await;
    let t = text(&out);
    assert!(!t.contains('\u{1b}'), "no colour codes in a file: {t:?}");
    assert_eq!(t.matches("credentials are sent over plain http://").count(), 1, "{t}");
    assert!(t.contains(" INFO "), "RUST_LOG is honoured: {t}");
    let out = cli_env(&config, &["run", "--once"], &[("EXCHANGE_SYNC_LOG", "error")]).await;
    assert!(!String::from_utf8_lossy(&out.stderr).contains(" WARN "), "{}", text(&out));
    let out = cli(&config, &["--log-level", "debug", "run", "--once"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEBUG"), "{}", text(&out));
}

/// The log file of `[service.log]`: written, and readable by its owner only (service mode).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_writes_its_log_file_and_keeps_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let emu = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let state_dir = dir.path().join("state");
    let password = format!("password_file = \"{}\"", dir.path().join("password").display());
    let log = format!(
        "\n[service.log]\nfile = \"{}\"\nrotation = \"daily\"\nkeep = 3\n",
        logs.join("exchange-sync.log").display()
    );
    let config = write_config_with(dir.path(), emu.url(), "", &password, "", &two_members());
    let text_now = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            &dir.path().join("state.sqlite").display().to_string(),
            &state_dir.join("state.sqlite").display().to_string(),
        )
        .replacen("[service.retry]", &format!("{log}\n[service.retry]"), 1);
    std::fs::write(&config, text_now).unwrap();
    let service = Service::start(&config, &[]);
    service.wait_for_line("Synced").await;
    assert_eq!(service.terminate().await, Some(0));
    let files: Vec<_> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::read_to_string(&files[0]).unwrap();
    assert!(written.contains("Synced"), "{written}");
    assert!(!written.contains('\u{1b}'));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(&state_dir.join("state.sqlite")), 0o600);
    assert_eq!(mode(&files[0]), 0o600);
}

/// Exchange 2007 SP1 has no streaming notifications: `check` and the service say so, and an edit
/// arrives through a pull subscription within seconds although polling is an hour away.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_2007_uses_pull_subscriptions_and_says_so() {
    let emu = emulator_with(ews_emulator::EmulatorConfig {
        contacts: 3,
        server_version: ews_emulator::ServerVersion::Exchange2007Sp1,
        ..ews_emulator::EmulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &two_members());
    let text_now = std::fs::read_to_string(&config).unwrap().replace(
        "poll_interval_secs = 1",
        "poll_interval_secs = 3600\nresync_interval_secs = 3600\npull_interval_ms = 200",
    );
    std::fs::write(&config, text_now).unwrap();
    let out = cli(&config, &["check"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Exchange 2007") && t.contains("pull subscriptions"), "{t}");

    let service = Service::start(&config, &[]);
    service.wait_for_line("Synced").await;
    assert!(service.log().contains("no streaming notifications"), "{}", service.log());
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    let name = unique_names(&hub).await[0].clone();
    let item = find(&hub, &name).await.unwrap();
    hub.update(&item.id, |i| i.set(field::JOB_TITLE, "Pulled")).await.unwrap();
    let carol = folders.member("carol@contoso.test").await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while field_of(&carol, &name, field::JOB_TITLE).await.as_deref() != Some("Pulled") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the edit arrives by the pull subscription, not by a poll an hour away");
    assert_eq!(service.terminate().await, Some(0));
}
