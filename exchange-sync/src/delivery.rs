//! What a member receives of a shared item: its filter and modifications together.
//!
//! For a one-way member the content its copy should hold is a function of the group's merge base:
//! nothing when the filter rejects the item, otherwise the base with the member's modifications
//! applied. The engine compares the member's copy against this *delivered* form, not against the
//! base itself, so a modified copy is in sync, and a copy of an item that stopped matching the
//! filter is removed.

use exchange_sync_core::Item;

use crate::filter::Condition;
use crate::modification::{Modification, apply_all};

/// A member's filter and modifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryRule {
    /// Items that do not match are not delivered (`None`: every item is).
    pub filter: Option<Condition>,
    /// Applied in order to every delivered copy.
    pub modifications: Vec<Modification>,
}

/// The outcome of a [`DeliveryRule`] for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The member receives this content.
    Deliver(Item),
    /// The member receives nothing; a copy delivered earlier is removed.
    Withhold,
}

impl DeliveryRule {
    /// A rule that delivers everything unchanged.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether the rule delivers every item unchanged (the engine can skip it).
    pub fn is_identity(&self) -> bool {
        self.filter.is_none() && self.modifications.is_empty()
    }

    /// What the member receives of a shared item.
    pub fn deliver(&self, shared: &Item) -> Delivery {
        match &self.filter {
            Some(filter) if !filter.matches(shared) => Delivery::Withhold,
            _ => Delivery::Deliver(apply_all(&self.modifications, shared)),
        }
    }

    /// Whether a member's copy holds exactly what the rule delivers for `shared` (same content
    /// hash). `false` for withheld items: any copy of them is to be removed.
    pub fn copy_is_current(&self, shared: &Item, copy: &Item) -> bool {
        match self.deliver(shared) {
            Delivery::Deliver(item) => item.same_content(copy),
            Delivery::Withhold => false,
        }
    }
}

/// The engine's view of a member: the planner compares the member's copies with what the rule
/// delivers.
impl exchange_sync_core::MemberView for DeliveryRule {
    fn deliver(&self, base: &Item) -> Option<Item> {
        match DeliveryRule::deliver(self, base) {
            Delivery::Deliver(item) => Some(item),
            Delivery::Withhold => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{Body, ItemKind, field};

    fn shared(category: &str) -> Item {
        let mut item = Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Ann").with(field::PHONE_HOME, "+1 555");
        item.categories.insert(category.into());
        item.body = Some(Body::text("private notes"));
        item
    }

    fn rule() -> DeliveryRule {
        DeliveryRule {
            filter: Some(Condition::category("Public")),
            modifications: vec![Modification::clear(field::PHONE_HOME), Modification::ClearBody],
        }
    }

    #[test]
    fn matching_items_are_delivered_modified() {
        let Delivery::Deliver(copy) = rule().deliver(&shared("Public")) else { panic!("withheld") };
        assert_eq!(copy.text(field::GIVEN_NAME), Some("Ann"));
        assert!(copy.get(field::PHONE_HOME).is_none());
        assert!(copy.body.is_none());
        assert!(rule().copy_is_current(&shared("Public"), &copy));
        assert!(!rule().copy_is_current(&shared("Public"), &shared("Public")));
    }

    #[test]
    fn items_that_stop_matching_are_withheld() {
        assert_eq!(rule().deliver(&shared("Internal")), Delivery::Withhold);
        let Delivery::Deliver(old_copy) = rule().deliver(&shared("Public")) else { panic!("withheld") };
        assert!(!rule().copy_is_current(&shared("Internal"), &old_copy));
    }

    #[test]
    fn identity_rule_delivers_unchanged() {
        assert!(DeliveryRule::everything().is_identity());
        assert_eq!(DeliveryRule::everything().deliver(&shared("x")), Delivery::Deliver(shared("x")));
        assert!(!rule().is_identity());
    }
}
