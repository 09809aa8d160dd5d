//! Items, folders and changes named as a person names them: in plans, reports, the guard's stops,
//! the conflict log and events.
//!
//! An admin recognises a contact by its name and e-mail address, an appointment or a task by its
//! subject, a folder by its mailbox and path; never by an entity id or an EWS item id. A change is
//! shown as the field with its old and new value.

use exchange_sync_core::{Action, FieldValue, Item, ItemKind, field};
use serde::{Deserialize, Serialize};

/// An item as a person names it: its kind, its name (display name, subject, given name and
/// surname, file-as, company) and, for contacts, the e-mail address: `contact "Anna Berg"
/// <anna.berg@contoso.test>`, `calendar item "Company outing"`.
pub fn item_name(item: &Item) -> String {
    let kind = kind_name(&item.kind);
    let text = |f: &str| item.text(f).map(str::trim).filter(|t| !t.is_empty());
    let person = {
        let parts: Vec<&str> =
            [field::GIVEN_NAME, field::MIDDLE_NAME, field::SURNAME].iter().filter_map(|f| text(f)).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    };
    let name = text(field::DISPLAY_NAME)
        .map(str::to_owned)
        .or_else(|| text(field::SUBJECT).map(str::to_owned))
        .or(person)
        .or_else(|| text(field::FILE_AS).map(str::to_owned))
        .or_else(|| text(field::COMPANY).map(str::to_owned));
    let email = text(field::EMAIL1).or_else(|| text(field::EMAIL2)).or_else(|| text(field::EMAIL3));
    match (name, email) {
        (Some(name), Some(email)) if !name.eq_ignore_ascii_case(email) => format!("{kind} {name:?} <{email}>"),
        (Some(name), _) => format!("{kind} {name:?}"),
        (None, Some(email)) => format!("{kind} <{email}>"),
        (None, None) => format!("{kind} without a name"),
    }
}

/// The kind of an item in words.
pub fn kind_name(kind: &ItemKind) -> String {
    match kind {
        ItemKind::Other(class) => format!("item ({class})"),
        other => other.to_string(),
    }
}

/// One field whose value changes, old -> new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The canonical field (`body` and `categories` for those).
    pub field: String,
    /// The value before (`None`: empty).
    pub old: Option<String>,
    /// The value after (`None`: cleared).
    pub new: Option<String>,
}

/// The longest value a change shows before it is cut (bodies can be long).
const MAX_SHOWN: usize = 80;

/// A value as a change shows it: text in quotes, cut when long.
pub fn value_text(value: &FieldValue) -> String {
    match value {
        FieldValue::Text(s) => shorten(s),
        other => other.to_string(),
    }
}

fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_SHOWN {
        return format!("{one_line:?}");
    }
    let cut: String = one_line.chars().take(MAX_SHOWN).collect();
    format!("{:?}", format!("{cut}..."))
}

/// The content fields that differ between two versions of an item, with both values, in field
/// order (the body and the categories last).
pub fn changes(old: &Item, new: &Item) -> Vec<FieldChange> {
    let (a, b) = (old.canonical(), new.canonical());
    let mut names: Vec<&String> = a.fields.keys().chain(b.fields.keys()).collect();
    names.sort();
    names.dedup();
    let mut out: Vec<FieldChange> = names
        .into_iter()
        .filter(|n| a.fields.get(*n) != b.fields.get(*n))
        .map(|n| FieldChange {
            field: n.clone(),
            old: a.fields.get(n).map(value_text),
            new: b.fields.get(n).map(value_text),
        })
        .collect();
    if a.body != b.body {
        let text = |i: &Item| i.body.as_ref().map(|b| b.normalized()).filter(|t| !t.is_empty()).map(|t| shorten(&t));
        out.push(FieldChange { field: "body".into(), old: text(&a), new: text(&b) });
    }
    if a.categories != b.categories {
        let text =
            |i: &Item| (!i.categories.is_empty()).then(|| i.categories.iter().cloned().collect::<Vec<_>>().join(", "));
        out.push(FieldChange { field: "categories".into(), old: text(&a), new: text(&b) });
    }
    out
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(empty)".to_owned());
        write!(f, "{} {} -> {}", self.field, show(&self.old), show(&self.new))
    }
}

/// One write a plan holds, named for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// The item (see [`item_name`]).
    pub item: String,
    /// The member written to (`hub` for the hub).
    pub member: String,
    /// The folder written to: `alice@contoso.test/contacts/Company Contacts`, `public folder
    /// Company Contacts`.
    pub folder: String,
    /// Why, in words (`changed in hub`, `missing copy`, `deleted in bob@contoso.test`).
    pub reason: String,
    /// For updates: each field's old and new value.
    pub changes: Vec<FieldChange>,
    /// The entity (the group's id of the logical item), for `exchange-sync show`.
    pub entity: String,
}

impl PlannedAction {
    /// An action of a plan; `known` is what state holds of the entity (its last converged content:
    /// the copy an update starts from when the plan does not carry it, the item a delete removes),
    /// `folder` names the folder written to.
    pub fn of(action: &Action, known: Option<&Item>, folder: String) -> Self {
        let (verb, item, reason, changes) = match action {
            Action::Create { item, reason, .. } => ("create", item_name(item), reason.to_string(), Vec::new()),
            Action::Update { item, previous, reason, .. } => {
                let before = previous.as_deref().or(known);
                let changes = before.map(|b| changes(b, item)).unwrap_or_default();
                ("update", item_name(item), reason.to_string(), changes)
            }
            Action::Delete { reason, .. } => (
                "delete",
                known.map_or_else(|| format!("item of entity {}", action.entity()), item_name),
                reason.to_string(),
                Vec::new(),
            ),
        };
        PlannedAction {
            action: verb.to_owned(),
            item,
            member: action.member().to_string(),
            folder,
            reason,
            changes,
            entity: action.entity().to_string(),
        }
    }
}

impl std::fmt::Display for PlannedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.action == "delete" { "from" } else { "in" };
        write!(f, "{} {} {place} {} ({})", self.action, self.item, self.folder, self.reason)?;
        if !self.changes.is_empty() {
            let changes: Vec<String> = self.changes.iter().map(ToString::to_string).collect();
            write!(f, ": {}", changes.join("; "))?;
        }
        Ok(())
    }
}

/// The closest candidates to a misspelled name (at most three, closest first): what "did you
/// mean" offers.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&wanted, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// "did you mean ..." for a misspelled name, or nothing when no candidate is close.
pub fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let close = closest(wanted, candidates);
    match close.as_slice() {
        [] => None,
        [one] => Some(format!("did you mean {one:?}?")),
        many => {
            let quoted: Vec<String> = many.iter().map(|c| format!("{c:?}")).collect();
            Some(format!("did you mean one of {}?", quoted.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anna() -> Item {
        Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, "Anna")
            .with(field::SURNAME, "Berg")
            .with(field::EMAIL1, "anna.berg@contoso.test")
            .with(field::PHONE_MOBILE, "+1 100")
    }

    #[test]
    fn items_are_named_by_name_and_address_not_by_id() {
        assert_eq!(item_name(&anna()), "contact \"Anna Berg\" <anna.berg@contoso.test>");
        let outing = Item::new(ItemKind::CalendarItem).with(field::SUBJECT, "Company outing");
        assert_eq!(item_name(&outing), "calendar item \"Company outing\"");
        let bare = Item::new(ItemKind::Contact).with(field::EMAIL1, "x@contoso.test");
        assert_eq!(item_name(&bare), "contact <x@contoso.test>");
        assert_eq!(item_name(&Item::new(ItemKind::Task)), "task without a name");
    }

    #[test]
    fn changes_show_old_and_new_values() {
        let mut after = anna();
        after.set(field::PHONE_MOBILE, "+1 200");
        after.set(field::JOB_TITLE, "CTO");
        after.categories.insert("Board".into());
        let shown: Vec<String> = changes(&anna(), &after).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["job_title (empty) -> \"CTO\"", "phone.mobile \"+1 100\" -> \"+1 200\"", "categories (empty) -> Board"]
        );
    }

    #[test]
    fn did_you_mean_offers_the_closest_names() {
        let known = ["phone.home", "phone.mobile", "phone.home2", "email1.address"];
        assert_eq!(closest("phone.hom", known), vec!["phone.home", "phone.home2"]);
        assert_eq!(did_you_mean("emial1.address", known).as_deref(), Some("did you mean \"email1.address\"?"));
        assert_eq!(did_you_mean("colour", known), None);
    }
}
