//! The normalized, transport-independent item and its content hash.
//!
//! Connectors translate their server's representation into an [`Item`]: a kind, a map of
//! canonical fields (names in [`crate::field`]), a body and categories. Everything the engine
//! decides (did it change? do two copies agree? how do two edits merge?) is decided on this form,
//! so two servers that spell a contact differently still agree on whether it changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an item is. Connectors map their server's classes onto these; `Other` keeps room for
/// kinds the engine copies without understanding them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A contact (EWS `Contact`, `IPM.Contact`).
    Contact,
    /// A calendar item, single or recurring master (EWS `CalendarItem`, `IPM.Appointment`).
    CalendarItem,
    /// A task (EWS `Task`, `IPM.Task`).
    Task,
    /// A note (`IPM.StickyNote`).
    Note,
    /// A distribution list (EWS `DistributionList`, `IPM.DistList`).
    DistributionList,
    /// Any other item class, by its server-side name.
    Other(String),
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKind::Contact => f.write_str("contact"),
            ItemKind::CalendarItem => f.write_str("calendar item"),
            ItemKind::Task => f.write_str("task"),
            ItemKind::Note => f.write_str("note"),
            ItemKind::DistributionList => f.write_str("distribution list"),
            ItemKind::Other(name) => write!(f, "{name}"),
        }
    }
}

/// The value of one canonical field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A flag.
    Boolean(bool),
    /// A point in time, in UTC.
    DateTime(DateTime<Utc>),
    /// An ordered list of strings (e.g. children's names, companies).
    TextList(Vec<String>),
}

impl FieldValue {
    /// The value as text, when it is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value carries nothing (empty text or list); such fields are treated as absent.
    pub fn is_empty(&self) -> bool {
        match self {
            FieldValue::Text(s) => s.trim().is_empty(),
            FieldValue::TextList(l) => l.is_empty(),
            _ => false,
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(s) => write!(f, "{s:?}"),
            FieldValue::Integer(i) => write!(f, "{i}"),
            FieldValue::Boolean(b) => write!(f, "{b}"),
            FieldValue::DateTime(d) => write!(f, "{}", d.to_rfc3339()),
            FieldValue::TextList(l) => write!(f, "{l:?}"),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(value: &str) -> Self {
        FieldValue::Text(value.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(value: String) -> Self {
        FieldValue::Text(value)
    }
}

/// The format of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// Plain text.
    Text,
    /// HTML.
    Html,
}

/// The body (notes) of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Body {
    /// Plain text or HTML.
    pub format: BodyFormat,
    /// The content as the server returned it.
    pub content: String,
}

impl Body {
    /// A plain-text body.
    pub fn text(content: impl Into<String>) -> Self {
        Body { format: BodyFormat::Text, content: content.into() }
    }

    /// The content as compared and hashed: line endings unified and trailing white space removed
    /// from every line and from the end, since servers and phones rewrite both freely.
    pub fn normalized(&self) -> String {
        let unified = self.content.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
        lines.join("\n").trim_end().to_owned()
    }
}

/// One normalized item.
///
/// Field names are canonical (see [`crate::field`]); fields whose name starts with
/// [`SERVER_FIELD_PREFIX`] are maintained by the server (modification times, derived display
/// names) and are carried for information only: they are excluded from the content hash and from
/// merging, and are never written back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What kind of item this is.
    pub kind: ItemKind,
    /// Canonical fields; empty values are not stored (see [`Item::set`]).
    pub fields: BTreeMap<String, FieldValue>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Categories (a set: servers do not keep their order reliably).
    pub categories: BTreeSet<String>,
}

/// Prefix of the fields that servers maintain on their own (see [`Item`]).
pub const SERVER_FIELD_PREFIX: &str = "server.";

impl Item {
    /// An empty item of the given kind.
    pub fn new(kind: ItemKind) -> Self {
        Item { kind, fields: BTreeMap::new(), body: None, categories: BTreeSet::new() }
    }

    /// Sets a field, or removes it when the value is empty; returns `self` for chaining.
    pub fn with(mut self, name: &str, value: impl Into<FieldValue>) -> Self {
        self.set(name, value);
        self
    }

    /// Sets a field, or removes it when the value is empty (an empty field and a missing field
    /// mean the same to every server we know, so they must hash the same).
    pub fn set(&mut self, name: &str, value: impl Into<FieldValue>) {
        let value = value.into();
        if value.is_empty() {
            self.fields.remove(name);
        } else {
            self.fields.insert(name.to_owned(), value);
        }
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }

    /// A text field's value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(FieldValue::as_text)
    }

    /// Whether a field is maintained by the server (see [`SERVER_FIELD_PREFIX`]).
    pub fn is_server_field(name: &str) -> bool {
        name.starts_with(SERVER_FIELD_PREFIX)
    }

    /// The fields that carry content: everything but server-maintained fields.
    pub fn content_fields(&self) -> impl Iterator<Item = (&String, &FieldValue)> {
        self.fields.iter().filter(|(name, _)| !Item::is_server_field(name))
    }

    /// A copy without server-maintained fields, with the body normalized: the form that is
    /// hashed, merged and stored as the merge base.
    pub fn canonical(&self) -> Item {
        Item {
            kind: self.kind.clone(),
            fields: self.canonical_fields().map(|(k, v)| (k.clone(), v.clone())).collect(),
            body: self.canonical_body(),
            categories: self.canonical_categories().map(str::to_owned).collect(),
        }
    }

    /// The fields of the canonical form: content fields that are not empty, in name order.
    fn canonical_fields(&self) -> impl Iterator<Item = (&String, &FieldValue)> {
        self.content_fields().filter(|(_, v)| !v.is_empty())
    }

    /// The body of the canonical form: normalized, and none when that leaves it empty.
    fn canonical_body(&self) -> Option<Body> {
        self.body.as_ref().map(|b| Body { format: b.format, content: b.normalized() }).filter(|b| !b.content.is_empty())
    }

    /// The categories of the canonical form: trimmed, without blank ones (a set once collected:
    /// categories that trim alike are one).
    fn canonical_categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.trim()).filter(|c| !c.is_empty())
    }

    /// The content hash (see [`ContentHash`]).
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(self)
    }

    /// Whether two items carry the same content (equal content hashes).
    pub fn same_content(&self, other: &Item) -> bool {
        self.content_hash() == other.content_hash()
    }
}

/// A stable hash over an item's canonical form ([`Item::canonical`]).
///
/// It ignores what servers rewrite by themselves (modification times, change keys, derived
/// display fields, line endings and trailing white space in bodies, category order), so that a
/// server touching an item without changing it causes no traffic. It is stable across versions of
/// this library: it is stored in the state database.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(#[serde(with = "hex32")] pub [u8; 32]);

impl ContentHash {
    /// Hashes an item's canonical form.
    ///
    /// The canonical form ([`Item::canonical`]) is not built: its pieces are hashed as the
    /// item yields them, by the same rules, without copying every field first (that copy was
    /// most of planning's cost per entity). A test holds the two to the same hash.
    pub fn of(item: &Item) -> Self {
        let mut h = Sha256::new();
        // Every piece is tagged and length-prefixed so that no two different items share an
        // encoding.
        fn put(h: &mut Sha256, tag: u8, bytes: &[u8]) {
            h.update([tag]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        put(&mut h, b'v', b"1");
        put(&mut h, b'k', item.kind.to_string().as_bytes());
        for (name, value) in item.canonical_fields() {
            put(&mut h, b'f', name.as_bytes());
            match value {
                FieldValue::Text(s) => put(&mut h, b't', s.as_bytes()),
                FieldValue::Integer(i) => put(&mut h, b'i', &i.to_be_bytes()),
                FieldValue::Boolean(b) => put(&mut h, b'b', &[u8::from(*b)]),
                FieldValue::DateTime(d) => put(&mut h, b'd', d.timestamp_millis().to_be_bytes().as_slice()),
                FieldValue::TextList(l) => {
                    put(&mut h, b'l', &(l.len() as u64).to_be_bytes());
                    for s in l {
                        put(&mut h, b't', s.as_bytes());
                    }
                }
            }
        }
        if let Some(body) = item.canonical_body() {
            let fmt: &[u8] = match body.format {
                BodyFormat::Text => b"text",
                BodyFormat::Html => b"html",
            };
            put(&mut h, b'B', fmt);
            put(&mut h, b'c', body.content.as_bytes());
        }
        let categories: BTreeSet<&str> = item.canonical_categories().collect();
        for c in categories {
            put(&mut h, b'C', c.as_bytes());
        }
        ContentHash(h.finalize().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lower- or upper-case hex as written by [`ContentHash::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        hex32::parse(hex).map(ContentHash)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..12])
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn parse(hex: &str) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(out)
    }

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let hex = String::deserialize(d)?;
        parse(&hex).ok_or_else(|| D::Error::custom(format!("not a 64-digit hex hash: {hex:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;

    fn contact() -> Item {
        Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, "Zoë")
            .with(field::SURNAME, "Müller")
            .with(field::EMAIL1, "zoe@contoso.test")
    }

    #[test]
    fn hash_ignores_server_fields_whitespace_and_category_order() {
        let mut a = contact();
        a.body = Some(Body::text("line one\r\nline two  \r\n"));
        a.categories = ["B", "A"].into_iter().map(String::from).collect();
        let mut b = contact().with("server.last_modified_time", "2026-01-01T00:00:00Z");
        b.body = Some(Body::text("line one\nline two"));
        b.categories = ["A", "B"].into_iter().map(String::from).collect();
        assert_eq!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn hash_sees_every_content_change() {
        let base = contact();
        let variants = [
            base.clone().with(field::GIVEN_NAME, "Zoe"),
            base.clone().with(field::PHONE_MOBILE, "+41 79 000 00 00"),
            {
                let mut i = base.clone();
                i.body = Some(Body::text("x"));
                i
            },
            {
                let mut i = base.clone();
                i.categories.insert("VIP".into());
                i
            },
            {
                let mut i = base.clone();
                i.kind = ItemKind::Note;
                i
            },
        ];
        for v in variants {
            assert_ne!(base.content_hash(), v.content_hash(), "{v:?}");
        }
    }

    #[test]
    fn hash_is_stable_across_versions() {
        // State databases store these hashes: a change of the encoding would make every stored
        // copy look changed.
        let mut item = contact().with("server.change_key", "CQAAAB").with(field::COMPANY, " ");
        item.body = Some(Body::text("Hello\r\nWorld  \r\n"));
        item.categories = [" VIP", "VIP", "Board "].into_iter().map(String::from).collect();
        assert_eq!(item.content_hash().to_hex(), "04f4112a2927c13600c497bcd0133002258e230bba925c657ceb3ba95c823721");
    }

    proptest::proptest! {
        /// The hash read off an item is the hash of its canonical form (which is canonical
        /// already), for items with server fields, blank values, bodies with line endings and
        /// trailing blanks, and categories that trim to the same or to nothing.
        #[test]
        fn hash_is_the_hash_of_the_canonical_form(
            fields in proptest::collection::btree_map(
                proptest::sample::select(vec!["name.given", "name.surname", "server.change_key", "company", "notes"]),
                proptest::sample::select(vec!["", " ", "Ann", " Ann ", "Zoë\r\n"]),
                0..5,
            ),
            body in proptest::option::of(proptest::sample::select(vec!["", "a\r\nb  \r\n", "a\nb", " \r\n"])),
            html in proptest::bool::ANY,
            categories in proptest::collection::btree_set(
                proptest::sample::select(vec!["", " ", "VIP", " VIP", "Board "]),
                0..4,
            ),
        ) {
            let mut item = Item::new(ItemKind::Contact);
            for (name, value) in fields {
                // Bypasses `set`, which would drop blank values, to cover items built otherwise.
                item.fields.insert(name.to_owned(), FieldValue::Text(value.to_owned()));
            }
            item.body = body.map(|b| if html { Body { format: BodyFormat::Html, content: b.to_owned() } } else { Body::text(b) });
            item.categories = categories.into_iter().map(String::from).collect();
            let canonical = item.canonical();
            proptest::prop_assert_eq!(item.content_hash(), canonical.content_hash());
            proptest::prop_assert_eq!(canonical.canonical(), canonical);
        }
    }

    #[test]
    fn empty_values_are_absent() {
        let a = contact().with(field::COMPANY, "");
        assert!(a.get(field::COMPANY).is_none());
        assert_eq!(a.content_hash(), contact().content_hash());
    }

    #[test]
    fn hash_round_trips_through_hex_and_serde() {
        let h = contact().content_hash();
        assert_eq!(ContentHash::from_hex(&h.to_hex()), Some(h));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
        let item = contact();
        let back: Item = serde_json::from_str(&serde_json::to_string(&item).unwrap()).unwrap();
        assert_eq!(back, item);
    }
}
