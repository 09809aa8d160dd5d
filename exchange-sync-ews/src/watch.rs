//! Change hints for one folder: streaming notifications (the subscription carried by a connection
//! shared with the client's other subscriptions, see `crate::stream_pool`), falling back to pull
//! notifications, falling back to nothing (the engine then polls).
//!
//! Hints only say "look now"; the engine re-reads the folder, so a duplicate or spurious hint costs a
//! listing, never correctness. Whenever events may have been lost (a resubscription, a stalled
//! connection) the hint is [`ChangeHint::Resync`].

use std::sync::Weak;
use std::time::Duration;

use exchange_sync_core::ChangeHint;
use futures::channel::mpsc;
use tokio::sync::oneshot;

use crate::client::EwsClient;
use crate::error::{ErrorKind, EwsError};
use crate::ids::FolderRef;
use crate::notification::EventKind;
use crate::operation::notifications::{ITEM_EVENTS, SubscriptionKind};
use crate::stream_pool::{Departure, GroupKey, MAX_SUBSCRIPTIONS_PER_CONNECTION, Member};

/// A streaming subscription lost sooner than this waits [`WatchOptions::retry_delay`] before the
/// next Subscribe.
const SHORT_LIVED: Duration = Duration::from_secs(10);

/// How a folder is watched.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Try streaming notifications first (Exchange 2010 SP1+).
    pub streaming: bool,
    /// Minutes one streaming connection stays open (1..30) before the client reconnects.
    pub connection_timeout_minutes: u32,
    /// How long to wait for any data (heartbeats included) before treating a stream as stalled.
    pub heartbeat_timeout: Duration,
    /// Use pull notifications when streaming is unavailable.
    pub pull: bool,
    /// How often to poll a pull subscription.
    pub pull_interval: Duration,
    /// Wait after a failed attempt before the next.
    pub retry_delay: Duration,
    /// Most streaming subscriptions one connection carries (at most Exchange's 200).
    pub subscriptions_per_connection: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            streaming: true,
            connection_timeout_minutes: 30,
            heartbeat_timeout: Duration::from_secs(90),
            pull: true,
            pull_interval: Duration::from_secs(30),
            retry_delay: Duration::from_secs(5),
            subscriptions_per_connection: MAX_SUBSCRIPTIONS_PER_CONNECTION,
        }
    }
}

/// Where hints go, and whether anyone still wants them: the receiving stream must be alive and so
/// must the connector (the stream ends when the connector is dropped).
#[derive(Clone)]
pub(crate) struct Hints {
    tx: mpsc::Sender<ChangeHint>,
    connector: Weak<()>,
}

impl Hints {
    pub(crate) fn new(tx: mpsc::Sender<ChangeHint>, connector: Weak<()>) -> Self {
        Self { tx, connector }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.connector.strong_count() == 0
    }

    /// Sends a hint; false when nobody listens any more.
    pub(crate) fn send(&mut self, hint: ChangeHint) -> bool {
        send(self, hint)
    }
}

/// Sends a hint; false when nobody listens any more. A full channel drops the hint: one pending
/// hint already makes the engine look.
fn send(tx: &mut Hints, hint: ChangeHint) -> bool {
    if tx.is_closed() {
        return false;
    }
    match tx.tx.try_send(hint) {
        Ok(()) => true,
        Err(e) => !e.is_disconnected(),
    }
}

/// Whether an error means the server does not offer this kind of subscription at all.
fn unsupported(e: &EwsError) -> bool {
    matches!(e.kind(), ErrorKind::UnsupportedVersion | ErrorKind::InvalidRequest | ErrorKind::Protocol)
}

/// Whether an error will not pass by trying again (rejected credentials, missing rights, an
/// unreachable or untrusted server, a folder that is gone): the watcher stops instead of knocking
/// every few seconds (which could lock the account) and the engine polls, reporting the error.
fn permanent(e: &EwsError) -> bool {
    !e.kind().is_retryable() && !matches!(e.kind(), ErrorKind::Indeterminate | ErrorKind::SubscriptionLost)
}

/// Whether a permanent error concerns the account, the mailbox, the folder or the server rather
/// than the kind of subscription: another kind (pull instead of streaming) would fail the same way.
fn hopeless(e: &EwsError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Unauthorized
            | ErrorKind::AccessDenied
            | ErrorKind::MailboxNotFound
            | ErrorKind::NotFound
            | ErrorKind::Unreachable
            | ErrorKind::Configuration
    )
}

/// How long to wait after a failed attempt: the configured delay, or the back-off the server asked
/// for when it is longer.
fn wait_after(e: &EwsError, o: &WatchOptions) -> Duration {
    e.retry_after().map_or(o.retry_delay, |d| d.max(o.retry_delay))
}

/// Most GetEvents requests of one poll of a pull subscription (the server says when it has more).
const MAX_GET_EVENTS_PER_POLL: usize = 100;

enum Outcome {
    /// The subscription is gone: subscribe again (and resync).
    Resubscribe,
    /// Nobody listens any more, or the folder cannot be watched.
    Stop,
}

/// Hands a streaming subscription to the client's shared connections and waits until it leaves
/// them (lost by the server, or nobody watches any more).
async fn streaming_session(
    client: &EwsClient,
    subscription: String,
    cookie: Option<String>,
    tx: &Hints,
    o: &WatchOptions,
) -> Outcome {
    let (departed, done) = oneshot::channel();
    let member = Member { client: client.clone(), subscription, hints: tx.clone(), departed };
    client.stream_pool().join(GroupKey::new(client, cookie), member, o);
    match done.await {
        Ok(Departure::Resubscribe) => Outcome::Resubscribe,
        Ok(Departure::Stopped) | Err(_) => Outcome::Stop,
    }
}

async fn pull_session(
    client: &EwsClient,
    id: &str,
    mut watermark: String,
    tx: &mut Hints,
    o: &WatchOptions,
) -> Outcome {
    loop {
        tokio::time::sleep(o.pull_interval).await;
        if tx.is_closed() {
            let _ = client.unsubscribe(id).await;
            return Outcome::Stop;
        }
        for round in 1..=MAX_GET_EVENTS_PER_POLL {
            match client.get_events(id, &watermark).await {
                Ok(n) => {
                    if n.events.iter().any(|e| e.kind != EventKind::Status) && !send(tx, ChangeHint::Changed) {
                        return Outcome::Stop;
                    }
                    if let Some(w) = n.last_watermark() {
                        watermark = w.to_owned();
                    }
                    if !n.more_events {
                        break;
                    }
                    if round == MAX_GET_EVENTS_PER_POLL {
                        tracing::info!("pull subscription still has events after {round} requests; the rest next poll");
                    }
                }
                Err(e) if e.kind() == ErrorKind::SubscriptionLost => return Outcome::Resubscribe,
                Err(e) if permanent(&e) => {
                    tracing::warn!(error = %e, "GetEvents refused; the folder is no longer watched (the engine polls)");
                    return Outcome::Stop;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "GetEvents failed");
                    tokio::time::sleep(wait_after(&e, o)).await;
                    break;
                }
            }
        }
    }
}

/// Watches one folder until the receiving side is dropped.
pub(crate) async fn run(client: EwsClient, folder: FolderRef, o: WatchOptions, mut tx: Hints) {
    let folders = [folder];
    let mut streaming = o.streaming;
    let mut pull = o.pull;
    let mut subscribed_before = false;
    loop {
        if tx.is_closed() {
            return;
        }
        let outcome = if streaming {
            match client.subscribe_with_affinity(&folders, &ITEM_EVENTS, &SubscriptionKind::Streaming).await {
                Ok((sub, cookie)) => {
                    // Events may have been missed while the folder had no subscription.
                    if subscribed_before && !send(&mut tx, ChangeHint::Resync) {
                        return;
                    }
                    subscribed_before = true;
                    let since = tokio::time::Instant::now();
                    let outcome = streaming_session(&client, sub.id, cookie, &tx, &o).await;
                    // A subscription lost right away again and again (a server that keeps
                    // refusing it) must not turn into a tight loop of Subscribe requests.
                    if matches!(outcome, Outcome::Resubscribe) && since.elapsed() < SHORT_LIVED {
                        tokio::time::sleep(o.retry_delay).await;
                    }
                    outcome
                }
                Err(e) if unsupported(&e) || (permanent(&e) && !hopeless(&e) && pull) => {
                    tracing::info!(error = %e, "streaming notifications unavailable; falling back to pull");
                    streaming = false;
                    continue;
                }
                Err(e) if permanent(&e) => {
                    tracing::warn!(error = %e, "cannot subscribe; the folder is no longer watched (the engine polls)");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "streaming subscription failed; retrying");
                    tokio::time::sleep(wait_after(&e, &o)).await;
                    continue;
                }
            }
        } else if pull {
            let kind = SubscriptionKind::Pull { timeout_minutes: 10, watermark: None };
            match client.subscribe(&folders, &ITEM_EVENTS, &kind).await {
                Ok(sub) => {
                    if subscribed_before && !send(&mut tx, ChangeHint::Resync) {
                        return;
                    }
                    subscribed_before = true;
                    let watermark = sub.watermark.unwrap_or_default();
                    pull_session(&client, &sub.id, watermark, &mut tx, &o).await
                }
                Err(e) if unsupported(&e) => {
                    tracing::info!(error = %e, "pull notifications unavailable; the engine polls");
                    pull = false;
                    continue;
                }
                Err(e) if permanent(&e) => {
                    tracing::warn!(error = %e, "cannot subscribe; the folder is no longer watched (the engine polls)");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pull subscription failed; retrying");
                    tokio::time::sleep(wait_after(&e, &o)).await;
                    continue;
                }
            }
        } else {
            // No notifications: stay silent until dropped; the engine polls.
            while !tx.is_closed() {
                tokio::time::sleep(o.retry_delay).await;
            }
            return;
        };
        if let Outcome::Stop = outcome {
            return;
        }
    }
}
