//! Parsing a response into an element tree, tolerant of what servers vary and strict about what is
//! dangerous.
//!
//! Exchange versions differ in namespace prefixes (`m:`/`t:`, `s:`/`soap:`), in where they put some
//! elements (`m:Notification` vs `t:Notification`) and in the elements they add. Elements are therefore
//! matched by local name and unknown ones are simply kept (and ignored by whoever does not ask for
//! them). Hostile input is bounded: DTDs are refused (so no entity can be declared or expanded; only the
//! five predefined entities and character references are decoded), and documents are limited in size
//! and nesting depth.

use quick_xml::events::{BytesStart, Event};

/// Bounds on a document, to keep a malicious or broken server from exhausting memory or stack.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest accepted document, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_bytes: 64 * 1024 * 1024, max_depth: 64 }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document is larger than [`ParseLimits::max_bytes`].
    #[error("document too large ({0} bytes)")]
    TooLarge(usize),
    /// Elements nest deeper than [`ParseLimits::max_depth`].
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    /// The document has a DOCTYPE (refused: it could declare entities).
    #[error("DTDs are not accepted")]
    Dtd,
    /// The document is not well-formed.
    #[error("not well-formed: {0}")]
    Syntax(String),
    /// The document has no root element.
    #[error("no root element")]
    Empty,
}

/// One element: its local name (prefix dropped), attributes by local name, children and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name, e.g. `ItemId` for `t:ItemId`.
    pub name: String,
    /// Attributes by local name (namespace declarations are dropped).
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// The concatenated character data directly inside this element.
    pub text: String,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of local names from this element.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The text of the first child with this name, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first descendant (depth first) with this local name.
    pub fn descendant(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.name == name { Some(c) } else { c.descendant(name) })
    }
}

fn local(name: &[u8]) -> String {
    let local = match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(local).into_owned()
}

fn open(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let mut element = Element { name: local(start.name().as_ref()), ..Element::default() };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Syntax(e.to_string()))?;
        let key = attribute.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = attribute.unescape_value().map_err(|e| XmlError::Syntax(e.to_string()))?;
        element.attributes.push((local(key), value.into_owned()));
    }
    Ok(element)
}

/// Parses one document into its root element.
pub fn parse(input: &[u8], limits: ParseLimits) -> Result<Element, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(input.len()));
    }
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| XmlError::Syntax(e.to_string()))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Syntax("content after the root element".into()));
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(XmlError::Syntax("content after the root element".into()));
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                let element = open(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| XmlError::Syntax(e.to_string()))?;
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(XmlError::Syntax("text outside the root element".into())),
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&String::from_utf8_lossy(&data.into_inner()));
                }
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("document ends inside an element".into()));
    }
    root.ok_or(XmlError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Element, XmlError> {
        parse(s.as_bytes(), ParseLimits::default())
    }

    #[test]
    fn prefixes_are_dropped_and_unknown_elements_kept() {
        let e =
            p(r#"<?xml version="1.0"?><s:A xmlns:s="x" xmlns:t="y"><t:B Id="1&amp;2">a &lt; b</t:B><NewThing/></s:A>"#)
                .unwrap();
        assert_eq!(e.name, "A");
        let b = e.child("B").unwrap();
        assert_eq!(b.attr("Id"), Some("1&2"));
        assert_eq!(b.text, "a < b");
        assert!(e.child("NewThing").is_some());
        assert!(e.attributes.is_empty(), "namespace declarations are not attributes");
    }

    #[test]
    fn dtd_and_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><a>&x;</a>"#;
        assert_eq!(p(bomb), Err(XmlError::Dtd));
        assert!(matches!(p("<a>&x;</a>"), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn limits_on_size_and_depth() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(p(&deep), Err(XmlError::TooDeep(64)));
        let limits = ParseLimits { max_bytes: 10, max_depth: 64 };
        assert_eq!(parse(b"<aaaaaaaaaaaaaaaa/>", limits), Err(XmlError::TooLarge(19)));
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(p("<a><b></a>").is_err());
        assert!(p("<a>").is_err());
        assert_eq!(p("  "), Err(XmlError::Empty));
        assert!(p("<a/><b/>").is_err());
    }
}
