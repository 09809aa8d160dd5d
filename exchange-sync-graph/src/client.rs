//! [`GraphClient`]: requests to Microsoft Graph v1.0 with app-only tokens, per-mailbox
//! throttling, retries and `$batch`.
//!
//! The client is cheap to clone; clones share the HTTP connection pool, the token cache and the
//! per-mailbox throttling state.
//!
//! # Who retries what
//!
//! Each request has one owner of its retries: this client. Retries stacked over several layers
//! multiply, and a request sent inside the back-off Graph asked for only adds to the load that
//! made it throttle, so no layer above the client sends a request again by itself.
//!
//! - **The client** retries a request when the failure can pass: `429` and `503` (throttling), a
//!   `500`, `502` or `504` of a read, a connection that failed before the request was sent, and a
//!   read whose connection broke. Per `$batch` part the same: only the parts that failed for a
//!   passing reason are sent again, in a new batch. Each request (and part) is sent at most
//!   [`RetryPolicy::max_attempts`] times, never again at once.
//! - **Delays**: `Retry-After` is honoured in full, however long. Otherwise the client waits
//!   [`RetryPolicy::base_delay`] doubled per attempt (capped by [`RetryPolicy::max_delay`]), drawn
//!   between half and all of it.
//! - **Per-mailbox back-off**: a throttling answer closes a gate for the mailbox shared by every
//!   clone: no request to that mailbox leaves before the back-off has ended. At most
//!   [`MAILBOX_CONCURRENCY`] (4) requests to one mailbox are in flight at once.
//! - **[`RetryPolicy::max_inline_wait`]** (30 s): a back-off up to this long is waited inside the
//!   call; a longer one is not: the call returns at once with the throttling error carrying the
//!   remaining delay, and every later call for the mailbox fails the same way
//!   ([`GraphError::BackingOff`]) without sending anything until it ends. The engine parks the
//!   mailbox for that long and syncs the others.
//! - **Writes are never resent blindly**: a `POST`, `PATCH` or `DELETE` whose connection broke
//!   after it was sent, or that answered `500`/`502`/`504`, has an unknown outcome
//!   ([`ErrorKind::Indeterminate`]); the connector looks a create up by its origin stamp.
//! - **The token endpoint**: a token request that failed for a passing reason (`5xx`, `429`, a
//!   broken connection) is retried like a request; refused credentials are not.
//! - **A refused token** (`401`) is dropped from the cache and the request sent once more with a
//!   new one; a second refusal, and every permanent error (`400`, `403`, `404`, `412`), fails at once.
//! - **What leaves the client has had its retries**: the connector marks temporary errors
//!   exhausted, so that the engine and the service do not retry them.
//!
//! # Limits
//!
//! | What | Bound |
//! |---|---|
//! | Requests in flight per mailbox | 4 ([`MAILBOX_CONCURRENCY`]) |
//! | Requests per `$batch` | 20 ([`MAX_BATCH`]) |
//! | One request | 120 s ([`GraphClientBuilder::timeout`]) |
//! | One response body | 64 MiB ([`MAX_RESPONSE_BYTES`]) |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use rand::Rng as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{ClientCredentials, Secret, TokenSource};
use crate::error::{ErrorContext, ErrorKind, GraphError, Result};
use crate::throttle::{MAILBOX_CONCURRENCY, MailboxState};

/// The public cloud's Graph endpoint.
pub const PUBLIC_CLOUD_GRAPH: &str = "https://graph.microsoft.com";

/// Requests one `$batch` may carry (Graph's limit).
pub const MAX_BATCH: usize = 20;

/// The largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How the client retries requests that failed for a passing reason.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (and per batch part), the first included.
    pub max_attempts: u32,
    /// First delay when Graph named none; doubled per attempt, with jitter.
    pub base_delay: Duration,
    /// Longest delay the client chooses by itself (a `Retry-After` is honoured in full).
    pub max_delay: Duration,
    /// Longest back-off waited inside a call; a longer one returns the throttling error at once.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_inline_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let doubled = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = doubled.min(self.max_delay);
        let half = capped / 2;
        half + capped.saturating_sub(half).mul_f64(rand::thread_rng().r#gen::<f64>())
    }
}

/// Builds a [`GraphClient`].
#[derive(Debug)]
pub struct GraphClientBuilder {
    graph_url: String,
    credentials: ClientCredentials,
    certificate: Option<crate::certificate::ClientCertificate>,
    policy: RetryPolicy,
    concurrency: usize,
    timeout: Duration,
}

impl GraphClientBuilder {
    /// The Graph endpoint (default: the public cloud; national clouds and emulators differ).
    pub fn graph_url(mut self, url: impl Into<String>) -> Self {
        self.graph_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Proves the application with a client assertion signed by this certificate's key instead
    /// of a client secret (the credentials' secret is then unused).
    pub fn client_certificate(mut self, certificate: crate::certificate::ClientCertificate) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// The retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Requests in flight per mailbox (default and most: 4, Graph's limit).
    pub fn mailbox_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.clamp(1, MAILBOX_CONCURRENCY);
        self
    }

    /// The time one request may take (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Result<GraphClient> {
        if !(self.graph_url.starts_with("https://") || self.graph_url.starts_with("http://")) {
            return Err(GraphError::Configuration(format!("the Graph URL {:?} is not an HTTP(S) URL", self.graph_url)));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| GraphError::Configuration(format!("cannot build the HTTP client: {e}")))?;
        let mut tokens = TokenSource::new(self.credentials, http.clone());
        if let Some(certificate) = self.certificate {
            tokens = tokens.with_certificate(certificate);
        }
        Ok(GraphClient {
            inner: Arc::new(Inner {
                api: format!("{}/v1.0", self.graph_url),
                http,
                tokens,
                policy: self.policy,
                concurrency: self.concurrency,
                mailboxes: Mutex::new(HashMap::new()),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    api: String,
    http: reqwest::Client,
    tokens: TokenSource,
    policy: RetryPolicy,
    concurrency: usize,
    mailboxes: Mutex<HashMap<String, Arc<MailboxState>>>,
}

/// A client of Microsoft Graph v1.0 acting as an application (app-only tokens).
#[derive(Debug, Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

/// One request: a method, a URL relative to `/v1.0` (or an absolute link Graph gave), headers
/// and a JSON body.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// The method.
    pub method: Method,
    /// `/users/...` or an absolute `@odata.nextLink` / `@odata.deltaLink` of this endpoint.
    pub url: String,
    /// Extra headers (`If-Match`, `Prefer`).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Option<Value>,
    /// The item concerned, for error context.
    pub item: Option<String>,
    /// Whether the request may be sent again after a broken connection or a server error
    /// (reads; a `$batch` of reads only).
    pub(crate) resendable: bool,
}

impl GraphRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        let resendable = method == Method::GET;
        GraphRequest { method, url: url.into(), headers: Vec::new(), body: None, item: None, resendable }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Names the item concerned (for errors).
    pub fn item(mut self, id: impl Into<String>) -> Self {
        self.item = Some(id.into());
        self
    }

    fn is_write(&self) -> bool {
        !self.resendable
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    /// HTTP status.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// A contact folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFolder {
    /// Graph id.
    pub id: String,
    /// Name.
    pub display_name: String,
}

/// Percent-encodes a path segment (a mailbox address or an id).
pub fn segment(s: &str) -> String {
    encode(s, b"-._~@=")
}

/// Percent-encodes a query option's value.
pub fn query_value(s: &str) -> String {
    encode(s, b"-._~")
}

fn encode(s: &str, keep: &[u8]) -> String {
    s.bytes()
        .map(
            |b| {
                if b.is_ascii_alphanumeric() || keep.contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            },
        )
        .collect()
}

/// An OData string literal (`'it''s'`).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A network error with its kind: unreachable (refused, unknown host), indeterminate (a write
/// sent without an answer) or transient.
pub(crate) fn network_error(e: reqwest::Error, write_sent: bool, context: ErrorContext) -> GraphError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return GraphError::Unreachable {
                message: "connection refused: nothing listens at the Graph or authority address".into(),
                context: Box::new(context),
            };
        }
        let text = err.to_string();
        if text.starts_with("dns error") || text.starts_with("failed to lookup address") {
            return GraphError::Unreachable {
                message: format!("unknown host: {text}; check the URL and DNS"),
                context: Box::new(context),
            };
        }
        if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
            return GraphError::Unreachable {
                message: format!("the server's TLS certificate is not trusted: {text}"),
                context: Box::new(context),
            };
        }
        next = err.source();
    }
    let indeterminate = write_sent && !e.is_connect();
    GraphError::Network { source: e, indeterminate, context: Box::new(context) }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn http_error(status: u16, body: Option<&Value>, retry_after: Option<Duration>, context: ErrorContext) -> GraphError {
    let error = body.and_then(|b| b.get("error"));
    let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str).unwrap_or_default().to_owned();
    GraphError::Http { status, code: text("code"), message: text("message"), retry_after, context: Box::new(context) }
}

/// What one attempt at a request gave.
enum Attempt {
    Done(GraphResponse),
    /// A failure; `retry` says whether the client may send the request again.
    Failed {
        error: GraphError,
        retry: bool,
    },
}

impl GraphClient {
    /// A builder for an application's credentials.
    pub fn builder(credentials: ClientCredentials) -> GraphClientBuilder {
        GraphClientBuilder {
            graph_url: PUBLIC_CLOUD_GRAPH.to_owned(),
            credentials,
            certificate: None,
            policy: RetryPolicy::default(),
            concurrency: MAILBOX_CONCURRENCY,
            timeout: Duration::from_secs(120),
        }
    }

    /// The API root, `{graph}/v1.0`.
    pub fn api_url(&self) -> &str {
        &self.inner.api
    }

    fn mailbox(&self, mailbox: &str) -> Arc<MailboxState> {
        let mut map = self.inner.mailboxes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            map.entry(mailbox.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(MailboxState::new(self.inner.concurrency))),
        )
    }

    fn absolute(&self, url: &str, context: &ErrorContext) -> Result<String> {
        if url.starts_with('/') {
            return Ok(format!("{}{url}", self.inner.api));
        }
        // A link Graph gave (nextLink, deltaLink) is followed only on the same endpoint: the
        // bearer token must never leave for another host.
        match url.strip_prefix(self.inner.api.as_str()) {
            Some(rest) if rest.starts_with('/') => Ok(url.to_owned()),
            _ => Err(GraphError::protocol(
                format!("a link outside {} was given: {url}", self.inner.api),
                context.clone(),
            )),
        }
    }

    /// Waits while the mailbox's gate is closed, or fails at once when the back-off is longer
    /// than the policy waits inline.
    async fn wait_gate(&self, state: &MailboxState, context: &ErrorContext) -> Result<()> {
        if let Some(remaining) = state.gate.remaining() {
            if remaining > self.inner.policy.max_inline_wait {
                return Err(GraphError::BackingOff { remaining, context: Box::new(context.clone()) });
            }
            tracing::debug!(mailbox = ?context.mailbox, wait_ms = remaining.as_millis() as u64, "waiting for Graph's back-off");
            tokio::time::sleep(remaining).await;
        }
        Ok(())
    }

    async fn attempt(
        &self,
        state: &MailboxState,
        request: &GraphRequest,
        context: &ErrorContext,
        token: &Secret,
    ) -> Attempt {
        let url = match self.absolute(&request.url, context) {
            Ok(u) => u,
            Err(error) => return Attempt::Failed { error, retry: false },
        };
        let Ok(_permit) = state.slots.acquire().await else {
            return Attempt::Failed {
                error: GraphError::protocol("the mailbox's slots closed", context.clone()),
                retry: false,
            };
        };
        let mut builder = self.inner.http.request(request.method.clone(), &url).bearer_auth(token.expose());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &request.body {
            builder = builder.json(b);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = network_error(e, request.is_write(), context.clone());
                let retry = matches!(error.kind(), ErrorKind::Transient);
                return Attempt::Failed { error, retry };
            }
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(e) => {
                let error = match e {
                    Some(e) => network_error(e, request.is_write(), context.clone()),
                    None => GraphError::protocol(
                        format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                        context.clone(),
                    ),
                };
                let retry = matches!(error.kind(), ErrorKind::Transient);
                return Attempt::Failed { error, retry };
            }
        };
        let json: Option<Value> = if body.is_empty() {
            None
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => Some(v),
                Err(e) if (200..300).contains(&status) => {
                    return Attempt::Failed {
                        error: GraphError::protocol(format!("the answer is not JSON: {e}"), context.clone()),
                        retry: false,
                    };
                }
                Err(_) => None,
            }
        };
        if (200..300).contains(&status) {
            return Attempt::Done(GraphResponse { status, body: json });
        }
        let error = http_error(status, json.as_ref(), after, context.clone());
        let retry = match error.kind() {
            ErrorKind::Throttled => true,
            ErrorKind::Transient => !request.is_write(),
            _ => false,
        };
        let error = indeterminate_if_write(error, request.is_write());
        Attempt::Failed { error, retry }
    }

    /// Sends one request with the retries described in the module documentation.
    pub async fn send(&self, mailbox: &str, operation: &'static str, request: &GraphRequest) -> Result<GraphResponse> {
        let mut context = ErrorContext::new(operation, mailbox);
        if let Some(i) = &request.item {
            context = context.with_item(i.clone());
        }
        let state = self.mailbox(mailbox);
        let policy = &self.inner.policy;
        let mut token_refreshed = false;
        let mut attempt = 1;
        loop {
            self.wait_gate(&state, &context).await?;
            let token = match self.inner.tokens.token().await {
                Ok(t) => t,
                // The authority failed for a passing reason (5xx, 429, network): nothing was sent
                // to Graph yet, so the request waits and tries again like any other.
                Err(e) if e.kind().is_retryable() && attempt < policy.max_attempts => {
                    let delay = policy.delay(attempt);
                    tracing::debug!(mailbox, operation, wait_ms = delay.as_millis() as u64, error = %e, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self.attempt(&state, request, &context, &token).await {
                Attempt::Done(r) => return Ok(r),
                Attempt::Failed { error, .. } if error.status() == Some(401) && !token_refreshed => {
                    // A token the server no longer accepts (revoked, clock skew): fetch a new one once.
                    self.inner.tokens.invalidate(&token).await;
                    token_refreshed = true;
                }
                Attempt::Failed { error, retry } => {
                    let throttled = error.kind() == ErrorKind::Throttled;
                    let delay = error.retry_after().unwrap_or_else(|| policy.delay(attempt));
                    if throttled {
                        let remaining = state.gate.close_for(delay);
                        tracing::info!(
                            mailbox,
                            operation,
                            wait_ms = remaining.as_millis() as u64,
                            attempt,
                            "Graph throttled the mailbox"
                        );
                    }
                    if !retry || attempt >= policy.max_attempts {
                        return Err(self.with_remaining(error, &state));
                    }
                    if !throttled {
                        tracing::debug!(mailbox, operation, wait_ms = delay.as_millis() as u64, attempt, error = %error, "retrying");
                        tokio::time::sleep(delay).await;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// A throttling error leaving the client carries the gate's remaining back-off.
    fn with_remaining(&self, error: GraphError, state: &MailboxState) -> GraphError {
        match error {
            GraphError::Http { status, code, message, retry_after, context } if status == 429 || status == 503 => {
                GraphError::Http { status, code, message, retry_after: state.gate.remaining().or(retry_after), context }
            }
            e => e,
        }
    }

    /// `GET` of a JSON resource.
    pub async fn get_json(&self, mailbox: &str, operation: &'static str, url: &str) -> Result<Value> {
        let r = self.send(mailbox, operation, &GraphRequest::new(Method::GET, url)).await?;
        r.body.ok_or_else(|| GraphError::protocol("an empty answer", ErrorContext::new(operation, mailbox)))
    }

    /// Sends requests to one mailbox in `$batch`es of [`MAX_BATCH`], answering each request's
    /// outcome in order. Parts that failed for a passing reason (throttled, or a read that met a
    /// server error) are sent again in a later batch, after the back-off; the others answer
    /// their error in their slot. `Err` only when no batch could be sent at all.
    pub async fn batch(
        &self,
        mailbox: &str,
        operation: &'static str,
        requests: &[GraphRequest],
    ) -> Result<Vec<Result<GraphResponse>>> {
        let mut results: Vec<Option<Result<GraphResponse>>> = (0..requests.len()).map(|_| None).collect();
        let state = self.mailbox(mailbox);
        let policy = &self.inner.policy;
        for chunk_start in (0..requests.len()).step_by(MAX_BATCH) {
            let chunk_end = (chunk_start + MAX_BATCH).min(requests.len());
            let mut pending: Vec<usize> = (chunk_start..chunk_end).collect();
            let mut attempt = 1;
            while !pending.is_empty() {
                let parts: Vec<Value> = pending
                    .iter()
                    .map(|&i| {
                        let r = &requests[i];
                        let mut part = json!({"id": i.to_string(), "method": r.method.as_str(), "url": r.url});
                        if !r.headers.is_empty() || r.body.is_some() {
                            let mut headers: serde_json::Map<String, Value> =
                                r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                            if r.body.is_some() {
                                headers.insert("Content-Type".into(), json!("application/json"));
                            }
                            part["headers"] = Value::Object(headers);
                        }
                        if let Some(b) = &r.body {
                            part["body"] = b.clone();
                        }
                        part
                    })
                    .collect();
                // The batch is a POST; it is resent after a broken connection only when it
                // carries reads only.
                let writes = pending.iter().any(|&i| requests[i].is_write());
                let envelope = GraphRequest {
                    method: Method::POST,
                    url: "/$batch".into(),
                    headers: Vec::new(),
                    body: Some(json!({"requests": parts})),
                    item: None,
                    resendable: !writes,
                };
                let answer = self.send(mailbox, operation, &envelope).await;
                let answer = match answer {
                    Ok(a) => a,
                    Err(e)
                        if chunk_start == 0
                            && results.iter().all(Option::is_none)
                            && e.kind() != ErrorKind::Indeterminate =>
                    {
                        return Err(e);
                    }
                    Err(e) => {
                        for &i in &pending {
                            results[i] = Some(Err(clone_error(&e, requests[i].item.as_deref())));
                        }
                        break;
                    }
                };
                let responses = answer.body.as_ref().and_then(|b| b.get("responses")).and_then(Value::as_array);
                let mut by_id: HashMap<usize, &Value> = HashMap::new();
                for r in responses.into_iter().flatten() {
                    if let Some(id) = r.get("id").and_then(Value::as_str).and_then(|s| s.parse().ok()) {
                        by_id.insert(id, r);
                    }
                }
                let mut again = Vec::new();
                for &i in &pending {
                    let mut context = ErrorContext::new(operation, mailbox);
                    if let Some(item) = &requests[i].item {
                        context = context.with_item(item.clone());
                    }
                    let Some(part) = by_id.get(&i) else {
                        results[i] = Some(Err(GraphError::protocol("the batch answer lacks this request", context)));
                        continue;
                    };
                    let status =
                        part.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
                    let body = part.get("body").cloned();
                    if (200..300).contains(&status) {
                        results[i] = Some(Ok(GraphResponse { status, body }));
                        continue;
                    }
                    let after = part
                        .get("headers")
                        .and_then(|h| h.as_object())
                        .and_then(|h| {
                            h.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")).map(|(_, v)| v.clone())
                        })
                        .and_then(|v| v.as_str().and_then(|s| s.trim().parse().ok()).or_else(|| v.as_u64()))
                        .map(Duration::from_secs);
                    let error = indeterminate_if_write(
                        http_error(status, body.as_ref(), after, context),
                        requests[i].is_write(),
                    );
                    let retry = match error.kind() {
                        ErrorKind::Throttled => true,
                        ErrorKind::Transient => !requests[i].is_write(),
                        _ => false,
                    };
                    if error.kind() == ErrorKind::Throttled {
                        state.gate.close_for(after.unwrap_or_else(|| policy.delay(attempt)));
                    }
                    if retry && attempt < policy.max_attempts {
                        again.push(i);
                        if error.kind() != ErrorKind::Throttled {
                            tokio::time::sleep(policy.delay(attempt)).await;
                        }
                    } else {
                        results[i] = Some(Err(self.with_remaining(error, &state)));
                    }
                }
                if !again.is_empty() {
                    tracing::info!(mailbox, operation, parts = again.len(), attempt, "resending throttled batch parts");
                }
                pending = again;
                attempt += 1;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(GraphError::protocol("no outcome", ErrorContext::new(operation, mailbox))))
            })
            .collect())
    }
}

fn clone_error(e: &GraphError, item: Option<&str>) -> GraphError {
    let mut context = e.context().cloned().unwrap_or_default();
    if let Some(i) = item {
        context = context.with_item(i);
    }
    let context = Box::new(context);
    match e {
        GraphError::Http { status, code, message, retry_after, .. } => GraphError::Http {
            status: *status,
            code: code.clone(),
            message: message.clone(),
            retry_after: *retry_after,
            context,
        },
        GraphError::BackingOff { remaining, .. } => GraphError::BackingOff { remaining: *remaining, context },
        GraphError::Unreachable { message, .. } => GraphError::Unreachable { message: message.clone(), context },
        GraphError::Token { error, description, .. } => {
            GraphError::Token { error: error.clone(), description: description.clone(), context }
        }
        GraphError::Network { indeterminate: true, source, .. } => GraphError::Indeterminate {
            message: format!("the batch was sent and no answer came back ({source})"),
            context,
        },
        GraphError::Indeterminate { message, .. } => GraphError::Indeterminate { message: message.clone(), context },
        other => GraphError::Protocol { message: other.to_string(), context },
    }
}

/// A server error (`500`, `502`, `504`) while handling a write: it may have been applied.
fn indeterminate_if_write(error: GraphError, write: bool) -> GraphError {
    if write && error.kind() == ErrorKind::Transient {
        let context = Box::new(error.context().cloned().unwrap_or_default());
        GraphError::Indeterminate { message: error.to_string(), context }
    } else {
        error
    }
}

/// Reads a body up to [`MAX_RESPONSE_BYTES`]; `Err(None)` when it is larger.
async fn read_body(response: reqwest::Response) -> std::result::Result<Vec<u8>, Option<reqwest::Error>> {
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Some)?;
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
