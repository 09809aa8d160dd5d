//! `graph-emulator`: runs the Graph emulator until killed.
//!
//! The first line on stdout is `Graph endpoint: http://HOST:PORT`, the second
//! `Authority: http://HOST:PORT/TENANT`, so that scripts starting it with `--listen 127.0.0.1:0`
//! can read the port.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use graph_emulator::{GraphEmulator, GraphEmulatorConfig};

/// An in-memory Microsoft Graph v1.0 server with the contoso.test demo tenant.
#[derive(Debug, Parser)]
#[command(name = "graph-emulator", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// User mailboxes (local parts, comma separated).
    #[arg(long, value_delimiter = ',', default_value = "alice,bob,carol,dave")]
    users: Vec<String>,
    /// Shared mailboxes (local parts, comma separated).
    #[arg(long, value_delimiter = ',', default_value = "contacts")]
    shared_mailboxes: Vec<String>,
    /// Contacts generated in the first shared mailbox's folder "Company Contacts".
    #[arg(long, default_value_t = 0)]
    contacts: usize,
    /// The application's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// The application's client secret (default: the demo secret).
    #[arg(long, env = "GRAPH_EMULATOR_CLIENT_SECRET")]
    client_secret: Option<String>,
    /// A PEM certificate registered for the application: client assertions signed with its key
    /// are accepted (certificate credentials) besides the secret.
    #[arg(long)]
    client_certificate: Option<PathBuf>,
    /// Seconds an access token is accepted.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_secs: u64,
    /// Concurrent requests per mailbox before 429.
    #[arg(long, default_value_t = 4)]
    max_concurrency: usize,
    /// Delay added to each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Directory for request/response traces (defaults to $GRAPH_TRACE_DIR).
    #[arg(long, env = "GRAPH_TRACE_DIR")]
    trace_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let defaults = GraphEmulatorConfig::default();
    let client_certificate = match &args.client_certificate {
        Some(file) => {
            use rustls_pki_types::pem::PemObject as _;
            let der = rustls_pki_types::CertificateDer::from_pem_file(file)
                .map_err(|e| format!("{}: not a PEM certificate: {e}", file.display()))?;
            Some(der.as_ref().to_vec())
        }
        None => None,
    };
    let config = GraphEmulatorConfig {
        listen: args.listen,
        users: args.users,
        shared_mailboxes: args.shared_mailboxes,
        seed_contacts: args.contacts,
        client_id: args.client_id.unwrap_or(defaults.client_id.clone()),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret.clone()),
        client_certificate,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        max_concurrency: args.max_concurrency,
        latency: Duration::from_millis(args.latency_ms),
        trace_dir: args.trace_dir,
        ..defaults
    };
    let emu = GraphEmulator::start(config).await?;
    let mut out = std::io::stdout();
    writeln!(out, "Graph endpoint: {}", emu.url())?;
    writeln!(out, "Authority: {}", emu.authority())?;
    writeln!(out, "Tenant: {} client id: {}", emu.config().tenant_id, emu.config().client_id)?;
    out.flush()?;
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}
