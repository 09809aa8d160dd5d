//! Data safety through the admin CLI, against the EWS emulator over HTTP: no ordinary admin action,
//! restart or server quirk may lose or duplicate an item.
//!
//! Each test plays one way it went wrong before: a changed target, two instances on one state, a
//! guard stop confirmed while the service runs, a user's own contact that matches a shared one, a
//! mailbox address written in two cases, a dry run, a member without a mailbox, a stopped service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::cli::*;
use common::*;
use exchange_sync::ItemFolder;
use exchange_sync::config::{TargetFolder, WellKnownFolder};
use exchange_sync_core::{Item, field};

/// A member's default Contacts folder (not the group's target).
async fn default_contacts(folders: &Folders, mailbox: &str) -> ItemFolder {
    let target = TargetFolder::WellKnown(WellKnownFolder::Contacts);
    folders.ews.open_mailbox_folder("lab", mailbox, &target, false).await.unwrap()
}

/// Finding 1: changing a two-way member's target wiped the hub and every other member. Now the
/// member is re-homed: its copies in the old folder are handled like a leave, the new folder gets
/// an initial sync, and the hub and the other members keep everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_target_rehomes_the_member_and_the_others_keep_everything() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let carol = member("carol@contoso.test", "one_way", "");
    let config = write_config(dir.path(), emu.url(), "", &[member("alice@contoso.test", "two_way", ""), carol.clone()]);
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub_names = names(&folders.hub().await).await;
    assert_eq!(hub_names.len(), 3);
    let old_folder = folders.member("alice@contoso.test").await;
    assert_eq!(names(&old_folder).await, hub_names);

    // Alice's copies are to go to her default Contacts folder from now on.
    let config = write_config(
        dir.path(),
        emu.url(),
        "",
        &[member("alice@contoso.test", "two_way", "target = \"contacts\""), carol],
    );
    let out = cli(&config, &["plan"]).await;
    let plan = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    assert!(
        plan.contains(
            "re-home alice@contoso.test: contacts/Company Contacts -> contacts: 3 copies in the old folder removed \
             (on_leave = remove); the new folder gets an initial sync"
        ),
        "{plan}"
    );
    assert!(!plan.contains("delete item"), "a re-home deletes nothing in the hub or the others: {plan}");
    assert_eq!(names(&old_folder).await, hub_names, "the dry run wrote nothing");
    let out = cli(&config, &["check"]).await;
    assert!(text(&out).contains("re-home alice@contoso.test"), "{}", text(&out));

    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("re-homed alice@contoso.test"), "{}", text(&out));
    assert_eq!(names(&folders.hub().await).await, hub_names, "the hub keeps everything");
    assert_eq!(names(&folders.member("carol@contoso.test").await).await, hub_names, "carol keeps everything");
    assert_eq!(names(&default_contacts(&folders, "alice@contoso.test").await).await, hub_names);
    assert!(old_folder.items().await.unwrap().is_empty(), "the old copies were removed (on_leave = remove)");

    // Stable: the next run writes nothing.
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 created, 0 updated (0 reverted), 0 deleted"), "{}", text(&out));
}

/// Finding 1 under `on_leave = "keep"`: the old copies stay, as the user's own, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_target_under_keep_leaves_the_old_copies_alone() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let keep = "on_leave = \"keep\"";
    let config = write_config(dir.path(), emu.url(), keep, &[member("bob@contoso.test", "two_way", "")]);
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub_names = names(&folders.hub().await).await;
    let old_folder = folders.member("bob@contoso.test").await;

    let config =
        write_config(dir.path(), emu.url(), keep, &[member("bob@contoso.test", "two_way", "target = \"contacts\"")]);
    let out = cli(&config, &["plan"]).await;
    assert!(
        text(&out).contains("3 copies in the old folder kept as the user's own (on_leave = keep)"),
        "{}",
        text(&out)
    );
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(names(&old_folder).await, hub_names, "kept");
    assert_eq!(names(&default_contacts(&folders, "bob@contoso.test").await).await, hub_names);
    assert_eq!(names(&folders.hub().await).await, hub_names);
}

/// Finding 2: two `run --once` on one state file at once each planned the same creates, and
/// every member got every contact twice. Now the second is refused at once (exit 5), saying who
/// holds the state, and nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_one_is_refused_and_nothing_is_duplicated() {
    // Answers are slow enough that a pass lasts seconds: the two runs overlap.
    let emu = ews_emulator::Emulator::start(ews_emulator::EmulatorConfig {
        contacts: 10,
        latency: Duration::from_millis(100),
        trace_dir: std::env::var_os("EWS_TRACE_DIR").map(Into::into),
        ..ews_emulator::EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let members = [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let (a, b) = tokio::join!(cli(&config, &["run", "--once"]), cli(&config, &["run", "--once"]));
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(5)], "{}\n---\n{}", text(&a), text(&b));
    let refused = if a.status.code() == Some(5) { text(&a) } else { text(&b) };
    assert!(refused.contains("is in use by process"), "{refused}");
    assert!(refused.contains("one writer"), "{refused}");

    let folders = Folders::new(&common::config(&emu, group())).await;
    for m in ["alice@contoso.test", "carol@contoso.test"] {
        assert_eq!(folders.member(m).await.items().await.unwrap().len(), 10, "{m}: no duplicates");
    }
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 created"), "{}", text(&out));
}

/// Finding 2 with a service: a confirmation run beside it was a second writer. Now `run --once
/// --allow-mass-delete` is refused (exit 5, with a hint), and `confirm` reaches the running
/// service through the state within seconds. A stop by SIGTERM exits 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_reaches_a_running_service() {
    let emu = emulator(12).await;
    let dir = tempfile::tempdir().unwrap();
    let members = [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let service = Service::start(&config, &[]);
    let folders = Folders::new(&common::config(&emu, group())).await;
    let carol = folders.member("carol@contoso.test").await;
    eventually("carol receives the contacts", || async { carol.items().await.unwrap().len() == 12 }).await;

    // The public folder is emptied at once (by accident, or on purpose): the guard holds the group.
    empty_public_folder(&emu);
    service.wait_for_line("StoppedByMassDeleteGuard").await;
    assert_eq!(carol.items().await.unwrap().len(), 12, "nothing deleted before a confirmation");

    // A second writer is refused at once: a second service, and a confirmation run (told how to
    // confirm instead).
    let out = tokio::time::timeout(Duration::from_secs(60), cli(&config, &["run"])).await.unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("is in use by process"), "{}", text(&out));
    let out = cli(&config, &["run", "--once", "--allow-mass-delete"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains(&format!("exchange-sync confirm --group {GROUP}")), "{}", text(&out));
    // Readers work beside the service.
    let out = cli(&config, &["status"]).await;
    assert!(text(&out).contains("carol@contoso.test"), "{}", text(&out));

    let out = cli(&config, &["confirm", "--group", GROUP]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("the running service carries it out"), "{}", text(&out));
    eventually("the confirmed deletions reach carol", || async { carol.items().await.unwrap().is_empty() }).await;
    assert!(folders.member("alice@contoso.test").await.items().await.unwrap().is_empty());

    assert_eq!(service.terminate().await, Some(0));
    let out = cli(&config, &["status"]).await;
    assert!(!text(&out).contains("pending admin request"), "the request was carried out: {}", text(&out));
}

/// Without a running service, `confirm` says the confirmation applies at the next run, and the
/// next `run --once` carries it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_without_a_service_applies_at_the_next_run() {
    let emu = emulator(12).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), emu.url(), "", &[member("carol@contoso.test", "one_way", "")]);
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    for item in hub.items().await.unwrap() {
        hub.delete(&item.id).await.unwrap();
    }
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains(&format!("exchange-sync confirm --group {GROUP}")), "{}", text(&out));

    let out = cli(&config, &["confirm", "--group", GROUP]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("it applies at the next run"), "{}", text(&out));
    let out = cli(&config, &["status"]).await;
    assert!(text(&out).contains("pending admin request: confirm deletions"), "{}", text(&out));
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("carried out the admin request"), "{}", text(&out));
    assert!(folders.member("carol@contoso.test").await.items().await.unwrap().is_empty());

    // `resync` is posted the same way.
    let out = cli(&config, &["resync", "--group", GROUP, "--member", "Carol@Contoso.test"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("resync of carol@contoso.test"), "{}", text(&out));
    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("carried out the admin request: resync carol@contoso.test"), "{}", text(&out));
}

/// Findings 3 and 8: initial matching overwrote users' own contacts (a one-way reader's title and
/// notes; a two-way editor's contact overwrote the hub). A contact that matches a shared one by
/// e-mail address but differs is the user's own: untouched, no second copy, and `plan` names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_own_matching_contact_is_kept_untouched() {
    let emu = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let folders = Folders::new(&common::config(&emu, group())).await;
    let hub = folders.hub().await;
    let shared = hub.items().await.unwrap();
    let henrik = &shared[0].item;
    let name = label(henrik).unwrap();
    // How plans and reports name an item.
    let named = exchange_sync_core::plan::label(henrik);
    let address = henrik.text(field::EMAIL1).unwrap().to_owned();
    // Dave (a reader) and Bob (an editor) have their own contact with that address.
    let own = |title: &str| -> Item {
        let mut item = henrik.clone();
        item.set(field::JOB_TITLE, title);
        item.set(field::COMPANY, "Private notes Ltd");
        item
    };
    let dave = folders.member("dave@contoso.test").await;
    dave.create(&own("Dave's trusted plumber")).await.unwrap();
    let bob = folders.member("bob@contoso.test").await;
    bob.create(&own("Bob's old colleague")).await.unwrap();
    let members = [member("bob@contoso.test", "two_way", ""), member("dave@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);

    let out = cli(&config, &["plan"]).await;
    let plan = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    assert!(plan.contains(&format!("kept dave@contoso.test's own {named}: it matches a group item")), "{plan}");
    assert!(plan.contains(&format!("kept bob@contoso.test's own {named}")), "{plan}");

    let out = cli(&config, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("kept dave@contoso.test's own contact"), "{}", text(&out));
    for (folder, title) in [(&dave, "Dave's trusted plumber"), (&bob, "Bob's old colleague")] {
        let items = folder.items().await.unwrap();
        assert_eq!(items.len(), 3, "the two others arrived, and no second copy of the matched one");
        let mine: Vec<_> = items.iter().filter(|i| i.item.text(field::EMAIL1) == Some(address.as_str())).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].item.text(field::JOB_TITLE), Some(title), "untouched");
        assert_eq!(mine[0].item.text(field::COMPANY), Some("Private notes Ltd"));
    }
    let now = find(&hub, &name).await.unwrap();
    assert_eq!(now.item.text(field::JOB_TITLE), henrik.text(field::JOB_TITLE), "the hub was not overwritten");
    assert_eq!(now.item.text(field::COMPANY), henrik.text(field::COMPANY));
    assert_eq!(hub.items().await.unwrap().len(), 3, "the editor's own contact did not join as a new item");
}

/// Finding 4: member addresses were case-sensitive, and one mailbox written twice got every
/// contact twice. Now the configuration is refused (exit 2), naming both places.
#[tokio::test]
async fn one_mailbox_in_two_spellings_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let members = [member("alice@contoso.test", "two_way", ""), member("Alice@Contoso.test", "one_way", "")];
    let config = write_config(dir.path(), "http://127.0.0.1:9/EWS/Exchange.asmx", "", &members);
    let written = std::fs::read_to_string(&config).unwrap();
    let line_of = |needle: &str| written.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (first, second) = (line_of("\"alice@contoso.test\""), line_of("\"Alice@Contoso.test\""));
    for args in [&["check"][..], &["check", "--offline"], &["run", "--once"]] {
        let out = cli(&config, args).await;
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("\"Alice@Contoso.test\""), "{t}");
        assert!(t.contains("without regard to case"), "{t}");
        // The second member's place, and the first's.
        assert!(t.contains(&format!("exchange-sync.toml:{second}:11: error: groups[0].members[1]")), "{t}");
        assert!(t.contains(&format!("see groups[0].members[0].id at line {first}, column 11")), "{t}");
    }
}

/// Finding 6: `plan` created the target folder in each mailbox (and the state file). A dry run
/// writes nothing anywhere; it says which folders a run would create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_creates_no_folder_and_no_state() {
    let emu = emulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let members = [member("alice@contoso.test", "two_way", ""), member("carol@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let out = cli(&config, &["plan"]).await;
    let plan = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan}");
    for m in ["alice@contoso.test", "carol@contoso.test"] {
        assert!(plan.contains(&format!("would create folder contacts/Company Contacts in {m}")), "{plan}");
        assert!(emu.store().folder_id(m, "contacts/Company Contacts").is_none(), "{m}: no folder created");
    }
    assert_eq!(plan.matches("create contact").count(), 8, "{plan}");
    assert!(!dir.path().join("state.sqlite").exists(), "no state written");
    let out = cli(&config, &["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("folder contacts/Company Contacts will be created at the first run"));
    assert!(emu.store().folder_id("alice@contoso.test", "contacts/Company Contacts").is_none(), "check neither");
}

/// Finding 7: one member without a mailbox blocked the whole group, and `check` said the group was
/// fine. Now that member is reported by name and left out, the others sync, and `check` exits 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_a_mailbox_is_left_out_and_named() {
    let emu = emulator(5).await;
    let dir = tempfile::tempdir().unwrap();
    let members = [
        member("alice@contoso.test", "two_way", ""),
        member("ghost@contoso.test", "one_way", ""),
        member("carol@contoso.test", "one_way", ""),
    ];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let out = cli(&config, &["check"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("ghost@contoso.test cannot be reached"), "{t}");
    assert!(t.contains("ErrorNonExistentMailbox") || t.contains("no mailbox"), "{t}");
    assert!(t.contains("alice@contoso.test reachable") && t.contains("carol@contoso.test reachable"), "{t}");

    let out = cli(&config, &["run", "--once"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("ghost@contoso.test is left out"), "{t}");
    let folders = Folders::new(&common::config(&emu, group())).await;
    for m in ["alice@contoso.test", "carol@contoso.test"] {
        assert_eq!(folders.member(m).await.items().await.unwrap().len(), 5, "{m} synced");
    }
    let out = cli(&config, &["status"]).await;
    let t = text(&out);
    assert!(t.contains("ghost@contoso.test"), "{t}");
    assert!(t.contains("left out of the last pass"), "its status says why: {t}");
}

/// Finding 11: after SIGTERM, a service whose last pass had a problem exited 1. A stop asked for
/// ends with 0 once the passes in flight ended or were abandoned safely.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_service_exits_0_although_a_member_is_unreachable() {
    let emu = emulator(5).await;
    let dir = tempfile::tempdir().unwrap();
    let members = [member("ghost@contoso.test", "one_way", ""), member("carol@contoso.test", "one_way", "")];
    let config = write_config(dir.path(), emu.url(), "", &members);
    let service = Service::start(&config, &[]);
    let folders = Folders::new(&common::config(&emu, group())).await;
    let carol = folders.member("carol@contoso.test").await;
    eventually("carol receives the contacts", || async { carol.items().await.unwrap().len() == 5 }).await;
    service.wait_for_line("PartiallyFailed").await;
    assert_eq!(service.terminate().await, Some(0));
}
