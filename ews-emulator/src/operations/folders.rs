//! GetFolder, FindFolder, CreateFolder.

use super::{Context, Responses, required, resolve_folder, rights, schema_fault};
use crate::render::{Shape, write_folder};
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::store::{IdKind, Permission, encode_change_key, encode_id};
use crate::xml::Element;

/// GetFolder: one message per requested folder.
pub fn get_folder(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "FolderShape")?)).map_err(|e| schema_fault(e.message))?;
    let ids = required(op, "FolderIds")?;
    let mut r = Responses::new("GetFolder");
    for id in &ids.children {
        let res = resolve_folder(ctx, id, Permission::Reviewer).and_then(|(index, number)| {
            ctx.shared
                .store
                .read(index, |mb| {
                    let f = mb.folders.get(&number)?;
                    let mut s = String::from("<m:Folders>");
                    write_folder(&mut s, mb, f, &shape);
                    s.push_str("</m:Folders>");
                    Some(s)
                })
                .flatten()
                .ok_or_else(EwsError::folder_not_found)
        });
        r.push(res, "");
    }
    Ok(r.finish())
}

/// FindFolder: subfolders (Shallow) or the whole subtree (Deep) the user can see, paged.
pub fn find_folder(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let shape = Shape::parse(Some(required(op, "FolderShape")?)).map_err(|e| schema_fault(e.message))?;
    let deep = op.attr("Traversal") == Some("Deep");
    let (offset, max) = match op.child("IndexedPageFolderView") {
        Some(v) => (
            v.attr("Offset").and_then(|o| o.parse::<usize>().ok()).unwrap_or(0),
            v.attr("MaxEntriesReturned").and_then(|m| m.parse::<usize>().ok()).unwrap_or(usize::MAX),
        ),
        None => (0, usize::MAX),
    };
    let parents = required(op, "ParentFolderIds")?;
    let mut r = Responses::new("FindFolder");
    for id in &parents.children {
        let res = resolve_folder(ctx, id, Permission::Reviewer).and_then(|(index, number)| {
            ctx.shared
                .store
                .read(index, |mb| {
                    let mut found = Vec::new();
                    let mut todo = vec![number];
                    while let Some(n) = todo.pop() {
                        let Some(f) = mb.folders.get(&n) else { continue };
                        for c in f.children.iter().rev() {
                            if rights(ctx, mb, *c) >= Permission::Reviewer {
                                found.push(*c);
                            }
                            if deep {
                                todo.push(*c);
                            }
                        }
                    }
                    found.sort_unstable();
                    let total = found.len();
                    let page: Vec<u64> = found.into_iter().skip(offset).take(max).collect();
                    let last = offset + page.len() >= total;
                    let mut s = format!(
                        r#"<m:RootFolder IndexedPagingOffset="{}" TotalItemsInView="{total}" IncludesLastItemInRange="{last}"><t:Folders>"#,
                        offset + page.len()
                    );
                    for n in page {
                        if let Some(f) = mb.folders.get(&n) {
                            write_folder(&mut s, mb, f, &shape);
                        }
                    }
                    s.push_str("</t:Folders></m:RootFolder>");
                    s
                })
                .ok_or_else(EwsError::folder_not_found)
        });
        r.push(res, "");
    }
    Ok(r.finish())
}

/// CreateFolder: needs owner rights on the parent; names are unique among siblings.
pub fn create_folder(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let parent =
        required(op, "ParentFolderId")?.children.first().ok_or_else(|| schema_fault("empty ParentFolderId"))?;
    let folders = required(op, "Folders")?;
    let mut r = Responses::new("CreateFolder");
    let parent = resolve_folder(ctx, parent, Permission::Owner);
    for f in &folders.children {
        let res = parent.clone().and_then(|(index, number)| {
            let name = f
                .child_text("DisplayName")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| EwsError::new("ErrorInvalidFolderId", "A folder needs a DisplayName."))?;
            let class = f.child_text("FolderClass").map(str::to_string).unwrap_or_else(|| {
                match &*f.name {
                    "ContactsFolder" => "IPF.Contact",
                    "CalendarFolder" => "IPF.Appointment",
                    "TasksFolder" => "IPF.Task",
                    _ => "IPF.Note",
                }
                .to_string()
            });
            let created = ctx
                .shared
                .store
                .write(index, |mb| mb.create_folder(number, name, &class))
                .ok_or_else(EwsError::folder_not_found)??;
            Ok(format!(
                r#"<m:Folders><t:{el}><t:FolderId Id="{}" ChangeKey="{}"/></t:{el}></m:Folders>"#,
                encode_id(IdKind::Folder, index, created),
                encode_change_key(created, 1),
                el = crate::render::folder_element(&class),
            ))
        });
        r.push(res, "");
    }
    Ok(r.finish())
}
