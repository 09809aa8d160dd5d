//! Mapping between EWS items and the core's normalized [`Item`], both ways.
//!
//! Each kind has a table of (canonical field, EWS property) pairs ([`mappings`]); reading, writing and
//! computing field-level updates all walk the same table, so the three cannot disagree. Values are
//! normalized on the way in (enumerations in snake case, dates in UTC, recurrences and list members in
//! canonical text forms) so that the same content read from two mailboxes hashes the same.
//!
//! What a calendar item carries, both ways: subject, body, categories, sensitivity, importance,
//! reminder, location, free/busy, `Start` / `End` as UTC instants, `IsAllDayEvent`, the
//! `StartTimeZone` / `EndTimeZone` ids (`start_time_zone`, [`END_TIME_ZONE`]; Exchange 2010 and later:
//! they keep all-day events on the same local day in every mailbox; Exchange 2007 SP1 gets the start
//! zone as `MeetingTimeZone` and reads it back as both), the recurrence pattern and range of a
//! master, its exceptions (one field per cancelled or modified occurrence: [`EXCEPTION_PREFIX`]),
//! and the attendees as text in our own extended property (copies are plain appointments, so
//! nobody is invited).
//!
//! A distribution list carries its display name and its members ([`MEMBERS`], Exchange 2010 and
//! later), each written as a one-off member by name, routing type and address.
//!
//! # Synced, derived, left out
//!
//! Some properties are computed from others, by Exchange or by the clients that edit an item.
//! Each is either synced (content, in the hash), derived on each side (written so that every
//! copy derives the same value, and left out of the hash while it equals its derivation), or left
//! out entirely:
//!
//! | Kind | Property | How |
//! | --- | --- | --- |
//! | Contact | `FileAs` | **Derived** while it is one of the usual formulas of the item's own names (`Surname, Given Middle`, `Given Surname`, ...; the company when there is no name); **synced** when it is anything else (a custom "file as"). |
//! | Contact | `FileAsMapping` | Not content. Exchange recomputes `FileAs` from the names on every save while the mapping is not `None` (PidLidFileUnderId, MS-OXPROPS 2.133: it "specifies how to generate and recompute" PidLidFileUnder "when other contact name properties change"), so a custom `FileAs` is written with `FileAsMapping` `None` (as EWS clients must: php-ews issue 574), and a derived one with `LastCommaFirst` again when a custom one is dropped. |
//! | Contact | `DisplayName` | **Derived** while it is the names joined (`Given Middle Surname Suffix`, `Given Surname`, `Surname Given`, the company without names); **synced** otherwise. Exchange does not document recomputing a stored `DisplayName` (Outlook computes it when a user edits a contact), so whenever this connector changes a contact's name parts it writes the derived `DisplayName` and `FileAs` too (unless they are custom): the server then holds exactly what was written, and a copy whose names changed never keeps a stale derived value that would make it differ from its siblings without a new version to notice. |
//! | Contact | `Subject`, `CompleteName` | Left out: the server derives them from the names. |
//! | Task | `Status`, `PercentComplete`, `CompleteDate` | **Synced**, always written together when any of them changes. Exchange keeps them consistent (a `Completed` task is 100 % and has a completion date: PidLidTaskStatus); a copy receives all three, so the server has nothing left to derive. `IsComplete`, `StatusDescription` are left out. |
//! | Calendar item | `Duration`, `IsRecurring`, `CalendarItemType`, `UID`, `TimeZone` | Left out (server properties); `Start`, `End` and the time zone ids are synced. |
//! | Every kind | `LastModifiedTime`, `DateTimeCreated` | Read as server fields (`server.*`), never written, not in the hash. |

mod members;
mod origin;
mod recurrence;
mod schema;

pub use origin::{ATTENDEES_PROPERTY, ORIGIN_PROPERTY, PROPERTY_SET_ID, origin_uri};
pub use recurrence::{
    CANCELLED, DELETED_OCCURRENCES, EXCEPTION_PREFIX, Exception, MODIFIED_OCCURRENCES, Modified, on_server, wanted,
};
pub use schema::{END_TIME_ZONE, EwsProperty, MEMBERS, Mapping, ValueKind, mappings};

use exchange_sync_core::item::{Body, BodyFormat, FieldValue as CoreValue, Item, ItemKind};
use exchange_sync_core::{OriginStamp, field};

use crate::item::{EwsItem, Field, FieldUpdate, FieldValue, ItemType};
use crate::property::{ItemShape, PropertyPath};

/// The EWS element type and item class used to write items of a kind.
pub fn ews_type(kind: &ItemKind) -> (ItemType, Option<&'static str>) {
    match kind {
        ItemKind::Contact => (ItemType::Contact, None),
        ItemKind::CalendarItem => (ItemType::CalendarItem, None),
        ItemKind::Task => (ItemType::Task, None),
        ItemKind::Note => (ItemType::Message, Some("IPM.StickyNote")),
        ItemKind::DistributionList => (ItemType::DistributionList, None),
        ItemKind::Other(_) => (ItemType::Item, None),
    }
}

/// The core kind of an EWS item.
pub fn kind_of(item: &EwsItem) -> ItemKind {
    let class = item.item_class().unwrap_or("");
    if class.starts_with("IPM.StickyNote") {
        return ItemKind::Note;
    }
    match item.item_type {
        ItemType::Contact => ItemKind::Contact,
        ItemType::CalendarItem => ItemKind::CalendarItem,
        ItemType::Task => ItemKind::Task,
        ItemType::DistributionList => ItemKind::DistributionList,
        _ if class.is_empty() => ItemKind::Other(item.item_type.element_name().to_owned()),
        _ => ItemKind::Other(class.to_owned()),
    }
}

/// The shape that returns everything the mapping reads: all properties, the body as stored, and the
/// extended properties of the tables (origin stamp, attendees text, name title).
pub fn full_shape() -> ItemShape {
    let mut additional =
        vec![PropertyPath::Extended(origin::origin_uri()), PropertyPath::Extended(origin::attendees_uri())];
    for m in mappings(&ItemKind::Contact) {
        if let EwsProperty::Extended(uri) = &m.property {
            additional.push(PropertyPath::Extended(uri.clone()));
        }
    }
    ItemShape {
        base: crate::property::BaseShape::AllProperties,
        body_type: Some(crate::property::BodyType::Best),
        additional,
    }
}

/// Reads an EWS item into the normalized form, with its origin stamp if it carries a valid one.
/// The exceptions of a recurring master count with their times only: see
/// [`to_item_with_exceptions`].
pub fn to_item(ews: &EwsItem) -> (Item, Option<OriginStamp>) {
    to_item_with_exceptions(ews, &[])
}

/// Reads an EWS item like [`to_item`]; a recurring master's modified occurrences are read with
/// the details of the exception items in `exceptions` (subject, location, body).
pub fn to_item_with_exceptions(ews: &EwsItem, exceptions: &[EwsItem]) -> (Item, Option<OriginStamp>) {
    let kind = kind_of(ews);
    let mut item = Item::new(kind.clone());
    for m in mappings(&kind) {
        if let Some(v) = m.read(ews) {
            item.set(&m.canonical, v);
        }
    }
    if kind == ItemKind::Contact {
        drop_derived_names(&mut item);
    }
    if kind == ItemKind::CalendarItem {
        if let Some(text) = origin::attendees_text(ews) {
            item.set(field::ATTENDEES, text);
        }
        let (deleted, modified) = recurrence::exceptions(ews);
        item.set(DELETED_OCCURRENCES, CoreValue::TextList(deleted));
        item.set(MODIFIED_OCCURRENCES, CoreValue::TextList(modified));
        if item.get(field::RECURRENCE).is_some() {
            for (original, (exception, _)) in recurrence::on_server(ews, exceptions) {
                item.set(&format!("{EXCEPTION_PREFIX}{original}"), CoreValue::Text(exception.encode()));
            }
        }
    }
    if let Some((format, content)) = ews.body() {
        let format = if format.eq_ignore_ascii_case("HTML") { BodyFormat::Html } else { BodyFormat::Text };
        if !content.trim().is_empty() {
            item.body = Some(Body { format, content: content.to_owned() });
        }
    }
    item.categories = ews.strings("Categories").into_iter().filter(|c| !c.trim().is_empty()).collect();
    if let Some(t) = ews.date_time("LastModifiedTime") {
        item.set(field::SERVER_LAST_MODIFIED, CoreValue::DateTime(t));
    }
    if let Some(t) = ews.date_time("DateTimeCreated") {
        item.set(field::SERVER_CREATED, CoreValue::DateTime(t));
    }
    let stamp = ews.extended(&origin::origin_uri()).and_then(|s| s.parse::<OriginStamp>().ok());
    (item, stamp)
}

/// Removes the display name and "file as" of a contact when they are what Exchange derives from the
/// name parts by itself: they are not content (a copy written without them gets them derived again),
/// and keeping them would make a copy differ from its source.
fn drop_derived_names(item: &mut Item) {
    let part = |name: &str| item.text(name).map(str::trim).filter(|s| !s.is_empty());
    let (given, middle, surname, suffix) =
        (part(field::GIVEN_NAME), part(field::MIDDLE_NAME), part(field::SURNAME), part(field::NAME_SUFFIX));
    let company = part(field::COMPANY);
    let joined = |parts: &[Option<&str>], sep: &str| parts.iter().flatten().copied().collect::<Vec<_>>().join(sep);
    let full = joined(&[given, middle, surname, suffix], " ");
    let mut derived = vec![full.clone(), joined(&[given, surname], " "), joined(&[surname, given], " ")];
    if let (Some(s), Some(g)) = (surname, given) {
        derived.push(format!("{s}, {g}"));
        derived.push(format!("{s}, {}", joined(&[given, middle], " ")));
    }
    if full.is_empty() {
        derived.extend(company.map(str::to_owned));
    }
    let is_derived =
        |value: Option<&str>| value.is_some_and(|v| derived.iter().any(|d| !d.is_empty() && d == v.trim()));
    let display = item.text(field::DISPLAY_NAME).map(str::to_owned);
    if is_derived(display.as_deref()) {
        item.fields.remove(field::DISPLAY_NAME);
    }
    let file_as = item.text(field::FILE_AS).map(str::to_owned);
    if is_derived(file_as.as_deref()) || (file_as.is_some() && file_as == display) {
        item.fields.remove(field::FILE_AS);
    }
}

fn body_field(body: &Body) -> Field {
    let body_type = match body.format {
        BodyFormat::Html => "HTML",
        BodyFormat::Text => "Text",
    };
    Field::Simple { name: "Body".into(), value: FieldValue::Body { body_type, text: body.content.clone() } }
}

fn categories_field(item: &Item) -> Field {
    Field::Simple { name: "Categories".into(), value: FieldValue::Strings(item.categories.iter().cloned().collect()) }
}

/// The name parts a contact's display name and "file as" are derived from.
const NAME_PARTS: [&str; 5] =
    [field::GIVEN_NAME, field::MIDDLE_NAME, field::SURNAME, field::NAME_SUFFIX, field::COMPANY];

/// `FileAsMapping` of a contact whose `FileAs` is its own (the server must not recompute it).
const FILE_AS_OWN: &str = "None";
/// `FileAsMapping` of a contact whose `FileAs` follows its names (Exchange's default).
const FILE_AS_DERIVED: &str = "LastCommaFirst";

/// The display name and "file as" derived from a contact's name parts (see the module
/// documentation), `None` where there is nothing to derive them from. Both are values that
/// reading the contact back recognizes as derived.
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

/// The fields to create an item with (the origin stamp included).
pub fn to_fields(item: &Item, origin: Option<&OriginStamp>) -> (ItemType, Vec<Field>) {
    let (item_type, class) = ews_type(&item.kind);
    let mut fields = Vec::new();
    if let Some(c) = class {
        fields.push(Field::text("ItemClass", c));
    }
    for m in mappings(&item.kind) {
        if let Some(v) = item.get(&m.canonical) {
            fields.extend(m.write(v));
        }
    }
    if item.kind == ItemKind::Contact && item.text(field::FILE_AS).is_some() {
        // A "file as" of its own: the server must keep it, not recompute it from the names.
        fields.push(Field::text("FileAsMapping", FILE_AS_OWN));
    }
    if item.kind == ItemKind::CalendarItem
        && let Some(a) = item.text(field::ATTENDEES)
    {
        fields.push(Field::Extended { uri: origin::attendees_uri(), value: a.to_owned() });
    }
    if let Some(b) = item.body.as_ref().filter(|b| !b.content.is_empty()) {
        fields.push(body_field(b));
    }
    if !item.categories.is_empty() {
        fields.push(categories_field(item));
    }
    if let Some(o) = origin {
        fields.push(Field::Extended { uri: origin::origin_uri(), value: o.encode() });
    }
    (item_type, fields)
}

/// The field updates that turn `previous` into `new` (every mapped field when `previous` is unknown):
/// only what differs is sent, so concurrent edits of other fields on the server are not overwritten.
pub fn to_updates(new: &Item, previous: Option<&Item>, origin: Option<&OriginStamp>) -> Vec<FieldUpdate> {
    let (item_type, _) = ews_type(&new.kind);
    let mut updates = Vec::new();
    let contact = new.kind == ItemKind::Contact;
    for m in mappings(&new.kind) {
        if contact && (m.canonical == field::FILE_AS || m.canonical == field::DISPLAY_NAME) {
            continue; // written with the names, below
        }
        let now = new.get(&m.canonical);
        let before = previous.and_then(|p| p.get(&m.canonical));
        if previous.is_some() && now == before {
            continue;
        }
        match now {
            Some(v) => updates.extend(m.write(v).into_iter().map(FieldUpdate::Set)),
            None if m.deletable() && (previous.is_none() || before.is_some()) => {
                updates.extend(m.paths(item_type).into_iter().map(FieldUpdate::Delete));
            }
            None => {}
        }
    }
    if contact {
        updates.extend(derived_name_updates(new, previous));
    }
    if new.kind == ItemKind::CalendarItem {
        let now = new.text(field::ATTENDEES);
        let before = previous.and_then(|p| p.text(field::ATTENDEES));
        if previous.is_none() || now != before {
            updates.push(match now {
                Some(a) => FieldUpdate::Set(Field::Extended { uri: origin::attendees_uri(), value: a.to_owned() }),
                None => FieldUpdate::Delete(PropertyPath::Extended(origin::attendees_uri())),
            });
        }
    }
    let body_now = new.body.as_ref().filter(|b| !b.content.is_empty());
    let body_before = previous.and_then(|p| p.body.as_ref()).filter(|b| !b.content.is_empty());
    if previous.is_none() || body_now.map(Body::normalized) != body_before.map(Body::normalized) {
        updates.push(match body_now {
            Some(b) => FieldUpdate::Set(body_field(b)),
            None => FieldUpdate::Delete(PropertyPath::field("item:Body")),
        });
    }
    if previous.is_none_or(|p| p.categories != new.categories) {
        updates.push(if new.categories.is_empty() {
            FieldUpdate::Delete(PropertyPath::field("item:Categories"))
        } else {
            FieldUpdate::Set(categories_field(new))
        });
    }
    if let Some(o) = origin {
        updates.push(FieldUpdate::Set(Field::Extended { uri: origin::origin_uri(), value: o.encode() }));
    }
    updates
}

/// The updates of a contact's `DisplayName`, `FileAs` and `FileAsMapping` (see the module
/// documentation): a value of its own is written as such (`FileAs` with mapping `None`); a derived
/// one is written as derived whenever the names change, or a value of its own is dropped, so that
/// the server never keeps a derived value of the old names.
fn derived_name_updates(new: &Item, previous: Option<&Item>) -> Vec<FieldUpdate> {
    let names_changed = previous.is_none_or(|p| NAME_PARTS.iter().any(|f| p.get(f) != new.get(f)));
    let (derived_display, derived_file_as) = derived_names(new);
    let set = |name: &str, value: &str| FieldUpdate::Set(Field::text(name, value));
    let delete = |name: &str| FieldUpdate::Delete(Field::text(name, "").path(ItemType::Contact));
    let mut updates = Vec::new();
    for (canonical, element, derived) in
        [(field::DISPLAY_NAME, "DisplayName", derived_display), (field::FILE_AS, "FileAs", derived_file_as)]
    {
        let now = new.text(canonical);
        let before = previous.and_then(|p| p.text(canonical));
        let file_as = canonical == field::FILE_AS;
        match now {
            Some(own) if previous.is_none() || now != before => {
                updates.push(set(element, own));
                if file_as {
                    updates.push(set("FileAsMapping", FILE_AS_OWN));
                }
            }
            Some(_) => {}
            None if names_changed || before.is_some() => {
                updates.push(match &derived {
                    Some(d) => set(element, d),
                    None => delete(element),
                });
                if file_as && (previous.is_none() || before.is_some()) {
                    updates.push(set("FileAsMapping", FILE_AS_DERIVED));
                }
            }
            None => {}
        }
    }
    updates
}

#[cfg(test)]
mod tests;
