//! Three-way merge of items against their merge base, field by field (design rule 3).
//!
//! Each side that changed since the base contributes the fields it changed. A field changed on
//! one side only takes that side's value; a field changed to the same value on several sides is
//! not a conflict; a field changed to different values on several sides is a conflict, resolved
//! by the group's [`ConflictPolicy`], and every losing value is kept in a [`FieldConflict`] so that
//! nobody's edit disappears without a trace.
//!
//! The body is merged as one field (text merging inside a body would produce nonsense). The
//! categories are a set: every side's additions and removals are applied, so they never conflict.
//! The item kind is merged like a field named `kind`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::field;
use crate::group::ConflictPolicy;
use crate::id::{EntityId, MemberId};
use crate::item::{Body, FieldValue, Item};
use crate::state::{ConflictRecord, SideValue};

/// The conflict-record field name of the body.
pub const BODY_FIELD: &str = "body";
/// The conflict-record field name of the item kind.
pub const KIND_FIELD: &str = "kind";
/// The conflict-record field name of the categories (only conflicts when a side's ancestry is
/// unknown, see [`settle_unknown_ancestry`]).
pub const CATEGORIES_FIELD: &str = "categories";

/// One side of a merge: a folder whose copy changed since the base.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSide {
    /// The folder holding the copy.
    pub member: MemberId,
    /// The copy's content in canonical form (see [`Item::canonical`]).
    pub item: Item,
    /// When the server last modified the copy, for [`ConflictPolicy::NewestWins`].
    pub modified: Option<DateTime<Utc>>,
}

impl MergeSide {
    /// A side from an observed copy: the content is canonicalized, and the modification time is
    /// read from the server-maintained [`field::SERVER_LAST_MODIFIED`] before it is dropped.
    pub fn observed(member: MemberId, item: &Item) -> Self {
        MergeSide { member, modified: last_modified(item), item: item.canonical() }
    }
}

/// The server's last modification time of an item, as a date-time value or RFC 3339 text.
pub fn last_modified(item: &Item) -> Option<DateTime<Utc>> {
    match item.get(field::SERVER_LAST_MODIFIED)? {
        FieldValue::DateTime(t) => Some(*t),
        FieldValue::Text(s) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// A field changed differently on several sides, and how it was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The canonical field name ([`BODY_FIELD`] and [`KIND_FIELD`] for those).
    pub field: String,
    /// The base value every side started from.
    pub base: Option<FieldValue>,
    /// The value kept.
    pub winner: SideValue,
    /// Every other value a side changed the field to, in side order.
    pub losers: Vec<SideValue>,
}

impl FieldConflict {
    /// The record kept in the state store for this conflict.
    pub fn into_record(self, entity: EntityId, policy: &ConflictPolicy, now: DateTime<Utc>) -> ConflictRecord {
        ConflictRecord {
            entity,
            field: self.field,
            base: self.base,
            winner: self.winner,
            losers: self.losers,
            policy: policy_name(policy).to_owned(),
            recorded_at: now,
        }
    }
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged content, in canonical form: the new base.
    pub item: Item,
    /// The conflicts resolved on the way, in field name order.
    pub conflicts: Vec<FieldConflict>,
}

/// The name of a conflict policy as written in conflict records.
pub fn policy_name(policy: &ConflictPolicy) -> &'static str {
    match policy {
        ConflictPolicy::HubWins => "hub_wins",
        ConflictPolicy::NewestWins => "newest_wins",
        ConflictPolicy::MemberPriority(_) => "member_priority",
    }
}

/// Merges the sides that changed against their common base.
///
/// `sides` must be in group order, the hub first when it is among them: that order is what
/// [`ConflictPolicy::HubWins`] means, and it breaks ties of the other policies. Sides equal to
/// the base contribute nothing, so passing an unchanged side is harmless.
pub fn merge(base: &Item, sides: &[MergeSide], policy: &ConflictPolicy) -> Merged {
    let base = base.canonical();
    let sides: Vec<MergeSide> = sides.iter().map(|s| MergeSide { item: s.item.canonical(), ..s.clone() }).collect();
    let resolver = Resolver { sides: &sides, policy };
    let mut merged = Item::new(base.kind.clone());
    let mut conflicts = Vec::new();

    // The kind, like a field.
    let kinds: Vec<Option<FieldValue>> =
        sides.iter().map(|s| Some(FieldValue::Text(s.item.kind.to_string()))).collect();
    let base_kind = Some(FieldValue::Text(base.kind.to_string()));
    if let Some(winner) = resolver.resolve(KIND_FIELD, &base_kind, &kinds, &mut conflicts) {
        merged.kind = sides[winner].item.kind.clone();
    }

    // Every content field any side (or the base) holds, in name order.
    let names: BTreeSet<&String> = base.fields.keys().chain(sides.iter().flat_map(|s| s.item.fields.keys())).collect();
    for name in names {
        let base_value = base.fields.get(name).cloned();
        let values: Vec<Option<FieldValue>> = sides.iter().map(|s| s.item.fields.get(name).cloned()).collect();
        let value = match resolver.resolve(name, &base_value, &values, &mut conflicts) {
            Some(winner) => values[winner].clone(),
            None => base_value,
        };
        if let Some(value) = value {
            merged.fields.insert(name.clone(), value);
        }
    }

    // The body, as one field.
    let body_value = |b: &Option<Body>| b.as_ref().map(|b| FieldValue::Text(b.content.clone()));
    let bodies: Vec<Option<FieldValue>> = sides.iter().map(|s| body_value(&s.item.body)).collect();
    // Compare whole bodies (format included), report content.
    let changed_body = |i: usize| sides[i].item.body != base.body;
    merged.body = match resolver.resolve_by(BODY_FIELD, &body_value(&base.body), &bodies, changed_body, &mut conflicts)
    {
        Some(winner) => sides[winner].item.body.clone(),
        None => base.body.clone(),
    };

    // The categories, as a set: additions and removals of every side.
    let mut categories = base.categories.clone();
    for side in &sides {
        categories.retain(|c| !base.categories.contains(c) || side.item.categories.contains(c));
    }
    for side in &sides {
        categories.extend(side.item.categories.difference(&base.categories).cloned());
    }
    merged.categories = categories;

    conflicts.sort_by(|a, b| a.field.cmp(&b.field));
    Merged { item: merged, conflicts }
}

/// Settles a side whose common ancestor with the base is unknown, before [`merge`].
///
/// A copy that missed the last update (state knew it to be stale: it still held older content)
/// and was then edited by its user differs from the base both where the user edited it and where
/// it still holds the old content, and the two cannot be told apart (state keeps only the hash of
/// what a copy holds). Merging it as if every difference were the user's edit would silently undo
/// the change the copy missed. Instead every difference is a conflict between the side and
/// `holder`, the side that stands for the base (the hub, holding the base after the last sync),
/// resolved by `policy` and recorded, so neither value disappears without a trace.
///
/// Answers the side with every value it lost replaced by the base's (ready for [`merge`]) and
/// the conflicts. Categories count as one field here: set arithmetic needs an ancestor.
pub fn settle_unknown_ancestry(
    base: &Item,
    holder: &MemberId,
    holder_modified: Option<DateTime<Utc>>,
    side: &MergeSide,
    policy: &ConflictPolicy,
) -> (MergeSide, Vec<FieldConflict>) {
    let base = base.canonical();
    let sides = [
        MergeSide { member: holder.clone(), item: base.clone(), modified: holder_modified },
        MergeSide { item: side.item.canonical(), ..side.clone() },
    ];
    let resolver = Resolver { sides: &sides, policy };
    let theirs = &sides[1].item;
    let mut settled = theirs.clone();
    let mut conflicts = Vec::new();
    // Answers whether the holder (the base) wins a field the two hold differently.
    let mut base_wins = |field: &str, ours: Option<FieldValue>, other: Option<FieldValue>, differ: bool| {
        differ && resolver.resolve_by(field, &ours.clone(), &[ours, other], |_| true, &mut conflicts) == Some(0)
    };

    let kind = |i: &Item| Some(FieldValue::Text(i.kind.to_string()));
    if base_wins(KIND_FIELD, kind(&base), kind(theirs), base.kind != theirs.kind) {
        settled.kind = base.kind.clone();
    }
    let names: BTreeSet<&String> = base.fields.keys().chain(theirs.fields.keys()).collect();
    for name in names {
        let (ours, other) = (base.fields.get(name).cloned(), theirs.fields.get(name).cloned());
        let differ = ours != other;
        if base_wins(name, ours.clone(), other, differ) {
            match ours {
                Some(v) => settled.fields.insert(name.clone(), v),
                None => settled.fields.remove(name),
            };
        }
    }
    let body = |i: &Item| i.body.as_ref().map(|b| FieldValue::Text(b.content.clone()));
    if base_wins(BODY_FIELD, body(&base), body(theirs), base.body != theirs.body) {
        settled.body = base.body.clone();
    }
    let categories =
        |i: &Item| Some(FieldValue::TextList(i.categories.iter().cloned().collect())).filter(|v| !v.is_empty());
    if base_wins(CATEGORIES_FIELD, categories(&base), categories(theirs), base.categories != theirs.categories) {
        settled.categories = base.categories.clone();
    }
    conflicts.sort_by(|a, b| a.field.cmp(&b.field));
    (MergeSide { item: settled, ..side.clone() }, conflicts)
}

/// Picks the winning side of a field by policy.
struct Resolver<'a> {
    sides: &'a [MergeSide],
    policy: &'a ConflictPolicy,
}

impl Resolver<'_> {
    /// Resolves one field. Answers the index of the side whose value the field takes, or `None`
    /// when no side changed it (the base value stays). Records a conflict when changed sides
    /// disagree.
    fn resolve(
        &self,
        field: &str,
        base: &Option<FieldValue>,
        values: &[Option<FieldValue>],
        conflicts: &mut Vec<FieldConflict>,
    ) -> Option<usize> {
        self.resolve_by(field, base, values, |i| &values[i] != base, conflicts)
    }

    /// Like [`Resolver::resolve`], with the test of whether side `i` changed the field given.
    fn resolve_by(
        &self,
        field: &str,
        base: &Option<FieldValue>,
        values: &[Option<FieldValue>],
        changed: impl Fn(usize) -> bool,
        conflicts: &mut Vec<FieldConflict>,
    ) -> Option<usize> {
        let changed: Vec<usize> = (0..values.len()).filter(|&i| changed(i)).collect();
        let first = *changed.first()?;
        let all_agree = changed.iter().all(|&i| values[i] == values[first] && self.same_raw(field, i, first));
        if all_agree {
            return Some(first);
        }
        let winner = self.winner(&changed);
        let mut losers: Vec<SideValue> = Vec::new();
        for &i in &changed {
            if values[i] != values[winner] || !self.same_raw(field, i, winner) {
                losers.push(SideValue { member: self.sides[i].member.clone(), value: values[i].clone() });
            }
        }
        conflicts.push(FieldConflict {
            field: field.to_owned(),
            base: base.clone(),
            winner: SideValue { member: self.sides[winner].member.clone(), value: values[winner].clone() },
            losers,
        });
        Some(winner)
    }

    /// Whether two sides agree on a field beyond its reported value (the body's format).
    fn same_raw(&self, field: &str, a: usize, b: usize) -> bool {
        field != BODY_FIELD || self.sides[a].item.body == self.sides[b].item.body
    }

    /// The winning side among `candidates` (indexes in group order, not empty).
    fn winner(&self, candidates: &[usize]) -> usize {
        let first = candidates[0];
        match self.policy {
            ConflictPolicy::HubWins => first,
            ConflictPolicy::NewestWins => {
                // Latest modification time wins; unknown times count as oldest; ties go to the
                // earlier side in group order (the hub first).
                let mut best = first;
                for &i in &candidates[1..] {
                    if self.sides[i].modified > self.sides[best].modified {
                        best = i;
                    }
                }
                best
            }
            ConflictPolicy::MemberPriority(order) => {
                let rank = |i: usize| {
                    let pos = order.iter().position(|m| m == &self.sides[i].member).unwrap_or(order.len());
                    (pos, i)
                };
                candidates.iter().copied().min_by_key(|&i| rank(i)).unwrap_or(first)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemKind;

    fn base() -> Item {
        Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, "Ada")
            .with(field::SURNAME, "Lovelace")
            .with(field::COMPANY, "Analytical Engines")
    }

    fn side(member: &str, item: Item) -> MergeSide {
        MergeSide { member: MemberId::new(member), item, modified: None }
    }

    fn at(member: &str, item: Item, minute: u32) -> MergeSide {
        let t = DateTime::parse_from_rfc3339(&format!("2026-03-01T10:{minute:02}:00Z")).unwrap().to_utc();
        MergeSide { member: MemberId::new(member), item, modified: Some(t) }
    }

    fn text(s: &str) -> Option<FieldValue> {
        Some(FieldValue::Text(s.into()))
    }

    #[test]
    fn single_side_change_is_taken_whole() {
        let a = base().with(field::COMPANY, "Babbage & Co").with(field::EMAIL1, "ada@example.test");
        let m = merge(&base(), &[side("hub", a.clone())], &ConflictPolicy::HubWins);
        assert_eq!(m.item, a.canonical());
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn different_fields_on_different_sides_combine() {
        let hub = base().with(field::COMPANY, "Babbage & Co");
        let alice = base().with(field::PHONE_MOBILE, "+44 1");
        let bob = base().with(field::SURNAME, "King");
        let m = merge(&base(), &[side("hub", hub), side("alice", alice), side("bob", bob)], &ConflictPolicy::HubWins);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.item.text(field::COMPANY), Some("Babbage & Co"));
        assert_eq!(m.item.text(field::PHONE_MOBILE), Some("+44 1"));
        assert_eq!(m.item.text(field::SURNAME), Some("King"));
        assert_eq!(m.item.text(field::GIVEN_NAME), Some("Ada"));
    }

    #[test]
    fn same_change_on_both_sides_is_not_a_conflict() {
        let a = base().with(field::COMPANY, "Same");
        let m = merge(&base(), &[side("hub", a.clone()), side("alice", a.clone())], &ConflictPolicy::HubWins);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.item, a);
        // Clearing the same field on both sides agrees too.
        let mut cleared = base();
        cleared.fields.remove(field::COMPANY);
        let m =
            merge(&base(), &[side("alice", cleared.clone()), side("bob", cleared.clone())], &ConflictPolicy::HubWins);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.item, cleared);
    }

    #[test]
    fn field_added_on_one_side_and_another_cleared_on_the_other() {
        let added = base().with(field::EMAIL1, "ada@example.test");
        let mut cleared = base();
        cleared.fields.remove(field::COMPANY);
        let m = merge(&base(), &[side("hub", added), side("alice", cleared)], &ConflictPolicy::HubWins);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(m.item.text(field::EMAIL1), Some("ada@example.test"));
        assert_eq!(m.item.get(field::COMPANY), None);
    }

    #[test]
    fn edit_against_clear_is_a_conflict_with_the_cleared_value_recorded() {
        let edited = base().with(field::COMPANY, "New Co");
        let mut cleared = base();
        cleared.fields.remove(field::COMPANY);
        let m =
            merge(&base(), &[side("hub", cleared.clone()), side("alice", edited.clone())], &ConflictPolicy::HubWins);
        assert_eq!(m.item.get(field::COMPANY), None, "the hub cleared it and the hub wins");
        let c = &m.conflicts[0];
        assert_eq!(c.field, field::COMPANY);
        assert_eq!(c.base, text("Analytical Engines"));
        assert_eq!(c.winner, SideValue { member: "hub".into(), value: None });
        assert_eq!(c.losers, vec![SideValue { member: "alice".into(), value: text("New Co") }]);
        // The other way round, the edit wins and the clearing is the loser.
        let m = merge(&base(), &[side("hub", edited), side("alice", cleared)], &ConflictPolicy::HubWins);
        assert_eq!(m.item.text(field::COMPANY), Some("New Co"));
        assert_eq!(m.conflicts[0].losers, vec![SideValue { member: "alice".into(), value: None }]);
    }

    #[test]
    fn field_added_differently_on_two_sides_conflicts_against_an_absent_base() {
        let a = base().with(field::EMAIL1, "a@example.test");
        let b = base().with(field::EMAIL1, "b@example.test");
        let m = merge(&base(), &[side("alice", a), side("bob", b)], &ConflictPolicy::HubWins);
        assert_eq!(m.item.text(field::EMAIL1), Some("a@example.test"), "first member in group order");
        assert_eq!(m.conflicts[0].base, None);
        assert_eq!(m.conflicts[0].losers[0].member, MemberId::new("bob"));
    }

    #[test]
    fn hub_wins_keeps_every_loser() {
        let hub = base().with(field::COMPANY, "H");
        let alice = base().with(field::COMPANY, "A");
        let bob = base().with(field::COMPANY, "B");
        let carol = base().with(field::COMPANY, "H");
        let m = merge(
            &base(),
            &[side("hub", hub), side("alice", alice), side("bob", bob), side("carol", carol)],
            &ConflictPolicy::HubWins,
        );
        assert_eq!(m.item.text(field::COMPANY), Some("H"));
        let c = &m.conflicts[0];
        assert_eq!(c.winner.member, MemberId::new("hub"));
        let losers: Vec<_> = c.losers.iter().map(|l| (l.member.as_str(), l.value.clone())).collect();
        assert_eq!(losers, vec![("alice", text("A")), ("bob", text("B"))], "carol agreed with the winner");
        let record = c.clone().into_record(EntityId::new("e"), &ConflictPolicy::HubWins, Utc::now());
        assert_eq!(record.policy, "hub_wins");
    }

    #[test]
    fn newest_wins_by_server_time_and_ties_fall_back_to_group_order() {
        let hub = at("hub", base().with(field::COMPANY, "H"), 1);
        let alice = at("alice", base().with(field::COMPANY, "A"), 5);
        let bob = at("bob", base().with(field::COMPANY, "B"), 3);
        let m = merge(&base(), &[hub.clone(), alice.clone(), bob], &ConflictPolicy::NewestWins);
        assert_eq!(m.item.text(field::COMPANY), Some("A"));
        let tied = at("alice", base().with(field::COMPANY, "A"), 1);
        let m = merge(&base(), &[hub.clone(), tied], &ConflictPolicy::NewestWins);
        assert_eq!(m.item.text(field::COMPANY), Some("H"), "tie: hub wins");
        // Unknown times count as oldest.
        let unknown = side("alice", base().with(field::COMPANY, "A"));
        let m = merge(&base(), &[unknown, at("bob", base().with(field::COMPANY, "B"), 0)], &ConflictPolicy::NewestWins);
        assert_eq!(m.item.text(field::COMPANY), Some("B"));
    }

    #[test]
    fn newest_wins_reads_the_server_field_of_observed_items() {
        let older = base().with(field::COMPANY, "Old").with(field::SERVER_LAST_MODIFIED, "2026-03-01T10:00:00Z");
        let newer = base().with(field::COMPANY, "New").with(field::SERVER_LAST_MODIFIED, "2026-03-01T11:00:00+01:00");
        let later = base().with(field::COMPANY, "Later").with(field::SERVER_LAST_MODIFIED, "2026-03-01T10:30:00Z");
        let sides = [
            MergeSide::observed("hub".into(), &older),
            MergeSide::observed("alice".into(), &newer),
            MergeSide::observed("bob".into(), &later),
        ];
        let m = merge(&base(), &sides, &ConflictPolicy::NewestWins);
        assert_eq!(m.item.text(field::COMPANY), Some("Later"), "11:00+01:00 is 10:00Z");
        assert!(m.item.get(field::SERVER_LAST_MODIFIED).is_none(), "server fields are never merged");
    }

    #[test]
    fn member_priority_follows_the_order_then_group_order() {
        let policy = ConflictPolicy::MemberPriority(vec!["bob".into(), "hub".into()]);
        let hub = side("hub", base().with(field::COMPANY, "H"));
        let alice = side("alice", base().with(field::COMPANY, "A"));
        let bob = side("bob", base().with(field::COMPANY, "B"));
        let carol = side("carol", base().with(field::COMPANY, "C"));
        let m = merge(&base(), &[hub.clone(), alice.clone(), bob, carol.clone()], &policy);
        assert_eq!(m.item.text(field::COMPANY), Some("B"));
        let m = merge(&base(), &[hub, alice.clone(), carol.clone()], &policy);
        assert_eq!(m.item.text(field::COMPANY), Some("H"));
        let m = merge(&base(), &[alice, carol], &policy);
        assert_eq!(m.item.text(field::COMPANY), Some("A"), "unnamed sides come last, in group order");
        assert_eq!(policy_name(&policy), "member_priority");
    }

    #[test]
    fn body_is_one_field() {
        let mut b = base();
        b.body = Some(Body::text("line one\nline two"));
        let mut x = b.clone();
        x.body = Some(Body::text("line one changed\nline two"));
        let mut y = b.clone();
        y.body = Some(Body::text("line one\nline two changed"));
        let m = merge(&b, &[side("hub", x.clone()), side("alice", y)], &ConflictPolicy::HubWins);
        assert_eq!(m.item.body, x.body, "no line-level merging");
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].field, BODY_FIELD);
        assert_eq!(m.conflicts[0].losers[0].value, text("line one\nline two changed"));
        // A body touched only in white space does not change.
        let mut ws = b.clone();
        ws.body = Some(Body::text("line one  \r\nline two\r\n"));
        let m = merge(&b, &[side("alice", ws)], &ConflictPolicy::HubWins);
        assert_eq!(m.item, b.canonical());
    }

    #[test]
    fn categories_merge_as_a_set() {
        let mut b = base();
        b.categories = ["Blue", "Green", "Red"].into_iter().map(String::from).collect();
        let mut x = b.clone();
        x.categories.remove("Red");
        x.categories.insert("VIP".into());
        let mut y = b.clone();
        y.categories.remove("Green");
        y.categories.insert("Board".into());
        let m = merge(&b, &[side("hub", x), side("alice", y)], &ConflictPolicy::HubWins);
        let got: Vec<&str> = m.item.categories.iter().map(String::as_str).collect();
        assert_eq!(got, vec!["Blue", "Board", "VIP"]);
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn kind_changes_like_a_field() {
        let mut note = base();
        note.kind = ItemKind::Note;
        let m = merge(&base(), &[side("alice", note)], &ConflictPolicy::HubWins);
        assert_eq!(m.item.kind, ItemKind::Note);
        let mut task = base();
        task.kind = ItemKind::Task;
        let mut note = base();
        note.kind = ItemKind::Note;
        let m = merge(&base(), &[side("hub", task), side("alice", note)], &ConflictPolicy::HubWins);
        assert_eq!(m.item.kind, ItemKind::Task);
        assert_eq!(m.conflicts[0].field, KIND_FIELD);
    }

    #[test]
    fn unchanged_sides_contribute_nothing() {
        let m = merge(&base(), &[side("hub", base()), side("alice", base())], &ConflictPolicy::NewestWins);
        assert_eq!(m.item, base());
        assert!(m.conflicts.is_empty());
    }

    #[test]
    fn unknown_ancestry_turns_every_difference_into_a_recorded_conflict() {
        let mut b = base().with(field::COMPANY, "New Co");
        b.categories.insert("Blue".into());
        let mut stale_and_edited = base().with(field::PHONE_MOBILE, "+41 2");
        stale_and_edited.categories.insert("Red".into());
        let edited = at("alice", stale_and_edited.clone(), 5);
        let hub = MemberId::new("hub");

        let (settled, conflicts) = settle_unknown_ancestry(&b, &hub, None, &edited, &ConflictPolicy::HubWins);
        assert_eq!(settled.item, b.canonical(), "the base holder wins everything under hub wins");
        let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec![CATEGORIES_FIELD, field::COMPANY, field::PHONE_MOBILE]);
        assert!(conflicts.iter().all(|c| c.winner.member == hub && c.losers[0].member == edited.member));
        assert_eq!(conflicts[2].losers[0].value, text("+41 2"));
        // Equal fields are no conflict; the result merges like any side.
        assert!(conflicts.iter().all(|c| c.field != field::GIVEN_NAME));

        let alice_first = ConflictPolicy::MemberPriority(vec!["alice".into()]);
        let (settled, conflicts) = settle_unknown_ancestry(&b, &hub, None, &edited, &alice_first);
        assert_eq!(settled.item, stale_and_edited.canonical());
        assert_eq!(conflicts[1].losers[0].value, text("New Co"), "the base's value is kept as the loser");

        // Newest wins: a side with a time beats a holder without one, and loses to a newer one.
        let (settled, _) = settle_unknown_ancestry(&b, &hub, None, &edited, &ConflictPolicy::NewestWins);
        assert_eq!(settled.item, stale_and_edited.canonical());
        let later = at("hub", b.clone(), 9).modified;
        let (settled, _) = settle_unknown_ancestry(&b, &hub, later, &edited, &ConflictPolicy::NewestWins);
        assert_eq!(settled.item, b.canonical());

        // Nothing differs: nothing to settle.
        let (settled, conflicts) =
            settle_unknown_ancestry(&b, &hub, None, &side("alice", b.clone()), &ConflictPolicy::HubWins);
        assert!(conflicts.is_empty());
        assert_eq!(settled.item, b.canonical());
    }
}
