//! Modifications: how the copies a one-way member receives differ from the shared item.
//!
//! Admins use them to hide what readers need not see (private phone numbers, notes) or to make
//! copies fit the target (a meeting copied into many calendars must not look like an invitation:
//! it becomes a plain appointment). They are pure functions over the core [`Item`]; applying one
//! twice gives the same result as applying it once, so a copy that already holds the modified
//! content is left alone.

use exchange_sync_core::{FieldValue, Item, ItemKind, field};

/// Fields that make a calendar item a meeting rather than a plain appointment. Prefixes end in
/// a dot; other entries are exact names.
pub const MEETING_FIELDS: &[&str] = &[
    field::ATTENDEES,
    "attendees.",
    "required_attendees",
    "optional_attendees",
    "resources",
    "organizer",
    "organizer.",
    "meeting.",
    "is_meeting",
    "response_requested",
];

/// One change applied to every copy a member receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Sets a canonical field to a text value (an empty value clears it).
    SetField {
        /// The canonical field name.
        name: String,
        /// The value.
        value: String,
    },
    /// Removes a canonical field.
    ClearField {
        /// The canonical field name.
        name: String,
    },
    /// Removes the body.
    ClearBody,
    /// Adds a category.
    AddCategory(String),
    /// Removes a category (compared case-insensitively).
    RemoveCategory(String),
    /// Turns meetings into plain appointments: drops attendees, organizer and other meeting
    /// fields ([`MEETING_FIELDS`]) of calendar items. Other kinds are left alone.
    MeetingsToAppointments,
}

impl Modification {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Modification::SetField { name: name.into(), value: value.into() }
    }

    /// Clears `name`.
    pub fn clear(name: impl Into<String>) -> Self {
        Modification::ClearField { name: name.into() }
    }

    /// Applies the modification to an item in place.
    pub fn apply(&self, item: &mut Item) {
        match self {
            Modification::SetField { name, value } => item.set(name, FieldValue::Text(value.clone())),
            Modification::ClearField { name } => {
                item.fields.remove(name);
            }
            Modification::ClearBody => item.body = None,
            Modification::AddCategory(category) => {
                let category = category.trim();
                if !category.is_empty() && !item.categories.iter().any(|c| c.eq_ignore_ascii_case(category)) {
                    item.categories.insert(category.to_owned());
                }
            }
            Modification::RemoveCategory(category) => {
                let category = category.trim();
                item.categories.retain(|c| !c.trim().eq_ignore_ascii_case(category));
            }
            Modification::MeetingsToAppointments => {
                if item.kind == ItemKind::CalendarItem {
                    item.fields.retain(|name, _| !is_meeting_field(name));
                }
            }
        }
    }
}

fn is_meeting_field(name: &str) -> bool {
    MEETING_FIELDS.iter().any(|m| if m.ends_with('.') { name.starts_with(m) } else { name == *m })
}

/// Applies modifications in order to a copy of `item`.
pub fn apply_all(modifications: &[Modification], item: &Item) -> Item {
    let mut copy = item.clone();
    for m in modifications {
        m.apply(&mut copy);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::Body;

    fn meeting() -> Item {
        let mut item = Item::new(ItemKind::CalendarItem)
            .with(field::SUBJECT, "Quarterly review")
            .with(field::LOCATION, "Room 4")
            .with(field::ATTENDEES, FieldValue::TextList(vec!["alice@contoso.test".into()]))
            .with("organizer.address", "bob@contoso.test")
            .with("is_meeting", FieldValue::Boolean(true));
        item.body = Some(Body::text("agenda"));
        item.categories.insert("Board".into());
        item
    }

    #[test]
    fn meetings_become_plain_appointments() {
        let out = apply_all(&[Modification::MeetingsToAppointments], &meeting());
        assert_eq!(out.text(field::SUBJECT), Some("Quarterly review"));
        assert_eq!(out.text(field::LOCATION), Some("Room 4"));
        assert!(out.get(field::ATTENDEES).is_none());
        assert!(out.get("organizer.address").is_none());
        assert!(out.get("is_meeting").is_none());
        let contact = Item::new(ItemKind::Contact).with(field::ATTENDEES, "not a meeting field here");
        assert_eq!(apply_all(&[Modification::MeetingsToAppointments], &contact), contact);
    }

    #[test]
    fn set_clear_and_body() {
        let out = apply_all(
            &[
                Modification::set(field::LOCATION, "Online"),
                Modification::clear(field::SUBJECT),
                Modification::ClearBody,
            ],
            &meeting(),
        );
        assert_eq!(out.text(field::LOCATION), Some("Online"));
        assert!(out.get(field::SUBJECT).is_none());
        assert!(out.body.is_none());
        let cleared_by_empty_set = apply_all(&[Modification::set(field::LOCATION, "")], &meeting());
        assert!(cleared_by_empty_set.get(field::LOCATION).is_none());
    }

    #[test]
    fn categories() {
        let out = apply_all(
            &[Modification::AddCategory("Shared".into()), Modification::RemoveCategory("board".into())],
            &meeting(),
        );
        assert_eq!(out.categories.iter().cloned().collect::<Vec<_>>(), vec!["Shared".to_string()]);
    }

    #[test]
    fn modifications_are_idempotent() {
        let mods = [
            Modification::MeetingsToAppointments,
            Modification::set(field::LOCATION, "Online"),
            Modification::ClearBody,
            Modification::AddCategory("Shared".into()),
        ];
        let once = apply_all(&mods, &meeting());
        assert_eq!(apply_all(&mods, &once), once);
        assert_ne!(once, meeting());
    }
}
