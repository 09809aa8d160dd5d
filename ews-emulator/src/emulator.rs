//! Starting and stopping an emulator: the library entry point.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{EmulatorConfig, Fault};
use crate::error::EmulatorError;
use crate::ledger::{Ledger, LoggedRequest, MailboxAccess, MailboxThrottle};
use crate::notifications::NotificationHub;
use crate::store::Store;
use crate::tenant::{self, Directory};
use crate::throttle::{ConcurrencyLimit, FaultInjector};
use crate::trace::TraceWriter;

/// State shared by every connection of one emulator.
#[derive(Debug)]
pub struct Shared {
    /// The configuration it was started with.
    pub config: EmulatorConfig,
    /// Mailboxes and public folders.
    pub store: Arc<Store>,
    /// Accounts and groups.
    pub directory: Directory,
    /// EWS endpoint URL.
    pub endpoint: String,
    pub(crate) limit: Arc<ConcurrencyLimit>,
    pub(crate) faults: FaultInjector,
    pub(crate) trace: Option<TraceWriter>,
    pub(crate) counters: RequestCounters,
    pub(crate) ledger: Ledger,
    /// What NTLM's Extended Protection checks (see [`EmulatorConfig::extended_protection`]).
    pub(crate) protection: crate::ntlm::Protection,
    /// Bumped to end every open streaming response at once, without `ConnectionStatus Closed`.
    pub(crate) stream_cuts: watch::Sender<u64>,
}

/// What the emulator served so far: benchmarks read it to report requests and bytes.
#[derive(Debug, Default)]
pub struct RequestCounters {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    ntlm_logins: AtomicU64,
    binding_refusals: AtomicU64,
    kerberos_logins: AtomicU64,
    streams_open: Arc<AtomicU64>,
    streams_opened: AtomicU64,
    streams_closed: AtomicU64,
    streams_cut: AtomicU64,
    streams_dropped: AtomicU64,
}

/// Counts a GetStreamingEvents connection as open until dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<AtomicU64>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of [`RequestCounters`]: EWS requests and the bytes of their bodies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestStats {
    /// EWS requests answered (Autodiscover excluded).
    pub requests: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes (streaming notification bodies excluded: their length is open).
    pub bytes_out: u64,
    /// Completed NTLM handshakes (one per authenticated connection when clients reuse them).
    pub ntlm_logins: u64,
    /// NTLM handshakes refused by Extended Protection: a channel binding or target name missing
    /// where required, or not matching this server.
    pub binding_refusals: u64,
    /// Requests authenticated by a Kerberos ticket (Negotiate).
    pub kerberos_logins: u64,
    /// GetStreamingEvents connections streaming right now: what notifications cost the server
    /// in long-lived connections.
    pub streams_open: u64,
    /// GetStreamingEvents connections opened since the start.
    pub streams_opened: u64,
    /// Streaming connections the server ended at the end of their lifetime (`ConnectionStatus
    /// Closed`): a client that keeps watching renews each of them.
    pub streams_closed: u64,
    /// Streaming connections ended by [`RunningEmulator::cut_streams`] (without `Closed`).
    pub streams_cut: u64,
    /// Streaming connections the client closed before the server ended them (a client that
    /// gives up on a connection early, or changes its list of subscriptions).
    pub streams_dropped: u64,
    /// Answers that asked a mailbox to back off (ErrorServerBusy, HTTP 503 with Retry-After).
    pub back_offs: u64,
    /// Requests that arrived for a mailbox before the back-off the server had asked of it ended:
    /// requests the server asked not to get (see [`crate::ledger`]).
    pub inside_back_off: u64,
}

impl RequestCounters {
    /// Counts one request with its body length.
    pub(crate) fn request(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a response body length.
    pub(crate) fn response(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one completed NTLM handshake.
    pub(crate) fn ntlm_login(&self) {
        self.ntlm_logins.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request authenticated by Kerberos.
    pub(crate) fn kerberos_login(&self) {
        self.kerberos_logins.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one NTLM handshake refused by Extended Protection.
    pub(crate) fn binding_refused(&self) {
        self.binding_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a streaming connection, open until the returned guard is dropped.
    pub(crate) fn stream_opened(&self) -> OpenStream {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(&self.streams_open))
    }

    /// Counts a streaming connection ended at the end of its lifetime.
    pub(crate) fn stream_closed(&self) {
        self.streams_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a streaming connection cut on request.
    pub(crate) fn stream_cut(&self) {
        self.streams_cut.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a streaming connection its client closed.
    pub(crate) fn stream_dropped(&self) {
        self.streams_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self, ledger: &Ledger) -> RequestStats {
        let (back_offs, inside_back_off) = ledger.counts();
        RequestStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            ntlm_logins: self.ntlm_logins.load(Ordering::Relaxed),
            binding_refusals: self.binding_refusals.load(Ordering::Relaxed),
            kerberos_logins: self.kerberos_logins.load(Ordering::Relaxed),
            streams_open: self.streams_open.load(Ordering::Relaxed),
            streams_opened: self.streams_opened.load(Ordering::Relaxed),
            streams_closed: self.streams_closed.load(Ordering::Relaxed),
            streams_cut: self.streams_cut.load(Ordering::Relaxed),
            streams_dropped: self.streams_dropped.load(Ordering::Relaxed),
            back_offs,
            inside_back_off,
        }
    }
}

/// Entry point: `Emulator::start(config).await`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Builds the tenant, binds the listener and serves in the background.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        if !(0.0..=1.0).contains(&config.busy_rate) {
            return Err(EmulatorError::Config(format!("busy rate {} is not a probability", config.busy_rate)));
        }
        if config.kerberos && !cfg!(feature = "kerberos") {
            return Err(EmulatorError::Config(
                "Kerberos asked for, but this emulator was built without it (cargo feature `kerberos` of ews-emulator)"
                    .into(),
            ));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: config.listen, source })?;
        let trace = match &config.trace_dir {
            Some(dir) => Some(
                TraceWriter::new(dir, config.trace_cap)
                    .map_err(|source| EmulatorError::TraceDir { dir: dir.clone(), source })?,
            ),
            None => None,
        };
        let certificate = if config.tls { Some(crate::tls::generate().map_err(EmulatorError::Tls)?) } else { None };
        let acceptor = match &certificate {
            Some(c) => Some(c.acceptor().map_err(EmulatorError::Tls)?),
            None => None,
        };
        let scheme = if certificate.is_some() { "https" } else { "http" };
        let hub = Arc::new(NotificationHub::default());
        let (directory, store) = tenant::build(&config, hub);
        let protection = crate::ntlm::Protection::new(
            config.extended_protection,
            certificate.as_ref().map(|c| c.cert_der.as_slice()),
            &addr,
        );
        let shared = Arc::new(Shared {
            protection,
            endpoint: format!("{scheme}://{addr}/EWS/Exchange.asmx"),
            limit: ConcurrencyLimit::new(config.max_concurrency),
            faults: FaultInjector::new(config.faults.clone(), config.busy_rate, config.seed),
            trace,
            counters: RequestCounters::default(),
            ledger: Ledger::new(config.request_log),
            stream_cuts: watch::channel(0).0,
            store: Arc::new(store),
            directory,
            config,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(crate::server::serve(listener, Arc::clone(&shared), acceptor, stop_rx));
        tracing::info!(%addr, "EWS emulator listening");
        Ok(RunningEmulator { shared, addr, certificate, stop: stop_tx, task: Some(task) })
    }
}

/// A running emulator. Dropping it stops the server too.
#[derive(Debug)]
pub struct RunningEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    certificate: Option<crate::tls::SelfSigned>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// The EWS endpoint, `http://HOST:PORT/EWS/Exchange.asmx`.
    pub fn url(&self) -> &str {
        &self.shared.endpoint
    }

    /// The SOAP Autodiscover endpoint.
    pub fn autodiscover_url(&self) -> String {
        let scheme = if self.certificate.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/autodiscover/autodiscover.svc", self.addr)
    }

    /// With TLS on: the self-signed certificate (PEM) to add to a client's trust store.
    pub fn certificate_pem(&self) -> Option<String> {
        self.certificate.as_ref().map(|c| c.cert_pem())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The in-memory store, to inspect folders or simulate edits made elsewhere (a phone).
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// Accounts and groups of the tenant.
    pub fn directory(&self) -> &Directory {
        &self.shared.directory
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// EWS requests and body bytes served since the start.
    pub fn request_stats(&self) -> RequestStats {
        self.shared.counters.snapshot(&self.shared.ledger)
    }

    /// Queues a fault for the next request it applies to (deterministic fault injection).
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Makes a mailbox busy: the next request acting on it (impersonated, or routed to it by
    /// `X-PublicFolderMailbox` or `X-AnchorMailbox`) is answered as `throttle` says with its
    /// back-off, and so is every request to it until that back-off has ended (each told what is
    /// left of it); then the mailbox is served again. Other mailboxes are not affected.
    pub fn throttle_mailbox(&self, address: &str, throttle: MailboxThrottle) {
        self.shared.ledger.throttle(address, throttle);
    }

    /// Withdraws (or gives back) the right to act on a mailbox through impersonation: requests
    /// impersonating it answer ErrorImpersonateUserDenied or ErrorNonExistentMailbox, as when
    /// the mailbox leaves the account's management scope or is removed.
    pub fn set_mailbox_access(&self, address: &str, access: MailboxAccess) {
        self.shared.ledger.set_access(address, access);
    }

    /// The requests logged so far, oldest first (empty unless [`EmulatorConfig::request_log`]
    /// is above 0).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.ledger.log()
    }

    /// Ends every open GetStreamingEvents response now, without `ConnectionStatus Closed`, as a
    /// load balancer or a server restart does: a real gap in the notifications. Answers how many
    /// were open.
    pub fn cut_streams(&self) -> u64 {
        let open = self.shared.counters.snapshot(&self.shared.ledger).streams_open;
        self.shared.stream_cuts.send_modify(|n| *n += 1);
        open
    }

    /// Stops accepting, closes connections and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
