//! Dumping requests and responses to files for schema validation.
//!
//! Each document goes to its own file named `NNNNNN-Operation-direction-Code.xml` (streaming
//! bodies `...stream`), at most `cap` files per (operation, direction, response code): a large
//! test run leaves a small, representative set that CI validates quickly.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes trace files into one directory.
#[derive(Debug)]
pub struct TraceWriter {
    dir: PathBuf,
    cap: usize,
    counts: Mutex<HashMap<(String, &'static str, String), usize>>,
    seq: AtomicU64,
}

/// The response code that names a response: the first non-NoError code, else NoError.
pub fn summary_code(body: &str) -> String {
    let mut rest = body;
    while let Some(i) = rest.find("<m:ResponseCode>") {
        rest = &rest[i + "<m:ResponseCode>".len()..];
        let end = rest.find('<').unwrap_or(rest.len());
        let code = &rest[..end];
        if code != "NoError" {
            return code.to_string();
        }
    }
    "NoError".to_string()
}

impl TraceWriter {
    /// Creates the directory if needed.
    pub fn new(dir: &Path, cap: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(TraceWriter {
            dir: dir.to_path_buf(),
            cap,
            counts: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        })
    }

    fn slot(
        &self,
        operation: &str,
        direction: &'static str,
        code: &str,
        ext: &str,
    ) -> Option<PathBuf> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts
            .entry((operation.to_string(), direction, code.to_string()))
            .or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let safe: String = operation
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        // Unique across emulator instances writing into the same directory.
        let tag = std::process::id();
        Some(self.dir.join(format!(
            "emu{tag}-{:06}-{safe}-{direction}-{code}.{ext}",
            seq
        )))
    }

    /// Records a request and its response (both under the response's code).
    pub fn record_exchange(
        &self,
        operation: &str,
        code: &str,
        request: Option<&[u8]>,
        response: Option<&str>,
    ) {
        if let Some(req) = request {
            if let Some(path) = self.slot(operation, "request", code, "xml") {
                let _ = std::fs::write(path, req);
            }
        }
        if let Some(resp) = response {
            if let Some(path) = self.slot(operation, "response", code, "xml") {
                let _ = std::fs::write(path, resp);
            }
        }
    }

    /// Opens a file for a streaming body, if the cap allows one more.
    pub fn stream_file(&self, operation: &str) -> Option<std::fs::File> {
        let path = self.slot(operation, "response", "NoError", "stream")?;
        std::fs::File::create(path).ok()
    }
}

/// Appends one envelope to a stream trace.
pub fn append(file: &mut Option<std::fs::File>, doc: &str) {
    if let Some(f) = file {
        if f.write_all(doc.as_bytes()).is_err() {
            *file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_operation_direction_and_code() {
        let dir = tempfile::tempdir().unwrap();
        let t = TraceWriter::new(dir.path(), 2).unwrap();
        for _ in 0..5 {
            t.record_exchange("GetItem", "NoError", Some(b"<a/>"), Some("<b/>"));
        }
        t.record_exchange("GetItem", "ErrorItemNotFound", None, Some("<b/>"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
        assert_eq!(
            summary_code(
                "<m:ResponseCode>NoError</m:ResponseCode><m:ResponseCode>ErrorX</m:ResponseCode>"
            ),
            "ErrorX"
        );
    }
}
