//! Parsing a response into an element tree, tolerant of what servers vary and strict about what is
//! dangerous.
//!
//! Exchange versions differ in namespace prefixes (`m:`/`t:`, `s:`/`soap:`), in where they put some
//! elements (`m:Notification` vs `t:Notification`) and in the elements they add. Elements are therefore
//! matched by local name and unknown ones are simply kept (and ignored by whoever does not ask for
//! them). Hostile input is bounded: DTDs are refused (so no entity can be declared or expanded; only the
//! five predefined entities and character references are decoded), and documents are limited in size
//! and nesting depth.

use std::borrow::Cow;
use std::sync::OnceLock;

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
///
/// Names are [`Cow`]s: the names EWS responses use are borrowed from a static table, so a large
/// response costs no allocation per element or attribute name; other names are owned. Compare them with strings as usual (`element.name == "ItemId"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name, e.g. `ItemId` for `t:ItemId`.
    pub name: Cow<'static, str>,
    /// Attributes by local name (namespace declarations are dropped).
    pub attributes: Vec<(Cow<'static, str>, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// The concatenated character data directly inside this element. Whitespace-only runs between
    /// child elements (indentation) are not kept; a leaf keeps all of its text, blanks included.
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

    /// Takes an attribute's value out of the element (for a caller that consumes the tree and would
    /// otherwise copy the value).
    pub fn take_attr(&mut self, name: &str) -> Option<String> {
        let index = self.attributes.iter().position(|(k, _)| k == name)?;
        Some(self.attributes.swap_remove(index).1)
    }

    /// Takes the first child with this local name out of the element.
    pub fn take_child(&mut self, name: &str) -> Option<Element> {
        let index = self.children.iter().position(|c| c.name == name)?;
        Some(self.children.swap_remove(index))
    }

    /// The first descendant (depth first) with this local name.
    pub fn descendant(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.name == name { Some(c) } else { c.descendant(name) })
    }
}

/// Element and attribute names of EWS and SOAP responses. A name missing here is allocated when read;
/// the list only saves work for the frequent ones.
const KNOWN_NAMES: &[&str] = &[
    "Attachments",
    "Attendee",
    "Birthday",
    "Body",
    "BodyType",
    "BusinessHomePage",
    "CalendarItem",
    "CalendarItemType",
    "Categories",
    "ChangeKey",
    "Changes",
    "ChildFolderCount",
    "Children",
    "City",
    "Companies",
    "CompanyName",
    "CompleteName",
    "Contact",
    "ContactSource",
    "ContactsFolder",
    "CountryOrRegion",
    "Create",
    "CreateItemResponse",
    "CreateItemResponseMessage",
    "Culture",
    "DateTimeCreated",
    "DateTimeReceived",
    "DateTimeSent",
    "Delete",
    "DeleteItemResponse",
    "DeleteItemResponseMessage",
    "Department",
    "DescriptiveLinkKey",
    "DisplayName",
    "DistributionList",
    "EffectiveRights",
    "EmailAddress",
    "EmailAddresses",
    "End",
    "Entry",
    "Envelope",
    "ExtendedFieldURI",
    "ExtendedProperty",
    "Fault",
    "FileAs",
    "FileAsMapping",
    "FindFolderResponse",
    "FindFolderResponseMessage",
    "FindItemResponse",
    "FindItemResponseMessage",
    "FirstName",
    "Folder",
    "FolderClass",
    "FolderId",
    "Folders",
    "FullName",
    "GetFolderResponse",
    "GetFolderResponseMessage",
    "GetItemResponse",
    "GetItemResponseMessage",
    "GivenName",
    "HasAttachments",
    "HasPicture",
    "Header",
    "Id",
    "ImAddresses",
    "Importance",
    "IncludesLastFolderInRange",
    "IncludesLastItemInRange",
    "IndexedPagingOffset",
    "Initials",
    "IsAssociated",
    "IsRead",
    "IsRecurring",
    "Item",
    "ItemClass",
    "ItemId",
    "Items",
    "JobTitle",
    "Key",
    "LastModifiedName",
    "LastModifiedTime",
    "LastName",
    "Location",
    "Mailbox",
    "MailboxType",
    "MajorBuildNumber",
    "MajorVersion",
    "Manager",
    "Member",
    "Members",
    "Message",
    "MessageText",
    "MessageXml",
    "MiddleName",
    "MinorBuildNumber",
    "MinorVersion",
    "Name",
    "Nickname",
    "OfficeLocation",
    "ParentFolderId",
    "PhoneNumbers",
    "PhysicalAddresses",
    "PostItem",
    "PostalCode",
    "PropertyId",
    "PropertyName",
    "PropertySetId",
    "PropertyTag",
    "PropertyType",
    "ReadFlagChange",
    "ResponseClass",
    "ResponseCode",
    "ResponseMessages",
    "RootFolder",
    "RoutingType",
    "Sensitivity",
    "ServerVersionInfo",
    "Size",
    "Start",
    "State",
    "Status",
    "Street",
    "String",
    "Subject",
    "Suffix",
    "Surname",
    "SyncFolderHierarchyResponse",
    "SyncFolderHierarchyResponseMessage",
    "SyncFolderItemsResponse",
    "SyncFolderItemsResponseMessage",
    "SyncState",
    "Task",
    "Title",
    "TotalCount",
    "TotalItemsInView",
    "UID",
    "UnreadCount",
    "Update",
    "UpdateItemResponse",
    "UpdateItemResponseMessage",
    "Value",
    "Version",
    "detail",
    "faultcode",
    "faultstring",
];

/// The known names by their bytes. FxHash (the compiler's hash): names are short and trusted (the
/// table's keys), and a lookup must cost less than the allocation it saves, which the standard
/// library's SipHash would not.
type NameTable = rustc_hash::FxHashMap<&'static [u8], &'static str>;

fn known_names() -> &'static NameTable {
    static TABLE: OnceLock<NameTable> = OnceLock::new();
    TABLE.get_or_init(|| KNOWN_NAMES.iter().map(|n| (n.as_bytes(), *n)).collect())
}

/// The local name (prefix dropped) of a qualified name: borrowed from [`KNOWN_NAMES`] when it is
/// there, allocated otherwise.
pub(crate) fn intern(qualified: &[u8]) -> Cow<'static, str> {
    let local = local_name(qualified);
    match known_names().get(local) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(String::from_utf8_lossy(local).into_owned()),
    }
}

/// How many attribute keys of an element are checked for duplicates on the stack (more are rare and
/// checked by quick-xml, whose own check allocates a vector per element).
const KEYS_CHECKED_HERE: usize = 8;

fn open(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let mut attributes = Vec::new();
    for_each_attribute(start, |key, value| attributes.push((intern(key), value.into_owned())))?;
    Ok(Element { name: intern(start.name().as_ref()), attributes, ..Element::default() })
}

/// Calls `f` with each attribute of a start tag (its qualified key and decoded value), namespace
/// declarations left out. Refuses what the tree reader refuses: malformed or duplicated
/// attributes and values that do not decode. Shared with `crate::id_scan`, so that both read
/// the same documents.
pub(crate) fn for_each_attribute(
    start: &BytesStart<'_>,
    mut f: impl FnMut(&[u8], Cow<'_, str>),
) -> Result<(), XmlError> {
    let mut keys: [&[u8]; KEYS_CHECKED_HERE] = [&[]; KEYS_CHECKED_HERE];
    let mut count = 0;
    for attribute in start.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| XmlError::Syntax(e.to_string()))?;
        let key = attribute.key.0;
        if keys[..count.min(KEYS_CHECKED_HERE)].contains(&key) {
            return Err(XmlError::Syntax(format!("duplicated attribute {}", String::from_utf8_lossy(key))));
        }
        if let Some(slot) = keys.get_mut(count) {
            *slot = key;
        }
        count += 1;
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = attribute.unescape_value().map_err(|e| XmlError::Syntax(e.to_string()))?;
        f(key, value);
    }
    if count > KEYS_CHECKED_HERE {
        for attribute in start.attributes() {
            attribute.map_err(|e| XmlError::Syntax(e.to_string()))?;
        }
    }
    Ok(())
}

/// The local part of a qualified name (`t:ItemId` -> `ItemId`).
pub(crate) fn local_name(qualified: &[u8]) -> &[u8] {
    match qualified.iter().rposition(|b| *b == b':') {
        Some(i) => &qualified[i + 1..],
        None => qualified,
    }
}

/// Whether a text run is only XML whitespace (space, tab, carriage return, line feed).
pub(crate) fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// An element whose end tag has not been read yet.
struct Open<'a> {
    element: Element,
    /// Where this element's children start in the shared list of children being built.
    first_child: usize,
    /// Whitespace read last and not yet added to the text: dropped if it turns out to sit between
    /// child elements, so indentation costs no allocation.
    blank: &'a str,
}

impl Open<'_> {
    fn keep_blank(&mut self) {
        if !self.blank.is_empty() {
            self.element.text.push_str(self.blank);
            self.blank = "";
        }
    }
}

/// Parses one document into its root element.
pub fn parse(input: &[u8], limits: ParseLimits) -> Result<Element, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(input.len()));
    }
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Open<'_>> = Vec::new();
    // The children of all open elements, in document order; an element takes its own (an exactly
    // sized vector) when it ends, so no element's children vector grows step by step.
    let mut children: Vec<Element> = Vec::new();
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
                stack.push(Open { element: open(&start)?, first_child: children.len(), blank: "" });
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
                    Some(parent) => {
                        parent.blank = "";
                        children.push(element);
                    }
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let mut open = stack.pop().ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                if children.len() == open.first_child {
                    open.keep_blank();
                } else {
                    open.element.children = children.drain(open.first_child..).collect();
                }
                match stack.last_mut() {
                    Some(parent) => {
                        parent.blank = "";
                        children.push(open.element);
                    }
                    None => root = Some(open.element),
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| XmlError::Syntax(e.to_string()))?;
                let Some(current) = stack.last_mut() else {
                    if text.trim().is_empty() {
                        continue;
                    }
                    return Err(XmlError::Syntax("text outside the root element".into()));
                };
                match text {
                    Cow::Borrowed(blank) if is_blank(blank) => {
                        if children.len() == current.first_child {
                            current.keep_blank();
                            current.blank = blank;
                        }
                    }
                    text => {
                        current.keep_blank();
                        if current.element.text.is_empty() {
                            current.element.text = text.into_owned();
                        } else {
                            current.element.text.push_str(&text);
                        }
                    }
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.keep_blank();
                    current.element.text.push_str(&String::from_utf8_lossy(&data.into_inner()));
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

    #[test]
    fn indentation_is_dropped_and_leaf_text_kept_whole() {
        let e = p("<a>\n  <b>  </b>\n  <c> x &amp; y </c>\n  <d><!-- note --> </d>\n</a>\n").unwrap();
        assert_eq!(e.text, "", "whitespace between children is indentation");
        assert_eq!(e.child("b").unwrap().text, "  ", "a blank leaf keeps its blanks");
        assert_eq!(e.child("c").unwrap().text, " x & y ");
        assert_eq!(e.child("d").unwrap().text, " ");
        let mixed = p("<a> <b/>x<c/> </a>").unwrap();
        assert_eq!(mixed.text, "x", "only the blank runs next to children go");
        assert_eq!(mixed.children.len(), 2);
        assert_eq!(p("<a>  <![CDATA[<b>]]> </a>").unwrap().text, "  <b> ");
    }

    #[test]
    fn known_names_are_borrowed_and_others_owned() {
        let e =
            p(r#"<m:Items xmlns:m="x"><t:ItemId Id="1" ChangeKey="2" Brand_New="3"/><t:Gizmo/></m:Items>"#).unwrap();
        assert!(matches!(e.name, Cow::Borrowed("Items")));
        let id = &e.children[0];
        assert!(matches!(id.name, Cow::Borrowed("ItemId")));
        assert!(id.attributes.iter().take(2).all(|(k, _)| matches!(k, Cow::Borrowed(_))));
        assert_eq!(id.attributes[2], (Cow::Owned::<str>("Brand_New".into()), "3".to_owned()));
        assert!(matches!(e.children[1].name, Cow::Owned(ref n) if n == "Gizmo"));
        let mut names: Vec<&str> = KNOWN_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KNOWN_NAMES.len(), "no name is listed twice");
    }

    #[test]
    fn taking_moves_values_out() {
        let mut e = p(r#"<Contact><ItemId Id="AAA=" ChangeKey="CK"/><Subject>s</Subject></Contact>"#).unwrap();
        let mut id = e.take_child("ItemId").unwrap();
        assert_eq!(id.take_attr("Id").as_deref(), Some("AAA="));
        assert_eq!(id.attr("Id"), None, "taken, not left empty");
        assert_eq!(id.attr("ChangeKey"), Some("CK"));
        assert_eq!(id.take_attr("Nope"), None);
        assert!(e.take_child("ItemId").is_none());
        assert_eq!(e.child_text("Subject"), Some("s"));
    }

    #[test]
    fn duplicate_attributes_are_refused() {
        assert!(matches!(p(r#"<a Id="1" Id="2"/>"#), Err(XmlError::Syntax(_))));
        assert!(matches!(p(r#"<a xmlns:t="x" xmlns:t="y"/>"#), Err(XmlError::Syntax(_))));
        let many: String = (0..12).map(|i| format!(r#" a{i}="{i}""#)).collect();
        assert_eq!(p(&format!("<a{many}/>")).unwrap().attributes.len(), 12);
        assert!(matches!(p(&format!(r#"<a{many} a11="x"/>"#)), Err(XmlError::Syntax(_))));
        assert!(matches!(p(&format!(r#"<a{many} a1="x"/>"#)), Err(XmlError::Syntax(_))));
    }
}
