//! Dumping requests and responses to files for schema validation.
//!
//! Each document goes to its own file named `emulator-Operation-direction-Code-NN.xml`
//! (streaming bodies `...stream`), at most `cap` files per (operation, direction, response
//! code). Files are created exclusively, so the cap holds for the whole directory even when many
//! emulators (one per test, several test processes) share it: a large test run leaves a small,
//! representative set that CI validates quickly.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Writes trace files into one directory.
#[derive(Debug)]
pub struct TraceWriter {
    dir: PathBuf,
    cap: usize,
    full: Mutex<HashSet<(String, &'static str, String)>>,
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
        Ok(TraceWriter { dir: dir.to_path_buf(), cap, full: Mutex::new(HashSet::new()) })
    }

    /// Creates the next free file for a key, or None when the key has `cap` files already.
    fn slot(&self, operation: &str, direction: &'static str, code: &str, ext: &str) -> Option<std::fs::File> {
        let key = (operation.to_string(), direction, code.to_string());
        if self.full.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return None;
        }
        let clean = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
        let (op, code_name) = (clean(operation), clean(code));
        for k in 0..self.cap {
            let path = self.dir.join(format!("emulator-{op}-{direction}-{code_name}-{k:02}.{ext}"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(f) => return Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return None,
            }
        }
        self.full.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        None
    }

    /// Records a request and its response (both under the response's code).
    pub fn record_exchange(&self, operation: &str, code: &str, request: Option<&[u8]>, response: Option<&str>) {
        if let Some(req) = request
            && let Some(mut f) = self.slot(operation, "request", code, "xml")
        {
            let _ = f.write_all(req);
        }
        if let Some(resp) = response
            && let Some(mut f) = self.slot(operation, "response", code, "xml")
        {
            let _ = f.write_all(resp.as_bytes());
        }
    }

    /// Opens a file for a streaming body, if the cap allows one more.
    pub fn stream_file(&self, operation: &str) -> Option<std::fs::File> {
        self.slot(operation, "response", "NoError", "stream")
    }
}

/// Appends one envelope to a stream trace.
pub fn append(file: &mut Option<std::fs::File>, doc: &str) {
    if let Some(f) = file
        && f.write_all(doc.as_bytes()).is_err()
    {
        *file = None;
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
        // A second writer on the same directory respects the same cap.
        let again = TraceWriter::new(dir.path(), 2).unwrap();
        again.record_exchange("GetItem", "NoError", Some(b"<a/>"), Some("<b/>"));
        again.record_exchange("GetItem", "ErrorItemNotFound", None, Some("<b/>"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 6);
        assert_eq!(
            summary_code("<m:ResponseCode>NoError</m:ResponseCode><m:ResponseCode>ErrorX</m:ResponseCode>"),
            "ErrorX"
        );
    }
}
