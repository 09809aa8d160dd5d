//! Group membership: listed members plus those of distribution groups, and what happens when a
//! member leaves.

use std::collections::BTreeSet;
use std::sync::Arc;

use exchange_sync_core::state::{Ownership, ReplicaSlot};
use exchange_sync_core::{
    Connector, ErrorKind, GroupId, ItemDelete, ItemId, MemberId, StateStore, StateTransaction, StateWrite,
};

use crate::config::{GroupConfig, MemberConfig};
use crate::error::Result;
use crate::folders::FolderProvider;

/// The members of a group taken from its distribution groups, in a stable order. Listed members
/// win over expanded ones with the same mailbox.
pub async fn expand(folders: &dyn FolderProvider, group: &GroupConfig) -> Result<Vec<MemberConfig>> {
    let listed: BTreeSet<String> = group.members.iter().map(|m| m.mailbox.to_lowercase()).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for source in &group.member_sources {
        let mut addresses = folders.expand_distribution_group(group, &source.distribution_group).await?;
        addresses.sort();
        for address in addresses {
            let key = address.to_lowercase();
            if listed.contains(&key) || !seen.insert(key) {
                continue;
            }
            let mut member = source.template.clone();
            member.id = address.clone();
            member.mailbox = address;
            out.push(member);
        }
    }
    Ok(out)
}

/// Members in `before` but not in `after` (by id).
pub fn leavers(before: &[MemberConfig], after: &[MemberConfig]) -> Vec<MemberConfig> {
    let now: BTreeSet<&str> = after.iter().map(|m| m.id.as_str()).collect();
    before.iter().filter(|m| !now.contains(m.id.as_str())).cloned().collect()
}

/// Folders the group's state knows (`known`) that are neither the hub nor a current member: members
/// removed from the configuration while the service was stopped. Ids are mailbox addresses unless
/// configured otherwise, so a leaver is described by its id as mailbox.
pub fn departed(known: &[MemberId], hub: &str, current: &[MemberConfig]) -> Vec<MemberConfig> {
    let current: BTreeSet<&str> = current.iter().map(|m| m.id.as_str()).collect();
    known
        .iter()
        .filter(|k| k.as_str() != hub && !current.contains(k.as_str()))
        .map(|k| MemberConfig::one_way(k.as_str()))
        .collect()
}

/// Members in `after` but not in `before` (by id).
pub fn joiners(before: &[MemberConfig], after: &[MemberConfig]) -> Vec<MemberConfig> {
    leavers(after, before)
}

/// The copies the group created in a member's folder: what leaving under the remove policy deletes.
pub async fn created_copies(store: &dyn StateStore, group: &GroupId, member: &MemberId) -> Result<Vec<ItemId>> {
    let entities: Vec<_> = store.known_items(group, member).await?.into_iter().filter_map(|k| k.entity).collect();
    Ok(store
        .entities(group, &entities)
        .await?
        .into_iter()
        .filter_map(|e| match e.replicas.get(member) {
            Some(ReplicaSlot::Present(r)) if r.ownership == Ownership::Created => Some(r.item_id.clone()),
            _ => None,
        })
        .collect())
}

/// Removes a leaving member from the group's state; with `remove_copies`, first deletes every
/// copy the group created in the member's folder. Items the group did not create stay: the user's
/// own, and those that joined the group from that folder (adopted), since they were the user's
/// before (DESIGN rule 6). Answers how many copies were deleted. On failure nothing is forgotten,
/// so the caller can try again.
pub async fn leave(
    store: &dyn StateStore,
    group: &GroupId,
    member: &MemberId,
    connector: Option<&Arc<dyn Connector>>,
    remove_copies: bool,
) -> Result<usize> {
    let mut deleted = 0;
    if remove_copies && let Some(connector) = connector {
        let ours = created_copies(store, group, member).await?;
        let batch = connector.capabilities().max_batch.max(1);
        for chunk in ours.chunks(batch) {
            let deletes: Vec<ItemDelete> =
                chunk.iter().map(|id| ItemDelete { id: id.clone(), expected: None }).collect();
            for result in connector.delete(&deletes).await? {
                match result {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    store.apply(group, StateTransaction::from(vec![StateWrite::RemoveMember { member: member.clone() }])).await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joiners_and_leavers_by_id() {
        let a = MemberConfig::one_way("a@x.test");
        let b = MemberConfig::one_way("b@x.test");
        let c = MemberConfig::one_way("c@x.test");
        let before = vec![a.clone(), b.clone()];
        let after = vec![b, c.clone()];
        assert_eq!(leavers(&before, &after), vec![a]);
        assert_eq!(joiners(&before, &after), vec![c]);
    }

    #[test]
    fn departed_are_known_folders_neither_hub_nor_member() {
        let known: Vec<MemberId> = ["a@x.test", "b@x.test", "hub"].into_iter().map(MemberId::new).collect();
        let current = vec![MemberConfig::one_way("b@x.test"), MemberConfig::two_way("c@x.test")];
        let gone = departed(&known, "hub", &current);
        assert_eq!(gone.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["a@x.test"]);
        assert_eq!(gone[0].mailbox, "a@x.test");
    }
}
