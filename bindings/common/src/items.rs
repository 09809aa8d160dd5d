//! Items as scripts edit them: the names of item kinds, and the edit a folder's `update` applies.

use exchange_sync_core::{Body, BodyFormat, FieldValue, Item, ItemKind};

use crate::error::{BindingError, Result};

/// The name of an item kind, as configuration files write it (`contact`, `calendar_item`, ...,
/// or the `IPM.*` class of another kind).
pub fn kind_name(kind: &ItemKind) -> String {
    match kind {
        ItemKind::Contact => "contact".into(),
        ItemKind::CalendarItem => "calendar_item".into(),
        ItemKind::Task => "task".into(),
        ItemKind::Note => "note".into(),
        ItemKind::DistributionList => "distribution_list".into(),
        ItemKind::Other(class) => class.clone(),
    }
}

/// The kind a name means; an unknown name is a configuration error at `path`.
pub fn parse_kind(path: &str, name: &str) -> Result<ItemKind> {
    exchange_sync::config::file::parse_kind(name)
        .ok_or_else(|| BindingError::invalid(path, format!("unknown kind {name:?}")))
}

/// A new item of the kind `kind` names, with `fields`, an optional body and categories.
pub fn new_item(
    kind: &str,
    fields: impl IntoIterator<Item = (String, FieldValue)>,
    body: Option<String>,
    html: bool,
    categories: Vec<String>,
) -> Result<Item> {
    let mut item = Item::new(parse_kind("item.kind", kind)?);
    item.fields.extend(fields);
    let format = if html { BodyFormat::Html } else { BodyFormat::Text };
    item.body = body.map(|content| Body { format, content });
    item.categories = categories.into_iter().collect();
    Ok(item)
}

/// The edit a folder's `update` applies to an item, as a user would make it: fields to set
/// (none: remove the field), a new body text, the body removed, new categories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    /// Fields to set (`Some`) or remove (`None`), in order.
    pub fields: Vec<(String, Option<FieldValue>)>,
    /// A new body text, in the body's current format (none: unchanged).
    pub body: Option<String>,
    /// Remove the body (before a new `body` applies).
    pub clear_body: bool,
    /// New categories (none: unchanged).
    pub categories: Option<Vec<String>>,
}

impl Edit {
    /// Applies the edit to `item`.
    pub fn apply(self, item: &mut Item) {
        for (name, value) in self.fields {
            match value {
                Some(v) => {
                    item.fields.insert(name, v);
                }
                None => {
                    item.fields.remove(&name);
                }
            }
        }
        if self.clear_body {
            item.body = None;
        }
        if let Some(content) = self.body {
            let format = item.body.as_ref().map_or(BodyFormat::Text, |b| b.format);
            item.body = Some(Body { format, content });
        }
        if let Some(c) = self.categories {
            item.categories = c.into_iter().collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_sets_removes_and_keeps_the_body_format() {
        let mut item = new_item(
            "contact",
            [("surname".to_owned(), FieldValue::Text("Berg".into()))],
            Some("<p>hi</p>".into()),
            true,
            vec!["VIP".into()],
        )
        .unwrap();
        let edit = Edit {
            fields: vec![("given_name".into(), Some(FieldValue::Text("Anna".into()))), ("surname".into(), None)],
            body: Some("<p>bye</p>".into()),
            clear_body: false,
            categories: Some(vec![]),
        };
        edit.apply(&mut item);
        assert_eq!(item.text("given_name"), Some("Anna"));
        assert!(!item.fields.contains_key("surname"));
        assert_eq!(item.body.as_ref().map(|b| b.format), Some(BodyFormat::Html));
        assert!(item.categories.is_empty());
    }

    #[test]
    fn an_unknown_kind_is_a_configuration_error() {
        let err = new_item("spaceship", [], None, false, vec![]).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Config);
        assert_eq!(kind_name(&ItemKind::CalendarItem), "calendar_item");
    }
}
