//! Planning cost of a large group: 100,000 entities in a hub and 10 members, 1% of them changed
//! since the last sync. The planner's input holds only the touched entities (the engine loads
//! what the observations name), so the cost follows what changed, not the folder size.
//!
//! Run with `cargo bench -p exchange-sync-core --bench planner`.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_main};
use exchange_sync_core::state::Ownership;
use exchange_sync_core::{
    Body, Direction, EntityId, EntityRecord, FetchedItem, FolderObservation, Item, ItemId, ItemKind, Member, MemberId,
    Observed, OriginStamp, PlanInput, ReplicaRecord, ReplicaSlot, SyncGroup, Version, field, plan,
};

/// Entities in the group.
const ENTITIES: usize = 100_000;
/// Share of entities changed since the last sync, in percent.
const CHANGED_PERCENT: usize = 1;
/// Member folders besides the hub; half of them two-way, half one-way.
const MEMBERS: usize = 10;

fn group() -> SyncGroup {
    let mut g = SyncGroup::new("bench", "hub");
    for i in 0..MEMBERS {
        let direction = if i % 2 == 0 { Direction::two_way() } else { Direction::one_way() };
        g = g.with_member(Member::new(format!("member{i:02}"), direction));
    }
    g.match_key = vec![field::EMAIL1.into()];
    g
}

/// A contact with the fields a typical address book entry carries.
fn contact(n: usize) -> Item {
    let mut item = Item::new(ItemKind::Contact)
        .with(field::GIVEN_NAME, format!("Given{n}"))
        .with(field::SURNAME, format!("Surname{n}"))
        .with(field::DISPLAY_NAME, format!("Given{n} Surname{n}"))
        .with(field::EMAIL1, format!("person{n}@example.test"))
        .with(field::COMPANY, "Contoso")
        .with(field::JOB_TITLE, "Engineer")
        .with(field::PHONE_BUSINESS, format!("+41 44 {n:07}"))
        .with(field::PHONE_MOBILE, format!("+41 79 {n:07}"))
        .with(&field::address("business", "city"), "Zürich")
        .with(&field::address("business", "street"), "Bahnhofstrasse 1");
    item.body = Some(Body::text(format!("Notes about person {n}.\nMet at the conference.")));
    item.categories.insert("Customers".into());
    item
}

/// The state of the touched entities and what the folders report: entity `n` changed in folder
/// `n % 11` (the hub, a two-way or a one-way member).
fn input(group: &SyncGroup) -> PlanInput {
    let folders: Vec<MemberId> = group.folders().cloned().collect();
    let changed = ENTITIES * CHANGED_PERCENT / 100;
    let step = ENTITIES / changed;
    let mut entities = BTreeMap::new();
    let mut observations: BTreeMap<MemberId, Vec<Observed>> = BTreeMap::new();
    for k in 0..changed {
        let n = k * step;
        let id = EntityId::new(format!("{n:032x}"));
        let base = contact(n).canonical();
        let hash = base.content_hash();
        let mut replicas = BTreeMap::new();
        for (f, member) in folders.iter().enumerate() {
            let record = ReplicaRecord {
                item_id: ItemId::new(format!("{member}-{n}")),
                version: Version::new("v1"),
                hash,
                ownership: if f == 0 { Ownership::Adopted } else { Ownership::Created },
                ignored_base: None,
            };
            replicas.insert(member.clone(), ReplicaSlot::Present(record));
        }
        let folder = &folders[k % folders.len()];
        let item =
            base.clone().with(field::JOB_TITLE, "Architect").with(field::SERVER_LAST_MODIFIED, "2026-03-01T10:00:00Z");
        let fetched = FetchedItem {
            id: ItemId::new(format!("{folder}-{n}")),
            version: Version::new("v2"),
            item,
            origin: Some(OriginStamp::new(group.id.clone(), id.clone())),
        };
        observations.entry(folder.clone()).or_default().push(Observed::Present(fetched));
        entities.insert(id.clone(), EntityRecord { replicas, ..EntityRecord::new(id, Some(base), None) });
    }
    PlanInput {
        entities,
        match_keys: BTreeMap::new(),
        observations: observations
            .into_iter()
            .map(|(member, changes)| FolderObservation { member, changes, token: None })
            .collect(),
        folder_sizes: folders.iter().map(|f| (f.clone(), ENTITIES)).collect(),
        allow_mass_delete: false,
        now: chrono::Utc::now(),
        initialized: folders.iter().cloned().collect(),
    }
}

fn bench_plan(c: &mut Criterion) {
    let group = group();
    let input = input(&group);
    // Sanity: every change plans writes (authoritative: 10 copies; one-way: 1 revert).
    let planned = plan(&group, &input).map(|p| p.actions.len()).unwrap_or(0);
    assert!(planned > ENTITIES * CHANGED_PERCENT / 100, "the plan does the work: {planned} actions");
    c.bench_function("plan 100k entities, 1% changed, 10 members", |b| {
        // The plan is dropped outside the measurement: the engine keeps it until it has been
        // carried out, so freeing it is not part of planning.
        b.iter_with_large_drop(|| plan(&group, &input))
    });
}

/// Criterion's generated group function carries no documentation of its own.
mod entry {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench_plan);
}

criterion_main!(entry::benches);
