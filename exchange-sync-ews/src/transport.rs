//! HTTP for EWS: one reqwest client (connection reuse, timeouts, rustls with an optional custom CA
//! bundle), authentication per request, routing headers, and mapping HTTP failures onto [`EwsError`].
//!
//! NTLM authenticates connections, not requests, so with NTLM credentials the transport keeps a set
//! of connection slots instead: each slot is its own reqwest client holding at most one idle
//! connection, used by one request at a time, so the three legs of a handshake (NEGOTIATE, the 401
//! with the CHALLENGE, AUTHENTICATE with the request) travel over one connection, and later requests
//! on an authenticated slot need no handshake. A slot whose connection was closed answers 401 and
//! runs the handshake again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE,
};

use crate::auth::Credentials;
use crate::error::{ErrorContext, EwsError, Result, UnreachableCause};
use crate::negotiate;
use crate::ntlm;
use crate::soap::Impersonation;
use crate::xml::ParseLimits;

/// The default of [`TransportConfig::max_response_bytes`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Most bytes of an answer the client does not use (the page of a 401) read to keep its
/// connection for the next request; a longer one closes the connection instead.
const MAX_DRAINED_BYTES: usize = 64 * 1024;

/// TLS and HTTP settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Limit for one whole request, body included. GetStreamingEvents is not bound by it: a
    /// streaming connection lives the lifetime it asked the server for, guarded by its heartbeat
    /// timeout (see [`crate::EwsClient::get_streaming_events`]).
    pub request_timeout: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Extra trusted CA certificates (PEM), for internal CAs.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Trust only the CA bundle, not the built-in roots.
    pub only_custom_roots: bool,
    /// Accept any certificate. Dangerous; logged as a warning when the client is built.
    pub danger_accept_invalid_certs: bool,
    /// Bounds on response documents (size and nesting, checked when parsing; a streaming
    /// notification document is bound by their `max_bytes` as it arrives).
    pub parse_limits: ParseLimits,
    /// Largest response body the client reads, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`], 64 MiB). Bodies are read as they arrive and refused
    /// ([`crate::ErrorKind::LimitExceeded`]) as soon as they pass it; a larger declared
    /// `Content-Length` is refused before reading. The largest legitimate answers are batched
    /// GetItem answers with bodies (50 full items by default, 100 at most); a batch whose answer
    /// passes the limit is split in halves and read again, so only a single item larger than
    /// the limit fails, alone. Keep it well under the process's memory budget: each request in
    /// flight may hold this much, and its parsed tree about as much again.
    pub max_response_bytes: usize,
    /// Where to write each request envelope (one file per document) for schema validation.
    pub trace_dir: Option<PathBuf>,
    /// Bind NTLM to the TLS channel (Extended Protection, default on): over HTTPS the NTLMv2
    /// response carries a hash of the server's certificate, which servers with
    /// `ExtendedProtectionTokenChecking = Require` (Exchange 2019 CU14 and later) insist on. Turn
    /// it off only behind a TLS-terminating proxy talking to a server set to `Allow` or `None`:
    /// there the certificate the client sees is the proxy's, and a server checking the binding
    /// refuses it, while it accepts none at all. A server that requires the binding refuses NTLM
    /// without it, and the error says so.
    pub ntlm_channel_binding: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(15),
            ca_bundle_pem: None,
            only_custom_roots: false,
            danger_accept_invalid_certs: false,
            parse_limits: ParseLimits::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            trace_dir: std::env::var_os("EWS_TRACE_DIR").map(PathBuf::from),
            ntlm_channel_binding: true,
        }
    }
}

/// Which mailbox a request acts on and how it is routed to the right backend server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Act as this mailbox (ApplicationImpersonation).
    pub impersonation: Option<Impersonation>,
    /// `X-AnchorMailbox`: which mailbox's server handles the request (set automatically when
    /// impersonating).
    pub anchor_mailbox: Option<String>,
    /// `X-PublicFolderMailbox`: the public folder mailbox (hierarchy for folder operations, content
    /// for item operations) on Exchange 2013+.
    pub public_folder_mailbox: Option<String>,
    /// The `X-BackEndOverrideCookie` value to send: pins the requests of a group of notification
    /// subscriptions (Subscribe, GetStreamingEvents, Unsubscribe) to the mailbox server that holds
    /// them. Exchange answers it to a Subscribe sent with `X-PreferServerAffinity`.
    pub backend_cookie: Option<String>,
}

impl Routing {
    /// The mailbox this routing acts on, for per-mailbox limits and error contexts.
    pub fn mailbox(&self) -> Option<&str> {
        self.impersonation
            .as_ref()
            .map(Impersonation::mailbox)
            .or(self.public_folder_mailbox.as_deref())
            .or(self.anchor_mailbox.as_deref())
    }
}

/// The cookie naming the mailbox server that holds a group of notification subscriptions.
pub const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";

/// The affinity cookie a response sets, if any.
pub(crate) fn affinity_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(AFFINITY_COOKIE))
        .map(|(_, value)| value.trim().to_owned())
}

/// The client's cookie jar, minus the affinity cookie: that one belongs to one group of
/// subscriptions, not to every request (see [`Routing::backend_cookie`]). A shared jar would send
/// the cookie of the last Subscribe with every request, pinning them all to one mailbox server.
#[derive(Default)]
struct JarWithoutAffinity(reqwest::cookie::Jar);

impl reqwest::cookie::CookieStore for JarWithoutAffinity {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &reqwest::Url) {
        let mut kept = headers.filter(|v| {
            let name = v.to_str().ok().and_then(|s| s.split('=').next()).unwrap_or("");
            !name.trim().eq_ignore_ascii_case(AFFINITY_COOKIE)
        });
        self.0.set_cookies(&mut kept, url);
    }

    fn cookies(&self, url: &reqwest::Url) -> Option<HeaderValue> {
        self.0.cookies(url)
    }
}

/// The HTTP side of the client.
pub(crate) struct Transport {
    http: reqwest::Client,
    url: reqwest::Url,
    credentials: Credentials,
    trace_dir: Option<PathBuf>,
    /// Connection slots for NTLM (unused with other credentials).
    ntlm_slots: std::sync::Mutex<Vec<NtlmSlot>>,
    /// How NTLM slots are built.
    config: TransportConfig,
    /// The cookies of every client of this transport (server affinity).
    cookies: Arc<JarWithoutAffinity>,
    /// What Negotiate learned about the server (unused with other credentials).
    negotiate: std::sync::Mutex<NegotiateState>,
}

/// What a Negotiate transport learned from the server's first answer.
#[derive(Debug, Default)]
struct NegotiateState {
    /// Whether the server was asked (over HTTPS, once, without credentials).
    probed: bool,
    /// The channel binding application data of the server's certificate.
    channel_binding: Option<Vec<u8>>,
    /// The server offers NTLM but not Negotiate: NTLM from then on.
    ntlm_only: bool,
}

/// Whether a server's offer leaves only NTLM (no Negotiate) of the schemes Negotiate can use.
fn only_ntlm(offered: &[String]) -> bool {
    offered.iter().any(|s| s.eq_ignore_ascii_case("NTLM"))
        && !offered.iter().any(|s| s.eq_ignore_ascii_case("Negotiate"))
}

/// How often a handshake split over two connections by the pool is repeated before its refusal
/// stands.
const MAX_SPLIT_HANDSHAKES: u32 = 3;

/// How many times leg 3 of an NTLM handshake yields before it goes out, so that the connection
/// pool's own task can take leg 1's connection back first.
const POOL_RETURN_YIELDS: usize = 4;

/// Whether NTLM's legs 1 and 3 travelled on one connection. NTLM authenticates a connection: a
/// server refuses an AUTHENTICATE that arrives on a connection it sent no challenge on, and such
/// a refusal says nothing about the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandshakeLegs {
    OneConnection,
    Split,
    Unknown,
}

/// The local socket address a response came on, which names its connection.
fn local_address(response: &reqwest::Response) -> Option<std::net::SocketAddr> {
    response.extensions().get::<hyper_util::client::legacy::connect::HttpInfo>().map(|info| info.local_addr())
}

/// One NTLM connection slot: a client keeping at most one idle connection.
struct NtlmSlot {
    http: reqwest::Client,
    /// Whether the slot's connection completed a handshake (it may have been closed since).
    authenticated: bool,
}

/// A slot checked out for one request; goes back to the free list when dropped.
struct SlotGuard<'a> {
    slots: &'a std::sync::Mutex<Vec<NtlmSlot>>,
    slot: Option<NtlmSlot>,
}

impl SlotGuard<'_> {
    fn slot(&mut self) -> &mut NtlmSlot {
        // Only `drop` takes the slot out.
        self.slot.get_or_insert_with(|| unreachable!("slot taken before drop"))
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(slot);
        }
    }
}

/// Most idle NTLM slots kept (each holds one connection).
const MAX_IDLE_NTLM_SLOTS: usize = 64;

static TRACE_COUNTER: AtomicU64 = AtomicU64::new(0);
/// How many request documents of one operation a process writes to the trace directory.
const TRACE_CAP_PER_OPERATION: usize = 25;
/// Request documents written so far, per operation.
static TRACED_PER_OPERATION: std::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn header(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| EwsError::Configuration("header value is not valid ASCII".into()))
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date (the time left until it;
/// none when it has passed).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = v.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

impl Transport {
    pub(crate) fn new(url: &str, credentials: Credentials, config: &TransportConfig) -> Result<Self> {
        let url = reqwest::Url::parse(url).map_err(|e| EwsError::Configuration(format!("invalid EWS URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EwsError::Configuration("credentials in the URL are not accepted; use Credentials".into()));
        }
        if config.danger_accept_invalid_certs {
            tracing::warn!(host = url.host_str().unwrap_or(""), "TLS certificate verification is OFF for EWS");
        }
        if matches!(credentials, Credentials::Ntlm { .. }) && url.scheme() != "https" {
            tracing::warn!(host = url.host_str().unwrap_or(""), "NTLM over plain HTTP: traffic is not protected");
        }
        let cookies = Arc::new(JarWithoutAffinity::default());
        let http = http_client(config, &cookies, None)?;
        Ok(Self {
            http,
            cookies,
            url,
            credentials,
            trace_dir: config.trace_dir.clone(),
            ntlm_slots: std::sync::Mutex::new(Vec::new()),
            config: config.clone(),
            negotiate: std::sync::Mutex::new(NegotiateState::default()),
        })
    }
}

/// A reqwest client with the configured timeouts and TLS trust; `max_idle` limits the idle
/// connections it keeps (one for an NTLM slot). Every client of a transport shares one cookie jar,
/// so the server-affinity cookies of subscriptions reach the server whichever slot sends a request.
fn http_client(
    config: &TransportConfig,
    cookies: &Arc<JarWithoutAffinity>,
    max_idle: Option<usize>,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .cookie_provider(Arc::clone(cookies))
        // The server's certificate in each response's extensions: NTLM's channel binding hashes it.
        .tls_info(true)
        .user_agent(concat!("exchange-sync/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &config.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| EwsError::Configuration(format!("unreadable CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(EwsError::Configuration("the CA bundle holds no certificate".into()));
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
        if config.only_custom_roots {
            builder = builder.tls_built_in_root_certs(false);
        }
    }
    if config.danger_accept_invalid_certs {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(n) = max_idle {
        builder = builder.pool_max_idle_per_host(n);
    }
    builder.build().map_err(|e| EwsError::Configuration(format!("HTTP client: {e}")))
}

impl Transport {
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    fn trace(&self, operation: &str, envelope: &str) {
        let Some(dir) = &self.trace_dir else { return };
        // A few documents per operation and process show every request shape the process builds;
        // thousands of copies of the same shape only make schema validation slow.
        {
            let mut traced = TRACED_PER_OPERATION.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = traced.entry(operation.to_owned()).or_insert(0);
            if *count >= TRACE_CAP_PER_OPERATION {
                return;
            }
            *count += 1;
        }
        let n = TRACE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("client-{}-{n:06}-{operation}.xml", std::process::id());
        // Written under another name and renamed: a process killed while writing (the failover
        // tests kill workers) leaves no half-written document behind for the schema check.
        let partial = dir.join(format!("{name}.partial"));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&partial, envelope))
            .and_then(|()| std::fs::rename(&partial, dir.join(&name)));
        if let Err(e) = written {
            tracing::debug!(error = %e, "could not write request trace");
        }
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        routing: &Routing,
        envelope: &str,
        force_refresh: bool,
        affinity: bool,
        timeout: Option<Duration>,
    ) -> Result<reqwest::RequestBuilder> {
        let mut r =
            http.post(self.url.clone()).header(CONTENT_TYPE, "text/xml; charset=utf-8").body(envelope.to_owned());
        if let Some(t) = timeout {
            r = r.timeout(t);
        }
        match &self.credentials {
            Credentials::Basic { username, password } => r = r.basic_auth(username, Some(password)),
            Credentials::Bearer(provider) => {
                let token = provider.token(force_refresh).await?;
                let mut v = header(&format!("Bearer {token}"))?;
                v.set_sensitive(true);
                r = r.header(AUTHORIZATION, v);
            }
            // NTLM headers belong to the handshake (see `send_ntlm`).
            Credentials::Ntlm { .. } | Credentials::Negotiate { .. } | Credentials::Anonymous => {}
        }
        let anchor = routing
            .anchor_mailbox
            .as_deref()
            .or(routing.public_folder_mailbox.as_deref())
            .or(routing.impersonation.as_ref().map(Impersonation::mailbox));
        if let Some(a) = anchor {
            r = r.header("X-AnchorMailbox", header(a)?);
        }
        if let Some(p) = &routing.public_folder_mailbox {
            r = r.header("X-PublicFolderMailbox", header(p)?);
        }
        if affinity {
            r = r.header("X-PreferServerAffinity", "true");
        }
        if let Some(cookie) = &routing.backend_cookie {
            r = r.header(COOKIE, header(&format!("{AFFINITY_COOKIE}={cookie}"))?);
        }
        Ok(r)
    }

    /// Sends one envelope and returns the response, refreshing a bearer token once on 401.
    /// HTTP 500 is returned as a response (it carries the SOAP fault); other failures are errors.
    ///
    /// Meant for long responses (streaming notifications): `lifetime` replaces
    /// [`TransportConfig::request_timeout`] for this request, and with NTLM the slot is released at
    /// once and marked unauthenticated, since its connection stays busy with this response.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        lifetime: Duration,
    ) -> Result<reqwest::Response> {
        let (response, slot) = self.send_holding(operation, routing, envelope, affinity, Some(lifetime)).await?;
        if let Some(mut slot) = slot {
            slot.slot().authenticated = false;
        }
        Ok(response)
    }

    /// Sends one envelope; with NTLM also returns the slot, to be held until the body is read.
    async fn send_holding(
        &self,
        operation: &'static str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::Response, Option<SlotGuard<'_>>)> {
        self.trace(operation, envelope);
        let context = || ErrorContext {
            operation: Some(operation),
            mailbox: routing.mailbox().map(str::to_owned),
            ..ErrorContext::default()
        };
        match &self.credentials {
            Credentials::Ntlm { username, password } => {
                return self.send_via_ntlm(username, password, routing, envelope, affinity, timeout, &context()).await;
            }
            Credentials::Negotiate { username, password } => {
                return self
                    .send_negotiate(username, password.as_deref(), routing, envelope, affinity, timeout, &context())
                    .await;
            }
            _ => {}
        }
        let mut refreshed = false;
        loop {
            let response = self
                .request(&self.http, routing, envelope, refreshed, affinity, timeout)
                .await?
                .send()
                .await
                .map_err(|e| self.error(e, context()))?;
            if response.status() == StatusCode::UNAUTHORIZED
                && matches!(self.credentials, Credentials::Bearer(_))
                && !refreshed
            {
                refreshed = true;
                tracing::debug!(operation, "401: refreshing the bearer token");
                drain(response).await;
                continue;
            }
            return Ok((check_status(response, context)?, None));
        }
    }

    /// Sends an envelope over an NTLM-authenticated connection slot.
    #[allow(clippy::too_many_arguments)]
    async fn send_via_ntlm(
        &self,
        username: &str,
        password: &str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
        context: &ErrorContext,
    ) -> Result<(reqwest::Response, Option<SlotGuard<'_>>)> {
        let mut slot = self.checkout()?;
        let response =
            self.send_ntlm(slot.slot(), username, password, routing, envelope, affinity, timeout, context).await;
        if response.is_err() {
            slot.slot().authenticated = false;
        }
        let context = || context.clone();
        Ok((check_status(response?, context)?, Some(slot)))
    }

    /// Sends an envelope with a Negotiate/Kerberos token (one per request: GSSAPI reuses the
    /// service ticket it cached). Over HTTPS the first request goes without credentials, to learn
    /// the schemes the server offers and the certificate the token binds to. A server offering
    /// only NTLM gets NTLM, with the password when one is given.
    #[allow(clippy::too_many_arguments)]
    async fn send_negotiate(
        &self,
        username: &str,
        password: Option<&str>,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
        context: &ErrorContext,
    ) -> Result<(reqwest::Response, Option<SlotGuard<'_>>)> {
        let lock = || self.negotiate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (probed, ntlm_only, mut binding) = {
            let s = lock();
            (s.probed, s.ntlm_only, s.channel_binding.clone())
        };
        if ntlm_only {
            return self.ntlm_fallback(username, password, routing, envelope, affinity, timeout, context).await;
        }
        let host = self.url.host_str().unwrap_or_default().to_owned();
        if self.url.scheme() == "https" && !probed {
            let probe = self
                .request(&self.http, routing, "", false, affinity, None)
                .await?
                .send()
                .await
                .map_err(|e| self.error(e, context.clone()))?;
            let offered = negotiate::offered(probe.headers());
            binding = probe
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(reqwest::tls::TlsInfo::peer_certificate)
                .map(negotiate::channel_binding_data);
            drain(probe).await;
            {
                let mut s = lock();
                s.probed = true;
                s.channel_binding.clone_from(&binding);
                s.ntlm_only = only_ntlm(&offered);
            }
            if only_ntlm(&offered) {
                return self.ntlm_fallback(username, password, routing, envelope, affinity, timeout, context).await;
            }
        }
        let principal = username.to_owned();
        let target = host.clone();
        let token =
            tokio::task::spawn_blocking(move || negotiate::initial_token(&principal, &target, binding.as_deref()))
                .await
                .map_err(|e| EwsError::Configuration(format!("the Kerberos task failed: {e}")))?
                .map_err(|e| EwsError::Unauthorized { context: Box::new(context.clone()), detail: Some(e.0) })?;
        let mut value = header(&format!("Negotiate {}", B64.encode(token)))?;
        value.set_sensitive(true);
        let response = self
            .request(&self.http, routing, envelope, false, affinity, timeout)
            .await?
            .header(AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| self.error(e, context.clone()))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            let context = || context.clone();
            return Ok((check_status(response, context)?, None));
        }
        let offered = negotiate::offered(response.headers());
        drain(response).await;
        if only_ntlm(&offered) {
            lock().ntlm_only = true;
            return self.ntlm_fallback(username, password, routing, envelope, affinity, timeout, context).await;
        }
        let detail = format!(
            "the server refused the Kerberos ticket of {username} for HTTP/{host} (it offers {})",
            if offered.is_empty() { "no scheme".to_owned() } else { offered.join(", ") }
        );
        Err(EwsError::Unauthorized { context: Box::new(context.clone()), detail: Some(detail) })
    }

    /// NTLM for a Negotiate transport whose server offers only NTLM: with the password, or an
    /// error saying what the server offers.
    #[allow(clippy::too_many_arguments)]
    async fn ntlm_fallback(
        &self,
        username: &str,
        password: Option<&str>,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
        context: &ErrorContext,
    ) -> Result<(reqwest::Response, Option<SlotGuard<'_>>)> {
        let Some(password) = password else {
            let detail = format!(
                "the server offers only NTLM, not Negotiate/Kerberos: give the password of {username} for the NTLM \
                 fallback, or authenticate with NTLM"
            );
            return Err(EwsError::Unauthorized { context: Box::new(context.clone()), detail: Some(detail) });
        };
        tracing::debug!("the server offers only NTLM: NTLM instead of Kerberos");
        self.send_via_ntlm(username, password, routing, envelope, affinity, timeout, context).await
    }

    /// A free NTLM slot, or a new one.
    fn checkout(&self) -> Result<SlotGuard<'_>> {
        let free = self.ntlm_slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let slot = match free {
            Some(s) => s,
            None => NtlmSlot { http: http_client(&self.config, &self.cookies, Some(1))?, authenticated: false },
        };
        let mut slots = self.ntlm_slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bound the idle slots: the pool grows to the concurrency in use, not beyond what it needs.
        if slots.len() > MAX_IDLE_NTLM_SLOTS {
            slots.truncate(MAX_IDLE_NTLM_SLOTS);
        }
        Ok(SlotGuard { slots: &self.ntlm_slots, slot: Some(slot) })
    }

    /// Sends an envelope on an NTLM slot: directly when the slot's connection is authenticated, and
    /// through the handshake when it is not (or the server answered 401 because it was closed).
    #[allow(clippy::too_many_arguments)]
    async fn send_ntlm(
        &self,
        slot: &mut NtlmSlot,
        username: &str,
        password: &str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
        context: &ErrorContext,
    ) -> Result<reqwest::Response> {
        if slot.authenticated {
            let response = self
                .request(&slot.http, routing, envelope, false, affinity, timeout)
                .await?
                .send()
                .await
                .map_err(|e| self.error(e, context.clone()))?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            slot.authenticated = false;
            // Read the 401 to its end so that its connection can carry the handshake.
            drain(response).await;
            tracing::debug!("NTLM connection no longer authenticated: handshake again");
        }
        // A handshake whose legs the connection pool split over two connections is repeated: the
        // server never saw a whole handshake, so this is no wrong password (see `HandshakeLegs`).
        let mut attempt = 0;
        let bind = self.config.ntlm_channel_binding;
        loop {
            attempt += 1;
            let (response, legs, bound) = self
                .ntlm_handshake(slot, username, password, routing, envelope, affinity, timeout, context, bind)
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                slot.authenticated = true;
                return Ok(response);
            }
            if legs != HandshakeLegs::Split || attempt >= MAX_SPLIT_HANDSHAKES {
                drain(response).await;
                let detail = self.ntlm_refusal(slot, username, password, routing, context, bound).await;
                return Err(EwsError::Unauthorized { context: Box::new(context.clone()), detail });
            }
            drain(response).await;
            tracing::debug!(attempt, "NTLM handshake split over two connections: handshake again");
        }
    }

    /// What a refused NTLM handshake over HTTPS means beyond "wrong password". When the client
    /// sent no channel binding, one more handshake with it (and an empty body, so that nothing is
    /// performed twice) tells whether the server requires it. The other way round is never tried:
    /// without the binding, an authentication could be relayed by whoever holds the TLS channel.
    async fn ntlm_refusal(
        &self,
        slot: &mut NtlmSlot,
        username: &str,
        password: &str,
        routing: &Routing,
        context: &ErrorContext,
        bound: bool,
    ) -> Option<String> {
        if self.url.scheme() != "https" {
            return None;
        }
        let spn = format!("HTTP/{}", self.url.host_str().unwrap_or_default());
        if bound {
            return Some(format!(
                "NTLM with channel binding (Extended Protection) for {spn} was refused: check the password and \
                 that the account is neither locked nor expired; if they are right, a TLS-terminating proxy or load \
                 balancer may stand between client and server (the binding names the certificate the client saw)"
            ));
        }
        let probe = self.ntlm_handshake(slot, username, password, routing, "", false, None, context, true).await;
        match probe {
            Ok((response, _, true)) if response.status() != StatusCode::UNAUTHORIZED => {
                drain(response).await;
                Some(format!(
                    "server requires channel binding (Extended Protection) for {spn}: it refuses NTLM without a \
                     channel binding token and accepts it with one; turn channel binding on \
                     (TransportConfig::ntlm_channel_binding)"
                ))
            }
            Ok((response, _, _)) => {
                drain(response).await;
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "channel binding probe failed");
                None
            }
        }
    }

    /// The binding of an NTLM handshake: the service principal name of the EWS host and, over
    /// HTTPS when `channel_binding` is on, the hash of the certificate the server presented on
    /// the connection that carried `challenge_response`.
    fn ntlm_binding(&self, challenge_response: &reqwest::Response, channel_binding: bool) -> ntlm::Binding {
        let target_name = self.url.host_str().map(|h| format!("HTTP/{h}"));
        let mut channel_bindings = None;
        if channel_binding && self.url.scheme() == "https" {
            let certificate = challenge_response
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(reqwest::tls::TlsInfo::peer_certificate);
            match certificate {
                Some(der) => channel_bindings = Some(ntlm::channel_binding_hash(der)),
                None => tracing::warn!("the server's TLS certificate is unknown: NTLM goes without channel binding"),
            }
        }
        ntlm::Binding { target_name, channel_bindings }
    }

    /// NTLM's legs 1 and 3 on the slot's client; answers leg 3's response, whether both legs
    /// travelled on one connection, and whether the AUTHENTICATE message carried a channel binding.
    #[allow(clippy::too_many_arguments)]
    async fn ntlm_handshake(
        &self,
        slot: &mut NtlmSlot,
        username: &str,
        password: &str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
        timeout: Option<Duration>,
        context: &ErrorContext,
        channel_binding: bool,
    ) -> Result<(reqwest::Response, HandshakeLegs, bool)> {
        // Leg 1: NEGOTIATE, with an empty body (the server answers 401 before reading one).
        let negotiate = self
            .request(&slot.http, routing, "", false, affinity, None)
            .await?
            .header(AUTHORIZATION, header(&ntlm::header_value(&ntlm::negotiate_message()))?)
            .send()
            .await
            .map_err(|e| self.error(e, context.clone()))?;
        if negotiate.status() != StatusCode::UNAUTHORIZED {
            // A server that accepts the request without authentication, or fails otherwise.
            return Ok((negotiate, HandshakeLegs::Unknown, false));
        }
        let challenged_on = local_address(&negotiate);
        let binding = self.ntlm_binding(&negotiate, channel_binding);
        let challenge = negotiate.headers().get_all(WWW_AUTHENTICATE).iter().find_map(|v| {
            let v = v.to_str().ok()?;
            ntlm::token_from_header(v)
        });
        // Drain the 401 so the connection returns to the slot's pool and carries leg 3. The pool
        // takes it back from a task of its own: give that task its turn before leg 3 goes out.
        drain(negotiate).await;
        for _ in 0..POOL_RETURN_YIELDS {
            tokio::task::yield_now().await;
        }
        let Some(challenge) = challenge else {
            tracing::warn!("the server offers no NTLM challenge (is NTLM enabled on the EWS virtual directory?)");
            return Err(EwsError::Unauthorized { context: Box::new(context.clone()), detail: None });
        };
        let challenge = ntlm::parse_challenge(&challenge)
            .map_err(|e| EwsError::Protocol { reason: e.to_string(), context: Box::new(context.clone()) })?;
        // Leg 3: AUTHENTICATE with the request itself.
        let mut value =
            header(&ntlm::header_value(&ntlm::authenticate_message(username, password, &challenge, &binding)))?;
        value.set_sensitive(true);
        let response = self
            .request(&slot.http, routing, envelope, false, affinity, timeout)
            .await?
            .header(AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| self.error(e, context.clone()))?;
        let legs = match (challenged_on, local_address(&response)) {
            (Some(a), Some(b)) if a == b => HandshakeLegs::OneConnection,
            (Some(_), Some(_)) => HandshakeLegs::Split,
            _ => HandshakeLegs::Unknown,
        };
        Ok((response, legs, binding.channel_bindings.is_some()))
    }

    /// Sends one envelope and reads the whole body, refusing it as soon as it passes
    /// [`TransportConfig::max_response_bytes`]; answers the status, the body and the affinity
    /// cookie the response sets.
    pub(crate) async fn send_and_read(
        &self,
        operation: &'static str,
        routing: &Routing,
        envelope: &str,
        affinity: bool,
    ) -> Result<(u16, Bytes, Option<String>)> {
        let (response, slot) = self.send_holding(operation, routing, envelope, affinity, None).await?;
        let status = response.status().as_u16();
        let cookie = affinity_cookie(response.headers());
        let context = || ErrorContext {
            operation: Some(operation),
            mailbox: routing.mailbox().map(str::to_owned),
            ..ErrorContext::default()
        };
        let body = read_bounded(response, self.config.max_response_bytes, context).await;
        if let (Err(_), Some(mut slot)) = (&body, slot) {
            slot.slot().authenticated = false;
        }
        Ok((status, body?, cookie))
    }

    /// A reqwest error as an [`EwsError`] (see [`transport_error`]), naming this transport's host
    /// when the server is unreachable.
    fn error(&self, e: reqwest::Error, context: ErrorContext) -> EwsError {
        let mut err = transport_error(e, context);
        if let (EwsError::Unreachable { message, .. }, Some(host)) = (&mut err, self.url.host_str()) {
            *message = format!("{host}: {message}");
        }
        err
    }
}

/// Reads a body to its end, refusing it as soon as it passes `limit` bytes (a declared length
/// above it is refused before reading anything). A connection lost while reading leaves the
/// outcome of the request unknown.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
    context: impl Fn() -> ErrorContext,
) -> Result<Bytes> {
    let too_large = |read: u64| {
        let reason = format!(
            "response body larger than the limit of {limit} bytes (TransportConfig::max_response_bytes); \
             refused after reading {read} bytes"
        );
        EwsError::LimitExceeded { reason, context: Box::new(context()) }
    };
    let declared = response.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(0));
    }
    // A declared length is allocated once; otherwise the buffer grows, never beyond the limit.
    let mut body = Vec::with_capacity(declared.map_or(16 * 1024, |n| n as usize));
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(Bytes::from(body)),
            Err(e) => {
                let mut err = transport_error(e, context());
                if let EwsError::Transport { maybe_sent, .. } = &mut err {
                    *maybe_sent = true;
                }
                return Err(err);
            }
        };
        let needed = body.len() + chunk.len();
        if needed > limit {
            return Err(too_large(needed as u64));
        }
        if needed > body.capacity() {
            let target = (body.capacity() * 2).max(needed).min(limit);
            body.reserve_exact(target - body.len());
        }
        body.extend_from_slice(&chunk);
    }
}

/// Reads an answer the client does not use, so that its connection can carry the next request;
/// gives up (and so closes the connection) past [`MAX_DRAINED_BYTES`].
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_DRAINED_BYTES {
            tracing::debug!("answer too long to drain; closing its connection");
            return;
        }
    }
}

/// The response if its status is one the SOAP layer reads (success, or 500 carrying a SOAP fault);
/// the matching error otherwise. A 401 here is final: any refresh or handshake was already tried.
fn check_status(response: reqwest::Response, context: impl Fn() -> ErrorContext) -> Result<reqwest::Response> {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        return Err(EwsError::Unauthorized { context: Box::new(context()), detail: None });
    }
    if status.is_success() || status == StatusCode::INTERNAL_SERVER_ERROR {
        return Ok(response);
    }
    Err(EwsError::Http {
        status: status.as_u16(),
        retry_after: retry_after(response.headers()),
        context: Box::new(context()),
    })
}

/// A reqwest error as an [`EwsError`], without the URL (which could hold secrets in its query):
/// [`EwsError::Unreachable`] when the connection could not be made at all (refused, unknown host,
/// TLS certificate not trusted), [`EwsError::Transport`] otherwise, marking whether the request may
/// have reached the server.
pub(crate) fn transport_error(e: reqwest::Error, context: ErrorContext) -> EwsError {
    let maybe_sent = !e.is_connect() && !e.is_builder();
    let e = e.without_url();
    if e.is_connect()
        && let Some((cause, detail)) = unreachable_cause(&e)
    {
        let message = unreachable_message(cause, &detail);
        return EwsError::Unreachable { cause, message, context: Box::new(context) };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    EwsError::Transport { message, maybe_sent, context: Box::new(context) }
}

/// Why a connection could not be made, when retrying cannot help, with the detail to show.
fn unreachable_cause(e: &(dyn std::error::Error + 'static)) -> Option<(UnreachableCause, String)> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(c) => (UnreachableCause::UntrustedCertificate, format!("{c:?}")),
                other => (UnreachableCause::TlsHandshake, other.to_string()),
            });
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Some((UnreachableCause::ConnectionRefused, String::new()));
            }
            // An I/O error's `source` skips the error it wraps (where rustls puts its own).
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        // hyper-util names a failed name resolution "dns error"; the resolver's own text follows.
        let text = err.to_string();
        if text.starts_with("dns error") || text.starts_with("failed to lookup address") {
            let detail = err.source().map(|s| s.to_string()).unwrap_or(text);
            return Some((UnreachableCause::UnknownHost, detail));
        }
        next = err.source();
    }
    None
}

/// What an administrator reads for an unreachable server: which failure, and what to check.
fn unreachable_message(cause: UnreachableCause, detail: &str) -> String {
    match cause {
        UnreachableCause::ConnectionRefused => {
            "connection refused: nothing listens at the EWS address (check the URL, the port and that the \
             server is running)"
                .to_owned()
        }
        UnreachableCause::UnknownHost => {
            format!("unknown host: the EWS host name does not resolve ({detail}); check the URL and DNS")
        }
        UnreachableCause::UntrustedCertificate => format!(
            "the server's TLS certificate is not trusted ({detail}); if an internal CA issued it, trust that \
             CA (TransportConfig::ca_bundle_pem, `tls.ca_file` in the service configuration); check that the \
             URL names the host the certificate was issued for"
        ),
        UnreachableCause::TlsHandshake => format!("TLS handshake failed: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap_or(HeaderValue::from_static("")));
        h
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(&headers("999999")), Some(Duration::from_secs(999_999)));
        assert_eq!(retry_after(&headers(" 5 ")), Some(Duration::from_secs(5)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).format("%a, %d %b %Y %H:%M:%S GMT");
        let d = retry_after(&headers(&later.to_string())).unwrap_or_default();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")), None, "a date in the past");
        assert_eq!(retry_after(&headers("soon")), None);
    }
}
