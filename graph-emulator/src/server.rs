//! HTTP serving: the token endpoint, bearer-token checks, routing of `/v1.0` requests, `$batch`,
//! per-mailbox throttling (a concurrency limit and injected `429`s) and traces.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::GraphEmulatorConfig;
use crate::error::GraphError;
use crate::odata::{self, Filter};
use crate::store::{Shape, Store};
use crate::trace::TraceWriter;

#[path = "calendar_routes.rs"]
mod calendar_routes;

/// The largest request body accepted (Graph refuses far smaller ones; this only bounds memory).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Requests one `$batch` may carry.
pub const MAX_BATCH: usize = 20;
/// The largest page a client may ask for.
const MAX_PAGE: usize = 1000;

/// Throttling injected for one mailbox: the next `remaining` requests answer `429`.
#[derive(Debug, Clone, Copy)]
struct Injected {
    remaining: u32,
    retry_after: u64,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub config: GraphEmulatorConfig,
    pub base: String,
    tokens: Mutex<HashMap<String, Instant>>,
    pub token_requests: AtomicU64,
    /// The next this many token requests answer `503` (the authority is having trouble).
    pub token_failures: AtomicU64,
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    injected: Mutex<HashMap<String, Injected>>,
    in_flight: Mutex<HashMap<String, usize>>,
    pub max_in_flight: AtomicUsize,
    trace: Option<TraceWriter>,
    /// Change-notification subscriptions and their delivery.
    pub subscriptions: crate::subscriptions::Subscriptions,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: GraphEmulatorConfig, store: Store, base: String, trace: Option<TraceWriter>) -> Self {
        Shared {
            store: Mutex::new(store),
            config,
            base,
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicU64::new(0),
            token_failures: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            injected: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: AtomicUsize::new(0),
            trace,
            subscriptions: crate::subscriptions::Subscriptions::default(),
        }
    }

    /// Where exchanges are traced, if anywhere.
    pub(crate) fn trace(&self) -> Option<&TraceWriter> {
        self.trace.as_ref()
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// The next `count` requests to `mailbox` answer `429` with `Retry-After: retry_after`.
    pub(crate) fn inject_throttling(&self, mailbox: &str, count: u32, retry_after: u64) {
        lock(&self.injected).insert(mailbox.to_ascii_lowercase(), Injected { remaining: count, retry_after });
    }

    /// Every issued access token stops working, as when tokens expire.
    pub(crate) fn revoke_tokens(&self) {
        lock(&self.tokens).clear();
    }
}

/// An answer before it becomes HTTP (also the form of a `$batch` part).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Answer { status, headers: Vec::new(), body: Some(body) }
    }

    fn empty(status: u16) -> Self {
        Answer { status, headers: Vec::new(), body: None }
    }

    fn error(e: &GraphError) -> Self {
        Answer::json(e.status, e.body())
    }

    fn throttled(retry_after: u64, message: &str) -> Self {
        let e = GraphError::new(429, "ApplicationThrottled", message.to_owned());
        Answer { status: 429, headers: vec![("Retry-After", retry_after.to_string())], body: Some(e.body()) }
    }
}

/// Accepts connections until `stop` turns true.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(error = %e, "connection ended") },
                _ = stop.changed() => {}
            }
        });
    }
}

fn to_http(answer: Answer) -> Response<Full<Bytes>> {
    let bytes = answer.body.as_ref().map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if answer.body.is_some() {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; odata.metadata=minimal"));
    }
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return to_http(Answer::error(&GraphError::new(
                413,
                "RequestEntityTooLarge",
                "The body is too large.".into(),
            )));
        }
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    if path.ends_with("/oauth2/v2.0/token") && parts.method == hyper::Method::POST {
        return token(&shared, &path, &body);
    }
    let Some(rel) = path.strip_prefix("/v1.0") else {
        return to_http(Answer::error(&GraphError::not_found("UnknownVersion", format!("No API version at {path}."))));
    };
    if !authorized(&shared, &parts.headers) {
        let e = GraphError::new(401, "InvalidAuthenticationToken", "Access token is empty or expired.".into());
        let mut a = Answer::error(&e);
        a.headers.push(("WWW-Authenticate", "Bearer".into()));
        return to_http(a);
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return to_http(Answer::error(&GraphError::bad_request("BadRequest", format!("Invalid JSON: {e}"))));
            }
        }
    };
    let url = match &query {
        Some(q) => format!("{rel}?{q}"),
        None => rel.to_owned(),
    };
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    let answer = if rel == "/$batch" && parts.method == hyper::Method::POST {
        batch(&shared, json_body.as_ref()).await
    } else if rel == "/subscriptions" || rel.starts_with("/subscriptions/") {
        subscription_route(&shared, parts.method.as_str(), rel, json_body.as_ref()).await
    } else {
        execute(&shared, parts.method.as_str(), &url, &headers, json_body.as_ref()).await
    };
    if let Some(t) = &shared.trace {
        let route = if rel == "/$batch" { batch_route(json_body.as_ref()) } else { route_of(rel) };
        t.record(parts.method.as_str(), &url, &route, answer.status, json_body.as_ref(), answer.body.as_ref());
    }
    to_http(answer)
}

/// `/subscriptions` and `/subscriptions/{id}` (not in `$batch`: the handshake is asynchronous).
async fn subscription_route(shared: &Shared, method: &str, rel: &str, body: Option<&Value>) -> Answer {
    let app = shared.config.client_id.as_str();
    let subs = &shared.subscriptions;
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let id = rel.strip_prefix("/subscriptions/").map(odata::percent_decode);
    let result = match (method, id.as_deref()) {
        ("POST", None) => subs.create(&shared.store, app, body).await.map(|v| Answer::json(201, v)),
        ("GET", None) => Ok(Answer::json(200, subs.render_all(app))),
        ("GET", Some(id)) => subs.get(id, app).map(|v| Answer::json(200, v)),
        ("PATCH", Some(id)) => subs.renew(id, app, body).map(|v| Answer::json(200, v)),
        ("DELETE", Some(id)) => subs.delete(id).map(|()| Answer::empty(204)),
        (m, _) => Err(GraphError::new(405, "MethodNotAllowed", format!("{m} is not allowed here."))),
    };
    result.unwrap_or_else(|e| Answer::error(&e))
}

/// The route of a path for trace file names: ids replaced by `_`.
fn route_of(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let named = [
        "users",
        "contactFolders",
        "contacts",
        "delta",
        "$batch",
        "calendars",
        "calendar",
        "events",
        "instances",
        "calendarView",
        "subscriptions",
    ];
    segments
        .iter()
        .map(|s| if named.contains(&s.trim_end_matches("()")) { s.trim_end_matches("()") } else { "_" })
        .collect::<Vec<_>>()
        .join("_")
}

/// The route of a `$batch` for trace file names: the methods and routes of its parts, so that
/// batches of reads, creates, updates and deletes are each kept.
fn batch_route(body: Option<&Value>) -> String {
    let mut kinds: Vec<String> = body
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
            let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
            let path = url.split('?').next().unwrap_or_default();
            let filtered = if url.contains("$filter") { "_filter" } else { "" };
            format!("{method}_{}{filtered}", route_of(path))
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    format!("$batch_{}", kinds.join("_"))
}

fn authorized(shared: &Shared, headers: &hyper::HeaderMap) -> bool {
    let Some(token) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
    else {
        return false;
    };
    lock(&shared.tokens).get(token.trim()).is_some_and(|expiry| *expiry > Instant::now())
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    odata::query_options(Some(&String::from_utf8_lossy(body)))
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials with a secret or a client assertion
/// signed with the registered certificate's key.
fn token(shared: &Shared, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    let fail = |status: u16, error: &str, description: &str| {
        to_http(Answer::json(status, json!({"error": error, "error_description": description, "error_codes": []})))
    };
    if shared.token_failures.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
        return fail(503, "temporarily_unavailable", "AADSTS90033: A transient error has occurred. Please try again.");
    }
    let tenant = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let cfg = &shared.config;
    if !(tenant.eq_ignore_ascii_case(&cfg.tenant_id) || tenant.eq_ignore_ascii_case(&cfg.tenant_domain)) {
        return fail(400, "invalid_request", &format!("AADSTS90002: Tenant '{tenant}' not found."));
    }
    let f = form(body);
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return fail(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
    }
    if f.get("client_id") != Some(&cfg.client_id) {
        return fail(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.");
    }
    match f.get("client_assertion_type").map(String::as_str) {
        Some(crate::client_assertion::ASSERTION_TYPE) => {
            let Some(certificate) = &cfg.client_certificate else {
                return fail(
                    401,
                    "invalid_client",
                    "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.",
                );
            };
            let audience = format!("{}{path}", shared.base);
            let assertion = f.get("client_assertion").map(String::as_str).unwrap_or_default();
            let now = chrono::Utc::now().timestamp();
            if let Err(r) = crate::client_assertion::verify(assertion, certificate, &cfg.client_id, &audience, now) {
                return fail(r.status, r.error, &r.description);
            }
        }
        Some(other) => {
            return fail(400, "invalid_request", &format!("AADSTS50027: Unsupported client_assertion_type '{other}'."));
        }
        None if f.get("client_secret") != Some(&cfg.client_secret) => {
            return fail(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
        }
        None => {}
    }
    if f.get("scope").map(String::as_str) != Some("https://graph.microsoft.com/.default") {
        return fail(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.");
    }
    let token = format!("emu.{}", uuid::Uuid::new_v4().simple());
    let lifetime = cfg.token_lifetime;
    lock(&shared.tokens).insert(token.clone(), Instant::now() + lifetime);
    let secs = lifetime.as_secs();
    to_http(Answer::json(
        200,
        json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token}),
    ))
}

/// `POST /v1.0/$batch`: up to 20 requests, run in order; a request whose `dependsOn` failed
/// answers `424`.
async fn batch(shared: &Shared, body: Option<&Value>) -> Answer {
    let Some(requests) = body.and_then(|b| b.get("requests")).and_then(Value::as_array) else {
        return Answer::error(&GraphError::bad_request("BadRequest", "The batch has no requests array.".into()));
    };
    if requests.len() > MAX_BATCH {
        return Answer::error(&GraphError::bad_request(
            "BadRequest",
            format!("Number of requests is more than max allowed of {MAX_BATCH}."),
        ));
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let method = r.get("method").and_then(Value::as_str).unwrap_or_default().to_ascii_uppercase();
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        let url = if url.starts_with('/') { url.to_owned() } else { format!("/{url}") };
        if id.is_empty() || statuses.contains_key(&id) || method.is_empty() {
            return Answer::error(&GraphError::bad_request(
                "BadRequest",
                "Each batch request needs a unique id and a method.".into(),
            ));
        }
        let depends: Vec<&str> = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let answer = if depends.iter().any(|d| statuses.get(*d).is_none_or(|s| *s >= 400)) {
            Answer::error(&GraphError::new(424, "FailedDependency", "A request this one depends on failed.".into()))
        } else {
            let headers: BTreeMap<String, String> = r
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned()))).collect()
                })
                .unwrap_or_default();
            execute(shared, &method, &url, &headers, r.get("body")).await
        };
        statuses.insert(id.clone(), answer.status);
        let mut headers = Map::new();
        if answer.body.is_some() {
            headers.insert("Content-Type".into(), json!("application/json"));
        }
        for (k, v) in &answer.headers {
            headers.insert((*k).into(), json!(v));
        }
        let mut part = json!({"id": id, "status": answer.status, "headers": headers});
        if let Some(b) = answer.body {
            part["body"] = b;
        }
        responses.push(part);
    }
    Answer::json(200, json!({"responses": responses}))
}

/// Holds a mailbox's in-flight count for the length of a request.
struct InFlight<'a> {
    shared: &'a Shared,
    mailbox: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.shared.in_flight).get_mut(&self.mailbox) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Runs one request (top level or a `$batch` part) with per-mailbox throttling.
async fn execute(
    shared: &Shared,
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> Answer {
    let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
    // A function may be called with empty parentheses (`delta()`), as OData clients do.
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(odata::percent_decode)
        .map(|s| if s == "delta()" { "delta".to_owned() } else { s })
        .collect();
    let mailbox = match segments.as_slice() {
        [users, m, ..] if users == "users" => shared.store().mailbox_key(m),
        _ => None,
    };
    let _in_flight = match &mailbox {
        Some(m) => {
            if let Some(inj) = lock(&shared.injected).get_mut(m).filter(|i| i.remaining > 0) {
                inj.remaining -= 1;
                shared.throttled.fetch_add(1, Ordering::Relaxed);
                return Answer::throttled(inj.retry_after, "Application is over its MailboxConcurrency limit.");
            }
            let mut flights = lock(&shared.in_flight);
            let n = flights.entry(m.clone()).or_insert(0);
            if *n >= shared.config.max_concurrency {
                shared.throttled.fetch_add(1, Ordering::Relaxed);
                return Answer::throttled(1, "Application is over its MailboxConcurrency limit.");
            }
            *n += 1;
            shared.max_in_flight.fetch_max(*n, Ordering::Relaxed);
            Some(InFlight { shared, mailbox: m.clone() })
        }
        None => None,
    };
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let q = odata::query_options(query);
    match route(shared, method, path, &segments, &q, headers, body) {
        Ok(a) => a,
        Err(e) => Answer::error(&e),
    }
}

fn page_size(q: &BTreeMap<String, String>, headers: &BTreeMap<String, String>, default: usize) -> usize {
    let from_prefer = headers.get("prefer").and_then(|p| {
        p.split(',').find_map(|part| part.trim().strip_prefix("odata.maxpagesize=").and_then(|n| n.trim().parse().ok()))
    });
    q.get("$top").and_then(|t| t.parse().ok()).or(from_prefer).unwrap_or(default).clamp(1, MAX_PAGE)
}

/// Rebuilds a URL of this server with a changed query option (for `@odata.nextLink`).
fn link(shared: &Shared, path: &str, q: &BTreeMap<String, String>, set: (&str, String), drop: &[&str]) -> String {
    let mut q = q.clone();
    for d in drop {
        q.remove(*d);
    }
    q.insert(set.0.to_owned(), set.1);
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    format!("{}/v1.0{path}?{}", shared.base, query.join("&"))
}

fn filter_of(q: &BTreeMap<String, String>) -> Result<Option<Filter>, GraphError> {
    q.get("$filter")
        .map(|f| odata::parse_filter(f).map_err(|m| GraphError::bad_request("ErrorInvalidUrlQueryFilter", m)))
        .transpose()
}

fn collection(shared: &Shared, path: &str, q: &BTreeMap<String, String>, items: Vec<Value>, size: usize) -> Answer {
    let skip: usize = q.get("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#{}", shared.base, path.trim_start_matches('/')), "value": page});
    if skip + size < total {
        body["@odata.nextLink"] = json!(link(shared, path, q, ("$skip", (skip + size).to_string()), &[]));
    }
    Answer::json(200, body)
}

fn with_etag(status: u16, v: Value) -> Answer {
    let mut a = Answer::json(status, v);
    if let Some(tag) = a.body.as_ref().and_then(|b| b.get("@odata.etag")).and_then(Value::as_str) {
        a.headers.push(("ETag", tag.to_owned()));
    }
    a
}

fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    segments: &[String],
    q: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> Result<Answer, GraphError> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let if_match = headers.get("if-match").map(String::as_str);
    let not_found = || GraphError::bad_request("BadRequest", format!("Resource not found for the segment '{path}'."));
    let default_size = shared.config.page_size;
    if let Some(answer) = calendar_routes::route(shared, method, path, &s, q, headers, body) {
        return answer;
    }
    match (method, s.as_slice()) {
        ("GET", ["users", u]) => Ok(Answer::json(200, shared.store().user(u)?)),
        ("GET", ["groups"]) => {
            let mail = match filter_of(q)? {
                Some(Filter::MailEquals(m)) => Some(m),
                Some(_) => {
                    return Err(GraphError::bad_request("Request_UnsupportedQuery", "Unsupported query.".into()));
                }
                None => None,
            };
            let items = shared.store().directory.list(mail.as_deref());
            Ok(collection(shared, path, q, items, page_size(q, headers, default_size)))
        }
        ("GET", ["groups", g, "transitiveMembers"]) => {
            let store = shared.store();
            let items = store.directory.transitive_members(g, &store)?;
            Ok(collection(shared, path, q, items, page_size(q, headers, default_size)))
        }
        ("GET", ["users", u, "contactFolders"]) => {
            let items = shared.store().list_folders(u, filter_of(q)?.as_ref())?;
            Ok(collection(shared, path, q, items, page_size(q, headers, default_size)))
        }
        ("POST", ["users", u, "contactFolders"]) => Ok(Answer::json(201, shared.store().create_folder(u, body)?)),
        ("GET", ["users", u, "contactFolders", f]) => Ok(Answer::json(200, shared.store().get_folder(u, f)?)),
        ("DELETE", ["users", u, "contactFolders", f]) => {
            shared.store().delete_folder(u, f)?;
            Ok(Answer::empty(204))
        }
        ("GET", ["users", u, "contactFolders", f, "contacts", "delta"]) => {
            let shape = Shape::from_query(q)?;
            let size = page_size(&BTreeMap::new(), headers, default_size);
            let page = shared.store().delta(
                u,
                f,
                q.get("$deltatoken").map(String::as_str),
                q.get("$skiptoken").map(String::as_str),
                size,
                &shape,
            )?;
            let mut body = json!({
                "@odata.context": format!("{}/v1.0/$metadata#Collection(contact)", shared.base),
                "value": page.value,
            });
            if let Some(t) = page.skip_token {
                body["@odata.nextLink"] = json!(link(shared, path, q, ("$skiptoken", t), &["$deltatoken"]));
            }
            if let Some(t) = page.delta_token {
                body["@odata.deltaLink"] = json!(link(shared, path, q, ("$deltatoken", t), &["$skiptoken"]));
            }
            let mut a = Answer::json(200, body);
            if headers.get("prefer").is_some_and(|p| p.contains("odata.maxpagesize")) {
                a.headers.push(("Preference-Applied", format!("odata.maxpagesize={size}")));
            }
            Ok(a)
        }
        ("GET", ["users", u, "contacts"]) | ("GET", ["users", u, "contactFolders", _, "contacts"]) => {
            let folder = s.get(3).copied();
            let shape = Shape::from_query(q)?;
            let items = shared.store().list_contacts(u, folder, filter_of(q)?.as_ref(), &shape)?;
            Ok(collection(shared, path, q, items, page_size(q, headers, default_size)))
        }
        ("POST", ["users", u, "contacts"]) | ("POST", ["users", u, "contactFolders", _, "contacts"]) => {
            let folder = s.get(3).copied();
            Ok(with_etag(201, shared.store().create_contact(u, folder, body)?))
        }
        (m, ["users", u, "contacts", id]) | (m, ["users", u, "contactFolders", _, "contacts", id]) => {
            let folder = if s.len() == 6 { Some(s[3]) } else { None };
            match m {
                "GET" => Ok(with_etag(200, shared.store().get_contact(u, folder, id, &Shape::from_query(q)?)?)),
                "PATCH" => Ok(with_etag(200, shared.store().update_contact(u, folder, id, if_match, body)?)),
                "DELETE" => {
                    shared.store().delete_contact(u, folder, id, if_match)?;
                    Ok(Answer::empty(204))
                }
                _ => Err(GraphError::new(405, "MethodNotAllowed", format!("{m} is not allowed here."))),
            }
        }
        _ => Err(not_found()),
    }
}
