//! Items and folders as EWS XML, in schema order, filtered by a response shape.

use crate::property_path::{ExtendedKey, PropertyPath};
use crate::response_code::EwsError;
use crate::schema_order;
use crate::store::{Folder, IdKind, Item, Mailbox, encode_change_key, encode_id, encode_occurrence_id};
use crate::xml::{Element, escape};

/// `xs:dateTime` as Exchange writes it: UTC, `Z`, whole seconds (clients such as exchangelib
/// parse exactly this form). The store keeps finer times, so ordering stays strict internally.
pub fn datetime(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `BaseShape` of a response shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseShape {
    /// Ids only.
    IdOnly,
    /// The usual properties.
    Default,
    /// Everything.
    AllProperties,
}

/// An `ItemShape` / `FolderShape`.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The base set of properties.
    pub base: BaseShape,
    /// `AdditionalProperties`.
    pub additional: Vec<PropertyPath>,
}

impl Shape {
    /// Parses a shape element; a missing element means IdOnly.
    pub fn parse(e: Option<&Element>) -> Result<Self, EwsError> {
        let Some(e) = e else {
            return Ok(Shape { base: BaseShape::IdOnly, additional: vec![] });
        };
        let base = match e.child_text("BaseShape") {
            Some("IdOnly") => BaseShape::IdOnly,
            Some("Default") => BaseShape::Default,
            Some("AllProperties") => BaseShape::AllProperties,
            other => {
                return Err(EwsError::invalid_request(format!("Invalid BaseShape {other:?}")));
            }
        };
        let mut additional = vec![];
        if let Some(props) = e.child("AdditionalProperties") {
            for p in &props.children {
                if let Some(path) = PropertyPath::parse(p)? {
                    additional.push(path);
                }
            }
        }
        Ok(Shape { base, additional })
    }
}

/// Where an item is rendered: GetItem returns bodies, FindItem and SyncFolderItems do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// GetItem.
    Get,
    /// FindItem, SyncFolderItems.
    List,
}

fn folder_id_element(name: &str, mb: &Mailbox, folder: u64) -> Element {
    let version = mb.folders.get(&folder).map_or(1, |f| f.version);
    Element::t(name)
        .with_attr("Id", encode_id(IdKind::Folder, mb.index, folder))
        .with_attr("ChangeKey", encode_change_key(folder, version))
}

/// The `t:ItemId` of an item.
pub fn item_id_element(mb_index: u32, item: &Item) -> Element {
    Element::t("ItemId")
        .with_attr("Id", encode_id(IdKind::Item, mb_index, item.number))
        .with_attr("ChangeKey", encode_change_key(item.number, item.version))
}

/// Properties the server computes, as elements.
fn server_fields(mb: &Mailbox, item: &Item) -> Vec<Element> {
    let mut v = vec![
        item_id_element(mb.index, item),
        folder_id_element("ParentFolderId", mb, item.folder),
        Element::t_text("ItemClass", item.item_class.clone()),
        Element::t_text("DateTimeReceived", datetime(&item.created)),
        Element::t_text("Size", approx_size(item).to_string()),
        Element::t_text("DateTimeCreated", datetime(&item.created)),
        Element::t_text("HasAttachments", "false"),
        Element::t_text("LastModifiedName", mb.display_name.clone()),
        Element::t_text("LastModifiedTime", datetime(&item.modified)),
        Element::t_text("IsAssociated", "false"),
    ];
    match item.element.as_str() {
        "Contact" => {
            let text = |n: &str| item.field(n).map(|f| f.text.clone());
            let given = text("GivenName");
            let surname = text("Surname");
            if item.field("DisplayName").is_none() {
                let dn = [given.clone(), surname.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ");
                if !dn.is_empty() {
                    v.push(Element::t_text("DisplayName", dn));
                }
            }
            let mut complete = Element::t("CompleteName");
            if let Some(g) = given {
                complete.children.push(Element::t_text("FirstName", g));
            }
            if let Some(m) = text("MiddleName") {
                complete.children.push(Element::t_text("MiddleName", m));
            }
            if let Some(s) = surname {
                complete.children.push(Element::t_text("LastName", s));
            }
            if let Some(d) = text("DisplayName") {
                complete.children.push(Element::t_text("FullName", d));
            }
            if !complete.children.is_empty() {
                v.push(complete);
            }
        }
        "CalendarItem" => {
            let recurring = item.field("Recurrence").is_some();
            if item.field("UID").is_none() {
                v.push(Element::t_text("UID", format!("{:032X}", (mb.index as u128) << 64 | item.number as u128)));
            }
            v.push(Element::t_text("IsRecurring", if recurring { "true" } else { "false" }));
            v.push(Element::t_text("CalendarItemType", if recurring { "RecurringMaster" } else { "Single" }));
            if recurring
                && let Some(m) = crate::calendar::modified_occurrences(item, |index| {
                    Element::t("ItemId")
                        .with_attr("Id", encode_occurrence_id(mb.index, item.number, index))
                        .with_attr("ChangeKey", encode_change_key(item.number, item.version))
                })
            {
                v.push(m);
            }
        }
        _ => {}
    }
    v
}

fn approx_size(item: &Item) -> usize {
    fn size(e: &Element) -> usize {
        e.name.len() + e.text.len() + e.children.iter().map(size).sum::<usize>()
    }
    200 + item.fields.iter().chain(item.extended.iter()).map(size).sum::<usize>()
}

/// Fields listed in the Default shape of item lists: the cheap, first-class ones.
const HEAVY: &[&str] = &["Body", "MimeContent", "Attachments", "UniqueBody", "NormalizedBody", "TextBody"];

/// Writes one item (as `t:Contact`, `t:CalendarItem`, ...) for a shape.
pub fn write_item(out: &mut String, mb: &Mailbox, item: &Item, shape: &Shape, ctx: Context) {
    if shape.base == BaseShape::IdOnly && shape.additional.is_empty() {
        // The id alone (a sync page of 512 changes is 512 of these): written directly, the
        // same text as through the element tree below.
        let id = item_id_element(mb.index, item);
        out.push_str("<t:");
        out.push_str(&item.element);
        out.push('>');
        id.write_t(out);
        out.push_str("</t:");
        out.push_str(&item.element);
        out.push('>');
        return;
    }
    let fields = item_fields(mb, item, shape, ctx);
    out.push_str("<t:");
    out.push_str(&item.element);
    out.push('>');
    for f in &fields {
        f.write_t(out);
    }
    out.push_str("</t:");
    out.push_str(&item.element);
    out.push('>');
}

/// The elements of an item for a shape, in schema order.
fn item_fields(mb: &Mailbox, item: &Item, shape: &Shape, ctx: Context) -> Vec<Element> {
    let mut fields: Vec<Element> = Vec::new();
    // An IdOnly shape that names no item field needs only the id: computing the other server
    // properties (sizes, formatted dates) for every change of a large sync page would be most of
    // its cost.
    let needs_server_fields =
        shape.base != BaseShape::IdOnly || shape.additional.iter().any(|p| matches!(p, PropertyPath::Field { .. }));
    let server = if needs_server_fields { server_fields(mb, item) } else { vec![item_id_element(mb.index, item)] };
    match shape.base {
        BaseShape::IdOnly => fields.push(server[0].clone()),
        BaseShape::Default | BaseShape::AllProperties => {
            fields.extend(server.iter().cloned());
            for f in &item.fields {
                if fields.iter().any(|x| x.name == f.name) {
                    continue;
                }
                if ctx == Context::List && HEAVY.contains(&&*f.name) {
                    continue;
                }
                fields.push(f.clone());
            }
        }
    }
    for path in &shape.additional {
        match path {
            PropertyPath::Field { element, .. } => {
                if fields.iter().any(|x| &x.name == element)
                    || (ctx == Context::List && HEAVY.contains(&element.as_str()))
                {
                    continue;
                }
                if let Some(f) = server.iter().find(|x| &x.name == element).or_else(|| item.field(element)) {
                    fields.push(f.clone());
                }
            }
            PropertyPath::Indexed { container, key, .. } => {
                let Some(src) = item.field(container) else {
                    continue;
                };
                let Some(entry) = src.children.iter().find(|e| e.attr("Key") == Some(key.as_str())) else {
                    continue;
                };
                match fields.iter_mut().find(|x| &x.name == container) {
                    Some(existing) => {
                        if !existing.children.iter().any(|e| e.attr("Key") == Some(key.as_str())) {
                            existing.children.push(entry.clone());
                        }
                    }
                    None => fields.push(Element::t(container).with_child(entry.clone())),
                }
            }
            PropertyPath::Extended(key, _) => {
                if let Some(p) = crate::property_path::find_extended(&item.extended, key)
                    && !fields.iter().any(|x| x == p)
                {
                    fields.push(p.clone());
                }
            }
        }
    }
    for f in fields.iter_mut().filter(|f| f.name == "Members") {
        *f = members_as_exchange_returns_them(f);
    }
    let order = schema_order::for_item(&item.element);
    fields.retain(|f| order.contains(&f.name));
    fields.sort_by_key(|f| order.position(&f.name));
    fields
}

/// An occurrence of a recurring master to write (from [`crate::calendar::occurrence`]).
#[derive(Debug, Clone, Copy)]
pub struct Occurrence<'a> {
    /// The recurring master.
    pub master: &'a Item,
    /// Instance index, from 1.
    pub index: u32,
    /// The occurrence's fields.
    pub item: &'a Item,
    /// Whether it is an exception (modified) rather than a plain occurrence.
    pub exception: bool,
}

/// Writes an occurrence of a recurring master as a `t:CalendarItem` of type `Occurrence` or
/// `Exception`, with the occurrence's own id.
pub fn write_occurrence(out: &mut String, mb: &Mailbox, occurrence: Occurrence<'_>, shape: &Shape, ctx: Context) {
    let Occurrence { master, index, item, exception } = occurrence;
    let id = occurrence_id_element(mb.index, master, index);
    let mut fields = item_fields(mb, item, shape, ctx);
    for f in &mut fields {
        match &*f.name {
            "ItemId" => *f = id.clone(),
            "IsRecurring" => f.text = "true".into(),
            "CalendarItemType" => f.text = if exception { "Exception" } else { "Occurrence" }.into(),
            "UID" if master.field("UID").is_none() => {
                f.text = format!("{:032X}", (mb.index as u128) << 64 | master.number as u128);
            }
            _ => {}
        }
    }
    if !fields.iter().any(|f| f.name == "ItemId") {
        fields.insert(0, id);
    }
    out.push_str("<t:CalendarItem>");
    for f in &fields {
        f.write_t(out);
    }
    out.push_str("</t:CalendarItem>");
}

/// The `t:ItemId` of an occurrence (the master's change key: an occurrence is part of it).
pub fn occurrence_id_element(mb_index: u32, master: &Item, index: u32) -> Element {
    Element::t("ItemId")
        .with_attr("Id", encode_occurrence_id(mb_index, master.number, index))
        .with_attr("ChangeKey", encode_change_key(master.number, master.version))
}

/// Distribution list members as Exchange returns them: each `t:Member` with a `Key` (stable per
/// position and address) and a `t:Status` after its mailbox.
fn members_as_exchange_returns_them(members: &Element) -> Element {
    let mut out = members.clone();
    for (i, m) in out.children.iter_mut().enumerate().filter(|(_, m)| m.name == "Member") {
        if m.attr("Key").is_none() {
            let address = m.child("Mailbox").and_then(|b| b.child("EmailAddress")).map_or("", |e| e.text.as_str());
            let key = format!("{i}:{address}");
            m.attrs.push(("Key".into(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)));
        }
        if m.child("Status").is_none() {
            m.children.push(Element::t_text("Status", "Normal"));
        }
    }
    out
}

/// Element name of a folder by class: `ContactsFolder`, `CalendarFolder`, `TasksFolder`, `Folder`.
pub fn folder_element(class: &str) -> &'static str {
    if class.starts_with("IPF.Contact") {
        "ContactsFolder"
    } else if class.starts_with("IPF.Appointment") {
        "CalendarFolder"
    } else if class.starts_with("IPF.Task") {
        "TasksFolder"
    } else {
        "Folder"
    }
}

/// PR_LOCAL_COMMIT_TIME_MAX.
const TAG_LOCAL_COMMIT_TIME_MAX: u32 = 0x670A;
/// PR_DELETED_COUNT_TOTAL.
const TAG_DELETED_COUNT_TOTAL: u32 = 0x670B;

/// Writes one folder for a shape, with the change-probe extended properties when asked.
pub fn write_folder(out: &mut String, mb: &Mailbox, folder: &Folder, shape: &Shape) {
    let el = folder_element(&folder.class);
    out.push_str("<t:");
    out.push_str(el);
    out.push('>');
    folder_id_element("FolderId", mb, folder.number).write_t(out);
    let wants = |name: &str| {
        shape.base != BaseShape::IdOnly
            || shape.additional.iter().any(|p| matches!(p, PropertyPath::Field { element, .. } if element == name))
    };
    if let Some(parent) = folder.parent
        && wants("ParentFolderId")
    {
        folder_id_element("ParentFolderId", mb, parent).write_t(out);
    }
    if wants("FolderClass") && !folder.class.is_empty() {
        Element::t_text("FolderClass", folder.class.clone()).write_t(out);
    }
    if wants("DisplayName") {
        Element::t_text("DisplayName", folder.display_name.clone()).write_t(out);
    }
    if wants("TotalCount") {
        Element::t_text("TotalCount", folder.items.len().to_string()).write_t(out);
    }
    if wants("ChildFolderCount") {
        Element::t_text("ChildFolderCount", folder.children.len().to_string()).write_t(out);
    }
    for p in &shape.additional {
        if let PropertyPath::Extended(key, uri) = p
            && let Some(value) = folder_extended(folder, key)
        {
            let mut uri = uri.clone();
            uri.ns = std::borrow::Cow::Borrowed(crate::xml::NS_TYPES);
            Element::t("ExtendedProperty").with_child(uri).with_child(Element::t_text("Value", value)).write_t(out);
        }
    }
    if (el == "Folder" || el == "TasksFolder") && wants("UnreadCount") {
        Element::t_text("UnreadCount", "0").write_t(out);
    }
    out.push_str("</t:");
    out.push_str(el);
    out.push('>');
}

fn folder_extended(folder: &Folder, key: &ExtendedKey) -> Option<String> {
    if key.is_tag(TAG_LOCAL_COMMIT_TIME_MAX) {
        Some(datetime(&folder.last_commit))
    } else if key.is_tag(TAG_DELETED_COUNT_TOTAL) {
        Some(folder.deleted_count.to_string())
    } else {
        None
    }
}

/// A `t:FolderId`-like element for the given folder (used by notifications and sync).
pub fn folder_id(name: &str, mb: &Mailbox, folder: u64) -> String {
    let mut s = String::new();
    folder_id_element(name, mb, folder).write_t(&mut s);
    s
}

/// Writes `<m:MessageText>`-safe text.
pub fn text(s: &str) -> String {
    escape(s)
}
