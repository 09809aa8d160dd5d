//! Dumping every request and response to files, for the schema check
//! (`scripts/validate-graph-traces.py`): one JSON file per exchange with the method, the URL
//! (relative to `/v1.0`), the status and both bodies. A `$batch` is one file holding its parts.
//!
//! At most `cap` files per (method, route, status), created exclusively, so that many emulators
//! sharing one directory leave a small, representative set.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

/// Writes trace files into one directory.
#[derive(Debug)]
pub struct TraceWriter {
    dir: PathBuf,
    cap: usize,
    full: Mutex<HashSet<String>>,
}

impl TraceWriter {
    /// Creates the directory if needed.
    pub fn new(dir: &Path, cap: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(TraceWriter { dir: dir.to_path_buf(), cap, full: Mutex::new(HashSet::new()) })
    }

    /// Records one exchange under its route (the URL path with ids replaced by `_`).
    pub fn record(
        &self,
        method: &str,
        url: &str,
        route: &str,
        status: u16,
        request: Option<&Value>,
        response: Option<&Value>,
    ) {
        let clean: String = route.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let key = format!("graph-{method}-{clean}-{status}");
        if self.full.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return;
        }
        let doc = json!({"method": method, "url": url, "status": status, "request": request, "response": response});
        for k in 0..self.cap {
            let path = self.dir.join(format!("{key}-{k:02}.json"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = f.write_all(doc.to_string().as_bytes());
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return,
            }
        }
        self.full.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    }

    /// Records a document the emulator sent (a notification to a subscriber), checked as a
    /// value of the schema type `type_name` rather than through a URL.
    pub fn record_typed(&self, type_name: &str, route: &str, body: &Value) {
        let clean: String = route.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let key = format!("graph-sent-{clean}");
        if self.full.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return;
        }
        let doc = json!({"type": type_name, "body": body});
        for k in 0..self.cap {
            let path = self.dir.join(format!("{key}-{k:02}.json"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = f.write_all(doc.to_string().as_bytes());
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return,
            }
        }
        self.full.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    }
}
