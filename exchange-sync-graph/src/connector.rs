//! [`GraphContactsConnector`]: the core's [`Connector`] for a contact folder of a user's or shared
//! mailbox in Exchange Online, over Microsoft Graph.
//!
//! - **Changes**: delta queries (`contactFolders/{id}/contacts/delta`); the `@odata.nextLink` of a
//!   round's next page, or the `@odata.deltaLink` of its end, is the folder's sync token. A link
//!   Graph no longer accepts (`410 Gone`, `SyncStateNotFound`) is [`exchange_sync_core::ErrorKind::InvalidSyncToken`]:
//!   the engine lists the folder anew and diffs against its state.
//! - **Listing**: `contacts?$select=id,changeKey`, paged with `@odata.nextLink`.
//! - **Reads and writes**: `$batch` (20 requests per batch); the version is the `changeKey`, and
//!   updates and deletes carry `If-Match` with the entity tag `W/"changeKey"`, so that Graph
//!   refuses them (`412`) when the contact changed since the engine read it: a modification beats
//!   a deletion.
//! - **Origin stamp**: the same named property as the EWS connector (see [`crate::mapping`]);
//!   [`Connector::find_by_origin`] filters on it
//!   (`singleValueExtendedProperties/any(ep: ep/id eq '...' and ep/value eq '...')`).
//! - **Real time**: with [`GraphContactsConnector::with_notifications`], [`Connector::watch`]
//!   subscribes the folder to Graph's change notifications (see [`crate::subscription`]); without
//!   it, or when subscribing fails, the engine polls the delta link every
//!   [`ConnectorOptions::poll_interval`].
//! - **Creates whose answer was lost** (the batch was sent, no answer came back): the connector
//!   looks each one up by its origin stamp and answers the copy it finds, so that no duplicate is
//!   created when the engine goes on.

use std::time::Duration;

use async_trait::async_trait;
use exchange_sync_core::connector::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem,
    ItemDelete, ItemUpdate, ItemVersion, ListPage, NewItem, PageCursor,
};
use exchange_sync_core::{self as core, ItemId, OriginStamp, SyncToken, Version};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::Method;
use serde_json::Value;

use crate::client::{
    ContactFolder, GraphClient, GraphRequest, GraphResponse, MAX_BATCH, literal, query_value, segment,
};
use crate::error::{ErrorKind, GraphError, Result};
use crate::mapping;
use crate::subscription::ChangeNotifications;

/// Settings of a connector.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// Contacts per listing page (`$top`, at most 1,000).
    pub page_size: usize,
    /// Changes per delta page (`Prefer: odata.maxpagesize`).
    pub delta_page_size: usize,
    /// How often the engine polls the delta link of a folder without change notifications (no
    /// public HTTPS endpoint configured, or subscribing failed).
    pub poll_interval: Duration,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions { page_size: 200, delta_page_size: 100, poll_interval: Duration::from_secs(30) }
    }
}

/// A contact folder of one mailbox, as the engine sees it.
#[derive(Debug, Clone)]
pub struct GraphContactsConnector {
    client: GraphClient,
    mailbox: String,
    folder: ContactFolder,
    description: String,
    options: ConnectorOptions,
    notifications: Option<ChangeNotifications>,
}

/// Turns a client error into the core's, marking temporary errors exhausted: the client owns
/// the retries, no layer above retries again.
pub fn to_core_error(e: GraphError, folder: &str) -> core::Error {
    let mut context = core::ErrorContext::default().with_folder(folder.to_owned());
    context.operation = e.context().and_then(|c| c.operation);
    if let Some(item) = e.context().and_then(|c| c.item.clone()) {
        context = context.with_item(ItemId::new(item));
    }
    let context = Box::new(context);
    let message = e.to_string();
    match e.kind() {
        ErrorKind::Throttled => core::Error::Throttled { retry_after: e.retry_after(), exhausted: true, context },
        ErrorKind::NotFound => core::Error::NotFound { context },
        ErrorKind::PreconditionFailed => core::Error::PreconditionFailed { context },
        ErrorKind::InvalidSyncState => core::Error::InvalidSyncToken { context },
        ErrorKind::Unauthorized | ErrorKind::AccessDenied => core::Error::Auth { message, context },
        ErrorKind::Unreachable => core::Error::Unreachable { message, context, source: Some(Box::new(e)) },
        ErrorKind::Configuration => core::Error::Config { message },
        ErrorKind::Transient | ErrorKind::Indeterminate => {
            core::Error::Transient { message, exhausted: true, context, source: Some(Box::new(e)) }
        }
        ErrorKind::Permanent => core::Error::Permanent { message, context, source: Some(Box::new(e)) },
    }
}

fn version_of(contact: &Value) -> Option<ItemVersion> {
    let id = contact.get("id").and_then(Value::as_str)?;
    let key = contact.get("changeKey").and_then(Value::as_str).map(str::to_owned).or_else(|| {
        // Only the entity tag: W/"changeKey".
        contact
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(|t| t.trim_start_matches("W/").trim_matches('"').to_owned())
    })?;
    Some(ItemVersion { id: ItemId::new(id), version: Version::new(key) })
}

impl GraphContactsConnector {
    /// A connector on a known folder of `mailbox` (a user's or a shared mailbox's address).
    pub fn new(client: GraphClient, mailbox: impl Into<String>, folder: ContactFolder) -> Self {
        let mailbox = mailbox.into();
        let description = format!("{mailbox}/{} (Graph)", folder.display_name);
        GraphContactsConnector {
            client,
            mailbox,
            folder,
            description,
            options: ConnectorOptions::default(),
            notifications: None,
        }
    }

    /// The connector on the contact folder named `name` under the mailbox's Contacts folder,
    /// created when `create` is set and it does not exist.
    pub async fn open(client: GraphClient, mailbox: &str, name: &str, create: bool) -> Result<Self> {
        let folder = match client.contact_folder_by_name(mailbox, name).await? {
            Some(f) => f,
            None if create => client.create_contact_folder(mailbox, name).await?,
            None => {
                return Err(GraphError::Http {
                    status: 404,
                    code: "ErrorFolderNotFound".into(),
                    message: format!("no contact folder named {name:?}"),
                    retry_after: None,
                    context: Box::new(crate::error::ErrorContext::new("open folder", mailbox)),
                });
            }
        };
        Ok(Self::new(client, mailbox, folder))
    }

    /// With other settings.
    pub fn with_options(mut self, options: ConnectorOptions) -> Self {
        self.options = options;
        self
    }

    /// With change notifications: [`Connector::watch`] subscribes the folder, and the engine
    /// polls it only when subscribing fails (see [`crate::subscription`]).
    pub fn with_notifications(mut self, notifications: ChangeNotifications) -> Self {
        self.notifications = Some(notifications);
        self
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    fn folder_path(&self) -> String {
        format!("/users/{}/contactFolders/{}", segment(&self.mailbox), segment(&self.folder.id))
    }

    fn contact_url(&self, id: &ItemId) -> String {
        format!("{}/contacts/{}", self.folder_path(), segment(id.as_str()))
    }

    fn expand_origin() -> String {
        format!(
            "$expand={}",
            query_value(&format!(
                "singleValueExtendedProperties($filter=id eq {})",
                literal(&mapping::origin_property_id())
            ))
        )
    }

    fn err(&self, e: GraphError) -> core::Error {
        to_core_error(e, &self.description)
    }

    fn fetched(&self, body: Option<Value>) -> core::Result<FetchedItem> {
        let body = body.unwrap_or(Value::Null);
        let v = version_of(&body).ok_or_else(|| core::Error::Permanent {
            message: "Graph answered a contact without id or change key".into(),
            context: Box::new(core::ErrorContext::operation("get").with_folder(self.description.clone())),
            source: None,
        })?;
        let (item, origin) = mapping::to_item(&body);
        Ok(FetchedItem { id: v.id, version: v.version, item, origin })
    }

    fn version_answer(&self, r: Result<GraphResponse>) -> core::Result<ItemVersion> {
        let r = r.map_err(|e| self.err(e))?;
        r.body.as_ref().and_then(version_of).ok_or_else(|| core::Error::Permanent {
            message: "Graph answered a write without id or change key".into(),
            context: Box::new(core::ErrorContext::operation("write").with_folder(self.description.clone())),
            source: None,
        })
    }

    async fn batch(
        &self,
        operation: &'static str,
        requests: &[GraphRequest],
    ) -> core::Result<Vec<Result<GraphResponse>>> {
        self.client.batch(&self.mailbox, operation, requests).await.map_err(|e| self.err(e))
    }

    /// Looks up contacts by stamp: one filtered listing per stamp, sent in `$batch`es.
    async fn find_stamps(&self, origins: &[OriginStamp]) -> core::Result<Vec<Result<Vec<FetchedItem>, core::Error>>> {
        let requests: Vec<GraphRequest> = origins
            .iter()
            .map(|o| {
                let filter = format!(
                    "singleValueExtendedProperties/any(ep: ep/id eq {} and ep/value eq {})",
                    literal(&mapping::origin_property_id()),
                    literal(&o.encode())
                );
                GraphRequest::new(
                    Method::GET,
                    format!(
                        "{}/contacts?$filter={}&{}",
                        self.folder_path(),
                        query_value(&filter),
                        Self::expand_origin()
                    ),
                )
            })
            .collect();
        let answers = self.batch("find_by_origin", &requests).await?;
        let mut out = Vec::new();
        for (answer, origin) in answers.into_iter().zip(origins) {
            let page = match answer {
                Ok(r) => r.body.unwrap_or(Value::Null),
                Err(e) => {
                    out.push(Err(self.err(e)));
                    continue;
                }
            };
            let mut found = Vec::new();
            let mut page = page;
            for _ in 0..100 {
                for c in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                    let f = self.fetched(Some(c.clone()))?;
                    if f.origin.as_ref() == Some(origin) {
                        found.push(f);
                    }
                }
                match page.get("@odata.nextLink").and_then(Value::as_str) {
                    Some(next) => {
                        page = self
                            .client
                            .get_json(&self.mailbox, "find_by_origin", next)
                            .await
                            .map_err(|e| self.err(e))?
                    }
                    None => break,
                }
            }
            out.push(Ok(found));
        }
        Ok(out)
    }
}

impl GraphClient {
    /// The contact folder named `name` under the mailbox's Contacts folder, if any.
    pub async fn contact_folder_by_name(&self, mailbox: &str, name: &str) -> Result<Option<ContactFolder>> {
        let url = format!(
            "/users/{}/contactFolders?$filter={}",
            segment(mailbox),
            query_value(&format!("displayName eq {}", literal(name)))
        );
        let body = self.get_json(mailbox, "find folder", &url).await?;
        Ok(body.get("value").and_then(Value::as_array).and_then(|a| a.first()).and_then(folder_of))
    }

    /// Creates a contact folder under the mailbox's Contacts folder.
    pub async fn create_contact_folder(&self, mailbox: &str, name: &str) -> Result<ContactFolder> {
        let request = GraphRequest::new(Method::POST, format!("/users/{}/contactFolders", segment(mailbox)))
            .json(serde_json::json!({"displayName": name}));
        let r = self.send(mailbox, "create folder", &request).await?;
        r.body.as_ref().and_then(folder_of).ok_or_else(|| {
            GraphError::protocol(
                "a created folder without id",
                crate::error::ErrorContext::new("create folder", mailbox),
            )
        })
    }
}

fn folder_of(v: &Value) -> Option<ContactFolder> {
    Some(ContactFolder {
        id: v.get("id")?.as_str()?.to_owned(),
        display_name: v.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned(),
    })
}

#[async_trait]
impl Connector for GraphContactsConnector {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let watch = self.notifications.is_some();
        Capabilities { change_detection: ChangeDetection::Incremental, max_batch: MAX_BATCH, watch }
    }

    fn folder_id(&self) -> Option<String> {
        Some(self.folder.id.clone())
    }

    async fn changes(&self, token: Option<&SyncToken>) -> core::Result<ChangePage> {
        let url = match token {
            Some(t) => t.as_str().to_owned(),
            None => format!("{}/contacts/delta?$select=id,changeKey", self.folder_path()),
        };
        let request = GraphRequest::new(Method::GET, url)
            .header("Prefer", format!("odata.maxpagesize={}", self.options.delta_page_size));
        let page = self.client.send(&self.mailbox, "delta", &request).await.map_err(|e| self.err(e))?;
        let body = page.body.unwrap_or(Value::Null);
        let mut changes = Vec::new();
        for c in body.get("value").and_then(Value::as_array).into_iter().flatten() {
            if c.get("@removed").is_some() {
                if let Some(id) = c.get("id").and_then(Value::as_str) {
                    changes.push(Change::Deleted(ItemId::new(id)));
                }
            } else if let Some(v) = version_of(c) {
                changes.push(Change::Upserted(v));
            }
        }
        let next = body.get("@odata.nextLink").and_then(Value::as_str);
        let delta = body.get("@odata.deltaLink").and_then(Value::as_str);
        let (token, more) = match (next, delta) {
            (Some(n), _) => (n, true),
            (None, Some(d)) => (d, false),
            (None, None) => {
                return Err(self.err(GraphError::protocol(
                    "a delta page without nextLink or deltaLink",
                    crate::error::ErrorContext::new("delta", &self.mailbox),
                )));
            }
        };
        if token.len() > 16 * 1024 {
            return Err(self.err(GraphError::protocol(
                "a delta link longer than 16 KiB",
                crate::error::ErrorContext::new("delta", &self.mailbox),
            )));
        }
        Ok(ChangePage { changes, token: SyncToken::new(token), more })
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> core::Result<ListPage> {
        let url = match cursor {
            Some(c) => c.0.clone(),
            None => format!(
                "{}/contacts?$select=id,changeKey&$top={}",
                self.folder_path(),
                self.options.page_size.clamp(1, 1000)
            ),
        };
        let body = self.client.get_json(&self.mailbox, "list", &url).await.map_err(|e| self.err(e))?;
        let items = body.get("value").and_then(Value::as_array).into_iter().flatten().filter_map(version_of).collect();
        let next = body.get("@odata.nextLink").and_then(Value::as_str).map(|s| PageCursor(s.to_owned()));
        if next.as_ref().is_some_and(|n| Some(&n.0) == cursor.map(|c| &c.0)) {
            return Err(self.err(GraphError::protocol(
                "paging does not advance",
                crate::error::ErrorContext::new("list", &self.mailbox),
            )));
        }
        Ok(ListPage { items, next })
    }

    async fn get(&self, ids: &[ItemId]) -> core::Result<BatchResult<FetchedItem>> {
        let requests: Vec<GraphRequest> = ids
            .iter()
            .map(|id| {
                GraphRequest::new(Method::GET, format!("{}?{}", self.contact_url(id), Self::expand_origin()))
                    .item(id.as_str())
            })
            .collect();
        let answers = self.batch("get", &requests).await?;
        Ok(answers.into_iter().map(|a| a.map_err(|e| self.err(e)).and_then(|r| self.fetched(r.body))).collect())
    }

    async fn create(&self, items: &[NewItem]) -> core::Result<BatchResult<ItemVersion>> {
        let requests: Vec<GraphRequest> = items
            .iter()
            .map(|n| {
                GraphRequest::new(Method::POST, format!("{}/contacts", self.folder_path()))
                    .json(mapping::to_json(&n.item, Some(&n.origin)))
            })
            .collect();
        let answers = self.batch("create", &requests).await?;
        let mut results = Vec::with_capacity(items.len());
        let mut unknown = Vec::new();
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Err(e) if e.kind() == ErrorKind::Indeterminate => {
                    unknown.push(i);
                    results.push(Err(self.err(e)));
                }
                a => results.push(self.version_answer(a)),
            }
        }
        if !unknown.is_empty() {
            // The creates may have happened: the copy carrying the stamp is the answer.
            let stamps: Vec<OriginStamp> = unknown.iter().map(|&i| items[i].origin.clone()).collect();
            tracing::info!(folder = %self.description, creates = unknown.len(), "creates with an unknown outcome: looking them up by origin stamp");
            if let Ok(found) = self.find_stamps(&stamps).await {
                for (&i, f) in unknown.iter().zip(found) {
                    if let Ok(Some(copy)) = f.map(|v| v.into_iter().next()) {
                        results[i] = Ok(ItemVersion { id: copy.id, version: copy.version });
                    }
                }
            }
        }
        Ok(results)
    }

    async fn update(&self, updates: &[ItemUpdate]) -> core::Result<BatchResult<ItemVersion>> {
        let requests: Vec<GraphRequest> = updates
            .iter()
            .map(|u| {
                GraphRequest::new(Method::PATCH, self.contact_url(&u.id))
                    .header("If-Match", format!("W/\"{}\"", u.expected.as_str()))
                    .json(mapping::to_json(&u.item, u.origin.as_ref()))
                    .item(u.id.as_str())
            })
            .collect();
        let answers = self.batch("update", &requests).await?;
        Ok(answers.into_iter().map(|a| self.version_answer(a)).collect())
    }

    async fn delete(&self, items: &[ItemDelete]) -> core::Result<BatchResult<Deleted>> {
        let requests: Vec<GraphRequest> = items
            .iter()
            .map(|d| {
                let r = GraphRequest::new(Method::DELETE, self.contact_url(&d.id)).item(d.id.as_str());
                // Graph checks the entity tag itself: a contact edited since the engine saw it
                // is refused (412) and stays.
                match &d.expected {
                    Some(v) => r.header("If-Match", format!("W/\"{}\"", v.as_str())),
                    None => r,
                }
            })
            .collect();
        let answers = self.batch("delete", &requests).await?;
        Ok(answers.into_iter().map(|a| a.map(|_| Deleted::Gone).map_err(|e| self.err(e))).collect())
    }

    async fn find_by_origin(&self, origins: &[OriginStamp]) -> core::Result<Vec<FetchedItem>> {
        let mut found = Vec::new();
        for r in self.find_stamps(origins).await? {
            found.extend(r?);
        }
        Ok(found)
    }

    async fn watch(&self) -> core::Result<BoxStream<'static, ChangeHint>> {
        match &self.notifications {
            Some(n) => n
                .subscribe(self.client.clone(), &self.mailbox, &self.folder.id, &self.description)
                .await
                .map_err(|e| self.err(e)),
            None => Ok(futures::stream::pending().boxed()),
        }
    }

    fn poll_interval(&self) -> Duration {
        self.options.poll_interval
    }
}
