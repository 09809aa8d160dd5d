//! Member views: what a one-way member receives of the shared content.
//!
//! Admins filter what readers receive and modify their copies (hide private fields, turn meetings
//! into plain appointments). The planner asks a member's view for the content its copy should
//! hold: nothing (the item is not delivered, and a copy delivered earlier is removed), or the
//! base as the view shapes it. Copies are compared with that delivered form, so a modified copy
//! is in sync and causes no traffic. Views apply to one-way members only: a two-way member's
//! edits of a partial or modified copy could not be merged back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::id::MemberId;
use crate::item::Item;

/// Shapes what one member receives.
pub trait MemberView: Send + Sync + fmt::Debug {
    /// The content the member's copy should hold for the shared `base`; `None` when the member
    /// receives nothing of it. Must be a pure function of `base` (planning stays deterministic).
    fn deliver(&self, base: &Item) -> Option<Item>;
}

/// Views by member (members without one receive the base unchanged).
pub type MemberViews = BTreeMap<MemberId, Arc<dyn MemberView>>;
