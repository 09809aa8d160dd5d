//! Sync groups: a hub folder, member folders, and the policies that decide what flows where.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{GroupId, MemberId};
use crate::item::{FieldValue, Item};

/// What happens to a one-way member's local change (an edit or a deletion made in the mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalChangePolicy {
    /// Put the shared content back (the default: readers see exactly the shared folder).
    #[default]
    Revert,
    /// Leave the user's version alone until the shared item changes again (an edit), or stop
    /// delivering that item to this member (a deletion).
    Ignore,
}

/// Policies of a one-way (receive-only) member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OneWayPolicy {
    /// What to do when the user edits a copy.
    pub on_edit: LocalChangePolicy,
    /// What to do when the user deletes a copy.
    pub on_delete: LocalChangePolicy,
}

/// Policies of a two-way (editing) member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoWayPolicy {
    /// Whether items the user creates in the member folder join the group (are copied to the hub
    /// and every other member). When false, they stay the user's own and are never touched.
    pub adopt_new_items: bool,
    /// Whether the user's deletions propagate to the hub and the other members. When false, a
    /// deleted copy is recreated.
    pub propagate_deletes: bool,
}

impl Default for TwoWayPolicy {
    fn default() -> Self {
        TwoWayPolicy { adopt_new_items: true, propagate_deletes: true }
    }
}

/// Which way changes flow for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum Direction {
    /// The member only receives.
    OneWay(OneWayPolicy),
    /// The member's edits flow to the hub and on to every other member.
    TwoWay(TwoWayPolicy),
}

impl Direction {
    /// A one-way direction with default policies (revert edits and deletions).
    pub fn one_way() -> Self {
        Direction::OneWay(OneWayPolicy::default())
    }

    /// A two-way direction with default policies (adopt new items, propagate deletions).
    pub fn two_way() -> Self {
        Direction::TwoWay(TwoWayPolicy::default())
    }

    /// Whether the member's changes are authoritative (flow to the hub).
    pub fn is_two_way(&self) -> bool {
        matches!(self, Direction::TwoWay(_))
    }
}

/// One member folder of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's id, unique within the group.
    pub id: MemberId,
    /// Which way changes flow.
    pub direction: Direction,
}

impl Member {
    /// A member.
    pub fn new(id: impl Into<MemberId>, direction: Direction) -> Self {
        Member { id: id.into(), direction }
    }
}

/// How a field edited differently on several sides since the merge base is resolved. The losing
/// values are always kept in a conflict record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "policy", content = "order", rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The hub's value wins; among members only, the first in group order wins.
    #[default]
    HubWins,
    /// The side whose copy was modified last wins (by the server's modification time); ties fall
    /// back to hub wins.
    NewestWins,
    /// The first side in this order wins (the hub may be named in it); sides not named come last,
    /// in group order.
    MemberPriority(Vec<MemberId>),
}

/// The mass-delete guard (design rule 8): a run that would delete more than a share of a folder
/// stops with [`Error::MassDelete`] until an admin confirms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MassDeleteGuard {
    /// The largest share (0.0..=1.0) of a folder's group items one run may delete unconfirmed.
    pub max_share: f64,
    /// Deleting this many items or fewer never trips the guard, whatever the share (small folders).
    pub min_count: usize,
}

impl Default for MassDeleteGuard {
    fn default() -> Self {
        MassDeleteGuard { max_share: 0.25, min_count: 10 }
    }
}

impl MassDeleteGuard {
    /// The largest number of deletions allowed without confirmation in a folder of `total` items.
    pub fn limit(&self, total: usize) -> usize {
        let share = (total as f64 * self.max_share.clamp(0.0, 1.0)).floor() as usize;
        share.max(self.min_count)
    }
}

/// A sync group: a hub folder and the members kept in sync with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncGroup {
    /// The group's id (part of every origin stamp: never change it for a running group).
    pub id: GroupId,
    /// The hub's member id (its folder is the group's source, usually a public folder).
    pub hub: MemberId,
    /// The member folders.
    pub members: Vec<Member>,
    /// How conflicting field edits are resolved.
    pub conflict_policy: ConflictPolicy,
    /// Fields that identify the same item across folders during initial matching (design rule 9),
    /// e.g. `["email1.address"]`. Empty: match by origin stamp only. A member's item that matches
    /// an entity by key joins it only when that writes nothing the user did not have (it holds the
    /// entity's content already); otherwise it is the user's own and stays untouched, and the
    /// member gets no copy of that entity, unless [`SyncGroup::take_over_matches`] is set.
    pub match_key: Vec<String>,
    /// Whether a member's item that matches an entity by key but holds other content is taken
    /// over by the group (overwritten with the entity's content, every overwritten value recorded
    /// in the conflict log first) instead of being left to its user. Off by default: a default
    /// folder holds personal items that only look like the shared ones (design rule 6).
    #[serde(default)]
    pub take_over_matches: bool,
    /// The mass-delete guard.
    pub mass_delete_guard: MassDeleteGuard,
}

impl SyncGroup {
    /// A group with default policies and no members yet.
    pub fn new(id: impl Into<GroupId>, hub: impl Into<MemberId>) -> Self {
        SyncGroup {
            id: id.into(),
            hub: hub.into(),
            members: Vec::new(),
            conflict_policy: ConflictPolicy::default(),
            match_key: Vec::new(),
            take_over_matches: false,
            mass_delete_guard: MassDeleteGuard::default(),
        }
    }

    /// Adds a member; returns `self` for chaining.
    pub fn with_member(mut self, member: Member) -> Self {
        self.members.push(member);
        self
    }

    /// The member with this id, if it is a member (the hub is not).
    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }

    /// The group without the members `leave_out` names (the folders a pass leaves out), their
    /// places in a priority order too; the hub stays.
    pub fn without(&self, leave_out: impl Fn(&MemberId) -> bool) -> SyncGroup {
        let mut group = self.clone();
        group.members.retain(|m| !leave_out(&m.id));
        if let ConflictPolicy::MemberPriority(order) = &mut group.conflict_policy {
            order.retain(|m| !leave_out(m) || m == &self.hub);
        }
        group
    }

    /// Whether the id names the hub.
    pub fn is_hub(&self, id: &MemberId) -> bool {
        &self.hub == id
    }

    /// Every folder of the group: the hub first, then the members in order.
    pub fn folders(&self) -> impl Iterator<Item = &MemberId> {
        std::iter::once(&self.hub).chain(self.members.iter().map(|m| &m.id))
    }

    /// The item's value of the group's match key (design rule 9): the normalized values of the
    /// [`SyncGroup::match_key`] fields, joined. Text is compared without regard to case and runs of
    /// white space, since users type the same address in different ways. `None` when the group
    /// has no match key or any key field is empty: an item without a key never matches, so two
    /// unrelated contacts without an e-mail address are not merged into one.
    pub fn match_key_of(&self, item: &Item) -> Option<String> {
        if self.match_key.is_empty() {
            return None;
        }
        let mut parts = Vec::with_capacity(self.match_key.len());
        for name in &self.match_key {
            let part = match item.get(name.trim())? {
                FieldValue::Text(s) => normalize_text(s),
                FieldValue::TextList(list) => {
                    list.iter().map(|s| normalize_text(s)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
                }
                FieldValue::DateTime(t) => t.to_rfc3339(),
                other => other.to_string(),
            };
            if part.is_empty() {
                return None;
            }
            parts.push(part);
        }
        // The unit separator cannot be typed into a field, so distinct key tuples stay distinct.
        Some(parts.join("\u{1f}"))
    }

    /// Checks the group for mistakes that would make syncing unsafe.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| Err(Error::Config { message: format!("group {}: {message}", self.id) });
        if self.id.as_str().trim().is_empty() {
            return Err(Error::Config { message: "a group id must not be empty".into() });
        }
        let mut seen = BTreeSet::new();
        for id in self.folders() {
            if id.as_str().trim().is_empty() {
                return err("a member id must not be empty".into());
            }
            if !seen.insert(id) {
                return err(format!("member {id} appears twice (the hub counts as a member)"));
            }
        }
        let guard = &self.mass_delete_guard;
        if !(0.0..=1.0).contains(&guard.max_share) || guard.max_share.is_nan() {
            return err(format!("mass_delete_guard.max_share must be within 0.0..=1.0, not {}", guard.max_share));
        }
        if let ConflictPolicy::MemberPriority(order) = &self.conflict_policy {
            for id in order {
                if !seen.contains(id) {
                    return err(format!("conflict priority names {id}, which is not in the group"));
                }
            }
        }
        if self.match_key.iter().any(|f| f.trim().is_empty()) {
            return err("match_key holds an empty field name".into());
        }
        Ok(())
    }
}

/// Text as compared for matching: trimmed, lower case, inner white space collapsed to one space.
fn normalize_text(s: &str) -> String {
    s.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> SyncGroup {
        SyncGroup::new("contacts", "hub")
            .with_member(Member::new("alice", Direction::two_way()))
            .with_member(Member::new("bob", Direction::one_way()))
    }

    #[test]
    fn valid_group_passes() {
        group().validate().unwrap();
        assert_eq!(group().folders().count(), 3);
    }

    #[test]
    fn duplicate_and_unknown_members_are_rejected_with_names() {
        let dup = group().with_member(Member::new("hub", Direction::one_way()));
        assert!(dup.validate().unwrap_err().to_string().contains("hub appears twice"));
        let mut bad = group();
        bad.conflict_policy = ConflictPolicy::MemberPriority(vec![MemberId::new("zed")]);
        assert!(bad.validate().unwrap_err().to_string().contains("zed"));
        let mut share = group();
        share.mass_delete_guard.max_share = 1.5;
        assert!(share.validate().is_err());
    }

    #[test]
    fn guard_limit_respects_minimum() {
        let g = MassDeleteGuard { max_share: 0.25, min_count: 10 };
        assert_eq!(g.limit(8), 10);
        assert_eq!(g.limit(1000), 250);
    }

    #[test]
    fn match_key_is_normalized_and_absent_when_any_part_is_empty() {
        use crate::item::ItemKind;
        let mut g = group();
        let item = Item::new(ItemKind::Contact)
            .with("email1.address", "  Zoe@Contoso.TEST ")
            .with("surname", "Müller  Lüdenscheidt");
        assert_eq!(g.match_key_of(&item), None, "no match key configured");
        g.match_key = vec!["email1.address".into()];
        assert_eq!(g.match_key_of(&item).as_deref(), Some("zoe@contoso.test"));
        g.match_key = vec!["email1.address".into(), "surname".into()];
        assert_eq!(g.match_key_of(&item).as_deref(), Some("zoe@contoso.test\u{1f}müller lüdenscheidt"));
        g.match_key = vec!["email1.address".into(), "company".into()];
        assert_eq!(g.match_key_of(&item), None, "company is empty");
        let other = Item::new(ItemKind::Contact)
            .with("email1.address", "zoe@contoso.test")
            .with("surname", "MÜLLER Lüdenscheidt");
        g.match_key = vec!["email1.address".into(), "surname".into()];
        assert_eq!(g.match_key_of(&other), g.match_key_of(&item));
    }
}
