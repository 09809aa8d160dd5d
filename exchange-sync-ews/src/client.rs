//! [`EwsClient`]: one async method per EWS operation, with retries, throttling, version negotiation
//! and batching handled inside.
//!
//! The client is cheap to clone; clones share the HTTP connection pool, the negotiated version and the
//! per-mailbox concurrency limits. [`EwsClient::impersonating`] and [`EwsClient::with_routing`] return
//! clones that act on another mailbox.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Credentials;
use crate::error::{ErrorKind, EwsError, Result};
use crate::folder::Folder;
use crate::ids::{FolderRef, ItemId};
use crate::item::{EwsItem, ItemChange, ItemDraft};
use crate::notification::{EventKind, Notification};
use crate::operation::directory::{self, Mailbox};
use crate::operation::folders::{self, Traversal};
use crate::operation::items::{self, DeleteType, ItemPage, Restriction};
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

/// The most items one FindItem page may return (EWSFindCountLimit).
pub const MAX_FIND_PAGE: u32 = 1000;

/// How the client retries requests that failed for a passing reason.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (and per batch entry), including the first.
    pub max_attempts: u32,
    /// First delay when the server gave none; doubled per attempt.
    pub base_delay: Duration,
    /// Longest delay honoured (a BackOffMilliseconds above it is cut to it).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, server: Option<Duration>) -> Duration {
        let computed = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        server.unwrap_or(computed).min(self.max_delay)
    }
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
                limits: Mutex::new(HashMap::new()),
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
    limits: Mutex<HashMap<String, Arc<AdaptiveLimit>>>,
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

    fn limit(&self) -> Arc<AdaptiveLimit> {
        let key = self.routing.mailbox().unwrap_or("").to_ascii_lowercase();
        let mut limits = self.shared.limits.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(limits.entry(key).or_insert_with(|| AdaptiveLimit::new(self.shared.max_concurrency)))
    }

    /// The streaming connections shared by this client and its clones: watched folders'
    /// subscriptions travel on them, grouped by mailbox server.
    pub fn stream_pool(&self) -> &Arc<StreamPool> {
        &self.shared.stream_pool
    }

    /// The current adaptive concurrency limit for this client's mailbox.
    pub fn concurrency_limit(&self) -> usize {
        self.limit().current()
    }

    /// Sends one request and reads its answer: with `scan` when it reads it (see
    /// [`crate::id_scan`]), with `parse` over the element tree otherwise.
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
    /// the ids when every entry succeeded (see [`crate::id_scan`]), read with `parse` otherwise.
    async fn call_for_ids(
        &self,
        operation: &'static str,
        body: &str,
        parse: fn(Element) -> Result<Vec<Result<ItemId>>>,
    ) -> Result<Vec<Result<ItemId>>> {
        self.call_scanning(operation, body, Affinity::None, scan_ids, parse).await.map(|(ids, _)| ids)
    }

    /// [`Self::call_with_cookie`], reading the answer with `scan` when it can (see
    /// [`crate::id_scan`]) and with `parse` when `scan` gives `None`.
    async fn call_scanning<T>(
        &self,
        operation: &'static str,
        body: &str,
        affinity: Affinity,
        scan: impl Fn(&[u8], ParseLimits) -> Option<(T, Option<ServerVersionInfo>)>,
        parse: impl Fn(Element) -> Result<T>,
    ) -> Result<(T, Option<String>)> {
        let limit = self.limit();
        let retry = &self.shared.retry;
        let mut attempt = 0;
        loop {
            let permit = limit.acquire().await;
            let result = self.attempt(operation, body, affinity, &scan, &parse).await;
            drop(permit);
            let err = match result {
                Ok(v) => {
                    limit.on_success();
                    return Ok(v);
                }
                Err(e) => e,
            };
            attempt += 1;
            let kind = err.kind();
            if kind == ErrorKind::UnsupportedVersion {
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
            // A request that may have reached the server is only sent again when doing so twice
            // is harmless (reads, subscriptions); a write's unknown outcome goes to the caller.
            let idempotent = !matches!(operation, "CreateItem" | "UpdateItem" | "DeleteItem" | "CreateFolder");
            let passing = matches!(kind, ErrorKind::Throttled | ErrorKind::Transient)
                || (kind == ErrorKind::Indeterminate && idempotent);
            let again = passing && attempt < retry.max_attempts;
            if !again {
                return Err(err.with_mailbox(self.routing.mailbox()));
            }
            if kind == ErrorKind::Throttled {
                limit.on_busy();
            }
            let delay = retry.delay(attempt - 1, err.retry_after());
            tracing::debug!(operation, attempt, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Runs a batched operation over `inputs`, `batch_size` per request, and retries what single
    /// entries report: throttled entries after their back-off, entries stopped by
    /// ErrorBatchProcessingStopped one by one, and timed-out batches split in halves.
    async fn batched<I, O, F, Fut>(&self, inputs: &[I], send: F) -> Result<Vec<Result<O>>>
    where
        I: Clone,
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Result<Vec<Result<O>>>>,
    {
        let retry = &self.shared.retry;
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
            let chunk: Vec<I> = batch.iter().map(|i| inputs[*i].clone()).collect();
            for i in &batch {
                attempts[*i] += 1;
            }
            match send(chunk).await {
                Err(e) if e.kind() == ErrorKind::Timeout && batch.len() > 1 => {
                    timed_out = true;
                    size = (batch.len() / 2).max(1);
                    self.shared.batch_now.store(size, Ordering::Relaxed);
                    tracing::debug!(size, "batch timed out; smaller batches from now on");
                    let mut pending: Vec<usize> = batch;
                    let mut kept = VecDeque::new();
                    for (b, one) in queue.drain(..) {
                        if one { kept.push_back((b, true)) } else { pending.extend(b) }
                    }
                    queue = pending.chunks(size).map(|c| (c.to_vec(), false)).collect();
                    queue.extend(kept);
                }
                Err(e) if e.kind() == ErrorKind::Timeout && attempts[batch[0]] < retry.max_attempts => {
                    queue.push_front((batch, single))
                }
                Err(e) => {
                    for i in batch {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                // One failed message for a whole batch: the server refused the request as a whole
                // (ErrorServerBusy in message form): nothing was processed, so retry it all.
                Ok(mut entries)
                    if entries.len() == 1
                        && batch.len() > 1
                        && entries[0].as_ref().is_err_and(|e| e.kind() == ErrorKind::Throttled)
                        && attempts[batch[0]] < retry.max_attempts =>
                {
                    if let Some(Err(e)) = entries.pop() {
                        self.limit().on_busy();
                        tokio::time::sleep(retry.delay(attempts[batch[0]] - 1, e.retry_after())).await;
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
                                match e.kind() {
                                    ErrorKind::Throttled => {
                                        self.limit().on_busy();
                                        let d = retry.delay(attempts[i] - 1, e.retry_after());
                                        wait = Some(wait.map_or(d, |w| w.max(d)));
                                        again.push(i);
                                    }
                                    // Stopped and timed-out entries are retried one by one.
                                    _ => queue.push_back((vec![i], true)),
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
            .batched(folders, |chunk| {
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

    /// FindFolder: every child of `parent` (all pages).
    pub async fn find_folders(
        &self,
        parent: &FolderRef,
        shape: &FolderShape,
        traversal: Traversal,
    ) -> Result<Vec<Folder>> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let body = folders::find_folder_request(parent, shape, traversal, offset, MAX_FIND_PAGE);
            let page = self
                .call("FindFolder", &body, Affinity::None, folders::parse_find_folder)
                .await
                .map_err(|e| e.with_folder(parent.describe()))?;
            let n = page.folders.len() as u32;
            out.extend(page.folders);
            if page.includes_last || n == 0 {
                return Ok(out);
            }
            offset = page.next_offset.unwrap_or(offset + n);
        }
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
        let body = items::find_item_request(folder, shape, restriction, offset, max.clamp(1, MAX_FIND_PAGE));
        self.call_consuming("FindItem", &body, Affinity::None, items::parse_find_item)
            .await
            .map_err(|e| e.with_folder(folder.describe()))
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
        loop {
            let page = self.find_items_page(folder, shape, restriction, offset, MAX_FIND_PAGE).await?;
            let n = page.items.len() as u32;
            out.extend(page.items);
            if page.includes_last || n == 0 {
                return Ok(out);
            }
            offset = page.next_offset.unwrap_or(offset + n);
        }
    }

    /// GetItem, batched; one result per id, in order.
    pub async fn get_items(&self, ids: &[ItemId], shape: &ItemShape) -> Result<Vec<Result<EwsItem>>> {
        let r = self
            .batched(ids, |chunk| {
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
    pub async fn create_rendered_items(
        &self,
        folder: &FolderRef,
        rendered: &[RenderedItem],
    ) -> Result<Vec<Result<ItemId>>> {
        self.batched(rendered, |chunk| {
            let body = items::create_rendered_request(folder, &chunk);
            async move { self.call_for_ids("CreateItem", &body, items::parse_create_item).await }
        })
        .await
        .map(|r| r.into_iter().map(|e| e.map_err(|e| e.with_folder(folder.describe()))).collect())
    }

    /// UpdateItem, batched; each change is guarded by its change key (a stale key gives
    /// [`ErrorKind::PreconditionFailed`]). Returns the new id and change key per change.
    pub async fn update_items(&self, changes: &[ItemChange]) -> Result<Vec<Result<ItemId>>> {
        let ids: Vec<ItemId> = changes.iter().map(|c| c.id.clone()).collect();
        let r = self
            .batched(changes, |chunk| {
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
            .batched(ids, |chunk| {
                let body = items::delete_item_request(&chunk, delete_type);
                async move { self.call("DeleteItem", &body, Affinity::None, items::parse_delete_item).await }
            })
            .await?;
        Ok(with_item_context(r, ids, self.routing.mailbox()))
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
        let body = sync::sync_folder_items_request(folder, shape, sync_state, max_changes);
        self.call_consuming("SyncFolderItems", &body, Affinity::None, sync::parse_sync_folder_items)
            .await
            .map_err(|e| e.with_folder(folder.describe()))
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
        loop {
            let page = self.sync_folder_items(folder, shape, state.as_deref(), sync::MAX_SYNC_CHANGES).await?;
            changes.extend(page.changes);
            let done = page.includes_last;
            state = Some(page.sync_state);
            if done {
                return Ok((changes, state.unwrap_or_default()));
            }
        }
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
    pub async fn get_streaming_events(
        &self,
        subscription_ids: &[String],
        connection_timeout_minutes: u32,
        heartbeat_timeout: Duration,
    ) -> Result<NotificationStream> {
        let body = notifications::get_streaming_events_request(subscription_ids, connection_timeout_minutes);
        let doc = envelope(self.version(), self.routing.impersonation.as_ref(), &body);
        let limit = self.limit();
        let mut attempt = 0;
        loop {
            let r = self.shared.transport.send("GetStreamingEvents", &self.routing, &doc, true).await;
            let err = match r {
                Ok(response) => {
                    return Ok(NotificationStream::new(response, heartbeat_timeout, self.shared.parse_limits));
                }
                Err(e) => e,
            };
            attempt += 1;
            if !matches!(err.kind(), ErrorKind::Throttled | ErrorKind::Transient)
                || attempt >= self.shared.retry.max_attempts
            {
                return Err(err);
            }
            if err.kind() == ErrorKind::Throttled {
                limit.on_busy();
            }
            tokio::time::sleep(self.shared.retry.delay(attempt - 1, err.retry_after())).await;
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

fn with_item_context<T>(results: Vec<Result<T>>, ids: &[ItemId], mailbox: Option<&str>) -> Vec<Result<T>> {
    results
        .into_iter()
        .zip(ids)
        .map(|(r, id)| r.map_err(|e| e.with_item(id.id.clone()).with_mailbox(mailbox)))
        .collect()
}

/// The ids of a batch answer whose every message succeeded (see [`crate::id_scan`]), as the
/// batch parsers answer them.
fn scan_ids(bytes: &[u8], limits: ParseLimits) -> Option<(Vec<Result<ItemId>>, Option<ServerVersionInfo>)> {
    let scanned = crate::id_scan::scan_item_ids(bytes, limits)?;
    Some((scanned.ids.into_iter().map(Ok).collect(), scanned.server_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_server_and_the_cap() {
        let p =
            RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(5) };
        assert_eq!(p.delay(0, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(400));
        assert_eq!(p.delay(0, Some(Duration::from_millis(1234))), Duration::from_millis(1234));
        assert_eq!(p.delay(0, Some(Duration::from_secs(300))), Duration::from_secs(5));
    }

    fn offline_client(batch_size: usize) -> EwsClient {
        EwsClient::builder("http://127.0.0.1:9/EWS/Exchange.asmx")
            .batch_size(batch_size)
            .retry(RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            })
            .build()
            .unwrap()
    }

    fn response_error(code: &str) -> EwsError {
        EwsError::Response {
            code: code.into(),
            message: String::new(),
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
            .batched(&inputs, |chunk: Vec<u32>| {
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
            .batched(&inputs, |chunk: Vec<u32>| {
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
            .batched(&inputs, |chunk: Vec<u32>| {
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
