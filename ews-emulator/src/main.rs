//! `ews-emulator`: runs the EWS emulator until killed.
//!
//! The first line on stdout is `EWS endpoint: http://HOST:PORT/EWS/Exchange.asmx`, so that
//! scripts starting it with `--listen 127.0.0.1:0` can read the port.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ews_emulator::{Emulator, EmulatorConfig, ExtendedProtection, FaultRates, ServerVersion};

/// An in-memory Exchange server speaking EWS, with the contoso.test demo tenant.
#[derive(Debug, Parser)]
#[command(name = "ews-emulator", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// User mailboxes (local parts, comma separated); sync-admin is always added.
    #[arg(long, value_delimiter = ',', default_value = "alice,bob,carol,dave")]
    users: Vec<String>,
    /// Password of every account.
    #[arg(long, default_value = "exchange-sync")]
    password: String,
    /// Generated contacts in the public folder "Company Contacts".
    #[arg(long, default_value_t = 100)]
    contacts: usize,
    /// Exchange version to behave as (Exchange2007_SP1 ... Exchange2016).
    #[arg(long, default_value = "Exchange2016", value_parser = parse_version)]
    server_version: ServerVersion,
    /// Concurrent requests per account before ErrorServerBusy.
    #[arg(long, default_value_t = 27)]
    max_concurrency: usize,
    /// Probability of a random ErrorServerBusy per request.
    #[arg(long, default_value_t = 0.0)]
    busy_rate: f64,
    /// Delay added to each EWS answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability to drop the connection after performing a write.
    #[arg(long, default_value_t = 0.0)]
    drop_after_write_rate: f64,
    /// Probability of an HTTP 500 internal error.
    #[arg(long, default_value_t = 0.0)]
    error_500_rate: f64,
    /// Probability of an HTTP 503 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    error_503_rate: f64,
    /// Seed for the random rates.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for request/response traces (defaults to $EWS_TRACE_DIR).
    #[arg(long, env = "EWS_TRACE_DIR")]
    trace_dir: Option<PathBuf>,
    /// Seconds between streaming heartbeats.
    #[arg(long, default_value_t = 30)]
    heartbeat_secs: u64,
    /// Accept only NTLM logins (Basic is refused).
    #[arg(long)]
    require_ntlm: bool,
    /// Extended Protection of NTLM, as IIS's ExtendedProtectionTokenChecking: none, allow or
    /// require (channel binding to the TLS certificate and the target name HTTP/<host>).
    #[arg(long, default_value = "none", value_parser = parse_extended_protection)]
    extended_protection: ExtendedProtection,
    /// Offer and accept Negotiate/Kerberos (service keytab from KRB5_KTNAME; needs a build with
    /// the `kerberos` feature).
    #[arg(long)]
    kerberos: bool,
    /// Serve HTTPS with a generated self-signed certificate, written as PEM to this file.
    #[arg(long)]
    tls_cert_out: Option<PathBuf>,
    /// Mailbox servers behind the endpoint (notification affinity matters with more than one).
    #[arg(long, default_value_t = 1)]
    backend_servers: usize,
    /// Answer successful CreateItems without item ids (an empty m:Items), as Exchange Online may.
    #[arg(long)]
    omit_created_item_ids: bool,
}

fn parse_extended_protection(s: &str) -> Result<ExtendedProtection, String> {
    ExtendedProtection::parse(s).ok_or_else(|| format!("unknown extended protection {s} (none, allow or require)"))
}

fn parse_version(s: &str) -> Result<ServerVersion, String> {
    ServerVersion::parse(s).ok_or_else(|| format!("unknown server version {s}"))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let args_cert_out = args.tls_cert_out.clone();
    let config = EmulatorConfig {
        listen: args.listen,
        users: args.users,
        password: args.password,
        contacts: args.contacts,
        server_version: args.server_version,
        max_concurrency: args.max_concurrency,
        busy_rate: args.busy_rate,
        latency: Duration::from_millis(args.latency_ms),
        faults: FaultRates {
            drop_after_write: args.drop_after_write_rate,
            internal_error: args.error_500_rate,
            unavailable: args.error_503_rate,
        },
        seed: args.seed,
        trace_dir: args.trace_dir,
        heartbeat_interval: Duration::from_secs(args.heartbeat_secs.max(1)),
        tls: args.tls_cert_out.is_some(),
        require_ntlm: args.require_ntlm,
        extended_protection: args.extended_protection,
        kerberos: args.kerberos,
        backend_servers: args.backend_servers.max(1),
        omit_created_item_ids: args.omit_created_item_ids,
        ..EmulatorConfig::default()
    };
    let emu = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ews-emulator: {e}");
            std::process::exit(1);
        }
    };
    if let (Some(path), Some(pem)) = (&args_cert_out, emu.certificate_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("ews-emulator: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "EWS endpoint: {}", emu.url());
    let _ = writeln!(out, "Autodiscover: {}", emu.autodiscover_url());
    let _ = out.flush();
    let _ = tokio::signal::ctrl_c().await;
    emu.shutdown().await;
}
