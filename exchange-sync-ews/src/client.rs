//! [`EwsClient`]: one async method per EWS operation, with retries, throttling, version negotiation
//! and batching handled inside.
//!
//! The client is cheap to clone; clones share the HTTP connection pool, the negotiated version and the
//! per-mailbox throttling state (concurrency limit and back-off). [`EwsClient::impersonating`] and
//! [`EwsClient::with_routing`] return clones that act on another mailbox.
//!
//! # Who retries what
//!
//! Each request has one owner of its retries: this client. A request sent inside the back-off the
//! server asked for is only refused again and adds to the load that made it throttle, and retries
//! stacked over several layers multiply (8 by the client, again by the engine, again by the
//! service), so no layer above the client sends a request again by itself.
//!
//! - **The client** retries one request when the failure can pass: throttling (ErrorServerBusy as
//!   a SOAP fault or in a response message, HTTP 503 or 429), a 502 or 504, a connection that
//!   failed before the request was sent, ErrorInternalServerError whose inner error is not
//!   permanent (see [`ErrorKind::of_response`]), and per batch entry the same plus
//!   ErrorBatchProcessingStopped. A batch that times out (ErrorTimeoutExpired) or whose answer
//!   passes the body limit is split in halves. Each request is sent at most
//!   [`RetryPolicy::max_attempts`] times (8 by default), and never again at once.
//! - **Delays**: a delay the server names (BackOffMilliseconds, Retry-After) is honoured in full,
//!   however long. Otherwise the client waits [`RetryPolicy::base_delay`] doubled per attempt
//!   (capped by [`RetryPolicy::max_delay`]), drawn between half and all of it so that clients do
//!   not retry in step. Logs state the delay actually waited.
//! - **Per-mailbox back-off**: a throttling answer closes a gate for the mailbox (the routing's
//!   [`Routing::mailbox`], as for the concurrency limit) shared by every clone of the client: no
//!   request to that mailbox leaves before the back-off has ended, whichever clone sends it. The
//!   mailbox's concurrency limit halves too ([`AdaptiveLimit`]).
//! - **[`RetryPolicy::max_inline_wait`]** (30 s by default): a back-off up to this long is waited
//!   inside the call. A longer one is not: the call returns at once with the throttling error,
//!   which carries the remaining delay, and every later call for the mailbox fails the same way
//!   ([`EwsError::BackingOff`]), without sending anything, until the back-off ends. The engine
//!   parks the mailbox for that long and syncs the others.
//! - **Writes are never resent blindly**: a CreateItem, UpdateItem, DeleteItem or CreateFolder
//!   whose connection broke after it was sent has an unknown outcome
//!   ([`ErrorKind::Indeterminate`]) and goes to the caller; the connector looks the item up by
//!   its origin stamp before creating it again.
//! - **Permanent errors fail at once**: rejected credentials (401), missing rights or
//!   impersonation rights, an unknown mailbox, an unreachable or untrusted server
//!   ([`ErrorKind::Unreachable`]), an exceeded limit, a request the server calls invalid.
//! - **What leaves the client has had its retries**:
//!   [`to_core_error`](crate::connector::to_core_error) marks temporary errors exhausted
//!   (`exchange_sync_core::Error::retries_exhausted`), so the engine and the service do not retry
//!   them; a throttling error keeps the remaining back-off for parking.
//! - **Watchers** ([`crate::watch`], `crate::stream_pool`) are background loops, not requests:
//!   they wait at least their `retry_delay` (longer when the server asked) between attempts, and
//!   stop on a permanent error (the engine then polls, and reports the error) instead of knocking
//!   every few seconds with, say, a rejected password.
//!
//! # Limits
//!
//! Every answer is bounded while it is read (design rule 14); a server can cost time, never the
//! process's memory.
//!
//! | What | Bound (default) | Setting |
//! |---|---|---|
//! | One response body | 64 MiB, refused as soon as it passes | [`TransportConfig::max_response_bytes`] |
//! | One document (parse), one streaming notification document | 64 MiB, 64 levels | [`TransportConfig::parse_limits`] |
//! | One request (not streaming) | 120 s | [`TransportConfig::request_timeout`] |
//! | One streaming connection | its lifetime (1..30 min) + heartbeat timeout + 60 s; stalled after the heartbeat timeout (90 s) | [`STREAM_LIFETIME_MARGIN`], [`crate::watch::WatchOptions`] |
//! | Items of a FindItem page, changes of a SyncFolderItems page | what was asked (at most 1,000 / 512) | [`MAX_FIND_PAGE`], [`sync::MAX_SYNC_CHANGES`] |
//! | FindItem pages of one listing | 1,000 (a million items) | [`MAX_FIND_ITEM_PAGES`] |
//! | FindFolder pages of one listing | 100 | [`MAX_FIND_FOLDER_PAGES`] |
//! | SyncFolderItems pages of [`EwsClient::sync_all_folder_items`] | 2,000 | [`MAX_SYNC_PAGES`] |
//! | GetEvents requests per poll of a pull subscription | 100 | |
//! | Items per batch request | 50, halved on timeouts and oversized answers | [`EwsClientBuilder::batch_size`] |
//! | Concurrent requests per mailbox | 10, halved on throttling | [`EwsClientBuilder::max_concurrency`] |
//! | Mailboxes whose throttling state is kept | 10,000, idle ones forgotten beyond | |
//!
//! A page larger than asked, and paging that does not advance (the same offset or sync state
//! again), are protocol errors.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Credentials;
use crate::error::{ErrorKind, EwsError, Result};
use crate::folder::Folder;
use crate::ids::{FolderId, FolderRef, ItemId};
use crate::item::{EwsItem, ItemChange, ItemDraft};
use crate::notification::{EventKind, Notification};
use crate::operation::directory::{self, Mailbox};
use crate::operation::folders::{self, Traversal};
use crate::operation::items::{self, Created, DeleteType, ItemPage, Restriction};
use crate::operation::notifications::{self, Subscription, SubscriptionKind};
use crate::operation::sync::{self, FolderSyncPage, ItemChangeEvent, ItemSyncPage};
use crate::property::{FolderShape, ItemShape};
use crate::rendered::RenderedItem;
use crate::soap::{Impersonation, ServerVersionInfo, envelope, parse_envelope};
use crate::stream_pool::StreamPool;
use crate::streaming::NotificationStream;
use crate::throttle::AdaptiveLimit;
use crate::transport::{Routing, Transport, TransportConfig};
use crate::version::ExchangeVersion;
use crate::xml::{Element, ParseLimits};
use exchange_sync_core::BackOffGate;

/// The most items one FindItem page may return (EWSFindCountLimit).
pub const MAX_FIND_PAGE: u32 = 1000;

/// Most FindItem pages one listing reads ([`EwsClient::find_all_items`],
/// [`EwsClient::find_items_where`]): 1,000 pages of 1,000 items, a million items, the most
/// Exchange supports in one folder.
pub const MAX_FIND_ITEM_PAGES: usize = 1000;

/// Most FindFolder pages one listing of a folder's children reads ([`EwsClient::find_folders`]):
/// 100 pages of 1,000 folders, the size of the largest public folder hierarchies Exchange supports.
pub const MAX_FIND_FOLDER_PAGES: usize = 100;

/// Most SyncFolderItems pages [`EwsClient::sync_all_folder_items`] reads: 2,000 pages of 512
/// changes, about a million items, as for FindItem. (The connector reads one page per call; the
/// engine bounds its own loop.)
pub const MAX_SYNC_PAGES: usize = 2000;

/// How long a streaming connection may outlive the lifetime it asked the server for (plus its
/// heartbeat timeout) before the client cuts it: the server closes it itself at the end of its
/// lifetime, so only a server that keeps sending past it meets this bound.
pub const STREAM_LIFETIME_MARGIN: Duration = Duration::from_secs(60);

/// How many mailboxes' throttling states a client keeps before it forgets the idle ones.
const MAX_MAILBOX_STATES: usize = 10_000;

/// How the client retries requests that failed for a passing reason (see the module
/// documentation for who retries what).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (and per batch entry), including the first.
    pub max_attempts: u32,
    /// First delay when the server named none; doubled per attempt, with jitter (each delay is
    /// drawn between half and all of the doubled value).
    pub base_delay: Duration,
    /// Longest delay the client chooses by itself. A delay the server names (BackOffMilliseconds,
    /// Retry-After) is honoured in full, however long.
    pub max_delay: Duration,
    /// Longest server back-off waited out inside a call (default 30 s). A longer one is not
    /// waited: the call returns at once with the throttling error carrying the remaining delay,
    /// and later calls for the same mailbox fail the same way, without sending anything, until
    /// the back-off has ended, so that a caller can park the mailbox and serve others.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(60),
            max_inline_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before the retry that follows failed attempt `attempt` (0 for the first) when the
    /// server named none: exponential, capped by `max_delay`, drawn between half and all of it.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let half = full / 2;
        let jitter =
            rand::Rng::gen_range(&mut rand::thread_rng(), 0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_nanos(jitter)
    }
}

/// What one mailbox shares across every clone of a client: its adaptive concurrency limit and
/// its back-off gate.
#[derive(Debug)]
struct MailboxState {
    limit: Arc<AdaptiveLimit>,
    gate: BackOffGate,
}

/// Configures an [`EwsClient`].
#[derive(Debug)]
pub struct EwsClientBuilder {
    url: String,
    credentials: Credentials,
    transport: TransportConfig,
    version: ExchangeVersion,
    max_concurrency: usize,
    batch_size: usize,
    retry: RetryPolicy,
}

impl EwsClientBuilder {
    /// The credentials (default: none).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The newest schema version to try (default Exchange2016); the client steps down if refused.
    pub fn version(mut self, version: ExchangeVersion) -> Self {
        self.version = version;
        self
    }

    /// Concurrent requests per mailbox at most (default 10, Exchange 2010's EWSMaxConcurrency).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Items per GetItem / CreateItem / UpdateItem / DeleteItem request (default 50).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// TLS, timeouts, limits and tracing.
    pub fn transport(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// Builds the client (no request is sent yet).
    pub fn build(self) -> Result<EwsClient> {
        let transport = Transport::new(&self.url, self.credentials, &self.transport)?;
        Ok(EwsClient {
            shared: Arc::new(Shared {
                transport,
                version: AtomicUsize::new(self.version.index()),
                server_version: Mutex::new(None),
                mailboxes: Mutex::new(HashMap::new()),
                max_concurrency: self.max_concurrency,
                batch_size: self.batch_size,
                batch_now: AtomicUsize::new(self.batch_size),
                retry: self.retry,
                parse_limits: self.transport.parse_limits,
                stream_pool: Arc::new(StreamPool::default()),
            }),
            routing: Routing::default(),
        })
    }
}

struct Shared {
    transport: Transport,
    version: AtomicUsize,
    server_version: Mutex<Option<ServerVersionInfo>>,
    mailboxes: Mutex<HashMap<String, Arc<MailboxState>>>,
    max_concurrency: usize,
    batch_size: usize,
    batch_now: AtomicUsize,
    retry: RetryPolicy,
    parse_limits: crate::xml::ParseLimits,
    stream_pool: Arc<StreamPool>,
}

/// An EWS client acting on one mailbox (its own, an impersonated one, or a public folder mailbox).
#[derive(Clone)]
pub struct EwsClient {
    shared: Arc<Shared>,
    routing: Routing,
}

impl std::fmt::Debug for EwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsClient")
            .field("url", &self.shared.transport.url().as_str())
            .field("routing", &self.routing)
            .field("version", &self.version())
            .finish()
    }
}

/// How the client treats a request when deciding whether to resend it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Affinity {
    None,
    Subscription,
}

impl EwsClient {
    /// Starts configuring a client for an EWS endpoint (`https://host/EWS/Exchange.asmx`).
    pub fn builder(url: impl Into<String>) -> EwsClientBuilder {
        EwsClientBuilder {
            url: url.into(),
            credentials: Credentials::Anonymous,
            transport: TransportConfig::default(),
            version: ExchangeVersion::Exchange2016,
            max_concurrency: 10,
            batch_size: 50,
            retry: RetryPolicy::default(),
        }
    }

    /// A clone acting as another mailbox (ApplicationImpersonation; anchored on that mailbox).
    pub fn impersonating(&self, who: Impersonation) -> Self {
        let mut c = self.clone();
        c.routing = Routing {
            anchor_mailbox: Some(who.mailbox().to_owned()),
            impersonation: Some(who),
            public_folder_mailbox: None,
            backend_cookie: None,
        };
        c
    }

    /// A clone with explicit routing (e.g. a public folder mailbox).
    pub fn with_routing(&self, routing: Routing) -> Self {
        let mut c = self.clone();
        c.routing = routing;
        c
    }

    /// The routing of this client.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The schema version requests are currently sent with.
    pub fn version(&self) -> ExchangeVersion {
        let i = self.shared.version.load(Ordering::Relaxed);
        ExchangeVersion::ALL.get(i).copied().unwrap_or(ExchangeVersion::Exchange2007Sp1)
    }

    /// What the server last said about itself.
    pub fn server_version(&self) -> Option<ServerVersionInfo> {
        self.shared.server_version.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The throttling state of this client's mailbox (keyed by [`Routing::mailbox`], lower case).
    fn mailbox(&self) -> Arc<MailboxState> {
        let key = self.routing.mailbox().unwrap_or("").to_ascii_lowercase();
        let mut states = self.shared.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = states.get(&key) {
            return Arc::clone(state);
        }
        if states.len() >= MAX_MAILBOX_STATES {
            // Forget mailboxes nobody uses now, whose back-off is over and whose limit grew back.
            let max = self.shared.max_concurrency;
            states.retain(|_, s| Arc::strong_count(s) > 1 || s.gate.remaining().is_some() || s.limit.current() < max);
        }
        let state =
            Arc::new(MailboxState { limit: AdaptiveLimit::new(self.shared.max_concurrency), gate: BackOffGate::new() });
        states.insert(key, Arc::clone(&state));
        state
    }

    /// How much is left of the back-off the server asked of this client's mailbox (shared by
    /// every clone acting on it), or `None` when requests may be sent.
    pub fn back_off_remaining(&self) -> Option<Duration> {
        self.mailbox().gate.remaining()
    }

    /// Holds every request to this client's mailbox for `delay` (a throttling answer that did not
    /// come through [`Self::call`], e.g. inside a notification stream).
    pub(crate) fn hold_off(&self, delay: Duration) {
        self.mailbox().gate.close_for(delay);
    }

    /// The context of an error about this client's mailbox.
    fn context(&self, operation: &'static str) -> Box<crate::error::ErrorContext> {
        Box::new(crate::error::ErrorContext {
            operation: Some(operation),
            mailbox: self.routing.mailbox().map(str::to_owned),
            ..Default::default()
        })
    }

    /// Waits until the mailbox's back-off has ended, when it ends within
    /// [`RetryPolicy::max_inline_wait`]; fails at once with [`EwsError::BackingOff`] otherwise.
    async fn await_gate(&self, mailbox: &MailboxState, operation: &'static str) -> Result<()> {
        while let Some(left) = mailbox.gate.remaining() {
            if left > self.shared.retry.max_inline_wait {
                return Err(EwsError::BackingOff { retry_after: left, context: self.context(operation) });
            }
            tracing::debug!(operation, wait_ms = left.as_millis() as u64, "waiting for the mailbox's back-off to end");
            tokio::time::sleep(left).await;
        }
        Ok(())
    }

    /// A throttling answer: the mailbox's concurrency shrinks and its gate closes for the delay
    /// the server named (in full) or, when it named none, a growing delay with jitter. Answers
    /// the back-off now in force.
    fn throttled(&self, mailbox: &MailboxState, operation: &'static str, err: &EwsError, attempt: u32) -> Duration {
        mailbox.limit.on_busy();
        let (delay, named) = match err.retry_after() {
            Some(d) if !d.is_zero() => (d, true),
            _ => (self.shared.retry.backoff(attempt.saturating_sub(1)), false),
        };
        let left = mailbox.gate.close_for(delay);
        tracing::info!(
            operation,
            mailbox = self.routing.mailbox().unwrap_or(""),
            delay_ms = left.as_millis() as u64,
            named_by_server = named,
            code = err.response_code().unwrap_or(""),
            "throttled: no request to this mailbox before the back-off ends"
        );
        left
    }

    /// After a failed attempt: whether to send the request again, having waited (or closed the
    /// mailbox's gate) as the failure asks. Throttling and passing failures are retried up to
    /// [`RetryPolicy::max_attempts`]; a back-off longer than [`RetryPolicy::max_inline_wait`] is
    /// not waited for; a request that may have reached the server is only sent again when
    /// `idempotent`; anything else is final.
    async fn should_retry(
        &self,
        mailbox: &MailboxState,
        operation: &'static str,
        err: &EwsError,
        attempt: u32,
        idempotent: bool,
    ) -> bool {
        let retry = &self.shared.retry;
        match err.kind() {
            // The gate's own answer: nothing was sent, there is nothing to wait for here.
            ErrorKind::Throttled if matches!(err, EwsError::BackingOff { .. }) => false,
            ErrorKind::Throttled => {
                let left = self.throttled(mailbox, operation, err, attempt);
                if left > retry.max_inline_wait {
                    tracing::info!(
                        operation,
                        delay_ms = left.as_millis() as u64,
                        "back-off longer than max_inline_wait: not waited inside the call"
                    );
                    return false;
                }
                // The next attempt waits at the gate.
                attempt < retry.max_attempts
            }
            ErrorKind::Transient | ErrorKind::Indeterminate
                if attempt < retry.max_attempts && (idempotent || err.kind() == ErrorKind::Transient) =>
            {
                let delay = retry.backoff(attempt.saturating_sub(1));
                tracing::debug!(operation, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
                tokio::time::sleep(delay).await;
                true
            }
            _ => false,
        }
    }

    /// The streaming connections shared by this client and its clones: watched folders'
    /// subscriptions travel on them, grouped by mailbox server.
    pub fn stream_pool(&self) -> &Arc<StreamPool> {
        &self.shared.stream_pool
    }

    /// The current adaptive concurrency limit for this client's mailbox.
    pub fn concurrency_limit(&self) -> usize {
        self.mailbox().limit.current()
    }

    /// Sends one request and reads its answer: with `scan` when it reads it (see
    /// `crate::id_scan`), with `parse` over the element tree otherwise.
    async fn attempt<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        scan: &impl Fn(&[u8], ParseLimits) -> Option<(T, Option<ServerVersionInfo>)>,
        parse: &impl Fn(Element) -> Result<T>,
    ) -> Result<(T, Option<String>)> {
        let version = self.version();
        let doc = envelope(version, self.routing.impersonation.as_ref(), body);
        let (status, bytes, cookie) = self
            .shared
            .transport
            .send_and_read(operation, &self.routing, &doc, affinity == Affinity::Subscription)
            .await?;
        if status == 200
            && let Some((value, server_version)) = scan(&bytes, self.shared.parse_limits)
        {
            self.note_server_version(server_version);
            return Ok((value, cookie));
        }
        match parse_envelope(operation, &bytes, self.shared.parse_limits) {
            Ok(r) => {
                self.note_server_version(r.server_version);
                Ok((parse(r.body)?, cookie))
            }
            Err(EwsError::Protocol { .. }) if status != 200 => Err(EwsError::Http {
                status,
                retry_after: None,
                context: Box::new(crate::error::ErrorContext::operation(operation)),
            }),
            Err(e) => Err(e),
        }
    }

    fn note_server_version(&self, version: Option<ServerVersionInfo>) {
        if let Some(v) = version {
            *self.shared.server_version.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
        }
    }

    /// Sends one request with retries for whole-request failures (throttling, transient errors, schema
    /// version), and parses the response. Failures of single entries of a batch are left to the caller.
    async fn call<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        parse: impl Fn(&Element) -> Result<T>,
    ) -> Result<T> {
        self.call_consuming(operation, body, affinity, |b| parse(&b)).await
    }

    /// [`Self::call`] with a parser that consumes the response body (and so can move ids and items
    /// out of it instead of copying them).
    async fn call_consuming<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        parse: impl Fn(Element) -> Result<T>,
    ) -> Result<T> {
        self.call_with_cookie(operation, body, affinity, parse).await.map(|(v, _)| v)
    }

    /// [`Self::call_consuming`], also answering the affinity cookie the successful response set.
    async fn call_with_cookie<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        parse: impl Fn(Element) -> Result<T>,
    ) -> Result<(T, Option<String>)> {
        self.call_scanning(operation, body, affinity, |_, _| None, parse).await
    }

    /// A batch write whose answer is one item id per entry (CreateItem, UpdateItem): scanned for
    /// the ids when every entry succeeded (see `crate::id_scan`), read with `parse` otherwise.
    async fn call_for_ids(
        &self,
        operation: &'static str,
        body: &str,
        parse: fn(Element) -> Result<Vec<Result<ItemId>>>,
    ) -> Result<Vec<Result<ItemId>>> {
        self.call_scanning(operation, body, Affinity::None, scan_ids, parse).await.map(|(ids, _)| ids)
    }

    /// [`Self::call_with_cookie`], reading the answer with `scan` when it can (see
    /// `crate::id_scan`) and with `parse` when `scan` gives `None`.
    async fn call_scanning<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        scan: impl Fn(&[u8], ParseLimits) -> Option<(T, Option<ServerVersionInfo>)>,
        parse: impl Fn(Element) -> Result<T>,
    ) -> Result<(T, Option<String>)> {
        let mailbox = self.mailbox();
        // A request that may have reached the server is only sent again when doing so twice is
        // harmless (reads, subscriptions); a write's unknown outcome goes to the caller.
        let idempotent = !matches!(operation, "CreateItem" | "UpdateItem" | "DeleteItem" | "CreateFolder");
        let mut attempt = 0;
        loop {
            self.await_gate(&mailbox, operation).await?;
            let permit = mailbox.limit.acquire().await;
            if mailbox.gate.remaining().is_some() {
                // Another request was told to back off while this one waited for a slot.
                continue;
            }
            attempt += 1;
            let result = self.attempt(operation, body, affinity, &scan, &parse).await;
            drop(permit);
            let err = match result {
                Ok(v) => {
                    mailbox.limit.on_success();
                    return Ok(v);
                }
                Err(e) => e,
            };
            if err.kind() == ErrorKind::UnsupportedVersion {
                let current = self.version();
                if let Some(older) = current.older() {
                    tracing::info!(
                        operation,
                        from = current.as_str(),
                        to = older.as_str(),
                        "server refused schema version; stepping down"
                    );
                    let _ = self.shared.version.compare_exchange(
                        current.index(),
                        older.index(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    continue;
                }
            }
            if !self.should_retry(&mailbox, operation, &err, attempt, idempotent).await {
                return Err(err.with_mailbox(self.routing.mailbox()));
            }
        }
    }

    /// Runs a batched operation over `inputs`, `batch_size` per request, and retries what single
    /// entries report, never at once: throttled entries after the mailbox's back-off (see
    /// [`Self::throttled`]; a back-off longer than [`RetryPolicy::max_inline_wait`] fails them
    /// without waiting), entries stopped by ErrorBatchProcessingStopped or failed for a passing
    /// reason one by one after a growing delay with jitter, and batches that timed out or whose
    /// answer was too large split in halves.
    async fn batched<I, O, F, Fut>(&self, operation: &'static str, inputs: &[I], send: F) -> Result<Vec<Result<O>>>
    where
        I: Clone,
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Result<Vec<Result<O>>>>,
    {
        let retry = &self.shared.retry;
        let mailbox = self.mailbox();
        let mut results: Vec<Option<Result<O>>> = (0..inputs.len()).map(|_| None).collect();
        let mut attempts = vec![0u32; inputs.len()];
        // The batch size adapts across calls: halved when the server times out, grown back by one
        // after a call without timeouts.
        let mut size = self.shared.batch_now.load(Ordering::Relaxed).clamp(1, self.shared.batch_size);
        let mut timed_out = false;
        // Each queued batch says whether it must stay a single entry (retries after
        // ErrorBatchProcessingStopped); the others are re-cut when the size shrinks.
        let mut queue: VecDeque<(Vec<usize>, bool)> =
            (0..inputs.len()).collect::<Vec<_>>().chunks(size).map(|c| (c.to_vec(), false)).collect();
        while let Some((batch, single)) = queue.pop_front() {
            if let Err(e) = self.await_gate(&mailbox, operation).await {
                for i in batch {
                    results[i] = Some(Err(e.clone()));
                }
                continue;
            }
            let chunk: Vec<I> = batch.iter().map(|i| inputs[*i].clone()).collect();
            for i in &batch {
                attempts[*i] += 1;
            }
            let first = attempts[batch[0]];
            match send(chunk).await {
                // The server ran out of time, or its answer passed the body limit: smaller batches.
                Err(e) if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::LimitExceeded) && batch.len() > 1 => {
                    timed_out = true;
                    size = (batch.len() / 2).max(1);
                    self.shared.batch_now.store(size, Ordering::Relaxed);
                    tracing::debug!(size, error = %e, "batch failed as a whole; smaller batches from now on");
                    let mut pending: Vec<usize> = batch;
                    let mut kept = VecDeque::new();
                    for (b, one) in queue.drain(..) {
                        if one { kept.push_back((b, true)) } else { pending.extend(b) }
                    }
                    queue = pending.chunks(size).map(|c| (c.to_vec(), false)).collect();
                    queue.extend(kept);
                    if e.kind() == ErrorKind::Timeout {
                        tokio::time::sleep(retry.backoff(0)).await;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Timeout && first < retry.max_attempts => {
                    tokio::time::sleep(retry.backoff(first - 1)).await;
                    queue.push_front((batch, single))
                }
                Err(e) => {
                    for i in batch {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                // One failed message for a whole batch: the server refused the request as a whole
                // (ErrorServerBusy in message form): nothing was processed, so retry it all once
                // the back-off has ended.
                Ok(mut entries)
                    if entries.len() == 1
                        && batch.len() > 1
                        && entries[0].as_ref().is_err_and(|e| e.kind() == ErrorKind::Throttled) =>
                {
                    if let Some(Err(e)) = entries.pop() {
                        self.throttled(&mailbox, operation, &e, first);
                        if first >= retry.max_attempts {
                            for i in batch {
                                results[i] = Some(Err(e.clone()));
                            }
                            continue;
                        }
                    }
                    queue.push_front((batch, single));
                }
                Ok(entries) if entries.len() != batch.len() => {
                    let e = EwsError::protocol(
                        "batch",
                        format!("{} responses for {} requests", entries.len(), batch.len()),
                    );
                    for i in batch {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                Ok(entries) => {
                    let mut wait: Option<Duration> = None;
                    let mut again = Vec::new();
                    for (i, entry) in batch.into_iter().zip(entries) {
                        match entry {
                            Err(e) if e.kind().is_retryable() && attempts[i] < retry.max_attempts => {
                                if e.kind() == ErrorKind::Throttled {
                                    // The next request waits at the mailbox's gate.
                                    self.throttled(&mailbox, operation, &e, attempts[i]);
                                    again.push(i);
                                } else {
                                    // Stopped, timed-out and failed entries are retried one by
                                    // one, after a delay.
                                    let d = retry.backoff(attempts[i] - 1);
                                    tracing::debug!(
                                        operation,
                                        attempt = attempts[i],
                                        delay_ms = d.as_millis() as u64,
                                        error = %e,
                                        "retrying a batch entry"
                                    );
                                    wait = Some(wait.map_or(d, |w| w.max(d)));
                                    queue.push_back((vec![i], true));
                                }
                            }
                            other => results[i] = Some(other),
                        }
                    }
                    if let Some(d) = wait {
                        tokio::time::sleep(d).await;
                    }
                    for part in again.chunks(size.max(1)) {
                        queue.push_back((part.to_vec(), single));
                    }
                }
            }
        }
        if !timed_out && size < self.shared.batch_size {
            let _ = self.shared.batch_now.compare_exchange(size, size + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EwsError::protocol("batch", "entry not processed"))))
            .collect())
    }

    // ----- folders -----

    /// GetFolder for several folders, one result each.
    pub async fn get_folders(&self, folders: &[FolderRef], shape: &FolderShape) -> Result<Vec<Result<Folder>>> {
        let r = self
            .batched("GetFolder", folders, |chunk| {
                let body = folders::get_folder_request(&chunk, shape);
                async move { self.call("GetFolder", &body, Affinity::None, folders::parse_get_folder).await }
            })
            .await?;
        Ok(r.into_iter().zip(folders).map(|(r, f)| r.map_err(|e| e.with_folder(f.describe()))).collect())
    }

    /// GetFolder for one folder.
    pub async fn get_folder(&self, folder: &FolderRef, shape: &FolderShape) -> Result<Folder> {
        self.get_folders(std::slice::from_ref(folder), shape)
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(EwsError::protocol("GetFolder", "no response message")))
            .map_err(|e| e.with_mailbox(self.routing.mailbox()))
    }

    /// The server id of a folder (GetFolder, IdOnly): how a distinguished folder (`contacts`,
    /// another mailbox's `calendar`, ...) or a folder id is known by the server right now. The
    /// change key is left out: it changes with the folder's own properties, the id does not.
    /// A folder deleted and created again under the same name has another id.
    pub async fn folder_id(&self, folder: &FolderRef) -> Result<FolderId> {
        let shape = FolderShape { base: crate::property::BaseShape::IdOnly, additional: Vec::new() };
        let f = self.get_folder(folder, &shape).await?;
        Ok(FolderId::new(f.id.id))
    }

    /// FindFolder: every child of `parent` (all pages).
    pub async fn find_folders(
        &self,
        parent: &FolderRef,
        shape: &FolderShape,
        traversal: Traversal,
    ) -> Result<Vec<Folder>> {
        let mut out = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_FIND_FOLDER_PAGES {
            let body = folders::find_folder_request(parent, shape, traversal, offset, MAX_FIND_PAGE);
            let page = self
                .call("FindFolder", &body, Affinity::None, folders::parse_find_folder)
                .await
                .map_err(|e| e.with_folder(parent.describe()))?;
            let n = check_page("FindFolder", page.folders.len(), MAX_FIND_PAGE)
                .map_err(|e| e.with_folder(parent.describe()))?;
            out.extend(page.folders);
            if page.includes_last || n == 0 {
                return Ok(out);
            }
            offset =
                next_offset("FindFolder", offset, page.next_offset, n).map_err(|e| e.with_folder(parent.describe()))?;
        }
        Err(too_many_pages("FindFolder", MAX_FIND_FOLDER_PAGES, MAX_FIND_PAGE).with_folder(parent.describe()))
    }

    /// Resolves a folder by its display-name path below `root` (e.g. `Company Contacts/EMEA` below
    /// `publicfoldersroot`), one shallow FindFolder per level: the only traversal public folders
    /// support, and cheap on large trees. Names compare case-insensitively, as Exchange does.
    pub async fn folder_by_path(&self, root: &FolderRef, path: &str) -> Result<Folder> {
        let mut parent = root.clone();
        let mut found: Option<Folder> = None;
        for segment in path.split('/').map(str::trim).filter(|s| !s.is_empty()) {
            let children = self.find_folders(&parent, &FolderShape::default(), Traversal::Shallow).await?;
            let folder = children
                .into_iter()
                .find(|f| f.display_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(segment)))
                .ok_or_else(|| EwsError::Response {
                    code: "ErrorFolderNotFound".into(),
                    message: format!("no folder named {segment:?}"),
                    inner_code: None,
                    back_off: None,
                    context: Box::new(crate::error::ErrorContext {
                        operation: Some("FindFolder"),
                        mailbox: self.routing.mailbox().map(str::to_owned),
                        folder: Some(path.to_owned()),
                        item: None,
                    }),
                })?;
            parent = FolderRef::Id(folder.id.clone());
            found = Some(folder);
        }
        match found {
            Some(f) => Ok(f),
            None => self.get_folder(root, &FolderShape::default()).await,
        }
    }

    /// CreateFolder: one folder of a class (`IPF.Contact`, `IPF.Appointment`, `IPF.Task`,
    /// `IPF.StickyNote`) under `parent`.
    pub async fn create_folder(&self, parent: &FolderRef, display_name: &str, folder_class: &str) -> Result<Folder> {
        let body = folders::create_folder_request(parent, display_name, folder_class);
        self.call("CreateFolder", &body, Affinity::None, folders::parse_create_folder)
            .await
            .map_err(|e| e.with_folder(parent.describe()))
    }

    // ----- items -----

    /// FindItem: one page of a folder (`max` is capped at 1000).
    pub async fn find_items_page(
        &self,
        folder: &FolderRef,
        shape: &ItemShape,
        restriction: Option<&Restriction>,
        offset: u32,
        max: u32,
    ) -> Result<ItemPage> {
        let max = max.clamp(1, MAX_FIND_PAGE);
        let body = items::find_item_request(folder, shape, restriction, offset, max);
        self.call_consuming("FindItem", &body, Affinity::None, |b| {
            let page = items::parse_find_item(b)?;
            check_page("FindItem", page.items.len(), max)?;
            Ok(page)
        })
        .await
        .map_err(|e| e.with_folder(folder.describe()).with_mailbox(self.routing.mailbox()))
    }

    /// FindItem with a `CalendarView`: the items and occurrences of recurring series of a
    /// calendar folder overlapping `[start, end)`, at most `max` (capped at 1000).
    pub async fn find_calendar_view(
        &self,
        folder: &FolderRef,
        shape: &ItemShape,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        max: u32,
    ) -> Result<ItemPage> {
        let max = max.clamp(1, MAX_FIND_PAGE);
        let body = items::calendar_view_request(folder, shape, start, end, max);
        self.call_consuming("FindItem", &body, Affinity::None, items::parse_find_item)
            .await
            .map_err(|e| e.with_folder(folder.describe()).with_mailbox(self.routing.mailbox()))
    }

    /// FindItem over all pages of a folder.
    pub async fn find_all_items(&self, folder: &FolderRef, shape: &ItemShape) -> Result<Vec<EwsItem>> {
        self.find_items_where(folder, shape, None).await
    }

    /// FindItem over all pages of a folder with a restriction.
    pub async fn find_items_where(
        &self,
        folder: &FolderRef,
        shape: &ItemShape,
        restriction: Option<&Restriction>,
    ) -> Result<Vec<EwsItem>> {
        let mut out = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_FIND_ITEM_PAGES {
            let page = self.find_items_page(folder, shape, restriction, offset, MAX_FIND_PAGE).await?;
            let n = page.items.len() as u32;
            out.extend(page.items);
            if page.includes_last || n == 0 {
                return Ok(out);
            }
            offset =
                next_offset("FindItem", offset, page.next_offset, n).map_err(|e| e.with_folder(folder.describe()))?;
        }
        Err(too_many_pages("FindItem", MAX_FIND_ITEM_PAGES, MAX_FIND_PAGE).with_folder(folder.describe()))
    }

    /// GetItem, batched; one result per id, in order.
    pub async fn get_items(&self, ids: &[ItemId], shape: &ItemShape) -> Result<Vec<Result<EwsItem>>> {
        let r = self
            .batched("GetItem", ids, |chunk| {
                let body = items::get_item_request(&chunk, shape);
                async move { self.call_consuming("GetItem", &body, Affinity::None, items::parse_get_item).await }
            })
            .await?;
        Ok(with_item_context(r, ids, self.routing.mailbox()))
    }

    /// CreateItem, batched, in one folder; one new id per draft, in order. Never sends mail or
    /// invitations. A lost connection after sending is reported as [`ErrorKind::Indeterminate`] and not
    /// resent (the item may exist: look it up before creating it again).
    pub async fn create_items(&self, folder: &FolderRef, drafts: &[ItemDraft]) -> Result<Vec<Result<ItemId>>> {
        let version = self.version();
        let rendered: Vec<RenderedItem> = drafts.iter().map(|d| RenderedItem::of(&d.for_version(version))).collect();
        self.create_rendered_items(folder, &rendered).await
    }

    /// CreateItem for items rendered beforehand ([`RenderedItem`], for the version the client
    /// speaks: see [`ItemDraft::for_version`]), batched like [`EwsClient::create_items`]: the way
    /// to write one item into many mailboxes without mapping and writing it once per mailbox.
    ///
    /// A create the server confirmed without an id ([`Created::IdUnknown`], Exchange Online) is a
    /// protocol error here; [`EwsClient::create_rendered`] answers it as what it is.
    pub async fn create_rendered_items(
        &self,
        folder: &FolderRef,
        rendered: &[RenderedItem],
    ) -> Result<Vec<Result<ItemId>>> {
        Ok(self
            .create_rendered(folder, rendered)
            .await?
            .into_iter()
            .map(|r| {
                r?.into_id().ok_or_else(|| {
                    EwsError::protocol("CreateItem", "the item was created but the server answered no id")
                        .with_folder(folder.describe())
                        .with_mailbox(self.routing.mailbox())
                })
            })
            .collect())
    }

    /// CreateItem for items rendered beforehand, batched like [`EwsClient::create_rendered_items`],
    /// answering per item what the server said: [`Created::Item`] with the new id, or
    /// [`Created::IdUnknown`] when it confirmed the create without an id (Exchange Online may: the
    /// item exists; look it up by a property written with it, never create it again). A lost
    /// answer is [`ErrorKind::Indeterminate`], as for [`EwsClient::create_items`].
    pub async fn create_rendered(&self, folder: &FolderRef, rendered: &[RenderedItem]) -> Result<Vec<Result<Created>>> {
        self.batched("CreateItem", rendered, |chunk| {
            let body = items::create_rendered_request(folder, &chunk);
            async move { self.call_for_created("CreateItem", &body).await }
        })
        .await
        .map(|r| {
            r.into_iter()
                .map(|e| e.map_err(|e| e.with_folder(folder.describe()).with_mailbox(self.routing.mailbox())))
                .collect()
        })
    }

    /// A CreateItem answer read for [`Created`] outcomes: scanned for ids when every message
    /// names an item with one (see `crate::id_scan`: an empty `m:Items` is not that case), read
    /// in full otherwise.
    async fn call_for_created(&self, operation: &'static str, body: &str) -> Result<Vec<Result<Created>>> {
        let scan = |bytes: &[u8], limits: ParseLimits| {
            scan_ids(bytes, limits)
                .map(|(ids, version)| (ids.into_iter().map(|r| r.map(Created::Item)).collect(), version))
        };
        self.call_scanning(operation, body, Affinity::None, scan, items::parse_create_item_outcomes)
            .await
            .map(|(created, _)| created)
    }

    /// UpdateItem, batched; each change is guarded by its change key (a stale key gives
    /// [`ErrorKind::PreconditionFailed`]). Returns the new id and change key per change.
    pub async fn update_items(&self, changes: &[ItemChange]) -> Result<Vec<Result<ItemId>>> {
        let ids: Vec<ItemId> = changes.iter().map(|c| c.id.clone()).collect();
        let r = self
            .batched("UpdateItem", changes, |chunk| {
                let version = self.version();
                let chunk: Vec<ItemChange> = chunk.iter().map(|c| c.for_version(version)).collect();
                let body = items::update_item_request(&chunk);
                async move { self.call_for_ids("UpdateItem", &body, items::parse_update_item).await }
            })
            .await?;
        Ok(with_item_context(r, &ids, self.routing.mailbox()))
    }

    /// DeleteItem, batched; one result per id.
    pub async fn delete_items(&self, ids: &[ItemId], delete_type: DeleteType) -> Result<Vec<Result<()>>> {
        let r = self
            .batched("DeleteItem", ids, |chunk| {
                let body = items::delete_item_request(&chunk, delete_type);
                async move { self.call("DeleteItem", &body, Affinity::None, items::parse_delete_item).await }
            })
            .await?;
        Ok(with_item_context(r, ids, self.routing.mailbox()))
    }

    /// MoveItem, batched: moves items into `to` (a folder of the same mailbox: a public folder
    /// or another mailbox is answered without ids). One result per id: the moved item's new id
    /// and change key (EWS gives a moved item a new id), or `None` when the server answered none.
    /// Asks for the new ids explicitly (`ReturnNewItemIds`) from Exchange 2010 SP1 on.
    pub async fn move_items(&self, ids: &[ItemId], to: &FolderRef) -> Result<Vec<Result<Option<ItemId>>>> {
        let r = self
            .batched("MoveItem", ids, |chunk| {
                let return_new_ids = self.version() >= ExchangeVersion::Exchange2010Sp1;
                let body = items::move_item_request(&chunk, to, return_new_ids);
                async move { self.call_consuming("MoveItem", &body, Affinity::None, items::parse_move_item).await }
            })
            .await?;
        Ok(with_item_context(r, ids, self.routing.mailbox())
            .into_iter()
            .map(|r| r.map_err(|e| e.with_folder(to.describe())))
            .collect())
    }

    // ----- sync -----

    /// SyncFolderItems: one page of changes since `sync_state`. An invalid state gives
    /// [`ErrorKind::InvalidSyncState`]: start over without one and diff.
    pub async fn sync_folder_items(
        &self,
        folder: &FolderRef,
        shape: &ItemShape,
        sync_state: Option<&str>,
        max_changes: u32,
    ) -> Result<ItemSyncPage> {
        let max_changes = max_changes.clamp(1, sync::MAX_SYNC_CHANGES);
        let body = sync::sync_folder_items_request(folder, shape, sync_state, max_changes);
        let page = self
            .call_consuming("SyncFolderItems", &body, Affinity::None, |b| {
                let page = sync::parse_sync_folder_items(b)?;
                check_page("SyncFolderItems", page.changes.len(), max_changes)?;
                Ok(page)
            })
            .await
            .map_err(|e| e.with_folder(folder.describe()))?;
        if !page.includes_last && sync_state == Some(page.sync_state.as_str()) {
            return Err(EwsError::protocol(
                "SyncFolderItems",
                "paging does not advance: the server answered the sync state it was sent, with more to come",
            )
            .with_folder(folder.describe()));
        }
        Ok(page)
    }

    /// SyncFolderItems until IncludesLastItemInRange: all changes since `sync_state` and the new state.
    pub async fn sync_all_folder_items(
        &self,
        folder: &FolderRef,
        shape: &ItemShape,
        sync_state: Option<&str>,
    ) -> Result<(Vec<ItemChangeEvent>, String)> {
        let mut state = sync_state.map(str::to_owned);
        let mut changes = Vec::new();
        for _ in 0..MAX_SYNC_PAGES {
            let page = self.sync_folder_items(folder, shape, state.as_deref(), sync::MAX_SYNC_CHANGES).await?;
            changes.extend(page.changes);
            let done = page.includes_last;
            state = Some(page.sync_state);
            if done {
                return Ok((changes, state.unwrap_or_default()));
            }
        }
        Err(too_many_pages("SyncFolderItems", MAX_SYNC_PAGES, sync::MAX_SYNC_CHANGES).with_folder(folder.describe()))
    }

    /// SyncFolderHierarchy: one page of folder changes below `folder` (or the whole mailbox).
    pub async fn sync_folder_hierarchy(
        &self,
        shape: &FolderShape,
        folder: Option<&FolderRef>,
        sync_state: Option<&str>,
    ) -> Result<FolderSyncPage> {
        let body = sync::sync_folder_hierarchy_request(shape, folder, sync_state);
        self.call("SyncFolderHierarchy", &body, Affinity::None, sync::parse_sync_folder_hierarchy).await
    }

    // ----- notifications -----

    /// Subscribe to item events in folders (pull or streaming).
    pub async fn subscribe(
        &self,
        folders: &[FolderRef],
        events: &[EventKind],
        kind: &SubscriptionKind,
    ) -> Result<Subscription> {
        let body = notifications::subscribe_request(folders, events, kind);
        self.call("Subscribe", &body, Affinity::Subscription, notifications::parse_subscribe).await
    }

    /// Subscribe asking for server affinity, answering the subscription and the
    /// `X-BackEndOverrideCookie` naming the mailbox server that holds it (None when the server
    /// sends none, e.g. before Exchange 2013). Subscriptions with the same cookie can share one
    /// GetStreamingEvents connection sent with that cookie (see [`Routing::backend_cookie`]).
    pub async fn subscribe_with_affinity(
        &self,
        folders: &[FolderRef],
        events: &[EventKind],
        kind: &SubscriptionKind,
    ) -> Result<(Subscription, Option<String>)> {
        let body = notifications::subscribe_request(folders, events, kind);
        self.call_with_cookie("Subscribe", &body, Affinity::Subscription, |b| notifications::parse_subscribe(&b)).await
    }

    /// GetEvents: the events of a pull subscription since a watermark.
    pub async fn get_events(&self, subscription_id: &str, watermark: &str) -> Result<Notification> {
        let body = notifications::get_events_request(subscription_id, watermark);
        self.call("GetEvents", &body, Affinity::Subscription, notifications::parse_get_events).await
    }

    /// GetStreamingEvents: opens a streaming connection (1..30 minutes) and yields each envelope as it
    /// arrives. If nothing (not even a heartbeat) arrives within `heartbeat_timeout`, the stream yields
    /// [`EwsError::StreamStalled`] and ends; reconnect with the same subscriptions.
    ///
    /// The connection is not bound by [`TransportConfig::request_timeout`]: it lives the lifetime
    /// it asks for, plus the heartbeat timeout and [`STREAM_LIFETIME_MARGIN`], so that only a
    /// server sending past its own lifetime is cut. Opening it is retried like any request (the
    /// mailbox's back-off included); what happens on the open stream is the caller's.
    pub async fn get_streaming_events(
        &self,
        subscription_ids: &[String],
        connection_timeout_minutes: u32,
        heartbeat_timeout: Duration,
    ) -> Result<NotificationStream> {
        const OPERATION: &str = "GetStreamingEvents";
        let minutes = connection_timeout_minutes.clamp(1, 30);
        let body = notifications::get_streaming_events_request(subscription_ids, minutes);
        let doc = envelope(self.version(), self.routing.impersonation.as_ref(), &body);
        let lifetime = Duration::from_secs(60 * u64::from(minutes)) + heartbeat_timeout + STREAM_LIFETIME_MARGIN;
        let mailbox = self.mailbox();
        let mut attempt = 0;
        loop {
            self.await_gate(&mailbox, OPERATION).await.map_err(|e| e.with_mailbox(self.routing.mailbox()))?;
            attempt += 1;
            let err = match self.shared.transport.send(OPERATION, &self.routing, &doc, true, lifetime).await {
                Ok(response) => {
                    return Ok(NotificationStream::new(response, heartbeat_timeout, self.shared.parse_limits));
                }
                Err(e) => e,
            };
            if !self.should_retry(&mailbox, OPERATION, &err, attempt, true).await {
                return Err(err.with_mailbox(self.routing.mailbox()));
            }
        }
    }

    /// Unsubscribe (pull and streaming subscriptions).
    pub async fn unsubscribe(&self, subscription_id: &str) -> Result<()> {
        let body = notifications::unsubscribe_request(subscription_id);
        self.call("Unsubscribe", &body, Affinity::Subscription, notifications::parse_unsubscribe).await
    }

    // ----- directory -----

    /// ExpandDL: the members of a distribution list.
    pub async fn expand_dl(&self, email_address: &str) -> Result<Vec<Mailbox>> {
        let body = directory::expand_dl_request(email_address);
        self.call("ExpandDL", &body, Affinity::None, directory::parse_expand_dl).await
    }
}

/// A page's size checked against what was asked: a server answering more than that is refused
/// (it would make a listing's size depend on the server alone). Answers the size.
fn check_page(operation: &'static str, got: usize, asked: u32) -> Result<u32> {
    if got > asked as usize {
        return Err(EwsError::protocol(
            operation,
            format!("the server answered {got} entries for a page of at most {asked}"),
        ));
    }
    Ok(got as u32)
}

/// The offset of the next page of an indexed listing, which must move forward.
fn next_offset(operation: &'static str, offset: u32, named: Option<u32>, got: u32) -> Result<u32> {
    let next = named.unwrap_or(offset.saturating_add(got));
    if next <= offset {
        return Err(EwsError::protocol(
            operation,
            format!("paging does not advance: the server named offset {next} after offset {offset}"),
        ));
    }
    Ok(next)
}

/// The error of a listing that reached its page bound.
fn too_many_pages(operation: &'static str, pages: usize, per_page: u32) -> EwsError {
    EwsError::limit(
        operation,
        format!(
            "the listing did not end within {pages} pages of up to {per_page} entries (the client's bound; \
             a larger folder, or a server that never says it is done)"
        ),
    )
}

fn with_item_context<T>(results: Vec<Result<T>>, ids: &[ItemId], mailbox: Option<&str>) -> Vec<Result<T>> {
    results
        .into_iter()
        .zip(ids)
        .map(|(r, id)| r.map_err(|e| e.with_item(id.id.clone()).with_mailbox(mailbox)))
        .collect()
}

/// The ids of a batch answer whose every message succeeded (see `crate::id_scan`), as the
/// batch parsers answer them.
fn scan_ids(bytes: &[u8], limits: ParseLimits) -> Option<(Vec<Result<ItemId>>, Option<ServerVersionInfo>)> {
    let scanned = crate::id_scan::scan_item_ids(bytes, limits)?;
    Some((scanned.ids.into_iter().map(Ok).collect(), scanned.server_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_delays_grow_with_jitter_under_the_cap() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let first = p.backoff(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = p.backoff(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let capped = p.backoff(10);
            assert!(capped >= Duration::from_millis(2500) && capped <= Duration::from_secs(5), "{capped:?}");
            seen.insert(first);
        }
        assert!(seen.len() > 10, "the delays are jittered: {seen:?}");
    }

    fn offline_client(batch_size: usize) -> EwsClient {
        EwsClient::builder("http://127.0.0.1:9/EWS/Exchange.asmx")
            .batch_size(batch_size)
            .retry(RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                ..RetryPolicy::default()
            })
            .build()
            .unwrap()
    }

    fn response_error(code: &str) -> EwsError {
        EwsError::Response {
            code: code.into(),
            message: String::new(),
            inner_code: None,
            back_off: Some(Duration::from_millis(1)),
            context: Box::default(),
        }
    }

    /// A fake server for `batched`: answers each request from a script keyed by attempt, recording
    /// the batches it was sent.
    #[tokio::test]
    async fn batches_retry_only_what_failed() {
        let client = offline_client(4);
        let inputs: Vec<u32> = (0..6).collect();
        let sent = std::sync::Mutex::new(Vec::<Vec<u32>>::new());
        let busy_once = std::sync::Mutex::new(true);
        let results = client
            .batched("test", &inputs, |chunk: Vec<u32>| {
                sent.lock().unwrap().push(chunk.clone());
                let mut busy = busy_once.lock().unwrap();
                let first_round = std::mem::replace(&mut *busy, false);
                let answer: Vec<Result<u32>> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match (first_round, i) {
                        (true, 1) => Err(response_error("ErrorServerBusy")),
                        (true, 2) => Err(response_error("ErrorSomethingPermanent")),
                        (true, _) if i >= 3 => Err(response_error("ErrorBatchProcessingStopped")),
                        _ => Ok(v * 10),
                    })
                    .collect();
                async move { Ok(answer) }
            })
            .await
            .unwrap();
        let values: Vec<_> = results.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(values, vec![Some(0), Some(10), None, Some(30), Some(40), Some(50)]);
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent[0], vec![0, 1, 2, 3], "first batch");
        assert!(sent.contains(&vec![3]), "a stopped entry is retried alone: {sent:?}");
        assert_eq!(sent.iter().flatten().filter(|v| **v == 0).count(), 1, "successes are never resent: {sent:?}");
        assert_eq!(sent.iter().flatten().filter(|v| **v == 2).count(), 1, "permanent failures are not retried");
    }

    #[tokio::test]
    async fn timed_out_batches_are_split() {
        let client = offline_client(8);
        let inputs: Vec<u32> = (0..8).collect();
        let sizes = std::sync::Mutex::new(Vec::new());
        let results = client
            .batched("test", &inputs, |chunk: Vec<u32>| {
                sizes.lock().unwrap().push(chunk.len());
                let r = if chunk.len() > 2 {
                    Err(response_error("ErrorTimeoutExpired"))
                } else {
                    Ok(chunk.iter().map(|v| Ok(*v)).collect())
                };
                async move { r }
            })
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        let sizes = sizes.into_inner().unwrap();
        assert_eq!(&sizes[..3], &[8, 4, 2], "halved until it fits: {sizes:?}");
        assert!(sizes.iter().all(|s| *s <= 2 || *s == 8 || *s == 4), "{sizes:?}");
        assert_eq!(sizes.iter().filter(|s| **s == 4).count(), 1, "the rest is cut small at once: {sizes:?}");
        // The next call starts from the smaller size and grows back slowly.
        let again = std::sync::Mutex::new(Vec::new());
        client
            .batched("test", &inputs, |chunk: Vec<u32>| {
                again.lock().unwrap().push(chunk.len());
                async move { Ok(chunk.iter().map(|v| Ok(*v)).collect()) }
            })
            .await
            .unwrap();
        assert_eq!(again.into_inner().unwrap()[0], 2);
        assert_eq!(client.shared.batch_now.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn credentials_in_url_are_refused() {
        let r = EwsClient::builder("https://user:pw@host/EWS/Exchange.asmx").build();
        let e = r.unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
