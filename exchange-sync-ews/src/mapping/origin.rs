//! The project's own MAPI property set and the named properties in it.

use crate::item::EwsItem;
use crate::property::ExtendedFieldUri;

/// The property set GUID of exchange-sync's named properties. Fixed for the life of the project:
/// items written by any version carry their stamps in it.
pub const PROPERTY_SET_ID: &str = "c87d849c-6c0b-43ec-9a40-fead13d50b3c";

/// The named property holding the origin stamp (group + entity) of every item the engine writes.
pub const ORIGIN_PROPERTY: &str = "OriginStamp";

/// The named property holding a meeting's attendees as text on copies, which are written as plain
/// appointments (so that they never send invitations) yet must hash like the meeting they copy.
pub const ATTENDEES_PROPERTY: &str = "Attendees";

/// The extended property that holds the origin stamp (in [`PROPERTY_SET_ID`], named
/// [`ORIGIN_PROPERTY`], a string).
pub fn origin_uri() -> ExtendedFieldUri {
    ExtendedFieldUri::named(PROPERTY_SET_ID, ORIGIN_PROPERTY, "String")
}

pub(crate) fn attendees_uri() -> ExtendedFieldUri {
    ExtendedFieldUri::named(PROPERTY_SET_ID, ATTENDEES_PROPERTY, "String")
}

/// The attendees of a calendar item as canonical text: from our property on copies, otherwise from the
/// meeting's attendee lists (`required:a@x,b@y;optional:c@z`, addresses lower-cased and sorted).
pub(crate) fn attendees_text(item: &EwsItem) -> Option<String> {
    if let Some(t) = item.extended(&attendees_uri()) {
        return Some(t.to_owned()).filter(|t| !t.is_empty());
    }
    let list = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = item
            .element
            .child(name)
            .map(|l| {
                l.children_named("Attendee")
                    .filter_map(|a| a.path(&["Mailbox", "EmailAddress"]).map(|e| e.text.trim().to_ascii_lowercase()))
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut parts = Vec::new();
    for (name, label) in
        [("RequiredAttendees", "required"), ("OptionalAttendees", "optional"), ("Resources", "resources")]
    {
        let l = list(name);
        if !l.is_empty() {
            parts.push(format!("{label}:{}", l.join(",")));
        }
    }
    if parts.is_empty() { None } else { Some(parts.join(";")) }
}
