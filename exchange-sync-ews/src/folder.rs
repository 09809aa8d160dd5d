//! Folders as read from responses.

use crate::ids::FolderId;
use crate::property::ExtendedFieldUri;
use crate::xml::Element;

/// A folder (any of `t:Folder`, `t:ContactsFolder`, `t:CalendarFolder`, `t:TasksFolder`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The folder's id and change key.
    pub id: FolderId,
    /// The parent folder.
    pub parent_id: Option<FolderId>,
    /// The element type, e.g. `ContactsFolder`.
    pub folder_type: String,
    /// `FolderClass`, e.g. `IPF.Contact`.
    pub folder_class: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// How many items it holds.
    pub total_count: Option<u32>,
    /// How many subfolders it has.
    pub child_folder_count: Option<u32>,
    /// Extended properties returned with it.
    pub extended: Vec<(ExtendedFieldUri, String)>,
}

/// The folder element names a response may contain.
pub(crate) const FOLDER_ELEMENTS: [&str; 5] =
    ["Folder", "ContactsFolder", "CalendarFolder", "TasksFolder", "SearchFolder"];

impl Folder {
    /// Reads a folder element; `None` if it has no id.
    pub fn from_element(e: &Element) -> Option<Self> {
        let n = |name: &str| e.child_text(name).and_then(|t| t.parse().ok());
        Some(Self {
            id: e.child("FolderId").and_then(FolderId::from_element)?,
            parent_id: e.child("ParentFolderId").and_then(FolderId::from_element),
            folder_type: e.name.to_string(),
            folder_class: e.child_text("FolderClass").map(str::to_owned),
            display_name: e.child_text("DisplayName").map(str::to_owned),
            total_count: n("TotalCount"),
            child_folder_count: n("ChildFolderCount"),
            extended: e
                .children_named("ExtendedProperty")
                .filter_map(|p| {
                    let uri = ExtendedFieldUri::from_element(p.child("ExtendedFieldURI")?)?;
                    Some((uri, p.child_text("Value")?.to_owned()))
                })
                .collect(),
        })
    }

    /// The value of an extended property, if returned.
    pub fn extended(&self, uri: &ExtendedFieldUri) -> Option<&str> {
        self.extended.iter().find(|(u, _)| u.same_property(uri)).map(|(_, v)| v.as_str())
    }
}
