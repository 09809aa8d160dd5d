//! Recurrences as canonical text, e.g.
//! `WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|EndDateRecurrence(StartDate=2027-01-04,EndDate=2027-06-28)`.
//!
//! The pattern and range elements are kept with their children in the order the server sent them (its
//! schema order), which makes writing back exact without a table per pattern. Dates lose the time zone
//! offset some servers append (`2027-01-04-08:00`), so the text is the same in every mailbox.
//! `FirstDayOfWeek` is dropped: it is a display preference that varies by mailbox, not content.

use crate::xml::{Element, XmlWriter};

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
