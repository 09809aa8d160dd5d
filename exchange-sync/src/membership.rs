//! Group membership: listed members plus those of distribution groups, joiners and leavers.
//!
//! Mailbox addresses are compared without regard to case everywhere, as Exchange compares them:
//! an address that a distribution group spells `Alice@Contoso.test` today and `alice@contoso.test`
//! tomorrow is one member, not a leaver and a joiner. Members from distribution groups have their
//! address in lower case as id. A leaver's copies are handled by the engine's executor
//! ([`exchange_sync_core::executor::Executor::leave`]).

use std::collections::BTreeSet;

use exchange_sync_core::MemberId;

use crate::config::{GroupConfig, MemberConfig, member_id};
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
            if listed.contains(&key) || !seen.insert(key.clone()) {
                continue;
            }
            let mut member = source.template.clone();
            member.id = key;
            member.mailbox = address;
            out.push(member);
        }
    }
    Ok(out)
}

/// Members in `before` but not in `after` (by id, without regard to case).
pub fn leavers(before: &[MemberConfig], after: &[MemberConfig]) -> Vec<MemberConfig> {
    let now: BTreeSet<String> = after.iter().map(|m| member_id(&m.id).to_lowercase()).collect();
    before.iter().filter(|m| !now.contains(&member_id(&m.id).to_lowercase())).cloned().collect()
}

/// Folders the group's state knows (`known`) that are neither the hub nor a current member: members
/// removed from the configuration while the service was stopped. Ids are mailbox addresses unless
/// configured otherwise, so a leaver is described by its id as mailbox.
pub fn departed(known: &[MemberId], hub: &str, current: &[MemberConfig]) -> Vec<MemberConfig> {
    let current: BTreeSet<String> = current.iter().map(|m| member_id(&m.id).to_lowercase()).collect();
    known
        .iter()
        .filter(|k| k.as_str() != hub && !current.contains(&member_id(k.as_str()).to_lowercase()))
        .map(|k| {
            // The id as state keys it (a mailbox address keeps its spelling as mailbox).
            let mut m = MemberConfig::one_way(k.as_str());
            m.id = k.to_string();
            m
        })
        .collect()
}

/// Members in `after` but not in `before` (by id, without regard to case).
pub fn joiners(before: &[MemberConfig], after: &[MemberConfig]) -> Vec<MemberConfig> {
    leavers(after, before)
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

    #[test]
    fn addresses_are_compared_without_regard_to_case() {
        let before = vec![MemberConfig::one_way("Alice@X.test")];
        let after = vec![MemberConfig::one_way("alice@x.test")];
        assert!(leavers(&before, &after).is_empty());
        assert!(joiners(&before, &after).is_empty());
        assert_eq!(before[0].id, "alice@x.test", "an id taken from the address is in lower case");
        let known = vec![MemberId::new("alice@x.test"), MemberId::new("hub")];
        let current = vec![MemberConfig { id: "Alice@X.test".into(), ..MemberConfig::one_way("Alice@X.test") }];
        assert!(departed(&known, "hub", &current).is_empty());
    }
}
