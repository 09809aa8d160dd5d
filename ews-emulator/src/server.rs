//! HTTP/1.1 serving: routing, Basic and NTLM authentication (NTLM per connection), limits, throttling, faults, tracing and the
//! chunked GetStreamingEvents responses.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};

use crate::config::{Fault, ServerVersion};
use crate::emulator::Shared;
use crate::ledger::{AnswerNote, BackOffAnswer, MailboxAccess};
use crate::operations::{self, Context, Outcome, notify::StreamPlan};
use crate::soap::{self, Fault as SoapFault};
use crate::trace::{self, summary_code};

type Body = BoxBody<Bytes, Infallible>;

/// A client that does not finish sending its headers in this time is disconnected.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// A client that does not finish sending its body in this time gets HTTP 408.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, shared, stop).await,
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(tls_stream, shared, stop).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
        });
    }
}

/// Serves HTTP/1.1 on one (plain or TLS) connection until it ends or the emulator stops.
async fn serve_connection<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // NTLM authenticates the connection: its handshake state lives as long as the connection.
    let ntlm = Arc::new(std::sync::Mutex::new(crate::ntlm::ConnectionAuth::default()));
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let ntlm = Arc::clone(&ntlm);
        async move { handle(shared, ntlm, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        r = conn => if let Err(e) = r { tracing::debug!(error = %e, "connection ended") },
        _ = stop.changed() => {}
    }
}

fn full(status: StatusCode, content_type: Option<&'static str>, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn xml(status: StatusCode, body: String) -> Response<Body> {
    full(status, Some("text/xml; charset=utf-8"), body)
}

fn fault_response(f: &SoapFault, version: crate::config::ServerVersion) -> Response<Body> {
    let mut r = xml(StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), f.to_xml(version));
    noted(&mut r, f.code, f.backoff_ms.map(std::time::Duration::from_millis));
    r
}

/// Tells the ledger (see `handle`) how a request was answered.
fn noted(r: &mut Response<Body>, code: impl Into<String>, back_off: Option<std::time::Duration>) {
    r.extensions_mut().insert(AnswerNote { code: code.into(), back_off });
}

/// HTTP 503 with `Retry-After` in whole seconds (at least one), rounded up from `back_off`.
fn unavailable(back_off: std::time::Duration) -> Response<Body> {
    let seconds = back_off.as_millis().div_ceil(1000).max(1) as u64;
    let mut r = full(StatusCode::SERVICE_UNAVAILABLE, Some("text/plain"), "Service Unavailable");
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    noted(&mut r, "HTTP 503", Some(std::time::Duration::from_secs(seconds)));
    r
}

/// 401 offering the schemes Exchange offers (NTLM, and Basic unless NTLM is required).
fn unauthorized(shared: &Shared) -> Response<Body> {
    let mut r = full(StatusCode::UNAUTHORIZED, None, Bytes::new());
    if !shared.config.require_ntlm
        && let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", shared.directory.domain))
    {
        r.headers_mut().append(WWW_AUTHENTICATE, v);
    }
    if shared.config.kerberos {
        r.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
    }
    r.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
    r
}

/// A Negotiate token that is not NTLM: a Kerberos ticket (SPNEGO-wrapped or not) checked through
/// GSSAPI. Accepted per request, and for the rest of the connection (IIS's default).
fn negotiate_login(
    shared: &Shared,
    conn: &mut crate::ntlm::ConnectionAuth,
    value: &str,
) -> Option<Result<String, Box<Response<Body>>>> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    if !shared.config.kerberos {
        return Some(Err(Box::new(unauthorized(shared))));
    }
    let accepted = crate::negotiate::accept(&token).and_then(|(principal, _reply)| {
        let login = crate::negotiate::login_of(&principal);
        shared
            .directory
            .account(&login)
            .map(|a| a.address.clone())
            .ok_or_else(|| format!("{principal} has no account here"))
    });
    Some(match accepted {
        Ok(address) => {
            shared.counters.kerberos_login();
            conn.login = Some(address.clone());
            Ok(address)
        }
        Err(why) => {
            tracing::info!(why, "Negotiate refused");
            Err(Box::new(unauthorized(shared)))
        }
    })
}

/// Who a request comes from, or the 401 to answer: Basic per request, NTLM per connection.
fn authenticate(
    shared: &Shared,
    ntlm: &std::sync::Mutex<crate::ntlm::ConnectionAuth>,
    req: &Request<Incoming>,
) -> Result<String, Box<Response<Body>>> {
    let mut conn = ntlm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(value) = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        // A request without credentials on a connection that completed an NTLM handshake.
        return conn.login.clone().ok_or_else(|| Box::new(unauthorized(shared)));
    };
    if let Some((scheme, message)) = crate::ntlm::token(value) {
        return match conn.step(&shared.directory, &shared.protection, scheme, &message) {
            crate::ntlm::Step::Authenticated(login) => {
                shared.counters.ntlm_login();
                Ok(login)
            }
            crate::ntlm::Step::Challenge(header) => {
                let mut r = full(StatusCode::UNAUTHORIZED, None, Bytes::new());
                if let Ok(v) = HeaderValue::from_str(&header) {
                    r.headers_mut().insert(WWW_AUTHENTICATE, v);
                }
                Err(Box::new(r))
            }
            crate::ntlm::Step::Refused => {
                tracing::debug!("NTLM authentication refused");
                Err(Box::new(unauthorized(shared)))
            }
            crate::ntlm::Step::Unbound(reason) => {
                // IIS answers a plain 401 too: the client learns nothing about which check failed.
                tracing::info!(reason, "NTLM refused by Extended Protection");
                shared.counters.binding_refused();
                Err(Box::new(unauthorized(shared)))
            }
        };
    }
    if let Some(result) = negotiate_login(shared, &mut conn, value) {
        return result;
    }
    if shared.config.require_ntlm {
        return Err(Box::new(unauthorized(shared)));
    }
    crate::auth::basic_login(&shared.directory, value).ok_or_else(|| Box::new(unauthorized(shared)))
}

async fn handle(
    shared: Arc<Shared>,
    ntlm: Arc<std::sync::Mutex<crate::ntlm::ConnectionAuth>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let path = req.uri().path().to_ascii_lowercase();
    let is_ews = path == "/ews/exchange.asmx";
    let is_autodiscover = path == "/autodiscover/autodiscover.svc";
    if !is_ews && !is_autodiscover {
        return Ok(full(StatusCode::NOT_FOUND, Some("text/plain"), "not found"));
    }
    if req.method() != Method::POST {
        return Ok(full(StatusCode::METHOD_NOT_ALLOWED, Some("text/plain"), "EWS expects POST"));
    }
    let login = match authenticate(&shared, &ntlm, &req) {
        Ok(login) => login,
        Err(response) => return Ok(*response),
    };
    let routing = RoutingHeaders::read(&req);
    let read =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), shared.config.max_request_bytes).collect())
            .await;
    let Ok(read) = read else {
        return Ok(full(StatusCode::REQUEST_TIMEOUT, Some("text/plain"), "request body not received in time"));
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return Ok(full(StatusCode::PAYLOAD_TOO_LARGE, Some("text/plain"), "request too large"));
            }
            return Ok(full(StatusCode::BAD_REQUEST, Some("text/plain"), "cannot read the request body"));
        }
    };
    if is_autodiscover {
        return Ok(match crate::autodiscover::get_user_settings(&shared, &body) {
            Ok(s) => xml(StatusCode::OK, s),
            Err(why) => full(StatusCode::BAD_REQUEST, Some("text/plain"), why),
        });
    }
    shared.counters.request(body.len());
    let response = ews(Arc::clone(&shared), login, body, routing).await;
    if let Ok(r) = &response {
        shared.counters.response(hyper::body::Body::size_hint(r.body()).exact().unwrap_or(0));
    }
    response
}

/// The name of the cookie that pins notification requests to one mailbox server.
const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";

/// What a load balancer in front of Exchange routes a request by.
#[derive(Debug, Default)]
struct RoutingHeaders {
    /// `X-AnchorMailbox`.
    anchor: Option<String>,
    /// `X-PublicFolderMailbox`.
    public_folder_mailbox: Option<String>,
    /// `X-PreferServerAffinity: true`: the client asks for an affinity cookie.
    prefer_affinity: bool,
    /// The server named by an `X-BackEndOverrideCookie` cookie.
    cookie_backend: Option<u32>,
}

impl RoutingHeaders {
    fn read(req: &Request<Incoming>) -> Self {
        let text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let cookie_backend = req
            .headers()
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| name.eq_ignore_ascii_case(AFFINITY_COOKIE))
            .and_then(|(_, value)| parse_backend_cookie(value));
        RoutingHeaders {
            anchor: text("X-AnchorMailbox").filter(|a| !a.is_empty()).map(str::to_owned),
            public_folder_mailbox: text("X-PublicFolderMailbox").filter(|a| !a.is_empty()).map(str::to_owned),
            prefer_affinity: text("X-PreferServerAffinity").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            cookie_backend,
        }
    }

    /// The mailbox a request acts on, whose throttling budget it is charged to: the impersonated
    /// one, else the public folder mailbox, else the anchor mailbox, else the login's.
    fn mailbox<'a>(&'a self, impersonated: Option<&'a str>, login: &'a str) -> &'a str {
        impersonated.or(self.public_folder_mailbox.as_deref()).or(self.anchor.as_deref()).unwrap_or(login)
    }

    /// The mailbox server the request reaches: the cookie's, else the anchor mailbox's, else the
    /// acting mailbox's.
    fn backend(&self, shared: &Shared, acting: &str) -> u32 {
        let servers = shared.config.backend_servers.max(1) as u32;
        if let Some(b) = self.cookie_backend.filter(|b| *b < servers) {
            return b;
        }
        let address = self.anchor.as_deref().unwrap_or(acting);
        shared.store.mailbox_index(address).map_or(0, |i| i % servers)
    }
}

/// The cookie value naming mailbox server `backend` (shaped like Exchange's: server FQDN, `~`,
/// a version number).
fn backend_cookie(shared: &Shared, backend: u32) -> String {
    format!("MBX{backend}.{}~1942062522", shared.directory.domain)
}

fn parse_backend_cookie(value: &str) -> Option<u32> {
    let rest = value.trim().strip_prefix("MBX")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn ews(
    shared: Arc<Shared>,
    login: String,
    body: Bytes,
    routing: RoutingHeaders,
) -> Result<Response<Body>, DropConnection> {
    let request = match soap::parse_request(&body) {
        Ok(r) => r,
        Err(f) => return Ok(fault_response(&f, shared.config.server_version)),
    };
    let mailbox = routing.mailbox(request.impersonate.as_deref(), &login).to_owned();
    let arrival = shared.ledger.arrive(&mailbox, &request.operation.name, &body);
    let response = answer(&shared, login, &body, request, &routing, &arrival).await;
    let note = response.as_ref().ok().and_then(|r| r.extensions().get::<AnswerNote>().cloned());
    shared.ledger.answered(arrival, note);
    response
}

/// Answers one parsed EWS request.
async fn answer(
    shared: &Arc<Shared>,
    login: String,
    body: &Bytes,
    request: soap::SoapRequest,
    routing: &RoutingHeaders,
    arrival: &crate::ledger::Arrival,
) -> Result<Response<Body>, DropConnection> {
    let op_name = request.operation.name.clone();
    let respond_fault = |f: SoapFault| {
        if let Some(t) = &shared.trace {
            t.record_exchange(
                &op_name,
                f.code,
                f.request_valid.then_some(&body[..]),
                Some(&f.to_xml(shared.config.server_version)),
            );
        }
        Ok(fault_response(&f, shared.config.server_version))
    };
    let busy_in_message = |backoff: u64| match operations::busy_message(&op_name, backoff) {
        Some(b) => {
            let doc = soap::response_envelope(shared.config.server_version, &b);
            if let Some(t) = &shared.trace {
                t.record_exchange(&op_name, "ErrorServerBusy", Some(body), Some(&doc));
            }
            let mut r = xml(StatusCode::OK, doc);
            noted(&mut r, "ErrorServerBusy", Some(std::time::Duration::from_millis(backoff)));
            Ok(r)
        }
        None => respond_fault(SoapFault::busy(backoff)),
    };
    let version_name = request.request_version.clone().unwrap_or_else(|| "Exchange2007_SP1".to_string());
    if !shared.config.server_version.accepts_request_version(&version_name) {
        let valid = ServerVersion::Exchange2016.accepts_request_version(&version_name);
        let f = SoapFault {
            request_valid: valid,
            ..SoapFault::invalid("ErrorInvalidServerVersion", "The specified server version is invalid.")
        };
        return respond_fault(f);
    }
    let request_version = ServerVersion::parse(&version_name).unwrap_or(shared.config.server_version);
    let (acting, impersonating) =
        match crate::auth::acting_account(&shared.directory, &login, request.impersonate.as_deref()) {
            Ok(a) => a,
            Err(f) => return respond_fault(f),
        };
    if impersonating {
        match shared.ledger.access(&acting) {
            MailboxAccess::Granted => {}
            MailboxAccess::ImpersonationDenied => {
                return respond_fault(SoapFault::refused(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                ));
            }
            MailboxAccess::NoMailbox => {
                return respond_fault(SoapFault::refused(
                    "ErrorNonExistentMailbox",
                    format!("The SMTP address has no mailbox associated with it: {acting}"),
                ));
            }
        }
    }
    if let Some((answer, back_off)) = shared.ledger.throttled(arrival) {
        tracing::debug!(mailbox = arrival.mailbox(), operation = %op_name, ?answer, ?back_off, "mailbox busy");
        let ms = back_off.as_millis() as u64;
        return match answer {
            BackOffAnswer::ServiceUnavailable => Ok(unavailable(back_off)),
            BackOffAnswer::ServerBusy => respond_fault(SoapFault::busy(ms)),
            BackOffAnswer::ServerBusyInMessage => busy_in_message(ms),
        };
    }
    let write = operations::is_write(&op_name);
    let mut drop_after = false;
    let mut batch_limit = None;
    match shared.faults.next(write, operations::is_item_batch(&op_name)) {
        Some(Fault::InternalServerError) => {
            return respond_fault(SoapFault::refused(
                "ErrorInternalServerError",
                "An internal server error occurred. The operation failed.",
            ));
        }
        Some(Fault::ServiceUnavailable) => return Ok(unavailable(std::time::Duration::from_secs(1))),
        Some(Fault::ServerBusyInMessage) => return busy_in_message(shared.config.busy_backoff.as_millis() as u64),
        Some(Fault::ServerBusy) => {
            return respond_fault(SoapFault::busy(shared.config.busy_backoff.as_millis() as u64));
        }
        Some(Fault::DropAfterWrite) => drop_after = true,
        Some(Fault::StopBatchAfter(n)) => batch_limit = Some(n),
        None => {}
    }
    let Some(permit) = shared.limit.try_acquire(&acting) else {
        return respond_fault(SoapFault::busy(shared.config.busy_backoff.as_millis() as u64));
    };
    if !shared.config.latency.is_zero() {
        // Inside the concurrency slot: a slow server keeps its slots busy longer.
        tokio::time::sleep(shared.config.latency).await;
    }
    let backend = routing.backend(shared, &acting);
    let ctx = Context { shared, login: login.clone(), acting, impersonating, request_version, batch_limit, backend };
    let outcome = operations::dispatch(&ctx, &request.operation);
    drop(permit);
    if drop_after {
        return Err(DropConnection);
    }
    match outcome {
        Err(f) => respond_fault(f),
        Ok(Outcome::Body(b)) => {
            let doc = soap::response_envelope(shared.config.server_version, &b);
            if let Some(t) = &shared.trace {
                t.record_exchange(&op_name, &summary_code(&b), Some(body), Some(&doc));
            }
            let mut response = xml(StatusCode::OK, doc);
            if shared.ledger.logging() {
                noted(&mut response, summary_code(&b), None);
            }
            if op_name == "Subscribe" && routing.prefer_affinity {
                let cookie = format!("{AFFINITY_COOKIE}={}; path=/", backend_cookie(shared, backend));
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(hyper::header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        Ok(Outcome::Stream(plan)) => {
            if let Some(t) = &shared.trace {
                t.record_exchange(&op_name, "NoError", Some(body), None);
            }
            let mut response = stream_response(Arc::clone(shared), plan);
            noted(&mut response, "NoError", None);
            Ok(response)
        }
    }
}

fn stream_response(shared: Arc<Shared>, plan: StreamPlan) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let _open = shared.counters.stream_opened();
        let mut file = shared.trace.as_ref().and_then(|t| t.stream_file("GetStreamingEvents"));
        let version = shared.config.server_version;
        let send = |body: String, file: &mut Option<std::fs::File>| {
            let doc = soap::response_envelope(version, &body);
            trace::append(file, &doc);
            tx.try_send(Bytes::from(doc))
        };
        let store = &shared.store;
        let mut cut = shared.stream_cuts.subscribe();
        let deadline = tokio::time::Instant::now() + plan.timeout;
        if let Some(b) = operations::notify::streaming_body(store, &plan, Some("OK")) {
            let _ = send(b, &mut file);
        }
        loop {
            let notified = store.hub().changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(b) = operations::notify::streaming_body(store, &plan, None) {
                if tx
                    .send(Bytes::from({
                        let doc = soap::response_envelope(version, &b);
                        trace::append(&mut file, &doc);
                        doc
                    }))
                    .await
                    .is_err()
                {
                    shared.counters.stream_dropped();
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(shared.config.heartbeat_interval) => {
                    if let Some(b) = operations::notify::streaming_body(store, &plan, Some("OK"))
                        && send(b, &mut file).is_err() && tx.is_closed() {
                        shared.counters.stream_dropped();
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if let Some(b) = operations::notify::streaming_body(store, &plan, Some("Closed")) {
                        let _ = send(b, &mut file);
                    }
                    shared.counters.stream_closed();
                    return;
                }
                _ = cut.changed() => {
                    // Cut: the response ends without `Closed`, as behind a load balancer that
                    // drops it.
                    shared.counters.stream_cut();
                    return;
                }
                _ = tx.closed() => {
                    shared.counters.stream_dropped();
                    return;
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    r
}
