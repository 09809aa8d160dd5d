//! Real time over Graph: change-notification subscriptions on contact folders, and the receiving
//! end of their notifications.
//!
//! Graph pushes notifications only to a public HTTPS endpoint, which the service offers when it is
//! given one ([`NotificationSettings::notification_url`], usually a reverse proxy in front of the
//! service's own HTTP listener). Then [`ChangeNotifications`]:
//!
//! - **subscribes** a folder when the engine watches it ([`ChangeNotifications::subscribe`]):
//!   `POST /subscriptions` on `users/{mailbox}/contactFolders/{id}/contacts` for
//!   `created,updated,deleted`, with a random `clientState` of its own and the lifecycle URL.
//!   Graph then runs its validation handshake against the URL, which
//!   [`ChangeNotifications::receive`] answers (the token echoed as `text/plain`) before
//!   anything else. A subscription that cannot be made is an error: the engine polls the folder's
//!   delta link instead.
//! - **receives** notifications ([`ChangeNotifications::receive`]): one whose `clientState` is not
//!   the subscription's is refused and logged (never with the secret); a good one becomes a
//!   [`ChangeHint::Changed`] for the folder's watcher, and the engine reads the delta link (it
//!   never trusts a notification's content).
//! - **keeps each subscription alive**: renews it (`PATCH /subscriptions/{id}`) a margin before it
//!   expires and when Graph asks (`reauthorizationRequired`); makes a new one when Graph removed it
//!   (`subscriptionRemoved`) or renewal finds it gone; after `missed` (and after a new
//!   subscription, whose gap may have hidden changes) the folder's watcher gets a hint so that the
//!   engine reads the delta link, which holds every change since the last round whatever was
//!   missed.
//! - **deletes** the subscription when the watch ends, and every one left at
//!   [`ChangeNotifications::close`] (the service's shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use exchange_sync_core::ChangeHint;
use futures::stream::BoxStream;
use rand::RngCore as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{GraphClient, GraphRequest, segment};
use crate::error::{ErrorContext, GraphError, Result};

/// After Graph could not validate the notification endpoint, how long folders are polled before
/// subscribing is tried again (the engine calls [`ChangeNotifications::subscribe`] at every pass of
/// an unwatched folder; this keeps a broken endpoint from costing a refused subscription per poll).
pub const SUBSCRIBE_RETRY: Duration = Duration::from_secs(600);

/// The change types subscribed to: every change of a contact in the folder.
pub const CHANGE_TYPES: &str = "created,updated,deleted";

/// Where notifications reach this process, and how long subscriptions last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationSettings {
    /// The public HTTPS URL Graph posts change notifications to (it must reach the service's
    /// listener at the same path).
    pub notification_url: String,
    /// The URL of lifecycle notifications (`reauthorizationRequired`, `subscriptionRemoved`,
    /// `missed`); the notification URL when not set (the receiver tells them apart by their body).
    pub lifecycle_url: Option<String>,
    /// The lifetime asked for at creation and at each renewal (Graph allows under 7 days on
    /// contacts).
    pub lifetime: Duration,
    /// How long before expiry a subscription is renewed.
    pub renew_before: Duration,
}

impl NotificationSettings {
    /// Settings for this public URL: subscriptions of two days, renewed six hours before expiry.
    pub fn new(notification_url: impl Into<String>) -> Self {
        NotificationSettings {
            notification_url: notification_url.into(),
            lifecycle_url: None,
            lifetime: Duration::from_secs(2 * 86_400),
            renew_before: Duration::from_secs(6 * 3_600),
        }
    }

    /// The path of the notification URL (`/graph/notify`), where the local listener receives.
    pub fn path(&self) -> String {
        path_of(&self.notification_url)
    }

    fn lifecycle(&self) -> &str {
        self.lifecycle_url.as_deref().unwrap_or(&self.notification_url)
    }
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/").to_owned()
}

/// What the HTTP listener answers a post to the notification URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Reply { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

/// A lifecycle event Graph sent about a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

/// A subscription the receiver knows: whom to wake and what `clientState` to expect.
struct Route {
    client_state: String,
    folder: String,
    hints: mpsc::Sender<ChangeHint>,
    lifecycle: mpsc::UnboundedSender<Lifecycle>,
}

/// Counters of what the receiver saw, for tests and metrics.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    renewed: AtomicU64,
    recreated: AtomicU64,
}

struct Inner {
    settings: NotificationSettings,
    /// When Graph last refused a subscription because it could not validate the endpoint: the
    /// endpoint is the same for every folder, so none is tried again for [`SUBSCRIBE_RETRY`].
    unreachable_since: Mutex<Option<tokio::time::Instant>>,
    routes: Mutex<HashMap<String, Route>>,
    keepers: Mutex<Vec<JoinHandle<()>>>,
    closing: watch::Sender<bool>,
    counters: Counters,
}

/// The subscriptions of one process and the receiver of their notifications; cheap to clone
/// (every clone is the same). Give it to the connectors ([`crate::GraphContactsConnector::with_notifications`])
/// and route posts to [`NotificationSettings::path`] to [`ChangeNotifications::receive`].
#[derive(Clone)]
pub struct ChangeNotifications {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChangeNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeNotifications").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A new random `clientState`: 32 bytes, hex.
fn new_client_state() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `validationToken` of a query string, decoded.
fn validation_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "validationToken").then(|| percent_decode(v))
    })
}

/// A subscription as Graph answered it.
struct Made {
    id: String,
    expires: DateTime<Utc>,
}

/// One folder's subscription: how to make, renew and delete it.
struct Subscriber {
    client: GraphClient,
    mailbox: String,
    resource: String,
    folder: String,
}

impl Subscriber {
    fn expiry(settings: &NotificationSettings) -> String {
        let lifetime = chrono::Duration::from_std(settings.lifetime).unwrap_or(chrono::Duration::days(2));
        (Utc::now() + lifetime).to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn made(&self, body: Option<Value>, operation: &'static str) -> Result<Made> {
        let body = body.unwrap_or(Value::Null);
        let id = body.get("id").and_then(Value::as_str);
        let expires = body
            .get("expirationDateTime")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        match (id, expires) {
            (Some(id), Some(expires)) => Ok(Made { id: id.to_owned(), expires }),
            _ => Err(GraphError::protocol(
                "a subscription answer without id or expirationDateTime",
                ErrorContext::new(operation, &self.mailbox),
            )),
        }
    }

    async fn create(&self, settings: &NotificationSettings, client_state: &str) -> Result<Made> {
        let request = GraphRequest::new(Method::POST, "/subscriptions").json(json!({
            "changeType": CHANGE_TYPES,
            "notificationUrl": settings.notification_url,
            "lifecycleNotificationUrl": settings.lifecycle(),
            "resource": self.resource,
            "expirationDateTime": Self::expiry(settings),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }));
        let r = self.client.send(&self.mailbox, "subscribe", &request).await?;
        self.made(r.body, "subscribe")
    }

    async fn renew(&self, settings: &NotificationSettings, id: &str) -> Result<Made> {
        let request = GraphRequest::new(Method::PATCH, format!("/subscriptions/{}", segment(id)))
            .json(json!({"expirationDateTime": Self::expiry(settings)}));
        let r = self.client.send(&self.mailbox, "renew subscription", &request).await?;
        self.made(r.body, "renew subscription")
    }

    async fn delete(&self, id: &str) {
        let request = GraphRequest::new(Method::DELETE, format!("/subscriptions/{}", segment(id)));
        match self.client.send(&self.mailbox, "delete subscription", &request).await {
            Ok(_) => tracing::debug!(folder = %self.folder, subscription = id, "subscription deleted"),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => tracing::warn!(folder = %self.folder, subscription = id, "cannot delete the subscription: {e}"),
        }
    }
}

impl ChangeNotifications {
    /// A receiver for these settings, with no subscription yet.
    pub fn new(settings: NotificationSettings) -> Self {
        let (closing, _) = watch::channel(false);
        ChangeNotifications {
            inner: Arc::new(Inner {
                settings,
                unreachable_since: Mutex::new(None),
                routes: Mutex::new(HashMap::new()),
                keepers: Mutex::new(Vec::new()),
                closing,
                counters: Counters::default(),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &NotificationSettings {
        &self.inner.settings
    }

    /// Notifications refused so far (a `clientState` that is not the subscription's).
    pub fn refused(&self) -> u64 {
        self.inner.counters.refused.load(Ordering::Relaxed)
    }

    /// Change notifications accepted so far.
    pub fn accepted(&self) -> u64 {
        self.inner.counters.accepted.load(Ordering::Relaxed)
    }

    /// Renewals that succeeded so far.
    pub fn renewed(&self) -> u64 {
        self.inner.counters.renewed.load(Ordering::Relaxed)
    }

    /// Subscriptions made anew after Graph removed one.
    pub fn recreated(&self) -> u64 {
        self.inner.counters.recreated.load(Ordering::Relaxed)
    }

    /// The ids of the live subscriptions.
    pub fn subscription_ids(&self) -> Vec<String> {
        lock(&self.inner.routes).keys().cloned().collect()
    }

    /// Subscribes to the contacts of a folder and answers the stream of its change hints. The
    /// subscription is made before this returns (an error means the folder must be polled); it is
    /// kept alive in the background and deleted when the stream is dropped.
    pub async fn subscribe(
        &self,
        client: GraphClient,
        mailbox: &str,
        folder_id: &str,
        folder: &str,
    ) -> Result<BoxStream<'static, ChangeHint>> {
        if *self.inner.closing.borrow() {
            return Err(GraphError::Configuration("change notifications are closed (the service stops)".into()));
        }
        let subscriber = Subscriber {
            client,
            mailbox: mailbox.to_owned(),
            resource: format!("users/{}/contactFolders/{}/contacts", segment(mailbox), segment(folder_id)),
            folder: folder.to_owned(),
        };
        let since = *lock(&self.inner.unreachable_since);
        if let Some(at) = since.filter(|at| at.elapsed() < SUBSCRIBE_RETRY) {
            let retry_in = SUBSCRIBE_RETRY.saturating_sub(at.elapsed());
            return Err(GraphError::Configuration(format!(
                "Graph could not validate the notification endpoint {} a short while ago; polling, and subscribing \
                 again in {} s",
                self.inner.settings.notification_url,
                retry_in.as_secs()
            )));
        }
        let client_state = new_client_state();
        let made = match subscriber.create(&self.inner.settings, &client_state).await {
            Ok(made) => {
                *lock(&self.inner.unreachable_since) = None;
                made
            }
            Err(e) => {
                if matches!(&e, GraphError::Http { status: 400, code, .. } if code == "ValidationError") {
                    *lock(&self.inner.unreachable_since) = Some(tokio::time::Instant::now());
                }
                return Err(e);
            }
        };
        tracing::info!(folder, subscription = %made.id, expires = %made.expires.to_rfc3339(), "subscribed to change notifications");
        let (hints, stream) = mpsc::channel(16);
        let (lifecycle, events) = mpsc::unbounded_channel();
        lock(&self.inner.routes).insert(
            made.id.clone(),
            Route {
                client_state: client_state.clone(),
                folder: folder.to_owned(),
                hints: hints.clone(),
                lifecycle: lifecycle.clone(),
            },
        );
        let keeper = Keeper {
            inner: Arc::downgrade(&self.inner),
            subscriber,
            client_state,
            current: made,
            hints,
            lifecycle,
            events,
            closing: self.inner.closing.subscribe(),
        };
        let handle = tokio::spawn(keeper.run());
        let mut keepers = lock(&self.inner.keepers);
        keepers.retain(|h| !h.is_finished());
        keepers.push(handle);
        Ok(Box::pin(futures::stream::unfold(stream, |mut rx| async move { rx.recv().await.map(|h| (h, rx)) })))
    }

    /// Answers a post to the notification (or lifecycle) URL: the validation handshake (the
    /// `validationToken` of the query echoed as `text/plain`), or a collection of notifications,
    /// each checked against its subscription's `clientState`. `202` when every notification was
    /// taken, `403` when none was (a wrong `clientState`), `400` for a body that is not one.
    pub fn receive(&self, query: &str, body: &[u8]) -> Reply {
        if let Some(token) = validation_token(query) {
            return Reply::text(200, token);
        }
        let Ok(doc) = serde_json::from_slice::<Value>(body) else {
            return Reply::text(400, "not a notification collection\n");
        };
        let Some(notes) = doc.get("value").and_then(Value::as_array) else {
            return Reply::text(400, "not a notification collection\n");
        };
        let (mut taken, mut refused) = (0usize, 0usize);
        let routes = lock(&self.inner.routes);
        for n in notes {
            let id = n.get("subscriptionId").and_then(Value::as_str).unwrap_or_default();
            let Some(route) = routes.get(id) else {
                // A subscription this process no longer holds (deleted, or made by an earlier
                // run): nothing to wake.
                tracing::debug!(subscription = id, "a notification for an unknown subscription");
                taken += 1;
                continue;
            };
            let given = n.get("clientState").and_then(Value::as_str).unwrap_or_default();
            if !same_secret(given, &route.client_state) {
                refused += 1;
                self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    subscription = id,
                    folder = %route.folder,
                    "refused a change notification whose clientState is not the subscription's (not from Graph?)"
                );
                continue;
            }
            taken += 1;
            match n.get("lifecycleEvent").and_then(Value::as_str) {
                Some(event) => {
                    let event = match event {
                        "reauthorizationRequired" => Lifecycle::ReauthorizationRequired,
                        "subscriptionRemoved" => Lifecycle::SubscriptionRemoved,
                        "missed" => Lifecycle::Missed,
                        other => {
                            tracing::info!(subscription = id, event = other, "an unknown lifecycle event: ignored");
                            continue;
                        }
                    };
                    tracing::info!(subscription = id, folder = %route.folder, ?event, "lifecycle notification");
                    let _ = route.lifecycle.send(event);
                }
                None => {
                    self.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(subscription = id, folder = %route.folder, "change notification");
                    // A full channel already holds a hint: the engine will look anyway.
                    let _ = route.hints.try_send(ChangeHint::Changed);
                }
            }
        }
        if refused > 0 && taken == 0 { Reply::text(403, "clientState mismatch\n") } else { Reply::text(202, "") }
    }

    /// Deletes every subscription (the service stops): the keepers delete theirs and end; waits
    /// at most `grace` for them.
    pub async fn close(&self, grace: Duration) {
        self.inner.closing.send_replace(true);
        let keepers: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.keepers));
        let all = futures::future::join_all(keepers);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "some change-notification subscriptions could not be deleted in time (they expire by themselves)"
            );
        }
    }
}

/// Keeps one folder's subscription alive until its watch ends.
struct Keeper {
    inner: Weak<Inner>,
    subscriber: Subscriber,
    client_state: String,
    current: Made,
    hints: mpsc::Sender<ChangeHint>,
    lifecycle: mpsc::UnboundedSender<Lifecycle>,
    events: mpsc::UnboundedReceiver<Lifecycle>,
    closing: watch::Receiver<bool>,
}

/// How long after a failed renewal the keeper tries again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

impl Keeper {
    fn settings(&self) -> Option<NotificationSettings> {
        self.inner.upgrade().map(|i| i.settings.clone())
    }

    /// The margin before expiry at which to renew: at most half the lifetime, so that a renewal
    /// never comes due again the moment it is done.
    fn margin(settings: &NotificationSettings) -> Duration {
        settings.renew_before.min(settings.lifetime / 2)
    }

    fn renew_at(&self, settings: &NotificationSettings) -> tokio::time::Instant {
        let left = (self.current.expires - Utc::now()).to_std().unwrap_or_default();
        tokio::time::Instant::now() + left.saturating_sub(Self::margin(settings))
    }

    fn count(&self, f: impl FnOnce(&Counters)) {
        if let Some(i) = self.inner.upgrade() {
            f(&i.counters);
        }
    }

    async fn run(mut self) {
        loop {
            let Some(settings) = self.settings() else { return };
            let renew_at = self.renew_at(&settings);
            let event = tokio::select! {
                () = self.hints.closed() => break,
                _ = self.closing.wait_for(|c| *c) => break,
                () = tokio::time::sleep_until(renew_at) => None,
                e = self.events.recv() => e,
            };
            match event {
                None | Some(Lifecycle::ReauthorizationRequired) => self.renew(&settings).await,
                Some(Lifecycle::SubscriptionRemoved) => self.recreate(&settings).await,
                Some(Lifecycle::Missed) => {
                    // The delta link holds every change since the last round: one look covers
                    // whatever was not delivered.
                    let _ = self.hints.try_send(ChangeHint::Changed);
                }
            }
        }
        let id = self.current.id.clone();
        if let Some(i) = self.inner.upgrade() {
            lock(&i.routes).remove(&id);
        }
        self.subscriber.delete(&id).await;
    }

    async fn renew(&mut self, settings: &NotificationSettings) {
        match self.subscriber.renew(settings, &self.current.id).await {
            Ok(made) => {
                tracing::debug!(folder = %self.subscriber.folder, subscription = %made.id, expires = %made.expires.to_rfc3339(), "subscription renewed");
                self.current.expires = made.expires;
                self.count(|c| {
                    c.renewed.fetch_add(1, Ordering::Relaxed);
                });
            }
            Err(e) if e.status() == Some(404) => {
                tracing::info!(folder = %self.subscriber.folder, "the subscription is gone (expired or removed): subscribing anew");
                self.recreate(settings).await;
            }
            Err(e) => {
                tracing::warn!(folder = %self.subscriber.folder, "cannot renew the subscription: {e}; trying again later");
                self.retry_later(settings);
            }
        }
    }

    /// The expiry that makes the next attempt come [`RETRY_AFTER_FAILURE`] from now.
    fn retry_expiry(settings: &NotificationSettings) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(RETRY_AFTER_FAILURE + Self::margin(settings)).unwrap_or_default()
    }

    /// A renewal failed: the next attempt comes [`RETRY_AFTER_FAILURE`] from now, or at the usual
    /// time when that is sooner.
    fn retry_later(&mut self, settings: &NotificationSettings) {
        let retry = Self::retry_expiry(settings);
        if retry < self.current.expires {
            self.current.expires = retry;
        }
    }

    async fn recreate(&mut self, settings: &NotificationSettings) {
        let old = self.current.id.clone();
        match self.subscriber.create(settings, &self.client_state).await {
            Ok(made) => {
                tracing::info!(folder = %self.subscriber.folder, subscription = %made.id, "subscribed anew");
                if let Some(i) = self.inner.upgrade() {
                    let mut routes = lock(&i.routes);
                    routes.remove(&old);
                    routes.insert(
                        made.id.clone(),
                        Route {
                            client_state: self.client_state.clone(),
                            folder: self.subscriber.folder.clone(),
                            hints: self.hints.clone(),
                            lifecycle: self.lifecycle.clone(),
                        },
                    );
                }
                self.current = made;
                self.count(|c| {
                    c.recreated.fetch_add(1, Ordering::Relaxed);
                });
                // Changes between the old subscription's end and the new one's start were not
                // notified: the delta link has them.
                let _ = self.hints.try_send(ChangeHint::Changed);
            }
            Err(e) => {
                tracing::warn!(folder = %self.subscriber.folder, "cannot subscribe anew: {e}; trying again later");
                let _ = self.hints.try_send(ChangeHint::Changed);
                // The old subscription is gone: the next attempt (a renewal finding it gone, then
                // a new subscription) comes after the pause, not at once.
                self.current.expires = Self::retry_expiry(settings);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_token_is_echoed_as_plain_text() {
        let n = ChangeNotifications::new(NotificationSettings::new("https://sync.contoso.test/graph/notify"));
        let r = n.receive("validationToken=Validation%3A+Testing%20client%20%26more", b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(r.body, "Validation: Testing client &more");
    }

    #[test]
    fn a_wrong_client_state_is_refused_and_a_right_one_wakes_the_watcher() {
        let n = ChangeNotifications::new(NotificationSettings::new("https://sync.contoso.test/graph/notify"));
        let (hints, mut rx) = mpsc::channel(4);
        let (lifecycle, _events) = mpsc::unbounded_channel();
        lock(&n.inner.routes)
            .insert("sub-1".into(), Route { client_state: "right".into(), folder: "f".into(), hints, lifecycle });
        let body = |state: &str| json!({"value": [{"subscriptionId": "sub-1", "clientState": state, "changeType": "updated"}]});
        let r = n.receive("", body("wrong").to_string().as_bytes());
        assert_eq!(r.status, 403);
        assert!(rx.try_recv().is_err(), "a refused notification wakes nobody");
        assert_eq!(n.refused(), 1);
        let r = n.receive("", body("right").to_string().as_bytes());
        assert_eq!(r.status, 202);
        assert_eq!(rx.try_recv().ok(), Some(ChangeHint::Changed));
        assert_eq!(n.receive("", b"not json").status, 400);
    }

    #[test]
    fn renewal_comes_at_most_half_a_lifetime_before_expiry() {
        let mut settings = NotificationSettings::new("https://sync.contoso.test/graph/notify");
        assert_eq!(Keeper::margin(&settings), Duration::from_secs(6 * 3600));
        settings.lifetime = Duration::from_secs(4);
        settings.renew_before = Duration::from_secs(3600);
        assert_eq!(Keeper::margin(&settings), Duration::from_secs(2), "else every renewal would be due at once");
        let retry = Keeper::retry_expiry(&settings) - Utc::now();
        assert!(retry >= chrono::Duration::seconds(61), "a failed attempt waits: {retry}");
    }

    #[test]
    fn the_listener_path_is_the_public_url_s_path() {
        assert_eq!(NotificationSettings::new("https://sync.contoso.test/graph/notify?x=1").path(), "/graph/notify");
        assert_eq!(NotificationSettings::new("https://sync.contoso.test").path(), "/");
    }
}
