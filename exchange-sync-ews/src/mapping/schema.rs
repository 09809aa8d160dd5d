//! The mapping tables: which EWS property carries which canonical field, per kind.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use exchange_sync_core::field;
use exchange_sync_core::item::{FieldValue as CoreValue, ItemKind};

use super::{members, recurrence};
use crate::item::{EwsItem, Field, FieldValue, ItemType};
use crate::property::{ExtendedFieldUri, PropertyPath};

/// Where a canonical field lives on an EWS item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EwsProperty {
    /// A simple element (`GivenName`, `Start`, ...).
    Simple(&'static str),
    /// A dictionary entry (`EmailAddresses` / `EmailAddress1`).
    Entry {
        /// The dictionary element.
        dictionary: &'static str,
        /// The key.
        key: &'static str,
    },
    /// One part of a physical address (`Business` / `City`).
    Address {
        /// The address key.
        key: &'static str,
        /// The part element.
        part: &'static str,
    },
    /// A MAPI property without a schema element.
    Extended(ExtendedFieldUri),
}

/// How a value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Text as is.
    Text,
    /// A UTC date-time.
    DateTime,
    /// A boolean (never deleted: the server always has one).
    Bool,
    /// An integer (EWS may send it as a decimal: `50.0`).
    Integer,
    /// A list of `t:String`.
    TextList,
    /// An enumeration: (EWS value, canonical value) pairs.
    Enum(&'static [(&'static str, &'static str)]),
    /// A recurrence pattern and range, as canonical text.
    Recurrence,
    /// The members of a distribution list, as canonical text entries (see `members`).
    Members,
    /// A time zone (`t:TimeZoneDefinitionType`) by its Windows id, e.g. `W. Europe Standard Time`.
    TimeZone,
}

/// One canonical field and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The canonical field name.
    pub canonical: String,
    /// The EWS property.
    pub property: EwsProperty,
    /// The value conversion.
    pub value: ValueKind,
}

const SENSITIVITY: &[(&str, &str)] =
    &[("Normal", "normal"), ("Personal", "personal"), ("Private", "private"), ("Confidential", "confidential")];
const IMPORTANCE: &[(&str, &str)] = &[("Low", "low"), ("Normal", "normal"), ("High", "high")];
const FREE_BUSY: &[(&str, &str)] = &[
    ("Free", "free"),
    ("Tentative", "tentative"),
    ("Busy", "busy"),
    ("OOF", "oof"),
    ("WorkingElsewhere", "working_elsewhere"),
    ("NoData", "no_data"),
];
const TASK_STATUS: &[(&str, &str)] = &[
    ("NotStarted", "not_started"),
    ("InProgress", "in_progress"),
    ("Completed", "completed"),
    ("WaitingOnOthers", "waiting_on_others"),
    ("Deferred", "deferred"),
];

/// PidTagDisplayNamePrefix: the title before a contact's name (no schema element writes it).
fn name_title_uri() -> ExtendedFieldUri {
    ExtendedFieldUri::tag(0x3A45, "String")
}

/// The canonical field of a distribution list's members: a list of `Name <ROUTING:address>`.
pub const MEMBERS: &str = "members";

/// The canonical field of the end's time zone (the start's is [`field::START_TIME_ZONE`]).
pub const END_TIME_ZONE: &str = "end_time_zone";

fn simple(canonical: &str, element: &'static str, value: ValueKind) -> Mapping {
    Mapping { canonical: canonical.to_owned(), property: EwsProperty::Simple(element), value }
}

fn common(out: &mut Vec<Mapping>, with_subject: bool) {
    if with_subject {
        out.push(simple(field::SUBJECT, "Subject", ValueKind::Text));
    }
    out.push(simple(field::SENSITIVITY, "Sensitivity", ValueKind::Enum(SENSITIVITY)));
    out.push(simple(field::IMPORTANCE, "Importance", ValueKind::Enum(IMPORTANCE)));
}

/// The mapping table of a kind (built once per kind).
pub fn mappings(kind: &ItemKind) -> &'static [Mapping] {
    static CONTACT: OnceLock<Vec<Mapping>> = OnceLock::new();
    static CALENDAR: OnceLock<Vec<Mapping>> = OnceLock::new();
    static TASK: OnceLock<Vec<Mapping>> = OnceLock::new();
    static NOTE: OnceLock<Vec<Mapping>> = OnceLock::new();
    static LIST: OnceLock<Vec<Mapping>> = OnceLock::new();
    static OTHER: OnceLock<Vec<Mapping>> = OnceLock::new();
    let cell = match kind {
        ItemKind::Contact => &CONTACT,
        ItemKind::CalendarItem => &CALENDAR,
        ItemKind::Task => &TASK,
        ItemKind::Note => &NOTE,
        ItemKind::DistributionList => &LIST,
        ItemKind::Other(_) => &OTHER,
    };
    cell.get_or_init(|| build(kind))
}

fn build(kind: &ItemKind) -> Vec<Mapping> {
    let mut m = Vec::new();
    match kind {
        ItemKind::Contact => {
            // The subject of a contact is derived by the server from its names: not content.
            common(&mut m, false);
            for (c, e) in [
                (field::FILE_AS, "FileAs"),
                (field::DISPLAY_NAME, "DisplayName"),
                (field::GIVEN_NAME, "GivenName"),
                (field::INITIALS, "Initials"),
                (field::MIDDLE_NAME, "MiddleName"),
                (field::NICKNAME, "Nickname"),
                (field::COMPANY, "CompanyName"),
                (field::ASSISTANT_NAME, "AssistantName"),
                (field::BUSINESS_HOME_PAGE, "BusinessHomePage"),
                (field::DEPARTMENT, "Department"),
                (field::NAME_SUFFIX, "Generation"),
                (field::JOB_TITLE, "JobTitle"),
                (field::MANAGER, "Manager"),
                (field::OFFICE, "OfficeLocation"),
                (field::PROFESSION, "Profession"),
                (field::SPOUSE_NAME, "SpouseName"),
                (field::SURNAME, "Surname"),
            ] {
                m.push(simple(c, e, ValueKind::Text));
            }
            m.push(simple(field::BIRTHDAY, "Birthday", ValueKind::DateTime));
            m.push(simple(field::ANNIVERSARY, "WeddingAnniversary", ValueKind::DateTime));
            m.push(simple(field::CHILDREN, "Children", ValueKind::TextList));
            m.push(simple(field::COMPANIES, "Companies", ValueKind::TextList));
            m.push(Mapping {
                canonical: field::NAME_TITLE.to_owned(),
                property: EwsProperty::Extended(name_title_uri()),
                value: ValueKind::Text,
            });
            for (slot, key) in [(1u8, "EmailAddress1"), (2, "EmailAddress2"), (3, "EmailAddress3")] {
                m.push(Mapping {
                    canonical: field::email(slot),
                    property: EwsProperty::Entry { dictionary: "EmailAddresses", key },
                    value: ValueKind::Text,
                });
            }
            for (slot, key) in [(1u8, "ImAddress1"), (2, "ImAddress2"), (3, "ImAddress3")] {
                m.push(Mapping {
                    canonical: field::im(slot),
                    property: EwsProperty::Entry { dictionary: "ImAddresses", key },
                    value: ValueKind::Text,
                });
            }
            for (key, suffix) in field::PHONE_KEYS {
                m.push(Mapping {
                    canonical: field::phone(suffix),
                    property: EwsProperty::Entry { dictionary: "PhoneNumbers", key },
                    value: ValueKind::Text,
                });
            }
            for (key, kind) in field::ADDRESS_KINDS {
                for (part, name) in field::ADDRESS_PARTS {
                    m.push(Mapping {
                        canonical: field::address(kind, name),
                        property: EwsProperty::Address { key, part },
                        value: ValueKind::Text,
                    });
                }
            }
        }
        ItemKind::CalendarItem => {
            common(&mut m, true);
            m.push(simple(field::REMINDER_IS_SET, "ReminderIsSet", ValueKind::Bool));
            m.push(simple(field::REMINDER_MINUTES, "ReminderMinutesBeforeStart", ValueKind::Integer));
            // Time zones before the times: an update sets the zone first, then the instants in it.
            m.push(simple(field::START_TIME_ZONE, "StartTimeZone", ValueKind::TimeZone));
            m.push(simple(END_TIME_ZONE, "EndTimeZone", ValueKind::TimeZone));
            m.push(simple(field::START, "Start", ValueKind::DateTime));
            m.push(simple(field::END, "End", ValueKind::DateTime));
            m.push(simple(field::IS_ALL_DAY, "IsAllDayEvent", ValueKind::Bool));
            m.push(simple(field::LEGACY_FREE_BUSY, "LegacyFreeBusyStatus", ValueKind::Enum(FREE_BUSY)));
            m.push(simple(field::LOCATION, "Location", ValueKind::Text));
            m.push(simple(field::RECURRENCE, "Recurrence", ValueKind::Recurrence));
        }
        ItemKind::Task => {
            common(&mut m, true);
            m.push(simple(field::COMPLETE_DATE, "CompleteDate", ValueKind::DateTime));
            m.push(simple(field::DUE_DATE, "DueDate", ValueKind::DateTime));
            m.push(simple(field::PERCENT_COMPLETE, "PercentComplete", ValueKind::Integer));
            m.push(simple(field::START_DATE, "StartDate", ValueKind::DateTime));
            m.push(simple(field::STATUS, "Status", ValueKind::Enum(TASK_STATUS)));
        }
        ItemKind::Note => common(&mut m, true),
        ItemKind::DistributionList => {
            m.push(simple(field::DISPLAY_NAME, "DisplayName", ValueKind::Text));
            m.push(simple(MEMBERS, "Members", ValueKind::Members));
        }
        ItemKind::Other(_) => common(&mut m, true),
    }
    m
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|d| d.with_timezone(&Utc))
}

impl Mapping {
    /// Reads this field from an item.
    pub fn read(&self, item: &EwsItem) -> Option<CoreValue> {
        if self.value == ValueKind::Recurrence {
            return recurrence::read(item.element.child("Recurrence")?).map(CoreValue::Text);
        }
        if self.value == ValueKind::Members {
            return members::read(item.element.child("Members")?).map(CoreValue::TextList);
        }
        if self.value == ValueKind::TimeZone {
            let EwsProperty::Simple(name) = self.property else { return None };
            // Exchange 2007 has only the meeting's zone, by name: it stands for both.
            let id = match item.element.child(name) {
                Some(zone) => zone.attr("Id")?.trim(),
                None => item.element.child("MeetingTimeZone")?.attr("TimeZoneName")?.trim(),
            };
            return (!id.is_empty()).then(|| CoreValue::Text(id.to_owned()));
        }
        if self.value == ValueKind::TextList {
            let EwsProperty::Simple(name) = self.property else { return None };
            let list = item.strings(name);
            return if list.is_empty() { None } else { Some(CoreValue::TextList(list)) };
        }
        let text: String = match &self.property {
            EwsProperty::Simple(name) => item.text(name)?.to_owned(),
            EwsProperty::Entry { dictionary, key } => {
                item.entries(dictionary).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)?
            }
            EwsProperty::Address { key, part } => {
                item.addresses().into_iter().find(|(k, p, _)| k == key && p == part).map(|(_, _, v)| v)?
            }
            EwsProperty::Extended(uri) => item.extended(uri)?.to_owned(),
        };
        match self.value {
            ValueKind::Text => Some(CoreValue::Text(text)),
            ValueKind::DateTime => parse_time(&text).map(CoreValue::DateTime),
            ValueKind::Bool => match text.trim() {
                "true" | "1" => Some(CoreValue::Boolean(true)),
                "false" | "0" => Some(CoreValue::Boolean(false)),
                _ => None,
            },
            ValueKind::Integer => text.trim().parse::<f64>().ok().map(|f| CoreValue::Integer(f.round() as i64)),
            ValueKind::Enum(table) => Some(CoreValue::Text(
                table
                    .iter()
                    .find(|(e, _)| e.eq_ignore_ascii_case(text.trim()))
                    .map_or_else(|| text.trim().to_ascii_lowercase(), |(_, c)| (*c).to_owned()),
            )),
            ValueKind::TextList | ValueKind::Recurrence | ValueKind::TimeZone | ValueKind::Members => None,
        }
    }

    fn ews_value(&self, value: &CoreValue) -> Option<FieldValue> {
        Some(match (self.value, value) {
            (ValueKind::Recurrence, CoreValue::Text(t)) => FieldValue::Xml(recurrence::write(t)?),
            (ValueKind::Members, CoreValue::TextList(l)) => FieldValue::Xml(members::write(l)?),
            (ValueKind::Members, _) => return None,
            (ValueKind::TimeZone, CoreValue::Text(t)) => FieldValue::TimeZone(t.trim().to_owned()),
            (ValueKind::Enum(table), CoreValue::Text(t)) => {
                FieldValue::Text(table.iter().find(|(_, c)| c == t).map_or_else(|| t.clone(), |(e, _)| (*e).to_owned()))
            }
            (_, CoreValue::Text(t)) => FieldValue::Text(t.clone()),
            (_, CoreValue::DateTime(d)) => FieldValue::DateTime(*d),
            (_, CoreValue::Boolean(b)) => FieldValue::Bool(*b),
            (_, CoreValue::Integer(i)) => FieldValue::Int(*i),
            (_, CoreValue::TextList(l)) => FieldValue::Strings(l.clone()),
        })
    }

    /// The EWS fields that write this value (none if the value cannot be written).
    pub fn write(&self, value: &CoreValue) -> Vec<Field> {
        let Some(v) = self.ews_value(value) else {
            tracing::warn!(field = %self.canonical, "value cannot be written to EWS; skipped");
            return Vec::new();
        };
        let text = |v: FieldValue| match v {
            FieldValue::Text(t) => t,
            FieldValue::DateTime(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            FieldValue::Int(i) => i.to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Strings(l) => l.join(", "),
            other => format!("{other:?}"),
        };
        vec![match &self.property {
            EwsProperty::Simple(name) => Field::Simple { name: (*name).to_owned(), value: v },
            EwsProperty::Entry { dictionary, key } => {
                Field::Entry { dictionary: (*dictionary).to_owned(), key: (*key).to_owned(), value: text(v) }
            }
            EwsProperty::Address { key, part } => {
                Field::Address { key: (*key).to_owned(), part: (*part).to_owned(), value: text(v) }
            }
            EwsProperty::Extended(uri) => Field::Extended { uri: uri.clone(), value: text(v) },
        }]
    }

    /// Whether the field may be removed (booleans, enumerations, numbers, and the times and time
    /// zones of a calendar item always exist on the server).
    pub fn deletable(&self) -> bool {
        let fixed = matches!(self.property, EwsProperty::Simple("Start" | "End"));
        !fixed
            && matches!(
                self.value,
                ValueKind::Text
                    | ValueKind::DateTime
                    | ValueKind::TextList
                    | ValueKind::Recurrence
                    | ValueKind::Members
            )
    }

    /// The paths that delete this field.
    pub fn paths(&self, item_type: ItemType) -> Vec<PropertyPath> {
        let sample = match &self.property {
            EwsProperty::Simple(name) => Field::text(name, ""),
            EwsProperty::Entry { dictionary, key } => {
                Field::Entry { dictionary: (*dictionary).to_owned(), key: (*key).to_owned(), value: String::new() }
            }
            EwsProperty::Address { key, part } => {
                Field::Address { key: (*key).to_owned(), part: (*part).to_owned(), value: String::new() }
            }
            EwsProperty::Extended(uri) => Field::Extended { uri: uri.clone(), value: String::new() },
        };
        vec![sample.path(item_type)]
    }
}
