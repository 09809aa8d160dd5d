//! Targeted planner scenarios: new items, conflict policies, initial matching, orphans, foreign
//! items, the mass-delete guard, resumption and determinism. Each runs the plan through the
//! executor model of `planner_support` and checks the outcome on the folders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod planner_support;

use exchange_sync_core::group::{LocalChangePolicy, OneWayPolicy, TwoWayPolicy};
use exchange_sync_core::state::Ownership;
use exchange_sync_core::{
    Action, ConflictPolicy, Direction, EntityId, Error, FolderObservation, ItemId, Member, MemberId, Notice,
    OriginStamp, Plan, PlanInput, Reason, ReplicaSlot, StateWrite, SyncGroup, SyncToken, plan,
};
use planner_support::{World, contact, m};

/// hub, a one-way member `reader`, two two-way members `alice` and `bob`.
fn group() -> SyncGroup {
    SyncGroup::new("contacts", "hub")
        .with_member(Member::new("reader", Direction::one_way()))
        .with_member(Member::new("alice", Direction::two_way()))
        .with_member(Member::new("bob", Direction::two_way()))
}

fn creates_in(plan: &Plan) -> Vec<(String, Reason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { member, reason, .. } => Some((member.to_string(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn kinds(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| {
            let kind = match a {
                Action::Create { .. } => "create",
                Action::Update { .. } => "update",
                Action::Delete { .. } => "delete",
            };
            format!("{kind} {}", a.member())
        })
        .collect()
}

/// A world where the hub's item `name` has been synced everywhere.
fn synced(group: &SyncGroup, name: &str) -> (World, EntityId, ItemId) {
    let mut w = World::new(group);
    w.initialized.extend(group.folders().cloned());
    let id = w.add("hub", contact(name), None);
    w.sync(group);
    let e = w.only_entity();
    w.assert_converged();
    (w, e, id)
}

#[test]
fn new_hub_item_is_created_in_every_member_under_a_derived_id() {
    let g = group();
    let mut w = World::new(&g);
    let id = w.add("hub", contact("ada"), None);
    let plan = w.sync(&g);
    let e = EntityId::derive(&g.id, &m("hub"), &id);
    assert_eq!(w.only_entity(), e, "the id derives from the hub item, so a state loss finds it again");
    assert_eq!(
        creates_in(&plan),
        ["reader", "alice", "bob"].map(|x| (x.to_string(), Reason::NewIn(m("hub")))).to_vec(),
        "members in group order"
    );
    for a in &plan.actions {
        if let Action::Create { origin, item, .. } = a {
            assert_eq!(origin, &OriginStamp::new(g.id.clone(), e.clone()));
            assert_eq!(item.as_ref(), &contact("ada").canonical());
        }
    }
    let hub = &w.entities[&e].replicas[&m("hub")];
    assert!(matches!(hub, ReplicaSlot::Present(r) if r.ownership == Ownership::Adopted));
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn two_way_member_adopts_new_items_only_once_initialized() {
    let g = group();
    let mut w = World::new(&g);
    // At alice's initial sync her folder already holds a personal contact: it stays hers.
    let personal = w.add("alice", contact("mum"), None);
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "{plan}");
    assert!(w.foreign.contains(&(m("alice"), personal.clone())));
    // Later edits of it are never looked at again, and nothing touches it.
    w.edit("alice", &personal, |i| i.set("company", "Family"));
    assert!(w.sync(&g).actions.is_empty());

    // A contact she creates once initialized joins the group.
    let new = w.add("alice", contact("colleague"), None);
    let plan = w.sync(&g);
    let e = EntityId::derive(&g.id, &m("alice"), &new);
    assert_eq!(
        creates_in(&plan),
        ["hub", "reader", "bob"].map(|x| (x.to_string(), Reason::NewIn(m("alice")))).to_vec()
    );
    assert!(plan.actions.iter().all(|a| a.entity() == &e));
    assert!(!w.touched.iter().any(|(member, id)| member == &m("alice") && id == &personal));
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn new_items_of_one_way_members_and_non_adopting_members_stay_the_users() {
    let g = SyncGroup::new("contacts", "hub").with_member(Member::new("reader", Direction::one_way())).with_member(
        Member::new("alice", Direction::TwoWay(TwoWayPolicy { adopt_new_items: false, propagate_deletes: true })),
    );
    let mut w = World::new(&g);
    w.initialized.extend(g.folders().cloned());
    let a = w.add("reader", contact("own1"), None);
    let b = w.add("alice", contact("own2"), None);
    // Stamped by another group: still not ours.
    let other = OriginStamp::new("other-group".into(), EntityId::new("x"));
    let c = w.add("reader", contact("own3"), Some(other));
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "{plan}");
    for (member, id) in [("reader", a), ("alice", b), ("reader", c)] {
        assert!(plan.state.contains(&StateWrite::PutForeign {
            member: m(member),
            id: id.clone(),
            version: w.folders[&m(member)][&id].version.clone()
        }));
    }
    assert!(w.entities.is_empty());
}

#[test]
fn deleting_a_foreign_item_forgets_it() {
    let g = group();
    let mut w = World::new(&g);
    let own = w.add("reader", contact("own"), None);
    w.sync(&g);
    w.delete("reader", &own);
    let plan = w.sync(&g);
    assert_eq!(plan.state, vec![StateWrite::RemoveForeign { member: m("reader"), id: own }]);
    assert!(plan.actions.is_empty());
}

/// The hub, alice and bob all change the company of one synced contact.
fn three_way_conflict(policy: ConflictPolicy) -> (World, EntityId, Plan) {
    let mut g = group();
    g.conflict_policy = policy;
    let (mut w, e, hub_id) = synced(&g, "ada");
    let alice = w.copy_of(&e, "alice").unwrap();
    let bob = w.copy_of(&e, "bob").unwrap();
    w.edit("hub", &hub_id, |i| {
        i.set("company", "Hub Co");
        i.set("server.last_modified_time", "2026-03-01T10:00:00Z");
    });
    w.edit("alice", &alice, |i| {
        i.set("company", "Alice Co");
        i.set("phone.mobile", "+41 1");
        i.set("server.last_modified_time", "2026-03-01T10:05:00Z");
    });
    w.edit("bob", &bob, |i| {
        i.set("company", "Bob Co");
        i.set("server.last_modified_time", "2026-03-01T10:02:00Z");
    });
    let plan = w.sync(&g);
    w.assert_converged();
    w.assert_stable(&g);
    (w, e, plan)
}

#[test]
fn conflicts_resolve_by_policy_and_keep_every_losing_value() {
    let cases = [
        (ConflictPolicy::HubWins, "hub", "Hub Co", "hub_wins"),
        (ConflictPolicy::NewestWins, "alice", "Alice Co", "newest_wins"),
        (ConflictPolicy::MemberPriority(vec![m("bob"), m("hub")]), "bob", "Bob Co", "member_priority"),
    ];
    for (policy, winner, value, name) in cases {
        let (w, e, plan) = three_way_conflict(policy);
        let base = w.entities[&e].base.clone().unwrap();
        assert_eq!(base.text("company"), Some(value), "{name}");
        assert_eq!(base.text("phone.mobile"), Some("+41 1"), "{name}: alice's other edit is kept");
        assert_eq!(plan.conflicts.len(), 1, "{name}: {plan}");
        let c = &plan.conflicts[0];
        assert_eq!((c.field.as_str(), c.policy.as_str(), &c.entity), ("company", name, &e));
        assert_eq!(c.base, None, "the contact had no company");
        assert_eq!(c.winner.member, m(winner));
        let mut losers: Vec<&str> = c.losers.iter().map(|l| l.member.as_str()).collect();
        losers.sort();
        let mut want: Vec<&str> = ["alice", "bob", "hub"].into_iter().filter(|x| *x != winner).collect();
        want.sort();
        assert_eq!(losers, want, "{name}");
        assert_eq!(w.conflicts, plan.conflicts, "{name}: the records are stored with the plan");
        // Every copy, the one-way member's included, ends with the merged content.
        for f in ["hub", "reader", "alice", "bob"] {
            assert_eq!(w.content_of(&e, f).unwrap().canonical(), base, "{name} {f}");
        }
    }
}

#[test]
fn initial_matching_after_state_loss_uses_stamps_then_keys() {
    let mut g = group();
    g.match_key = vec!["email1.address".into()];
    let mut w = World::new(&g);
    let hub_item = w.add("hub", contact("ada"), None);
    let e = EntityId::derive(&g.id, &m("hub"), &hub_item);
    // A copy the group made before the state was lost, and a copy of bob's under a stale stamp.
    let stamped = w.add("reader", contact("ada"), Some(OriginStamp::new(g.id.clone(), e.clone())));
    // alice had the same person under another spelling and with her own company: matched by key,
    // but it differs, so it is her own contact: kept untouched, and she gets no second copy.
    let by_key = w.add("alice", contact("ada").with("email1.address", " ADA@example.test").with("company", "AE"), None);
    // An orphan of this group in the one-way member: removed; an unrelated contact: left alone.
    let orphan = w.add("reader", contact("gone"), Some(OriginStamp::new(g.id.clone(), EntityId::new("gone"))));
    let own = w.add("reader", contact("own"), None);
    let plan = w.sync(&g);

    assert_eq!(w.only_entity(), e);
    assert_eq!(w.copy_of(&e, "reader"), Some(stamped.clone()));
    assert_eq!(w.copy_of(&e, "alice"), None);
    assert!(
        matches!(w.entities[&e].replicas.get(&m("alice")), Some(ReplicaSlot::Personal { item_id, .. }) if item_id == &by_key)
    );
    let owner = |f: &str| w.entities[&e].replicas[&m(f)].replica().unwrap().ownership;
    assert_eq!(owner("reader"), Ownership::Created);
    assert_eq!(
        kinds(&plan),
        vec!["delete reader", "create bob"],
        "alice's own contact stays hers; bob gets a copy; the orphan goes: {plan}"
    );
    assert!(!w.touched.contains(&(m("alice"), by_key.clone())), "alice's contact is never written");
    assert!(plan.notices.iter().any(|n| matches!(n, Notice::KeptPersonal { item, .. } if item == &by_key)), "{plan}");
    assert!(
        plan.actions.iter().any(|a| matches!(a, Action::Delete { id, reason: Reason::Orphan, .. } if id == &orphan))
    );
    assert!(w.foreign.contains(&(m("reader"), own.clone())));
    assert_eq!(w.entities[&e].base.as_ref().unwrap().text("company"), None, "the hub's content stays the base");
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn match_key_skips_entities_that_already_have_a_copy() {
    let mut g = group();
    g.match_key = vec!["email1.address".into()];
    let (mut w, e, _) = synced(&g, "ada");
    // A second contact with the same address created by alice is a new entity, not a match.
    let dup = w.add("alice", contact("ada").with("company", "Other"), None);
    w.sync(&g);
    assert_eq!(w.entities.len(), 2);
    assert_eq!(w.copy_of(&e, "alice").map(|id| id == dup), Some(false));
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn orphan_duplicate_in_a_one_way_member_is_deleted_and_the_replica_kept() {
    let g = group();
    let (mut w, e, _) = synced(&g, "ada");
    let kept = w.copy_of(&e, "reader").unwrap();
    let dup = w.add("reader", contact("ada"), Some(OriginStamp::new(g.id.clone(), e.clone())));
    let plan = w.sync(&g);
    assert_eq!(plan.actions.len(), 1, "{plan}");
    assert!(matches!(&plan.actions[0], Action::Delete { id, reason: Reason::Orphan, .. } if id == &dup));
    assert_eq!(w.copy_of(&e, "reader"), Some(kept));
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn a_copy_moved_out_and_back_is_recognized_by_its_stamp() {
    let g = group();
    let (mut w, e, _) = synced(&g, "ada");
    let old = w.copy_of(&e, "alice").unwrap();
    let stored = w.folders[&m("alice")][&old].clone();
    w.delete("alice", &old);
    let new = w.add("alice", stored.item, stored.origin);
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "no deletion propagates, nothing is recreated: {plan}");
    assert_eq!(w.copy_of(&e, "alice"), Some(new));
    w.assert_converged();
}

#[test]
fn mass_delete_guard_stops_the_plan_and_an_admin_can_allow_it() {
    let g = group();
    let mut w = World::new(&g);
    w.other_copies = 0;
    w.initialized.extend(g.folders().cloned());
    let ids: Vec<ItemId> = (0..40).map(|i| w.add("hub", contact(&format!("c{i}")), None)).collect();
    w.sync(&g);
    for id in &ids[..11] {
        w.delete("hub", id);
    }
    let input = w.input(&g);
    match plan(&g, &input) {
        Err(Error::MassDelete { group, member, would_delete, total, limit }) => {
            assert_eq!(group, g.id);
            assert_eq!(member, m("reader"), "the first folder in group order that would lose too much");
            assert_eq!((would_delete, total, limit), (11, 40, 10));
        }
        other => panic!("expected the guard, got {other:?}"),
    }
    // At the limit the plan goes through.
    let mut at_limit = input.clone();
    for obs in &mut at_limit.observations {
        obs.changes.truncate(10);
    }
    assert!(plan(&g, &at_limit).is_ok());
    // Confirmed by an admin, the same plan goes through.
    w.pending.insert(m("hub"), input.observations[0].changes.clone());
    w.allow_mass_delete = true;
    let plan = w.sync(&g);
    assert_eq!(plan.actions.len(), 33);
    assert_eq!(w.entities.len(), 29);
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn a_version_bump_without_change_causes_no_traffic() {
    let g = group();
    let (mut w, e, hub_id) = synced(&g, "ada");
    w.touch("hub", &hub_id);
    let reader = w.copy_of(&e, "reader").unwrap();
    w.touch("reader", &reader);
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "{plan}");
    assert_eq!(plan.state.len(), 2, "the new versions are recorded: {:?}", plan.state);
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn an_interrupted_run_resumes_with_stale_copies() {
    let g = group();
    let (mut w, e, hub_id) = synced(&g, "ada");
    w.edit("hub", &hub_id, |i| i.set("company", "New Co"));
    let input = w.input(&g);
    let first = plan(&g, &input).unwrap();
    assert_eq!(first.actions.len(), 3);
    // Crash after the state was committed and one action ran.
    for write in &first.state {
        w.write(write.clone());
    }
    w.execute(&first.actions[0]);
    let second = w.sync(&g);
    assert_eq!(kinds(&second), vec!["update alice", "update bob"]);
    assert!(second.actions.iter().all(|a| matches!(a, Action::Update { reason: Reason::Stale, .. })));
    assert!(second.state.is_empty(), "nothing new to record: {:?}", second.state);
    assert_eq!(w.content_of(&e, "bob").unwrap().text("company"), Some("New Co"));
    w.assert_converged();
    w.assert_stable(&g);
}

#[test]
fn an_ignored_edit_stays_until_the_shared_item_changes() {
    let g = SyncGroup::new("contacts", "hub").with_member(Member::new(
        "reader",
        Direction::OneWay(OneWayPolicy { on_edit: LocalChangePolicy::Ignore, on_delete: LocalChangePolicy::Ignore }),
    ));
    let (mut w, e, hub_id) = synced(&g, "ada");
    let copy = w.copy_of(&e, "reader").unwrap();
    w.edit("reader", &copy, |i| i.set("nickname", "Countess"));
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "{plan}");
    w.assert_converged();
    w.assert_stable(&g);
    assert_eq!(w.content_of(&e, "reader").unwrap().text("nickname"), Some("Countess"));

    // The shared item changes: the member gets the new shared content.
    w.edit("hub", &hub_id, |i| i.set("company", "New Co"));
    let plan = w.sync(&g);
    assert_eq!(kinds(&plan), vec!["update reader"]);
    assert_eq!(w.content_of(&e, "reader").unwrap().text("nickname"), None);
    w.assert_converged();

    // Deleted under "ignore": the member opts out and receives nothing more.
    let copy = w.copy_of(&e, "reader").unwrap();
    w.delete("reader", &copy);
    w.sync(&g);
    assert_eq!(w.entities[&e].replicas[&m("reader")], ReplicaSlot::OptedOut);
    w.edit("hub", &hub_id, |i| i.set("company", "Newer Co"));
    assert!(w.sync(&g).actions.is_empty());
    w.assert_stable(&g);
    // The hub deletes the entity: nothing to delete in the member, the entity goes.
    w.delete("hub", &hub_id);
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty());
    assert!(w.entities.is_empty(), "{:?}", plan.state);
}

#[test]
fn plans_are_deterministic_whatever_the_observation_order() {
    let g = group();
    let mut w = World::new(&g);
    w.initialized.extend(g.folders().cloned());
    for i in 0..5 {
        w.add("hub", contact(&format!("h{i}")), None);
        w.add("alice", contact(&format!("a{i}")), None);
        w.add("bob", contact(&format!("b{i}")), None);
    }
    let input = w.input(&g);
    let mut reversed = input.clone();
    reversed.observations.reverse();
    let a = plan(&g, &input).unwrap();
    let b = plan(&g, &reversed).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
    let folder_pos = |m: &MemberId| g.folders().position(|f| f == m).unwrap();
    let keys: Vec<(usize, EntityId)> = a.actions.iter().map(|x| (folder_pos(x.member()), x.entity().clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "actions by folder, then entity");
    assert_eq!(a.actions.len(), 15 * 3);
}

#[test]
fn tokens_are_stored_with_the_plan_and_unknown_folders_are_refused() {
    let g = group();
    let mut input = PlanInput {
        observations: vec![FolderObservation {
            member: m("alice"),
            changes: vec![],
            token: Some(SyncToken::new("t1")),
        }],
        ..PlanInput::default()
    };
    let p = plan(&g, &input).unwrap();
    assert_eq!(p.state, vec![StateWrite::SetToken { member: m("alice"), token: Some(SyncToken::new("t1")) }]);
    assert!(p.actions.is_empty());
    input.observations[0].member = m("mallory");
    assert!(matches!(plan(&g, &input), Err(Error::Config { .. })));
    let bad = SyncGroup::new("", "hub");
    assert!(matches!(plan(&bad, &PlanInput::default()), Err(Error::Config { .. })));
}

#[test]
fn the_empty_plan_prints_as_nothing_to_write() {
    let g = group();
    let (mut w, _, hub_id) = synced(&g, "ada");
    assert_eq!(plan(&g, &w.input(&g)).unwrap().to_string(), "nothing to write\n");
    w.delete("hub", &hub_id);
    let text = plan(&g, &w.input(&g)).unwrap().to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.starts_with("- delete item") && l.ends_with("deleted in hub)")), "{text}");
}

#[test]
fn after_a_state_loss_copies_of_a_member_adopted_item_match_again() {
    let mut g = group();
    g.match_key = vec!["email1.address".into()];
    let mut w = World::new(&g);
    w.initialized.extend(g.folders().cloned());
    let original = w.add("alice", contact("grace"), None);
    w.sync(&g);
    let e = w.only_entity();
    assert_eq!(e, EntityId::derive(&g.id, &m("alice"), &original));
    let copies: Vec<ItemId> = ["hub", "reader", "bob"].iter().map(|f| w.copy_of(&e, f).unwrap()).collect();

    // The state is lost: every folder is observed from scratch.
    w.entities.clear();
    w.initialized.clear();
    for (name, folder) in w.folders.clone() {
        for id in folder.keys() {
            w.edit(name.as_str(), id, |_| {});
        }
    }
    let plan = w.sync(&g);
    assert!(plan.actions.is_empty(), "the hub copy keeps its stamp's entity, so every copy matches: {plan}");
    assert_eq!(w.only_entity(), e);
    let now: Vec<ItemId> = ["hub", "reader", "bob"].iter().map(|f| w.copy_of(&e, f).unwrap()).collect();
    assert_eq!(now, copies);
    assert_eq!(w.copy_of(&e, "alice"), Some(original), "matched by key");
    w.assert_converged();
    w.assert_stable(&g);
}

/// The hub changes the company; the update of alice's copy fails, so state knows her copy is
/// stale; then alice's user adds a mobile number to that stale copy.
fn edit_on_a_stale_copy(policy: ConflictPolicy) -> (World, EntityId, Plan) {
    let mut g = group();
    g.conflict_policy = policy;
    let (mut w, e, hub_id) = synced(&g, "ada");
    w.edit("hub", &hub_id, |i| i.set("company", "New Co"));
    let first = plan(&g, &w.input(&g)).unwrap();
    for write in &first.state {
        w.write(write.clone());
    }
    for action in first.actions.iter().filter(|a| a.member() != &m("alice")) {
        w.execute(action);
    }
    let alice = w.copy_of(&e, "alice").unwrap();
    w.edit("alice", &alice, |i| i.set("phone.mobile", "+41 2"));
    let plan = w.sync(&g);
    w.assert_converged();
    w.assert_stable(&g);
    (w, e, plan)
}

#[test]
fn an_edit_of_a_stale_copy_conflicts_instead_of_undoing_the_change_it_missed() {
    let (w, e, plan) = edit_on_a_stale_copy(ConflictPolicy::HubWins);
    let base = w.entities[&e].base.clone().unwrap();
    assert_eq!(base.text("company"), Some("New Co"), "the hub's change is not undone");
    let fields: Vec<(&str, &str, Option<String>)> = plan
        .conflicts
        .iter()
        .map(|c| (c.field.as_str(), c.winner.member.as_str(), c.losers[0].value.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(
        fields,
        vec![("company", "hub", None), ("phone.mobile", "hub", Some("\"+41 2\"".into()))],
        "both differences are recorded, alice's number among them"
    );
    assert_eq!(w.content_of(&e, "alice").unwrap().canonical(), base);

    // With alice first, her copy wins both fields, and the hub's company is what is recorded.
    let (w, e, plan) = edit_on_a_stale_copy(ConflictPolicy::MemberPriority(vec![m("alice")]));
    let base = w.entities[&e].base.clone().unwrap();
    assert_eq!((base.text("company"), base.text("phone.mobile")), (None, Some("+41 2")));
    let company = plan.conflicts.iter().find(|c| c.field == "company").unwrap();
    assert_eq!(company.losers[0].value.as_ref().and_then(|v| v.as_text()), Some("New Co"));
}
