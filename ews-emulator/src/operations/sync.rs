//! SyncFolderItems and SyncFolderHierarchy with opaque SyncState tokens.
//!
//! A SyncState names (mailbox, folder, change sequence). The changes after it are the items
//! whose last change is newer (Create when they were created after it, else Update) and the
//! tombstones of items that existed at it; they are sent in change order, so a token cut after
//! N changes is exact.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Context, Responses, required, resolve_folder, schema_fault};
use crate::render::{self, Shape, write_folder};
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::store::{IdKind, MailboxKind, Permission, decode_id, encode_id};
use crate::xml::Element;

/// Largest MaxChangesReturned the schema allows.
pub const MAX_CHANGES: usize = 512;

fn encode_state(tag: &[u8; 3], mailbox: u32, folder: u64, seq: u64) -> String {
    let mut raw = tag.to_vec();
    raw.extend_from_slice(&mailbox.to_le_bytes());
    raw.extend_from_slice(&folder.to_le_bytes());
    raw.extend_from_slice(&seq.to_le_bytes());
    B64.encode(raw)
}

fn decode_state(tag: &[u8; 3], s: &str, mailbox: u32, folder: u64) -> Result<u64, EwsError> {
    let invalid =
        || EwsError::new("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.");
    let raw = B64.decode(s.trim()).map_err(|_| invalid())?;
    if raw.len() != 23 || &raw[..3] != tag {
        return Err(invalid());
    }
    let m = u32::from_le_bytes(raw[3..7].try_into().map_err(|_| invalid())?);
    let f = u64::from_le_bytes(raw[7..15].try_into().map_err(|_| invalid())?);
    let seq = u64::from_le_bytes(raw[15..23].try_into().map_err(|_| invalid())?);
    if m != mailbox || f != folder {
        return Err(invalid());
    }
    Ok(seq)
}

fn public_folder_error(what: &str) -> EwsError {
    EwsError::new("ErrorInvalidOperation", format!("{what} isn't supported on public folders."))
}

enum Change {
    Upsert(u64, bool),
    Delete(u64),
}

/// SyncFolderItems on a mailbox folder (public folders refuse it, as on Exchange).
pub fn sync_folder_items(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "ItemShape")?)).map_err(|e| schema_fault(e.message))?;
    let folder_el = required(op, "SyncFolderId")?.children.first().ok_or_else(|| schema_fault("empty SyncFolderId"))?;
    let max: usize = required(op, "MaxChangesReturned")?
        .text
        .trim()
        .parse()
        .map_err(|_| schema_fault("MaxChangesReturned is not a number"))?;
    if !(1..=MAX_CHANGES).contains(&max) {
        return Err(schema_fault(format!("MaxChangesReturned {max} is outside 1..512")));
    }
    let ignore: Vec<u64> = op
        .child("Ignore")
        .map(|i| {
            i.children
                .iter()
                .filter_map(|c| c.attr("Id").and_then(|id| decode_id(IdKind::Item, id)))
                .map(|(_, n)| n)
                .collect()
        })
        .unwrap_or_default();
    let state = op.child_text("SyncState").filter(|s| !s.is_empty()).map(str::to_string);
    let mut r = Responses::new("SyncFolderItems");
    let res = resolve_folder(ctx, folder_el, Permission::Reviewer).and_then(|(index, number)| {
        ctx.shared
            .store
            .read(index, |mb| {
                if mb.kind == MailboxKind::PublicFolders {
                    return Err(public_folder_error("SyncFolderItems"));
                }
                let since = match &state {
                    Some(s) => decode_state(b"SFI", s, index, number)?,
                    None => 0,
                };
                let folder = mb.folders.get(&number).ok_or_else(EwsError::folder_not_found)?;
                let mut taken: Vec<(u64, Change)> = Vec::new();
                let mut more = false;
                for (seq, e) in folder.changes.range(since + 1..) {
                    let change = if e.deleted {
                        // Items created and deleted since the state were never seen: skip them.
                        if e.created_seq > since || since == 0 {
                            continue;
                        }
                        Change::Delete(e.item)
                    } else {
                        Change::Upsert(e.item, e.created_seq > since)
                    };
                    if taken.len() == max {
                        more = true;
                        break;
                    }
                    taken.push((*seq, change));
                }
                let new_seq = if more { taken.last().map_or(since, |(s, _)| *s) } else { mb.seq.max(since) };
                let mut s = format!(
                    "<m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{}</m:IncludesLastItemInRange><m:Changes>",
                    encode_state(b"SFI", index, number, new_seq),
                    !more
                );
                for (_, c) in &taken {
                    match c {
                        Change::Upsert(n, created) => {
                            if ignore.contains(n) {
                                continue;
                            }
                            let Some(item) = mb.items.get(n) else { continue };
                            let tag = if *created { "Create" } else { "Update" };
                            s.push_str(&format!("<t:{tag}>"));
                            render::write_item(&mut s, mb, item, &shape, render::Context::List);
                            s.push_str(&format!("</t:{tag}>"));
                        }
                        Change::Delete(n) => {
                            if ignore.contains(n) {
                                continue;
                            }
                            s.push_str(&format!(
                                r#"<t:Delete><t:ItemId Id="{}"/></t:Delete>"#,
                                encode_id(IdKind::Item, index, *n)
                            ));
                        }
                    }
                }
                s.push_str("</m:Changes>");
                Ok(s)
            })
            .ok_or_else(EwsError::folder_not_found)?
    });
    // Exchange's error messages carry an empty SyncState and IncludesLastItemInRange (Microsoft's
    // "SyncFolderItems error response" example); clients such as exchangelib read them before
    // looking at the code.
    r.push(res, "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>");
    Ok(r.finish())
}

/// SyncFolderHierarchy: folders created or changed below the sync root since the state.
pub fn sync_folder_hierarchy(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "FolderShape")?)).map_err(|e| schema_fault(e.message))?;
    let root_el = op
        .child("SyncFolderId")
        .and_then(|s| s.children.first())
        .cloned()
        .unwrap_or_else(|| Element::t("DistinguishedFolderId").with_attr("Id", "root"));
    let state = op.child_text("SyncState").filter(|s| !s.is_empty()).map(str::to_string);
    let mut r = Responses::new("SyncFolderHierarchy");
    let res = resolve_folder(ctx, &root_el, Permission::Reviewer).and_then(|(index, root)| {
        ctx.shared
            .store
            .read(index, |mb| {
                if mb.kind == MailboxKind::PublicFolders {
                    return Err(public_folder_error("SyncFolderHierarchy"));
                }
                let since = match &state {
                    Some(s) => decode_state(b"SFH", s, index, root)?,
                    None => 0,
                };
                let mut folders: Vec<_> = mb.folders.values().filter(|f| f.number != root && mb.is_below(f.number, root) && f.changed_seq > since).collect();
                folders.sort_by_key(|f| f.changed_seq);
                let mut s = format!(
                    "<m:SyncState>{}</m:SyncState><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange><m:Changes>",
                    encode_state(b"SFH", index, root, mb.seq)
                );
                for f in folders {
                    let tag = if f.created_seq > since { "Create" } else { "Update" };
                    s.push_str(&format!("<t:{tag}>"));
                    write_folder(&mut s, mb, f, &shape);
                    s.push_str(&format!("</t:{tag}>"));
                }
                s.push_str("</m:Changes>");
                Ok(s)
            })
            .ok_or_else(EwsError::folder_not_found)?
    });
    r.push(res, "<m:SyncState/><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>");
    Ok(r.finish())
}
