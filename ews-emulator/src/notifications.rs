//! Subscriptions and their event queues (pull and streaming notifications).
//!
//! The store publishes every change here after releasing its lock; each matching subscription
//! queues it with a watermark. Pull clients drain the queue with GetEvents, streaming
//! connections wait on [`NotificationHub::changed`] and drain it as events arrive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::sync::Notify;

use crate::store::{EventKind, StoreEvent};

/// Most events queued per subscription; older ones are dropped (a client that lags that far
/// must resubscribe and re-sync anyway).
const MAX_QUEUED: usize = 10_000;

/// An event with the watermark that follows it.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    /// Position of the event in its subscription (1 is the first event).
    pub position: u64,
    /// Watermark of the subscription after this event.
    pub watermark: String,
    /// The change.
    pub event: StoreEvent,
}

/// One subscription.
#[derive(Debug)]
pub struct Subscription {
    /// Opaque subscription id.
    pub id: String,
    /// Mailbox watched.
    pub mailbox: u32,
    /// Folders watched (None: every folder).
    pub folders: Option<HashSet<u64>>,
    /// Event type names asked for (`CreatedEvent`, ...).
    pub event_types: HashSet<String>,
    /// Streaming (true) or pull.
    pub streaming: bool,
    /// Account that created it (lowercase), the only one allowed to read it.
    pub owner: String,
    /// The mailbox server holding it (see `EmulatorConfig::backend_servers`).
    pub backend: u32,
    number: u64,
    next: u64,
    queue: VecDeque<QueuedEvent>,
}

impl Subscription {
    fn watermark(&self, n: u64) -> String {
        let mut raw = b"WM".to_vec();
        raw.extend_from_slice(&self.number.to_le_bytes());
        raw.extend_from_slice(&n.to_le_bytes());
        B64.encode(raw)
    }

    /// The current watermark (what a new event would follow).
    pub fn current_watermark(&self) -> String {
        self.watermark(self.next)
    }

    fn wants(&self, e: &StoreEvent) -> bool {
        if e.mailbox != self.mailbox {
            return false;
        }
        if let Some(folders) = &self.folders {
            let old_parent = e.old.map(|(_, p)| p);
            if !folders.contains(&e.parent) && !old_parent.is_some_and(|p| folders.contains(&p)) {
                return false;
            }
        }
        let name = match e.kind {
            EventKind::Created => "CreatedEvent",
            EventKind::Modified => "ModifiedEvent",
            EventKind::Deleted => "DeletedEvent",
            EventKind::Moved => "MovedEvent",
        };
        self.event_types.contains(name)
    }
}

/// Why a subscription call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionError {
    /// No such subscription (or it belongs to another account).
    NotFound,
    /// The watermark does not belong to this subscription.
    InvalidWatermark,
}

/// Every live subscription.
#[derive(Debug, Default)]
pub struct NotificationHub {
    subs: Mutex<HashMap<String, Subscription>>,
    counter: AtomicU64,
    /// Woken on every published event: streaming connections wait on it.
    pub changed: Notify,
}

impl NotificationHub {
    /// Creates a subscription and returns (id, first watermark).
    pub fn subscribe(
        &self,
        mailbox: u32,
        folders: Option<HashSet<u64>>,
        event_types: HashSet<String>,
        streaming: bool,
        owner: &str,
        backend: u32,
    ) -> (String, String) {
        let number = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = {
            let mut raw = b"SUB".to_vec();
            raw.extend_from_slice(&number.to_le_bytes());
            raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            B64.encode(raw)
        };
        let sub = Subscription {
            id: id.clone(),
            mailbox,
            folders,
            event_types,
            streaming,
            owner: owner.to_ascii_lowercase(),
            backend,
            number,
            next: 1,
            queue: VecDeque::new(),
        };
        let wm = sub.current_watermark();
        self.lock().insert(id.clone(), sub);
        (id, wm)
    }

    /// Removes a subscription owned by `owner`.
    pub fn unsubscribe(&self, id: &str, owner: &str) -> Result<(), SubscriptionError> {
        let mut subs = self.lock();
        match subs.get(id) {
            Some(s) if s.owner == owner.to_ascii_lowercase() => {
                subs.remove(id);
                Ok(())
            }
            _ => Err(SubscriptionError::NotFound),
        }
    }

    /// Queues store events on every subscription that wants them, and wakes streams.
    pub fn publish(&self, events: &[StoreEvent]) {
        let mut any = false;
        {
            let mut subs = self.lock();
            if subs.is_empty() {
                return;
            }
            for sub in subs.values_mut() {
                for e in events {
                    if sub.wants(e) {
                        sub.next += 1;
                        let watermark = sub.watermark(sub.next);
                        sub.queue.push_back(QueuedEvent { position: sub.next, watermark, event: e.clone() });
                        if sub.queue.len() > MAX_QUEUED {
                            sub.queue.pop_front();
                        }
                        any = true;
                    }
                }
            }
        }
        if any {
            self.changed.notify_waiters();
        }
    }

    /// Pull: takes the queued events of a subscription (at most `max`). Returns (previous
    /// watermark, events, more events left, current watermark).
    pub fn take(
        &self,
        id: &str,
        owner: &str,
        watermark: Option<&str>,
        max: usize,
        streaming: bool,
    ) -> Result<(String, Vec<QueuedEvent>, bool, String), SubscriptionError> {
        let mut subs = self.lock();
        let sub = subs.get_mut(id).ok_or(SubscriptionError::NotFound)?;
        if sub.owner != owner.to_ascii_lowercase() || sub.streaming != streaming {
            return Err(SubscriptionError::NotFound);
        }
        if let Some(wm) = watermark {
            let raw = B64.decode(wm.trim()).map_err(|_| SubscriptionError::InvalidWatermark)?;
            if raw.len() != 18 || &raw[..2] != b"WM" || raw[2..10] != sub.number.to_le_bytes() {
                return Err(SubscriptionError::InvalidWatermark);
            }
        }
        let previous = match (watermark, sub.queue.front()) {
            (Some(wm), _) => wm.to_string(),
            (None, Some(first)) => sub.watermark(first.position - 1),
            (None, None) => sub.current_watermark(),
        };
        let n = sub.queue.len().min(max);
        let events: Vec<QueuedEvent> = sub.queue.drain(..n).collect();
        Ok((previous, events, !sub.queue.is_empty(), sub.current_watermark()))
    }

    /// Whether a subscription exists, is streaming and belongs to `owner`.
    pub fn is_streaming_of(&self, id: &str, owner: &str) -> bool {
        self.lock().get(id).is_some_and(|s| s.streaming && s.owner == owner.to_ascii_lowercase())
    }

    /// The mailbox server holding a subscription.
    pub fn backend_of(&self, id: &str) -> Option<u32> {
        self.lock().get(id).map(|s| s.backend)
    }

    /// Ends every subscription on a mailbox, as when they expire on the server, and wakes the
    /// streams that carry them (they report them in `ErrorSubscriptionIds`). Returns how many.
    pub fn expire_mailbox(&self, mailbox: u32) -> usize {
        let removed = {
            let mut subs = self.lock();
            let before = subs.len();
            subs.retain(|_, s| s.mailbox != mailbox);
            before - subs.len()
        };
        self.changed.notify_waiters();
        removed
    }

    /// Mailbox a subscription watches.
    pub fn mailbox_of(&self, id: &str) -> Option<u32> {
        self.lock().get(id).map(|s| s.mailbox)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventTarget;

    fn event(mailbox: u32, parent: u64, kind: EventKind) -> StoreEvent {
        StoreEvent {
            mailbox,
            kind,
            target: EventTarget::Item(9),
            parent,
            old: None,
            version: 1,
            time: chrono::Utc::now(),
        }
    }

    #[test]
    fn queues_only_matching_events_with_growing_watermarks() {
        let hub = NotificationHub::default();
        let types: HashSet<String> = ["CreatedEvent".to_string()].into();
        let (id, wm0) = hub.subscribe(1, Some([5].into()), types, false, "Alice@x", 0);
        hub.publish(&[
            event(1, 5, EventKind::Created),
            event(1, 6, EventKind::Created),
            event(2, 5, EventKind::Created),
            event(1, 5, EventKind::Modified),
        ]);
        let (prev, events, more, now) = hub.take(&id, "alice@x", Some(&wm0), 10, false).unwrap();
        assert_eq!(prev, wm0);
        assert_eq!(events.len(), 1);
        assert!(!more);
        assert_eq!(events[0].watermark, now);
        assert_ne!(now, wm0);
        assert_eq!(hub.take(&id, "bob@x", None, 10, false).unwrap_err(), SubscriptionError::NotFound);
        assert_eq!(
            hub.take(&id, "alice@x", Some("garbage"), 10, false).unwrap_err(),
            SubscriptionError::InvalidWatermark
        );
        hub.unsubscribe(&id, "alice@x").unwrap();
        assert!(hub.take(&id, "alice@x", None, 10, false).is_err());
    }
}
