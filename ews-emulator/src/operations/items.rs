//! GetItem, FindItem, CreateItem, UpdateItem, DeleteItem, MoveItem.

use super::{Context, ItemTarget, Responses, required, resolve_folder, resolve_item, resolve_target, schema_fault};
use crate::calendar;
use crate::property_path::{self, PropertyPath, READ_ONLY};
use crate::render::{self, Shape, item_id_element};
use crate::response_code::EwsError;
use crate::restriction::{self, Restriction};
use crate::schema_order;
use crate::soap::Fault;
use crate::store::{MailboxKind, Permission, encode_change_key};
use crate::xml::Element;

/// Most items one FindItem page returns (EWSFindCountLimit).
pub const FIND_COUNT_LIMIT: usize = 1000;

/// Item elements the emulator stores, with their default item class.
const ITEM_KINDS: &[(&str, &str)] = &[
    ("Contact", "IPM.Contact"),
    ("CalendarItem", "IPM.Appointment"),
    ("Task", "IPM.Task"),
    ("Message", "IPM.Note"),
    ("DistributionList", "IPM.DistList"),
    ("PostItem", "IPM.Post"),
    ("Item", "IPM.Item"),
];

/// GetItem: one message per id, each with the item or its own error.
pub fn get_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "ItemShape")?)).map_err(|e| schema_fault(e.message))?;
    let ids = required(op, "ItemIds")?;
    let mut r = Responses::new("GetItem");
    for (i, id) in ids.children.iter().enumerate() {
        if ctx.batch_stopped(i) {
            r.stopped("<m:Items/>");
            continue;
        }
        let res = resolve_target(ctx, id, Permission::Reviewer).and_then(|target| match target {
            ItemTarget::Item(index, number) => ctx
                .shared
                .store
                .read(index, |mb| {
                    let item = mb.items.get(&number)?;
                    let mut s = String::from("<m:Items>");
                    render::write_item(&mut s, mb, item, &shape, render::Context::Get);
                    s.push_str("</m:Items>");
                    Some(s)
                })
                .flatten()
                .ok_or_else(EwsError::item_not_found),
            ItemTarget::Occurrence(index, number, instance) => ctx
                .shared
                .store
                .read(index, |mb| {
                    let master = mb.items.get(&number).ok_or_else(EwsError::item_not_found)?;
                    let (occurrence, exception) = calendar::occurrence(master, instance)?;
                    let mut s = String::from("<m:Items>");
                    render::write_occurrence(
                        &mut s,
                        mb,
                        render::Occurrence { master, index: instance, item: &occurrence, exception },
                        &shape,
                        render::Context::Get,
                    );
                    s.push_str("</m:Items>");
                    Ok(s)
                })
                .ok_or_else(EwsError::item_not_found)?,
        });
        r.push(res, "<m:Items/>");
    }
    Ok(r.finish())
}

/// FindItem: items of each parent folder matching the restriction, sorted and paged (at most
/// 1000 per page).
pub fn find_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "ItemShape")?)).map_err(|e| schema_fault(e.message))?;
    let restriction = op.child("Restriction").map(Restriction::parse);
    let mut sort: Vec<(PropertyPath, bool)> = Vec::new();
    if let Some(order) = op.child("SortOrder") {
        for fo in order.children_named("FieldOrder") {
            if let Ok(Some(p)) = PropertyPath::first_in(fo) {
                sort.push((p, fo.attr("Order") == Some("Descending")));
            }
        }
    }
    let (offset, max, from_end) = match op.child("IndexedPageItemView") {
        Some(v) => (
            v.attr("Offset").and_then(|o| o.parse::<usize>().ok()).unwrap_or(0),
            v.attr("MaxEntriesReturned").and_then(|m| m.parse::<usize>().ok()).unwrap_or(FIND_COUNT_LIMIT),
            v.attr("BasePoint") == Some("End"),
        ),
        None => match op.child("CalendarView").and_then(|v| v.attr("MaxEntriesReturned")) {
            Some(m) => (0, m.parse::<usize>().unwrap_or(FIND_COUNT_LIMIT), false),
            None => (0, FIND_COUNT_LIMIT, false),
        },
    };
    let max = max.min(FIND_COUNT_LIMIT);
    // CalendarView: items overlapping the window (recurring masters are not expanded).
    let window = op
        .child("CalendarView")
        .map(|v| (v.attr("StartDate").unwrap_or("").to_string(), v.attr("EndDate").unwrap_or("").to_string()));
    let window_instants =
        window.as_ref().and_then(|(from, to)| Some((calendar::instant(from)?, calendar::instant(to)?)));
    let in_window = |i: &crate::store::Item| match &window {
        None => true,
        Some((from, to)) => {
            let start = i.field("Start").map(|f| f.text.as_str());
            let end = i.field("End").map(|f| f.text.as_str());
            match (start, end) {
                (Some(s), Some(e)) => {
                    restriction::compare(s, to) == std::cmp::Ordering::Less
                        && restriction::compare(e, from) == std::cmp::Ordering::Greater
                }
                _ => false,
            }
        }
    };
    let parents = required(op, "ParentFolderIds")?;
    let mut r = Responses::new("FindItem");
    for id in &parents.children {
        let res = resolve_folder(ctx, id, Permission::Reviewer).and_then(|(index, number)| {
            let restriction = match &restriction {
                Some(Ok(r)) => Some(r),
                Some(Err(e)) => return Err(e.clone()),
                None => None,
            };
            if op.attr("Traversal") == Some("Associated") {
                return Ok(r#"<m:RootFolder IndexedPagingOffset="0" TotalItemsInView="0" IncludesLastItemInRange="true"><t:Items/></m:RootFolder>"#.to_string());
            }
            ctx.shared
                .store
                .read(index, |mb| {
                    let folder = mb.folders.get(&number)?;
                    if restriction.is_none() && sort.is_empty() && !from_end && window.is_none() {
                        // The common paging case: walk the folder index without collecting it.
                        let total = folder.items.len();
                        let mut s = String::with_capacity(max.min(total) * 256);
                        let mut n = 0;
                        s.push_str("<t:Items>");
                        for item in folder.items.iter().skip(offset).take(max).filter_map(|i| mb.items.get(i)) {
                            render::write_item(&mut s, mb, item, &shape, render::Context::List);
                            n += 1;
                        }
                        s.push_str("</t:Items></m:RootFolder>");
                        let end = (offset + n).min(total);
                        let head = format!(
                            r#"<m:RootFolder IndexedPagingOffset="{end}" TotalItemsInView="{total}" IncludesLastItemInRange="{}">"#,
                            end >= total
                        );
                        return Some(head + &s);
                    }
                    if let Some((from, to)) = window_instants {
                        return Some(calendar_view(mb, folder, from, to, max, &shape));
                    }
                    let mut matching: Vec<&crate::store::Item> = folder
                        .items
                        .iter()
                        .filter_map(|n| mb.items.get(n))
                        .filter(|i| restriction.is_none_or(|r| r.matches(i)) && in_window(i))
                        .collect();
                    for (path, descending) in sort.iter().rev() {
                        matching.sort_by(|a, b| {
                            let o = match (restriction::value(a, path), restriction::value(b, path)) {
                                (Some(x), Some(y)) => restriction::compare(&x, &y),
                                (a, b) => a.is_some().cmp(&b.is_some()),
                            };
                            if *descending { o.reverse() } else { o }
                        });
                    }
                    let total = matching.len();
                    let start = if from_end { total.saturating_sub(offset + max) } else { offset.min(total) };
                    let end = if from_end { total.saturating_sub(offset) } else { (offset + max).min(total) };
                    let page = &matching[start.min(end)..end];
                    let last = if from_end { start == 0 } else { end >= total };
                    let mut s = format!(
                        r#"<m:RootFolder IndexedPagingOffset="{}" TotalItemsInView="{total}" IncludesLastItemInRange="{last}"><t:Items>"#,
                        if from_end { offset + page.len() } else { end }
                    );
                    for item in page {
                        render::write_item(&mut s, mb, item, &shape, render::Context::List);
                    }
                    s.push_str("</t:Items></m:RootFolder>");
                    Some(s)
                })
                .flatten()
                .ok_or_else(EwsError::folder_not_found)
        });
        r.push(res, "");
    }
    Ok(r.finish())
}

/// A CalendarView page: single items overlapping `[from, to)` and the occurrences and
/// exceptions of recurring masters there (masters themselves are not listed), by start time, at
/// most `max` of them (`IncludesLastItemInRange` false when cut).
fn calendar_view(
    mb: &crate::store::Mailbox,
    folder: &crate::store::Folder,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    max: usize,
    shape: &render::Shape,
) -> String {
    enum Entry<'a> {
        Single(&'a crate::store::Item),
        Occurrence(&'a crate::store::Item, u32, crate::store::Item, bool),
    }
    let mut entries: Vec<(chrono::DateTime<chrono::Utc>, Entry<'_>)> = Vec::new();
    for item in folder.items.iter().filter_map(|n| mb.items.get(n)).filter(|i| i.element == "CalendarItem") {
        if calendar::is_master(item) {
            for (index, occurrence, exception) in calendar::in_window(item, from, to) {
                let start = occurrence.field("Start").and_then(|s| calendar::instant(&s.text)).unwrap_or(from);
                entries.push((start, Entry::Occurrence(item, index, occurrence, exception)));
            }
            continue;
        }
        let time = |n: &str| item.field(n).and_then(|f| calendar::instant(&f.text));
        if let (Some(s), Some(e)) = (time("Start"), time("End"))
            && s < to
            && e > from
        {
            entries.push((s, Entry::Single(item)));
        }
    }
    entries.sort_by_key(|(t, _)| *t);
    let total = entries.len();
    let shown = total.min(max);
    let mut s =
        format!(r#"<m:RootFolder TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Items>"#, shown >= total);
    for (_, entry) in entries.iter().take(shown) {
        match entry {
            Entry::Single(item) => render::write_item(&mut s, mb, item, shape, render::Context::List),
            Entry::Occurrence(master, index, occurrence, exception) => render::write_occurrence(
                &mut s,
                mb,
                render::Occurrence { master, index: *index, item: occurrence, exception: *exception },
                shape,
                render::Context::List,
            ),
        }
    }
    s.push_str("</t:Items></m:RootFolder>");
    s
}

/// Splits a client item element into (stored fields, extended properties, item class).
fn accept_fields(item: &Element, default_class: &str) -> Result<(Vec<Element>, Vec<Element>, String), EwsError> {
    let order = schema_order::for_item(&item.name);
    let mut fields = Vec::new();
    let mut extended = Vec::new();
    let mut class = default_class.to_string();
    for f in &item.children {
        match &*f.name {
            "ExtendedProperty" => {
                let uri = f.child("ExtendedFieldURI").ok_or_else(|| {
                    EwsError::new("ErrorInvalidExtendedProperty", "ExtendedProperty without ExtendedFieldURI.")
                })?;
                property_path::ExtendedKey::from_uri(uri)?;
                extended.push(f.clone());
            }
            "ItemClass" => class = f.text.trim().to_string(),
            n if READ_ONLY.contains(&n) => {}
            n if order.contains(n) => fields.push(f.clone()),
            _ => {}
        }
    }
    if item.name == "CalendarItem"
        && let (Some(s), Some(e)) = (item.child_text("Start"), item.child_text("End"))
        && restriction::compare(e, s) == std::cmp::Ordering::Less
    {
        return Err(EwsError::new("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"));
    }
    Ok((fields, extended, class))
}

/// CreateItem: each item succeeds or fails on its own.
pub fn create_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let items = required(op, "Items")?;
    let target = op.child("SavedItemFolderId").and_then(|t| t.children.first());
    let target = target.map(|t| resolve_folder(ctx, t, Permission::Editor));
    let mut r = Responses::new("CreateItem");
    for (i, item) in items.children.iter().enumerate() {
        if ctx.batch_stopped(i) {
            r.stopped("<m:Items/>");
            continue;
        }
        let res = (|| {
            let (_, default_class) = ITEM_KINDS.iter().find(|(n, _)| *n == item.name).ok_or_else(|| {
                EwsError::new("ErrorInvalidItemForOperation", format!("{} items cannot be created here.", item.name))
            })?;
            let (index, folder) = match &target {
                Some(t) => t.clone()?,
                None => {
                    let name = match &*item.name {
                        "Contact" | "DistributionList" => "contacts",
                        "CalendarItem" => "calendar",
                        "Task" => "tasks",
                        _ => "drafts",
                    };
                    resolve_folder(ctx, &Element::t("DistinguishedFolderId").with_attr("Id", name), Permission::Editor)?
                }
            };
            let (fields, extended, class) = accept_fields(item, default_class)?;
            let element = item.name.clone();
            ctx.shared
                .store
                .write(index, |mb| {
                    let number = mb.create_item(folder, &element, &class, fields, extended)?;
                    if ctx.shared.config.omit_created_item_ids {
                        // Exchange Online's answer: created, no id.
                        return Ok("<m:Items/>".to_string());
                    }
                    let created = mb.items.get(&number).ok_or_else(EwsError::item_not_found)?;
                    let mut s = format!("<m:Items><t:{element}>");
                    item_id_element(index, created).write_t(&mut s);
                    s.push_str(&format!("</t:{element}></m:Items>"));
                    Ok(s)
                })
                .ok_or_else(EwsError::folder_not_found)?
        })();
        r.push(res, "<m:Items/>");
    }
    Ok(r.finish())
}

/// UpdateItem: applies Set/Append/DeleteItemField; a stale ChangeKey fails under
/// NeverOverwrite (and AutoResolve) with ErrorIrresolvableConflict.
pub fn update_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let mode = op.attr("ConflictResolution").unwrap_or("AutoResolve");
    let changes = required(op, "ItemChanges")?;
    let mut r = Responses::new("UpdateItem");
    for (i, change) in changes.children.iter().enumerate() {
        if ctx.batch_stopped(i) {
            r.stopped("<m:Items/>");
            continue;
        }
        let res = (|| {
            let id = change
                .children
                .iter()
                .find(|c| matches!(&*c.name, "ItemId" | "OccurrenceItemId" | "RecurringMasterItemId"))
                .ok_or_else(|| EwsError::invalid_request("ItemChange without an item id"))?;
            let target = resolve_target(ctx, id, Permission::Editor)?;
            let updates =
                change.child("Updates").ok_or_else(|| EwsError::invalid_request("ItemChange without Updates"))?;
            let expected = id.attr("ChangeKey").map(str::to_string);
            let (index, number, instance) = match target {
                ItemTarget::Item(m, n) => (m, n, None),
                ItemTarget::Occurrence(m, n, i) => (m, n, Some(i)),
            };
            ctx.shared
                .store
                .write(index, |mb| {
                    let current = mb.items.get(&number).ok_or_else(EwsError::item_not_found)?;
                    // An occurrence's change key is its master's.
                    if let Some(key) = &expected
                        && mode != "AlwaysOverwrite" && *key != encode_change_key(number, current.version) {
                            return Err(EwsError::new(
                                "ErrorIrresolvableConflict",
                                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
                            ));
                        }
                    if let Some(instance) = instance {
                        // An occurrence: its fields after the changes become an exception.
                        let (mut occurrence, _) = calendar::occurrence(current, instance)?;
                        apply_updates(&mut occurrence, updates)?;
                        mb.update_item(number, |master| calendar::store_exception(master, instance, &occurrence))?;
                        let master = mb.items.get(&number).ok_or_else(EwsError::item_not_found)?;
                        let mut s = String::from("<m:Items><t:CalendarItem>");
                        render::occurrence_id_element(index, master, instance).write_t(&mut s);
                        s.push_str("</t:CalendarItem></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>");
                        return Ok(s);
                    }
                    mb.update_item(number, |item| {
                        let before = item.clone();
                        apply_updates(item, updates)?;
                        calendar::drop_exceptions_if_retimed(&before, item);
                        Ok(())
                    })?;
                    let item = mb.items.get(&number).ok_or_else(EwsError::item_not_found)?;
                    let mut s = format!("<m:Items><t:{}>", item.element);
                    item_id_element(index, item).write_t(&mut s);
                    s.push_str(&format!("</t:{}></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>", item.element));
                    Ok(s)
                })
                .ok_or_else(EwsError::item_not_found)?
        })();
        r.push(res, "<m:Items/>");
    }
    Ok(r.finish())
}

/// Applies the `Set/Append/DeleteItemField` changes of an `ItemChange` to an item.
fn apply_updates(item: &mut crate::store::Item, updates: &Element) -> Result<(), EwsError> {
    for u in &updates.children {
        let path =
            PropertyPath::first_in(u)?.ok_or_else(|| EwsError::invalid_request("change without a property path"))?;
        let source = u.children.iter().find(|c| PropertyPath::parse(c).ok().flatten().is_none());
        match &*u.name {
            "SetItemField" => {
                let source = source.ok_or_else(|| EwsError::invalid_request("SetItemField without an item"))?;
                property_path::set(item, &path, source)?;
            }
            "AppendToItemField" => {
                let source = source.ok_or_else(|| EwsError::invalid_request("AppendToItemField without an item"))?;
                property_path::append(item, &path, source)?;
            }
            "DeleteItemField" => property_path::delete(item, &path)?,
            other => return Err(EwsError::invalid_request(format!("unknown change {other}"))),
        }
    }
    Ok(())
}

/// DeleteItem: HardDelete removes, SoftDelete keeps in Recoverable Items, MoveToDeletedItems
/// moves to Deleted Items (public folders have none: soft delete there).
///
/// Like Exchange, DeleteItem ignores the `ChangeKey` of an `ItemId`: a delete is not
/// conditional on the version (Microsoft's "DeleteItem Ignores ChangeKeys": "In Exchange 2007,
/// the ChangeKey is completely ignored in DeleteItem calls"; no later source says it changed,
/// although the `ConversationId` reference page claims ErrorStaleObject). Before Exchange 2010
/// SP1 a soft-deleted item cannot be reached by EWS; from 2010 SP1 on it is in
/// `recoverableitemsdeletions`.
pub fn delete_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let mode = op.attr("DeleteType").ok_or_else(|| schema_fault("DeleteItem requires DeleteType"))?;
    if !matches!(mode, "HardDelete" | "SoftDelete" | "MoveToDeletedItems") {
        return Err(schema_fault(format!("invalid DeleteType {mode}")));
    }
    let ids = required(op, "ItemIds")?;
    let mut r = Responses::new("DeleteItem");
    for (i, id) in ids.children.iter().enumerate() {
        if ctx.batch_stopped(i) {
            r.stopped("");
            continue;
        }
        let res = resolve_target(ctx, id, Permission::Editor).and_then(|target| {
            let (index, number) = match target {
                ItemTarget::Item(m, n) => (m, n),
                ItemTarget::Occurrence(m, n, instance) => {
                    // Deleting an occurrence cancels it: the master lists it in DeletedOccurrences.
                    return ctx
                        .shared
                        .store
                        .write(m, |mb| mb.update_item(n, |master| calendar::delete_occurrence(master, instance)))
                        .ok_or_else(EwsError::item_not_found)?
                        .map(|()| String::new());
                }
            };
            // A user's save that lands right before the delete (test hook).
            let edit = ctx.shared.store.take_delete_hook(index, number);
            ctx.shared
                .store
                .write(index, |mb| {
                    if let Some(edit) = edit {
                        mb.update_item(number, |item| {
                            edit(item);
                            Ok(())
                        })?;
                    }
                    let deleted_items = mb.distinguished.get("deleteditems").copied();
                    match (mode, mb.kind, deleted_items) {
                        ("MoveToDeletedItems", MailboxKind::User, Some(to)) => {
                            let from = mb.items.get(&number).map(|i| i.folder);
                            if from == Some(to) {
                                mb.delete_item(number, true)
                            } else {
                                mb.move_item(number, to).map(|_| ())
                            }
                        }
                        ("HardDelete", _, _) => mb.delete_item(number, false),
                        _ => mb.delete_item(number, true),
                    }
                })
                .ok_or_else(EwsError::item_not_found)?
                .map(|_| String::new())
        });
        r.push(res, "");
    }
    Ok(r.finish())
}

/// MoveItem: moves items to a folder of the same mailbox. As on Exchange, a moved item is a new
/// item for EWS: a new `ItemId` and a new `ChangeKey`, answered in the message's `m:Items`
/// (Exchange answers an empty `m:Items` for a move into a public folder or another mailbox;
/// the emulator refuses moves across mailboxes with ErrorCrossMailboxMoveCopy instead).
/// `ReturnNewItemIds` (Exchange 2010 SP1) is accepted; the ids are answered either way.
pub fn move_item(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let to =
        required(op, "ToFolderId")?.children.first().ok_or_else(|| schema_fault("ToFolderId requires a folder id"))?;
    let target = resolve_folder(ctx, to, Permission::Editor);
    let ids = required(op, "ItemIds")?;
    let mut r = Responses::new("MoveItem");
    for (i, id) in ids.children.iter().enumerate() {
        if ctx.batch_stopped(i) {
            r.stopped("<m:Items/>");
            continue;
        }
        let res = (|| {
            let (to_index, to_folder) = target.clone()?;
            let (index, number) = resolve_item(ctx, id, Permission::Editor)?;
            if index != to_index {
                return Err(EwsError::new(
                    "ErrorCrossMailboxMoveCopy",
                    "Moving items between mailboxes is not supported by this server.",
                ));
            }
            ctx.shared
                .store
                .write(index, |mb| {
                    let moved = mb.move_item(number, to_folder)?;
                    let item = mb.items.get(&moved).ok_or_else(EwsError::item_not_found)?;
                    let mut s = format!("<m:Items><t:{}>", item.element);
                    item_id_element(index, item).write_t(&mut s);
                    s.push_str(&format!("</t:{}></m:Items>", item.element));
                    Ok(s)
                })
                .ok_or_else(EwsError::item_not_found)?
        })();
        r.push(res, "<m:Items/>");
    }
    Ok(r.finish())
}
