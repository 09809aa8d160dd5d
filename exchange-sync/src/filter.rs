//! Filters: which items a one-way member receives.
//!
//! A filter is a [`Condition`] over the shared content of an item (the group's merge base, before
//! any [`crate::modification`] applies). Items that match are delivered; items that do not are
//! not delivered, and a copy delivered earlier is removed when the item stops matching. Filters
//! apply to one-way members only: a two-way member that saw only part of the hub could not tell
//! "filtered out" from "deleted" in its own edits.
//!
//! Comparisons are case-insensitive and ignore surrounding white space, as admins expect from the
//! older commercial tools (an e-mail address or a category is the same whatever its case).

use exchange_sync_core::{FieldValue, Item, ItemKind};

/// The pseudo field name that tests the body's text in a [`Condition::Field`].
pub const BODY_FIELD: &str = "body";

/// A test on one field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldTest {
    /// The field has a non-empty value.
    Exists,
    /// The field's value equals this text (for lists: one element does). Non-text values compare
    /// in their text form: `42`, `true`, RFC 3339 date-times.
    Equals(String),
    /// The field's value contains this text (for lists: one element does).
    Contains(String),
}

/// A condition on an item. Plain data, so that bindings and configuration files can build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The item carries this category.
    Category(String),
    /// The item is of this kind.
    Kind(ItemKind),
    /// A canonical field (see `exchange_sync_core::field`, or [`BODY_FIELD`]) passes a test.
    Field {
        /// The canonical field name.
        name: String,
        /// The test.
        test: FieldTest,
    },
    /// Every condition holds (true when empty).
    All(Vec<Condition>),
    /// At least one condition holds (false when empty).
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
}

impl Condition {
    /// The item carries `category`.
    pub fn category(category: impl Into<String>) -> Self {
        Condition::Category(category.into())
    }

    /// `field` has a value.
    pub fn exists(field: impl Into<String>) -> Self {
        Condition::Field { name: field.into(), test: FieldTest::Exists }
    }

    /// `field` equals `value`.
    pub fn equals(field: impl Into<String>, value: impl Into<String>) -> Self {
        Condition::Field { name: field.into(), test: FieldTest::Equals(value.into()) }
    }

    /// `field` contains `value`.
    pub fn contains(field: impl Into<String>, value: impl Into<String>) -> Self {
        Condition::Field { name: field.into(), test: FieldTest::Contains(value.into()) }
    }

    /// The negation of `condition`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(condition: Condition) -> Self {
        Condition::Not(Box::new(condition))
    }

    /// Whether the item satisfies the condition.
    pub fn matches(&self, item: &Item) -> bool {
        match self {
            Condition::Category(wanted) => {
                let wanted = fold(wanted);
                item.categories.iter().any(|c| fold(c) == wanted)
            }
            Condition::Kind(kind) => &item.kind == kind,
            Condition::Field { name, test } => field_matches(item, name, test),
            Condition::All(conditions) => conditions.iter().all(|c| c.matches(item)),
            Condition::Any(conditions) => conditions.iter().any(|c| c.matches(item)),
            Condition::Not(condition) => !condition.matches(item),
        }
    }
}

/// The text forms of a field's value that tests look at; empty when the field is absent.
fn values_of(item: &Item, name: &str) -> Vec<String> {
    if name == BODY_FIELD {
        return item.body.as_ref().map(|b| b.normalized()).filter(|t| !t.is_empty()).into_iter().collect();
    }
    match item.get(name) {
        None => Vec::new(),
        Some(value) if value.is_empty() => Vec::new(),
        Some(FieldValue::Text(s)) => vec![s.clone()],
        Some(FieldValue::Integer(i)) => vec![i.to_string()],
        Some(FieldValue::Boolean(b)) => vec![b.to_string()],
        Some(FieldValue::DateTime(d)) => vec![d.to_rfc3339()],
        Some(FieldValue::TextList(list)) => list.clone(),
    }
}

fn field_matches(item: &Item, name: &str, test: &FieldTest) -> bool {
    let values = values_of(item, name);
    match test {
        FieldTest::Exists => !values.is_empty(),
        FieldTest::Equals(wanted) => {
            let wanted = fold(wanted);
            values.iter().any(|v| fold(v) == wanted)
        }
        FieldTest::Contains(wanted) => {
            let wanted = fold(wanted);
            values.iter().any(|v| fold(v).contains(&wanted))
        }
    }
}

/// The form in which texts are compared: trimmed and lower-cased.
fn fold(text: &str) -> String {
    text.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{Body, field};

    fn contact() -> Item {
        let mut item = Item::new(ItemKind::Contact)
            .with(field::GIVEN_NAME, "Zoë")
            .with(field::COMPANY, "Contoso Ltd")
            .with(field::EMAIL1, "Zoe@Contoso.test")
            .with(field::CHILDREN, FieldValue::TextList(vec!["Ann".into(), "Ben".into()]));
        item.categories.insert("Customers".into());
        item.body = Some(Body::text("Met at the fair.\r\n"));
        item
    }

    #[test]
    fn category_and_kind_conditions() {
        let item = contact();
        assert!(Condition::category("customers").matches(&item));
        assert!(!Condition::category("Suppliers").matches(&item));
        assert!(Condition::Kind(ItemKind::Contact).matches(&item));
        assert!(!Condition::Kind(ItemKind::CalendarItem).matches(&item));
    }

    #[test]
    fn field_tests_are_case_insensitive_and_see_lists_and_body() {
        let item = contact();
        assert!(Condition::equals(field::EMAIL1, " zoe@contoso.TEST ").matches(&item));
        assert!(!Condition::equals(field::COMPANY, "Contoso").matches(&item));
        assert!(Condition::contains(field::COMPANY, "contoso").matches(&item));
        assert!(Condition::equals(field::CHILDREN, "ben").matches(&item));
        assert!(Condition::contains(BODY_FIELD, "fair").matches(&item));
        assert!(Condition::exists(field::GIVEN_NAME).matches(&item));
        assert!(!Condition::exists(field::PHONE_MOBILE).matches(&item));
    }

    #[test]
    fn non_text_values_compare_in_text_form() {
        let item = Item::new(ItemKind::Task)
            .with(field::PERCENT_COMPLETE, FieldValue::Integer(40))
            .with(field::IS_ALL_DAY, FieldValue::Boolean(true));
        assert!(Condition::equals(field::PERCENT_COMPLETE, "40").matches(&item));
        assert!(Condition::equals(field::IS_ALL_DAY, "TRUE").matches(&item));
        assert!(!Condition::equals(field::PERCENT_COMPLETE, "4").matches(&item));
    }

    #[test]
    fn combinators() {
        let item = contact();
        let yes = Condition::category("Customers");
        let no = Condition::category("Suppliers");
        assert!(Condition::All(vec![yes.clone(), Condition::Kind(ItemKind::Contact)]).matches(&item));
        assert!(!Condition::All(vec![yes.clone(), no.clone()]).matches(&item));
        assert!(Condition::Any(vec![no.clone(), yes.clone()]).matches(&item));
        assert!(!Condition::Any(vec![no.clone()]).matches(&item));
        assert!(Condition::All(vec![]).matches(&item));
        assert!(!Condition::Any(vec![]).matches(&item));
        assert!(Condition::not(no).matches(&item));
        assert!(!Condition::not(yes).matches(&item));
    }
}
