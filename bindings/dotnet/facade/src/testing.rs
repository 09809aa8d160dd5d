//! `TestEmulator`: the EWS emulator in process, for tests, demos and examples (feature
//! `testing`; `exchange_sync_bindings::testing` runs it). The demo tenant `contoso.test`: alice,
//! bob, carol, dave, and `sync-admin` with impersonation rights (password `exchange-sync`);
//! public folders `Company Contacts` (with `contacts` contacts) and `Company Calendar`.

use std::sync::Arc;
use std::time::Duration;

use ews_emulator::EmulatorConfig;
use exchange_sync_bindings::settings::ConnectionSettings;
use exchange_sync_bindings::testing;

use crate::errors::Result;
use crate::items::Folder;

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
pub struct TestEmulator(testing::TestEmulator);

#[uniffi::export]
impl TestEmulator {
    /// Starts an emulator with `contacts` contacts in `Company Contacts`.
    #[uniffi::constructor(default(contacts = 25))]
    pub fn new(contacts: u32) -> Result<Arc<Self>> {
        let config = EmulatorConfig {
            contacts: contacts as usize,
            heartbeat_interval: Duration::from_secs(1),
            ..EmulatorConfig::default()
        };
        Ok(Arc::new(TestEmulator(testing::TestEmulator::start(config)?)))
    }

    /// The EWS endpoint, `http://127.0.0.1:PORT/EWS/Exchange.asmx`.
    pub fn url(&self) -> String {
        self.0.url.clone()
    }

    /// The account with impersonation rights over every mailbox (`sync-admin@contoso.test`).
    pub fn admin(&self) -> String {
        self.0.admin()
    }

    /// The password of every account.
    pub fn password(&self) -> String {
        self.0.password.clone()
    }

    /// The user mailboxes' addresses.
    pub fn users(&self) -> Vec<String> {
        self.0.users.clone()
    }

    /// A connection to this emulator as the admin (basic authentication, impersonation).
    #[uniffi::method(default(id = "exchange"))]
    pub fn connection(&self, id: String) -> ConnectionSettings {
        self.0.connection_settings(id)
    }

    /// Opens a public folder as the admin, to edit items as a user would (without a service).
    pub fn public_folder(&self, path: String) -> Result<Arc<Folder>> {
        Ok(Folder::new(self.0.public_folder(path)?))
    }

    /// Opens a folder of a user's mailbox as the admin (impersonating the user), to edit items
    /// as the user would: `contacts`, or a named folder below one (`contacts/Company Contacts`),
    /// created when missing if `create` is set.
    #[uniffi::method(default(folder = "contacts", create = false))]
    pub fn mailbox_folder(&self, mailbox: String, folder: String, create: bool) -> Result<Arc<Folder>> {
        Ok(Folder::new(self.0.mailbox_folder(mailbox, &folder, create)?))
    }

    /// Queues a fault for the next request it applies to.
    pub fn inject(&self, fault: EmulatorFault) -> Result<()> {
        let name = match fault {
            EmulatorFault::DropAfterWrite => "drop_after_write",
            EmulatorFault::InternalServerError => "internal_server_error",
            EmulatorFault::ServiceUnavailable => "service_unavailable",
            EmulatorFault::ServerBusy => "server_busy",
        };
        Ok(self.0.inject(name)?)
    }

    /// Whether it is still serving.
    pub fn is_running(&self) -> bool {
        self.0.is_running()
    }

    /// Stops serving and waits for the server to close its connections (disposing does the
    /// same).
    pub fn stop(&self) -> Result<()> {
        Ok(self.0.stop()?)
    }
}
