//! Property paths (`t:FieldURI`, `t:IndexedFieldURI`, `t:ExtendedFieldURI`) and what they do to
//! stored items: read a value, set, append, delete.

use crate::response_code::EwsError;
use crate::schema_order;
use crate::store::Item;
use crate::xml::Element;

/// Identity of an extended (MAPI) property, normalized so that equivalent spellings match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtendedKey {
    /// Property set (distinguished name or GUID), lowercase; empty for tagged properties.
    pub set: String,
    /// `name:X`, `id:N` or `tag:N`.
    pub id: String,
}

impl ExtendedKey {
    /// Reads the attributes of a `t:ExtendedFieldURI`.
    pub fn from_uri(uri: &Element) -> Result<Self, EwsError> {
        let set = uri
            .attr("DistinguishedPropertySetId")
            .or_else(|| uri.attr("PropertySetId"))
            .unwrap_or("")
            .to_ascii_lowercase();
        let id = if let Some(tag) = uri.attr("PropertyTag") {
            format!(
                "tag:{}",
                parse_int(tag).ok_or_else(|| EwsError::new("ErrorInvalidExtendedProperty", "Invalid PropertyTag."))?
            )
        } else if let Some(name) = uri.attr("PropertyName") {
            format!("name:{name}")
        } else if let Some(pid) = uri.attr("PropertyId") {
            format!(
                "id:{}",
                parse_int(pid).ok_or_else(|| EwsError::new("ErrorInvalidExtendedProperty", "Invalid PropertyId."))?
            )
        } else {
            return Err(EwsError::new(
                "ErrorInvalidExtendedProperty",
                "The extended property is missing an identifier.",
            ));
        };
        Ok(ExtendedKey { set, id })
    }

    /// True for a tagged property with this tag.
    pub fn is_tag(&self, tag: u32) -> bool {
        self.id == format!("tag:{tag}")
    }
}

fn parse_int(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A parsed property path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyPath {
    /// `t:FieldURI`: the URI (e.g. `contacts:GivenName`) and the element it names.
    Field {
        /// The FieldURI value.
        uri: String,
        /// Element name of the property.
        element: String,
    },
    /// `t:IndexedFieldURI`: one dictionary entry (e.g. EmailAddress1), maybe one part of it.
    Indexed {
        /// Container element (`EmailAddresses`, `PhoneNumbers`, `PhysicalAddresses`, `ImAddresses`).
        container: String,
        /// Entry key (`FieldIndex`).
        key: String,
        /// Part of a physical address (`Street`, `City`, ...).
        part: Option<String>,
    },
    /// `t:ExtendedFieldURI`, with the element as the client wrote it.
    Extended(ExtendedKey, Element),
}

/// Fields the server maintains itself; clients cannot set them.
pub const READ_ONLY: &[&str] = &[
    "ItemId",
    "ParentFolderId",
    "DateTimeCreated",
    "LastModifiedTime",
    "Size",
    "DateTimeReceived",
    "HasAttachments",
    "IsAssociated",
    "CompleteName",
    "EffectiveRights",
    "LastModifiedName",
    "IsRecurring",
    "CalendarItemType",
    "ConversationId",
    "InstanceKey",
    "OriginalStart",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
];

impl PropertyPath {
    /// Parses a path element; None for anything that is not a path.
    pub fn parse(e: &Element) -> Result<Option<Self>, EwsError> {
        Ok(Some(match &*e.name {
            "FieldURI" => {
                let uri = e.attr("FieldURI").unwrap_or("").to_string();
                let element = uri.rsplit(':').next().unwrap_or("").to_string();
                PropertyPath::Field { uri, element }
            }
            "IndexedFieldURI" => {
                let uri = e.attr("FieldURI").unwrap_or("");
                let key = e.attr("FieldIndex").unwrap_or("").to_string();
                let (container, part) = match uri {
                    "contacts:EmailAddress" => ("EmailAddresses", None),
                    "contacts:PhoneNumber" => ("PhoneNumbers", None),
                    "contacts:ImAddress" => ("ImAddresses", None),
                    u if u.starts_with("contacts:PhysicalAddress:") => {
                        ("PhysicalAddresses", u.rsplit(':').next().map(str::to_string))
                    }
                    _ => {
                        return Err(EwsError::new(
                            "ErrorInvalidPropertyRequest",
                            format!("Unsupported indexed property {uri}"),
                        ));
                    }
                };
                PropertyPath::Indexed { container: container.to_string(), key, part }
            }
            "ExtendedFieldURI" => PropertyPath::Extended(ExtendedKey::from_uri(e)?, e.clone()),
            _ => return Ok(None),
        }))
    }

    /// Parses the first path child of an element (as in `SetItemField`, `IsEqualTo`, ...).
    pub fn first_in(parent: &Element) -> Result<Option<Self>, EwsError> {
        for c in &parent.children {
            if let Some(p) = Self::parse(c)? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}

/// Finds an entry by key in a dictionary container.
fn entry<'a>(container: &'a Element, key: &str) -> Option<&'a Element> {
    container.children.iter().find(|e| e.attr("Key") == Some(key))
}

/// The text value of a stored (client-set) property, for restrictions and sorting.
pub fn stored_value(item: &Item, path: &PropertyPath) -> Option<String> {
    match path {
        PropertyPath::Field { element, .. } => {
            if element == "ItemClass" {
                return Some(item.item_class.clone());
            }
            let f = item.field(element)?;
            if f.children.is_empty() {
                Some(f.text.clone())
            } else {
                // Lists such as Categories: the values joined, so Contains and Exists work.
                Some(f.children.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n"))
            }
        }
        PropertyPath::Indexed { container, key, part } => {
            let e = entry(item.field(container)?, key)?;
            match part {
                Some(p) => e.child(p).map(|c| c.text.clone()),
                None => Some(e.text.clone()),
            }
        }
        PropertyPath::Extended(key, _) => {
            let p = find_extended(&item.extended, key)?;
            match p.child("Value") {
                Some(v) => Some(v.text.clone()),
                None => p
                    .child("Values")
                    .map(|vs| vs.children.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n")),
            }
        }
    }
}

/// The stored `t:ExtendedProperty` with this key.
pub fn find_extended<'a>(props: &'a [Element], key: &ExtendedKey) -> Option<&'a Element> {
    props.iter().find(|p| p.child("ExtendedFieldURI").and_then(|u| ExtendedKey::from_uri(u).ok()).as_ref() == Some(key))
}

fn incorrect_count() -> EwsError {
    EwsError::new(
        "ErrorIncorrectUpdatePropertyCount",
        "An object within a change description must contain one and only one property to modify.",
    )
}

fn check_settable(item: &Item, element: &str) -> Result<(), EwsError> {
    if READ_ONLY.contains(&element) || !schema_order::for_item(&item.element).contains(element) {
        return Err(EwsError::new(
            "ErrorInvalidPropertySet",
            format!("The property {element} can't be set on this item."),
        ));
    }
    Ok(())
}

/// Keeps the parts of a physical address entry in schema order.
fn sort_address(entry: &mut Element) {
    entry.children.sort_by_key(|c| schema_order::position(schema_order::PHYSICAL_ADDRESS_ENTRY, &c.name));
}

/// `SetItemField`: `source` is the item element (e.g. `t:Contact`) carrying the new value.
pub fn set(item: &mut Item, path: &PropertyPath, source: &Element) -> Result<(), EwsError> {
    match path {
        PropertyPath::Field { element, .. } => {
            let new = source.child(element).ok_or_else(incorrect_count)?;
            if element == "ItemClass" {
                item.item_class = new.text.trim().to_string();
                return Ok(());
            }
            check_settable(item, element)?;
            item.set_field(new.clone());
        }
        PropertyPath::Indexed { container, key, part } => {
            check_settable(item, container)?;
            let src = source.child(container).and_then(|c| entry(c, key)).ok_or_else(incorrect_count)?;
            if item.field(container).is_none() {
                item.fields.push(Element::t(container));
            }
            let Some(cont) = item.fields.iter_mut().find(|f| &f.name == container) else {
                return Err(incorrect_count());
            };
            match part {
                None => match cont.children.iter_mut().find(|e| e.attr("Key") == Some(key)) {
                    Some(slot) => *slot = src.clone(),
                    None => cont.children.push(src.clone()),
                },
                Some(p) => {
                    let value = src.child(p).ok_or_else(incorrect_count)?.clone();
                    let idx = match cont.children.iter().position(|e| e.attr("Key") == Some(key)) {
                        Some(i) => i,
                        None => {
                            cont.children.push(Element::t("Entry").with_attr("Key", key.clone()));
                            cont.children.len() - 1
                        }
                    };
                    let e = &mut cont.children[idx];
                    match e.children.iter_mut().find(|c| &c.name == p) {
                        Some(slot) => *slot = value,
                        None => e.children.push(value),
                    }
                    sort_address(e);
                }
            }
        }
        PropertyPath::Extended(key, _) => {
            let src = source
                .children_named("ExtendedProperty")
                .find(|p| p.child("ExtendedFieldURI").and_then(|u| ExtendedKey::from_uri(u).ok()).as_ref() == Some(key))
                .ok_or_else(incorrect_count)?;
            item.extended.retain(|p| {
                p.child("ExtendedFieldURI").and_then(|u| ExtendedKey::from_uri(u).ok()).as_ref() != Some(key)
            });
            item.extended.push(src.clone());
        }
    }
    Ok(())
}

/// `AppendToItemField`: text is appended to Body, list children to lists (Categories, Members,
/// recipients).
pub fn append(item: &mut Item, path: &PropertyPath, source: &Element) -> Result<(), EwsError> {
    let PropertyPath::Field { element, .. } = path else {
        return Err(EwsError::new("ErrorInvalidPropertyAppend", "This property cannot be appended to."));
    };
    check_settable(item, element)?;
    let new = source.child(element).ok_or_else(incorrect_count)?;
    match item.fields.iter_mut().find(|f| &f.name == element) {
        None => item.fields.push(new.clone()),
        Some(old) if element == "Body" => old.text.push_str(&new.text),
        Some(old) if !new.children.is_empty() => old.children.extend(new.children.iter().cloned()),
        Some(_) => {
            return Err(EwsError::new("ErrorInvalidPropertyAppend", "This property cannot be appended to."));
        }
    }
    Ok(())
}

/// `DeleteItemField`: removes a field, a dictionary entry (or part), or an extended property.
pub fn delete(item: &mut Item, path: &PropertyPath) -> Result<(), EwsError> {
    match path {
        PropertyPath::Field { element, .. } => {
            check_settable(item, element)?;
            item.remove_field(element);
        }
        PropertyPath::Indexed { container, key, part } => {
            if let Some(cont) = item.fields.iter_mut().find(|f| &f.name == container) {
                match part {
                    None => cont.children.retain(|e| e.attr("Key") != Some(key)),
                    Some(p) => {
                        if let Some(e) = cont.children.iter_mut().find(|e| e.attr("Key") == Some(key)) {
                            e.children.retain(|c| &c.name != p);
                        }
                        cont.children.retain(|e| e.attr("Key") != Some(key) || !e.children.is_empty());
                    }
                }
                if cont.children.is_empty() {
                    item.remove_field(container);
                }
            }
        }
        PropertyPath::Extended(key, _) => {
            item.extended.retain(|p| {
                p.child("ExtendedFieldURI").and_then(|u| ExtendedKey::from_uri(u).ok()).as_ref() != Some(key)
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Item {
        Item {
            number: 1,
            folder: 1,
            element: "Contact".into(),
            item_class: "IPM.Contact".into(),
            fields: vec![],
            extended: vec![],
            version: 1,
            created: chrono::Utc::now(),
            modified: chrono::Utc::now(),
            created_seq: 1,
            changed_seq: 1,
        }
    }

    fn indexed(uri: &str, key: &str) -> PropertyPath {
        PropertyPath::parse(&Element::t("IndexedFieldURI").with_attr("FieldURI", uri).with_attr("FieldIndex", key))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn sets_and_deletes_indexed_entries_and_address_parts() {
        let mut c = contact();
        let src = Element::t("Contact").with_child(
            Element::t("EmailAddresses").with_child(Element::t_text("Entry", "a@x").with_attr("Key", "EmailAddress2")),
        );
        set(&mut c, &indexed("contacts:EmailAddress", "EmailAddress2"), &src).unwrap();
        assert_eq!(stored_value(&c, &indexed("contacts:EmailAddress", "EmailAddress2")).as_deref(), Some("a@x"));
        let city =
            Element::t("Contact").with_child(Element::t("PhysicalAddresses").with_child(
                Element::t("Entry").with_attr("Key", "Business").with_child(Element::t_text("City", "Köln")),
            ));
        let street = Element::t("Contact").with_child(Element::t("PhysicalAddresses").with_child(
            Element::t("Entry").with_attr("Key", "Business").with_child(Element::t_text("Street", "Ring 1")),
        ));
        set(&mut c, &indexed("contacts:PhysicalAddress:City", "Business"), &city).unwrap();
        set(&mut c, &indexed("contacts:PhysicalAddress:Street", "Business"), &street).unwrap();
        let entry = &c.field("PhysicalAddresses").unwrap().children[0];
        assert_eq!(entry.children[0].name, "Street");
        assert_eq!(entry.children[1].name, "City");
        delete(&mut c, &indexed("contacts:PhysicalAddress:Street", "Business")).unwrap();
        delete(&mut c, &indexed("contacts:PhysicalAddress:City", "Business")).unwrap();
        assert!(c.field("PhysicalAddresses").is_none());
        assert!(set(&mut c, &indexed("contacts:EmailAddress", "EmailAddress1"), &src).is_err());
    }

    #[test]
    fn extended_keys_normalize_tags_and_sets() {
        let a = ExtendedKey::from_uri(&Element::t("ExtendedFieldURI").with_attr("PropertyTag", "0x670A")).unwrap();
        let b = ExtendedKey::from_uri(&Element::t("ExtendedFieldURI").with_attr("PropertyTag", "26378")).unwrap();
        assert_eq!(a, b);
        assert!(a.is_tag(0x670A));
        let n = ExtendedKey::from_uri(
            &Element::t("ExtendedFieldURI")
                .with_attr("DistinguishedPropertySetId", "PublicStrings")
                .with_attr("PropertyName", "x"),
        )
        .unwrap();
        let m = ExtendedKey::from_uri(
            &Element::t("ExtendedFieldURI")
                .with_attr("DistinguishedPropertySetId", "publicstrings")
                .with_attr("PropertyName", "x"),
        )
        .unwrap();
        assert_eq!(n, m);
    }

    #[test]
    fn read_only_and_foreign_fields_are_refused() {
        let mut c = contact();
        let src = Element::t("Contact").with_child(Element::t_text("LastModifiedTime", "2020-01-01T00:00:00Z"));
        let p = PropertyPath::Field { uri: "item:LastModifiedTime".into(), element: "LastModifiedTime".into() };
        assert_eq!(set(&mut c, &p, &src).unwrap_err().code, "ErrorInvalidPropertySet");
        let p = PropertyPath::Field { uri: "calendar:Start".into(), element: "Start".into() };
        assert!(set(&mut c, &p, &Element::t("Contact").with_child(Element::t_text("Start", "x"))).is_err());
    }
}
