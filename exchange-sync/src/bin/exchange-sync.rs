//! `exchange-sync`: the admin CLI (see `exchange_sync::cli` for commands, exit codes and output).

/// See the `mimalloc` feature in `Cargo.toml`: why the service runs on another allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exchange_sync::cli::main().await
}
