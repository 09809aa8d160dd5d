//! A small XML tree with a hardened parser and a string writer.
//!
//! Requests are parsed into [`Element`] trees because EWS handlers need random access (headers,
//! nested shapes, restrictions). The parser refuses DTDs (so no entity expansion is possible),
//! limits depth and element count, and never panics on input. Stored items are kept as trees of
//! types-namespace elements, which lets the emulator store every field a client sends without a
//! hand-written model for each of the hundreds of EWS properties.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// SOAP 1.1 envelope namespace.
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages namespace (`m:`).
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types namespace (`t:`).
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS errors namespace, used in SOAP fault details.
pub const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// Deepest element nesting accepted in a request (EWS requests are far shallower).
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one request (a batch of 1000 rich items stays well below it).
pub const MAX_ELEMENTS: usize = 2_000_000;

/// One XML element: namespace, local name, attributes (local names), text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI, empty when unqualified. The EWS namespaces are shared static strings, so
    /// a million stored items do not carry a million copies of them.
    pub ns: Cow<'static, str>,
    /// Local name (EWS names are shared static strings, see [`intern`]).
    pub name: Cow<'static, str>,
    /// Attributes by local name, in document order (namespace declarations left out).
    pub attrs: Vec<(Cow<'static, str>, String)>,
    /// Concatenated character data directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (or not UTF-8).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A DOCTYPE declaration: refused to rule out entity expansion attacks.
    #[error("DTDs are not allowed")]
    Dtd,
    /// Too deep or too many elements.
    #[error("document exceeds limits: {0}")]
    TooLarge(&'static str),
}

impl Element {
    /// A new types-namespace element (what stored items are made of).
    pub fn t(name: &str) -> Self {
        Element { ns: Cow::Borrowed(NS_TYPES), name: intern(name), ..Default::default() }
    }

    /// A new types-namespace element holding text.
    pub fn t_text(name: &str, text: impl Into<String>) -> Self {
        Element { ns: Cow::Borrowed(NS_TYPES), name: intern(name), text: text.into(), ..Default::default() }
    }

    /// Builder: adds an attribute.
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attrs.push((intern(name), value.into()));
        self
    }

    /// Builder: adds a child.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets (or replaces) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((intern(name), value)),
        }
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child with this local name, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Writes this element (and its subtree) in the types namespace with the `t:` prefix.
    pub fn write_t(&self, out: &mut String) {
        write_prefixed(self, "t", out);
    }
}

fn write_prefixed(e: &Element, prefix: &str, out: &mut String) {
    out.push('<');
    out.push_str(prefix);
    out.push(':');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(v, out);
        out.push('"');
    }
    if e.children.is_empty() && e.text.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    escape_into(&e.text, out);
    for c in &e.children {
        write_prefixed(c, prefix, out);
    }
    out.push_str("</");
    out.push_str(prefix);
    out.push(':');
    out.push_str(&e.name);
    out.push('>');
}

/// Escapes text or attribute content (`& < > " '`), dropping characters XML 1.0 forbids.
pub fn escape_into(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// Escapes into a new string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out);
    out
}

/// Parses a whole document into its root element, refusing DTDs and oversized structures.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|e| XmlError::Malformed(format!("not UTF-8: {e}")))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, ev) = reader.read_resolved_event().map_err(|e| XmlError::Malformed(e.to_string()))?;
        match ev {
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Start(ref s) | Event::Empty(ref s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooLarge("too many elements"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooLarge("nesting too deep"));
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                if !is_xml_name(s.name().as_ref()) {
                    return Err(XmlError::Malformed(format!(
                        "invalid element name {}",
                        String::from_utf8_lossy(s.name().as_ref())
                    )));
                }
                let ns_uri = match ns {
                    ResolveResult::Bound(n) => intern_namespace(n.as_ref()),
                    ResolveResult::Unbound => Cow::Borrowed(""),
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::Malformed(format!(
                            "unknown namespace prefix {}",
                            String::from_utf8_lossy(&p)
                        )));
                    }
                };
                let mut el = Element {
                    ns: ns_uri,
                    name: intern(&String::from_utf8_lossy(s.local_name().as_ref())),
                    ..Default::default()
                };
                for a in s.attributes().with_checks(true) {
                    let a = a.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    let key = a.key;
                    if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                        continue;
                    }
                    if !is_xml_name(key.as_ref()) {
                        return Err(XmlError::Malformed(format!(
                            "invalid attribute name {}",
                            String::from_utf8_lossy(key.as_ref())
                        )));
                    }
                    let value = a.unescape_value().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    el.attrs.push((intern(&String::from_utf8_lossy(key.local_name().as_ref())), value.into_owned()));
                }
                if matches!(ev, Event::Empty(_)) {
                    attach(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| XmlError::Malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(XmlError::Malformed("text outside the root element".into()));
                    }
                }
            }
            Event::CData(c) => {
                let s = String::from_utf8_lossy(&c.into_inner()).into_owned();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None => {
                        return Err(XmlError::Malformed("CDATA outside the root element".into()));
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("empty document".into()))
}

/// Whether bytes form an XML name (ASCII letters, digits, `_ - . :`, or non-ASCII), as libxml2
/// and Exchange require; quick-xml is more lenient about attribute keys.
fn is_xml_name(name: &[u8]) -> bool {
    match name.first() {
        None => false,
        Some(first) if first.is_ascii_digit() || *first == b'-' || *first == b'.' => false,
        Some(_) => {
            name.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || *b >= 0x80)
        }
    }
}

/// The known namespaces as static strings, others as owned ones.
fn intern_namespace(uri: &[u8]) -> Cow<'static, str> {
    for known in [NS_TYPES, NS_MESSAGES, NS_SOAP, NS_ERRORS] {
        if uri == known.as_bytes() {
            return Cow::Borrowed(known);
        }
    }
    Cow::Owned(String::from_utf8_lossy(uri).into_owned())
}

/// Element and attribute names that are shared rather than allocated per element: every name
/// of the item types (from the schema order lists) plus the usual attributes and containers.
fn known_names() -> &'static std::collections::HashSet<&'static str> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        use crate::schema_order::*;
        let extra: &[&str] = &[
            "Entry",
            "Key",
            "String",
            "Value",
            "Values",
            "ExtendedFieldURI",
            "FieldURI",
            "IndexedFieldURI",
            "FieldIndex",
            "PropertySetId",
            "DistinguishedPropertySetId",
            "PropertyName",
            "PropertyId",
            "PropertyTag",
            "PropertyType",
            "BodyType",
            "Id",
            "ChangeKey",
            "Member",
            "Mailbox",
            "Name",
            "EmailAddress",
            "RoutingType",
            "MailboxType",
            "FirstName",
            "LastName",
            "FullName",
            "Interval",
            "DaysOfWeek",
            "StartDate",
            "EndDate",
            "NumberOfOccurrences",
            "WeeklyRecurrence",
            "DailyRecurrence",
            "NumberedRecurrence",
            "NoEndRecurrence",
            "EndDateRecurrence",
            "IsTruncated",
            "Status",
        ];
        [ITEM, PHYSICAL_ADDRESS_ENTRY, extra].iter().chain(ALL_OWN).flat_map(|l| l.iter().copied()).collect()
    })
}

/// A shared static name when the name is a known EWS one, else an owned copy.
pub fn intern(name: &str) -> Cow<'static, str> {
    match known_names().get(name) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(name.to_string()),
    }
}

impl Element {
    /// Releases spare capacity of the whole tree (stored items live long).
    pub fn compact(&mut self) {
        self.text.shrink_to_fit();
        self.attrs.shrink_to_fit();
        for a in &mut self.attrs {
            a.1.shrink_to_fit();
        }
        for c in &mut self.children {
            c.compact();
        }
        self.children.shrink_to_fit();
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => {
            // Whitespace between child elements is formatting, not content.
            if parent.children.is_empty() && parent.text.trim().is_empty() {
                parent.text.clear();
            }
            parent.children.push(el);
        }
        None => *root = Some(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_attributes_and_text() {
        let doc = br#"<?xml version="1.0"?><a:x xmlns:a="urn:a" k="v &amp; w"><a:y>h&#233;llo</a:y><z/></a:x>"#;
        let e = parse(doc).unwrap();
        assert_eq!(e.ns, "urn:a");
        assert_eq!(e.attr("k"), Some("v & w"));
        assert_eq!(e.child_text("y"), Some("héllo"));
        assert_eq!(e.child("z").unwrap().ns, "");
    }

    #[test]
    fn refuses_dtd_and_entities() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(matches!(parse(bomb), Err(XmlError::Dtd)));
        assert!(parse(b"<x>&a;</x>").is_err());
    }

    #[test]
    fn refuses_deep_and_broken_documents() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(parse(deep.as_bytes()), Err(XmlError::TooLarge(_))));
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<p:a/>").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(br#"<a P/x="1"/>"#).is_err());
        assert!(parse(br#"<a P"x="1"/>"#).is_err());
        assert!(parse(br#"<a"b/>"#).is_err());
    }

    #[test]
    fn writer_escapes_and_round_trips() {
        let e = Element::t_text("Subject", "a<b & \"c\"\u{1}").with_attr("K", "x'y");
        let mut s = String::new();
        e.write_t(&mut s);
        let wrapped = format!("<r xmlns:t=\"{NS_TYPES}\">{s}</r>");
        let back = parse(wrapped.as_bytes()).unwrap();
        let c = &back.children[0];
        assert_eq!(c.text, "a<b & \"c\"");
        assert_eq!(c.attr("K"), Some("x'y"));
    }
}
