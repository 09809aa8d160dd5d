//! [`GraphCalendarConnector`]: the core's [`Connector`] for a calendar of a user's or shared
//! mailbox in Exchange Online, over Microsoft Graph. Items are single events and series masters
//! (what a calendar's `events` collection holds); a series' cancelled and modified occurrences
//! are fields of its master (see [`crate::event_mapping`]).
//!
//! - **Changes**: Graph v1.0 offers delta for events only as `calendarView/delta`, over a window
//!   of dates, of instances (occurrences and exceptions, not masters), and only on the mailbox's
//!   primary calendar; a delta of a calendar's events without a window is in Graph's beta only.
//!   A group's calendar is a named one and its series reach past any window, so the connector is
//!   a snapshot folder: the engine lists `events?$select=id,changeKey` (one page per 200 events)
//!   and diffs against its state. A master's `changeKey` changes when one of its occurrences is
//!   moved, edited or cancelled (Exchange keeps exceptions on the master), so a listing sees
//!   those too.
//! - **Reads** (`$batch`): each event with `$expand=exceptionOccurrences` and the stamp and
//!   attendees extended properties, times in UTC (`Prefer: outlook.timezone="UTC"`).
//! - **Writes** (`$batch`, 20 per request): the master or single event in full, with `If-Match`
//!   on updates and deletes (`412` when it changed since the engine read it); then, for a series,
//!   the occurrences that must differ: found by `instances` over their dates and matched by
//!   `originalStart`, cancelled by `DELETE` and moved or edited by `PATCH`. The version answered is
//!   the master's `changeKey` after them. Exchange cannot restore a cancelled occurrence: a copy
//!   with one the source does not cancel is logged and left (as over EWS).
//! - **Origin stamp and lost answers**: as the contacts connector (the same property; a create
//!   whose answer was lost is looked up by its stamp).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use exchange_sync_core::connector::{
    BatchResult, Capabilities, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem, ItemDelete,
    ItemUpdate, ItemVersion, ListPage, NewItem, PageCursor,
};
use exchange_sync_core::item::Item;
use exchange_sync_core::{self as core, ItemId, OriginStamp, SyncToken, Version, field};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{GraphClient, GraphRequest, GraphResponse, MAX_BATCH, literal, query_value, segment};
use crate::connector::{ConnectorOptions, to_core_error};
use crate::error::{ErrorContext, ErrorKind, GraphError, Result};
use crate::event_mapping::{self as mapping, Exception};

/// A calendar of a mailbox: its Graph id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarFolder {
    /// Graph id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A calendar of one mailbox, as the engine sees it.
#[derive(Debug, Clone)]
pub struct GraphCalendarConnector {
    client: GraphClient,
    mailbox: String,
    calendar: CalendarFolder,
    description: String,
    options: ConnectorOptions,
}

const UTC_TIMES: (&str, &str) = ("Prefer", "outlook.timezone=\"UTC\"");

/// One instance of a series as `instances` lists it.
#[derive(Debug, Clone)]
struct Instance {
    /// Its original start (UTC, canonical text).
    original: String,
    /// Its id.
    id: String,
    /// Its entity tag (`W/"changeKey"`).
    tag: String,
}

fn version_of(event: &Value) -> Option<ItemVersion> {
    let id = event.get("id").and_then(Value::as_str)?;
    let key = event.get("changeKey").and_then(Value::as_str).map(str::to_owned).or_else(|| {
        event
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(|t| t.trim_start_matches("W/").trim_matches('"').to_owned())
    })?;
    Some(ItemVersion { id: ItemId::new(id), version: Version::new(key) })
}

fn calendar_of(v: &Value) -> Option<CalendarFolder> {
    Some(CalendarFolder {
        id: v.get("id")?.as_str()?.to_owned(),
        name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
    })
}

impl GraphClient {
    /// The calendar named `name` in the mailbox, if any.
    pub async fn calendar_by_name(&self, mailbox: &str, name: &str) -> Result<Option<CalendarFolder>> {
        let url = format!(
            "/users/{}/calendars?$filter={}",
            segment(mailbox),
            query_value(&format!("name eq {}", literal(name)))
        );
        let body = self.get_json(mailbox, "find calendar", &url).await?;
        Ok(body.get("value").and_then(Value::as_array).and_then(|a| a.first()).and_then(calendar_of))
    }

    /// Creates a calendar in the mailbox.
    pub async fn create_calendar(&self, mailbox: &str, name: &str) -> Result<CalendarFolder> {
        let request = GraphRequest::new(Method::POST, format!("/users/{}/calendars", segment(mailbox)))
            .json(json!({"name": name}));
        let r = self.send(mailbox, "create calendar", &request).await?;
        r.body.as_ref().and_then(calendar_of).ok_or_else(|| {
            GraphError::protocol("a created calendar without id", ErrorContext::new("create calendar", mailbox))
        })
    }
}

impl GraphCalendarConnector {
    /// A connector on a known calendar of `mailbox`.
    pub fn new(client: GraphClient, mailbox: impl Into<String>, calendar: CalendarFolder) -> Self {
        let mailbox = mailbox.into();
        let description = format!("{mailbox}/{} (Graph calendar)", calendar.name);
        GraphCalendarConnector { client, mailbox, calendar, description, options: ConnectorOptions::default() }
    }

    /// The connector on the calendar named `name`, created when `create` is set and it does not
    /// exist.
    pub async fn open(client: GraphClient, mailbox: &str, name: &str, create: bool) -> Result<Self> {
        let calendar = match client.calendar_by_name(mailbox, name).await? {
            Some(c) => c,
            None if create => client.create_calendar(mailbox, name).await?,
            None => {
                return Err(GraphError::Http {
                    status: 404,
                    code: "ErrorFolderNotFound".into(),
                    message: format!("no calendar named {name:?}"),
                    retry_after: None,
                    context: Box::new(ErrorContext::new("open calendar", mailbox)),
                });
            }
        };
        Ok(Self::new(client, mailbox, calendar))
    }

    /// With other settings (`page_size` is the listing's; there is no delta).
    pub fn with_options(mut self, options: ConnectorOptions) -> Self {
        self.options = options;
        self
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    fn calendar_path(&self) -> String {
        format!("/users/{}/calendars/{}", segment(&self.mailbox), segment(&self.calendar.id))
    }

    fn event_url(&self, id: &str) -> String {
        format!("{}/events/{}", self.calendar_path(), segment(id))
    }

    fn expand() -> String {
        let props = format!(
            "singleValueExtendedProperties($filter=id eq {} or id eq {})",
            literal(&crate::mapping::origin_property_id()),
            literal(&mapping::attendees_property_id())
        );
        format!("$expand={}", query_value(&format!("exceptionOccurrences,{props}")))
    }

    fn err(&self, e: GraphError) -> core::Error {
        to_core_error(e, &self.description)
    }

    fn protocol(&self, what: &str, operation: &'static str) -> core::Error {
        self.err(GraphError::protocol(what, ErrorContext::new(operation, &self.mailbox)))
    }

    fn fetched(&self, body: Option<Value>) -> core::Result<FetchedItem> {
        let body = body.unwrap_or(Value::Null);
        let v = version_of(&body).ok_or_else(|| self.protocol("an event without id or change key", "get"))?;
        let (item, origin) = mapping::to_item(&body);
        Ok(FetchedItem { id: v.id, version: v.version, item, origin })
    }

    async fn batch(
        &self,
        operation: &'static str,
        requests: &[GraphRequest],
    ) -> core::Result<Vec<Result<GraphResponse>>> {
        self.client.batch(&self.mailbox, operation, requests).await.map_err(|e| self.err(e))
    }

    async fn read_event(&self, id: &str) -> Result<Value> {
        let request = GraphRequest::new(Method::GET, format!("{}?{}", self.event_url(id), Self::expand()))
            .header(UTC_TIMES.0, UTC_TIMES.1);
        let r = self.client.send(&self.mailbox, "get", &request).await?;
        Ok(r.body.unwrap_or(Value::Null))
    }

    /// The instances of a series between two instants.
    async fn instances(&self, id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Instance>> {
        let mut url = format!(
            "{}/instances?startDateTime={}&endDateTime={}&$select=id,originalStart,type,changeKey&$top=200",
            self.event_url(id),
            query_value(&mapping::utc_text(from)),
            query_value(&mapping::utc_text(to))
        );
        let mut out = Vec::new();
        for _ in 0..1000 {
            let page = self.client.get_json(&self.mailbox, "instances", &url).await?;
            for i in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                let original = i
                    .get("originalStart")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| mapping::utc_text(t.with_timezone(&Utc)));
                if let (Some(original), Some(v)) = (original, version_of(i)) {
                    let tag = format!("W/\"{}\"", v.version.as_str());
                    out.push(Instance { original, id: v.id.as_str().to_owned(), tag });
                }
            }
            match page.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) => url = next.to_owned(),
                None => break,
            }
        }
        Ok(out)
    }

    /// Makes a series' occurrences show what `item` asks for, and answers the master's version
    /// after it. Each occurrence is written with `If-Match` on the version just listed, so that
    /// an edit a user makes in the meantime is not overwritten (the write fails with `412`).
    async fn apply_exceptions(&self, id: &str, item: &Item) -> Result<ItemVersion> {
        let master = self.read_event(id).await?;
        let version = version_of(&master).ok_or_else(|| {
            GraphError::protocol("an event without change key", ErrorContext::new("get", &self.mailbox))
        })?;
        if item.text(field::RECURRENCE).is_none() {
            return Ok(version);
        }
        let wanted = mapping::wanted(item);
        let server = mapping::on_server(&master);
        let differs: Vec<&String> = wanted
            .keys()
            .chain(server.keys())
            .filter(|k| wanted.get(*k) != server.get(*k).map(|(e, _)| e))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if differs.is_empty() {
            return Ok(version);
        }
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
        let times: Vec<DateTime<Utc>> = differs.iter().filter_map(|k| parse(k)).collect();
        let (Some(from), Some(to)) = (times.iter().min(), times.iter().max()) else { return Ok(version) };
        // Instances are found by where they are now; a moved one may lie a while away.
        let margin = chrono::Duration::days(32);
        let instances = self.instances(id, *from - margin, *to + margin).await?;
        let instance = |original: &str| instances.iter().find(|i| i.original == original).cloned();
        let master_start = master.get("start").and_then(mapping::instant);
        let length = master.get("end").and_then(mapping::instant).zip(master_start).map(|(e, s)| e - s);
        let utc_time = |t: &str| json!({"dateTime": t.trim_end_matches('Z'), "timeZone": "UTC"});
        for original in differs {
            let now = server.get(original).map(|(e, _)| e);
            match wanted.get(original) {
                Some(Exception::Cancelled) => match instance(original) {
                    Some(occurrence) => {
                        let r = GraphRequest::new(Method::DELETE, self.event_url(&occurrence.id))
                            .header("If-Match", occurrence.tag.clone())
                            .item(&occurrence.id);
                        self.client.send(&self.mailbox, "cancel occurrence", &r).await?;
                    }
                    None => {
                        tracing::warn!(folder = %self.description, %original, "no occurrence to cancel at this original start")
                    }
                },
                Some(Exception::Modified(m)) => {
                    if now == Some(&Exception::Cancelled) {
                        tracing::warn!(folder = %self.description, %original, "a cancelled occurrence cannot be restored over Graph; left cancelled");
                        continue;
                    }
                    let Some(occurrence) = instance(original) else {
                        tracing::warn!(folder = %self.description, %original, "no occurrence to edit at this original start");
                        continue;
                    };
                    let body = match &m.body {
                        Some(b) => json!({"contentType": if m.body_html { "html" } else { "text" }, "content": b}),
                        None => {
                            master.get("body").cloned().unwrap_or_else(|| json!({"contentType": "text", "content": ""}))
                        }
                    };
                    let patch = json!({
                        "start": utc_time(&m.start),
                        "end": utc_time(&m.end),
                        "subject": m.subject.clone().map_or_else(|| master.get("subject").cloned().unwrap_or(Value::Null), Value::String),
                        "location": {"displayName": m.location.clone().unwrap_or_else(|| master.get("location").and_then(|l| l.get("displayName")).and_then(Value::as_str).unwrap_or_default().to_owned())},
                        "body": body,
                    });
                    let r = GraphRequest::new(Method::PATCH, self.event_url(&occurrence.id))
                        .header("If-Match", occurrence.tag.clone())
                        .json(patch)
                        .item(&occurrence.id);
                    self.client.send(&self.mailbox, "edit occurrence", &r).await?;
                }
                None => match now {
                    Some(Exception::Cancelled) => {
                        tracing::warn!(folder = %self.description, %original, "a cancelled occurrence cannot be restored over Graph; left cancelled");
                    }
                    Some(Exception::Modified(_)) => {
                        // Back to its slot with the series' content.
                        let (Some(occurrence), Some(start), Some(length)) =
                            (instance(original), parse(original), length)
                        else {
                            continue;
                        };
                        let patch = json!({
                            "start": utc_time(&mapping::utc_text(start)),
                            "end": utc_time(&mapping::utc_text(start + length)),
                            "subject": master.get("subject").cloned().unwrap_or(Value::Null),
                            "location": {"displayName": master.get("location").and_then(|l| l.get("displayName")).and_then(Value::as_str).unwrap_or_default()},
                            "body": master.get("body").cloned().unwrap_or_else(|| json!({"contentType": "text", "content": ""})),
                        });
                        let r = GraphRequest::new(Method::PATCH, self.event_url(&occurrence.id))
                            .header("If-Match", occurrence.tag.clone())
                            .json(patch)
                            .item(&occurrence.id);
                        self.client.send(&self.mailbox, "reset occurrence", &r).await?;
                    }
                    None => {}
                },
            }
        }
        let after = self.read_event(id).await?;
        version_of(&after)
            .ok_or_else(|| GraphError::protocol("an event without change key", ErrorContext::new("get", &self.mailbox)))
    }

    /// Answers a master or single event's write, applying a series' exceptions after it.
    async fn finish_write(&self, answer: Result<GraphResponse>, item: &Item) -> core::Result<ItemVersion> {
        let r = answer.map_err(|e| self.err(e))?;
        let v = r
            .body
            .as_ref()
            .and_then(version_of)
            .ok_or_else(|| self.protocol("a write answered without id or change key", "write"))?;
        if item.text(field::RECURRENCE).is_none() {
            return Ok(v);
        }
        self.apply_exceptions(v.id.as_str(), item).await.map_err(|e| self.err(e))
    }

    async fn find_stamps(&self, origins: &[OriginStamp]) -> core::Result<Vec<Result<Vec<FetchedItem>, core::Error>>> {
        let requests: Vec<GraphRequest> = origins
            .iter()
            .map(|o| {
                let filter = format!(
                    "singleValueExtendedProperties/any(ep: ep/id eq {} and ep/value eq {})",
                    literal(&crate::mapping::origin_property_id()),
                    literal(&o.encode())
                );
                GraphRequest::new(
                    Method::GET,
                    format!("{}/events?$filter={}&{}", self.calendar_path(), query_value(&filter), Self::expand()),
                )
                .header(UTC_TIMES.0, UTC_TIMES.1)
            })
            .collect();
        let answers = self.batch("find_by_origin", &requests).await?;
        let mut out = Vec::new();
        for (answer, origin) in answers.into_iter().zip(origins) {
            let mut page = match answer {
                Ok(r) => r.body.unwrap_or(Value::Null),
                Err(e) => {
                    out.push(Err(self.err(e)));
                    continue;
                }
            };
            let mut found = Vec::new();
            for _ in 0..100 {
                for e in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                    let f = self.fetched(Some(e.clone()))?;
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

#[async_trait]
impl Connector for GraphCalendarConnector {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { change_detection: ChangeDetection::Snapshot, max_batch: MAX_BATCH, watch: false }
    }

    fn folder_id(&self) -> Option<String> {
        Some(self.calendar.id.clone())
    }

    async fn changes(&self, _token: Option<&SyncToken>) -> core::Result<ChangePage> {
        Err(core::Error::Permanent {
            message: "Graph v1.0 has no delta of a calendar's events without a date window: the calendar is listed"
                .into(),
            context: Box::new(core::ErrorContext::operation("changes").with_folder(self.description.clone())),
            source: None,
        })
    }

    async fn list(&self, cursor: Option<&PageCursor>) -> core::Result<ListPage> {
        let url = match cursor {
            Some(c) => c.0.clone(),
            None => format!(
                "{}/events?$select=id,changeKey&$top={}",
                self.calendar_path(),
                self.options.page_size.clamp(1, 1000)
            ),
        };
        let body = self.client.get_json(&self.mailbox, "list", &url).await.map_err(|e| self.err(e))?;
        let items = body.get("value").and_then(Value::as_array).into_iter().flatten().filter_map(version_of).collect();
        let next = body.get("@odata.nextLink").and_then(Value::as_str).map(|s| PageCursor(s.to_owned()));
        if next.as_ref().is_some_and(|n| Some(&n.0) == cursor.map(|c| &c.0)) {
            return Err(self.protocol("paging does not advance", "list"));
        }
        Ok(ListPage { items, next })
    }

    async fn get(&self, ids: &[ItemId]) -> core::Result<BatchResult<FetchedItem>> {
        let requests: Vec<GraphRequest> = ids
            .iter()
            .map(|id| {
                GraphRequest::new(Method::GET, format!("{}?{}", self.event_url(id.as_str()), Self::expand()))
                    .header(UTC_TIMES.0, UTC_TIMES.1)
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
                GraphRequest::new(Method::POST, format!("{}/events", self.calendar_path()))
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
                a => results.push(self.finish_write(a, &items[i].item).await),
            }
        }
        if !unknown.is_empty() {
            let stamps: Vec<OriginStamp> = unknown.iter().map(|&i| items[i].origin.clone()).collect();
            tracing::info!(folder = %self.description, creates = unknown.len(), "creates with an unknown outcome: looking them up by origin stamp");
            if let Ok(found) = self.find_stamps(&stamps).await {
                for (&i, f) in unknown.iter().zip(found) {
                    if let Ok(Some(copy)) = f.map(|v| v.into_iter().next()) {
                        results[i] =
                            self.apply_exceptions(copy.id.as_str(), &items[i].item).await.map_err(|e| self.err(e));
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
                GraphRequest::new(Method::PATCH, self.event_url(u.id.as_str()))
                    .header("If-Match", format!("W/\"{}\"", u.expected.as_str()))
                    .json({
                        let mut body = mapping::to_json(&u.item, u.origin.as_ref());
                        if let Some(previous) = &u.previous {
                            mapping::drop_unchanged_timing(&mut body, &u.item, previous);
                        }
                        body
                    })
                    .item(u.id.as_str())
            })
            .collect();
        let answers = self.batch("update", &requests).await?;
        let mut results = Vec::with_capacity(updates.len());
        for (a, u) in answers.into_iter().zip(updates) {
            results.push(self.finish_write(a, &u.item).await);
        }
        Ok(results)
    }

    async fn delete(&self, items: &[ItemDelete]) -> core::Result<BatchResult<Deleted>> {
        let requests: Vec<GraphRequest> = items
            .iter()
            .map(|d| {
                let r = GraphRequest::new(Method::DELETE, self.event_url(d.id.as_str())).item(d.id.as_str());
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
        Ok(futures::stream::pending().boxed())
    }

    fn poll_interval(&self) -> Duration {
        self.options.poll_interval
    }
}
