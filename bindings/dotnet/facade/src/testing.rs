//! `TestEmulator`: the EWS emulator in process, for tests, demos and examples.
//!
//! It is the `ews-emulator` crate's in-memory Exchange serving EWS over loopback HTTP on the
//! facade's runtime, with the demo tenant `contoso.test`: alice, bob, carol, dave, and
//! `sync-admin` with impersonation rights (password `exchange-sync`); public folders
//! `Company Contacts` (with `contacts` contacts) and `Company Calendar`. EWS documents are traced
//! to the directory named by the `EWS_TRACE_DIR` environment variable, when it is set.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ews_emulator::{Emulator, EmulatorConfig, Fault, RunningEmulator};
use exchange_sync::EwsFolders;
use exchange_sync::config::{Auth, Config, Connection, Secret};

use crate::config::{AuthScheme, ConnectionSettings, SecretSource, parse_target};
use crate::errors::ExchangeSyncError;
use crate::items::Folder;
use crate::runtime::{RuntimeUser, block_on};

/// The id of the admin connection the emulator's own folders are opened through.
const ADMIN_CONNECTION: &str = "emulator-admin";

/// A fault the emulator injects into the next request it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EmulatorFault {
    /// The write is applied, but the connection drops before the answer.
    DropAfterWrite,
    /// HTTP 500.
    InternalServerError,
    /// HTTP 503.
    ServiceUnavailable,
    /// ErrorServerBusy with a back-off.
    ServerBusy,
}

/// An EWS emulator running in this process.
#[derive(uniffi::Object)]
pub struct TestEmulator {
    running: Mutex<Option<RunningEmulator>>,
    url: String,
    domain: String,
    password: String,
    users: Vec<String>,
    /// The admin connection, opened on first use of `PublicFolder` / `MailboxFolder`.
    folders: Mutex<Option<Arc<EwsFolders>>>,
    _runtime: RuntimeUser,
}

impl TestEmulator {
    fn folders(&self) -> Result<Arc<EwsFolders>, ExchangeSyncError> {
        let mut slot = self.folders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = slot.as_ref() {
            return Ok(Arc::clone(f));
        }
        let config = Config {
            connections: vec![Connection::new(
                ADMIN_CONNECTION,
                self.url.clone(),
                Auth::Basic { username: self.admin(), password: Secret::Inline(self.password.clone()) },
            )],
            ..Config::default()
        };
        let folders = Arc::new(block_on(async move { Ok(EwsFolders::connect(&config).await?) })?);
        *slot = Some(Arc::clone(&folders));
        Ok(folders)
    }
}

#[uniffi::export]
impl TestEmulator {
    /// Starts an emulator with `contacts` contacts in `Company Contacts`.
    #[uniffi::constructor(default(contacts = 25))]
    pub fn new(contacts: u32) -> Result<Arc<Self>, ExchangeSyncError> {
        let config = EmulatorConfig {
            contacts: contacts as usize,
            heartbeat_interval: Duration::from_secs(1),
            trace_dir: std::env::var_os("EWS_TRACE_DIR").map(PathBuf::from),
            ..EmulatorConfig::default()
        };
        let domain = config.domain.clone();
        let password = config.password.clone();
        let users = config.users.iter().map(|u| format!("{u}@{domain}")).collect();
        let runtime = RuntimeUser::new();
        let running = block_on(async move {
            Emulator::start(config)
                .await
                .map_err(|e| ExchangeSyncError::usage(format!("the EWS emulator did not start: {e}")))
        })?;
        Ok(Arc::new(TestEmulator {
            url: running.url().to_owned(),
            running: Mutex::new(Some(running)),
            domain,
            password,
            users,
            folders: Mutex::new(None),
            _runtime: runtime,
        }))
    }

    /// The EWS endpoint, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The account with impersonation rights over every mailbox (`sync-admin@contoso.test`).
    pub fn admin(&self) -> String {
        format!("sync-admin@{}", self.domain)
    }

    /// The password of every account.
    pub fn password(&self) -> String {
        self.password.clone()
    }

    /// The user mailboxes' addresses.
    pub fn users(&self) -> Vec<String> {
        self.users.clone()
    }

    /// A connection to this emulator as the admin (basic authentication, impersonation).
    #[uniffi::method(default(id = "exchange"))]
    pub fn connection(&self, id: String) -> ConnectionSettings {
        ConnectionSettings {
            id,
            url: self.url.clone(),
            auth: AuthScheme::Basic,
            username: Some(self.admin()),
            password: Some(SecretSource::Inline { value: self.password.clone() }),
            impersonation: true,
            ca_file: None,
            insecure: false,
        }
    }

    /// Opens a public folder as the admin, to edit items as a user would (without a service).
    pub fn public_folder(&self, path: String) -> Result<Arc<Folder>, ExchangeSyncError> {
        let folders = self.folders()?;
        block_on(async move { Ok(Folder::new(folders.open_public_folder(ADMIN_CONNECTION, &path).await?)) })
    }

    /// Opens a folder of a user's mailbox as the admin (impersonating the user), to edit items
    /// as the user would: `contacts`, or a named folder below one (`contacts/Company Contacts`),
    /// created when missing if `create` is set.
    #[uniffi::method(default(folder = "contacts", create = false))]
    pub fn mailbox_folder(
        &self,
        mailbox: String,
        folder: String,
        create: bool,
    ) -> Result<Arc<Folder>, ExchangeSyncError> {
        let target = parse_target("folder", &folder)?;
        let folders = self.folders()?;
        block_on(async move {
            Ok(Folder::new(folders.open_mailbox_folder(ADMIN_CONNECTION, &mailbox, &target, create).await?))
        })
    }

    /// Queues a fault for the next request it applies to.
    pub fn inject(&self, fault: EmulatorFault) -> Result<(), ExchangeSyncError> {
        let fault = match fault {
            EmulatorFault::DropAfterWrite => Fault::DropAfterWrite,
            EmulatorFault::InternalServerError => Fault::InternalServerError,
            EmulatorFault::ServiceUnavailable => Fault::ServiceUnavailable,
            EmulatorFault::ServerBusy => Fault::ServerBusy,
        };
        match self.running.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(r) => {
                r.inject(fault);
                Ok(())
            }
            None => Err(ExchangeSyncError::usage("the emulator was stopped")),
        }
    }

    /// Whether it is still serving.
    pub fn is_running(&self) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// Stops serving and waits for the server to close its connections (disposing does the
    /// same).
    pub fn stop(&self) -> Result<(), ExchangeSyncError> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(r) = running {
            block_on(async move {
                r.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(r) = running {
            // Dropped from a finalizer or a runtime thread: no blocking shutdown; the server's
            // task ends with the runtime.
            drop(r);
        }
    }
}
