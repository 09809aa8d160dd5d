//! Measures the state stores with a group of 100,000 entities: how fast writes commit (in large
//! transactions, as after an initial sync, and one write per transaction, as the executor commits
//! each action), how fast the engine's lookups answer, and what a fan-out's transactions (as the
//! executor commits them, window by window) cost per copy.
//!
//! ```text
//! cargo run --release -p exchange-sync-core --example state_throughput [ENTITIES]
//! ```
//!
//! A measurement, not a test: figures depend on the machine and its load.

use std::error::Error;
use std::time::Instant;

use exchange_sync_core::state::memory::MemoryStore;
use exchange_sync_core::state::sqlite::SqliteStore;
use exchange_sync_core::state::{Ownership, PendingCreate, ReplicaRecord, ReplicaSlot, StateStore, StateWrite};
use exchange_sync_core::{EntityId, GroupId, Item, ItemId, ItemKind, MemberId, OriginStamp, Version};

fn contact(i: usize) -> Item {
    Item::new(ItemKind::Contact)
        .with("name.given", format!("Given{i}"))
        .with("name.surname", format!("Surname{i}"))
        .with("email1.address", format!("person{i}@contoso.test"))
        .with("phone.mobile", format!("+41 79 {i:07}"))
        .with("company.name", "Contoso Ltd")
}

/// An item id as long as Exchange's.
fn item_id(folder: &str, i: usize) -> ItemId {
    ItemId::new(format!("AAMkAGI2{folder}TG93AAAAAABGAAAAAAD4mYkHd0Y5RZ8HTAAABwA{i:012}AAA="))
}

fn replica(folder: &str, i: usize, item: &Item) -> ReplicaSlot {
    ReplicaSlot::Present(ReplicaRecord {
        item_id: item_id(folder, i),
        version: Version::new(format!("CQAAABYAAAD4mYkHd0Y5RZ8HTAAA{i:08}")),
        hash: item.content_hash(),
        ownership: Ownership::Created,
        ignored_base: None,
    })
}

fn entity_id(i: usize) -> EntityId {
    EntityId::new(format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
}

fn report(store: &str, what: &str, count: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{store:>6}  {what:<58} {:>9.1} ms  {:>10.0} /s", secs * 1e3, count as f64 / secs);
}

async fn measure(name: &str, store: &impl StateStore, n: usize) -> Result<(), Box<dyn Error>> {
    let group = GroupId::new("contacts");
    let hub = MemberId::new("hub");
    let alice = MemberId::new("alice@contoso.test");
    let bob = MemberId::new("bob@contoso.test");
    let items: Vec<Item> = (0..n).map(contact).collect();

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut writes = Vec::with_capacity(2 * chunk.len());
        for &i in chunk {
            writes.push(StateWrite::PutEntity {
                id: entity_id(i),
                base: Some(items[i].clone()),
                match_key: Some(format!("person{i}@contoso.test")),
            });
            writes.push(StateWrite::PutReplica {
                entity: entity_id(i),
                member: hub.clone(),
                slot: replica("hub", i, &items[i]),
            });
        }
        store.apply(&group, writes.into()).await?;
    }
    report(name, &format!("{n} entities + hub replicas, transactions of 1,000"), n, started);

    let started = Instant::now();
    let writes: Vec<_> = (0..n)
        .map(|i| StateWrite::PutReplica {
            entity: entity_id(i),
            member: alice.clone(),
            slot: replica("alice", i, &items[i]),
        })
        .collect();
    store.apply(&group, writes.into()).await?;
    report(name, &format!("{n} replicas in one transaction"), n, started);

    let single = n / 10;
    let started = Instant::now();
    for (i, item) in items.iter().enumerate().take(single) {
        let write = StateWrite::PutReplica { entity: entity_id(i), member: bob.clone(), slot: replica("bob", i, item) };
        store.apply(&group, vec![write].into()).await?;
    }
    report(name, &format!("{single} transactions of one replica"), single, started);

    let started = Instant::now();
    let known = store.known_items(&group, &alice).await?;
    report(name, &format!("known_items of a folder of {}", known.len()), known.len(), started);

    let ids: Vec<ItemId> = (0..1000).map(|i| item_id("alice", (i * 97) % n)).collect();
    let started = Instant::now();
    let found = store.lookup_items(&group, &alice, &ids).await?;
    report(name, &format!("lookup_items of 1,000 ids ({} found)", found.len()), ids.len(), started);

    let entity_ids: Vec<EntityId> = (0..1000).map(|i| entity_id((i * 97) % n)).collect();
    let started = Instant::now();
    let found = store.entities(&group, &entity_ids).await?;
    report(name, &format!("entities of 1,000 ids ({} found)", found.len()), entity_ids.len(), started);

    let keys: Vec<String> = (0..1000).map(|i| format!("person{}@contoso.test", (i * 97) % n)).collect();
    let started = Instant::now();
    let found = store.entities_by_match_key(&group, &keys).await?;
    report(name, &format!("entities_by_match_key of 1,000 keys ({} found)", found.len()), keys.len(), started);

    let started = Instant::now();
    let count = store.replica_count(&group, &alice).await?;
    report(name, &format!("replica_count ({count})"), 1, started);

    let started = Instant::now();
    let (mut after, mut total) = (None, 0);
    while let Some(last) =
        store.entity_ids(&group, after.as_ref(), 1000).await?.into_iter().inspect(|_| total += 1).last()
    {
        after = Some(last);
    }
    report(name, &format!("entity_ids: all {total} in pages of 1,000"), total, started);

    fan_out(name, store, &group, &items, 10).await
}

/// The transactions of a fan-out as the executor commits them (see `executor::CREATE_WINDOW`):
/// per window of 800 copies in one folder, the intents of the next window with the outcomes
/// (replica, intent cleared) of the previous one. Then the same copies' parts alone, in fresh
/// folders: what each kind of write costs per copy.
async fn fan_out(
    name: &str,
    store: &impl StateStore,
    group: &GroupId,
    items: &[Item],
    folders: usize,
) -> Result<(), Box<dyn Error>> {
    const WINDOW: usize = 800;
    let intent = |member: &MemberId, i: usize| {
        StateWrite::PutPending(PendingCreate {
            entity: entity_id(i),
            member: member.clone(),
            origin: OriginStamp::new(group.clone(), entity_id(i)),
            recorded_at: chrono::Utc::now(),
        })
    };
    let copies = folders * items.len();
    let hashes: Vec<_> = items.iter().map(Item::content_hash).collect();
    // The planner lists a folder's actions in entity order.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| entity_id(i));
    // Servers number new items in creation order (Exchange's ids end with a global counter).
    let mut rank = vec![0; items.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i] = position;
    }
    for (what, parts) in [("intents and outcomes", 3), ("replicas alone", 1), ("intents set and cleared alone", 2)] {
        // The transactions are built before the clock starts: only the store is measured.
        let mut transactions = Vec::new();
        for f in 0..folders {
            let member = MemberId::new(format!("{}-{f}@contoso.test", what.len() + parts));
            let windows: Vec<Vec<usize>> = order.chunks(WINDOW).map(<[usize]>::to_vec).collect();
            let mut previous: Option<&Vec<usize>> = None;
            for window in windows.iter().chain(std::iter::once(&Vec::new())) {
                let mut writes = Vec::new();
                if parts != 1 {
                    writes.extend(window.iter().map(|&i| intent(&member, i)));
                }
                for &i in previous.into_iter().flatten() {
                    let put = StateWrite::PutReplica {
                        entity: entity_id(i),
                        member: member.clone(),
                        slot: ReplicaSlot::Present(ReplicaRecord {
                            item_id: item_id(member.as_str(), rank[i]),
                            version: Version::new(format!("CQAAABYAAAD4mYkHd0Y5RZ8HTAAA{i:08}")),
                            hash: hashes[i],
                            ownership: Ownership::Created,
                            ignored_base: None,
                        }),
                    };
                    let clear = StateWrite::RemovePending { entity: entity_id(i), member: member.clone() };
                    match parts {
                        1 => writes.push(put),
                        2 => writes.push(clear),
                        _ => writes.extend([put, clear]),
                    }
                }
                if !writes.is_empty() {
                    transactions.push(writes);
                }
                previous = Some(window);
            }
        }
        let started = Instant::now();
        for writes in transactions {
            store.apply(group, writes.into()).await?;
        }
        report(name, &format!("fan-out to {folders} folders: {what}"), copies, started);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    measure("memory", &MemoryStore::new(), n).await?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).await?;
    measure("sqlite", &store, n).await?;
    drop(store);
    println!("sqlite  database file: {:.1} MB", std::fs::metadata(&path)?.len() as f64 / 1e6);
    Ok(())
}
