//! Configuration parts built from keyword arguments (Python) or record fields (.NET) through
//! the same serde path as the TOML file: the arguments are written as a small TOML document,
//! one key a line, and read by the service crate's file format (`Config::parse_part`). A key
//! the file format gains needs no code here or in the bindings, and a finding is reported at
//! the keyword that was wrong (its line in the document says which).

use std::path::Path;

use exchange_sync::Config;
use exchange_sync::config::{ConfigError, Diagnostic};
use toml::Value;

use crate::error::{BindingError, Diagnostic as Finding, Result};

/// A validated configuration and what its validation warned about (inline secrets, TLS
/// verification off, ...), however it was made: read from a file or TOML text, or built in code.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The configuration.
    pub config: Config,
    /// The warnings, in the shape both languages hand over.
    pub warnings: Vec<Finding>,
}

impl Checked {
    /// Validates a configuration built in code; its errors are a configuration error.
    pub fn validate(config: Config) -> Result<Self> {
        let warnings = config.validate()?.iter().map(Finding::from).collect();
        Ok(Checked { config, warnings })
    }

    /// Parses and validates TOML text; `file` names it in findings, which carry line and column.
    pub fn from_toml(text: &str, file: Option<&Path>) -> Result<Self> {
        let loaded = Config::from_toml_str(text, file)?;
        Ok(Checked { config: loaded.config, warnings: loaded.warnings.iter().map(Finding::from).collect() })
    }

    /// Reads, parses and validates a TOML file; findings name the file, line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let loaded = Config::load(path)?;
        Ok(Checked { config: loaded.config, warnings: loaded.warnings.iter().map(Finding::from).collect() })
    }
}

/// A TOML document of one configuration part, each key on a line of its own, remembering which
/// keyword each line came from.
#[derive(Debug)]
pub struct Part {
    /// What findings are reported under (`member alice@contoso.test`, `connection exchange`).
    label: String,
    /// The configuration path of the part in the document (`groups[0].members[0]`).
    path: String,
    text: String,
    /// Per line of `text` (0-based), the keyword it holds, if any.
    keywords: Vec<Option<String>>,
}

impl Part {
    /// A part whose findings are reported under `label` (none: at the keyword alone), found at
    /// `path` in the document.
    pub fn new(label: impl Into<String>, path: impl Into<String>) -> Self {
        Part { label: label.into(), path: path.into(), text: String::new(), keywords: Vec::new() }
    }

    /// An entry of a group's `members` or `member_sources` (`array`), in a throw-away group
    /// that the caller leaves behind.
    pub fn group_entry(label: impl Into<String>, array: &str) -> Self {
        let mut part = Part::new(label, format!("groups[0].{array}[0]"));
        part.line(r#"[[groups]]"#, None);
        part.line(r#"id = "_""#, None);
        part.line(r#"connection = "_""#, None);
        part.line(r#"hub = { public_folder = "_" }"#, None);
        part.line(&format!("[[groups.{array}]]"), None);
        part
    }

    fn line(&mut self, text: &str, keyword: Option<&str>) {
        self.text.push_str(text);
        self.text.push('\n');
        self.keywords.push(keyword.map(str::to_owned));
    }

    /// Starts a table (`[service.retry]`, `[groups.hub]`, ...): the keys that follow belong to it.
    pub fn table(&mut self, header: &str) -> &mut Self {
        self.line(&format!("[{header}]"), None);
        self
    }

    /// The key `key` with `value`, given as the keyword `keyword`.
    pub fn set(&mut self, keyword: &str, key: &str, value: impl Into<Value>) -> &mut Self {
        self.line(&format!("{} = {}", Value::from(key), value.into()), Some(keyword));
        self
    }

    /// The key `key` when a value was given.
    pub fn opt<V: Into<Value>>(&mut self, keyword: &str, key: &str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.set(keyword, key, v);
        }
        self
    }

    /// Reads the document: the configuration holding the part, or the findings, each at the
    /// keyword it concerns (`label.keyword`).
    pub fn parse(self) -> Result<Config> {
        Config::parse_part(&self.text).map_err(|e| {
            let diagnostics = e.diagnostics.into_iter().map(|d| self.at_keyword(d)).collect();
            BindingError::Config(ConfigError { diagnostics })
        })
    }

    fn at_keyword(&self, mut d: Diagnostic) -> Diagnostic {
        let by_line = d.location.as_ref().and_then(|l| self.keywords.get(l.line.checked_sub(1)?)?.clone());
        let by_path = d.path.strip_prefix(&self.path).map(|rest| rest.trim_start_matches('.').to_owned());
        let keyword = by_line.or(by_path).filter(|k| !k.is_empty());
        d.path = match keyword {
            Some(k) if self.label.is_empty() => k,
            Some(k) => format!("{}.{k}", self.label),
            None => self.label.clone(),
        };
        // The document is the bindings' own: its lines and columns mean nothing to the caller.
        d.location = None;
        d
    }
}

/// `text` as a key of a table header (quoted: a connection id may hold any character).
pub fn key(text: &str) -> String {
    Value::from(text).to_string()
}

/// A whole number of seconds, as the file format takes them (a fraction stays a float, which
/// the format refuses at the keyword).
pub fn seconds(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        Value::Integer(value as i64)
    } else {
        Value::Float(value)
    }
}

/// A count, as the file format takes it.
pub fn count(value: impl TryInto<i64>) -> Value {
    Value::Integer(value.try_into().unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_reads_like_the_file_and_findings_name_the_keyword() {
        let mut part = Part::group_entry("member alice@contoso.test", "members");
        part.set("mailbox", "mailbox", "alice@contoso.test").set("direction", "direction", "one_way");
        part.opt("on_edit", "on_edit", Some("ignore")).opt::<String>("target", "target", None);
        let config = part.parse().unwrap();
        assert_eq!(config.groups[0].members[0].mailbox, "alice@contoso.test");

        let mut bad = Part::group_entry("member bob@contoso.test", "members");
        bad.set("mailbox", "mailbox", "bob@contoso.test").set("direction", "direction", "sideways");
        let BindingError::Config(e) = bad.parse().unwrap_err() else { panic!("not a configuration error") };
        assert_eq!(e.diagnostics[0].path, "member bob@contoso.test.direction", "{e}");
        assert!(e.diagnostics[0].message.contains("sideways"), "{e}");

        let mut both = Part::group_entry("member carol@contoso.test", "members");
        both.set("mailbox", "mailbox", "carol@contoso.test").set("direction", "direction", "two_way");
        both.set("on_edit", "on_edit", "ignore");
        let BindingError::Config(e) = both.parse().unwrap_err() else { panic!("not a configuration error") };
        assert_eq!(e.diagnostics[0].path, "member carol@contoso.test.on_edit", "{e}");
    }

    #[test]
    fn seconds_are_whole_or_refused_at_their_keyword() {
        assert_eq!(seconds(2.0), Value::Integer(2));
        let mut part = Part::new("service", "service");
        part.table("service").set("poll_interval_secs", "poll_interval_secs", seconds(-1.0));
        let BindingError::Config(e) = part.parse().unwrap_err() else { panic!("not a configuration error") };
        assert_eq!(e.diagnostics[0].path, "service.poll_interval_secs", "{e}");
    }
}
