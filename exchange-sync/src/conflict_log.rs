//! The readable conflict log: every field edited differently on several sides, what was kept and
//! what was not, so that nobody's edit disappears without a trace.

use chrono::{DateTime, Utc};
use exchange_sync_core::FieldValue;
use exchange_sync_core::state::ConflictRecord;
use serde::{Deserialize, Serialize};

/// One side's value in a conflict, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideEntry {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The value; `None` when the side cleared the field.
    pub value: Option<String>,
}

/// One resolved conflict, as plain text fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictEntry {
    /// The group.
    pub group: String,
    /// The entity (the logical item; `exchange-sync show` looks it up).
    pub entity: String,
    /// The item as a person names it (`contact "Anna Berg" <anna.berg@contoso.test>`), when the
    /// state still knows the entity.
    #[serde(default)]
    pub item: Option<String>,
    /// The field (`body` and `categories` for those).
    pub field: String,
    /// The value both sides started from.
    pub base: Option<String>,
    /// The value kept.
    pub winner: SideEntry,
    /// The values not kept.
    pub losers: Vec<SideEntry>,
    /// The policy that decided.
    pub policy: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

fn text(value: &Option<FieldValue>) -> Option<String> {
    value.as_ref().map(|v| match v {
        FieldValue::Text(s) => s.clone(),
        other => other.to_string(),
    })
}

impl ConflictEntry {
    /// The entry of a state store record.
    pub fn from_record(group: &str, record: &ConflictRecord) -> Self {
        ConflictEntry {
            group: group.to_owned(),
            entity: record.entity.to_string(),
            item: None,
            field: record.field.clone(),
            base: text(&record.base),
            winner: SideEntry { member: record.winner.member.to_string(), value: text(&record.winner.value) },
            losers: record
                .losers
                .iter()
                .map(|l| SideEntry { member: l.member.to_string(), value: text(&l.value) })
                .collect(),
            policy: record.policy.clone(),
            recorded_at: record.recorded_at,
        }
    }

    /// The entry, naming its item (see [`crate::names::item_name`]).
    pub fn named(mut self, item: Option<String>) -> Self {
        self.item = item;
        self
    }
}

fn show(value: &Option<String>) -> String {
    value.as_ref().map_or_else(|| "(empty)".to_owned(), |v| format!("{v:?}"))
}

impl std::fmt::Display for ConflictEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let item = match &self.item {
            Some(name) => format!("{name} (entity {})", self.entity),
            None => format!("entity {}", self.entity),
        };
        write!(
            f,
            "{} group {} {item}: field {} was {}; kept {} from {} ({})",
            self.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.group,
            self.field,
            show(&self.base),
            show(&self.winner.value),
            self.winner.member,
            self.policy,
        )?;
        for loser in &self.losers {
            write!(f, "; not kept: {} from {}", show(&loser.value), loser.member)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::state::SideValue;
    use exchange_sync_core::{EntityId, MemberId};

    #[test]
    fn a_conflict_reads_as_one_line_with_every_value() {
        let record = ConflictRecord {
            entity: EntityId::new("e1"),
            field: "phone.mobile".into(),
            base: Some(FieldValue::Text("+1 100".into())),
            winner: SideValue { member: MemberId::new("alice"), value: Some(FieldValue::Text("+1 200".into())) },
            losers: vec![SideValue { member: MemberId::new("bob"), value: None }],
            policy: "hub_wins".into(),
            recorded_at: DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc),
        };
        let line = ConflictEntry::from_record("contacts", &record).to_string();
        assert_eq!(
            line,
            "2026-11-28 10:00:00 UTC group contacts entity e1: field phone.mobile was \"+1 100\"; \
             kept \"+1 200\" from alice (hub_wins); not kept: (empty) from bob"
        );
        let named = ConflictEntry::from_record("contacts", &record).named(Some("contact \"Anna Berg\"".into()));
        assert!(named.to_string().contains("group contacts contact \"Anna Berg\" (entity e1): field phone.mobile"));
    }
}
