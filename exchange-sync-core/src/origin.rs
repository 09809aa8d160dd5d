//! The origin stamp: the hidden cross-mailbox identity of every item the engine writes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::{EntityId, GroupId};

/// Which group and entity an item copy belongs to.
///
/// Connectors store it in a hidden property of every item the engine creates (for EWS a named
/// MAPI extended property in the project's own property set). It survives moves and id changes,
/// which makes two things possible: after a crash between "create" and "remember", the engine finds
/// the copy it already made instead of making a second one; and after a state loss or a mailbox
/// restore, existing copies are matched instead of duplicated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OriginStamp {
    /// The group that wrote the copy.
    pub group: GroupId,
    /// The entity the copy belongs to.
    pub entity: EntityId,
}

/// The version tag of the encoded form, so the format can evolve.
const PREFIX: &str = "xsync1";

impl OriginStamp {
    /// A stamp for an entity of a group.
    pub fn new(group: GroupId, entity: EntityId) -> Self {
        OriginStamp { group, entity }
    }

    /// The string stored on the server: `xsync1:<len>:<group>:<entity>`. The group id is
    /// length-prefixed because admins may put `:` in it.
    pub fn encode(&self) -> String {
        format!("{PREFIX}:{}:{}:{}", self.group.as_str().len(), self.group, self.entity)
    }
}

impl fmt::Display for OriginStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for OriginStamp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Permanent {
            message: format!("not an origin stamp: {s:?}"),
            context: Box::new(crate::error::ErrorContext::operation("parse origin stamp")),
            source: None,
        };
        let rest = s.strip_prefix(PREFIX).and_then(|r| r.strip_prefix(':')).ok_or_else(bad)?;
        let (len, rest) = rest.split_once(':').ok_or_else(bad)?;
        let len: usize = len.parse().map_err(|_| bad())?;
        if rest.len() < len + 2 || !rest.is_char_boundary(len) || rest.as_bytes()[len] != b':' {
            return Err(bad());
        }
        let (group, entity) = (&rest[..len], &rest[len + 1..]);
        if group.is_empty() || entity.is_empty() {
            return Err(bad());
        }
        Ok(OriginStamp::new(GroupId::new(group), EntityId::new(entity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_even_with_colons_in_the_group() {
        let stamp = OriginStamp::new(GroupId::new("sales:emea"), EntityId::new("0a1b"));
        let parsed: OriginStamp = stamp.encode().parse().unwrap();
        assert_eq!(parsed, stamp);
    }

    #[test]
    fn rejects_foreign_strings() {
        for bad in ["", "xsync1", "xsync1:5:abc:d", "other:3:abc:d", "xsync1:x:abc:d", "xsync1:3:abc:"] {
            assert!(bad.parse::<OriginStamp>().is_err(), "{bad:?}");
        }
    }
}
