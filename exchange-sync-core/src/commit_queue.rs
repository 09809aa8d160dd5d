//! Group commit of the small state transactions folders write side by side.
//!
//! An incremental pass over a group of thousands of mailboxes updates a few copies in each
//! folder, and each folder's batch records its outcomes in a transaction of its own: thousands
//! of commits of a few dozen rows, each a round trip to PostgreSQL (and a flush of its log on a
//! server that syncs every commit) or a turn of SQLite's single writer. The folders run several
//! at a time, so their commits arrive together: a [`CommitQueue`] writes what is waiting when a
//! commit's turn comes in one transaction, and answers each folder when that transaction is
//! durable, as a commit of its own would have. A folder therefore never goes on before its
//! outcomes are in the state, exactly as before; only the number of transactions changes.
//!
//! When a combined transaction fails, each folder's writes are applied again on their own, so
//! that a refused write fails its own folder and no other (the store's transactions change
//! nothing when they fail).

use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::id::GroupId;
use crate::state::{StateStore, StateTransaction, StateWrite};

/// Writes waiting for their turn, with the folder that waits for them.
struct Waiting {
    writes: Vec<StateWrite>,
    answer: oneshot::Sender<Result<()>>,
}

/// Combines the commits of concurrently running folders of one group into few transactions.
pub(crate) struct CommitQueue<'a> {
    store: &'a dyn StateStore,
    group: &'a GroupId,
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a transaction is being written: commits arriving meanwhile wait here and are
    /// written together by the next holder.
    turn: tokio::sync::Mutex<()>,
}

impl<'a> CommitQueue<'a> {
    /// A queue writing to `store` for `group`.
    pub(crate) fn new(store: &'a dyn StateStore, group: &'a GroupId) -> Self {
        CommitQueue { store, group, waiting: Mutex::new(Vec::new()), turn: tokio::sync::Mutex::new(()) }
    }

    /// Commits `writes`, together with whatever else is waiting; answers when they are durable
    /// (or failed).
    pub(crate) async fn commit(&self, writes: Vec<StateWrite>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (answer, mut answered) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).push(Waiting { writes, answer });
        let _turn = self.turn.lock().await;
        // A previous holder may have written these writes with its own.
        if let Ok(result) = answered.try_recv() {
            return result;
        }
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        self.write(waiting).await;
        answered.await.unwrap_or_else(|_| {
            Err(Error::State {
                message: format!("group {}: a state commit was dropped unanswered", self.group),
                source: None,
            })
        })
    }

    /// Writes everything waiting in one transaction, or each part on its own when that fails.
    async fn write(&self, mut waiting: Vec<Waiting>) {
        if waiting.len() == 1 {
            if let Some(Waiting { writes, answer }) = waiting.pop() {
                let _ = answer.send(self.store.apply(self.group, StateTransaction::from(writes)).await);
            }
            return;
        }
        let combined: Vec<StateWrite> = waiting.iter().flat_map(|w| w.writes.iter().cloned()).collect();
        tracing::trace!(commits = waiting.len(), writes = combined.len(), "state commits written together");
        match self.store.apply(self.group, StateTransaction::from(combined)).await {
            Ok(()) => {
                for w in waiting {
                    let _ = w.answer.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::debug!(commits = waiting.len(), error = %error, "combined state commit failed; writing each on its own");
                for Waiting { writes, answer } in waiting {
                    let _ = answer.send(self.store.apply(self.group, StateTransaction::from(writes)).await);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::id::{EntityId, ItemId, MemberId, SyncToken, Version};
    use crate::state::memory::MemoryStore;
    use crate::state::{
        AdminRequest, ConflictRecord, EntityRecord, KnownItem, MemberStatus, Ownership, PendingCreate, PostedRequest,
        ReplicaRecord, ReplicaSlot,
    };

    /// The memory store, counting transactions and holding each for a moment (as a database
    /// round trip does), so that commits arriving meanwhile queue up.
    #[derive(Default)]
    struct Counting {
        inner: MemoryStore,
        transactions: AtomicUsize,
    }

    #[async_trait]
    impl StateStore for Counting {
        async fn apply(&self, group: &GroupId, tx: StateTransaction) -> Result<()> {
            self.transactions.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.inner.apply(group, tx).await
        }
        async fn entities(&self, group: &GroupId, ids: &[EntityId]) -> Result<Vec<EntityRecord>> {
            self.inner.entities(group, ids).await
        }
        async fn slots_in(
            &self,
            group: &GroupId,
            member: &MemberId,
            ids: &[EntityId],
        ) -> Result<BTreeMap<EntityId, ReplicaSlot>> {
            self.inner.slots_in(group, member, ids).await
        }
        async fn entity_ids(&self, group: &GroupId, after: Option<&EntityId>, limit: usize) -> Result<Vec<EntityId>> {
            self.inner.entity_ids(group, after, limit).await
        }
        async fn entities_by_match_key(&self, group: &GroupId, keys: &[String]) -> Result<Vec<(String, EntityId)>> {
            self.inner.entities_by_match_key(group, keys).await
        }
        async fn lookup_items(&self, group: &GroupId, member: &MemberId, ids: &[ItemId]) -> Result<Vec<KnownItem>> {
            self.inner.lookup_items(group, member, ids).await
        }
        async fn known_items(&self, group: &GroupId, member: &MemberId) -> Result<Vec<KnownItem>> {
            self.inner.known_items(group, member).await
        }
        async fn members(&self, group: &GroupId) -> Result<Vec<MemberId>> {
            self.inner.members(group).await
        }
        async fn replica_count(&self, group: &GroupId, member: &MemberId) -> Result<usize> {
            self.inner.replica_count(group, member).await
        }
        async fn token(&self, group: &GroupId, member: &MemberId) -> Result<Option<SyncToken>> {
            self.inner.token(group, member).await
        }
        async fn member_status(&self, group: &GroupId, member: &MemberId) -> Result<MemberStatus> {
            self.inner.member_status(group, member).await
        }
        async fn pending_creates(&self, group: &GroupId) -> Result<Vec<PendingCreate>> {
            self.inner.pending_creates(group).await
        }
        async fn conflicts(&self, group: &GroupId) -> Result<Vec<ConflictRecord>> {
            self.inner.conflicts(group).await
        }
        async fn groups(&self) -> Result<Vec<GroupId>> {
            self.inner.groups().await
        }
        async fn post_request(&self, group: &GroupId, request: AdminRequest) -> Result<u64> {
            self.inner.post_request(group, request).await
        }
        async fn requests(&self, group: &GroupId) -> Result<Vec<PostedRequest>> {
            self.inner.requests(group).await
        }
        async fn record(&self, group: &GroupId, key: &str) -> Result<Option<String>> {
            self.inner.record(group, key).await
        }
    }

    fn entity(i: usize) -> StateWrite {
        StateWrite::PutEntity { id: EntityId::new(format!("e{i}")), base: None, match_key: None }
    }

    /// A replica of an entity no transaction wrote: the store refuses it.
    fn replica_of_unknown_entity() -> StateWrite {
        StateWrite::PutReplica {
            entity: EntityId::new("unknown"),
            member: MemberId::new("m"),
            slot: ReplicaSlot::Present(ReplicaRecord {
                item_id: ItemId::new("i"),
                version: Version::new("v"),
                hash: crate::item::Item::new(crate::item::ItemKind::Contact).content_hash(),
                ownership: Ownership::Created,
                ignored_base: None,
            }),
        }
    }

    async fn known(store: &Counting, group: &GroupId, n: usize) -> usize {
        let ids: Vec<EntityId> = (0..n).map(|i| EntityId::new(format!("e{i}"))).collect();
        store.entities(group, &ids).await.unwrap().len()
    }

    #[tokio::test]
    async fn commits_arriving_together_share_one_transaction() {
        let store = Counting::default();
        let group = GroupId::new("g");
        let queue = CommitQueue::new(&store, &group);
        // Polled in order: the first commit takes its turn at once, the seven others arrive
        // while its transaction is written and go together in the next.
        let results = futures::future::join_all((0..8).map(|i| queue.commit(vec![entity(i)]))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(store.transactions.load(Ordering::SeqCst), 2);
        assert_eq!(known(&store, &group, 8).await, 8);
    }

    #[tokio::test]
    async fn a_refused_write_fails_its_own_commit_and_no_other() {
        let store = Counting::default();
        let group = GroupId::new("g");
        let queue = CommitQueue::new(&store, &group);
        let commits =
            vec![vec![entity(0)], vec![entity(1)], vec![entity(2), replica_of_unknown_entity()], vec![entity(3)]];
        let results = futures::future::join_all(commits.into_iter().map(|w| queue.commit(w))).await;
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok(), "{results:?}");
        let refused = results[2].as_ref().unwrap_err().to_string();
        assert!(refused.contains("unknown"), "{refused}");
        // The refused commit's own entity went with it; the others' are there.
        let ids: Vec<EntityId> = (0..4).map(|i| EntityId::new(format!("e{i}"))).collect();
        let mut there: Vec<String> =
            store.entities(&group, &ids).await.unwrap().into_iter().map(|r| r.id.to_string()).collect();
        there.sort();
        assert_eq!(there, ["e0", "e1", "e3"]);
    }
}
