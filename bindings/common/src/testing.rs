//! The EWS emulator in process, for users' own tests (feature `testing`): the `ews-emulator`
//! crate's in-memory Exchange serving EWS over loopback HTTP on the bindings' runtime, with the
//! demo tenant (`contoso.test`: alice, bob, carol, dave, and `sync-admin` with impersonation
//! rights; public folders `Company Contacts` and `Company Calendar`). EWS documents are traced
//! to `EWS_TRACE_DIR` when that variable is set and the caller names no directory.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use ews_emulator::{Emulator, EmulatorConfig, Fault, RunningEmulator};
use exchange_sync::ItemFolder;
use exchange_sync::config::{Auth, Config, Connection, Secret};

use crate::error::{BindingError, Result};
use crate::folders::Folders;
use crate::runtime::{self, RuntimeUser};
use crate::settings::{AuthScheme, ConnectionSettings, SecretSource};

/// The id of the admin connection the emulator's own folders are opened through.
const ADMIN_CONNECTION: &str = "emulator-admin";

/// A running emulator.
pub struct TestEmulator {
    running: Mutex<Option<RunningEmulator>>,
    /// The EWS endpoint, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    pub url: String,
    /// The SOAP Autodiscover endpoint.
    pub autodiscover_url: String,
    /// The tenant's domain.
    pub domain: String,
    /// The password of every account.
    pub password: String,
    /// The user mailboxes' addresses.
    pub users: Vec<String>,
    /// The admin connection, opened on first use of the emulator's own folders.
    folders: Mutex<Option<Folders>>,
    _runtime: RuntimeUser,
}

impl TestEmulator {
    /// Starts an emulator with `config` (its trace directory, when none, from `EWS_TRACE_DIR`).
    pub fn start(mut config: EmulatorConfig) -> Result<Self> {
        if config.trace_dir.is_none() {
            config.trace_dir = std::env::var_os("EWS_TRACE_DIR").map(PathBuf::from);
        }
        let domain = config.domain.clone();
        let password = config.password.clone();
        let users = config.users.iter().map(|u| format!("{u}@{domain}")).collect();
        let runtime = RuntimeUser::new();
        let running = runtime::block_on(async move {
            Emulator::start(config).await.map_err(|e| BindingError::Emulator(e.to_string()))
        })?;
        Ok(TestEmulator {
            url: running.url().to_owned(),
            autodiscover_url: running.autodiscover_url(),
            running: Mutex::new(Some(running)),
            domain,
            password,
            users,
            folders: Mutex::new(None),
            _runtime: runtime,
        })
    }

    /// The account with impersonation rights over every mailbox (`sync-admin@DOMAIN`).
    pub fn admin(&self) -> String {
        format!("sync-admin@{}", self.domain)
    }

    /// The connection record of [`TestEmulator::connection`], as code builds configurations.
    pub fn connection_settings(&self, id: String) -> ConnectionSettings {
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

    /// A connection to this emulator as the admin account (basic authentication, impersonation).
    pub fn connection(&self, id: String) -> Connection {
        Connection::new(
            id,
            self.url.clone(),
            Auth::Basic { username: self.admin(), password: Secret::Inline(self.password.clone()) },
        )
    }

    /// Queues a fault (`drop_after_write`, `internal_server_error`, `service_unavailable`,
    /// `server_busy`) for the next request it applies to.
    pub fn inject(&self, fault: &str) -> Result<()> {
        let fault = match fault {
            "drop_after_write" => Fault::DropAfterWrite,
            "internal_server_error" => Fault::InternalServerError,
            "service_unavailable" => Fault::ServiceUnavailable,
            "server_busy" => Fault::ServerBusy,
            other => return Err(BindingError::invalid("fault", format!("unknown fault {other:?}"))),
        };
        match self.running.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(r) => {
                r.inject(fault);
                Ok(())
            }
            None => Err(BindingError::usage("the emulator was stopped")),
        }
    }

    /// Whether it is still serving.
    pub fn is_running(&self) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// Stops serving and waits for the server to close its connections.
    pub fn stop(&self) -> Result<()> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(r) = running {
            runtime::block_on(async move {
                r.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn folders(&self) -> Result<Folders> {
        let mut slot = self.folders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let config = Config { connections: vec![self.connection(ADMIN_CONNECTION.into())], ..Config::default() };
        let folders = runtime::block_on(async move { Folders::connect(&config).await })?;
        *slot = Some(folders.clone());
        Ok(folders)
    }

    /// Opens a public folder as the admin, to edit items as a user would (without a service).
    pub fn public_folder(&self, path: String) -> Result<ItemFolder> {
        runtime::block_on(self.folders()?.public_folder(path, None)?)
    }

    /// Opens a folder of a user's mailbox as the admin (impersonating the user).
    pub fn mailbox_folder(&self, mailbox: String, folder: &str, create: bool) -> Result<ItemFolder> {
        runtime::block_on(self.folders()?.mailbox_folder(mailbox, folder, create, None)?)
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        // Released from a finalizer or a runtime thread: no blocking shutdown; the server's task
        // ends with the runtime.
        drop(self.running.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}
