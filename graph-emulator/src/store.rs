//! The in-memory tenant: mailboxes (users and shared mailboxes), their contact folders and
//! contacts, and the change log that delta queries read.
//!
//! Every write takes the next number of one tenant-wide sequence; a contact remembers the number
//! of its last write, and a deleted contact leaves a tombstone with the number of its deletion. A
//! delta round reads what changed after its token's number, up to the number current when the
//! round began: a change made while a client pages through a round is reported in the next one.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::contact::{self, PropertyType};
use crate::error::GraphError;
use crate::odata::{self, Filter};

/// One contact as stored.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Graph id.
    pub id: String,
    /// The folder holding it.
    pub folder_id: String,
    /// Client-written properties (only those [`contact::WRITABLE`] declares), nulls dropped.
    pub properties: Map<String, Value>,
    /// Extended property values by normalized id.
    pub extended: BTreeMap<String, String>,
    /// Changes on every write; the entity tag is `W/"changeKey"`.
    pub change_key: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Last write (RFC 3339).
    pub modified: String,
    /// Sequence number of the last write.
    pub seq: u64,
}

impl Contact {
    /// The entity tag of the current version.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.change_key)
    }
}

/// One contact folder.
#[derive(Debug, Clone)]
pub struct ContactFolder {
    /// Graph id.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// The parent folder's id.
    pub parent_id: String,
    /// Contacts by id, in creation order of their ids.
    pub contacts: BTreeMap<String, Contact>,
    /// Deleted contacts and the sequence number of their deletion.
    pub tombstones: BTreeMap<String, u64>,
}

/// A user's or shared mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// The directory object id (a GUID).
    pub id: String,
    /// userPrincipalName (= primary SMTP address here).
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Shared mailboxes have no licence of their own; Graph reaches them as users all the same.
    pub shared: bool,
    /// The default Contacts folder's id.
    pub default_contacts: String,
    /// Every contact folder, the default one included.
    pub folders: BTreeMap<String, ContactFolder>,
}

/// The whole tenant.
#[derive(Debug, Default)]
pub struct Store {
    /// Mailboxes by lower-case UPN.
    pub mailboxes: BTreeMap<String, Mailbox>,
    seq: u64,
    ids: u64,
    /// Delta tokens of an older epoch are refused with `410 Gone` (a knob: tokens expire).
    pub delta_epoch: u64,
    /// The mailboxes' calendars and events.
    pub calendars: crate::calendar::Calendars,
    /// Groups and their members.
    pub directory: crate::directory::Directory,
}

/// What Graph answers a `$filter` on a property the collection cannot filter on.
fn unsupported_filter() -> GraphError {
    GraphError::bad_request("ErrorInvalidProperty", "The property used in the $filter is not supported here.".into())
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The delta position a token or skip token encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DeltaPosition {
    epoch: u64,
    /// Changes after this number (0: the initial round, live contacts only).
    from: u64,
    /// Up to this number (fixed when the round began).
    upto: u64,
    /// Changes of the round already delivered.
    offset: usize,
}

impl DeltaPosition {
    fn skip_token(&self) -> String {
        format!("s{}.{}.{}.{}", self.epoch, self.from, self.upto, self.offset)
    }

    fn delta_token(&self) -> String {
        format!("d{}.{}", self.epoch, self.upto)
    }

    fn parse(token: &str) -> Option<Self> {
        let (kind, rest) = token.split_at_checked(1)?;
        let nums: Vec<u64> = rest.split('.').map(str::parse).collect::<Result<_, _>>().ok()?;
        match (kind, nums.as_slice()) {
            ("s", [epoch, from, upto, offset]) => {
                Some(DeltaPosition { epoch: *epoch, from: *from, upto: *upto, offset: usize::try_from(*offset).ok()? })
            }
            ("d", [epoch, upto]) => Some(DeltaPosition { epoch: *epoch, from: *upto, upto: 0, offset: 0 }),
            _ => None,
        }
    }
}

/// One page of a delta round.
#[derive(Debug)]
pub struct DeltaPage {
    /// Changed contacts (rendered) and removals (`@removed`).
    pub value: Vec<Value>,
    /// The skip token of the next page, or `None` on the last page.
    pub skip_token: Option<String>,
    /// On the last page: the delta token of the next round.
    pub delta_token: Option<String>,
}

/// How to render a contact.
#[derive(Debug, Default, Clone)]
pub struct Shape {
    /// Only these properties (plus `id` and the entity tag); `None`: all.
    pub select: Option<Vec<String>>,
    /// Extended properties to render, by normalized id.
    pub expand: Vec<String>,
}

impl Shape {
    /// Reads `$select` and `$expand` from a request's query options.
    pub fn from_query(q: &BTreeMap<String, String>) -> Result<Self, GraphError> {
        let select = q.get("$select").map(|s| s.split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>());
        if let Some(names) = &select {
            for n in names {
                let known = contact::property_type(n).is_some()
                    || matches!(
                        n.as_str(),
                        "id" | "changeKey" | "createdDateTime" | "lastModifiedDateTime" | "parentFolderId"
                    );
                if !known {
                    return Err(GraphError::bad_request(
                        "RequestBroker--ParseUri",
                        format!("Could not find a property named '{n}' on type 'microsoft.graph.contact'."),
                    ));
                }
            }
        }
        let expand = match q.get("$expand") {
            Some(e) => odata::parse_expand(e).map_err(|m| GraphError::bad_request("BadRequest", m))?,
            None => Vec::new(),
        };
        Ok(Shape { select, expand })
    }
}

/// The JSON Graph answers for a contact.
pub fn render_contact(c: &Contact, shape: &Shape) -> Value {
    let wanted = |name: &str| shape.select.as_ref().is_none_or(|s| s.iter().any(|n| n == name));
    let mut o = Map::new();
    o.insert("@odata.etag".into(), json!(c.etag()));
    o.insert("id".into(), json!(c.id));
    let server = [
        ("createdDateTime", json!(c.created)),
        ("lastModifiedDateTime", json!(c.modified)),
        ("changeKey", json!(c.change_key)),
    ];
    for (name, value) in server {
        if wanted(name) {
            o.insert(name.into(), value);
        }
    }
    if wanted("parentFolderId") {
        o.insert("parentFolderId".into(), json!(c.folder_id));
    }
    for (name, ty) in contact::WRITABLE {
        if wanted(name) {
            o.insert((*name).into(), c.properties.get(*name).cloned().unwrap_or_else(|| contact::empty_value(*ty)));
        }
    }
    if !shape.expand.is_empty() {
        let props: Vec<Value> =
            shape.expand.iter().filter_map(|id| c.extended.get(id).map(|v| json!({"id": id, "value": v}))).collect();
        o.insert("singleValueExtendedProperties@odata.context".into(), json!("singleValueExtendedProperties"));
        o.insert("singleValueExtendedProperties".into(), Value::Array(props));
    }
    Value::Object(o)
}

/// A written contact body: the properties to store and the extended properties (id, value) to set.
type ContactWrite = (Map<String, Value>, Vec<(String, String)>);

/// Splits a contact body into the properties to store and the extended properties to set.
fn read_body(body: &Value) -> Result<ContactWrite, GraphError> {
    let Some(obj) = body.as_object() else {
        return Err(GraphError::bad_request("RequestBodyRead", "The request body must be a JSON object.".into()));
    };
    let mut props = Map::new();
    let mut extended = Vec::new();
    for (k, v) in obj {
        if k.starts_with("@odata.") || contact::SERVER_MAINTAINED.contains(&k.as_str()) {
            continue;
        }
        if k == "singleValueExtendedProperties" {
            let Some(list) = v.as_array() else {
                return Err(GraphError::bad_request(
                    "RequestBodyRead",
                    "singleValueExtendedProperties must be an array.".into(),
                ));
            };
            for p in list {
                let id = p.get("id").and_then(Value::as_str).and_then(odata::normalize_property_id);
                let value = p.get("value").and_then(Value::as_str);
                match (id, value) {
                    (Some(id), Some(value)) => extended.push((id, value.to_owned())),
                    _ => {
                        return Err(GraphError::bad_request(
                            "ErrorInvalidProperty",
                            format!("The extended property {p} has no valid id or value."),
                        ));
                    }
                }
            }
            continue;
        }
        let Some(ty) = contact::property_type(k) else {
            return Err(GraphError::bad_request(
                "RequestBodyRead",
                format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.contact'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        };
        contact::check_value(k, ty, v).map_err(|m| GraphError::bad_request("RequestBodyRead", m))?;
        props.insert(k.clone(), contact::normalize(ty, v.clone()));
    }
    Ok((props, extended))
}

fn is_empty(ty: PropertyType, v: &Value) -> bool {
    v.is_null() || (ty != PropertyType::Text && ty != PropertyType::DateTime && *v == contact::empty_value(ty))
}

impl Store {
    /// The number of the latest write (change notifications look for writes after the one
    /// they last saw).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        let u = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}{}{:06}", &u[..20], self.ids)
    }

    /// Adds a mailbox with its default Contacts folder; answers its object id.
    pub fn add_mailbox(&mut self, upn: &str, display_name: &str, shared: bool) -> String {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let default_contacts = self.new_id("AAMkCF");
        let folder = ContactFolder {
            id: default_contacts.clone(),
            display_name: "Contacts".into(),
            parent_id: self.new_id("AAMkRT"),
            contacts: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        };
        let mailbox = Mailbox {
            id: id.clone(),
            upn: upn.to_owned(),
            display_name: display_name.to_owned(),
            shared,
            default_contacts: default_contacts.clone(),
            folders: [(default_contacts, folder)].into(),
        };
        self.mailboxes.insert(upn.to_ascii_lowercase(), mailbox);
        id
    }

    /// The mailbox a `users/{id | userPrincipalName}` segment names.
    pub fn mailbox(&self, key: &str) -> Result<&Mailbox, GraphError> {
        let key = key.to_ascii_lowercase();
        self.mailboxes
            .get(&key)
            .or_else(|| self.mailboxes.values().find(|m| m.id == key))
            .ok_or_else(|| GraphError::not_found("ErrorInvalidUser", format!("The requested user '{key}' is invalid.")))
    }

    fn mailbox_mut(&mut self, key: &str) -> Result<&mut Mailbox, GraphError> {
        let upn = self.mailbox(key)?.upn.to_ascii_lowercase();
        self.mailboxes.get_mut(&upn).ok_or_else(|| GraphError::not_found("ErrorInvalidUser", "no such user".into()))
    }

    /// The lower-case UPN of a mailbox key (for per-mailbox throttling).
    pub fn mailbox_key(&self, key: &str) -> Option<String> {
        self.mailbox(key).ok().map(|m| m.upn.to_ascii_lowercase())
    }

    fn folder<'a>(m: &'a Mailbox, folder: &str) -> Result<&'a ContactFolder, GraphError> {
        let id = if folder.eq_ignore_ascii_case("contacts") { m.default_contacts.as_str() } else { folder };
        m.folders.get(id).ok_or_else(|| {
            GraphError::not_found("ErrorItemNotFound", "The specified object was not found in the store.".into())
        })
    }

    fn folder_mut<'a>(m: &'a mut Mailbox, folder: &str) -> Result<&'a mut ContactFolder, GraphError> {
        let id = if folder.eq_ignore_ascii_case("contacts") { m.default_contacts.clone() } else { folder.to_owned() };
        m.folders.get_mut(&id).ok_or_else(|| {
            GraphError::not_found("ErrorItemNotFound", "The specified object was not found in the store.".into())
        })
    }

    /// The id of a folder key (`contacts` names the default folder).
    pub fn folder_id(&self, mailbox: &str, folder: Option<&str>) -> Result<String, GraphError> {
        let m = self.mailbox(mailbox)?;
        match folder {
            None => Ok(m.default_contacts.clone()),
            Some(f) => Ok(Self::folder(m, f)?.id.clone()),
        }
    }

    fn render_folder(f: &ContactFolder) -> Value {
        json!({"id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_id})
    }

    /// `GET users/{u}/user`: the mailbox's user object.
    pub fn user(&self, mailbox: &str) -> Result<Value, GraphError> {
        let m = self.mailbox(mailbox)?;
        Ok(json!({"id": m.id, "userPrincipalName": m.upn, "mail": m.upn, "displayName": m.display_name}))
    }

    /// `GET users/{u}/contactFolders`: the folders under the default Contacts folder.
    pub fn list_folders(&self, mailbox: &str, filter: Option<&Filter>) -> Result<Vec<Value>, GraphError> {
        let m = self.mailbox(mailbox)?;
        if matches!(filter, Some(Filter::MailEquals(_) | Filter::ExtendedPropertyEquals { .. })) {
            return Err(unsupported_filter());
        }
        Ok(m.folders
            .values()
            .filter(|f| f.parent_id == m.default_contacts)
            .filter(|f| match filter {
                Some(Filter::DisplayNameEquals(n)) => f.display_name.eq_ignore_ascii_case(n),
                _ => true,
            })
            .map(Self::render_folder)
            .collect())
    }

    /// `GET users/{u}/contactFolders/{f}`.
    pub fn get_folder(&self, mailbox: &str, folder: &str) -> Result<Value, GraphError> {
        let m = self.mailbox(mailbox)?;
        Ok(Self::render_folder(Self::folder(m, folder)?))
    }

    /// `POST users/{u}/contactFolders`: a folder under the default Contacts folder.
    pub fn create_folder(&mut self, mailbox: &str, body: &Value) -> Result<Value, GraphError> {
        let name = body.get("displayName").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(GraphError::bad_request("ErrorInvalidParameter", "displayName is required.".into()));
        }
        let id = self.new_id("AAMkCF");
        let m = self.mailbox_mut(mailbox)?;
        if m.folders.values().any(|f| f.parent_id == m.default_contacts && f.display_name.eq_ignore_ascii_case(&name)) {
            return Err(GraphError::new(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.".into(),
            ));
        }
        let folder = ContactFolder {
            id: id.clone(),
            display_name: name,
            parent_id: m.default_contacts.clone(),
            contacts: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        };
        let rendered = Self::render_folder(&folder);
        m.folders.insert(id, folder);
        Ok(rendered)
    }

    /// `DELETE users/{u}/contactFolders/{f}` (not the default folder).
    pub fn delete_folder(&mut self, mailbox: &str, folder: &str) -> Result<(), GraphError> {
        let m = self.mailbox_mut(mailbox)?;
        let id = Self::folder(m, folder)?.id.clone();
        if id == m.default_contacts {
            return Err(GraphError::new(
                403,
                "ErrorDeleteDistinguishedFolder",
                "Distinguished folders cannot be deleted.".into(),
            ));
        }
        m.folders.remove(&id);
        Ok(())
    }

    /// Contacts of a folder matching a filter, in id order, rendered.
    pub fn list_contacts(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        filter: Option<&Filter>,
        shape: &Shape,
    ) -> Result<Vec<Value>, GraphError> {
        let m = self.mailbox(mailbox)?;
        let f = Self::folder(m, folder.unwrap_or(&m.default_contacts))?;
        if matches!(filter, Some(Filter::MailEquals(_))) {
            return Err(unsupported_filter());
        }
        Ok(f.contacts
            .values()
            .filter(|c| match filter {
                Some(Filter::ExtendedPropertyEquals { id, value }) => c.extended.get(id) == Some(value),
                Some(Filter::DisplayNameEquals(n)) => {
                    c.properties.get("displayName").and_then(Value::as_str) == Some(n)
                }
                Some(Filter::MailEquals(_)) | None => true,
            })
            .map(|c| render_contact(c, shape))
            .collect())
    }

    fn find_contact<'a>(m: &'a Mailbox, folder: Option<&str>, id: &str) -> Result<&'a Contact, GraphError> {
        let missing =
            || GraphError::not_found("ErrorItemNotFound", "The specified object was not found in the store.".into());
        match folder {
            Some(f) => Self::folder(m, f)?.contacts.get(id).ok_or_else(missing),
            None => m.folders.values().find_map(|f| f.contacts.get(id)).ok_or_else(missing),
        }
    }

    /// `GET .../contacts/{id}`.
    pub fn get_contact(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        id: &str,
        shape: &Shape,
    ) -> Result<Value, GraphError> {
        let m = self.mailbox(mailbox)?;
        Ok(render_contact(Self::find_contact(m, folder, id)?, shape))
    }

    /// A contact's current entity tag (for `If-Match`).
    pub fn contact_etag(&self, mailbox: &str, folder: Option<&str>, id: &str) -> Result<String, GraphError> {
        let m = self.mailbox(mailbox)?;
        Ok(Self::find_contact(m, folder, id)?.etag())
    }

    /// `POST .../contacts`.
    pub fn create_contact(&mut self, mailbox: &str, folder: Option<&str>, body: &Value) -> Result<Value, GraphError> {
        let (props, extended) = read_body(body)?;
        let id = self.new_id("AAMkAGI");
        let change_key = self.new_id("EQAAAB");
        let seq = self.next_seq();
        let m = self.mailbox_mut(mailbox)?;
        let folder_key = folder.map(str::to_owned).unwrap_or_else(|| m.default_contacts.clone());
        let f = Self::folder_mut(m, &folder_key)?;
        let at = now();
        let contact = Contact {
            id: id.clone(),
            folder_id: f.id.clone(),
            properties: props
                .into_iter()
                .filter(|(k, v)| !contact::property_type(k).is_some_and(|t| is_empty(t, v)))
                .collect(),
            extended: extended.into_iter().collect(),
            change_key,
            created: at.clone(),
            modified: at,
            seq,
        };
        let rendered = render_contact(&contact, &Shape::default());
        f.contacts.insert(id, contact);
        Ok(rendered)
    }

    /// `PATCH .../contacts/{id}`, guarded by `If-Match` when given (`412` on a mismatch).
    pub fn update_contact(
        &mut self,
        mailbox: &str,
        folder: Option<&str>,
        id: &str,
        if_match: Option<&str>,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let (props, extended) = read_body(body)?;
        let change_key = self.new_id("EQAAAB");
        let seq = self.next_seq();
        let m = self.mailbox_mut(mailbox)?;
        let c = contact_mut(m, folder, id)?;
        check_if_match(c, if_match)?;
        for (k, v) in props {
            let ty = contact::property_type(&k).unwrap_or(PropertyType::Text);
            if is_empty(ty, &v) {
                c.properties.remove(&k);
            } else {
                c.properties.insert(k, v);
            }
        }
        c.extended.extend(extended);
        c.change_key = change_key;
        c.modified = now();
        c.seq = seq;
        Ok(render_contact(c, &Shape::default()))
    }

    /// `DELETE .../contacts/{id}`, guarded by `If-Match` when given.
    pub fn delete_contact(
        &mut self,
        mailbox: &str,
        folder: Option<&str>,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), GraphError> {
        let seq = self.next_seq();
        let m = self.mailbox_mut(mailbox)?;
        let c = contact_mut(m, folder, id)?;
        check_if_match(c, if_match)?;
        let folder_id = c.folder_id.clone();
        if let Some(f) = m.folders.get_mut(&folder_id) {
            f.contacts.remove(id);
            f.tombstones.insert(id.to_owned(), seq);
        }
        Ok(())
    }

    /// One page of `GET .../contactFolders/{f}/contacts/delta`.
    pub fn delta(
        &self,
        mailbox: &str,
        folder: &str,
        delta_token: Option<&str>,
        skip_token: Option<&str>,
        page_size: usize,
        shape: &Shape,
    ) -> Result<DeltaPage, GraphError> {
        let gone = || {
            GraphError::new(
                410,
                "SyncStateNotFound",
                "The sync state generation is older than the minimum retained; resynchronize from the start.".into(),
            )
        };
        let position = match (skip_token, delta_token) {
            (Some(t), _) | (None, Some(t)) => {
                let mut p = DeltaPosition::parse(t).ok_or_else(gone)?;
                if p.epoch != self.delta_epoch || p.from > self.seq {
                    return Err(gone());
                }
                if t.starts_with('d') {
                    p.upto = self.seq;
                }
                p
            }
            (None, None) => DeltaPosition { epoch: self.delta_epoch, from: 0, upto: self.seq, offset: 0 },
        };
        let m = self.mailbox(mailbox)?;
        let f = Self::folder(m, folder)?;
        // The round's changes in a stable order: (sequence number, id).
        let mut changes: Vec<(u64, &str, Option<&Contact>)> = f
            .contacts
            .values()
            .filter(|c| c.seq > position.from && c.seq <= position.upto)
            .map(|c| (c.seq, c.id.as_str(), Some(c)))
            .collect();
        if position.from > 0 {
            changes.extend(
                f.tombstones
                    .iter()
                    .filter(|(_, s)| **s > position.from && **s <= position.upto)
                    .map(|(id, s)| (*s, id.as_str(), None)),
            );
        }
        changes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let page: Vec<Value> = changes
            .iter()
            .skip(position.offset)
            .take(page_size.max(1))
            .map(|(_, id, c)| match c {
                Some(c) => render_contact(c, shape),
                None => json!({"@odata.type": "#microsoft.graph.contact", "id": id, "@removed": {"reason": "deleted"}}),
            })
            .collect();
        let delivered = position.offset + page.len();
        if delivered < changes.len() {
            Ok(DeltaPage {
                value: page,
                skip_token: Some(DeltaPosition { offset: delivered, ..position }.skip_token()),
                delta_token: None,
            })
        } else {
            Ok(DeltaPage { value: page, skip_token: None, delta_token: Some(position.delta_token()) })
        }
    }

    /// Test knob: every delta token issued so far is refused from now on (`410 Gone`).
    pub fn expire_delta_tokens(&mut self) {
        self.delta_epoch += 1;
        self.calendars.expire_delta_tokens();
    }

    /// Test access: a contact's stored properties by mailbox, folder name and display name.
    pub fn contacts_in(&self, mailbox: &str, folder_name: &str) -> Vec<Contact> {
        let Ok(m) = self.mailbox(mailbox) else { return Vec::new() };
        m.folders
            .values()
            .filter(|f| f.display_name.eq_ignore_ascii_case(folder_name))
            .flat_map(|f| f.contacts.values().cloned())
            .collect()
    }

    /// Test access: the contacts of a folder by id.
    pub fn folder_contacts(&self, mailbox: &str, folder_id: &str) -> Vec<Contact> {
        let Ok(m) = self.mailbox(mailbox) else { return Vec::new() };
        m.folders.get(folder_id).map(|f| f.contacts.values().cloned().collect()).unwrap_or_default()
    }

    /// Test access: edits a contact as a user would (a phone, Outlook), bumping its version.
    pub fn edit_contact(&mut self, mailbox: &str, id: &str, property: &str, value: Value) -> Result<(), GraphError> {
        self.update_contact(mailbox, None, id, None, &json!({ property: value })).map(|_| ())
    }
}

fn contact_mut<'a>(m: &'a mut Mailbox, folder: Option<&str>, id: &str) -> Result<&'a mut Contact, GraphError> {
    let missing =
        || GraphError::not_found("ErrorItemNotFound", "The specified object was not found in the store.".into());
    match folder {
        Some(f) => Store::folder_mut(m, f)?.contacts.get_mut(id).ok_or_else(missing),
        None => m.folders.values_mut().find_map(|f| f.contacts.get_mut(id)).ok_or_else(missing),
    }
}

fn check_if_match(c: &Contact, if_match: Option<&str>) -> Result<(), GraphError> {
    match if_match {
        Some(tag) if tag.trim() != "*" && tag.trim() != c.etag() => Err(GraphError::new(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let mut s = Store::default();
        s.add_mailbox("alice@contoso.test", "Alice", false);
        s
    }

    #[test]
    fn delta_reports_each_change_once_across_pages_and_rounds() {
        let mut s = store();
        let folder = s.folder_id("alice@contoso.test", None).unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let c = s.create_contact("alice@contoso.test", None, &json!({"givenName": format!("G{i}")})).unwrap();
            ids.push(c["id"].as_str().unwrap().to_owned());
        }
        let shape = Shape::default();
        let mut seen = Vec::new();
        let mut skip: Option<String> = None;
        let token = loop {
            let p = s.delta("alice@contoso.test", &folder, None, skip.as_deref(), 2, &shape).unwrap();
            seen.extend(p.value.iter().map(|v| v["id"].as_str().unwrap().to_owned()));
            match p.skip_token {
                Some(t) => skip = Some(t),
                None => break p.delta_token.unwrap(),
            }
        };
        assert_eq!(seen, ids);
        s.delete_contact("alice@contoso.test", None, &ids[0], None).unwrap();
        let p = s.delta("alice@contoso.test", &folder, Some(&token), None, 10, &shape).unwrap();
        assert_eq!(p.value.len(), 1);
        assert_eq!(p.value[0]["@removed"]["reason"], "deleted");
        s.expire_delta_tokens();
        let err = s.delta("alice@contoso.test", &folder, Some(&token), None, 10, &shape).unwrap_err();
        assert_eq!(err.status, 410);
    }

    #[test]
    fn if_match_guards_writes() {
        let mut s = store();
        let c = s.create_contact("alice@contoso.test", None, &json!({"givenName": "A"})).unwrap();
        let id = c["id"].as_str().unwrap();
        let tag = c["@odata.etag"].as_str().unwrap();
        s.update_contact("alice@contoso.test", None, id, Some(tag), &json!({"surname": "B"})).unwrap();
        let stale = s.update_contact("alice@contoso.test", None, id, Some(tag), &json!({"surname": "C"})).unwrap_err();
        assert_eq!(stale.status, 412);
        let stale = s.delete_contact("alice@contoso.test", None, id, Some(tag)).unwrap_err();
        assert_eq!(stale.status, 412);
        let unknown = s.create_contact("alice@contoso.test", None, &json!({"nick": "x"})).unwrap_err();
        assert_eq!(unknown.status, 400);
    }
}
