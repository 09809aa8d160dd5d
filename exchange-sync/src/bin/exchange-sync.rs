//! `exchange-sync`: the admin CLI (see `exchange_sync::cli` for commands and exit codes).

use clap::Parser;
use exchange_sync::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

/// See the `mimalloc` feature in `Cargo.toml`: why the service runs on another allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("EXCHANGE_SYNC_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let status = run(cli).await;
    std::process::ExitCode::from(status as u8)
}
