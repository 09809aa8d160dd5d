//! Per-mailbox throttling state: at most 4 requests in flight to one mailbox (Graph's limit for
//! Outlook resources), and the core's [`BackOffGate`] that holds every request to a mailbox until the
//! back-off Graph asked for (`Retry-After`) has ended.

use exchange_sync_core::BackOffGate;
use tokio::sync::Semaphore;

/// Graph's limit of concurrent requests per mailbox and application.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// What a client keeps per mailbox.
#[derive(Debug)]
pub struct MailboxState {
    /// Requests in flight.
    pub slots: Semaphore,
    /// Back-off.
    pub gate: BackOffGate,
}

impl MailboxState {
    /// A state allowing `concurrency` requests at once.
    pub fn new(concurrency: usize) -> Self {
        MailboxState { slots: Semaphore::new(concurrency.max(1)), gate: BackOffGate::default() }
    }
}
