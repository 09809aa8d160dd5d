//! Item scripting: folders of mailboxes and public folders, and their items.
//!
//! [`EwsFolders`] opens folders through the connections of a configuration (the same way the
//! service does); a [`Folder`] lists its subfolders and reads, creates, updates and deletes
//! items as a user would. Items created here carry no origin stamp: to a sync group they are the
//! user's own. Every operation has a blocking form (the GIL is released while it waits) and an
//! `*_async` form returning an awaitable.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use exchange_sync::{FolderItem as RustFolderItem, ItemFolder};
use exchange_sync_bindings::Result as BindingResult;
use exchange_sync_bindings::folders::Folders;
use exchange_sync_bindings::items::{Edit, kind_name, new_item};
use exchange_sync_bindings::records::FolderInfo as Info;
use exchange_sync_core::{Body, BodyFormat, FieldValue, Item as RustItem};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};

use crate::class::record_class;
use crate::config::Config;
use crate::errors::to_pyerr;
use crate::runtime::{awaitable, block_on};

fn value_to_py<'py>(py: Python<'py>, value: &FieldValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        FieldValue::Text(s) => s.into_pyobject(py)?.into_any(),
        FieldValue::Integer(i) => i.into_pyobject(py)?.into_any(),
        FieldValue::Boolean(b) => PyBool::new(py, *b).to_owned().into_any(),
        FieldValue::DateTime(d) => d.into_pyobject(py)?.into_any(),
        FieldValue::TextList(l) => PyList::new(py, l)?.into_any(),
    })
}

fn value_from_py(name: &str, value: &Bound<'_, PyAny>) -> PyResult<FieldValue> {
    if let Ok(b) = value.downcast::<PyBool>() {
        return Ok(FieldValue::Boolean(b.is_true()));
    }
    if let Ok(s) = value.extract::<String>() {
        return Ok(FieldValue::Text(s));
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(FieldValue::Integer(i));
    }
    if let Ok(d) = value.extract::<DateTime<Utc>>() {
        return Ok(FieldValue::DateTime(d));
    }
    if let Ok(l) = value.extract::<Vec<String>>() {
        return Ok(FieldValue::TextList(l));
    }
    Err(PyTypeError::new_err(format!(
        "field {name:?}: expected str, int, bool, an aware datetime or a list of str, got {}",
        value.get_type().name()?
    )))
}

/// A normalized item: a kind, canonical fields (names such as `display_name`,
/// `email1.address`, `phone.mobile`, `address.business.city`), a body and categories.
///
/// Field values are `str`, `int`, `bool`, `datetime` (UTC) or `list[str]`. Index an item like a
/// dict: `item["job_title"] = "Head of Sales"`, `del item["company"]`.
#[pyclass(module = "exchange_sync")]
#[derive(Clone)]
pub struct Item {
    /// The Rust item.
    pub inner: RustItem,
}

#[pymethods]
impl Item {
    #[new]
    #[pyo3(signature = (kind = "contact", fields = None, *, body = None, body_format = "text", categories = Vec::new()))]
    fn new(
        kind: &str,
        fields: Option<&Bound<'_, PyDict>>,
        body: Option<String>,
        body_format: &str,
        categories: Vec<String>,
    ) -> PyResult<Self> {
        let mut values = Vec::new();
        if let Some(fields) = fields {
            for (k, v) in fields.iter() {
                let name: String = k.extract()?;
                let value = value_from_py(&name, &v)?;
                values.push((name, value));
            }
        }
        let html = body_format.eq_ignore_ascii_case("html");
        let inner = new_item(kind, values, body, html, categories).map_err(to_pyerr)?;
        Ok(Item { inner })
    }

    /// The kind: `contact`, `calendar_item`, `task`, `note`, `distribution_list`, or an `IPM.*` class.
    #[getter]
    fn kind(&self) -> String {
        kind_name(&self.inner.kind)
    }

    /// A copy of the fields as a dict (assign a dict to replace them all).
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.fields {
            d.set_item(k, value_to_py(py, v)?)?;
        }
        Ok(d)
    }

    #[setter]
    fn set_fields(&mut self, fields: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut out = BTreeMap::new();
        for (k, v) in fields.iter() {
            let name: String = k.extract()?;
            let value = value_from_py(&name, &v)?;
            out.insert(name, value);
        }
        self.inner.fields = out;
        Ok(())
    }

    /// The body's content, or `None`.
    #[getter]
    fn body(&self) -> Option<String> {
        self.inner.body.as_ref().map(|b| b.content.clone())
    }

    #[setter]
    fn set_body(&mut self, body: Option<String>) {
        let format = self.inner.body.as_ref().map_or(BodyFormat::Text, |b| b.format);
        self.inner.body = body.map(|content| Body { format, content });
    }

    /// `"text"` or `"html"`.
    #[getter]
    fn body_format(&self) -> &'static str {
        match self.inner.body.as_ref().map(|b| b.format) {
            Some(BodyFormat::Html) => "html",
            _ => "text",
        }
    }

    /// The categories, sorted.
    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.categories.iter().cloned().collect()
    }

    #[setter]
    fn set_categories(&mut self, categories: Vec<String>) {
        self.inner.categories = categories.into_iter().collect();
    }

    /// The value of a field, or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.inner.fields.get(name) {
            Some(v) => Ok(Some(value_to_py(py, v)?)),
            None => Ok(default),
        }
    }

    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let v = self.inner.fields.get(name).ok_or_else(|| PyKeyError::new_err(name.to_owned()))?;
        value_to_py(py, v)
    }

    fn __setitem__(&mut self, name: String, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = value_from_py(&name, value)?;
        self.inner.fields.insert(name, value);
        Ok(())
    }

    fn __delitem__(&mut self, name: &str) -> PyResult<()> {
        self.inner.fields.remove(name).map(|_| ()).ok_or_else(|| PyKeyError::new_err(name.to_owned()))
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.fields.contains_key(name)
    }

    /// Whether two items have the same content (as the sync engine compares them: fields the
    /// server rewrites by itself are ignored).
    fn same_content(&self, other: &Item) -> bool {
        self.inner.same_content(&other.inner)
    }

    fn __repr__(&self) -> String {
        let name = self.inner.text("display_name").or_else(|| self.inner.text("subject")).unwrap_or("");
        format!("<Item {} {:?} fields={}>", kind_name(&self.inner.kind), name, self.inner.fields.len())
    }
}

/// An item of a folder: its id there, its version (the EWS change key) and its content.
#[pyclass(module = "exchange_sync", frozen, get_all)]
#[derive(Clone)]
pub struct FolderItem {
    /// The item's id in this folder (ids are per mailbox: never use one across mailboxes).
    pub id: String,
    /// The current version (the EWS change key).
    pub version: String,
    /// The content.
    pub item: Item,
    /// Whether a sync group created or adopted it (it carries an origin stamp).
    pub synced: bool,
}

#[pymethods]
impl FolderItem {
    fn __repr__(&self) -> String {
        format!("<FolderItem {} {}>", self.id, self.item.__repr__())
    }
}

impl From<RustFolderItem> for FolderItem {
    fn from(f: RustFolderItem) -> Self {
        FolderItem { id: f.id, version: f.version, item: Item { inner: f.item }, synced: f.synced }
    }
}

record_class! {
    /// A subfolder, as `Folder.subfolders()` lists it.
    FolderInfo(Info) {
        id: String, name: String, folder_class: Option<String>, total_count: Option<u32>,
        child_folder_count: Option<u32>,
    }

    fn __repr__(&self) -> String {
        let items = self.0.total_count.map_or_else(|| "?".to_owned(), |n| n.to_string());
        format!("<FolderInfo {:?} items={items}>", self.0.name)
    }
}

/// The edit `Folder.update` applies: fields to set (`None` removes one), body, categories.
fn edit_from_py(
    fields: Option<&Bound<'_, PyDict>>,
    body: Option<String>,
    clear_body: bool,
    categories: Option<Vec<String>>,
) -> PyResult<Edit> {
    let mut out = Vec::new();
    if let Some(fields) = fields {
        for (k, v) in fields.iter() {
            let name: String = k.extract()?;
            let value = if v.is_none() { None } else { Some(value_from_py(&name, &v)?) };
            out.push((name, value));
        }
    }
    Ok(Edit { fields: out, body, clear_body, categories })
}

async fn subfolders(f: ItemFolder) -> BindingResult<Vec<FolderInfo>> {
    Ok(f.subfolders().await?.into_iter().map(|s| FolderInfo(s.into())).collect())
}

async fn items(f: ItemFolder) -> BindingResult<Vec<FolderItem>> {
    Ok(f.items().await?.into_iter().map(FolderItem::from).collect())
}

/// A mailbox or public folder opened for item operations.
#[pyclass(module = "exchange_sync", frozen)]
pub struct Folder {
    inner: ItemFolder,
}

#[pymethods]
impl Folder {
    /// The folder's description, e.g. `alice@contoso.test/contacts/Company Contacts`.
    #[getter]
    fn description(&self) -> String {
        self.inner.describe()
    }

    /// The direct subfolders.
    fn subfolders(&self, py: Python<'_>) -> PyResult<Vec<FolderInfo>> {
        block_on(py, subfolders(self.inner.clone()))
    }

    /// The direct subfolders (awaitable).
    fn subfolders_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, subfolders(self.inner.clone()))
    }

    /// Every item, with content.
    fn items(&self, py: Python<'_>) -> PyResult<Vec<FolderItem>> {
        block_on(py, items(self.inner.clone()))
    }

    /// Every item, with content (awaitable).
    fn items_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, items(self.inner.clone()))
    }

    /// One item by id (`NotFoundError` when it is gone).
    fn get(&self, py: Python<'_>, id: String) -> PyResult<FolderItem> {
        let f = self.inner.clone();
        block_on(py, async move { Ok(FolderItem::from(f.get(&id).await?)) })
    }

    /// One item by id (awaitable).
    fn get_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.clone();
        awaitable(py, async move { Ok(FolderItem::from(f.get(&id).await?)) })
    }

    /// Creates an item (the user's own: no origin stamp); returns its id.
    fn create(&self, py: Python<'_>, item: Item) -> PyResult<String> {
        let f = self.inner.clone();
        block_on(py, async move { Ok(f.create(&item.inner).await?) })
    }

    /// Creates an item (awaitable of its id).
    fn create_async<'py>(&self, py: Python<'py>, item: Item) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.clone();
        awaitable(py, async move { Ok(f.create(&item.inner).await?) })
    }

    /// Changes an item as a user would: reads it, applies the edit, writes it back guarded by
    /// the version read (a concurrent change raises `ConflictError` rather than being
    /// overwritten). `fields` maps canonical names to new values (`None` removes a field).
    #[pyo3(signature = (id, fields = None, *, body = None, clear_body = false, categories = None))]
    fn update(
        &self,
        py: Python<'_>,
        id: String,
        fields: Option<&Bound<'_, PyDict>>,
        body: Option<String>,
        clear_body: bool,
        categories: Option<Vec<String>>,
    ) -> PyResult<()> {
        let edit = edit_from_py(fields, body, clear_body, categories)?;
        let f = self.inner.clone();
        block_on(py, async move { Ok(f.update(&id, |item| edit.apply(item)).await?) })
    }

    /// Changes an item (awaitable); see `update`.
    #[pyo3(signature = (id, fields = None, *, body = None, clear_body = false, categories = None))]
    fn update_async<'py>(
        &self,
        py: Python<'py>,
        id: String,
        fields: Option<&Bound<'py, PyDict>>,
        body: Option<String>,
        clear_body: bool,
        categories: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let edit = edit_from_py(fields, body, clear_body, categories)?;
        let f = self.inner.clone();
        awaitable(py, async move { Ok(f.update(&id, |item| edit.apply(item)).await?) })
    }

    /// Deletes an item.
    fn delete(&self, py: Python<'_>, id: String) -> PyResult<()> {
        let f = self.inner.clone();
        block_on(py, async move { Ok(f.delete(&id).await?) })
    }

    /// Deletes an item (awaitable).
    fn delete_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.clone();
        awaitable(py, async move { Ok(f.delete(&id).await?) })
    }

    fn __repr__(&self) -> String {
        format!("<Folder {}>", self.inner.describe())
    }
}

/// The connections of a configuration, opened: mailbox and public folders for scripting.
///
/// `EwsFolders(config)` reads the secrets and asks Autodiscover for the public folder mailbox
/// (blocking); `await EwsFolders.connect_async(config)` does the same without blocking.
#[pyclass(module = "exchange_sync", frozen)]
pub struct EwsFolders(pub Folders);

/// A folder opened by `open`, as the Python class.
fn opened(
    open: BindingResult<impl Future<Output = BindingResult<ItemFolder>>>,
) -> PyResult<impl Future<Output = BindingResult<Folder>>> {
    let open = open.map_err(to_pyerr)?;
    Ok(async move { Ok(Folder { inner: open.await? }) })
}

#[pymethods]
impl EwsFolders {
    #[new]
    fn new(py: Python<'_>, config: &Config) -> PyResult<Self> {
        let config = config.inner.clone();
        block_on(py, async move { Folders::connect(&config).await }).map(EwsFolders)
    }

    /// Connects without blocking the event loop (awaitable of `EwsFolders`).
    #[staticmethod]
    fn connect_async<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyAny>> {
        let config = config.inner.clone();
        awaitable(py, async move { Ok(EwsFolders(Folders::connect(&config).await?)) })
    }

    /// A public folder by its `/`-separated path (`""` is the root of the public folder tree).
    #[pyo3(signature = (path, *, connection = None))]
    fn public_folder(&self, py: Python<'_>, path: String, connection: Option<String>) -> PyResult<Folder> {
        block_on(py, opened(self.0.public_folder(path, connection))?)
    }

    /// A public folder (awaitable); see `public_folder`.
    #[pyo3(signature = (path, *, connection = None))]
    fn public_folder_async<'py>(
        &self,
        py: Python<'py>,
        path: String,
        connection: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, opened(self.0.public_folder(path, connection))?)
    }

    /// A folder of a mailbox: `contacts`, `calendar`, `tasks`, `notes`, or a named folder below
    /// one (`contacts/Company Contacts`), created when missing if `create` is set.
    #[pyo3(signature = (mailbox, folder = "contacts", *, create = false, connection = None))]
    fn mailbox_folder(
        &self,
        py: Python<'_>,
        mailbox: String,
        folder: &str,
        create: bool,
        connection: Option<String>,
    ) -> PyResult<Folder> {
        block_on(py, opened(self.0.mailbox_folder(mailbox, folder, create, connection))?)
    }

    /// A folder of a mailbox (awaitable); see `mailbox_folder`.
    #[pyo3(signature = (mailbox, folder = "contacts", *, create = false, connection = None))]
    fn mailbox_folder_async<'py>(
        &self,
        py: Python<'py>,
        mailbox: String,
        folder: &str,
        create: bool,
        connection: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, opened(self.0.mailbox_folder(mailbox, folder, create, connection))?)
    }

    fn __repr__(&self) -> String {
        format!("<EwsFolders connections={:?}>", self.0.connections)
    }
}

/// Adds the item classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Item>()?;
    m.add_class::<FolderItem>()?;
    m.add_class::<FolderInfo>()?;
    m.add_class::<Folder>()?;
    m.add_class::<EwsFolders>()?;
    Ok(())
}
