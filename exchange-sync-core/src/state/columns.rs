//! How the SQL stores (SQLite, PostgreSQL) hold records in columns and read them back:
//! timestamps as RFC 3339 text, content hashes as hex, ownership and replica slots by name. A
//! value that does not read back is a state error that says what it was and where.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::id::{ItemId, Version};
use crate::item::ContentHash;
use crate::state::{Ownership, ReplicaRecord, ReplicaSlot, StateWrite};

/// A point in time as stored (nanoseconds, UTC, so that text order is time order).
pub(crate) fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The error of a stored value that does not read back.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::State { message: format!("state database holds an unreadable {what}"), source: None }
}

pub(crate) fn parse_time(s: &str, what: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt(format!("{what} {s:?}")))
}

pub(crate) fn parse_hash(s: &str, what: &str) -> Result<ContentHash> {
    ContentHash::from_hex(s).ok_or_else(|| corrupt(format!("{what} {s:?}")))
}

pub(crate) fn ownership_name(o: Ownership) -> &'static str {
    match o {
        Ownership::Created => "created",
        Ownership::Adopted => "adopted",
    }
}

pub(crate) fn parse_ownership(s: &str) -> Result<Ownership> {
    match s {
        "created" => Ok(Ownership::Created),
        "adopted" => Ok(Ownership::Adopted),
        other => Err(corrupt(format!("ownership {other:?}"))),
    }
}

/// The columns of a replica slot (`slot, item_id, version, content_hash, ownership,
/// ignored_base`), as stored (the PostgreSQL store binds them as parameters).
#[cfg(feature = "postgres")]
pub(crate) struct SlotColumns<'a> {
    pub slot: &'static str,
    pub item_id: Option<&'a str>,
    pub version: Option<&'a str>,
    pub hash: Option<String>,
    pub ownership: Option<&'static str>,
    pub ignored_base: Option<String>,
}

#[cfg(feature = "postgres")]
impl<'a> SlotColumns<'a> {
    /// The columns that hold `slot`.
    pub(crate) fn of(slot: &'a ReplicaSlot) -> Self {
        match slot {
            ReplicaSlot::Present(r) => SlotColumns {
                slot: "present",
                item_id: Some(r.item_id.as_str()),
                version: Some(r.version.as_str()),
                hash: Some(r.hash.to_hex()),
                ownership: Some(ownership_name(r.ownership)),
                ignored_base: r.ignored_base.map(|h| h.to_hex()),
            },
            ReplicaSlot::Personal { item_id, version } => SlotColumns {
                slot: "personal",
                item_id: Some(item_id.as_str()),
                version: Some(version.as_str()),
                hash: None,
                ownership: None,
                ignored_base: None,
            },
            ReplicaSlot::OptedOut => SlotColumns {
                slot: "opted_out",
                item_id: None,
                version: None,
                hash: None,
                ownership: None,
                ignored_base: None,
            },
        }
    }
}

/// A replica slot read back from its columns, as stored (see [`SlotColumns`]); `entity` and
/// `member` name it in the error of a row that does not read back.
pub(crate) struct StoredSlot {
    pub slot: String,
    pub item_id: Option<String>,
    pub version: Option<String>,
    pub hash: Option<String>,
    pub ownership: Option<String>,
    pub ignored_base: Option<String>,
}

impl StoredSlot {
    pub(crate) fn into_slot(self, entity: &str, member: &str) -> Result<ReplicaSlot> {
        Ok(match (self.slot.as_str(), self.item_id, self.version, self.hash, self.ownership) {
            ("opted_out", ..) => ReplicaSlot::OptedOut,
            ("personal", Some(item_id), Some(version), ..) => {
                ReplicaSlot::Personal { item_id: ItemId::new(item_id), version: Version::new(version) }
            }
            ("present", Some(item_id), Some(version), Some(hash), Some(ownership)) => {
                ReplicaSlot::Present(ReplicaRecord {
                    item_id: ItemId::new(item_id),
                    version: Version::new(version),
                    hash: parse_hash(&hash, "content hash")?,
                    ownership: parse_ownership(&ownership)?,
                    ignored_base: self.ignored_base.map(|h| parse_hash(&h, "ignored base hash")).transpose()?,
                })
            }
            (slot, ..) => return Err(corrupt(format!("replica slot {slot:?} of entity {entity} in member {member}"))),
        })
    }
}

/// What a write does, for error messages.
pub(crate) fn describe(write: &StateWrite) -> String {
    match write {
        StateWrite::PutEntity { id, .. } => format!("put entity {id}"),
        StateWrite::RemoveEntity { id } => format!("remove entity {id}"),
        StateWrite::PutReplica { entity, member, .. } => format!("put replica of entity {entity} in member {member}"),
        StateWrite::RemoveReplica { entity, member } => {
            format!("remove replica of entity {entity} in member {member}")
        }
        StateWrite::PutForeign { member, id, .. } => format!("record item {id} in member {member} as a user's own"),
        StateWrite::RemoveForeign { member, id } => format!("forget user's own item {id} in member {member}"),
        StateWrite::SetToken { member, .. } => format!("set sync token of member {member}"),
        StateWrite::SetMemberStatus { member, .. } => format!("set status of member {member}"),
        StateWrite::PutPending(p) => format!("record create intent of entity {} in member {}", p.entity, p.member),
        StateWrite::RemovePending { entity, member } => {
            format!("clear create intent of entity {entity} in member {member}")
        }
        StateWrite::AddConflict(c) => format!("record conflict on field {} of entity {}", c.field, c.entity),
        StateWrite::RemoveMember { member } => format!("remove member {member}"),
        StateWrite::PutEarlierBases { entity, .. } => format!("set earlier bases of entity {entity}"),
        StateWrite::RemoveRequest { id } => format!("remove admin request {id}"),
        StateWrite::PutRecord { key, value: Some(_) } => format!("set record {key}"),
        StateWrite::PutRecord { key, value: None } => format!("remove record {key}"),
    }
}
