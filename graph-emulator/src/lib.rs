//! An in-memory Microsoft Graph v1.0 server for what exchange-sync uses: the OAuth2 token
//! endpoint (client credentials), users and shared mailboxes, their contact folders and contacts,
//! delta queries with `@odata.nextLink` / `@odata.deltaLink`, `$batch`, `$select`, the `$filter`
//! and `$expand` forms of single-value extended properties, entity tags with `If-Match` (`412` on
//! a mismatch), Graph's throttling (`429` with `Retry-After`, 4 concurrent requests per
//! mailbox), and change-notification subscriptions with the validation handshake, renewal,
//! expiry, delivery of notifications to the subscriber's URL and lifecycle events.
//!
//! ```no_run
//! # async fn demo() -> Result<(), graph_emulator::EmulatorError> {
//! let emu = graph_emulator::GraphEmulator::start(graph_emulator::GraphEmulatorConfig::default()).await?;
//! println!("Graph: {}/v1.0, authority: {}", emu.url(), emu.authority());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Calendars and events ([`calendar`], [`event`]): named calendars, single events and series
//! with their occurrences, exceptions and cancelled occurrences, `instances` in a window, and
//! `calendarView/delta` on the default calendar.
//!
//! The token endpoint takes a client secret or a client assertion signed with the key of the
//! certificate registered for the application ([`GraphEmulatorConfig::client_certificate`]).
//!
//! Not (yet) emulated: rich notifications (with resource data), and every other part of Graph.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod calendar;
pub mod client_assertion;
pub mod config;
pub mod contact;
pub mod directory;
pub mod error;
pub mod event;
pub mod odata;
mod server;
pub mod store;
pub mod subscriptions;
pub mod trace;

use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use config::GraphEmulatorConfig;
pub use error::{EmulatorError, GraphError};
pub use store::{Contact, Store};
pub use subscriptions::Subscription;

/// Starts emulators.
#[derive(Debug)]
pub struct GraphEmulator;

impl GraphEmulator {
    /// Builds the tenant, binds the listener and serves in the background.
    pub async fn start(config: GraphEmulatorConfig) -> Result<RunningGraphEmulator, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let trace = match &config.trace_dir {
            Some(dir) => Some(
                trace::TraceWriter::new(dir, config.trace_cap)
                    .map_err(|source| EmulatorError::TraceDir { dir: dir.clone(), source })?,
            ),
            None => None,
        };
        let store = demo_store(&config);
        let base = format!("http://{addr}");
        let shared = Arc::new(server::Shared::new(config, store, base.clone(), trace));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let delivery = tokio::spawn(subscriptions::deliver(Arc::clone(&shared), stopped.clone()));
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), stopped));
        Ok(RunningGraphEmulator { shared, base, stop, task: Some(task), delivery: Some(delivery) })
    }
}

fn demo_store(config: &GraphEmulatorConfig) -> Store {
    let mut store = Store::default();
    for u in &config.users {
        let mut name = u.clone();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        store.add_mailbox(&config.address(u), &name, false);
    }
    for (i, m) in config.shared_mailboxes.iter().enumerate() {
        let upn = config.address(m);
        store.add_mailbox(&upn, &format!("Shared {m}"), true);
        if i == 0 && config.seed_contacts > 0 {
            let folder = store.create_folder(&upn, &serde_json::json!({"displayName": "Company Contacts"}));
            let Some(id) = folder.ok().and_then(|f| f["id"].as_str().map(str::to_owned)) else { continue };
            for n in 0..config.seed_contacts {
                let _ = store.create_contact(
                    &upn,
                    Some(&id),
                    &serde_json::json!({
                        "givenName": format!("Given{n}"), "surname": format!("Person{n}"),
                        "companyName": "Contoso", "jobTitle": "Staff",
                        "emailAddresses": [{"address": format!("person{n}@contoso.test")}],
                        "businessPhones": [format!("+1 555 01{:02}", n % 100)],
                    }),
                );
            }
        }
    }
    store
}

/// A running emulator; stops when dropped or by [`RunningGraphEmulator::shutdown`].
#[derive(Debug)]
pub struct RunningGraphEmulator {
    shared: Arc<server::Shared>,
    base: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    delivery: Option<tokio::task::JoinHandle<()>>,
}

impl RunningGraphEmulator {
    /// The server's base URL (`http://127.0.0.1:PORT`); Graph lives under `/v1.0`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The authority to request tokens from: `{url}/{tenant id}`.
    pub fn authority(&self) -> String {
        format!("{}/{}", self.base, self.shared.config.tenant_id)
    }

    /// The configuration it runs with (client id and secret included).
    pub fn config(&self) -> &GraphEmulatorConfig {
        &self.shared.config
    }

    /// The store, to inspect or edit as a user would.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store()
    }

    /// The next `count` requests to `mailbox` answer `429` with `Retry-After: retry_after_secs`.
    pub fn inject_throttling(&self, mailbox: &str, count: u32, retry_after_secs: u64) {
        self.shared.inject_throttling(mailbox, count, retry_after_secs);
    }

    /// Every access token issued so far stops working (`401`), as after expiry.
    pub fn revoke_tokens(&self) {
        self.shared.revoke_tokens();
    }

    /// The next `count` token requests answer `503`, as when the authority has trouble.
    pub fn fail_token_requests(&self, count: u64) {
        self.shared.token_failures.store(count, Ordering::Relaxed);
    }

    /// Every delta token issued so far is refused with `410 Gone` from now on.
    pub fn expire_delta_tokens(&self) {
        self.shared.store().expire_delta_tokens();
    }

    /// Token requests answered (any outcome).
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }

    /// Graph requests answered (a `$batch` counts once).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests answered with `429`.
    pub fn throttled(&self) -> u64 {
        self.shared.throttled.load(Ordering::Relaxed)
    }

    /// The most requests one mailbox had in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::Relaxed)
    }

    /// The live change-notification subscriptions.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.subscriptions.list()
    }

    /// Subscriptions refused because the notification endpoint failed the validation handshake.
    pub fn subscription_validation_failures(&self) -> u64 {
        self.shared.subscriptions.validation_failures.load(Ordering::Relaxed)
    }

    /// Change-notification posts the subscribers accepted.
    pub fn notifications_delivered(&self) -> u64 {
        self.shared.subscriptions.delivered.load(Ordering::Relaxed)
    }

    /// While `drop` is set, change notifications are lost instead of delivered (the changes stay
    /// in the folders and their delta); announce the loss with the `missed` lifecycle event.
    pub fn drop_notifications(&self, drop: bool) {
        self.shared.subscriptions.dropping.store(drop, Ordering::Relaxed);
    }

    /// Sends the lifecycle event `event` (`reauthorizationRequired`, `subscriptionRemoved`,
    /// `missed`) of subscription `id` to its lifecycle URL, as Graph does when it must revoke,
    /// has removed, or could not deliver. `subscriptionRemoved` removes the subscription first.
    /// Answers whether the subscriber accepted it.
    pub async fn send_lifecycle_event(&self, id: &str, event: &str) -> Result<bool, GraphError> {
        let (url, body) = self.shared.subscriptions.lifecycle(id, event, &self.shared.config.tenant_id)?;
        Ok(self.shared.subscriptions.post("lifecycle", &url, &body, self.shared.trace()).await)
    }

    /// Stops serving and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(task) = self.delivery.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningGraphEmulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
