//! The event pump: a service's progress events delivered to a language's callback while an
//! operation runs, and the pull side (`next`) for languages that iterate over events.
//!
//! A service broadcasts its events; a consumer that falls behind by more than the channel holds
//! gets one [`ProgressEvent::Lagged`] instead of the events it missed, so that a slow consumer
//! never slows the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::records::ProgressEvent;

/// Where a pump delivers events: a language's callback.
pub trait EventSink: Send {
    /// One event, in order. A sink that fails keeps its failure to itself (Python raises it
    /// after the operation, .NET logs it): delivery goes on.
    fn deliver(&mut self, event: ProgressEvent);
}

/// Delivers a service's events to a sink while a future runs.
pub struct EventPump<S> {
    events: broadcast::Receiver<exchange_sync::ProgressEvent>,
    /// The sink (none: events are dropped).
    pub sink: Option<S>,
}

impl<S: EventSink> EventPump<S> {
    /// A pump of `events` to `sink`.
    pub fn new(events: broadcast::Receiver<exchange_sync::ProgressEvent>, sink: Option<S>) -> Self {
        EventPump { events, sink }
    }

    fn deliver(&mut self, event: ProgressEvent) {
        if let Some(sink) = self.sink.as_mut() {
            sink.deliver(event);
        }
    }

    /// Runs `future`, delivering events as they come, then those still queued when it ends.
    pub async fn pump_until<F: std::future::Future>(&mut self, future: F) -> F::Output {
        tokio::pin!(future);
        let mut open = self.sink.is_some();
        let output = loop {
            tokio::select! {
                output = &mut future => break output,
                event = self.events.recv(), if open => match event {
                    Ok(e) => self.deliver(ProgressEvent::from(&e)),
                    Err(RecvError::Lagged(missed)) => self.deliver(ProgressEvent::Lagged { missed }),
                    Err(RecvError::Closed) => open = false,
                },
            }
        };
        loop {
            match self.events.try_recv() {
                Ok(e) => self.deliver(ProgressEvent::from(&e)),
                Err(TryRecvError::Lagged(missed)) => self.deliver(ProgressEvent::Lagged { missed }),
                Err(_) => break,
            }
        }
        output
    }
}

/// A service's events from the moment it was made, to be pulled one at a time; it ends after
/// `service_stopped`. Clones share the position.
#[derive(Clone)]
pub struct EventStream {
    events: Arc<tokio::sync::Mutex<broadcast::Receiver<exchange_sync::ProgressEvent>>>,
    ended: Arc<AtomicBool>,
}

impl EventStream {
    /// A stream of `events`.
    pub fn new(events: broadcast::Receiver<exchange_sync::ProgressEvent>) -> Self {
        EventStream { events: Arc::new(tokio::sync::Mutex::new(events)), ended: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether the stream handed out `service_stopped` (or the service is gone).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// The next event, waiting at most `timeout` (none: until one comes); none when none came
    /// in time or the stream ended.
    pub async fn next(&self, timeout: Option<Duration>) -> Option<ProgressEvent> {
        if self.ended() {
            return None;
        }
        let mut rx = self.events.lock().await;
        let recv = async {
            match rx.recv().await {
                Ok(e) => Some(ProgressEvent::from(&e)),
                Err(RecvError::Lagged(missed)) => Some(ProgressEvent::Lagged { missed }),
                Err(RecvError::Closed) => {
                    self.ended.store(true, Ordering::SeqCst);
                    None
                }
            }
        };
        let event = match timeout {
            Some(t) => tokio::time::timeout(t, recv).await.ok().flatten(),
            None => recv.await,
        };
        if matches!(event, Some(ProgressEvent::ServiceStopped)) {
            self.ended.store(true, Ordering::SeqCst);
        }
        event
    }
}
