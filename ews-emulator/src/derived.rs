//! Properties the Exchange store derives from others on every save, as the emulator derives them.
//!
//! **Contacts: `FileAs` from `FileAsMapping`.** `FileAsMapping` is EWS's name for the MAPI
//! property PidLidFileUnderId, which "specifies how to generate and recompute the value of the
//! PidLidFileUnder property (`FileAs`) when other contact name properties change" (MS-OXPROPS
//! 2.133, MS-OXOCNTC 2.2.1.1.12). So while a contact has a mapping other than `None`, the store
//! recomputes `FileAs` from the name parts whenever the contact is saved, and a client that
//! writes `FileAs` itself must also write `FileAsMapping` `None` to keep its value (EWS clients
//! do exactly that: php-ews issue 574, "How to update contact fields like fileAs"). The emulator:
//!
//! - on create, a contact without `FileAsMapping` gets `None` when the client wrote a `FileAs`
//!   (its value is kept) and `LastCommaFirst` otherwise (Outlook's and Exchange's default for
//!   English mailboxes);
//! - on create and after every update, while the mapping is not `None`, `FileAs` is set to the
//!   mapping's formula (an empty result removes it); mappings the emulator does not know leave
//!   `FileAs` as it is.
//!
//! **Contacts: `DisplayName`.** Outlook computes a contact's display name from its name parts
//! when a user edits it; Exchange documents no recomputation of a stored `DisplayName` by the
//! store. The emulator keeps a stored `DisplayName` as written and, for a contact stored without
//! one, answers one derived from the names when rendering (see [`crate::render`]).
//!
//! **Tasks.** A task saved with `Status` `Completed` gets `PercentComplete` 100 and, when it has
//! none, a `CompleteDate` (now); a task saved with `PercentComplete` 100 becomes `Completed`.
//! (PidLidTaskStatus, MAPI reference: a complete task's PidLidPercentComplete "must be 1.0" and
//! its PidLidTaskDateCompleted "must be the current date"; Exchange's task object keeps the
//! three consistent.)
//!
//! **Calendar items.** Nothing a client writes is recomputed; `Duration`, `IsRecurring`,
//! `CalendarItemType` and `UID` are server properties answered when rendering.

use chrono::{DateTime, Utc};

use crate::store::Item;
use crate::xml::Element;

/// `FileAsMapping` of a contact created without one and without a `FileAs`.
pub const DEFAULT_FILE_AS_MAPPING: &str = "LastCommaFirst";

/// Prepares a new item's fields before it is stored (defaults that depend on what the client
/// wrote), then derives.
pub fn on_create(item: &mut Item, now: DateTime<Utc>) {
    if item.element == "Contact" && item.field("FileAsMapping").is_none() {
        let mapping = if item.field("FileAs").is_some() { "None" } else { DEFAULT_FILE_AS_MAPPING };
        item.set_field(Element::t_text("FileAsMapping", mapping));
    }
    on_save(item, now);
}

/// Derives what the store derives on every save (create and update).
pub fn on_save(item: &mut Item, now: DateTime<Utc>) {
    match item.element.as_str() {
        "Contact" => derive_file_as(item),
        "Task" => derive_task_completion(item, now),
        _ => {}
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.field(name).map(|f| f.text.trim()).filter(|t| !t.is_empty())
}

fn join(parts: &[Option<&str>], sep: &str) -> String {
    parts.iter().flatten().copied().collect::<Vec<_>>().join(sep)
}

/// The `FileAs` a mapping gives, `None` for mappings the emulator does not compute.
pub fn file_as_for(item: &Item, mapping: &str) -> Option<String> {
    let given = text(item, "GivenName");
    let middle = text(item, "MiddleName");
    let surname = text(item, "Surname");
    let suffix = text(item, "Generation");
    let company = text(item, "CompanyName");
    let first = join(&[given, middle], " ");
    let first = (!first.is_empty()).then_some(first.as_str());
    Some(match mapping {
        // MS-OXOCNTC 0x8017: "<Surname>,<space><GivenName><space><MiddleName>"; with one of the
        // two parts missing, the other alone; with no name at all, the company.
        "LastCommaFirst" => match (surname, first) {
            (Some(s), Some(f)) => format!("{s}, {f}"),
            (Some(one), None) | (None, Some(one)) => one.to_owned(),
            (None, None) => company.unwrap_or_default().to_owned(),
        },
        "FirstSpaceLast" => join(&[first, surname], " "),
        "LastSpaceFirst" => join(&[surname, first], " "),
        "LastFirst" => join(&[surname, first], ""),
        "LastFirstSuffix" => join(&[surname, first, suffix], " "),
        "Company" => company.unwrap_or_default().to_owned(),
        "DisplayName" => text(item, "DisplayName").unwrap_or_default().to_owned(),
        "FirstName" => given.unwrap_or_default().to_owned(),
        "LastName" => surname.unwrap_or_default().to_owned(),
        "Empty" => String::new(),
        _ => return None,
    })
}

fn derive_file_as(item: &mut Item) {
    let mapping = text(item, "FileAsMapping").unwrap_or("None").to_owned();
    if mapping == "None" {
        return;
    }
    match file_as_for(item, &mapping) {
        Some(v) if v.is_empty() => {
            item.remove_field("FileAs");
        }
        Some(v) => item.set_field(Element::t_text("FileAs", v)),
        None => {}
    }
}

fn derive_task_completion(item: &mut Item, now: DateTime<Utc>) {
    let percent = text(item, "PercentComplete").and_then(|p| p.parse::<f64>().ok());
    let completed = text(item, "Status") == Some("Completed");
    if !completed && percent.is_some_and(|p| p >= 100.0) {
        item.set_field(Element::t_text("Status", "Completed"));
    }
    if completed || percent.is_some_and(|p| p >= 100.0) {
        if percent != Some(100.0) {
            item.set_field(Element::t_text("PercentComplete", "100"));
        }
        if item.field("CompleteDate").is_none() {
            item.set_field(Element::t_text("CompleteDate", crate::render::datetime(&now)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(fields: &[(&str, &str)]) -> Item {
        Item {
            number: 1,
            folder: 1,
            element: "Contact".into(),
            item_class: "IPM.Contact".into(),
            fields: fields.iter().map(|(n, v)| Element::t_text(n, *v)).collect(),
            extended: Vec::new(),
            version: 1,
            created: Utc::now(),
            modified: Utc::now(),
            created_seq: 1,
            changed_seq: 1,
        }
    }

    #[test]
    fn file_as_follows_the_names_while_mapped() {
        let mut c = contact(&[("GivenName", "Henrik"), ("Surname", "Andersson")]);
        on_create(&mut c, Utc::now());
        assert_eq!(c.field("FileAs").unwrap().text, "Andersson, Henrik");
        assert_eq!(c.field("FileAsMapping").unwrap().text, DEFAULT_FILE_AS_MAPPING);
        c.set_field(Element::t_text("Surname", "Berg"));
        c.set_field(Element::t_text("FileAs", "Written by a client"));
        on_save(&mut c, Utc::now());
        assert_eq!(c.field("FileAs").unwrap().text, "Berg, Henrik", "recomputed, the client's value overwritten");
        c.set_field(Element::t_text("FileAsMapping", "None"));
        c.set_field(Element::t_text("FileAs", "Boss"));
        on_save(&mut c, Utc::now());
        assert_eq!(c.field("FileAs").unwrap().text, "Boss", "kept with mapping None");
    }

    #[test]
    fn a_file_as_written_at_creation_is_kept() {
        let mut c = contact(&[("FileAs", "SampleContact"), ("GivenName", "Tanja")]);
        on_create(&mut c, Utc::now());
        assert_eq!(c.field("FileAs").unwrap().text, "SampleContact");
        assert_eq!(c.field("FileAsMapping").unwrap().text, "None");
        let mut company = contact(&[("CompanyName", "Contoso")]);
        on_create(&mut company, Utc::now());
        assert_eq!(company.field("FileAs").unwrap().text, "Contoso");
    }

    #[test]
    fn completed_tasks_are_complete() {
        let mut t = contact(&[("Status", "Completed")]);
        t.element = "Task".into();
        on_save(&mut t, Utc::now());
        assert_eq!(t.field("PercentComplete").unwrap().text, "100");
        assert!(t.field("CompleteDate").is_some());
        let mut p = contact(&[("PercentComplete", "100"), ("Status", "InProgress")]);
        p.element = "Task".into();
        on_save(&mut p, Utc::now());
        assert_eq!(p.field("Status").unwrap().text, "Completed");
    }
}
