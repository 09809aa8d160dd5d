//! The EWS operations as pure functions: each builds its request body (in schema order) and parses its
//! response body. The client sends them; keeping them free of I/O makes them testable on fixtures.

pub mod directory;
pub mod folders;
pub mod items;
pub mod notifications;
pub mod sync;

use crate::error::{EwsError, Result};
use crate::item::EwsItem;
use crate::xml::Element;

/// The item elements below an `Items` container, moved out of it.
pub(crate) fn items_in(container: Option<Element>) -> Vec<EwsItem> {
    container.map(|c| c.children.into_iter().filter_map(EwsItem::from_element).collect()).unwrap_or_default()
}

pub(crate) fn required<'a>(operation: &'static str, e: &'a Element, name: &str) -> Result<&'a Element> {
    e.child(name).ok_or_else(|| EwsError::protocol(operation, format!("missing {name}")))
}
