//! Helpers shared by the integration tests: finding the EWS schema and validating documents.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

/// The EWS schema folder: `$EWS_SCHEMA_DIR`, or `../shared/ews-schema` beside the repository root.
pub fn schema_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EWS_SCHEMA_DIR") {
        return PathBuf::from(d);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/ews-schema");
    assert!(dir.join("validate").exists(), "EWS schema not found at {} (set EWS_SCHEMA_DIR)", dir.display());
    dir
}

/// Validates every `*.xml` below `dir` (or the stream files given) and panics with the validator's
/// output if any document is invalid.
pub fn validate(args: &[&Path]) {
    let out = Command::new(schema_dir().join("validate")).args(args).output().expect("run validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schema validation failed:\n{text}");
}

/// Writes a document into a directory and, when set, into `$EWS_TRACE_DIR` too.
pub fn write_doc(dir: &Path, name: &str, doc: &str) {
    std::fs::write(dir.join(name), doc).expect("write document");
    if let Some(t) = std::env::var_os("EWS_TRACE_DIR") {
        let t = PathBuf::from(t);
        std::fs::create_dir_all(&t).expect("trace dir");
        std::fs::write(t.join(format!("schema-test-{name}")), doc).expect("write trace");
    }
}

use ews_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use exchange_sync_ews::{Credentials, EwsClient, Impersonation, RetryPolicy};

/// The demo tenant's password.
pub const PASSWORD: &str = "exchange-sync";
/// The service account with impersonation and public folder owner rights.
pub const ADMIN: &str = "sync-admin@contoso.test";

/// Starts an emulator, tracing what it receives and sends into `$EWS_TRACE_DIR` when set.
pub async fn emulator(mut config: EmulatorConfig) -> RunningEmulator {
    if config.trace_dir.is_none() {
        config.trace_dir = std::env::var_os("EWS_TRACE_DIR").map(Into::into);
    }
    Emulator::start(config).await.expect("emulator starts")
}

/// The demo tenant with few generated contacts.
pub async fn small_tenant() -> RunningEmulator {
    emulator(EmulatorConfig { contacts: 20, ..Default::default() }).await
}

/// Short retry delays: the emulator asks for short back-offs, and tests must not sleep long.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

/// A client logged in as `login`.
pub fn client_as(emu: &RunningEmulator, login: &str) -> EwsClient {
    EwsClient::builder(emu.url())
        .credentials(Credentials::basic(login, PASSWORD))
        .retry(quick_retries())
        .build()
        .expect("client")
}

/// The service account's client.
pub fn admin(emu: &RunningEmulator) -> EwsClient {
    client_as(emu, ADMIN)
}

/// The service account acting as a user (`alice` -> `alice@contoso.test`).
pub fn as_user(emu: &RunningEmulator, user: &str) -> EwsClient {
    admin(emu).impersonating(Impersonation::PrimarySmtpAddress(format!("{user}@contoso.test")))
}

use std::time::Duration;

/// The service account routed to the public folder mailbox.
pub fn public(emu: &RunningEmulator) -> EwsClient {
    admin(emu).with_routing(exchange_sync_ews::Routing {
        public_folder_mailbox: Some("publicfolders@contoso.test".into()),
        ..Default::default()
    })
}

/// A public folder below the root, by display name.
pub async fn public_folder(emu: &RunningEmulator, name: &str) -> exchange_sync_ews::FolderRef {
    use exchange_sync_ews::operation::folders::Traversal;
    use exchange_sync_ews::{DistinguishedFolder, FolderRef, FolderShape};
    let root = FolderRef::distinguished(DistinguishedFolder::PublicFoldersRoot);
    let folders =
        public(emu).find_folders(&root, &FolderShape::default(), Traversal::Shallow).await.expect("FindFolder");
    let f = folders.into_iter().find(|f| f.display_name.as_deref() == Some(name)).expect("public folder exists");
    FolderRef::Id(f.id)
}

/// A contact draft.
pub fn contact(given: &str, surname: &str) -> exchange_sync_ews::ItemDraft {
    use exchange_sync_ews::{Field, ItemDraft, ItemType};
    ItemDraft {
        item_type: ItemType::Contact,
        fields: vec![
            Field::text("GivenName", given),
            Field::text("Surname", surname),
            Field::text("DisplayName", format!("{given} {surname}")),
            Field::Entry {
                dictionary: "EmailAddresses".into(),
                key: "EmailAddress1".into(),
                value: format!("{}@example.test", given.to_lowercase()),
            },
        ],
    }
}

/// Waits for the first hint equal to `want`, skipping others. The generous limit only turns a hang
/// into a failure; it says nothing about speed.
pub async fn next_hint(
    hints: &mut futures::stream::BoxStream<'static, exchange_sync_core::ChangeHint>,
    want: exchange_sync_core::ChangeHint,
) {
    use futures::StreamExt;
    let wait = async {
        while let Some(h) = hints.next().await {
            if h == want {
                return;
            }
        }
        panic!("the hint stream ended before {want:?}");
    };
    tokio::time::timeout(Duration::from_secs(120), wait).await.expect("a hint arrives");
}

pub mod hostile;
