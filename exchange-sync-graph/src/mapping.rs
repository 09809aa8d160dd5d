//! Mapping between Graph's `contact` resource and the core's normalized [`Item`], both ways, and
//! the origin stamp as a single-value extended property.
//!
//! The origin stamp is the **same named MAPI property** the EWS connector writes (property set
//! [`PROPERTY_SET_ID`], name [`ORIGIN_PROPERTY`], a string): Graph names it
//! `String {c87d849c-...} Name OriginStamp`. Both connectors therefore recognise the copies the
//! other wrote, which is what lets a hybrid group (an on-premises hub over EWS, Exchange Online
//! members over Graph) find its copies after a crash or a state loss.
//!
//! Every field is read and written through one table ([`CONTACT_FIELDS`]) so that both directions
//! agree. Values are normalized as the EWS mapping normalizes them (dates in UTC, display name and
//! "file as" left out of the content while they are derived from the names), so that the same
//! contact read over EWS and over Graph hashes the same.
//!
//! | Canonical field | Graph property |
//! |---|---|
//! | names, company, job, ... | the property of the same meaning (`givenName`, `companyName`, ...) |
//! | `email1..3.address` | `emailAddresses[0..2].address` |
//! | `im1..3.address` | `imAddresses[0..2]` |
//! | `phone.business`, `phone.business2` | `businessPhones[0..1]` |
//! | `phone.home`, `phone.home2` | `homePhones[0..1]` |
//! | `phone.mobile` | `mobilePhone` |
//! | `address.{business,home,other}.*` | `businessAddress`, `homeAddress`, `otherAddress` |
//! | body (text) | `personalNotes` |
//! | categories | `categories` |
//! | `server.last_modified`, `server.created` | `lastModifiedDateTime`, `createdDateTime` (read only) |
//!
//! Graph's contact has no other phone numbers (fax, pager, assistant, ...), no wedding
//! anniversary, no companies list and no HTML notes: those fields are not carried (see
//! `docs/graph.md`).

use chrono::{DateTime, SecondsFormat, Utc};
use exchange_sync_core::item::{Body, FieldValue, Item, ItemKind};
use exchange_sync_core::{OriginStamp, field};
use serde_json::{Map, Value, json};

/// The property set GUID of exchange-sync's named properties (the EWS connector's, unchanged).
pub const PROPERTY_SET_ID: &str = "c87d849c-6c0b-43ec-9a40-fead13d50b3c";

/// The named property holding the origin stamp.
pub const ORIGIN_PROPERTY: &str = "OriginStamp";

/// The Graph id of the origin stamp's extended property.
pub fn origin_property_id() -> String {
    format!("String {{{PROPERTY_SET_ID}}} Name {ORIGIN_PROPERTY}")
}

/// How a canonical field is held in a Graph contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphSlot {
    /// A string property.
    Text(&'static str),
    /// A date-time property.
    DateTime(&'static str),
    /// A list of strings.
    TextList(&'static str),
    /// An entry of a string list property.
    ListEntry(&'static str, usize),
    /// The address of an entry of `emailAddresses`.
    Email(usize),
    /// A part of an address property.
    AddressPart(&'static str, &'static str),
}

/// Every contact field Graph can hold: (canonical name, where it lives).
pub const CONTACT_FIELDS: &[(&str, GraphSlot)] = &[
    (field::GIVEN_NAME, GraphSlot::Text("givenName")),
    (field::MIDDLE_NAME, GraphSlot::Text("middleName")),
    (field::SURNAME, GraphSlot::Text("surname")),
    (field::NICKNAME, GraphSlot::Text("nickName")),
    (field::INITIALS, GraphSlot::Text("initials")),
    (field::NAME_TITLE, GraphSlot::Text("title")),
    (field::NAME_SUFFIX, GraphSlot::Text("generation")),
    (field::DISPLAY_NAME, GraphSlot::Text("displayName")),
    (field::FILE_AS, GraphSlot::Text("fileAs")),
    (field::COMPANY, GraphSlot::Text("companyName")),
    (field::DEPARTMENT, GraphSlot::Text("department")),
    (field::JOB_TITLE, GraphSlot::Text("jobTitle")),
    (field::OFFICE, GraphSlot::Text("officeLocation")),
    (field::MANAGER, GraphSlot::Text("manager")),
    (field::ASSISTANT_NAME, GraphSlot::Text("assistantName")),
    (field::SPOUSE_NAME, GraphSlot::Text("spouseName")),
    (field::BUSINESS_HOME_PAGE, GraphSlot::Text("businessHomePage")),
    (field::PROFESSION, GraphSlot::Text("profession")),
    (field::BIRTHDAY, GraphSlot::DateTime("birthday")),
    (field::CHILDREN, GraphSlot::TextList("children")),
    (field::EMAIL1, GraphSlot::Email(0)),
    (field::EMAIL2, GraphSlot::Email(1)),
    (field::EMAIL3, GraphSlot::Email(2)),
    ("im1.address", GraphSlot::ListEntry("imAddresses", 0)),
    ("im2.address", GraphSlot::ListEntry("imAddresses", 1)),
    ("im3.address", GraphSlot::ListEntry("imAddresses", 2)),
    (field::PHONE_BUSINESS, GraphSlot::ListEntry("businessPhones", 0)),
    ("phone.business2", GraphSlot::ListEntry("businessPhones", 1)),
    (field::PHONE_HOME, GraphSlot::ListEntry("homePhones", 0)),
    ("phone.home2", GraphSlot::ListEntry("homePhones", 1)),
    (field::PHONE_MOBILE, GraphSlot::Text("mobilePhone")),
    ("address.business.street", GraphSlot::AddressPart("businessAddress", "street")),
    ("address.business.city", GraphSlot::AddressPart("businessAddress", "city")),
    ("address.business.state", GraphSlot::AddressPart("businessAddress", "state")),
    ("address.business.country", GraphSlot::AddressPart("businessAddress", "countryOrRegion")),
    ("address.business.postal_code", GraphSlot::AddressPart("businessAddress", "postalCode")),
    ("address.home.street", GraphSlot::AddressPart("homeAddress", "street")),
    ("address.home.city", GraphSlot::AddressPart("homeAddress", "city")),
    ("address.home.state", GraphSlot::AddressPart("homeAddress", "state")),
    ("address.home.country", GraphSlot::AddressPart("homeAddress", "countryOrRegion")),
    ("address.home.postal_code", GraphSlot::AddressPart("homeAddress", "postalCode")),
    ("address.other.street", GraphSlot::AddressPart("otherAddress", "street")),
    ("address.other.city", GraphSlot::AddressPart("otherAddress", "city")),
    ("address.other.state", GraphSlot::AddressPart("otherAddress", "state")),
    ("address.other.country", GraphSlot::AddressPart("otherAddress", "countryOrRegion")),
    ("address.other.postal_code", GraphSlot::AddressPart("otherAddress", "postalCode")),
];

/// The Graph properties a full read or write of a contact touches (for `$select`).
pub fn contact_properties() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CONTACT_FIELDS
        .iter()
        .map(|(_, slot)| match slot {
            GraphSlot::Text(p) | GraphSlot::DateTime(p) | GraphSlot::TextList(p) | GraphSlot::ListEntry(p, _) => *p,
            GraphSlot::Email(_) => "emailAddresses",
            GraphSlot::AddressPart(p, _) => *p,
        })
        .collect();
    names.extend(["personalNotes", "categories", "changeKey", "createdDateTime", "lastModifiedDateTime"]);
    names.dedup();
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(*n));
    names
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|d| d.with_timezone(&Utc))
}

fn text_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Reads a Graph contact into the normalized form, with its origin stamp if it carries a valid one.
pub fn to_item(contact: &Value) -> (Item, Option<OriginStamp>) {
    let mut item = Item::new(ItemKind::Contact);
    for (canonical, slot) in CONTACT_FIELDS {
        let value = match slot {
            GraphSlot::Text(p) => text_at(contact, p).map(|s| FieldValue::Text(s.to_owned())),
            GraphSlot::DateTime(p) => text_at(contact, p).and_then(utc).map(FieldValue::DateTime),
            GraphSlot::TextList(p) => contact.get(*p).and_then(Value::as_array).map(|a| {
                FieldValue::TextList(
                    a.iter().filter_map(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty()).collect(),
                )
            }),
            GraphSlot::ListEntry(p, i) => contact
                .get(*p)
                .and_then(Value::as_array)
                .and_then(|a| a.get(*i))
                .and_then(Value::as_str)
                .map(|s| FieldValue::Text(s.trim().to_owned())),
            GraphSlot::Email(i) => contact
                .get("emailAddresses")
                .and_then(Value::as_array)
                .and_then(|a| a.get(*i))
                .and_then(|e| text_at(e, "address"))
                .map(|s| FieldValue::Text(s.to_owned())),
            GraphSlot::AddressPart(p, part) => {
                contact.get(*p).and_then(|a| text_at(a, part)).map(|s| FieldValue::Text(s.to_owned()))
            }
        };
        if let Some(v) = value {
            item.set(canonical, v);
        }
    }
    drop_derived_names(&mut item);
    if let Some(notes) = contact.get("personalNotes").and_then(Value::as_str)
        && !notes.trim().is_empty()
    {
        item.body = Some(Body::text(notes));
    }
    if let Some(cats) = contact.get("categories").and_then(Value::as_array) {
        item.categories = cats.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    }
    if let Some(t) = text_at(contact, "lastModifiedDateTime").and_then(utc) {
        item.set(field::SERVER_LAST_MODIFIED, FieldValue::DateTime(t));
    }
    if let Some(t) = text_at(contact, "createdDateTime").and_then(utc) {
        item.set(field::SERVER_CREATED, FieldValue::DateTime(t));
    }
    (item, origin_of(contact))
}

/// The origin stamp among a contact's expanded extended properties.
pub fn origin_of(contact: &Value) -> Option<OriginStamp> {
    let wanted = origin_property_id();
    contact
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)?
        .iter()
        .find(|p| p.get("id").and_then(Value::as_str).is_some_and(|id| same_property_id(id, &wanted)))
        .and_then(|p| p.get("value").and_then(Value::as_str))
        .and_then(|v| v.parse().ok())
}

/// Whether two extended property ids name the same property (type and GUID ignore case).
pub fn same_property_id(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let parts: Vec<&str> = s.split_whitespace().collect();
        parts
            .iter()
            .enumerate()
            .map(
                |(i, p)| if i + 1 < parts.len() || parts.len() == 2 { p.to_ascii_lowercase() } else { (*p).to_owned() },
            )
            .collect::<Vec<_>>()
    };
    norm(a) == norm(b)
}

/// The name parts a contact's display name and "file as" derive from.
fn derived_candidates(item: &Item) -> Vec<String> {
    let part = |name: &str| item.text(name).map(str::trim).filter(|s| !s.is_empty());
    let (given, middle, surname, suffix) =
        (part(field::GIVEN_NAME), part(field::MIDDLE_NAME), part(field::SURNAME), part(field::NAME_SUFFIX));
    let joined = |parts: &[Option<&str>], sep: &str| parts.iter().flatten().copied().collect::<Vec<_>>().join(sep);
    let full = joined(&[given, middle, surname, suffix], " ");
    let mut derived = vec![full.clone(), joined(&[given, surname], " "), joined(&[surname, given], " ")];
    if let (Some(s), Some(g)) = (surname, given) {
        derived.push(format!("{s}, {g}"));
        derived.push(format!("{s}, {}", joined(&[given, middle], " ")));
    }
    if full.is_empty()
        && let Some(c) = part(field::COMPANY)
    {
        derived.push(c.to_owned());
    }
    derived.retain(|d| !d.is_empty());
    derived
}

/// Drops display name and "file as" while they are derived from the names (the EWS mapping's rule).
fn drop_derived_names(item: &mut Item) {
    let derived = derived_candidates(item);
    let is_derived = |v: Option<&str>| v.is_some_and(|v| derived.iter().any(|d| d == v.trim()));
    let display = item.text(field::DISPLAY_NAME).map(str::to_owned);
    if is_derived(display.as_deref()) {
        item.fields.remove(field::DISPLAY_NAME);
    }
    let file_as = item.text(field::FILE_AS).map(str::to_owned);
    if is_derived(file_as.as_deref()) || (file_as.is_some() && file_as == display) {
        item.fields.remove(field::FILE_AS);
    }
}

/// The display name and "file as" derived from the names, as written when an item has none of
/// its own (Exchange computes neither for a contact written through Graph without them).
fn derived_names(item: &Item) -> (Option<String>, Option<String>) {
    let part = |name: &str| item.text(name).map(str::trim).filter(|s| !s.is_empty());
    let (given, middle, surname, suffix) =
        (part(field::GIVEN_NAME), part(field::MIDDLE_NAME), part(field::SURNAME), part(field::NAME_SUFFIX));
    let joined = |parts: &[Option<&str>]| parts.iter().flatten().copied().collect::<Vec<_>>().join(" ");
    let full = joined(&[given, middle, surname, suffix]);
    let company = part(field::COMPANY).map(str::to_owned);
    let display = if full.is_empty() { company.clone() } else { Some(full.clone()) };
    let file_as = match (surname, given) {
        (Some(s), Some(_)) => Some(format!("{s}, {}", joined(&[given, middle]))),
        _ if !full.is_empty() => Some(full),
        _ => company,
    };
    (display, file_as)
}

/// The JSON body writing `item` in full: every property the mapping knows is present, `null` or
/// empty when the item lacks it, so that a `PATCH` with it clears what the item no longer holds.
/// The origin stamp, when given, goes with it as an extended property.
pub fn to_json(item: &Item, origin: Option<&OriginStamp>) -> Value {
    let mut o = Map::new();
    let mut lists: Map<String, Value> = Map::new();
    let mut emails: Vec<Option<String>> = vec![None; 3];
    let mut addresses: Map<String, Value> = Map::new();
    for (canonical, slot) in CONTACT_FIELDS {
        let value = item.get(canonical);
        let text = value.and_then(FieldValue::as_text).map(str::to_owned);
        match slot {
            GraphSlot::Text(p) => {
                o.insert((*p).into(), text.map(Value::String).unwrap_or(Value::Null));
            }
            GraphSlot::DateTime(p) => {
                let v = match value {
                    Some(FieldValue::DateTime(d)) => json!(d.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    _ => Value::Null,
                };
                o.insert((*p).into(), v);
            }
            GraphSlot::TextList(p) => {
                let v = match value {
                    Some(FieldValue::TextList(l)) => json!(l),
                    _ => json!([]),
                };
                o.insert((*p).into(), v);
            }
            GraphSlot::ListEntry(p, i) => {
                let list = lists.entry((*p).to_owned()).or_insert_with(|| json!([]));
                if let (Some(t), Some(a)) = (text, list.as_array_mut()) {
                    // Entries keep their slots only while the earlier ones are set: Graph's lists
                    // have no holes.
                    if a.len() <= *i {
                        a.push(json!(t));
                    }
                }
            }
            GraphSlot::Email(i) => emails[*i] = text,
            GraphSlot::AddressPart(p, part) => {
                let a = addresses.entry((*p).to_owned()).or_insert_with(|| json!({}));
                if let (Some(t), Some(map)) = (text, a.as_object_mut()) {
                    map.insert((*part).into(), json!(t));
                }
            }
        }
    }
    let (display, file_as) = derived_names(item);
    if item.text(field::DISPLAY_NAME).is_none() {
        o.insert("displayName".into(), display.map(Value::String).unwrap_or(Value::Null));
    }
    if item.text(field::FILE_AS).is_none() {
        o.insert("fileAs".into(), file_as.map(Value::String).unwrap_or(Value::Null));
    }
    o.extend(lists);
    o.extend(addresses);
    o.insert(
        "emailAddresses".into(),
        Value::Array(emails.into_iter().flatten().map(|a| json!({"address": a, "name": a})).collect()),
    );
    o.insert("personalNotes".into(), item.body.as_ref().map(|b| json!(b.content)).unwrap_or(Value::Null));
    o.insert("categories".into(), json!(item.categories.iter().collect::<Vec<_>>()));
    if let Some(stamp) = origin {
        o.insert(
            "singleValueExtendedProperties".into(),
            json!([{"id": origin_property_id(), "value": stamp.encode()}]),
        );
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{EntityId, GroupId};

    fn jane() -> Item {
        let mut item = Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, "Jane")
            .with(field::SURNAME, "Doe")
            .with(field::COMPANY, "Contoso")
            .with(field::EMAIL1, "jane@contoso.test")
            .with(field::EMAIL2, "jd@example.test")
            .with(field::PHONE_MOBILE, "+1 555 0100")
            .with(field::PHONE_BUSINESS, "+1 555 0101")
            .with("address.business.city", "Oslo")
            .with(field::CHILDREN, FieldValue::TextList(vec!["Ann".into()]))
            .with(field::BIRTHDAY, FieldValue::DateTime(utc("1980-05-04T00:00:00Z").unwrap_or_default()));
        item.body = Some(Body::text("Met at the fair."));
        item.categories = ["Shared".to_owned()].into();
        item
    }

    #[test]
    fn a_contact_round_trips_with_its_stamp() {
        let stamp = OriginStamp::new(GroupId::new("sales"), EntityId::new("e1"));
        let mut json = to_json(&jane(), Some(&stamp));
        // Graph answers the properties it holds, and the extended property when expanded.
        json["id"] = json!("AAMk1");
        let (read, origin) = to_item(&json);
        assert!(read.same_content(&jane()), "{:?}", read.canonical());
        assert_eq!(origin, Some(stamp));
        assert_eq!(json["displayName"], "Jane Doe", "a derived display name is written");
        assert_eq!(json["fileAs"], "Doe, Jane");
    }

    #[test]
    fn absent_fields_are_cleared_and_custom_names_kept() {
        let json = to_json(&Item::new(ItemKind::Contact).with(field::DISPLAY_NAME, "The Boss"), None);
        assert_eq!(json["givenName"], Value::Null);
        assert_eq!(json["businessPhones"], json!([]));
        assert_eq!(json["businessAddress"], json!({}));
        assert_eq!(json["emailAddresses"], json!([]));
        let (read, _) = to_item(&json);
        assert_eq!(read.text(field::DISPLAY_NAME), Some("The Boss"));
    }

    #[test]
    fn the_stamp_property_is_the_ews_connectors() {
        assert_eq!(origin_property_id(), "String {c87d849c-6c0b-43ec-9a40-fead13d50b3c} Name OriginStamp");
        assert!(same_property_id(
            "String {C87D849C-6C0B-43EC-9A40-FEAD13D50B3C} Name OriginStamp",
            &origin_property_id()
        ));
        assert!(!same_property_id(
            "String {c87d849c-6c0b-43ec-9a40-fead13d50b3c} Name originstamp",
            &origin_property_id()
        ));
    }
}
