//! The admin CLI.
fn main() {}
