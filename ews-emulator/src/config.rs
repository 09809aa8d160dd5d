//! What an emulator instance looks like: tenant, version and realism knobs.

use std::path::PathBuf;
use std::time::Duration;

/// The Exchange version the emulator pretends to be.
///
/// It decides `t:ServerVersionInfo`, which `RequestServerVersion` values are accepted (newer
/// than the server answers ErrorInvalidServerVersion) and which features exist (streaming
/// notifications need Exchange 2010 SP1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerVersion {
    /// Exchange 2007 SP1: pull notifications only.
    Exchange2007Sp1,
    /// Exchange 2010 RTM.
    Exchange2010,
    /// Exchange 2010 SP1: first version with streaming notifications.
    Exchange2010Sp1,
    /// Exchange 2010 SP2.
    Exchange2010Sp2,
    /// Exchange 2013.
    Exchange2013,
    /// Exchange 2013 SP1.
    Exchange2013Sp1,
    /// Exchange 2016 (and 2019 / SE, which speak the same schema).
    Exchange2016,
}

/// Every `RequestServerVersion` value the schema knows, oldest first, with the server version
/// that introduced it.
const REQUEST_VERSIONS: &[(&str, ServerVersion)] = &[
    ("Exchange2007", ServerVersion::Exchange2007Sp1),
    ("Exchange2007_SP1", ServerVersion::Exchange2007Sp1),
    ("Exchange2010", ServerVersion::Exchange2010),
    ("Exchange2010_SP1", ServerVersion::Exchange2010Sp1),
    ("Exchange2010_SP2", ServerVersion::Exchange2010Sp2),
    ("Exchange2013", ServerVersion::Exchange2013),
    ("Exchange2013_SP1", ServerVersion::Exchange2013Sp1),
    ("Exchange2015", ServerVersion::Exchange2016),
    ("Exchange2016", ServerVersion::Exchange2016),
    ("V2015_10_05", ServerVersion::Exchange2016),
    ("V2016_01_06", ServerVersion::Exchange2016),
    ("V2016_04_13", ServerVersion::Exchange2016),
    ("V2016_07_13", ServerVersion::Exchange2016),
    ("V2016_10_10", ServerVersion::Exchange2016),
    ("V2017_01_07", ServerVersion::Exchange2016),
    ("V2017_04_14", ServerVersion::Exchange2016),
    ("V2017_07_11", ServerVersion::Exchange2016),
];

impl ServerVersion {
    /// Parses the names used on the wire and on the command line (`Exchange2010_SP2`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Exchange2007_SP1" | "Exchange2007" => Self::Exchange2007Sp1,
            "Exchange2010" => Self::Exchange2010,
            "Exchange2010_SP1" => Self::Exchange2010Sp1,
            "Exchange2010_SP2" => Self::Exchange2010Sp2,
            "Exchange2013" => Self::Exchange2013,
            "Exchange2013_SP1" => Self::Exchange2013Sp1,
            "Exchange2016" | "Exchange2019" => Self::Exchange2016,
            _ => return None,
        })
    }

    /// The `RequestServerVersion` name of this version.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exchange2007Sp1 => "Exchange2007_SP1",
            Self::Exchange2010 => "Exchange2010",
            Self::Exchange2010Sp1 => "Exchange2010_SP1",
            Self::Exchange2010Sp2 => "Exchange2010_SP2",
            Self::Exchange2013 => "Exchange2013",
            Self::Exchange2013Sp1 => "Exchange2013_SP1",
            Self::Exchange2016 => "Exchange2016",
        }
    }

    /// Major, minor, major build, minor build and `Version` attribute of `t:ServerVersionInfo`,
    /// with build numbers of real cumulative updates.
    pub fn version_info(self) -> (u32, u32, u32, u32, &'static str) {
        match self {
            Self::Exchange2007Sp1 => (8, 1, 240, 6, "Exchange2007_SP1"),
            Self::Exchange2010 => (14, 0, 639, 21, "Exchange2010"),
            Self::Exchange2010Sp1 => (14, 1, 218, 15, "Exchange2010_SP1"),
            Self::Exchange2010Sp2 => (14, 2, 247, 5, "Exchange2010_SP2"),
            Self::Exchange2013 => (15, 0, 516, 32, "Exchange2013"),
            Self::Exchange2013Sp1 => (15, 0, 847, 32, "Exchange2013_SP1"),
            Self::Exchange2016 => (15, 1, 2507, 6, "V2017_07_11"),
        }
    }

    /// Whether streaming notifications exist (Exchange 2010 SP1 and later).
    pub fn supports_streaming(self) -> bool {
        self >= Self::Exchange2010Sp1
    }

    /// Whether a client's `RequestServerVersion` is one this server understands: a known name
    /// no newer than the server.
    pub fn accepts_request_version(self, requested: &str) -> bool {
        REQUEST_VERSIONS.iter().any(|(name, introduced)| *name == requested && *introduced <= self)
    }
}

/// IIS's `ExtendedProtectionTokenChecking` on the EWS virtual directory: whether Windows
/// authentication (NTLM here) must be bound to the TLS channel and the service (Extended
/// Protection for Authentication, on by default from Exchange 2019 CU14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtendedProtection {
    /// No check (Exchange before 2019 CU14, or Extended Protection turned off).
    #[default]
    None,
    /// A channel binding or target name the client sends must match; a client sending none is
    /// accepted (older clients keep working).
    Allow,
    /// The client must send a matching channel binding (over HTTPS) and target name.
    Require,
}

impl ExtendedProtection {
    /// Parses IIS's names (`None`, `Allow`, `Require`), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Some(Self::None),
            "allow" => Some(Self::Allow),
            "require" => Some(Self::Require),
            _ => None,
        }
    }
}

/// Faults the emulator can inject, at random rates or one at a time on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Perform the request (including any write), then close the connection without answering.
    DropAfterWrite,
    /// Answer HTTP 500 with an ErrorInternalServerError SOAP fault, without performing the request.
    InternalServerError,
    /// Answer HTTP 503 with `Retry-After`, without performing the request.
    ServiceUnavailable,
    /// Answer ErrorServerBusy (SOAP fault, HTTP 500, BackOffMilliseconds), without performing it.
    ServerBusy,
    /// Answer HTTP 200 with one ErrorServerBusy response message (BackOffMilliseconds in its
    /// MessageXml), the other way Exchange reports throttling; not performed either.
    ServerBusyInMessage,
    /// Process the first N items of the next batch (GetItem, CreateItem, UpdateItem,
    /// DeleteItem), answer ErrorBatchProcessingStopped for the rest, as Exchange does when a
    /// budget runs out in the middle of a batch.
    StopBatchAfter(usize),
}

/// Random fault rates, each a probability in `0.0..=1.0` per EWS request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultRates {
    /// Probability to drop the connection after performing a request.
    pub drop_after_write: f64,
    /// Probability of an HTTP 500 internal error.
    pub internal_error: f64,
    /// Probability of an HTTP 503 with Retry-After.
    pub unavailable: f64,
}

/// Configuration of one emulator instance. `Default` is the demo tenant of the documentation.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: std::net::SocketAddr,
    /// Mail domain of every account.
    pub domain: String,
    /// User mailboxes (local parts). `sync-admin` is always added, with impersonation rights.
    pub users: Vec<String>,
    /// Password of every account.
    pub password: String,
    /// Number of generated contacts in the public folder `Company Contacts`.
    pub contacts: usize,
    /// Version the server reports and behaves as.
    pub server_version: ServerVersion,
    /// Concurrent requests per account before ErrorServerBusy (EWSMaxConcurrency).
    pub max_concurrency: usize,
    /// Probability of a random ErrorServerBusy per request.
    pub busy_rate: f64,
    /// Back-off the emulator asks for in ErrorServerBusy answers.
    pub busy_backoff: Duration,
    /// Delay added before each EWS answer.
    pub latency: Duration,
    /// Random fault injection.
    pub faults: FaultRates,
    /// Seed of the random generator behind busy and fault rates (runs are reproducible).
    pub seed: u64,
    /// Where to dump requests and responses (`*.xml`, streaming bodies `*.stream`).
    /// `Default` takes it from the `EWS_TRACE_DIR` environment variable, so every test that
    /// starts an emulator feeds the CI schema check without extra code.
    pub trace_dir: Option<PathBuf>,
    /// Most documents kept per (operation, direction, response code) in the trace dir.
    pub trace_cap: usize,
    /// Most requests kept in the request log ([`crate::RunningEmulator::request_log`]: mailbox,
    /// operation, body fingerprint, answer, back-off asked for), oldest dropped first; 0 (the
    /// default) keeps none.
    pub request_log: usize,
    /// Largest request body accepted (HTTP 413 above).
    pub max_request_bytes: usize,
    /// Interval between `OK` heartbeats on streaming connections.
    pub heartbeat_interval: Duration,
    /// Length of one `ConnectionTimeout` minute (shorter in tests, so `Closed` arrives quickly).
    pub streaming_minute: Duration,
    /// Refuse Basic authentication: only NTLM (NTLMv2) logs in, as on an on-premises server whose
    /// EWS virtual directory has Basic disabled. NTLM is offered and accepted either way.
    pub require_ntlm: bool,
    /// Extended Protection of NTLM (`ExtendedProtectionTokenChecking`): with `Allow` or `Require`
    /// the emulator checks the channel binding (MsvAvChannelBindings, a hash of its own
    /// certificate) and the target name (MsvAvTargetName, `HTTP/<host>`) of NTLMv2 responses.
    pub extended_protection: ExtendedProtection,
    /// Offer and accept Negotiate with Kerberos (before NTLM, as Exchange does), through GSSAPI
    /// with the service keytab it finds (`KRB5_KTNAME`); needs the `kerberos` feature. Without it
    /// the server offers NTLM only, so Negotiate clients fall back to NTLM.
    pub kerberos: bool,
    /// Serve HTTPS with a freshly generated self-signed certificate (see
    /// `RunningEmulator::certificate_pem`) instead of plain HTTP.
    pub tls: bool,
    /// Mailbox servers behind the endpoint (mailbox `i` lives on server `i % backend_servers`).
    /// With more than one, notification affinity matters as on a real site: a Subscribe sent with
    /// `X-PreferServerAffinity: true` answers an `X-BackEndOverrideCookie` naming the server that
    /// holds the subscription, and a GetStreamingEvents routed to another server (by that cookie,
    /// else by `X-AnchorMailbox`) does not find it.
    pub backend_servers: usize,
    /// Answer a successful CreateItem as Exchange Online may: `ResponseClass="Success"` with an
    /// empty `m:Items`, no id (the item is created; clients find it by a property they wrote, as
    /// exchangelib's `CreateItem` service allows for: an empty `Items` container becomes `True`).
    pub omit_created_item_ids: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            domain: "contoso.test".into(),
            users: ["alice", "bob", "carol", "dave"].iter().map(|s| s.to_string()).collect(),
            password: "exchange-sync".into(),
            contacts: 100,
            server_version: ServerVersion::Exchange2016,
            max_concurrency: 27,
            busy_rate: 0.0,
            busy_backoff: Duration::from_millis(500),
            latency: Duration::ZERO,
            faults: FaultRates::default(),
            seed: 42,
            trace_dir: std::env::var_os("EWS_TRACE_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
            trace_cap: 10,
            request_log: 0,
            max_request_bytes: 32 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(30),
            streaming_minute: Duration::from_secs(60),
            tls: false,
            require_ntlm: false,
            extended_protection: ExtendedProtection::None,
            kerberos: false,
            backend_servers: 1,
            omit_created_item_ids: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_versions_are_checked_against_the_server() {
        let v = ServerVersion::Exchange2010Sp2;
        assert!(v.accepts_request_version("Exchange2010_SP1"));
        assert!(v.accepts_request_version("Exchange2007_SP1"));
        assert!(!v.accepts_request_version("Exchange2013"));
        assert!(!v.accepts_request_version("Exchange2099"));
        assert!(!ServerVersion::Exchange2007Sp1.supports_streaming());
        assert!(ServerVersion::Exchange2016.accepts_request_version("V2017_07_11"));
        assert_eq!(ServerVersion::parse("Exchange2010_SP2"), Some(v));
    }
}
