//! FindItem restrictions (`t:Restriction`) evaluated against stored items.

use std::cmp::Ordering;

use crate::property_path::{PropertyPath, stored_value};
use crate::render::datetime;
use crate::response_code::EwsError;
use crate::store::Item;
use crate::xml::Element;

/// A compiled restriction.
#[derive(Debug, Clone)]
pub enum Restriction {
    /// All must hold.
    And(Vec<Restriction>),
    /// One must hold.
    Or(Vec<Restriction>),
    /// Must not hold.
    Not(Box<Restriction>),
    /// The property has a value.
    Exists(PropertyPath),
    /// A comparison with a constant.
    Compare(PropertyPath, Op, String),
    /// Substring / prefix match.
    Contains {
        /// Property.
        path: PropertyPath,
        /// Constant.
        value: String,
        /// Prefix only (ContainmentMode Prefixed / FullString handled as equality).
        mode: String,
        /// Case-insensitive.
        ignore_case: bool,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// IsEqualTo.
    Eq,
    /// IsNotEqualTo.
    Ne,
    /// IsGreaterThan.
    Gt,
    /// IsGreaterThanOrEqualTo.
    Ge,
    /// IsLessThan.
    Lt,
    /// IsLessThanOrEqualTo.
    Le,
}

fn unsupported(what: &str) -> EwsError {
    EwsError::new("ErrorUnsupportedQueryFilter", format!("The restriction {what} is not supported."))
}

fn path_of(e: &Element) -> Result<PropertyPath, EwsError> {
    PropertyPath::first_in(e)?.ok_or_else(|| unsupported(&e.name))
}

fn constant_of(e: &Element) -> Result<String, EwsError> {
    let holder = e.child("FieldURIOrConstant").unwrap_or(e);
    holder
        .child("Constant")
        .and_then(|c| c.attr("Value"))
        .map(str::to_string)
        .ok_or_else(|| unsupported("comparing two properties"))
}

impl Restriction {
    /// Compiles the single child of a `t:Restriction` (or any search expression).
    pub fn parse(e: &Element) -> Result<Self, EwsError> {
        Ok(match &*e.name {
            "Restriction" => Self::parse(e.children.first().ok_or_else(|| unsupported("empty"))?)?,
            "And" => Restriction::And(e.children.iter().map(Self::parse).collect::<Result<_, _>>()?),
            "Or" => Restriction::Or(e.children.iter().map(Self::parse).collect::<Result<_, _>>()?),
            "Not" => Restriction::Not(Box::new(Self::parse(e.children.first().ok_or_else(|| unsupported("Not"))?)?)),
            "Exists" => Restriction::Exists(path_of(e)?),
            "IsEqualTo" => Restriction::Compare(path_of(e)?, Op::Eq, constant_of(e)?),
            "IsNotEqualTo" => Restriction::Compare(path_of(e)?, Op::Ne, constant_of(e)?),
            "IsGreaterThan" => Restriction::Compare(path_of(e)?, Op::Gt, constant_of(e)?),
            "IsGreaterThanOrEqualTo" => Restriction::Compare(path_of(e)?, Op::Ge, constant_of(e)?),
            "IsLessThan" => Restriction::Compare(path_of(e)?, Op::Lt, constant_of(e)?),
            "IsLessThanOrEqualTo" => Restriction::Compare(path_of(e)?, Op::Le, constant_of(e)?),
            "Contains" => Restriction::Contains {
                path: path_of(e)?,
                value: e.child("Constant").and_then(|c| c.attr("Value")).unwrap_or("").to_string(),
                mode: e.attr("ContainmentMode").unwrap_or("Substring").to_string(),
                ignore_case: e.attr("ContainmentComparison").is_some_and(|c| c.contains("Ignore") || c == "Loose"),
            },
            other => return Err(unsupported(other)),
        })
    }

    /// Whether an item satisfies the restriction.
    pub fn matches(&self, item: &Item) -> bool {
        match self {
            Restriction::And(v) => v.iter().all(|r| r.matches(item)),
            Restriction::Or(v) => v.iter().any(|r| r.matches(item)),
            Restriction::Not(r) => !r.matches(item),
            Restriction::Exists(p) => value(item, p).is_some(),
            Restriction::Compare(p, op, c) => match value(item, p) {
                None => *op == Op::Ne,
                Some(v) => {
                    let ord = compare(&v, c);
                    match op {
                        Op::Eq => ord == Ordering::Equal,
                        Op::Ne => ord != Ordering::Equal,
                        Op::Gt => ord == Ordering::Greater,
                        Op::Ge => ord != Ordering::Less,
                        Op::Lt => ord == Ordering::Less,
                        Op::Le => ord != Ordering::Greater,
                    }
                }
            },
            Restriction::Contains { path, value: c, mode, ignore_case } => {
                let Some(v) = value(item, path) else {
                    return false;
                };
                let (v, c) = if *ignore_case { (v.to_lowercase(), c.to_lowercase()) } else { (v, c.clone()) };
                match mode.as_str() {
                    "FullString" => v == c,
                    "Prefixed" => v.starts_with(&c),
                    "PrefixOnWords" => v.split_whitespace().any(|w| w.starts_with(&c)),
                    _ => v.contains(&c),
                }
            }
        }
    }
}

/// Value of a property of an item, server-maintained times included.
pub fn value(item: &Item, path: &PropertyPath) -> Option<String> {
    if let PropertyPath::Field { element, .. } = path {
        match element.as_str() {
            "LastModifiedTime" => return Some(datetime(&item.modified)),
            "DateTimeCreated" | "DateTimeReceived" => return Some(datetime(&item.created)),
            _ => {}
        }
    }
    stored_value(item, path)
}

/// Compares as numbers, then as date-times, else case-insensitively as strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim(), b.trim());
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let (Ok(x), Ok(y)) = (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        return x.cmp(&y);
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn item() -> Item {
        Item {
            number: 1,
            folder: 1,
            element: "Contact".into(),
            item_class: "IPM.Contact".into(),
            fields: vec![Element::t_text("GivenName", "Zoë"), Element::t_text("Surname", "Müller")],
            extended: vec![parse(br#"<t:ExtendedProperty xmlns:t="urn:t"><t:ExtendedFieldURI PropertySetId="ABC" PropertyName="origin" PropertyType="String"/><t:Value>g1:e7</t:Value></t:ExtendedProperty>"#).unwrap()],
            version: 1,
            created: chrono::Utc::now(),
            modified: chrono::Utc::now(),
            created_seq: 1,
            changed_seq: 1,
        }
    }

    fn r(xml: &str) -> Restriction {
        Restriction::parse(
            &parse(format!(r#"<t:Restriction xmlns:t="urn:t">{xml}</t:Restriction>"#).as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn equality_on_fields_and_extended_properties() {
        let i = item();
        assert!(r(r#"<t:IsEqualTo><t:FieldURI FieldURI="contacts:GivenName"/><t:FieldURIOrConstant><t:Constant Value="zoë"/></t:FieldURIOrConstant></t:IsEqualTo>"#).matches(&i));
        assert!(!r(r#"<t:IsEqualTo><t:FieldURI FieldURI="contacts:GivenName"/><t:FieldURIOrConstant><t:Constant Value="Zoe"/></t:FieldURIOrConstant></t:IsEqualTo>"#).matches(&i));
        assert!(r(r#"<t:IsEqualTo><t:ExtendedFieldURI PropertySetId="abc" PropertyName="origin" PropertyType="String"/><t:FieldURIOrConstant><t:Constant Value="g1:e7"/></t:FieldURIOrConstant></t:IsEqualTo>"#).matches(&i));
        assert!(r(r#"<t:And><t:Exists><t:FieldURI FieldURI="contacts:Surname"/></t:Exists><t:Not><t:Exists><t:FieldURI FieldURI="contacts:JobTitle"/></t:Exists></t:Not></t:And>"#).matches(&i));
        assert!(r(r#"<t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="contacts:Surname"/><t:Constant Value="MÜL"/></t:Contains>"#).matches(&i));
        assert!(Restriction::parse(&parse(br#"<t:Near xmlns:t="urn:t"/>"#).unwrap()).is_err());
    }

    #[test]
    fn compares_numbers_and_dates() {
        assert_eq!(compare("10", "9"), Ordering::Greater);
        assert_eq!(compare("2026-01-01T00:00:00Z", "2025-12-31T23:00:00.500Z"), Ordering::Greater);
        assert_eq!(compare("abc", "ABC"), Ordering::Equal);
    }
}
