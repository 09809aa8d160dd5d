//! Items as EWS carries them: a read view over a response element, and a write model that is emitted
//! in schema order.
//!
//! EWS item types are `xs:sequence`s that extend `t:ItemType`; a create or an update must list fields in
//! exactly that order or Exchange rejects the request. [`ItemDraft`] holds fields in any order and sorts
//! them with the order tables below (taken from the schema's sequences) when written.

use chrono::{DateTime, Utc};

use crate::ids::{FolderId, ItemId};
use crate::property::{ExtendedFieldUri, PropertyPath};
use crate::version::ExchangeVersion;
use crate::xml::{Element, XmlWriter};

/// The EWS element type of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemType {
    /// `t:Item`: a generic item.
    Item,
    /// `t:Message`: mail, and the type Exchange uses for sticky notes (`IPM.StickyNote`).
    Message,
    /// `t:CalendarItem`: appointments and meetings.
    CalendarItem,
    /// `t:Contact`.
    Contact,
    /// `t:DistributionList`: a personal contact group.
    DistributionList,
    /// `t:Task`.
    Task,
    /// `t:PostItem`: what public mail folders hold.
    PostItem,
}

impl ItemType {
    /// The element name without prefix.
    pub fn element_name(self) -> &'static str {
        match self {
            Self::Item => "Item",
            Self::Message => "Message",
            Self::CalendarItem => "CalendarItem",
            Self::Contact => "Contact",
            Self::DistributionList => "DistributionList",
            Self::Task => "Task",
            Self::PostItem => "PostItem",
        }
    }

    /// The type of an element name, for any of the item elements a response may hold.
    pub fn from_element_name(name: &str) -> Option<Self> {
        Some(match name {
            "Item" => Self::Item,
            "Message"
            | "MeetingMessage"
            | "MeetingRequest"
            | "MeetingResponse"
            | "MeetingCancellation"
            | "SharingMessage" => Self::Message,
            "CalendarItem" => Self::CalendarItem,
            "Contact" => Self::Contact,
            "DistributionList" => Self::DistributionList,
            "Task" => Self::Task,
            "PostItem" => Self::PostItem,
            _ => return None,
        })
    }

    fn uri_prefix(self) -> &'static str {
        match self {
            Self::Item => "item",
            Self::Message => "message",
            Self::CalendarItem => "calendar",
            Self::Contact => "contacts",
            Self::DistributionList => "distributionlist",
            Self::Task => "task",
            Self::PostItem => "postitem",
        }
    }

    fn own_fields(self) -> &'static [&'static str] {
        match self {
            Self::Contact => CONTACT_FIELDS,
            Self::CalendarItem => CALENDAR_FIELDS,
            Self::Task => TASK_FIELDS,
            Self::Message => MESSAGE_FIELDS,
            Self::DistributionList => &["DisplayName", "FileAs", "ContactSource", "Members"],
            Self::PostItem => &[
                "ConversationIndex",
                "ConversationTopic",
                "From",
                "InternetMessageId",
                "IsRead",
                "PostedTime",
                "References",
                "Sender",
            ],
            Self::Item => &[],
        }
    }

    /// The schema position of a field (base item fields first), or `None` if the type has no such field.
    pub fn field_position(self, name: &str) -> Option<usize> {
        if let Some(i) = ITEM_FIELDS.iter().position(|f| *f == name) {
            return Some(i);
        }
        self.own_fields().iter().position(|f| *f == name).map(|i| ITEM_FIELDS.len() + i)
    }

    /// The `FieldURI` of a field of this type (`item:Subject`, `contacts:GivenName`, ...).
    pub fn field_uri(self, name: &str) -> String {
        if ITEM_FIELDS.contains(&name) { format!("item:{name}") } else { format!("{}:{name}", self.uri_prefix()) }
    }
}

/// `t:ItemType`'s sequence, the head of every item type.
const ITEM_FIELDS: &[&str] = &[
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "DisplayBcc",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "Flag",
];

const CONTACT_FIELDS: &[&str] = &[
    "FileAs",
    "FileAsMapping",
    "DisplayName",
    "GivenName",
    "Initials",
    "MiddleName",
    "Nickname",
    "CompleteName",
    "CompanyName",
    "EmailAddresses",
    "AbchEmailAddresses",
    "PhysicalAddresses",
    "PhoneNumbers",
    "AssistantName",
    "Birthday",
    "BusinessHomePage",
    "Children",
    "Companies",
    "ContactSource",
    "Department",
    "Generation",
    "ImAddresses",
    "JobTitle",
    "Manager",
    "Mileage",
    "OfficeLocation",
    "PostalAddressIndex",
    "Profession",
    "SpouseName",
    "Surname",
    "WeddingAnniversary",
    "HasPicture",
    "PhoneticFullName",
    "PhoneticFirstName",
    "PhoneticLastName",
    "Alias",
    "Notes",
    "Photo",
    "UserSMIMECertificate",
    "MSExchangeCertificate",
    "DirectoryId",
    "ManagerMailbox",
    "DirectReports",
];

const CALENDAR_FIELDS: &[&str] = &[
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "InboxReminders",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
    "EnhancedLocation",
    "StartWallClock",
    "EndWallClock",
    "StartTimeZoneId",
    "EndTimeZoneId",
];

const TASK_FIELDS: &[&str] = &[
    "ActualWork",
    "AssignedTime",
    "BillingInformation",
    "ChangeCount",
    "Companies",
    "CompleteDate",
    "Contacts",
    "DelegationState",
    "Delegator",
    "DueDate",
    "IsAssignmentEditable",
    "IsComplete",
    "IsRecurring",
    "IsTeamTask",
    "Mileage",
    "Owner",
    "PercentComplete",
    "Recurrence",
    "StartDate",
    "Status",
    "StatusDescription",
    "TotalWork",
];

const MESSAGE_FIELDS: &[&str] = &[
    "Sender",
    "ToRecipients",
    "CcRecipients",
    "BccRecipients",
    "IsReadReceiptRequested",
    "IsDeliveryReceiptRequested",
    "ConversationIndex",
    "ConversationTopic",
    "From",
    "InternetMessageId",
    "IsRead",
    "IsResponseRequested",
    "References",
    "ReplyTo",
    "ReceivedBy",
    "ReceivedRepresenting",
];

/// The parts of a `t:PhysicalAddresses` entry, in schema order.
pub const ADDRESS_PARTS: [&str; 5] = ["Street", "City", "State", "CountryOrRegion", "PostalCode"];

/// A value written into an item.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// A text element.
    Text(String),
    /// A boolean element.
    Bool(bool),
    /// An integer element.
    Int(i64),
    /// A date-time element (written as UTC).
    DateTime(DateTime<Utc>),
    /// `t:Body` with its type (`Text` or `HTML`).
    Body {
        /// `Text` or `HTML`.
        body_type: &'static str,
        /// The body.
        text: String,
    },
    /// A list of `t:String` (e.g. `Categories`, `Children`, `Companies`).
    Strings(Vec<String>),
    /// A time zone by its Windows id (`<t:StartTimeZone Id="W. Europe Standard Time"/>`); the server
    /// fills in the definition. Needs Exchange 2010 or later.
    TimeZone(String),
    /// Already-serialized children in the `t:` namespace, for structured fields (`Recurrence`,
    /// `CompleteName`). The caller is responsible for their schema order.
    Xml(String),
    /// The Exchange 2007 form of a time zone (`t:MeetingTimeZone`), by Windows id: the name
    /// with the bias and daylight-saving transitions of the zone (see [`ItemDraft::for_version`]).
    MeetingTimeZone(String),
}

/// One field of an item to write.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Field {
    /// A simple field by element name (`Subject`, `GivenName`, ...).
    Simple {
        /// The element name.
        name: String,
        /// Its value.
        value: FieldValue,
    },
    /// A dictionary entry: `EmailAddresses`, `PhoneNumbers` or `ImAddresses` with a key.
    Entry {
        /// The dictionary element (`EmailAddresses`).
        dictionary: String,
        /// The key (`EmailAddress1`, `MobilePhone`, ...).
        key: String,
        /// The value.
        value: String,
    },
    /// One part (`Street`, `City`, ...) of a physical address (`Business`, `Home`, `Other`).
    Address {
        /// The address key.
        key: String,
        /// The part.
        part: String,
        /// The value.
        value: String,
    },
    /// A MAPI extended property.
    Extended {
        /// Which property.
        uri: ExtendedFieldUri,
        /// Its value in EWS text form.
        value: String,
    },
}

impl Field {
    /// A text field.
    pub fn text(name: &str, value: impl Into<String>) -> Self {
        Self::Simple { name: name.to_owned(), value: FieldValue::Text(value.into()) }
    }

    /// The top element this field is written in.
    fn element_name(&self) -> &str {
        match self {
            Self::Simple { name, .. } => name,
            Self::Entry { dictionary, .. } => dictionary,
            Self::Address { .. } => "PhysicalAddresses",
            Self::Extended { .. } => "ExtendedProperty",
        }
    }

    /// The path that names this field in an update or a delete.
    pub fn path(&self, item_type: ItemType) -> PropertyPath {
        match self {
            Self::Simple { name, .. } => PropertyPath::Field(item_type.field_uri(name)),
            Self::Entry { dictionary, key, .. } => {
                PropertyPath::Indexed { uri: format!("contacts:{}", indexed_uri_name(dictionary)), index: key.clone() }
            }
            Self::Address { key, part, .. } => {
                PropertyPath::Indexed { uri: format!("contacts:PhysicalAddress:{part}"), index: key.clone() }
            }
            Self::Extended { uri, .. } => PropertyPath::Extended(uri.clone()),
        }
    }
}

/// The singular `IndexedFieldURI` name of a dictionary (`EmailAddresses` -> `EmailAddress`).
fn indexed_uri_name(dictionary: &str) -> &str {
    match dictionary {
        "EmailAddresses" => "EmailAddress",
        "PhoneNumbers" => "PhoneNumber",
        "ImAddresses" => "ImAddress",
        other => other,
    }
}

fn write_value(w: &mut XmlWriter, name: &str, value: &FieldValue) {
    let tag = format!("t:{name}");
    match value {
        FieldValue::Text(t) => {
            w.leaf(&tag, t);
        }
        FieldValue::Bool(b) => {
            w.leaf(&tag, if *b { "true" } else { "false" });
        }
        FieldValue::Int(i) => {
            w.leaf(&tag, &i.to_string());
        }
        FieldValue::DateTime(d) => {
            w.leaf(&tag, &d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        FieldValue::Body { body_type, text } => {
            w.leaf_with(&tag, &[("BodyType", body_type)], text);
        }
        FieldValue::Strings(list) => {
            w.open(&tag, &[]);
            for s in list {
                w.leaf("t:String", s);
            }
            w.close(&tag);
        }
        FieldValue::TimeZone(id) => {
            w.empty(&tag, &[("Id", id)]);
        }
        FieldValue::Xml(xml) => {
            w.open(&tag, &[]).raw(xml).close(&tag);
        }
        FieldValue::MeetingTimeZone(id) => {
            let children = crate::time_zone::meeting_time_zone_children(id);
            if children.is_empty() {
                w.empty(&tag, &[("TimeZoneName", id)]);
            } else {
                w.open(&tag, &[("TimeZoneName", id)]).raw(&children).close(&tag);
            }
        }
    }
}

/// Writes a group of fields that share one top element (several dictionary entries, several address
/// parts, or one simple field) in schema order.
fn write_group(w: &mut XmlWriter, fields: &[&Field]) {
    let Some(first) = fields.first() else { return };
    match first {
        Field::Simple { name, value } => write_value(w, name, value),
        Field::Entry { dictionary, .. } => {
            let tag = format!("t:{dictionary}");
            w.open(&tag, &[]);
            for f in fields {
                if let Field::Entry { key, value, .. } = f {
                    w.leaf_with("t:Entry", &[("Key", key)], value);
                }
            }
            w.close(&tag);
        }
        Field::Address { .. } => {
            w.open("t:PhysicalAddresses", &[]);
            let mut keys: Vec<&str> = Vec::new();
            for f in fields {
                if let Field::Address { key, .. } = f
                    && !keys.contains(&key.as_str())
                {
                    keys.push(key);
                }
            }
            for key in keys {
                w.open("t:Entry", &[("Key", key)]);
                for part in ADDRESS_PARTS {
                    for f in fields {
                        if let Field::Address { key: k, part: p, value } = f
                            && k == key
                            && p == part
                        {
                            w.leaf(&format!("t:{part}"), value);
                        }
                    }
                }
                w.close("t:Entry");
            }
            w.close("t:PhysicalAddresses");
        }
        Field::Extended { .. } => {
            for f in fields {
                if let Field::Extended { uri, value } = f {
                    w.open("t:ExtendedProperty", &[]);
                    uri.write(w);
                    w.leaf("t:Value", value);
                    w.close("t:ExtendedProperty");
                }
            }
        }
    }
}

/// Writes `fields` inside an item element of type `item_type`, grouped and in schema order. Fields
/// the type does not have are skipped (and logged), as Exchange would reject them.
pub(crate) fn write_item_element(w: &mut XmlWriter, item_type: ItemType, fields: &[Field]) {
    let mut ordered: Vec<(usize, &Field)> = Vec::new();
    for f in fields {
        match item_type.field_position(f.element_name()) {
            Some(pos) => ordered.push((pos, f)),
            None => tracing::warn!(
                field = f.element_name(),
                item_type = item_type.element_name(),
                "field not in schema; skipped"
            ),
        }
    }
    ordered.sort_by_key(|(pos, _)| *pos);
    let tag = format!("t:{}", item_type.element_name());
    w.open(&tag, &[]);
    let mut i = 0;
    while i < ordered.len() {
        let pos = ordered[i].0;
        let group: Vec<&Field> = ordered[i..].iter().take_while(|(p, _)| *p == pos).map(|(_, f)| *f).collect();
        i += group.len();
        write_group(w, &group);
    }
    w.close(&tag);
}

/// An item to create: its type and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemDraft {
    /// The element type.
    pub item_type: ItemType,
    /// The fields, in any order.
    pub fields: Vec<Field>,
}

/// How one field of an existing item changes.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldUpdate {
    /// Set (replace) the field.
    Set(Field),
    /// Remove the property.
    Delete(PropertyPath),
}

/// Fields that exist only from Exchange 2010 on: calendar time zones (the 2007 schema has
/// `MeetingTimeZone`) and distribution list members.
const EXCHANGE_2010_FIELDS: &[&str] = &["StartTimeZone", "EndTimeZone", "Members"];

/// Whether a schema version knows an element.
fn known_in(version: ExchangeVersion, name: &str) -> bool {
    version >= ExchangeVersion::Exchange2010 || !EXCHANGE_2010_FIELDS.contains(&name)
}

/// A calendar's start time zone in the form of an older schema: before Exchange 2010 it is
/// written as `MeetingTimeZone` (the zone of the whole meeting; the end time zone has no
/// equivalent there).
fn in_older_schema(version: ExchangeVersion, field: &Field) -> Option<Field> {
    match field {
        Field::Simple { name, value: FieldValue::TimeZone(id) }
            if name == "StartTimeZone" && version < ExchangeVersion::Exchange2010 =>
        {
            Some(Field::Simple { name: "MeetingTimeZone".into(), value: FieldValue::MeetingTimeZone(id.clone()) })
        }
        _ => None,
    }
}

impl ItemDraft {
    /// This draft without the fields `version`'s schema does not know (they would fail
    /// validation); before Exchange 2010 the start time zone goes as `MeetingTimeZone`.
    pub fn for_version(&self, version: ExchangeVersion) -> Self {
        let fields = self
            .fields
            .iter()
            .filter_map(|f| {
                in_older_schema(version, f).or_else(|| known_in(version, f.element_name()).then(|| f.clone()))
            })
            .collect();
        Self { item_type: self.item_type, fields }
    }
}

/// The changes to one item, guarded by the change key in `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChange {
    /// The item and the change key it must still have.
    pub id: ItemId,
    /// The element type of the item.
    pub item_type: ItemType,
    /// The field changes.
    pub updates: Vec<FieldUpdate>,
}

impl ItemChange {
    /// This change without the updates `version`'s schema does not know.
    pub fn for_version(&self, version: ExchangeVersion) -> Self {
        let updates = self
            .updates
            .iter()
            .filter_map(|u| match u {
                FieldUpdate::Set(f) => match in_older_schema(version, f) {
                    Some(older) => Some(FieldUpdate::Set(older)),
                    None => known_in(version, f.element_name()).then(|| u.clone()),
                },
                FieldUpdate::Delete(PropertyPath::Field(uri))
                    if uri == "calendar:StartTimeZone" && version < ExchangeVersion::Exchange2010 =>
                {
                    Some(FieldUpdate::Delete(PropertyPath::Field("calendar:MeetingTimeZone".into())))
                }
                FieldUpdate::Delete(PropertyPath::Field(uri)) => {
                    known_in(version, uri.rsplit(':').next().unwrap_or(uri)).then(|| u.clone())
                }
                FieldUpdate::Delete(_) => Some(u.clone()),
            })
            .collect();
        Self { id: self.id.clone(), item_type: self.item_type, updates }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        w.open("t:ItemChange", &[]);
        self.id.write(w, "t:ItemId");
        w.open("t:Updates", &[]);
        for u in &self.updates {
            match u {
                FieldUpdate::Set(field) => {
                    w.open("t:SetItemField", &[]);
                    field.path(self.item_type).write(w);
                    write_item_element(w, self.item_type, std::slice::from_ref(field));
                    w.close("t:SetItemField");
                }
                FieldUpdate::Delete(path) => {
                    w.open("t:DeleteItemField", &[]);
                    path.write(w);
                    w.close("t:DeleteItemField");
                }
            }
        }
        w.close("t:Updates").close("t:ItemChange");
    }
}

/// An item read from a response: typed accessors over the element the server sent.
///
/// Keeping the element (rather than a fixed struct) means fields a newer server adds are not lost
/// and the mapping layer can read whatever it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsItem {
    /// The element type.
    pub item_type: ItemType,
    /// The element as received.
    pub element: Element,
}

impl EwsItem {
    /// Wraps an item element; `None` if the element is not an item.
    pub fn from_element(element: Element) -> Option<Self> {
        let item_type = ItemType::from_element_name(&element.name)?;
        Some(Self { item_type, element })
    }

    /// The id and change key.
    pub fn id(&self) -> Option<ItemId> {
        self.element.child("ItemId").and_then(ItemId::from_element)
    }

    /// The id and change key, moved out of the item (for a caller that needs nothing else of it).
    pub fn into_id(mut self) -> Option<ItemId> {
        self.element.take_child("ItemId").and_then(ItemId::take_from_element)
    }

    /// The parent folder.
    pub fn parent_folder_id(&self) -> Option<FolderId> {
        self.element.child("ParentFolderId").and_then(FolderId::from_element)
    }

    /// The text of a simple field (trimmed), e.g. `Subject`, `GivenName`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.element.child_text(name)
    }

    /// The raw (untrimmed) text of a field: bodies keep their whitespace.
    pub fn raw_text(&self, name: &str) -> Option<&str> {
        self.element.child(name).map(|c| c.text.as_str())
    }

    /// `ItemClass`, e.g. `IPM.Contact`, `IPM.StickyNote`.
    pub fn item_class(&self) -> Option<&str> {
        self.text("ItemClass")
    }

    /// A date-time field.
    pub fn date_time(&self, name: &str) -> Option<DateTime<Utc>> {
        let t = self.text(name)?;
        DateTime::parse_from_rfc3339(t).ok().map(|d| d.with_timezone(&Utc))
    }

    /// A boolean field.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.text(name)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// A list of `t:String` children (`Categories`, `Children`, `Companies`).
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.element
            .child(name)
            .map(|c| c.children_named("String").map(|s| s.text.clone()).collect())
            .unwrap_or_default()
    }

    /// The body and its type (`Text` / `HTML`).
    pub fn body(&self) -> Option<(&str, &str)> {
        let b = self.element.child("Body")?;
        Some((b.attr("BodyType").unwrap_or("Text"), b.text.as_str()))
    }

    /// The entries of a dictionary field (`EmailAddresses`, `PhoneNumbers`, `ImAddresses`) as
    /// (key, value).
    pub fn entries(&self, dictionary: &str) -> Vec<(String, String)> {
        self.element
            .child(dictionary)
            .map(|d| {
                d.children_named("Entry")
                    .filter_map(|e| Some((e.attr("Key")?.to_owned(), e.text.trim().to_owned())))
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The physical addresses as (key, part, value).
    pub fn addresses(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Some(d) = self.element.child("PhysicalAddresses") {
            for e in d.children_named("Entry") {
                let Some(key) = e.attr("Key") else { continue };
                for part in &e.children {
                    let v = part.text.trim();
                    if !v.is_empty() {
                        out.push((key.to_owned(), part.name.to_string(), v.to_owned()));
                    }
                }
            }
        }
        out
    }

    /// The value of an extended property, if the item carries it.
    pub fn extended(&self, uri: &ExtendedFieldUri) -> Option<&str> {
        self.element.children_named("ExtendedProperty").find_map(|p| {
            let u = ExtendedFieldUri::from_element(p.child("ExtendedFieldURI")?)?;
            if u.same_property(uri) { p.child("Value").map(|v| v.text.as_str()) } else { None }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_in_schema_order_and_grouped() {
        let fields = vec![
            Field::text("Surname", "Doe"),
            Field::Address { key: "Business".into(), part: "PostalCode".into(), value: "1000".into() },
            Field::Entry { dictionary: "EmailAddresses".into(), key: "EmailAddress2".into(), value: "b@x".into() },
            Field::text("GivenName", "Jane"),
            Field::Address { key: "Business".into(), part: "City".into(), value: "Town".into() },
            Field::Entry { dictionary: "EmailAddresses".into(), key: "EmailAddress1".into(), value: "a@x".into() },
            Field::text("Subject", "Jane Doe"),
            Field::text("NoSuchField", "x"),
        ];
        let mut w = XmlWriter::new();
        write_item_element(&mut w, ItemType::Contact, &fields);
        let xml = w.finish();
        let order = ["t:Subject", "t:GivenName", "t:EmailAddresses", "t:PhysicalAddresses", "t:Surname"];
        let positions: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{xml}");
        assert!(xml.find("<t:City>").unwrap() < xml.find("<t:PostalCode>").unwrap());
        assert_eq!(xml.matches("<t:EmailAddresses>").count(), 1);
        assert!(!xml.contains("NoSuchField"));
    }

    #[test]
    fn update_paths() {
        let e = Field::Entry { dictionary: "EmailAddresses".into(), key: "EmailAddress1".into(), value: "a".into() };
        assert_eq!(
            e.path(ItemType::Contact),
            PropertyPath::Indexed { uri: "contacts:EmailAddress".into(), index: "EmailAddress1".into() }
        );
        let p = Field::Entry { dictionary: "PhoneNumbers".into(), key: "MobilePhone".into(), value: "1".into() };
        assert_eq!(
            p.path(ItemType::Contact),
            PropertyPath::Indexed { uri: "contacts:PhoneNumber".into(), index: "MobilePhone".into() }
        );
        let i = Field::Entry { dictionary: "ImAddresses".into(), key: "ImAddress1".into(), value: "1".into() };
        assert_eq!(
            i.path(ItemType::Contact),
            PropertyPath::Indexed { uri: "contacts:ImAddress".into(), index: "ImAddress1".into() }
        );
        assert_eq!(Field::text("Subject", "x").path(ItemType::Task), PropertyPath::Field("item:Subject".into()));
        assert_eq!(
            Field::text("Location", "x").path(ItemType::CalendarItem),
            PropertyPath::Field("calendar:Location".into())
        );
    }

    #[test]
    fn taking_the_id_gives_what_reading_it_gives() {
        let xml =
            r#"<t:Contact xmlns:t="t"><t:ItemId Id="AAMk=" ChangeKey="EQA"/><t:Subject>s</t:Subject></t:Contact>"#;
        let item = EwsItem::from_element(crate::xml::parse(xml.as_bytes(), Default::default()).unwrap()).unwrap();
        assert_eq!(item.id(), Some(ItemId::with_change_key("AAMk=", "EQA")));
        assert_eq!(item.clone().into_id(), item.id());
        let bare = r#"<t:Contact xmlns:t="t"><t:ItemId Id="AAMk="/></t:Contact>"#;
        let item = EwsItem::from_element(crate::xml::parse(bare.as_bytes(), Default::default()).unwrap()).unwrap();
        assert_eq!(item.into_id(), Some(ItemId::new("AAMk=")));
    }
}
