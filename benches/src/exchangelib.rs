//! Benchmark 3: the alternative. `exchangelib_copy.py` (exchangelib, in the project's Python
//! environment) copies the public folder into each mailbox against the same emulator.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use crate::measurement::{Measurement, Meter};
use crate::tenant::{self, Tenant};

type BoxError = Box<dyn std::error::Error>;

/// What the script prints.
#[derive(Deserialize)]
struct ScriptResult {
    items: u64,
    seconds: f64,
    cpu_s: f64,
    peak_rss_mib: f64,
}

/// Runs the script with `python` over `contacts` and `mailboxes`.
pub fn run(
    name: &str,
    python: &Path,
    script: &Path,
    contacts: usize,
    mailboxes: usize,
) -> Result<Measurement, BoxError> {
    let tenant = Tenant::start(mailboxes, contacts)?;
    let addresses: Vec<String> = (0..mailboxes).map(tenant::mailbox).collect();
    let meter = Meter::start(&tenant);
    let output = Command::new(python).arg(script).arg(tenant.url()).arg(addresses.join(",")).output()?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().ok_or("the script printed nothing")?;
    let result: ScriptResult = serde_json::from_str(line)?;
    let mut m = meter.finish(&tenant, name, format!("{contacts} contacts x {mailboxes} mailboxes"), result.items);
    m.seconds = result.seconds;
    m.cpu_client_s = result.cpu_s;
    m.peak_rss_mib = result.peak_rss_mib;
    m.note = "peak RSS and CPU of the Python process".into();
    let expected = (contacts * mailboxes) as u64;
    if result.items != expected {
        m.note = format!("expected {expected} copies, created {}", result.items);
    }
    Ok(m)
}
