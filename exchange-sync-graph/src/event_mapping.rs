//! Mapping between Graph's `event` resource and the core's calendar items, both ways, with the
//! **same canonical fields and value forms as the EWS connector**, so that an event read over
//! Graph and the same appointment read over EWS hash the same (a hybrid group agrees).
//!
//! | Canonical field | Graph property |
//! |---|---|
//! | `subject`, body, categories | `subject`, `body` (text or HTML), `categories` |
//! | `sensitivity`, `importance` | `sensitivity`, `importance` (the same lower-case values) |
//! | `free_busy` | `showAs` (`workingElsewhere` is `working_elsewhere`, `unknown` is `no_data`) |
//! | `reminder.is_set`, `reminder.minutes_before_start` | `isReminderOn`, `reminderMinutesBeforeStart` |
//! | `start`, `end` (UTC) | `start`, `end` (`dateTimeTimeZone`; written in the item's zone) |
//! | `start_time_zone`, `end_time_zone` | `originalStartTimeZone`, `originalEndTimeZone` (Windows ids) |
//! | `is_all_day` | `isAllDay` |
//! | `location` | `location.displayName` |
//! | `recurrence` | `recurrence` (`patternedRecurrence`), as the EWS connector's canonical text (below) |
//! | `recurrence.exception.<original start>` | `cancelledOccurrences` and `exceptionOccurrences` of a series master |
//! | `attendees` | the extended property `String {c87d849c-...} Name Attendees` (the EWS connector's), else the meeting's `attendees` |
//! | `server.*` | `lastModifiedDateTime`, `createdDateTime` (read only) |
//!
//! **Recurrence text.** The EWS connector keeps a recurrence as its EWS pattern and range with
//! their children in schema order, e.g.
//! `WeeklyRecurrence(Interval=1,DaysOfWeek=Monday Wednesday)|NumberedRecurrence(StartDate=2026-03-02,NumberOfOccurrences=10)`;
//! Graph's `patternedRecurrence` is translated to and from the same text (days of the week in
//! week order from Sunday, months by name). Graph has no `Day` / `Weekday` / `WeekendDay` day
//! sets: they are written as the days they stand for (and read back so).
//!
//! **Exceptions** are one field per occurrence, named by its original start in UTC, as on the
//! EWS side: `cancelled`, or a JSON [`Modified`] with the occurrence's times and what differs
//! from the master (subject, location, body). A cancelled occurrence's original start is its
//! date in `cancelledOccurrences` (`OID.{master}.{date}`) at the master's local start time in
//! its zone.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use exchange_sync_core::item::{Body, BodyFormat, FieldValue, Item, ItemKind};
use exchange_sync_core::{OriginStamp, field};
use serde_json::{Map, Value, json};

use crate::mapping::{PROPERTY_SET_ID, origin_of, origin_property_id, same_property_id};
use crate::time_zone::Zone;

/// The canonical field of the end's time zone (the EWS connector's name).
pub const END_TIME_ZONE: &str = "end_time_zone";

/// Prefix of the per-occurrence exception fields (the EWS connector's).
pub const EXCEPTION_PREFIX: &str = "recurrence.exception.";

/// The value of a cancelled occurrence.
pub const CANCELLED: &str = "cancelled";

/// The named property holding a meeting's attendees as text on copies (the EWS connector's).
pub const ATTENDEES_PROPERTY: &str = "Attendees";

/// The Graph id of the attendees' extended property.
pub fn attendees_property_id() -> String {
    format!("String {{{PROPERTY_SET_ID}}} Name {ATTENDEES_PROPERTY}")
}

/// A modified occurrence: its own times, and what differs from the master (`None`: as the
/// master has it). Serialized as the EWS connector serializes it (same fields, same order).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Modified {
    /// Start, UTC, RFC 3339.
    pub start: String,
    /// End, UTC, RFC 3339.
    pub end: String,
    /// Subject of the occurrence, when it differs from the master's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Location of the occurrence, when it differs from the master's (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Body of the occurrence, when it differs from the master's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether `body` is HTML.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_html: bool,
}

/// What one occurrence of a series shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exception {
    /// The occurrence is cancelled.
    Cancelled,
    /// The occurrence is moved or edited.
    Modified(Modified),
}

impl Exception {
    /// The canonical field value.
    pub fn encode(&self) -> String {
        match self {
            Exception::Cancelled => CANCELLED.to_owned(),
            Exception::Modified(m) => serde_json::to_string(m).unwrap_or_default(),
        }
    }

    /// Reads a canonical field value; `None` if malformed.
    pub fn decode(text: &str) -> Option<Self> {
        if text.trim() == CANCELLED {
            return Some(Exception::Cancelled);
        }
        serde_json::from_str(text).ok().map(Exception::Modified)
    }
}

/// The exceptions an item asks for, by original start.
pub fn wanted(item: &Item) -> BTreeMap<String, Exception> {
    item.fields
        .iter()
        .filter_map(|(name, value)| {
            let original = name.strip_prefix(EXCEPTION_PREFIX)?;
            Some((original.to_owned(), Exception::decode(value.as_text()?)?))
        })
        .collect()
}

/// An instant as the canonical text of times in exception fields.
pub fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// The UTC instant of a `dateTimeTimeZone` (a zone the table does not know counts as UTC).
pub fn instant(v: &Value) -> Option<DateTime<Utc>> {
    let local = v.get("dateTime").and_then(Value::as_str)?;
    let t = local.trim().trim_end_matches('Z');
    let naive = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let zone = v.get("timeZone").and_then(Value::as_str).and_then(Zone::by_id).unwrap_or(Zone::UTC);
    Some(zone.to_utc(naive))
}

fn zone_id(v: Option<&str>) -> Option<String> {
    let z = v?.trim();
    if z.is_empty() {
        return None;
    }
    Some(if z.eq_ignore_ascii_case("tzone://Microsoft/Utc") { "UTC".to_owned() } else { z.to_owned() })
}

const SHOW_AS: &[(&str, &str)] = &[
    ("free", "free"),
    ("tentative", "tentative"),
    ("busy", "busy"),
    ("oof", "oof"),
    ("workingElsewhere", "working_elsewhere"),
    ("unknown", "no_data"),
];

const DAYS: &[(&str, &str)] = &[
    ("sunday", "Sunday"),
    ("monday", "Monday"),
    ("tuesday", "Tuesday"),
    ("wednesday", "Wednesday"),
    ("thursday", "Thursday"),
    ("friday", "Friday"),
    ("saturday", "Saturday"),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The canonical text of a `patternedRecurrence` (see the module documentation).
pub fn recurrence_text(r: &Value) -> Option<String> {
    let p = r.get("pattern")?;
    let range = r.get("range")?;
    let interval = p.get("interval").and_then(Value::as_i64).unwrap_or(1);
    let days = || {
        let list: Vec<&str> =
            p.get("daysOfWeek").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        DAYS.iter().filter(|(g, _)| list.contains(g)).map(|(_, e)| *e).collect::<Vec<_>>().join(" ")
    };
    let index = || capitalized(p.get("index").and_then(Value::as_str).unwrap_or("first"));
    let dom = || p.get("dayOfMonth").and_then(Value::as_i64).unwrap_or(1);
    let month = || {
        let m = p.get("month").and_then(Value::as_u64).unwrap_or(1).clamp(1, 12) as usize;
        MONTHS[m - 1]
    };
    let pattern = match p.get("type").and_then(Value::as_str)? {
        "daily" => format!("DailyRecurrence(Interval={interval})"),
        "weekly" => format!("WeeklyRecurrence(Interval={interval},DaysOfWeek={})", days()),
        "absoluteMonthly" => format!("AbsoluteMonthlyRecurrence(Interval={interval},DayOfMonth={})", dom()),
        "relativeMonthly" => {
            format!("RelativeMonthlyRecurrence(Interval={interval},DaysOfWeek={},DayOfWeekIndex={})", days(), index())
        }
        "absoluteYearly" => format!("AbsoluteYearlyRecurrence(DayOfMonth={},Month={})", dom(), month()),
        "relativeYearly" => {
            format!("RelativeYearlyRecurrence(DaysOfWeek={},DayOfWeekIndex={},Month={})", days(), index(), month())
        }
        _ => return None,
    };
    let start = text(range, "startDate")?.get(..10)?;
    let range = match range.get("type").and_then(Value::as_str)? {
        "noEnd" => format!("NoEndRecurrence(StartDate={start})"),
        "endDate" => format!("EndDateRecurrence(StartDate={start},EndDate={})", text(range, "endDate")?.get(..10)?),
        "numbered" => format!(
            "NumberedRecurrence(StartDate={start},NumberOfOccurrences={})",
            range.get("numberOfOccurrences").and_then(Value::as_i64)?
        ),
        _ => return None,
    };
    Some(format!("{pattern}|{range}"))
}

/// The `patternedRecurrence` of a canonical text; `None` if the text is malformed.
pub fn recurrence_json(text: &str, zone: &str) -> Option<Value> {
    let mut segments = text.split('|').map(|seg| {
        let (name, rest) = seg.split_once('(')?;
        let inner = rest.strip_suffix(')')?;
        let kv: BTreeMap<&str, &str> =
            inner.split(',').filter(|s| !s.is_empty()).filter_map(|s| s.split_once('=')).collect();
        Some((name, kv))
    });
    let (pname, p) = segments.next()??;
    let (rname, r) = segments.next()??;
    let int = |k: &str| p.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let days = || -> Vec<Value> {
        let mut out = Vec::new();
        for d in p.get("DaysOfWeek").copied().unwrap_or("").split_whitespace() {
            let set: &[&str] = match d {
                "Day" => &["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
                "Weekday" => &["monday", "tuesday", "wednesday", "thursday", "friday"],
                "WeekendDay" => &["sunday", "saturday"],
                other => match DAYS.iter().find(|(_, e)| *e == other) {
                    Some((g, _)) => std::slice::from_ref(g),
                    None => &[],
                },
            };
            out.extend(set.iter().map(|s| json!(s)));
        }
        out
    };
    let index = || p.get("DayOfWeekIndex").map(|i| i.to_ascii_lowercase()).unwrap_or_else(|| "first".into());
    let month = || p.get("Month").and_then(|m| MONTHS.iter().position(|n| n == m)).map(|i| i + 1);
    let interval = int("Interval").unwrap_or(1);
    let pattern = match pname {
        "DailyRecurrence" => json!({"type": "daily", "interval": interval}),
        "WeeklyRecurrence" => {
            json!({"type": "weekly", "interval": interval, "daysOfWeek": days(), "firstDayOfWeek": "sunday"})
        }
        "AbsoluteMonthlyRecurrence" => {
            json!({"type": "absoluteMonthly", "interval": interval, "dayOfMonth": int("DayOfMonth")?})
        }
        "RelativeMonthlyRecurrence" => {
            json!({"type": "relativeMonthly", "interval": interval, "daysOfWeek": days(), "index": index()})
        }
        "AbsoluteYearlyRecurrence" => {
            json!({"type": "absoluteYearly", "interval": 1, "dayOfMonth": int("DayOfMonth")?, "month": month()?})
        }
        "RelativeYearlyRecurrence" => {
            json!({"type": "relativeYearly", "interval": 1, "daysOfWeek": days(), "index": index(), "month": month()?})
        }
        _ => return None,
    };
    let start = r.get("StartDate")?.get(..10)?;
    let range = match rname {
        "NoEndRecurrence" => json!({"type": "noEnd", "startDate": start, "recurrenceTimeZone": zone}),
        "EndDateRecurrence" => {
            json!({"type": "endDate", "startDate": start, "endDate": r.get("EndDate")?.get(..10)?, "recurrenceTimeZone": zone})
        }
        "NumberedRecurrence" => json!({
            "type": "numbered", "startDate": start, "recurrenceTimeZone": zone,
            "numberOfOccurrences": r.get("NumberOfOccurrences")?.trim().parse::<i64>().ok()?
        }),
        _ => return None,
    };
    Some(json!({"pattern": pattern, "range": range}))
}

fn extended(event: &Value, id: &str) -> Option<String> {
    event
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)?
        .iter()
        .find(|p| p.get("id").and_then(Value::as_str).is_some_and(|i| same_property_id(i, id)))
        .and_then(|p| p.get("value").and_then(Value::as_str))
        .map(str::to_owned)
}

/// The attendees as the EWS connector's text: from our property on copies, otherwise from the
/// meeting's attendees (`required:a@x,b@y;optional:c@z;resources:r@x`, lower-cased, sorted).
fn attendees_text(event: &Value) -> Option<String> {
    if let Some(t) = extended(event, &attendees_property_id()) {
        return Some(t).filter(|t| !t.is_empty());
    }
    let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in event.get("attendees").and_then(Value::as_array).into_iter().flatten() {
        let label = match a.get("type").and_then(Value::as_str) {
            Some("optional") => "optional",
            Some("resource") => "resources",
            _ => "required",
        };
        if let Some(addr) = a.get("emailAddress").and_then(|e| text(e, "address")) {
            lists.entry(label).or_default().push(addr.to_ascii_lowercase());
        }
    }
    let parts: Vec<String> = ["required", "optional", "resources"]
        .iter()
        .filter_map(|l| {
            let mut v = lists.remove(l)?;
            v.sort();
            Some(format!("{l}:{}", v.join(",")))
        })
        .collect();
    if parts.is_empty() { None } else { Some(parts.join(";")) }
}

fn body_of(v: &Value) -> Option<(bool, String)> {
    let b = v.get("body")?;
    let content = b.get("content").and_then(Value::as_str)?.trim().to_owned();
    if content.is_empty() {
        return None;
    }
    Some((b.get("contentType").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("html")), content))
}

/// The original start of each cancelled occurrence of a master: the date in
/// `cancelledOccurrences` at the master's local start time in its start zone.
fn cancelled_originals(master: &Value) -> Vec<DateTime<Utc>> {
    let Some(start) = master.get("start").and_then(instant) else { return Vec::new() };
    let zone = text(master, "originalStartTimeZone").and_then(Zone::by_id).unwrap_or(Zone::UTC);
    let time = zone.local(start).time();
    master
        .get("cancelledOccurrences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|s| s.rsplit('.').next())
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| zone.to_utc(d.and_time(time)))
        .collect()
}

/// The exceptions of a master as Graph holds them, by original start (UTC text): cancelled
/// occurrences, and exceptions that differ from their slot (an exception back at its slot with
/// the master's content shows nothing and is no exception). Each modified one with its id.
pub fn on_server(master: &Value) -> BTreeMap<String, (Exception, Option<String>)> {
    let mut out = BTreeMap::new();
    for t in cancelled_originals(master) {
        out.insert(utc_text(t), (Exception::Cancelled, None));
    }
    let length = master.get("end").and_then(instant).zip(master.get("start").and_then(instant)).map(|(e, s)| e - s);
    let master_body = body_of(master);
    let location = |v: &Value| v.get("location").and_then(|l| text(l, "displayName")).unwrap_or("").to_owned();
    for x in master.get("exceptionOccurrences").and_then(Value::as_array).into_iter().flatten() {
        let original =
            text(x, "originalStart").and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
        let (Some(original), Some(start), Some(end)) =
            (original, x.get("start").and_then(instant), x.get("end").and_then(instant))
        else {
            continue;
        };
        let mut m = Modified { start: utc_text(start), end: utc_text(end), ..Default::default() };
        let subject = text(x, "subject").unwrap_or("");
        if subject != text(master, "subject").unwrap_or("") {
            m.subject = Some(subject.to_owned());
        }
        if location(x) != location(master) {
            m.location = Some(location(x));
        }
        let body = body_of(x);
        if body != master_body {
            m.body_html = body.as_ref().is_some_and(|(html, _)| *html);
            m.body = Some(body.map(|(_, c)| c).unwrap_or_default());
        }
        let at_slot = length.is_some_and(|l| start == original && end == original + l);
        if at_slot && m.subject.is_none() && m.location.is_none() && m.body.is_none() {
            continue;
        }
        out.insert(
            utc_text(original),
            (Exception::Modified(m), x.get("id").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    out
}

/// Reads a Graph event (a single event or a series master, with `exceptionOccurrences` and
/// the extended properties expanded) into the normalized form, with its origin stamp.
pub fn to_item(event: &Value) -> (Item, Option<OriginStamp>) {
    let mut item = Item::new(ItemKind::CalendarItem);
    let set_text = |item: &mut Item, name: &str, v: Option<&str>| {
        if let Some(v) = v {
            item.set(name, FieldValue::Text(v.to_owned()));
        }
    };
    set_text(&mut item, field::SUBJECT, text(event, "subject"));
    set_text(&mut item, field::SENSITIVITY, text(event, "sensitivity"));
    set_text(&mut item, field::IMPORTANCE, text(event, "importance"));
    let show_as = text(event, "showAs").and_then(|s| SHOW_AS.iter().find(|(g, _)| *g == s)).map(|(_, c)| *c);
    set_text(&mut item, field::LEGACY_FREE_BUSY, show_as);
    if let Some(b) = event.get("isReminderOn").and_then(Value::as_bool) {
        item.set(field::REMINDER_IS_SET, FieldValue::Boolean(b));
    }
    if let Some(m) = event.get("reminderMinutesBeforeStart").and_then(Value::as_i64) {
        item.set(field::REMINDER_MINUTES, FieldValue::Integer(m));
    }
    set_text(&mut item, field::START_TIME_ZONE, zone_id(text(event, "originalStartTimeZone")).as_deref());
    set_text(&mut item, END_TIME_ZONE, zone_id(text(event, "originalEndTimeZone")).as_deref());
    if let Some(t) = event.get("start").and_then(instant) {
        item.set(field::START, FieldValue::DateTime(t));
    }
    if let Some(t) = event.get("end").and_then(instant) {
        item.set(field::END, FieldValue::DateTime(t));
    }
    if let Some(b) = event.get("isAllDay").and_then(Value::as_bool) {
        item.set(field::IS_ALL_DAY, FieldValue::Boolean(b));
    }
    set_text(&mut item, field::LOCATION, event.get("location").and_then(|l| text(l, "displayName")));
    let recurrence = event.get("recurrence").filter(|r| !r.is_null()).and_then(recurrence_text);
    if let Some(attendees) = attendees_text(event) {
        item.set(field::ATTENDEES, FieldValue::Text(attendees));
    }
    if let Some(r) = recurrence {
        item.set(field::RECURRENCE, FieldValue::Text(r));
        for (original, (exception, _)) in on_server(event) {
            item.set(&format!("{EXCEPTION_PREFIX}{original}"), FieldValue::Text(exception.encode()));
        }
    }
    if let Some((html, content)) = body_of(event) {
        let format = if html { BodyFormat::Html } else { BodyFormat::Text };
        item.body = Some(Body { format, content });
    }
    if let Some(cats) = event.get("categories").and_then(Value::as_array) {
        item.categories =
            cats.iter().filter_map(Value::as_str).filter(|c| !c.trim().is_empty()).map(str::to_owned).collect();
    }
    if let Some(t) = text(event, "lastModifiedDateTime").and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
        item.set(field::SERVER_LAST_MODIFIED, FieldValue::DateTime(t.with_timezone(&Utc)));
    }
    if let Some(t) = text(event, "createdDateTime").and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
        item.set(field::SERVER_CREATED, FieldValue::DateTime(t.with_timezone(&Utc)));
    }
    (item, origin_of(event))
}

/// A `dateTimeTimeZone` of an instant in a zone (UTC, with a warning, when the zone is unknown).
pub fn date_time_zone(t: DateTime<Utc>, zone: &str) -> Value {
    let (z, id) = match Zone::by_id(zone) {
        Some(z) => (z, zone),
        None => {
            tracing::warn!(zone, "time zone unknown to the connector: the event is written in UTC");
            (Zone::UTC, "UTC")
        }
    };
    json!({"dateTime": z.local(t).format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": id})
}

fn date_time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    match item.get(name) {
        Some(FieldValue::DateTime(t)) => Some(*t),
        _ => None,
    }
}

/// The JSON body writing `item` in full (every property the mapping knows, emptied when the item
/// lacks it, so that a `PATCH` clears what the item no longer holds), with the origin stamp when
/// given and the attendees' text (empty when none).
pub fn to_json(item: &Item, origin: Option<&OriginStamp>) -> Value {
    let mut o = Map::new();
    let txt = |name: &str| item.text(name).map(str::to_owned);
    o.insert("subject".into(), txt(field::SUBJECT).map_or(Value::Null, Value::String));
    let body = match &item.body {
        Some(b) => {
            json!({"contentType": if b.format == BodyFormat::Html { "html" } else { "text" }, "content": b.content})
        }
        None => json!({"contentType": "text", "content": ""}),
    };
    o.insert("body".into(), body);
    o.insert("categories".into(), json!(item.categories.iter().collect::<Vec<_>>()));
    o.insert("sensitivity".into(), json!(txt(field::SENSITIVITY).unwrap_or_else(|| "normal".into())));
    o.insert("importance".into(), json!(txt(field::IMPORTANCE).unwrap_or_else(|| "normal".into())));
    let show_as = item
        .text(field::LEGACY_FREE_BUSY)
        .and_then(|c| SHOW_AS.iter().find(|(_, v)| *v == c))
        .map_or("busy", |(g, _)| *g);
    o.insert("showAs".into(), json!(show_as));
    let flag = |name: &str| matches!(item.get(name), Some(FieldValue::Boolean(true)));
    o.insert("isReminderOn".into(), json!(flag(field::REMINDER_IS_SET)));
    if let Some(FieldValue::Integer(m)) = item.get(field::REMINDER_MINUTES) {
        o.insert("reminderMinutesBeforeStart".into(), json!(m));
    }
    o.insert("isAllDay".into(), json!(flag(field::IS_ALL_DAY)));
    let start_zone = txt(field::START_TIME_ZONE).unwrap_or_else(|| "UTC".into());
    let end_zone = txt(END_TIME_ZONE).unwrap_or_else(|| start_zone.clone());
    if let Some(s) = date_time(item, field::START) {
        o.insert("start".into(), date_time_zone(s, &start_zone));
    }
    if let Some(e) = date_time(item, field::END) {
        o.insert("end".into(), date_time_zone(e, &end_zone));
    }
    o.insert("location".into(), json!({"displayName": txt(field::LOCATION).unwrap_or_default()}));
    let recurrence = item.text(field::RECURRENCE).and_then(|r| recurrence_json(r, &start_zone));
    if item.text(field::RECURRENCE).is_some() && recurrence.is_none() {
        tracing::warn!("a recurrence the connector cannot write to Graph: the copy is a single event");
    }
    o.insert("recurrence".into(), recurrence.unwrap_or(Value::Null));
    let mut props = vec![json!({"id": attendees_property_id(), "value": txt(field::ATTENDEES).unwrap_or_default()})];
    if let Some(stamp) = origin {
        props.push(json!({"id": origin_property_id(), "value": stamp.encode()}));
    }
    o.insert("singleValueExtendedProperties".into(), Value::Array(props));
    Value::Object(o)
}

/// Leaves a series' timing (`start`, `end`, `isAllDay`, `recurrence`) out of an update's body
/// when it is what the event already holds (`previous`, the content at the version the update's
/// `If-Match` names). Exchange drops every exception of a series whose pattern or times are
/// written, so an update that only changes, say, the subject must not write them.
pub fn drop_unchanged_timing(body: &mut Value, item: &Item, previous: &Item) {
    let timing =
        [field::START, field::END, field::START_TIME_ZONE, END_TIME_ZONE, field::IS_ALL_DAY, field::RECURRENCE];
    if timing.iter().all(|f| item.get(f) == previous.get(f))
        && let Some(o) = body.as_object_mut()
    {
        for key in ["start", "end", "isAllDay", "recurrence"] {
            o.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_sync_core::{EntityId, GroupId};

    #[test]
    fn an_update_leaves_unchanged_timing_out() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().with_timezone(&Utc);
        let before = Item::new(ItemKind::CalendarItem)
            .with(field::SUBJECT, "A")
            .with(field::START, FieldValue::DateTime(start))
            .with(field::END, FieldValue::DateTime(start + chrono::Duration::hours(1)))
            .with(field::RECURRENCE, "DailyRecurrence(Interval=1)|NoEndRecurrence(StartDate=2026-03-02)");
        let renamed = before.clone().with(field::SUBJECT, "B");
        let mut body = to_json(&renamed, None);
        drop_unchanged_timing(&mut body, &renamed, &before);
        assert!(body.get("recurrence").is_none() && body.get("start").is_none(), "{body}");
        assert_eq!(body["subject"], "B");
        let moved = before.clone().with(field::START, FieldValue::DateTime(start + chrono::Duration::hours(2)));
        let mut body = to_json(&moved, None);
        drop_unchanged_timing(&mut body, &moved, &before);
        assert!(body.get("recurrence").is_some() && body.get("start").is_some(), "re-timing writes the timing");
    }

    #[test]
    fn recurrences_translate_both_ways_as_the_ews_text() {
        for text in [
            "WeeklyRecurrence(Interval=2,DaysOfWeek=Monday Wednesday)|NumberedRecurrence(StartDate=2026-03-02,NumberOfOccurrences=10)",
            "DailyRecurrence(Interval=1)|NoEndRecurrence(StartDate=2026-03-02)",
            "AbsoluteMonthlyRecurrence(Interval=1,DayOfMonth=15)|EndDateRecurrence(StartDate=2026-01-15,EndDate=2026-12-31)",
            "RelativeMonthlyRecurrence(Interval=1,DaysOfWeek=Friday,DayOfWeekIndex=Last)|NoEndRecurrence(StartDate=2026-01-30)",
            "AbsoluteYearlyRecurrence(DayOfMonth=24,Month=December)|NoEndRecurrence(StartDate=2026-12-24)",
            "RelativeYearlyRecurrence(DaysOfWeek=Thursday,DayOfWeekIndex=Fourth,Month=November)|NumberedRecurrence(StartDate=2026-11-26,NumberOfOccurrences=3)",
        ] {
            let json = recurrence_json(text, "W. Europe Standard Time").unwrap();
            assert_eq!(recurrence_text(&json).as_deref(), Some(text), "{json}");
        }
        assert!(recurrence_json("Weekly(", "UTC").is_none());
    }

    #[test]
    fn a_series_round_trips_with_its_exceptions_and_stamp() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().with_timezone(&Utc);
        let mut item = Item::new(ItemKind::CalendarItem)
            .with(field::SUBJECT, "Stand-up")
            .with(field::START, FieldValue::DateTime(start))
            .with(field::END, FieldValue::DateTime(start + chrono::Duration::minutes(15)))
            .with(field::START_TIME_ZONE, "W. Europe Standard Time")
            .with(END_TIME_ZONE, "W. Europe Standard Time")
            .with(
                field::RECURRENCE,
                "WeeklyRecurrence(Interval=1,DaysOfWeek=Monday)|NoEndRecurrence(StartDate=2026-03-02)",
            )
            .with(field::ATTENDEES, "required:a@contoso.test");
        item.body = Some(Body::text("Daily."));
        let stamp = OriginStamp::new(GroupId::new("g"), EntityId::new("e"));
        let json = to_json(&item, Some(&stamp));
        assert_eq!(json["start"], json!({"dateTime": "2026-03-02T09:00:00", "timeZone": "W. Europe Standard Time"}));
        // As Graph answers it: times in UTC, the zones as written, one cancelled occurrence (the
        // summer one: 07:00 UTC) and one moved.
        let mut answer = json.clone();
        answer["start"] = json!({"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"});
        answer["end"] = json!({"dateTime": "2026-03-02T08:15:00.0000000", "timeZone": "UTC"});
        answer["originalStartTimeZone"] = json!("W. Europe Standard Time");
        answer["originalEndTimeZone"] = json!("W. Europe Standard Time");
        answer["cancelledOccurrences"] = json!(["OID.AAMk1.2026-03-30"]);
        answer["exceptionOccurrences"] = json!([{
            "id": "x", "originalStart": "2026-03-09T08:00:00Z", "subject": "Stand-up",
            "start": {"dateTime": "2026-03-09T10:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-09T10:15:00.0000000", "timeZone": "UTC"},
            "body": {"contentType": "text", "content": "Daily."}, "location": {"displayName": ""}
        }]);
        let (read, origin) = to_item(&answer);
        assert_eq!(origin, Some(stamp));
        assert_eq!(read.text("recurrence.exception.2026-03-30T07:00:00Z"), Some(CANCELLED));
        assert_eq!(
            read.text("recurrence.exception.2026-03-09T08:00:00Z"),
            Some(r#"{"start":"2026-03-09T10:00:00Z","end":"2026-03-09T10:15:00Z"}"#)
        );
        let mut expected = item.clone();
        expected.set("recurrence.exception.2026-03-30T07:00:00Z", FieldValue::Text(CANCELLED.into()));
        expected.set(
            "recurrence.exception.2026-03-09T08:00:00Z",
            FieldValue::Text(r#"{"start":"2026-03-09T10:00:00Z","end":"2026-03-09T10:15:00Z"}"#.into()),
        );
        for (k, v) in [(field::SENSITIVITY, "normal"), (field::IMPORTANCE, "normal"), (field::LEGACY_FREE_BUSY, "busy")]
        {
            expected.set(k, FieldValue::Text(v.into()));
        }
        expected.set(field::IS_ALL_DAY, FieldValue::Boolean(false));
        expected.set(field::REMINDER_IS_SET, FieldValue::Boolean(false));
        assert!(read.same_content(&expected), "{:?}", read.canonical());
    }
}
