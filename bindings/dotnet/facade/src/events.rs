//! The callback interface C# implements to receive progress events
//! (`exchange_sync_bindings::records::ProgressEvent`, exported as it is).
//!
//! A `ProgressListener` receives the service's events on a runtime thread, one at a time and in
//! order (or on the calling thread, for `RunOnceWithProgress`); a listener must return quickly
//! and must not call blocking methods of the bindings. A listener that falls behind by more than
//! 1024 events gets one `Lagged` event instead of the ones it missed. An exception a listener
//! throws is logged (warning) and does not stop the run.

use exchange_sync_bindings::events::EventSink;
use exchange_sync_bindings::records::ProgressEvent;

/// Receives the service's progress events (implemented in C#).
#[uniffi::export(callback_interface)]
pub trait ProgressListener: Send + Sync {
    /// One event. Called on a runtime thread; return quickly, and call only `...Async` methods.
    fn on_event(&self, event: ProgressEvent);
}

/// The pump's sink: the C# listener.
pub struct Listener(pub Box<dyn ProgressListener>);

impl EventSink for Listener {
    fn deliver(&mut self, event: ProgressEvent) {
        // An exception thrown by the C# listener reaches Rust as a panic of the callback: it must
        // not end the run (or the subscription), so it is logged and the run goes on.
        let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.on_event(event)));
        if delivered.is_err() {
            tracing::warn!("a progress listener threw an exception; the event was dropped");
        }
    }
}
