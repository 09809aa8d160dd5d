//! Naming properties: schema fields (`t:FieldURI`), dictionary entries (`t:IndexedFieldURI`) and MAPI
//! extended properties (`t:ExtendedFieldURI`), and the response shapes built from them.

use crate::xml::{Element, XmlWriter};

/// Where an extended property lives: a named property in a property set, or a plain MAPI tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtendedFieldUri {
    /// The property set GUID of a named property.
    pub property_set_id: Option<String>,
    /// A distinguished property set (`PublicStrings`, `Common`, ...) of a named property.
    pub distinguished_property_set_id: Option<String>,
    /// The name of a named property.
    pub property_name: Option<String>,
    /// The numeric id of a named property.
    pub property_id: Option<i32>,
    /// A MAPI property tag (e.g. `0x670A`).
    pub property_tag: Option<u16>,
    /// The MAPI type (`String`, `SystemTime`, `Integer`, ...).
    pub property_type: String,
}

impl ExtendedFieldUri {
    /// A MAPI property by tag, e.g. `tag(0x670A, "SystemTime")` for PR_LOCAL_COMMIT_TIME_MAX.
    pub fn tag(tag: u16, property_type: &str) -> Self {
        Self {
            property_set_id: None,
            distinguished_property_set_id: None,
            property_name: None,
            property_id: None,
            property_tag: Some(tag),
            property_type: property_type.to_owned(),
        }
    }

    /// A named property in a private property set.
    pub fn named(property_set_id: &str, name: &str, property_type: &str) -> Self {
        Self {
            property_set_id: Some(property_set_id.to_owned()),
            distinguished_property_set_id: None,
            property_name: Some(name.to_owned()),
            property_id: None,
            property_tag: None,
            property_type: property_type.to_owned(),
        }
    }

    /// Reads the attributes of a `t:ExtendedFieldURI` element.
    pub fn from_element(e: &Element) -> Option<Self> {
        let tag = match e.attr("PropertyTag") {
            Some(t) => Some(parse_tag(t)?),
            None => None,
        };
        Some(Self {
            property_set_id: e.attr("PropertySetId").map(|s| s.to_ascii_lowercase()),
            distinguished_property_set_id: e.attr("DistinguishedPropertySetId").map(str::to_owned),
            property_name: e.attr("PropertyName").map(str::to_owned),
            property_id: e.attr("PropertyId").and_then(|s| s.parse().ok()),
            property_tag: tag,
            property_type: e.attr("PropertyType")?.to_owned(),
        })
    }

    /// Whether two URIs name the same property (GUIDs compare case-insensitively).
    pub fn same_property(&self, other: &Self) -> bool {
        let lower = |s: &Option<String>| s.as_ref().map(|v| v.to_ascii_lowercase());
        lower(&self.property_set_id) == lower(&other.property_set_id)
            && self.distinguished_property_set_id == other.distinguished_property_set_id
            && self.property_name == other.property_name
            && self.property_id == other.property_id
            && self.property_tag == other.property_tag
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        let tag = self.property_tag.map(|t| format!("0x{t:04X}"));
        let id = self.property_id.map(|i| i.to_string());
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        if let Some(v) = &self.distinguished_property_set_id {
            attrs.push(("DistinguishedPropertySetId", v));
        }
        if let Some(v) = &self.property_set_id {
            attrs.push(("PropertySetId", v));
        }
        if let Some(v) = &tag {
            attrs.push(("PropertyTag", v));
        }
        if let Some(v) = &self.property_name {
            attrs.push(("PropertyName", v));
        }
        if let Some(v) = &id {
            attrs.push(("PropertyId", v));
        }
        attrs.push(("PropertyType", &self.property_type));
        w.empty("t:ExtendedFieldURI", &attrs);
    }
}

fn parse_tag(text: &str) -> Option<u16> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A property to ask for, set or delete.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PropertyPath {
    /// A schema field, e.g. `item:Subject`, `contacts:GivenName`.
    Field(String),
    /// One entry of a dictionary, e.g. `contacts:EmailAddress` / `EmailAddress1`, or one part of a
    /// physical address, e.g. `contacts:PhysicalAddress:City` / `Business`.
    Indexed {
        /// The field URI.
        uri: String,
        /// The dictionary key.
        index: String,
    },
    /// A MAPI extended property.
    Extended(ExtendedFieldUri),
}

impl PropertyPath {
    /// A schema field by URI.
    pub fn field(uri: &str) -> Self {
        Self::Field(uri.to_owned())
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        match self {
            Self::Field(uri) => w.empty("t:FieldURI", &[("FieldURI", uri)]),
            Self::Indexed { uri, index } => w.empty("t:IndexedFieldURI", &[("FieldURI", uri), ("FieldIndex", index)]),
            Self::Extended(e) => {
                e.write(w);
                w
            }
        };
    }
}

/// How much of each object a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaseShape {
    /// Ids (and change keys) only: the cheap listing.
    IdOnly,
    /// The server's default set.
    #[default]
    Default,
    /// Every first-class property.
    AllProperties,
}

impl BaseShape {
    fn as_str(self) -> &'static str {
        match self {
            Self::IdOnly => "IdOnly",
            Self::Default => "Default",
            Self::AllProperties => "AllProperties",
        }
    }
}

/// The body format to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// The body as stored.
    Best,
    /// HTML.
    Html,
    /// Plain text.
    Text,
}

impl BodyType {
    /// The schema name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Best => "Best",
            Self::Html => "HTML",
            Self::Text => "Text",
        }
    }
}

/// `t:ItemShape` / `m:ItemShape`: which item properties a response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemShape {
    /// The base set.
    pub base: BaseShape,
    /// The body format, if bodies are wanted.
    pub body_type: Option<BodyType>,
    /// Properties beyond the base set.
    pub additional: Vec<PropertyPath>,
}

impl ItemShape {
    /// Ids only plus the given properties.
    pub fn id_only(additional: Vec<PropertyPath>) -> Self {
        Self { base: BaseShape::IdOnly, body_type: None, additional }
    }

    /// All properties with a text body plus the given extended properties.
    pub fn all(additional: Vec<PropertyPath>) -> Self {
        Self { base: BaseShape::AllProperties, body_type: Some(BodyType::Text), additional }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter, tag: &str) {
        w.open(tag, &[]).leaf("t:BaseShape", self.base.as_str());
        if let Some(b) = self.body_type {
            w.leaf("t:BodyType", b.as_str());
        }
        write_additional(w, &self.additional);
        w.close(tag);
    }
}

/// `m:FolderShape`: which folder properties a response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderShape {
    /// The base set.
    pub base: BaseShape,
    /// Properties beyond the base set.
    pub additional: Vec<PropertyPath>,
}

impl FolderShape {
    pub(crate) fn write(&self, w: &mut XmlWriter, tag: &str) {
        w.open(tag, &[]).leaf("t:BaseShape", self.base.as_str());
        write_additional(w, &self.additional);
        w.close(tag);
    }
}

fn write_additional(w: &mut XmlWriter, additional: &[PropertyPath]) {
    if additional.is_empty() {
        return;
    }
    w.open("t:AdditionalProperties", &[]);
    for p in additional {
        p.write(w);
    }
    w.close("t:AdditionalProperties");
}

/// PR_LOCAL_COMMIT_TIME_MAX: when anything in a folder last changed (the cheap change probe).
pub fn local_commit_time_max() -> ExtendedFieldUri {
    ExtendedFieldUri::tag(0x670A, "SystemTime")
}

/// PR_DELETED_COUNT_TOTAL: how many items were ever deleted from a folder.
pub fn deleted_count_total() -> ExtendedFieldUri {
    ExtendedFieldUri::tag(0x670B, "Integer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{ParseLimits, parse};

    #[test]
    fn extended_uri_round_trips() {
        let uri = ExtendedFieldUri::named("0b9d8ad7-4a52-4a4c-9c40-2e3a0c0f5d11", "origin", "String");
        let mut w = XmlWriter::new();
        uri.write(&mut w);
        let e = parse(w.finish().as_bytes(), ParseLimits::default()).unwrap();
        assert!(ExtendedFieldUri::from_element(&e).unwrap().same_property(&uri));
        let tag = ExtendedFieldUri::from_element(
            &parse(br#"<t:ExtendedFieldURI PropertyTag="0x670a" PropertyType="SystemTime"/>"#, ParseLimits::default())
                .unwrap(),
        )
        .unwrap();
        assert!(tag.same_property(&local_commit_time_max()));
    }
}
