//! Item elements rendered once and sent to many mailboxes.
//!
//! A fan-out writes the same item, with the same origin stamp, into every member's folder: mapping
//! it to EWS fields and writing its XML once per mailbox would cost more than the server's work.
//! [`RenderedItem`] is the `t:Contact` (or other item) element of a `CreateItem` request, written
//! once; the connector keeps recently rendered items in a render cache shared by every folder of
//! the process, keyed by the shared item itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use exchange_sync_core::{Item, OriginStamp};

use crate::item::{ItemDraft, write_item_element};
use crate::version::ExchangeVersion;
use crate::xml::XmlWriter;

/// The XML of one item element, ready to be placed in a `CreateItem` request.
///
/// Cloning is cheap: the text is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedItem(Arc<str>);

impl RenderedItem {
    /// Renders a draft: its fields in schema order, as [`crate::EwsClient::create_items`] would.
    pub fn of(draft: &ItemDraft) -> Self {
        let mut w = XmlWriter::new();
        write_item_element(&mut w, draft.item_type, &draft.fields);
        RenderedItem(Arc::from(w.finish()))
    }

    /// The element's XML.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One cached rendering. It holds the item itself, so that no other item can be allocated at
/// the address that keys it while the entry lives.
#[derive(Debug)]
struct Entry {
    item: Arc<Item>,
    origin: OriginStamp,
    version: ExchangeVersion,
    rendered: RenderedItem,
}

/// Renderings of shared items, bounded in bytes (cleared when full: a fan-out renders each
/// entity while the folders written at the same time still need it, and an entry rendered
/// again costs only the mapping).
#[derive(Debug)]
pub(crate) struct RenderCache {
    entries: HashMap<usize, Entry>,
    bytes: usize,
    limit: usize,
}

/// The process-wide cache's size limit: a few thousand contacts.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

impl RenderCache {
    fn new(limit: usize) -> Self {
        RenderCache { entries: HashMap::new(), bytes: 0, limit }
    }

    /// The cache every connector of the process shares.
    pub(crate) fn global() -> &'static Mutex<RenderCache> {
        static CACHE: OnceLock<Mutex<RenderCache>> = OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(RenderCache::new(CACHE_BYTES)))
    }

    /// The rendering of `item` with `origin` for a server speaking `version`, rendered with
    /// `render` when not cached.
    pub(crate) fn get_or_render(
        cache: &Mutex<RenderCache>,
        item: &Arc<Item>,
        origin: &OriginStamp,
        version: ExchangeVersion,
        render: impl FnOnce() -> RenderedItem,
    ) -> RenderedItem {
        let key = Arc::as_ptr(item) as usize;
        if let Ok(cache) = cache.lock()
            && let Some(e) = cache.entries.get(&key)
            && Arc::ptr_eq(&e.item, item)
            && &e.origin == origin
            && e.version == version
        {
            return e.rendered.clone();
        }
        // Rendered outside the lock: connectors of other folders keep going meanwhile.
        let rendered = render();
        if let Ok(mut cache) = cache.lock() {
            cache
                .insert(key, Entry { item: item.clone(), origin: origin.clone(), version, rendered: rendered.clone() });
        }
        rendered
    }

    fn insert(&mut self, key: usize, entry: Entry) {
        let size = entry.rendered.as_str().len();
        if size > self.limit {
            return;
        }
        if self.bytes + size > self.limit {
            self.entries.clear();
            self.bytes = 0;
        }
        if let Some(old) = self.entries.insert(key, entry) {
            self.bytes -= old.rendered.as_str().len();
        }
        self.bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping;
    use exchange_sync_core::{EntityId, GroupId, ItemKind, field};

    fn render(item: &Item, origin: &OriginStamp) -> RenderedItem {
        let (item_type, fields) = mapping::to_fields(item, Some(origin));
        RenderedItem::of(&ItemDraft { item_type, fields })
    }

    fn stamp(e: &str) -> OriginStamp {
        OriginStamp::new(GroupId::new("g"), EntityId::new(e))
    }

    #[test]
    fn a_shared_item_is_rendered_once_per_origin_and_version() {
        let cache = Mutex::new(RenderCache::new(1 << 20));
        let item = Arc::new(Item::new(ItemKind::Contact).with(field::GIVEN_NAME, "Ada"));
        let v = ExchangeVersion::Exchange2013;
        let mut renders = 0;
        for _ in 0..3 {
            RenderCache::get_or_render(&cache, &item, &stamp("e1"), v, || {
                renders += 1;
                render(&item, &stamp("e1"))
            });
        }
        assert_eq!(renders, 1);
        let other = RenderCache::get_or_render(&cache, &item, &stamp("e2"), v, || {
            renders += 1;
            render(&item, &stamp("e2"))
        });
        assert_eq!(renders, 2, "another origin stamp is another rendering");
        assert_ne!(other, render(&item, &stamp("e1")));
        RenderCache::get_or_render(&cache, &item, &stamp("e2"), ExchangeVersion::Exchange2010, || {
            renders += 1;
            render(&item, &stamp("e2"))
        });
        assert_eq!(renders, 3, "another server version is another rendering");
    }

    #[test]
    fn an_equal_item_at_another_address_is_not_mistaken_and_the_cache_stays_bounded() {
        let cache = Mutex::new(RenderCache::new(600));
        let v = ExchangeVersion::Exchange2013;
        for i in 0..50 {
            let item = Arc::new(Item::new(ItemKind::Contact).with(field::GIVEN_NAME, format!("Name {i}")));
            let got = RenderCache::get_or_render(&cache, &item, &stamp("e"), v, || render(&item, &stamp("e")));
            assert_eq!(got, render(&item, &stamp("e")), "item {i} gets its own rendering");
            let held = cache.lock().unwrap().bytes;
            assert!(held <= 600, "{held} bytes held");
        }
    }
}
