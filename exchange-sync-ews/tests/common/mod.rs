//! Helpers shared by the integration tests: finding the EWS schema and validating documents.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

/// The EWS schema folder: `$EWS_SCHEMA_DIR`, or `../shared/ews-schema` beside the repository root.
pub fn schema_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EWS_SCHEMA_DIR") {
        return PathBuf::from(d);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/ews-schema");
    assert!(dir.join("validate").exists(), "EWS schema not found at {} (set EWS_SCHEMA_DIR)", dir.display());
    dir
}

/// Validates every `*.xml` below `dir` (or the stream files given) and panics with the validator's
/// output if any document is invalid.
pub fn validate(args: &[&Path]) {
    let out = Command::new(schema_dir().join("validate")).args(args).output().expect("run validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schema validation failed:\n{text}");
}

/// Writes a document into a directory and, when set, into `$EWS_TRACE_DIR` too.
pub fn write_doc(dir: &Path, name: &str, doc: &str) {
    std::fs::write(dir.join(name), doc).expect("write document");
    if let Some(t) = std::env::var_os("EWS_TRACE_DIR") {
        let t = PathBuf::from(t);
        std::fs::create_dir_all(&t).expect("trace dir");
        std::fs::write(t.join(format!("schema-test-{name}")), doc).expect("write trace");
    }
}
