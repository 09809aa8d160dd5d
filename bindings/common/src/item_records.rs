//! Items as records, in the shape every foreign-function layer can carry: an item with its
//! field values by canonical name, an item of a folder with its id and version, and the edit a
//! folder's `update` applies as sets and removals; converted to and from the core's model here
//! (kinds by name, body format, points in time), once. The .NET facade exports them as they are
//! (feature `uniffi`).

use std::collections::HashMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use exchange_sync_core::{BodyFormat, FieldValue as CoreValue, Item as CoreItem};

use crate::error::Result;
use crate::items::{Edit, kind_name, new_item};

/// A field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FieldValue {
    /// Text.
    Text {
        /// The text.
        value: String,
    },
    /// A whole number.
    Integer {
        /// The number.
        value: i64,
    },
    /// A flag.
    Boolean {
        /// The flag.
        value: bool,
    },
    /// A point in time (UTC). (Not called `DateTime`, which C# code would confuse with
    /// `System.DateTime`.)
    Timestamp {
        /// The time.
        value: SystemTime,
    },
    /// A list of strings.
    TextList {
        /// The strings.
        values: Vec<String>,
    },
}

impl From<&CoreValue> for FieldValue {
    fn from(v: &CoreValue) -> Self {
        match v {
            CoreValue::Text(s) => FieldValue::Text { value: s.clone() },
            CoreValue::Integer(i) => FieldValue::Integer { value: *i },
            CoreValue::Boolean(b) => FieldValue::Boolean { value: *b },
            CoreValue::DateTime(d) => FieldValue::Timestamp { value: SystemTime::from(*d) },
            CoreValue::TextList(l) => FieldValue::TextList { values: l.clone() },
        }
    }
}

impl From<FieldValue> for CoreValue {
    fn from(v: FieldValue) -> Self {
        match v {
            FieldValue::Text { value } => CoreValue::Text(value),
            FieldValue::Integer { value } => CoreValue::Integer(value),
            FieldValue::Boolean { value } => CoreValue::Boolean(value),
            FieldValue::Timestamp { value } => CoreValue::DateTime(DateTime::<Utc>::from(value)),
            FieldValue::TextList { values } => CoreValue::TextList(values),
        }
    }
}

/// A normalized item: a kind, canonical fields (`given_name`, `surname`, `email1.address`,
/// `phone.mobile`, `job_title`, `address.business.city`, ...), a body and categories.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Item {
    /// The fields by canonical name.
    pub fields: HashMap<String, FieldValue>,
    /// `contact`, `calendar_item`, `task`, `note`, `distribution_list`, or an `IPM.*` class.
    #[cfg_attr(feature = "uniffi", uniffi(default = "contact"))]
    pub kind: String,
    /// The body's text, if any.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub body: Option<String>,
    /// Whether the body is HTML (otherwise plain text).
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub body_is_html: bool,
    /// The categories, sorted.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub categories: Vec<String>,
}

impl From<&CoreItem> for Item {
    fn from(i: &CoreItem) -> Self {
        Item {
            kind: kind_name(&i.kind),
            fields: i.fields.iter().map(|(k, v)| (k.clone(), FieldValue::from(v))).collect(),
            body: i.body.as_ref().map(|b| b.content.clone()),
            body_is_html: i.body.as_ref().is_some_and(|b| b.format == BodyFormat::Html),
            categories: i.categories.iter().cloned().collect(),
        }
    }
}

impl Item {
    /// The item in the core's model; an unknown kind is a configuration error.
    pub fn to_core(&self) -> Result<CoreItem> {
        let fields = self.fields.iter().map(|(k, v)| (k.clone(), v.clone().into()));
        new_item(&self.kind, fields, self.body.clone(), self.body_is_html, self.categories.clone())
    }
}

/// An item of a folder: its id there, its version and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FolderItem {
    /// The item's id in this folder (ids are per mailbox: never use one across mailboxes).
    pub id: String,
    /// Its current version (the EWS change key).
    pub version: String,
    /// Its content.
    pub item: Item,
    /// Whether a sync group created or adopted it (it carries an origin stamp).
    pub synced: bool,
}

impl From<exchange_sync::FolderItem> for FolderItem {
    fn from(f: exchange_sync::FolderItem) -> Self {
        FolderItem { id: f.id, version: f.version, item: Item::from(&f.item), synced: f.synced }
    }
}

/// The edit `Folder.Update` applies to an item, as a user would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemEdit {
    /// Fields to set.
    pub set: HashMap<String, FieldValue>,
    /// Fields to remove.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub remove: Vec<String>,
    /// A new body text (`null`: unchanged).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub body: Option<String>,
    /// Remove the body.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub clear_body: bool,
    /// New categories (`null`: unchanged).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub categories: Option<Vec<String>>,
}

impl From<ItemEdit> for Edit {
    fn from(e: ItemEdit) -> Self {
        let set = e.set.into_iter().map(|(k, v)| (k, Some(v.into())));
        Edit {
            fields: set.chain(e.remove.into_iter().map(|k| (k, None))).collect(),
            body: e.body,
            clear_body: e.clear_body,
            categories: e.categories,
        }
    }
}

/// A short way to build the common edit: set text fields.
pub fn set_text_fields(fields: HashMap<String, String>) -> ItemEdit {
    ItemEdit {
        set: fields.into_iter().map(|(k, v)| (k, FieldValue::Text { value: v })).collect(),
        remove: Vec::new(),
        body: None,
        clear_body: false,
        categories: None,
    }
}

/// A contact's name: its display name, or given name and surname (servers derive the display
/// name from them, so it is not synced content).
pub fn contact_name(item: &Item) -> String {
    if let Some(name) = text_field(item, "display_name") {
        return name;
    }
    ["given_name", "surname"].iter().filter_map(|f| text_field(item, f)).collect::<Vec<_>>().join(" ")
}

/// A text field of an item (`null` when missing or not text).
pub fn text_field(item: &Item, name: &str) -> Option<String> {
    match item.fields.get(name) {
        Some(FieldValue::Text { value }) => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_the_core_model() {
        let mut fields = HashMap::new();
        fields.insert("given_name".to_owned(), FieldValue::Text { value: "Zoe".into() });
        fields.insert("children".to_owned(), FieldValue::TextList { values: vec!["A".into()] });
        let item = Item {
            kind: "contact".into(),
            fields,
            body: Some("hi".into()),
            body_is_html: false,
            categories: vec!["VIP".into()],
        };
        assert_eq!(Item::from(&item.to_core().unwrap()), item);
        assert_eq!(contact_name(&item), "Zoe");
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let item = Item {
            kind: "spaceship".into(),
            fields: HashMap::new(),
            body: None,
            body_is_html: false,
            categories: vec![],
        };
        assert_eq!(item.to_core().map_err(|e| e.kind()).err(), Some(crate::ErrorKind::Config));
    }
}
