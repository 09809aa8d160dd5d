//! GetFolder, FindFolder, CreateFolder.

use crate::error::{EwsError, Result};
use crate::folder::{FOLDER_ELEMENTS, Folder};
use crate::ids::FolderRef;
use crate::property::FolderShape;
use crate::soap::response_messages;
use crate::xml::{Element, XmlWriter};

fn folders_in(container: Option<&Element>) -> Vec<Folder> {
    container
        .map(|c| {
            c.children
                .iter()
                .filter(|e| FOLDER_ELEMENTS.contains(&e.name.as_ref()))
                .filter_map(Folder::from_element)
                .collect()
        })
        .unwrap_or_default()
}

/// `m:GetFolder` for several folders.
pub fn get_folder_request(folders: &[FolderRef], shape: &FolderShape) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetFolder", &[]);
    shape.write(&mut w, "m:FolderShape");
    w.open("m:FolderIds", &[]);
    for f in folders {
        f.write(&mut w);
    }
    w.close("m:FolderIds").close("m:GetFolder");
    w.finish()
}

/// One folder per requested folder, in request order.
pub fn parse_get_folder(body: &Element) -> Result<Vec<Result<Folder>>> {
    Ok(response_messages("GetFolder", body)?
        .into_iter()
        .map(|m| {
            let m = m?;
            folders_in(m.child("Folders"))
                .into_iter()
                .next()
                .ok_or_else(|| EwsError::protocol("GetFolder", "no folder in message"))
        })
        .collect())
}

/// How deep FindFolder looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traversal {
    /// Direct children only (the only traversal public folders support).
    Shallow,
    /// The whole subtree (mailboxes only).
    Deep,
}

/// `m:FindFolder` for the children of one folder, paged.
pub fn find_folder_request(
    parent: &FolderRef,
    shape: &FolderShape,
    traversal: Traversal,
    offset: u32,
    max: u32,
) -> String {
    let mut w = XmlWriter::new();
    let t = match traversal {
        Traversal::Shallow => "Shallow",
        Traversal::Deep => "Deep",
    };
    w.open("m:FindFolder", &[("Traversal", t)]);
    shape.write(&mut w, "m:FolderShape");
    w.empty(
        "m:IndexedPageFolderView",
        &[("MaxEntriesReturned", &max.to_string()), ("Offset", &offset.to_string()), ("BasePoint", "Beginning")],
    );
    w.open("m:ParentFolderIds", &[]);
    parent.write(&mut w);
    w.close("m:ParentFolderIds").close("m:FindFolder");
    w.finish()
}

/// A page of FindFolder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPage {
    /// The folders on this page.
    pub folders: Vec<Folder>,
    /// Whether this is the last page.
    pub includes_last: bool,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<u32>,
}

/// Parses a FindFolder response (one parent).
pub fn parse_find_folder(body: &Element) -> Result<FolderPage> {
    let m = crate::soap::single_message("FindFolder", body)?;
    let root = super::required("FindFolder", m, "RootFolder")?;
    let folders = folders_in(root.child("Folders"));
    let includes_last = root.attr("IncludesLastItemInRange") != Some("false");
    let next_offset = root.attr("IndexedPagingOffset").and_then(|o| o.parse().ok());
    Ok(FolderPage { folders, includes_last, next_offset })
}

/// `m:CreateFolder` for one folder of a class (e.g. `IPF.Contact`) under a parent.
pub fn create_folder_request(parent: &FolderRef, display_name: &str, folder_class: &str) -> String {
    let element = match folder_class {
        c if c.starts_with("IPF.Contact") => "t:ContactsFolder",
        c if c.starts_with("IPF.Appointment") => "t:CalendarFolder",
        c if c.starts_with("IPF.Task") => "t:TasksFolder",
        _ => "t:Folder",
    };
    let mut w = XmlWriter::new();
    w.open("m:CreateFolder", &[]).open("m:ParentFolderId", &[]);
    parent.write(&mut w);
    w.close("m:ParentFolderId").open("m:Folders", &[]).open(element, &[]);
    w.leaf("t:FolderClass", folder_class).leaf("t:DisplayName", display_name);
    w.close(element).close("m:Folders").close("m:CreateFolder");
    w.finish()
}

/// Parses a CreateFolder response (one folder).
pub fn parse_create_folder(body: &Element) -> Result<Folder> {
    let m = crate::soap::single_message("CreateFolder", body)?;
    folders_in(m.child("Folders"))
        .into_iter()
        .next()
        .ok_or_else(|| EwsError::protocol("CreateFolder", "no folder in response"))
}
