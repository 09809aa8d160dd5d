//! Identifiers. Each is a distinct type so that an item id of one mailbox cannot be passed where a
//! group or entity id is expected.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cloning is cheap (the string is shared): a plan names the same entity, member and
        /// group in every action, and a fan-out to many mailboxes clones them millions of times.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The string form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

string_id!(
    /// Names a sync group; chosen by the admin, stable for the life of the group (it is part of
    /// every origin stamp the group writes).
    GroupId
);
string_id!(
    /// Names one folder of a group (the hub or a member), e.g. `hub` or `alice@contoso.test`.
    /// Stable for the life of the membership: state is keyed by it.
    MemberId
);
string_id!(
    /// The logical item a group keeps in sync, the same in every folder of the group.
    EntityId
);
string_id!(
    /// A server's id of one item in one folder. Opaque; only meaningful to the connector that
    /// produced it (EWS item ids are per mailbox and change when an item moves).
    ItemId
);
string_id!(
    /// A server's optimistic-concurrency token for one item (the EWS ChangeKey). It changes on
    /// every write, but may also change without any content change.
    Version
);
string_id!(
    /// An opaque incremental-sync position (the EWS SyncState).
    SyncToken
);

impl EntityId {
    /// The entity id derived from the replica through which the entity first became known.
    ///
    /// Deterministic, so that planning stays a pure function and a replay of the same
    /// observations yields the same ids.
    pub fn derive(group: &GroupId, member: &MemberId, item: &ItemId) -> Self {
        let mut hasher = Sha256::new();
        for part in [group.as_str(), member.as_str(), item.as_str()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        EntityId::from(hex::encode(&digest[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_entity_ids_are_stable_and_distinct() {
        let g = GroupId::new("g");
        let a = EntityId::derive(&g, &MemberId::new("hub"), &ItemId::new("1"));
        let b = EntityId::derive(&g, &MemberId::new("hub"), &ItemId::new("1"));
        let c = EntityId::derive(&g, &MemberId::new("hub1"), &ItemId::new(""));
        assert_eq!(a, b);
        assert_ne!(a, c, "length-prefixing keeps ('hub','1') and ('hub1','') apart");
        assert_eq!(a.as_str().len(), 32);
    }
}
