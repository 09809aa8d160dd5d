//! Recurrences as canonical text, e.g.
//! `WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|EndDateRecurrence(StartDate=2027-01-04,EndDate=2027-06-28)`.
//!
//! The pattern and range elements are kept with their children in the order the server sent them (its
//! schema order), which makes writing back exact without a table per pattern. Dates lose the time zone
//! offset some servers append (`2027-01-04-08:00`), so the text is the same in every mailbox.
//! `FirstDayOfWeek` is dropped: it is a display preference that varies by mailbox, not content.
//!
//! Exceptions of a recurring master are content, one canonical field per occurrence
//! ([`EXCEPTION_PREFIX`] followed by the occurrence's original start): [`CANCELLED`] for a
//! deleted occurrence, a [`Modified`] (its times, and subject, location, body where they differ
//! from the master) for a modified one. They are read from the master's `DeletedOccurrences` and
//! `ModifiedOccurrences` and the exception items ([`on_server`]); the connector writes them onto a
//! copy's occurrences after the master (DeleteItem / UpdateItem on the occurrence's id). The old
//! summaries [`DELETED_OCCURRENCES`] and [`MODIFIED_OCCURRENCES`] stay as server fields, out of the
//! hash.

use crate::item::EwsItem;
use crate::xml::{Element, XmlWriter};

/// Original start times (UTC, RFC 3339) of the deleted occurrences of a recurring master.
pub const DELETED_OCCURRENCES: &str = "server.recurrence.deleted_occurrences";
/// Modified occurrences of a recurring master, as `ORIGINAL_START -> START/END` (UTC, RFC 3339).
pub const MODIFIED_OCCURRENCES: &str = "server.recurrence.modified_occurrences";

fn utc(text: Option<&str>) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(text?.trim()).ok()?;
    Some(t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The exceptions of a recurring master: (deleted, modified), each in the text form above.
pub(crate) fn exceptions(item: &EwsItem) -> (Vec<String>, Vec<String>) {
    let list = |container: &str, entry: &str, f: &dyn Fn(&Element) -> Option<String>| -> Vec<String> {
        let Some(c) = item.element.child(container) else { return Vec::new() };
        c.children.iter().filter(|e| e.name == entry).filter_map(f).collect()
    };
    // A deleted occurrence's Start is its original start.
    let deleted = list("DeletedOccurrences", "DeletedOccurrence", &|e| utc(e.child_text("Start")));
    let modified = list("ModifiedOccurrences", "Occurrence", &|e| {
        let original = utc(e.child_text("OriginalStart"))?;
        Some(format!("{original} -> {}/{}", utc(e.child_text("Start"))?, utc(e.child_text("End"))?))
    });
    (deleted, modified)
}

fn segment(e: &Element) -> String {
    let parts: Vec<String> = e
        .children
        .iter()
        .filter(|c| c.name != "FirstDayOfWeek")
        .map(|c| {
            let mut v = c.text.trim().to_owned();
            if c.name.ends_with("Date") && v.len() > 10 {
                v.truncate(10);
            }
            format!("{}={}", c.name, v)
        })
        .collect();
    format!("{}({})", e.name, parts.join(","))
}

/// The canonical text of a `t:Recurrence` element (pattern, then range).
pub(crate) fn read(recurrence: &Element) -> Option<String> {
    let mut segments = recurrence.children.iter().map(segment);
    let pattern = segments.next()?;
    let range = segments.next()?;
    Some(format!("{pattern}|{range}"))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The children of a `t:Recurrence` element from canonical text; `None` if the text is malformed.
pub(crate) fn write(text: &str) -> Option<String> {
    let mut w = XmlWriter::new();
    for seg in text.split('|') {
        let (name, rest) = seg.split_once('(')?;
        let inner = rest.strip_suffix(')')?;
        if !valid_name(name) {
            return None;
        }
        let tag = format!("t:{name}");
        w.open(&tag, &[]);
        for kv in inner.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=')?;
            if !valid_name(k) {
                return None;
            }
            w.leaf(&format!("t:{k}"), v);
        }
        w.close(&tag);
    }
    Some(w.finish())
}

/// Prefix of the canonical fields that carry the exceptions of a recurring master, one field per
/// occurrence, named by its original start (UTC, RFC 3339):
/// `recurrence.exception.2026-04-06T09:00:00Z`. One field per occurrence makes the core's
/// three-way merge see occurrence edits one by one: two members moving different occurrences
/// merge, two moving the same occurrence differently is a field conflict, resolved by the group's
/// policy and logged like any other.
pub const EXCEPTION_PREFIX: &str = "recurrence.exception.";

/// The value of a cancelled (deleted) occurrence.
pub const CANCELLED: &str = "cancelled";

/// A modified occurrence: its own times, and what differs from the master (`None`: as the
/// master has it). Stored as JSON in the field value.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Modified {
    /// Start, UTC, RFC 3339.
    pub start: String,
    /// End, UTC, RFC 3339.
    pub end: String,
    /// Subject of the occurrence, when it differs from the master's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Location of the occurrence, when it differs from the master's (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Body of the occurrence, when it differs from the master's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether `body` is HTML.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_html: bool,
}

/// What a copy must show for one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exception {
    /// The occurrence is cancelled.
    Cancelled,
    /// The occurrence is moved or edited.
    Modified(Modified),
}

impl Exception {
    /// The canonical field value.
    pub fn encode(&self) -> String {
        match self {
            Exception::Cancelled => CANCELLED.to_owned(),
            Exception::Modified(m) => serde_json::to_string(m).unwrap_or_default(),
        }
    }

    /// Reads a canonical field value; `None` if malformed.
    pub fn decode(text: &str) -> Option<Self> {
        if text.trim() == CANCELLED {
            return Some(Exception::Cancelled);
        }
        serde_json::from_str(text).ok().map(Exception::Modified)
    }
}

/// The exceptions an item asks for, by original start.
pub fn wanted(item: &exchange_sync_core::item::Item) -> std::collections::BTreeMap<String, Exception> {
    item.fields
        .iter()
        .filter_map(|(name, value)| {
            let original = name.strip_prefix(EXCEPTION_PREFIX)?;
            Some((original.to_owned(), Exception::decode(value.as_text()?)?))
        })
        .collect()
}

/// The exceptions of a master as it is on the server: cancelled occurrences from
/// `DeletedOccurrences`, modified ones from `ModifiedOccurrences` with the details of the
/// exception items in `details` (read by their ids; an exception not among them counts with its
/// times only). A modified occurrence that is back at its slot with the master's content is no
/// exception (Exchange keeps it as one, but it shows nothing else).
pub fn on_server(
    master: &EwsItem,
    details: &[EwsItem],
) -> std::collections::BTreeMap<String, (Exception, Option<String>)> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(d) = master.element.child("DeletedOccurrences") {
        for start in
            d.children.iter().filter(|e| e.name == "DeletedOccurrence").filter_map(|e| utc(e.child_text("Start")))
        {
            out.insert(start, (Exception::Cancelled, None));
        }
    }
    let length = master.date_time("End").zip(master.date_time("Start")).map(|(e, s)| e - s);
    let body_of = |i: &EwsItem| i.body().map(|(t, c)| (t.eq_ignore_ascii_case("HTML"), c.trim().to_owned()));
    let master_body = body_of(master).filter(|(_, c)| !c.is_empty());
    if let Some(m) = master.element.child("ModifiedOccurrences") {
        for o in m.children.iter().filter(|e| e.name == "Occurrence") {
            let (Some(original), Some(start), Some(end)) =
                (utc(o.child_text("OriginalStart")), utc(o.child_text("Start")), utc(o.child_text("End")))
            else {
                continue;
            };
            let id = o.child("ItemId").and_then(|i| i.attr("Id")).map(str::to_owned);
            let detail = details.iter().find(|d| d.id().map(|i| i.id) == id);
            let mut modified = Modified { start: start.clone(), end: end.clone(), ..Default::default() };
            if let Some(d) = detail {
                let differs = |name: &str| {
                    let own = d.text(name).unwrap_or("");
                    (own != master.text(name).unwrap_or("")).then(|| own.to_owned())
                };
                modified.subject = differs("Subject");
                modified.location = differs("Location");
                let body = body_of(d).filter(|(_, c)| !c.is_empty());
                if body != master_body {
                    modified.body_html = body.as_ref().is_some_and(|(html, _)| *html);
                    modified.body = Some(body.map(|(_, c)| c).unwrap_or_default());
                }
            }
            let at_slot = chrono::DateTime::parse_from_rfc3339(&original)
                .ok()
                .zip(length)
                .map(|(o, l)| {
                    let o = o.with_timezone(&chrono::Utc);
                    utc(Some(&o.to_rfc3339())) == Some(start.clone())
                        && utc(Some(&(o + l).to_rfc3339())) == Some(end.clone())
                })
                .unwrap_or(false);
            if at_slot && modified.subject.is_none() && modified.location.is_none() && modified.body.is_none() {
                continue;
            }
            out.insert(original, (Exception::Modified(modified), id));
        }
    }
    out
}
