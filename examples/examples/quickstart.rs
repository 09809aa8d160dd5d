//! The quickstart: one sync group on the public folder `Company Contacts`, with two editors
//! (two-way) and two readers (one-way), kept in sync in real time. It plays a short story and
//! prints what happens, with timings:
//!
//! 1. an edit on the public folder reaches all four members;
//! 2. an editor's edit (as made from a phone) reaches the public folder and the others;
//! 3. a reader's edit is reverted;
//! 4. two editors edit the same contact: merged field by field, with a conflict record;
//! 5. a deleted contact disappears everywhere.
//!
//! By default it starts the embedded EWS emulator (demo tenant contoso.test). To point it at a
//! real server instead, set:
//!
//! - `EXCHANGE_SYNC_URL`: the EWS URL, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`;
//! - `EXCHANGE_SYNC_USER` and `EXCHANGE_SYNC_PASSWORD`: an account with the
//!   ApplicationImpersonation role and owner rights on the public folder;
//! - `EXCHANGE_SYNC_PUBLIC_FOLDER` (default `Company Contacts`);
//! - `EXCHANGE_SYNC_EDITORS` and `EXCHANGE_SYNC_READERS`: two comma-separated mailbox addresses each.
//!
//! Run it with `cargo run --example quickstart`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange_sync::config::{
    Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, Secret, StateLocation, TargetFolder,
    WellKnownFolder,
};
use exchange_sync::{EwsFolders, ItemFolder, PassOutcome, ProgressEvent, SyncService};
use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::{Item, field};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the story runs.
struct Setup {
    url: String,
    user: String,
    password: String,
    public_folder: String,
    editors: Vec<String>,
    readers: Vec<String>,
    /// Keeps the embedded emulator running.
    _emulator: Option<ews_emulator::RunningEmulator>,
}

fn list(var: &str) -> Option<Vec<String>> {
    let text = std::env::var(var).ok()?;
    let items: Vec<String> = text.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    (items.len() == 2).then_some(items)
}

async fn setup() -> Result<Setup, BoxError> {
    if let Ok(url) = std::env::var("EXCHANGE_SYNC_URL") {
        let need = |var: &str| std::env::var(var).map_err(|_| format!("{var} must be set with EXCHANGE_SYNC_URL"));
        return Ok(Setup {
            url,
            user: need("EXCHANGE_SYNC_USER")?,
            password: need("EXCHANGE_SYNC_PASSWORD")?,
            public_folder: std::env::var("EXCHANGE_SYNC_PUBLIC_FOLDER").unwrap_or_else(|_| "Company Contacts".into()),
            editors: list("EXCHANGE_SYNC_EDITORS").ok_or("EXCHANGE_SYNC_EDITORS needs two addresses")?,
            readers: list("EXCHANGE_SYNC_READERS").ok_or("EXCHANGE_SYNC_READERS needs two addresses")?,
            _emulator: None,
        });
    }
    let emulator = ews_emulator::Emulator::start(ews_emulator::EmulatorConfig {
        contacts: 25,
        heartbeat_interval: Duration::from_secs(1),
        ..ews_emulator::EmulatorConfig::default()
    })
    .await?;
    println!("started the EWS emulator at {} (tenant contoso.test)", emulator.url());
    Ok(Setup {
        url: emulator.url().to_owned(),
        user: "sync-admin@contoso.test".into(),
        password: "exchange-sync".into(),
        public_folder: "Company Contacts".into(),
        editors: vec!["alice@contoso.test".into(), "bob@contoso.test".into()],
        readers: vec!["carol@contoso.test".into(), "dave@contoso.test".into()],
        _emulator: Some(emulator),
    })
}

/// The target folder in every member mailbox (created when missing).
fn target() -> TargetFolder {
    TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company Contacts".into() }
}

fn config(setup: &Setup) -> Config {
    let mut group =
        GroupConfig::new("company-contacts", "exchange", HubFolder::PublicFolder(setup.public_folder.clone()));
    for editor in &setup.editors {
        group = group.with_member(MemberConfig::two_way(editor.clone()));
    }
    for reader in &setup.readers {
        group = group.with_member(MemberConfig::one_way(reader.clone()));
    }
    group.default_target = target();
    group.match_key = vec![field::EMAIL1.into()];
    let mut config = Config {
        connections: vec![Connection::new(
            "exchange",
            setup.url.clone(),
            Auth::Basic { username: setup.user.clone(), password: Secret::Inline(setup.password.clone()) },
        )],
        groups: vec![group],
        ..Config::default()
    };
    config.service.state = StateLocation::Memory;
    config.service.debounce = Duration::from_millis(50);
    config.service.poll_interval = Duration::from_secs(2);
    config
}

/// A contact's name: its display name, or given name and surname (servers derive the display
/// name from them).
fn name_of(item: &Item) -> Option<String> {
    if let Some(name) = item.text(field::DISPLAY_NAME) {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = [field::GIVEN_NAME, field::SURNAME].iter().filter_map(|f| item.text(f)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The value of `field` on the contact named `name` in `folder` (`None`: no such contact).
async fn value(folder: &ItemFolder, name: &str, field: &str) -> Result<Option<Option<String>>, BoxError> {
    let items = folder.items().await?;
    Ok(items.iter().find(|i| name_of(&i.item).as_deref() == Some(name)).map(|i| i.item.text(field).map(str::to_owned)))
}

/// Polls `check` until it holds; answers how long that took from `since`.
async fn until<F, Fut>(since: Instant, what: &str, check: F) -> Result<Duration, BoxError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, BoxError>>,
{
    let deadline = since + Duration::from_secs(30);
    loop {
        if check().await? {
            return Ok(since.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!("gave up waiting: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every folder's contact `name` has `field` = `expected`.
async fn all_have(folders: &[ItemFolder], name: &str, field: &str, expected: Option<&str>) -> Result<bool, BoxError> {
    for f in folders {
        if value(f, name, field).await?.map(|v| v.as_deref() == expected) != Some(true) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn ms(d: Duration) -> String {
    format!("{:>5} ms", d.as_millis())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("EXCHANGE_SYNC_LOG").unwrap_or_else(|_| "error".into()))
        .init();
    let started = Instant::now();
    let setup = setup().await?;
    let config = config(&setup);
    let folders = Arc::new(EwsFolders::connect(&config).await?);
    let service = SyncService::new(config, folders.clone(), Arc::new(MemoryStore::new()))?;
    let mut events = service.subscribe();

    println!("\n== initial sync: {} -> 2 editors (two-way) and 2 readers (one-way)", setup.public_folder);
    let running = tokio::spawn({
        let service = service.clone();
        async move { service.run().await }
    });
    loop {
        match events.recv().await? {
            ProgressEvent::PassFinished { report } if report.outcome == PassOutcome::Synced => {
                println!("   {report}");
                break;
            }
            ProgressEvent::PassFinished { report } => return Err(format!("initial sync failed: {report:?}").into()),
            _ => {}
        }
    }

    let hub = folders.open_public_folder("exchange", &setup.public_folder).await?;
    let mut members = Vec::new();
    for m in setup.editors.iter().chain(&setup.readers) {
        members.push(folders.open_mailbox_folder("exchange", m, &target(), true).await?);
    }
    let (alice, bob, carol) = (members[0].clone(), members[1].clone(), members[2].clone());
    let everyone: Vec<ItemFolder> = std::iter::once(hub.clone()).chain(members.iter().cloned()).collect();
    // The story addresses contacts by name: use names that occur once.
    let all: Vec<String> = hub.items().await?.iter().filter_map(|i| name_of(&i.item)).collect();
    let mut names: Vec<String> = all.iter().filter(|n| all.iter().filter(|m| m == n).count() == 1).cloned().collect();
    names.sort();
    if names.len() < 5 {
        return Err("the public folder needs at least five contacts with distinct names for the story".into());
    }
    let id_in = |folder: ItemFolder, name: String| async move {
        let items = folder.items().await?;
        items
            .into_iter()
            .find(|i| name_of(&i.item).as_deref() == Some(name.as_str()))
            .map(|i| i.id)
            .ok_or_else(|| BoxError::from(format!("{name} not found in {}", folder.describe())))
    };

    println!("\n== 1. someone edits {} in the public folder", names[0]);
    let t = Instant::now();
    hub.update(&id_in(hub.clone(), names[0].clone()).await?, |i| i.set(field::JOB_TITLE, "Head of Sales")).await?;
    let took = until(t, "the job title in every mailbox", || {
        all_have(&members, &names[0], field::JOB_TITLE, Some("Head of Sales"))
    })
    .await?;
    println!("   {} the new job title is in all four mailboxes", ms(took));

    println!("\n== 2. {} (editor) changes {}'s mobile number on a phone", setup.editors[0], names[1]);
    let t = Instant::now();
    alice.update(&id_in(alice.clone(), names[1].clone()).await?, |i| i.set(field::PHONE_MOBILE, "+1 555 0100")).await?;
    let took = until(t, "the mobile number everywhere", || {
        all_have(&everyone, &names[1], field::PHONE_MOBILE, Some("+1 555 0100"))
    })
    .await?;
    println!("   {} the public folder and the three other mailboxes have it", ms(took));

    println!("\n== 3. {} (reader) changes {}'s company", setup.readers[0], names[2]);
    let original = value(&hub, &names[2], field::COMPANY).await?.flatten();
    let t = Instant::now();
    carol.update(&id_in(carol.clone(), names[2].clone()).await?, |i| i.set(field::COMPANY, "My own company")).await?;
    let edited = until(t, "the reader's edit to land", || async {
        Ok(value(&carol, &names[2], field::COMPANY).await?.flatten().as_deref() != original.as_deref())
    });
    // The edit may be reverted before we even look; either way, wait for the revert.
    let _ = edited.await;
    let carol_only = [carol.clone()];
    let took = until(t, "the revert", || all_have(&carol_only, &names[2], field::COMPANY, original.as_deref())).await?;
    println!(
        "   {} reverted: {}'s copy says {:?} again, like the public folder",
        ms(took),
        setup.readers[0],
        original.unwrap_or_default()
    );

    println!("\n== 4. both editors change {} at the same time", names[3]);
    let t = Instant::now();
    let (a, b) = (id_in(alice.clone(), names[3].clone()).await?, id_in(bob.clone(), names[3].clone()).await?);
    let (ra, rb) = tokio::join!(
        alice.update(&a, |i| {
            i.set(field::PHONE_MOBILE, "+1 555 0001");
            i.set(field::DEPARTMENT, "Field sales");
        }),
        bob.update(&b, |i| {
            i.set(field::PHONE_MOBILE, "+1 555 0002");
            i.set(field::OFFICE, "Building 7");
        })
    );
    ra?;
    rb?;
    let took = until(t, "the merge", || async {
        Ok(all_have(&everyone, &names[3], field::DEPARTMENT, Some("Field sales")).await?
            && all_have(&everyone, &names[3], field::OFFICE, Some("Building 7")).await?
            && !service.conflicts(None).await?.is_empty())
    })
    .await?;
    let kept = value(&hub, &names[3], field::PHONE_MOBILE).await?.flatten();
    let took = until(t, "the same mobile number everywhere", || {
        all_have(&everyone, &names[3], field::PHONE_MOBILE, kept.as_deref())
    })
    .await?
    .max(took);
    println!(
        "   {} merged field by field: department from one, office from the other, mobile {:?} kept",
        ms(took),
        kept.unwrap_or_default()
    );
    for entry in service.conflicts(None).await? {
        println!("   conflict log: {entry}");
    }

    println!("\n== 5. {} (editor) deletes {}", setup.editors[1], names[4]);
    let gone = names[4].clone();
    let t = Instant::now();
    bob.delete(&id_in(bob.clone(), gone.clone()).await?).await?;
    let took = until(t, "the deletion everywhere", || async {
        for f in &everyone {
            if value(f, &gone, field::GIVEN_NAME).await?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    println!("   {} gone from the public folder and every mailbox", ms(took));

    service.shutdown();
    running.await??;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
