//! Runnable programs showing exchange-sync at work; `cargo run --example quickstart`.
