//! Calendars and events of the in-memory tenant, as Graph v1.0 shows them: each mailbox has a
//! default calendar (`Calendar`) and named ones; a calendar holds single events and series
//! masters. A master's occurrences are computed from its recurrence ([`crate::event`]);
//! exceptions (a moved or edited occurrence) and cancelled occurrences are kept on the master, as
//! Exchange keeps them, so that changing an occurrence changes the master's `changeKey` too.
//!
//! - **Ids**: an occurrence's id names its master and its original start; an exception keeps
//!   the id of the occurrence it replaces.
//! - **Cancelled occurrences** (an occurrence deleted) are rendered in the master's
//!   `cancelledOccurrences` as `OID.{master id}.{local date}`.
//! - **Re-timing a series** (a new recurrence, start or end on the master) drops its exceptions
//!   and cancellations, as Exchange does.
//! - **`calendarView/delta`** on a window of the default calendar (Graph v1.0 offers no delta on
//!   a calendar's events without a window): instances (single events, occurrences, exceptions)
//!   changed since the token, removals as `@removed`; stale tokens answer `410 Gone`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::GraphError;
use crate::event::{self, PropertyType};
use crate::odata::{self, Filter};
use crate::store::Store;

/// A moved or edited occurrence, kept on its master.
#[derive(Debug, Clone)]
pub struct Exception {
    /// The occurrence's own properties (`start`, `end`, `subject`, ...).
    pub properties: Map<String, Value>,
    /// Changes on every write of the occurrence.
    pub change_key: String,
}

/// One single event or series master as stored.
#[derive(Debug, Clone)]
pub struct Event {
    /// Graph id.
    pub id: String,
    /// The calendar holding it.
    pub calendar_id: String,
    /// Client-written properties, nulls dropped.
    pub properties: Map<String, Value>,
    /// Extended property values by normalized id.
    pub extended: BTreeMap<String, String>,
    /// Changes on every write (of the event or of one of its occurrences).
    pub change_key: String,
    /// Changes on writes of the event itself, not of its occurrences: the version of its
    /// occurrences that are not exceptions (an edit of one occurrence leaves the others' alone).
    pub series_key: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Last write (RFC 3339).
    pub modified: String,
    /// Sequence number of the last write.
    pub seq: u64,
    /// Cancelled occurrences by original start.
    pub cancelled: BTreeSet<DateTime<Utc>>,
    /// Exceptions by original start.
    pub exceptions: BTreeMap<DateTime<Utc>, Exception>,
}

impl Event {
    /// The entity tag of the current version.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.change_key)
    }

    /// Whether the event is a series master.
    pub fn is_master(&self) -> bool {
        self.properties.get("recurrence").is_some_and(|r| !r.is_null())
    }

    fn start(&self) -> Option<DateTime<Utc>> {
        self.properties.get("start").and_then(event::instant)
    }

    fn length(&self) -> Duration {
        match (self.start(), self.properties.get("end").and_then(event::instant)) {
            (Some(s), Some(e)) => e - s,
            _ => Duration::zero(),
        }
    }

    /// Original starts of the occurrences up to `until`, cancelled ones included.
    pub fn slots(&self, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        match (self.properties.get("recurrence"), self.properties.get("start")) {
            (Some(r), Some(s)) if !r.is_null() => event::occurrences(r, s, until),
            _ => Vec::new(),
        }
    }

    fn occurrence_id(&self, original: DateTime<Utc>) -> String {
        format!("{}_OC{}", self.id, original.format("%Y%m%dT%H%M%SZ"))
    }
}

/// One calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Graph id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Changes when the calendar is renamed.
    pub change_key: String,
    /// Events by id.
    pub events: BTreeMap<String, Event>,
    /// Ids of deleted events and instances, with the sequence number of their deletion.
    pub tombstones: BTreeMap<String, u64>,
}

/// The calendars of one mailbox.
#[derive(Debug, Clone, Default)]
pub struct MailboxCalendars {
    /// The default calendar's id.
    pub default_id: String,
    /// Calendars by id.
    pub calendars: BTreeMap<String, Calendar>,
}

/// Every mailbox's calendars (created with a default calendar on first use).
#[derive(Debug, Default)]
pub struct Calendars {
    /// By lower-case UPN.
    pub mailboxes: BTreeMap<String, MailboxCalendars>,
    seq: u64,
    ids: u64,
    /// Delta tokens of an older epoch are refused with `410 Gone`.
    pub delta_epoch: u64,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn missing() -> GraphError {
    GraphError::not_found("ErrorItemNotFound", "The specified object was not found in the store.".into())
}

/// How to render events: `$select`, extended properties to expand, whether to expand
/// `exceptionOccurrences`, and the zone of times (`Prefer: outlook.timezone`).
#[derive(Debug, Clone)]
pub struct EventShape {
    /// Only these properties (plus `id` and the entity tag); `None`: all.
    pub select: Option<Vec<String>>,
    /// Extended properties to render, by normalized id.
    pub expand: Vec<String>,
    /// Whether a master's exceptions are rendered in `exceptionOccurrences`.
    pub exceptions: bool,
    /// The zone times are rendered in.
    pub zone: String,
}

impl EventShape {
    /// Reads `$select`, `$expand` and `Prefer: outlook.timezone`.
    pub fn from_request(q: &BTreeMap<String, String>, headers: &BTreeMap<String, String>) -> Result<Self, GraphError> {
        let select = q.get("$select").map(|s| s.split(',').map(|p| p.trim().to_owned()).collect::<Vec<_>>());
        let mut expand = Vec::new();
        let mut exceptions = false;
        if let Some(e) = q.get("$expand") {
            for part in split_top_level(e) {
                if part.trim() == "exceptionOccurrences" {
                    exceptions = true;
                } else {
                    expand.extend(
                        odata::parse_expand(part.trim()).map_err(|m| GraphError::bad_request("BadRequest", m))?,
                    );
                }
            }
        }
        let zone = headers
            .get("prefer")
            .and_then(|p| {
                p.split(',').find_map(|part| {
                    part.trim().strip_prefix("outlook.timezone=").map(|z| z.trim_matches('"').to_owned())
                })
            })
            .unwrap_or_else(|| "UTC".to_owned());
        if event::Zone::by_id(&zone).is_none() {
            return Err(GraphError::bad_request(
                "ErrorTimeZoneNotSupported",
                format!("The time zone '{zone}' is not supported."),
            ));
        }
        Ok(EventShape { select, expand, exceptions, zone })
    }

    fn wanted(&self, name: &str) -> bool {
        self.select.as_ref().is_none_or(|s| s.iter().any(|n| n == name))
    }
}

impl Default for EventShape {
    fn default() -> Self {
        EventShape { select: None, expand: Vec::new(), exceptions: false, zone: "UTC".into() }
    }
}

/// Splits `a,b($filter=x eq 'y,z'),c` at the commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut from, mut out) = (0i32, false, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[from..]);
    out
}

/// What an instance is: a single event or master as stored, or an occurrence of a master.
enum Instance<'a> {
    Stored(&'a Event),
    Occurrence { master: &'a Event, original: DateTime<Utc> },
}

fn render_times(
    o: &mut Map<String, Value>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    shape: &EventShape,
) {
    if shape.wanted("start") {
        o.insert("start".into(), start.map_or(Value::Null, |t| event::render_time(t, &shape.zone)));
    }
    if shape.wanted("end") {
        o.insert("end".into(), end.map_or(Value::Null, |t| event::render_time(t, &shape.zone)));
    }
}

fn zone_of(e: &Event, which: &str) -> Value {
    e.properties.get(which).and_then(|v| v.get("timeZone")).cloned().unwrap_or_else(|| json!("UTC"))
}

/// The JSON Graph answers for an event or an instance.
fn render(instance: &Instance<'_>, shape: &EventShape) -> Value {
    let (base, ty) = match instance {
        Instance::Stored(e) => (*e, if e.is_master() { "seriesMaster" } else { "singleInstance" }),
        Instance::Occurrence { master, original } => {
            (*master, if master.exceptions.contains_key(original) { "exception" } else { "occurrence" })
        }
    };
    let exception = match instance {
        Instance::Occurrence { master, original } => master.exceptions.get(original),
        Instance::Stored(_) => None,
    };
    let mut o = Map::new();
    let (id, change_key) = match instance {
        Instance::Stored(e) => (e.id.clone(), e.change_key.clone()),
        Instance::Occurrence { master, original } => {
            (master.occurrence_id(*original), exception.map_or(master.series_key.clone(), |x| x.change_key.clone()))
        }
    };
    o.insert("@odata.etag".into(), json!(format!("W/\"{change_key}\"")));
    o.insert("id".into(), json!(id));
    let server = [
        ("createdDateTime", json!(base.created)),
        ("lastModifiedDateTime", json!(base.modified)),
        ("changeKey", json!(change_key)),
        ("type", json!(ty)),
        ("originalStartTimeZone", zone_of(base, "start")),
        ("originalEndTimeZone", zone_of(base, "end")),
        ("isCancelled", json!(false)),
        ("isOrganizer", json!(true)),
    ];
    for (name, value) in server {
        if shape.wanted(name) {
            o.insert(name.into(), value);
        }
    }
    for (name, ty) in event::WRITABLE {
        if !shape.wanted(name) || *name == "start" || *name == "end" {
            continue;
        }
        let own = exception.and_then(|x| x.properties.get(*name));
        let value = match (instance, *name) {
            (Instance::Occurrence { .. }, "recurrence") => Value::Null,
            _ => own.or_else(|| base.properties.get(*name)).cloned().unwrap_or_else(|| empty_value(name, *ty)),
        };
        o.insert((*name).into(), value);
    }
    match instance {
        Instance::Stored(e) => render_times(&mut o, e.start(), e.properties.get("end").and_then(event::instant), shape),
        Instance::Occurrence { master, original } => {
            let start = exception.and_then(|x| x.properties.get("start")).and_then(event::instant).unwrap_or(*original);
            let end = exception
                .and_then(|x| x.properties.get("end"))
                .and_then(event::instant)
                .unwrap_or(*original + master.length());
            render_times(&mut o, Some(start), Some(end), shape);
            if shape.wanted("seriesMasterId") {
                o.insert("seriesMasterId".into(), json!(master.id));
            }
            if shape.wanted("originalStart") {
                o.insert("originalStart".into(), json!(event::offset_text(*original)));
            }
        }
    }
    if let Instance::Stored(e) = instance {
        if e.is_master() && shape.wanted("cancelledOccurrences") {
            let start = e.properties.get("start").cloned().unwrap_or(Value::Null);
            let list: Vec<Value> = e
                .cancelled
                .iter()
                .map(|t| json!(format!("OID.{}.{}", e.id, event::local_date(*t, &start).format("%Y-%m-%d"))))
                .collect();
            o.insert("cancelledOccurrences".into(), Value::Array(list));
        }
        if e.is_master() && shape.exceptions {
            let inner = EventShape { select: None, expand: Vec::new(), exceptions: false, zone: shape.zone.clone() };
            let list: Vec<Value> = e
                .exceptions
                .keys()
                .map(|original| render(&Instance::Occurrence { master: e, original: *original }, &inner))
                .collect();
            o.insert("exceptionOccurrences".into(), Value::Array(list));
        }
    }
    if !shape.expand.is_empty() {
        let props: Vec<Value> =
            shape.expand.iter().filter_map(|id| base.extended.get(id).map(|v| json!({"id": id, "value": v}))).collect();
        o.insert("singleValueExtendedProperties".into(), Value::Array(props));
    }
    Value::Object(o)
}

fn empty_value(name: &str, ty: PropertyType) -> Value {
    match (name, ty) {
        (_, PropertyType::TextList | PropertyType::Attendees) => json!([]),
        (_, PropertyType::Bool) => json!(false),
        ("reminderMinutesBeforeStart", _) => json!(15),
        ("showAs", _) => json!("busy"),
        ("sensitivity" | "importance", _) => json!("normal"),
        (_, PropertyType::Body) => json!({"contentType": "text", "content": ""}),
        (_, PropertyType::Location) => json!({"displayName": "", "locationType": "default", "uniqueIdType": "unknown"}),
        _ => Value::Null,
    }
}

type EventWrite = (Map<String, Value>, Vec<(String, String)>);

/// Splits an event body into the properties to store and the extended properties to set.
fn read_body(body: &Value, allowed: Option<&[&str]>) -> Result<EventWrite, GraphError> {
    let Some(obj) = body.as_object() else {
        return Err(GraphError::bad_request("RequestBodyRead", "The request body must be a JSON object.".into()));
    };
    let mut props = Map::new();
    let mut extended = Vec::new();
    for (k, v) in obj {
        if k.starts_with("@odata.") || event::SERVER_MAINTAINED.contains(&k.as_str()) {
            continue;
        }
        if k == "singleValueExtendedProperties" {
            for p in v.as_array().into_iter().flatten() {
                let id = p.get("id").and_then(Value::as_str).and_then(odata::normalize_property_id);
                match (id, p.get("value").and_then(Value::as_str)) {
                    (Some(id), Some(value)) => extended.push((id, value.to_owned())),
                    _ => {
                        return Err(GraphError::bad_request(
                            "ErrorInvalidProperty",
                            format!("The extended property {p} has no valid id or value."),
                        ));
                    }
                }
            }
            continue;
        }
        let Some(ty) = event::property_type(k) else {
            return Err(GraphError::bad_request(
                "RequestBodyRead",
                format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        };
        if allowed.is_some_and(|a| !a.contains(&k.as_str())) {
            return Err(GraphError::bad_request(
                "ErrorInvalidPropertyForOperation",
                format!("The property '{k}' cannot be set on an occurrence of a series."),
            ));
        }
        event::check_value(k, ty, v).map_err(|m| GraphError::bad_request("RequestBodyRead", m))?;
        if !v.is_null() {
            props.insert(k.clone(), v.clone());
        }
    }
    Ok((props, extended))
}

/// An occurrence id split into its master's id and original start.
fn split_occurrence(id: &str) -> Option<(&str, DateTime<Utc>)> {
    let (master, when) = id.rsplit_once("_OC")?;
    let t = chrono::NaiveDateTime::parse_from_str(when, "%Y%m%dT%H%M%SZ").ok()?;
    Some((master, t.and_utc()))
}

fn check_if_match(tag: &str, if_match: Option<&str>) -> Result<(), GraphError> {
    match if_match {
        Some(t) if t.trim() != "*" && t.trim() != tag => Err(GraphError::new(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.".into(),
        )),
        _ => Ok(()),
    }
}

fn check_times(props: &Map<String, Value>) -> Result<(), GraphError> {
    let all_day = props.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
    let (start, end) = (props.get("start").and_then(event::instant), props.get("end").and_then(event::instant));
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(GraphError::bad_request(
            "ErrorInvalidRequest",
            "The end of an event cannot be before its start.".into(),
        ));
    }
    if all_day {
        let midnight = |k: &str| {
            props
                .get(k)
                .and_then(|v| v.get("dateTime"))
                .and_then(Value::as_str)
                .and_then(event::local_time)
                .is_none_or(|t| t.time() == chrono::NaiveTime::MIN)
        };
        if !(midnight("start") && midnight("end")) {
            return Err(GraphError::bad_request(
                "ErrorInvalidRequest",
                "An all-day event's start and end must be at midnight.".into(),
            ));
        }
    }
    Ok(())
}

impl Calendars {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        let u = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}{}{:06}", &u[..20], self.ids)
    }

    /// Test knob: every calendar delta token issued so far is refused from now on.
    pub fn expire_delta_tokens(&mut self) {
        self.delta_epoch += 1;
    }
}

/// The mailbox's calendars, created with the default calendar on first use.
fn mailbox<'a>(store: &'a mut Store, user: &str) -> Result<&'a mut MailboxCalendars, GraphError> {
    let upn = store.mailbox(user)?.upn.to_ascii_lowercase();
    if !store.calendars.mailboxes.contains_key(&upn) {
        let id = store.calendars.new_id("AAMkCAL");
        let ck = store.calendars.new_id("DwAAAB");
        let default = Calendar {
            id: id.clone(),
            name: "Calendar".into(),
            change_key: ck,
            events: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        };
        store
            .calendars
            .mailboxes
            .insert(upn.clone(), MailboxCalendars { default_id: id.clone(), calendars: [(id, default)].into() });
    }
    store.calendars.mailboxes.get_mut(&upn).ok_or_else(missing)
}

fn calendar<'a>(m: &'a mut MailboxCalendars, key: Option<&str>) -> Result<&'a mut Calendar, GraphError> {
    let id = match key {
        None => m.default_id.clone(),
        Some(k) if k.eq_ignore_ascii_case("calendar") => m.default_id.clone(),
        Some(k) => k.to_owned(),
    };
    m.calendars.get_mut(&id).ok_or_else(missing)
}

fn render_calendar(c: &Calendar, default: bool) -> Value {
    json!({
        "@odata.etag": format!("W/\"{}\"", c.change_key),
        "id": c.id, "name": c.name, "changeKey": c.change_key, "color": "auto", "hexColor": "",
        "isDefaultCalendar": default, "canEdit": true, "canShare": default, "canViewPrivateItems": true,
        "isRemovable": !default,
    })
}

/// Finds a stored event (by its id) or an occurrence (by an occurrence id) in a mailbox.
fn locate(
    m: &mut MailboxCalendars,
    cal: Option<&str>,
    id: &str,
) -> Result<(String, String, Option<DateTime<Utc>>), GraphError> {
    let (event_id, original) = match split_occurrence(id) {
        Some((master, t)) => (master, Some(t)),
        None => (id, None),
    };
    let calendars: Vec<String> = match cal {
        Some(_) => vec![calendar(m, cal)?.id.clone()],
        None => m.calendars.keys().cloned().collect(),
    };
    for c in calendars {
        if let Some(e) = m.calendars.get(&c).and_then(|c| c.events.get(event_id)) {
            if let Some(t) = original {
                let is_slot = e.slots(t).contains(&t) && !e.cancelled.contains(&t);
                if !is_slot {
                    return Err(missing());
                }
            }
            return Ok((c, event_id.to_owned(), original));
        }
    }
    Err(missing())
}

/// `GET users/{u}/calendars` (optionally `$filter=name eq '...'`).
pub fn list_calendars(store: &mut Store, user: &str, filter: Option<&Filter>) -> Result<Vec<Value>, GraphError> {
    let m = mailbox(store, user)?;
    Ok(m.calendars
        .values()
        .filter(|c| match filter {
            Some(Filter::DisplayNameEquals(n)) => c.name.eq_ignore_ascii_case(n),
            _ => true,
        })
        .map(|c| render_calendar(c, c.id == m.default_id))
        .collect())
}

/// `GET users/{u}/calendars/{c}` (or `users/{u}/calendar`).
pub fn get_calendar(store: &mut Store, user: &str, cal: Option<&str>) -> Result<Value, GraphError> {
    let m = mailbox(store, user)?;
    let default = m.default_id.clone();
    let c = calendar(m, cal)?;
    Ok(render_calendar(c, c.id == default))
}

/// `POST users/{u}/calendars`.
pub fn create_calendar(store: &mut Store, user: &str, body: &Value) -> Result<Value, GraphError> {
    let name = body.get("name").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(GraphError::bad_request("ErrorInvalidParameter", "name is required.".into()));
    }
    let id = store.calendars.new_id("AAMkCAL");
    let ck = store.calendars.new_id("DwAAAB");
    let m = mailbox(store, user)?;
    if m.calendars.values().any(|c| c.name.eq_ignore_ascii_case(&name)) {
        return Err(GraphError::new(
            409,
            "ErrorFolderExists",
            "A folder with the specified name already exists.".into(),
        ));
    }
    let c = Calendar { id: id.clone(), name, change_key: ck, events: BTreeMap::new(), tombstones: BTreeMap::new() };
    let rendered = render_calendar(&c, false);
    m.calendars.insert(id, c);
    Ok(rendered)
}

/// `DELETE users/{u}/calendars/{c}` (not the default calendar).
pub fn delete_calendar(store: &mut Store, user: &str, cal: &str) -> Result<(), GraphError> {
    let m = mailbox(store, user)?;
    let id = calendar(m, Some(cal))?.id.clone();
    if id == m.default_id {
        return Err(GraphError::new(
            400,
            "ErrorCannotDeleteDefaultCalendar",
            "The default calendar cannot be deleted.".into(),
        ));
    }
    m.calendars.remove(&id);
    Ok(())
}

/// `GET .../events`: single events and series masters, matching a filter.
pub fn list_events(
    store: &mut Store,
    user: &str,
    cal: Option<&str>,
    filter: Option<&Filter>,
    shape: &EventShape,
) -> Result<Vec<Value>, GraphError> {
    let m = mailbox(store, user)?;
    if matches!(filter, Some(Filter::MailEquals(_))) {
        return Err(GraphError::bad_request(
            "ErrorInvalidProperty",
            "The property used in the $filter is not supported here.".into(),
        ));
    }
    let calendars: Vec<&Calendar> = match cal {
        Some(_) => vec![&*calendar(m, cal)?],
        None => vec![&*calendar(m, None)?],
    };
    Ok(calendars
        .into_iter()
        .flat_map(|c| c.events.values())
        .filter(|e| match filter {
            Some(Filter::ExtendedPropertyEquals { id, value }) => e.extended.get(id) == Some(value),
            Some(Filter::DisplayNameEquals(n)) => e.properties.get("subject").and_then(Value::as_str) == Some(n),
            Some(Filter::MailEquals(_)) | None => true,
        })
        .map(|e| render(&Instance::Stored(e), shape))
        .collect())
}

/// `GET .../events/{id}` (a single event, master, occurrence or exception).
pub fn get_event(
    store: &mut Store,
    user: &str,
    cal: Option<&str>,
    id: &str,
    shape: &EventShape,
) -> Result<Value, GraphError> {
    let m = mailbox(store, user)?;
    let (c, event_id, original) = locate(m, cal, id)?;
    let e = m.calendars.get(&c).and_then(|c| c.events.get(&event_id)).ok_or_else(missing)?;
    Ok(match original {
        Some(t) => render(&Instance::Occurrence { master: e, original: t }, shape),
        None => render(&Instance::Stored(e), shape),
    })
}

/// `POST .../events`.
pub fn create_event(store: &mut Store, user: &str, cal: Option<&str>, body: &Value) -> Result<Value, GraphError> {
    let (props, extended) = read_body(body, None)?;
    if props.get("start").is_none() || props.get("end").is_none() {
        return Err(GraphError::bad_request("ErrorInvalidRequest", "An event needs a start and an end.".into()));
    }
    check_times(&props)?;
    let id = store.calendars.new_id("AAMkEV");
    let ck = store.calendars.new_id("DwAAAB");
    let seq = store.calendars.next_seq();
    let m = mailbox(store, user)?;
    let c = calendar(m, cal)?;
    let at = now();
    let e = Event {
        id: id.clone(),
        calendar_id: c.id.clone(),
        properties: props,
        extended: extended.into_iter().collect(),
        series_key: ck.clone(),
        change_key: ck,
        created: at.clone(),
        modified: at,
        seq,
        cancelled: BTreeSet::new(),
        exceptions: BTreeMap::new(),
    };
    let rendered = render(&Instance::Stored(&e), &EventShape::default());
    c.events.insert(id, e);
    Ok(rendered)
}

/// `PATCH .../events/{id}`: an event or master (re-timing a series drops its exceptions), or one
/// occurrence (which becomes an exception).
pub fn update_event(
    store: &mut Store,
    user: &str,
    cal: Option<&str>,
    id: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Result<Value, GraphError> {
    let ck = store.calendars.new_id("DwAAAB");
    let ck2 = store.calendars.new_id("DwAAAB");
    let seq = store.calendars.next_seq();
    let m = mailbox(store, user)?;
    let (c, event_id, original) = locate(m, cal, id)?;
    let e = m.calendars.get_mut(&c).and_then(|c| c.events.get_mut(&event_id)).ok_or_else(missing)?;
    match original {
        Some(t) => {
            let (props, _) = read_body(body, Some(event::OCCURRENCE_WRITABLE))?;
            let tag = format!("W/\"{}\"", e.exceptions.get(&t).map_or(&e.series_key, |x| &x.change_key));
            check_if_match(&tag, if_match)?;
            let x = e
                .exceptions
                .entry(t)
                .or_insert_with(|| Exception { properties: Map::new(), change_key: String::new() });
            x.properties.extend(props);
            x.change_key = ck2;
            e.change_key = ck;
            e.modified = now();
            e.seq = seq;
            Ok(render(&Instance::Occurrence { master: e, original: t }, &EventShape::default()))
        }
        None => {
            let (props, extended) = read_body(body, None)?;
            check_if_match(&e.etag(), if_match)?;
            // Re-timed: the occurrences fall elsewhere or the series' times changed (compared by
            // where they put the occurrences, not by how the recurrence is spelled).
            let horizon = Utc::now() + Duration::days(366 * 5);
            let timing = |e: &Event| (e.slots(horizon), e.start(), e.properties.get("end").and_then(event::instant));
            let before = timing(e);
            let mut next = e.properties.clone();
            for (k, v) in body.as_object().into_iter().flatten() {
                if v.is_null() && event::property_type(k).is_some() {
                    next.remove(k);
                }
            }
            next.extend(props);
            check_times(&next)?;
            e.properties = next;
            let after = timing(e);
            if before != after {
                e.exceptions.clear();
                e.cancelled.clear();
            }
            e.extended.extend(extended);
            e.series_key = ck.clone();
            e.change_key = ck;
            e.modified = now();
            e.seq = seq;
            Ok(render(&Instance::Stored(e), &EventShape::default()))
        }
    }
}

/// `DELETE .../events/{id}`: an event or a whole series, or one occurrence (cancelled).
pub fn delete_event(
    store: &mut Store,
    user: &str,
    cal: Option<&str>,
    id: &str,
    if_match: Option<&str>,
) -> Result<(), GraphError> {
    let ck = store.calendars.new_id("DwAAAB");
    let seq = store.calendars.next_seq();
    let m = mailbox(store, user)?;
    let (c, event_id, original) = locate(m, cal, id)?;
    let calendar = m.calendars.get_mut(&c).ok_or_else(missing)?;
    let e = calendar.events.get_mut(&event_id).ok_or_else(missing)?;
    match original {
        Some(t) => {
            let tag = format!("W/\"{}\"", e.exceptions.get(&t).map_or(&e.series_key, |x| &x.change_key));
            check_if_match(&tag, if_match)?;
            e.exceptions.remove(&t);
            e.cancelled.insert(t);
            e.change_key = ck;
            e.modified = now();
            e.seq = seq;
            let occurrence = e.occurrence_id(t);
            calendar.tombstones.insert(occurrence, seq);
        }
        None => {
            check_if_match(&e.etag(), if_match)?;
            let horizon = Utc::now() + Duration::days(366 * 3);
            let instances: Vec<String> = e.slots(horizon).into_iter().map(|t| e.occurrence_id(t)).collect();
            calendar.events.remove(&event_id);
            calendar.tombstones.insert(event_id, seq);
            for i in instances {
                calendar.tombstones.insert(i, seq);
            }
        }
    }
    Ok(())
}

fn window(q: &BTreeMap<String, String>) -> Result<(DateTime<Utc>, DateTime<Utc>), GraphError> {
    let read = |k: &str| {
        q.get(k).and_then(|v| {
            chrono::DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| event::local_time(v).map(|t| t.and_utc()))
        })
    };
    match (read("startDateTime"), read("endDateTime")) {
        (Some(s), Some(e)) if s <= e => Ok((s, e)),
        _ => Err(GraphError::bad_request(
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.".into(),
        )),
    }
}

/// The instances of one event within a window: itself if single, else its occurrences and
/// exceptions (by the time they now have), cancelled ones left out.
fn instances_of<'a>(e: &'a Event, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Instance<'a>> {
    if !e.is_master() {
        let (s, end) = (e.start(), e.properties.get("end").and_then(event::instant));
        return match (s, end) {
            (Some(s), Some(end)) if s < to && end > from => vec![Instance::Stored(e)],
            _ => Vec::new(),
        };
    }
    let length = e.length();
    let horizon = to + Duration::days(366);
    e.slots(horizon)
        .into_iter()
        .filter(|t| !e.cancelled.contains(t))
        .filter(|t| {
            let x = e.exceptions.get(t);
            let start = x.and_then(|x| x.properties.get("start")).and_then(event::instant).unwrap_or(*t);
            let end = x.and_then(|x| x.properties.get("end")).and_then(event::instant).unwrap_or(*t + length);
            start < to && end > from
        })
        .map(|t| Instance::Occurrence { master: e, original: t })
        .collect()
}

/// `GET .../events/{id}/instances?startDateTime=...&endDateTime=...`.
pub fn instances(
    store: &mut Store,
    user: &str,
    cal: Option<&str>,
    id: &str,
    q: &BTreeMap<String, String>,
    shape: &EventShape,
) -> Result<Vec<Value>, GraphError> {
    let (from, to) = window(q)?;
    let m = mailbox(store, user)?;
    let (c, event_id, original) = locate(m, cal, id)?;
    if original.is_some() {
        return Err(GraphError::bad_request("ErrorInvalidRequest", "Instances are listed on a series master.".into()));
    }
    let e = m.calendars.get(&c).and_then(|c| c.events.get(&event_id)).ok_or_else(missing)?;
    Ok(instances_of(e, from, to).iter().map(|i| render(i, shape)).collect())
}

/// One page of a `calendarView/delta` round.
#[derive(Debug)]
pub struct DeltaPage {
    /// Changed instances and removals.
    pub value: Vec<Value>,
    /// The skip token of the next page.
    pub skip_token: Option<String>,
    /// On the last page: the delta token of the next round.
    pub delta_token: Option<String>,
}

/// One page of `GET users/{u}/calendarView/delta?startDateTime&endDateTime` on the default
/// calendar (tokens: `s{epoch}.{from}.{upto}.{offset}` and `d{epoch}.{upto}`).
pub fn calendar_view_delta(
    store: &mut Store,
    user: &str,
    q: &BTreeMap<String, String>,
    page_size: usize,
    shape: &EventShape,
) -> Result<DeltaPage, GraphError> {
    let gone = || {
        GraphError::new(
            410,
            "SyncStateNotFound",
            "The sync state generation is older than the minimum retained; resynchronize from the start.".into(),
        )
    };
    let (epoch, current) = (store.calendars.delta_epoch, store.calendars.seq);
    let token = q.get("$skiptoken").or_else(|| q.get("$deltatoken"));
    let (from, upto, offset) = match token {
        Some(t) => {
            let (kind, rest) = t.split_at_checked(1).ok_or_else(gone)?;
            let n: Vec<u64> = rest.split('.').map(str::parse).collect::<Result<_, _>>().map_err(|_| gone())?;
            match (kind, n.as_slice()) {
                ("s", [e, f, u, o]) if *e == epoch => (*f, *u, *o as usize),
                ("d", [e, u]) if *e == epoch && *u <= current => (*u, current, 0),
                _ => return Err(gone()),
            }
        }
        None => (0, current, 0),
    };
    let (wfrom, wto) = window(q)?;
    let m = mailbox(store, user)?;
    let c = calendar(m, None)?;
    let mut changes: Vec<(u64, String, Value)> = Vec::new();
    for e in c.events.values().filter(|e| e.seq > from && e.seq <= upto) {
        for i in instances_of(e, wfrom, wto) {
            let v = render(&i, shape);
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            changes.push((e.seq, id, v));
        }
    }
    if from > 0 {
        for (id, s) in c.tombstones.iter().filter(|(_, s)| **s > from && **s <= upto) {
            changes.push((
                *s,
                id.clone(),
                json!({"@odata.type": "#microsoft.graph.event", "id": id, "@removed": {"reason": "deleted"}}),
            ));
        }
    }
    changes.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = changes.len();
    let value: Vec<Value> = changes.into_iter().skip(offset).take(page_size.max(1)).map(|(_, _, v)| v).collect();
    let delivered = offset + value.len();
    if delivered < total {
        Ok(DeltaPage { value, skip_token: Some(format!("s{epoch}.{from}.{upto}.{delivered}")), delta_token: None })
    } else {
        Ok(DeltaPage { value, skip_token: None, delta_token: Some(format!("d{epoch}.{upto}")) })
    }
}

/// Test access: the events of a mailbox's calendar by name, as stored.
pub fn events_in(store: &mut Store, user: &str, name: &str) -> Vec<Event> {
    let Ok(m) = mailbox(store, user) else { return Vec::new() };
    m.calendars
        .values()
        .filter(|c| c.name.eq_ignore_ascii_case(name))
        .flat_map(|c| c.events.values().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let mut s = Store::default();
        s.add_mailbox("alice@contoso.test", "Alice", false);
        s
    }

    fn weekly() -> Value {
        json!({
            "subject": "Stand-up",
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-03-02T09:15:00", "timeZone": "W. Europe Standard Time"},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 5}}
        })
    }

    fn window_query() -> BTreeMap<String, String> {
        [
            ("startDateTime".to_owned(), "2026-03-01T00:00:00Z".to_owned()),
            ("endDateTime".to_owned(), "2026-04-30T00:00:00Z".to_owned()),
        ]
        .into()
    }

    #[test]
    fn occurrences_become_exceptions_or_cancellations_and_bump_the_master() {
        let mut s = store();
        let u = "alice@contoso.test";
        let master = create_event(&mut s, u, None, &weekly()).unwrap();
        let id = master["id"].as_str().unwrap().to_owned();
        assert_eq!(master["type"], "seriesMaster");
        let all = instances(&mut s, u, None, &id, &window_query(), &EventShape::default()).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0]["start"]["dateTime"], "2026-03-02T08:00:00.0000000");
        assert_eq!(all[4]["start"]["dateTime"], "2026-03-30T07:00:00.0000000", "summer time in Berlin");
        let second = all[1]["id"].as_str().unwrap().to_owned();
        let third = all[2]["id"].as_str().unwrap().to_owned();
        let moved = update_event(&mut s, u, None, &second, None, &json!({"subject": "Moved", "start": {"dateTime": "2026-03-10T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-03-10T10:15:00", "timeZone": "UTC"}})).unwrap();
        assert_eq!(moved["type"], "exception");
        assert_eq!(moved["originalStart"], "2026-03-09T08:00:00Z");
        // Occurrences carry their own entity tags: a moved one's old tag is stale, an untouched
        // sibling's stays valid.
        let stale = all[1]["@odata.etag"].as_str().unwrap();
        let refused = update_event(&mut s, u, None, &second, Some(stale), &json!({"subject": "late"}));
        assert_eq!(refused.unwrap_err().status, 412);
        let sibling = all[3]["@odata.etag"].as_str().unwrap();
        let fourth = all[3]["id"].as_str().unwrap().to_owned();
        update_event(&mut s, u, None, &fourth, Some(sibling), &json!({"subject": "Fourth"})).unwrap();
        delete_event(&mut s, u, None, &third, None).unwrap();
        let shape = EventShape { exceptions: true, ..EventShape::default() };
        let master2 = get_event(&mut s, u, None, &id, &shape).unwrap();
        assert_ne!(master2["changeKey"], master["changeKey"]);
        assert_eq!(master2["cancelledOccurrences"], json!([format!("OID.{id}.2026-03-16")]));
        assert_eq!(master2["exceptionOccurrences"][0]["subject"], "Moved");
        assert_eq!(master2["exceptionOccurrences"][1]["subject"], "Fourth");
        assert_eq!(instances(&mut s, u, None, &id, &window_query(), &EventShape::default()).unwrap().len(), 4);
        // A stale entity tag is refused; re-timing the series drops its exceptions.
        let stale =
            update_event(&mut s, u, None, &id, Some(master["@odata.etag"].as_str().unwrap()), &json!({"subject": "x"}));
        assert_eq!(stale.unwrap_err().status, 412);
        update_event(&mut s, u, None, &id, None, &json!({"start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "W. Europe Standard Time"}, "end": {"dateTime": "2026-03-02T10:15:00", "timeZone": "W. Europe Standard Time"}})).unwrap();
        let master3 = get_event(&mut s, u, None, &id, &shape).unwrap();
        assert_eq!(master3["cancelledOccurrences"], json!([]));
        assert_eq!(master3["exceptionOccurrences"], json!([]));
    }

    #[test]
    fn calendar_view_delta_reports_instances_and_removals() {
        let mut s = store();
        let u = "alice@contoso.test";
        let master = create_event(&mut s, u, None, &weekly()).unwrap();
        let id = master["id"].as_str().unwrap().to_owned();
        let first = calendar_view_delta(&mut s, u, &window_query(), 3, &EventShape::default()).unwrap();
        assert_eq!(first.value.len(), 3);
        let mut q = window_query();
        q.insert("$skiptoken".into(), first.skip_token.unwrap());
        let second = calendar_view_delta(&mut s, u, &q, 3, &EventShape::default()).unwrap();
        assert_eq!(second.value.len(), 2);
        let token = second.delta_token.unwrap();
        delete_event(&mut s, u, None, &id, None).unwrap();
        let mut q = window_query();
        q.insert("$deltatoken".into(), token.clone());
        let removed = calendar_view_delta(&mut s, u, &q, 50, &EventShape::default()).unwrap();
        assert!(removed.value.iter().any(|v| v["id"] == json!(id) && v["@removed"]["reason"] == "deleted"));
        assert_eq!(removed.value.len(), 6, "the master and its five occurrences");
        s.calendars.expire_delta_tokens();
        assert_eq!(calendar_view_delta(&mut s, u, &q, 50, &EventShape::default()).unwrap_err().status, 410);
    }
}
