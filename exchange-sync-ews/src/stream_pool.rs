//! Shared streaming connections: one GetStreamingEvents request carries many streaming
//! subscriptions, as Exchange allows, instead of one long-lived connection per watched folder.
//!
//! Exchange keeps a streaming subscription on one mailbox server. A Subscribe sent with
//! `X-PreferServerAffinity: true` answers an `X-BackEndOverrideCookie` naming that server, and only
//! subscriptions held by one server can share a GetStreamingEvents request, which must reach that
//! server (the cookie routes it there). The request must also come from the account that created
//! the subscriptions: the client's credentials, acting through impersonation or not. So
//! subscriptions are grouped by (impersonation or not, affinity cookie); each [`StreamPool`] lives in
//! one client (one set of credentials, one endpoint). A group is split over several connections
//! beyond [`MAX_SUBSCRIPTIONS_PER_CONNECTION`].
//!
//! Each connection task reads its envelopes and hands each notification to the folder whose
//! subscription it names. A subscription the server reports lost (ErrorSubscriptionNotFound,
//! expired, ErrorMissedNotificationEvents, ...) leaves the connection: its folder's watcher
//! subscribes again and asks for a full re-sync of that folder. A connection that breaks or stalls
//! asks every folder on it for a re-sync and reconnects with the same subscriptions. So does one the
//! client closes to change its list of subscriptions (folders joining in a burst are gathered first,
//! so that happens rarely): events the server was sending as it closed would be lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use exchange_sync_core::ChangeHint;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::client::EwsClient;
use crate::error::ErrorKind;
use crate::notification::EventKind;
use crate::operation::notifications::StreamingBatch;
use crate::transport::Routing;
use crate::watch::{Hints, WatchOptions};

/// The most subscriptions one GetStreamingEvents connection carries (Exchange's limit).
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 200;

/// How long a connection waits for more subscriptions to join before reconnecting with them: folders
/// are usually watched in bursts (a service starting), and each change of the subscription list
/// costs a reconnection.
const JOIN_SETTLE: Duration = Duration::from_millis(150);

/// The longest a burst of joins may delay a reconnection.
const JOIN_SETTLE_MAX: Duration = Duration::from_secs(2);

/// A connection the server closes sooner than this is reopened only after the retry delay.
const QUICK_CLOSE: Duration = Duration::from_secs(1);

/// How often a connection looks for folders nobody watches any more.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Which subscriptions may share a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    /// Created while impersonating a mailbox (the request must impersonate one of the group's).
    impersonated: bool,
    /// The mailbox server holding them, as its affinity cookie names it.
    cookie: Option<String>,
}

impl GroupKey {
    /// The group of a subscription created by `client`, answered `cookie`.
    pub(crate) fn new(client: &EwsClient, cookie: Option<String>) -> Self {
        Self { impersonated: client.routing().impersonation.is_some(), cookie }
    }
}

/// Why a folder's subscription left its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Departure {
    /// The server lost the subscription: subscribe again, then re-sync the folder.
    Resubscribe,
    /// Nobody watches the folder any more (it was unsubscribed).
    Stopped,
}

/// One folder's streaming subscription, handed to the pool.
pub(crate) struct Member {
    /// A client acting on the folder's mailbox (without affinity cookie).
    pub(crate) client: EwsClient,
    /// The subscription id.
    pub(crate) subscription: String,
    /// Where the folder's hints go.
    pub(crate) hints: Hints,
    /// Told when the subscription leaves the pool.
    pub(crate) departed: oneshot::Sender<Departure>,
}

impl Member {
    fn leave(self, why: Departure) {
        let _ = self.departed.send(why);
    }

    /// The mailbox the member acts on, to pick the connection's anchor.
    fn mailbox(&self) -> String {
        self.client.routing().mailbox().unwrap_or("").to_ascii_lowercase()
    }
}

struct Connection {
    id: u64,
    key: GroupKey,
    /// Members joined or on their way (incremented under the pool's lock when one is sent).
    members: Arc<AtomicUsize>,
    joins: mpsc::UnboundedSender<Member>,
}

/// The streaming connections of one client, grouped by affinity (see the module documentation).
#[derive(Default)]
pub struct StreamPool {
    connections: Mutex<Vec<Connection>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for StreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPool").field("connections", &self.connections()).finish()
    }
}

impl StreamPool {
    /// Connections open or being opened.
    pub fn connections(&self) -> usize {
        self.lock().iter().filter(|c| !c.joins.is_closed()).count()
    }

    /// Subscriptions carried by the pool's connections.
    pub fn subscriptions(&self) -> usize {
        self.lock().iter().map(|c| c.members.load(Ordering::Relaxed)).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscription to a connection of its group with room left, or to a new one.
    pub(crate) fn join(self: &Arc<Self>, key: GroupKey, member: Member, options: &WatchOptions) {
        let cap = options.subscriptions_per_connection.clamp(1, MAX_SUBSCRIPTIONS_PER_CONNECTION);
        let mut connections = self.lock();
        connections.retain(|c| !c.joins.is_closed());
        let mut member = member;
        for c in connections.iter().filter(|c| c.key == key) {
            if c.members.load(Ordering::Relaxed) >= cap {
                continue;
            }
            c.members.fetch_add(1, Ordering::Relaxed);
            match c.joins.send(member) {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => {
                    c.members.fetch_sub(1, Ordering::Relaxed);
                    member = back;
                }
            }
        }
        let (joins, rx) = mpsc::unbounded_channel();
        let members = Arc::new(AtomicUsize::new(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(connection = id, ?key, "opening a shared streaming connection");
        let task = ConnectionTask {
            pool: Arc::clone(self),
            id,
            cookie: key.cookie.clone(),
            members: Arc::clone(&members),
            joins: rx,
            watched: BTreeMap::new(),
            options: options.clone(),
        };
        if joins.send(member).is_ok() {
            connections.push(Connection { id, key, members, joins });
            tokio::spawn(task.run());
        }
    }

    /// Forgets a connection whose task is ending, if no member is on its way to it (answers
    /// whether it was removed; if not, the task must keep serving).
    fn retire(&self, id: u64) -> bool {
        let mut connections = self.lock();
        let Some(pos) = connections.iter().position(|c| c.id == id) else { return true };
        if connections[pos].members.load(Ordering::Relaxed) > 0 {
            return false;
        }
        connections.remove(pos);
        true
    }
}

/// What ended one streaming request.
enum StreamEnd {
    /// The server closed it at the end of its lifetime (ConnectionStatus `Closed`): reconnect,
    /// nothing was missed.
    Closed,
    /// It broke, stalled, or ended without saying it was closing: events may be lost, every folder
    /// re-syncs.
    Broken,
    /// The list of subscriptions changed before a stream was open: connect with the new list.
    MembersChanged,
    /// The client closed the stream to reconnect with a changed list of subscriptions. Events the
    /// server was sending on it as it closed are lost: the folders it carried re-sync.
    Reopen(Vec<String>),
}

struct ConnectionTask {
    pool: Arc<StreamPool>,
    id: u64,
    cookie: Option<String>,
    members: Arc<AtomicUsize>,
    joins: mpsc::UnboundedReceiver<Member>,
    /// By subscription id.
    watched: BTreeMap<String, Member>,
    options: WatchOptions,
}

impl ConnectionTask {
    async fn run(mut self) {
        loop {
            self.drop_unwatched().await;
            if self.watched.is_empty() {
                // Wait for a member on its way, or end if none is.
                if self.pool.retire(self.id) {
                    tracing::debug!(connection = self.id, "shared streaming connection closed: no subscription left");
                    return;
                }
                match self.joins.recv().await {
                    Some(m) => self.add(m),
                    None => return,
                }
                self.settle().await;
                continue;
            }
            let opened = tokio::time::Instant::now();
            match self.stream_once().await {
                StreamEnd::MembersChanged => {}
                StreamEnd::Reopen(streamed) => {
                    for id in streamed {
                        if let Some(m) = self.watched.get_mut(&id) {
                            let _ = m.hints.send(ChangeHint::Resync);
                        }
                    }
                }
                // A server closing each connection right away must not get a tight loop of them.
                StreamEnd::Closed if opened.elapsed() < QUICK_CLOSE => {
                    tokio::time::sleep(self.options.retry_delay).await;
                }
                StreamEnd::Closed => {}
                StreamEnd::Broken => {
                    self.hint_all(ChangeHint::Resync);
                    tokio::time::sleep(self.options.retry_delay.min(Duration::from_secs(1))).await;
                }
            }
        }
    }

    fn add(&mut self, m: Member) {
        self.watched.insert(m.subscription.clone(), m);
    }

    /// Takes the members joining in a burst.
    async fn settle(&mut self) {
        let until = tokio::time::Instant::now() + JOIN_SETTLE_MAX;
        loop {
            let wait = (tokio::time::Instant::now() + JOIN_SETTLE).min(until);
            match tokio::time::timeout_at(wait, self.joins.recv()).await {
                Ok(Some(m)) => self.add(m),
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn remove(&mut self, subscription: &str) -> Option<Member> {
        let m = self.watched.remove(subscription)?;
        self.members.fetch_sub(1, Ordering::Relaxed);
        Some(m)
    }

    /// A client routed to the mailbox server of this connection's subscriptions, acting as the
    /// first of its mailboxes (the anchor).
    fn routed_client(&self) -> Option<EwsClient> {
        let anchor = self.watched.values().min_by_key(|m| m.mailbox())?;
        Some(self.routed(&anchor.client))
    }

    fn routed(&self, client: &EwsClient) -> EwsClient {
        client.with_routing(Routing { backend_cookie: self.cookie.clone(), ..client.routing().clone() })
    }

    /// Unsubscribes the folders nobody watches any more; answers whether any left.
    async fn drop_unwatched(&mut self) -> bool {
        let gone: Vec<String> =
            self.watched.iter().filter(|(_, m)| m.hints.is_closed()).map(|(id, _)| id.clone()).collect();
        for id in &gone {
            if let Some(m) = self.remove(id) {
                if let Err(e) = self.routed(&m.client).unsubscribe(id).await {
                    tracing::debug!(error = %e, "unsubscribing an unwatched folder failed (it expires by itself)");
                }
                m.leave(Departure::Stopped);
            }
        }
        !gone.is_empty()
    }

    /// Sends `hint` to every folder of the connection.
    fn hint_all(&mut self, hint: ChangeHint) {
        for m in self.watched.values_mut() {
            let _ = m.hints.send(hint.clone());
        }
    }

    /// The subscriptions of a batch the server lost, by id (all of them when the server names none).
    fn lost_in(&self, batch: &StreamingBatch) -> Vec<String> {
        let listed: Vec<String> =
            batch.failed_subscriptions.iter().filter(|id| self.watched.contains_key(*id)).cloned().collect();
        let all_lost =
            batch.error.as_deref().is_some_and(|c| ErrorKind::from_response_code(c) == ErrorKind::SubscriptionLost);
        if listed.is_empty() && all_lost && batch.failed_subscriptions.is_empty() {
            return self.watched.keys().cloned().collect();
        }
        listed
    }

    fn resubscribe(&mut self, ids: &[String]) {
        for id in ids {
            if let Some(m) = self.remove(id) {
                tracing::info!(connection = self.id, "streaming subscription lost; subscribing again");
                m.leave(Departure::Resubscribe);
            }
        }
    }

    /// One GetStreamingEvents request with every member's subscription, until it ends.
    async fn stream_once(&mut self) -> StreamEnd {
        let Some(client) = self.routed_client() else { return StreamEnd::MembersChanged };
        let ids: Vec<String> = self.watched.keys().cloned().collect();
        let o = self.options.clone();
        let mut stream = match client
            .get_streaming_events(&ids, o.connection_timeout_minutes, o.heartbeat_timeout)
            .await
        {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::SubscriptionLost => {
                self.resubscribe(&ids);
                return StreamEnd::MembersChanged;
            }
            // Refused for good (credentials, rights, an unreachable server): not retried here;
            // each folder subscribes again, and its watcher stops if that fails for good too.
            Err(e) if !e.kind().is_retryable() && e.kind() != ErrorKind::Indeterminate => {
                tracing::warn!(connection = self.id, error = %e, "streaming connection refused; its folders subscribe again");
                self.resubscribe(&ids);
                return StreamEnd::MembersChanged;
            }
            Err(e) => {
                // The client already retried; a back-off the server asked for is honoured.
                let wait = e.retry_after().map_or(o.retry_delay, |d| d.max(o.retry_delay));
                tracing::warn!(
                    connection = self.id,
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64,
                    "streaming connection failed; retrying"
                );
                tokio::time::sleep(wait).await;
                return StreamEnd::Broken;
            }
        };
        tracing::debug!(connection = self.id, subscriptions = ids.len(), "streaming");
        let mut idle_check = tokio::time::interval(IDLE_CHECK);
        idle_check.reset();
        let mut closing = false;
        loop {
            tokio::select! {
                batch = stream.next() => match batch {
                    None if closing => return StreamEnd::Closed,
                    None => {
                        tracing::info!(connection = self.id, "notification stream ended without ConnectionStatus Closed; reconnecting");
                        return StreamEnd::Broken;
                    }
                    Some(Ok(b)) => {
                        closing |= b.closed;
                        self.dispatch(&b);
                        let lost = self.lost_in(&b);
                        if !lost.is_empty() {
                            self.resubscribe(&lost);
                            return StreamEnd::Reopen(ids.clone());
                        }
                        if let Some(code) = &b.error {
                            // Refused for another reason (busy, ...): events may be missed.
                            tracing::warn!(connection = self.id, code = %code, "streaming connection refused; retrying");
                            tokio::time::sleep(self.options.retry_delay).await;
                            return StreamEnd::Broken;
                        }
                    }
                    Some(Err(e)) if e.kind() == ErrorKind::SubscriptionLost => {
                        self.resubscribe(&ids);
                        return StreamEnd::Reopen(ids.clone());
                    }
                    Some(Err(e)) => {
                        if e.kind() == ErrorKind::Throttled {
                            // Answered with ErrorServerBusy: the next connection waits the back-off.
                            client.hold_off(e.retry_after().unwrap_or(self.options.retry_delay));
                        }
                        tracing::info!(connection = self.id, error = %e, "notification stream interrupted; reconnecting");
                        return StreamEnd::Broken;
                    }
                },
                joined = self.joins.recv() => {
                    if let Some(m) = joined {
                        self.add(m);
                        self.settle().await;
                    }
                    return StreamEnd::Reopen(ids.clone());
                }
                _ = idle_check.tick() => {
                    if self.drop_unwatched().await {
                        return StreamEnd::Reopen(ids.clone());
                    }
                }
            }
        }
    }

    /// Hands each notification with item events to the folder whose subscription it names.
    fn dispatch(&mut self, batch: &StreamingBatch) {
        for n in &batch.notifications {
            if !n.events.iter().any(|e| e.kind != EventKind::Status) {
                continue;
            }
            match self.watched.get_mut(&n.subscription_id) {
                Some(m) => {
                    // A closed receiver is noticed by the idle check.
                    let _ = m.hints.send(ChangeHint::Changed);
                }
                None => tracing::debug!(connection = self.id, "notification for a subscription not on this connection"),
            }
        }
    }
}
