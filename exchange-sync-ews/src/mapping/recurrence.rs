//! Recurrences as canonical text, e.g.
//! `WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|EndDateRecurrence(StartDate=2027-01-04,EndDate=2027-06-28)`.
//!
//! The pattern and range elements are kept with their children in the order the server sent them (its
//! schema order), which makes writing back exact without a table per pattern. Dates lose the time zone
//! offset some servers append (`2027-01-04-08:00`), so the text is the same in every mailbox.
//! `FirstDayOfWeek` is dropped: it is a display preference that varies by mailbox, not content.
//!
//! Exceptions of a recurring master (`ModifiedOccurrences`, `DeletedOccurrences`) are read into
//! [`DELETED_OCCURRENCES`] and [`MODIFIED_OCCURRENCES`], which are *not* written: copies carry the
//! master's pattern and range only. Writing them needs the occurrence's `InstanceIndex` (DeleteItem or
//! UpdateItem on an `OccurrenceItemId`), that is, expanding the pattern in the master's time zone.
//! The fields sit under the core's `server.` prefix so that they stay out of the content hash: a
//! master with exceptions and its copies without them still converge instead of being rewritten on
//! every pass.

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
