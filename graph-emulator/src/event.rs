//! The `microsoft.graph.event` resource as Graph v1.0 defines it, for what the emulator keeps:
//! which properties a client may write and their JSON types, Windows time zones, and how a series
//! master's `patternedRecurrence` places its occurrences.
//!
//! - **Times** are `dateTimeTimeZone` values: a local wall-clock time and a Windows time zone id
//!   (`W. Europe Standard Time`, `UTC`). The emulator keeps what the client wrote (the zone
//!   becomes `originalStartTimeZone`) and answers in UTC unless the request asks for another zone
//!   with `Prefer: outlook.timezone="..."`, as Graph does.
//! - **Series** expand in the master's start zone, so a weekly 09:00 in `W. Europe Standard Time`
//!   is 08:00 UTC in winter and 07:00 UTC in summer.
//! - **Zones**: the Windows ids most calendars use, with the EU and US daylight-saving rules of
//!   today; an unknown id is refused (`400`), as Graph refuses a zone it does not know. This is
//!   no full time zone database.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc, Weekday};
use serde_json::Value;

/// How a writable event property is typed in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// `Edm.String`.
    Text,
    /// `Edm.Boolean`.
    Bool,
    /// `Edm.Int32`.
    Int,
    /// `Collection(Edm.String)`.
    TextList,
    /// An enumeration (`graph.sensitivity`, ...) with its members.
    Enum(&'static [&'static str]),
    /// `graph.dateTimeTimeZone`.
    DateTimeZone,
    /// `graph.itemBody`.
    Body,
    /// `graph.location`.
    Location,
    /// `graph.patternedRecurrence` (checked by [`check_recurrence`]).
    Recurrence,
    /// `Collection(graph.attendee)`.
    Attendees,
}

/// Members of `graph.freeBusyStatus`.
pub const SHOW_AS: &[&str] = &["unknown", "free", "tentative", "busy", "oof", "workingElsewhere"];
/// Members of `graph.sensitivity`.
pub const SENSITIVITY: &[&str] = &["normal", "personal", "private", "confidential"];
/// Members of `graph.importance`.
pub const IMPORTANCE: &[&str] = &["low", "normal", "high"];

/// Every property of `microsoft.graph.event` a client may write here, in the order Graph renders
/// them.
pub const WRITABLE: &[(&str, PropertyType)] = &[
    ("categories", PropertyType::TextList),
    ("transactionId", PropertyType::Text),
    ("subject", PropertyType::Text),
    ("body", PropertyType::Body),
    ("importance", PropertyType::Enum(IMPORTANCE)),
    ("sensitivity", PropertyType::Enum(SENSITIVITY)),
    ("isAllDay", PropertyType::Bool),
    ("isReminderOn", PropertyType::Bool),
    ("reminderMinutesBeforeStart", PropertyType::Int),
    ("responseRequested", PropertyType::Bool),
    ("showAs", PropertyType::Enum(SHOW_AS)),
    ("start", PropertyType::DateTimeZone),
    ("end", PropertyType::DateTimeZone),
    ("location", PropertyType::Location),
    ("recurrence", PropertyType::Recurrence),
    ("attendees", PropertyType::Attendees),
];

/// What an occurrence may change of its series (Graph refuses the rest on an instance).
pub const OCCURRENCE_WRITABLE: &[&str] =
    &["subject", "body", "start", "end", "location", "isReminderOn", "reminderMinutesBeforeStart", "showAs"];

/// Properties the server maintains; a client sending them is ignored.
pub const SERVER_MAINTAINED: &[&str] = &[
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "type",
    "seriesMasterId",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "cancelledOccurrences",
    "iCalUId",
    "bodyPreview",
    "isCancelled",
    "isOrganizer",
    "webLink",
    "hasAttachments",
];

/// The type of a writable property.
pub fn property_type(name: &str) -> Option<PropertyType> {
    WRITABLE.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn unknown_property(k: &str, ty: &str) -> String {
    format!(
        "The property '{k}' does not exist on type '{ty}'. Make sure to only use property names that are defined by the type."
    )
}

fn only_keys(o: &serde_json::Map<String, Value>, keys: &[&str], ty: &str) -> Result<(), String> {
    match o.keys().find(|k| !keys.contains(&k.as_str()) && !k.starts_with("@odata.")) {
        Some(k) => Err(unknown_property(k, ty)),
        None => Ok(()),
    }
}

/// Checks one property value against its type; `Err` says what is wrong, in Graph's words.
pub fn check_value(name: &str, ty: PropertyType, value: &Value) -> Result<(), String> {
    let wrong = |expected: &str| {
        Err(format!("Cannot convert the literal '{value}' to the expected type '{expected}' of property '{name}'."))
    };
    if value.is_null() {
        return Ok(());
    }
    match ty {
        PropertyType::Text if !value.is_string() => wrong("Edm.String"),
        PropertyType::Bool if !value.is_boolean() => wrong("Edm.Boolean"),
        PropertyType::Int if value.as_i64().is_none_or(|i| i32::try_from(i).is_err()) => wrong("Edm.Int32"),
        PropertyType::TextList if !value.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
            wrong("Collection(Edm.String)")
        }
        PropertyType::Enum(members) if !value.as_str().is_some_and(|s| members.contains(&s)) => {
            Err(format!("Requested value '{value}' was not found in the enumeration of property '{name}'."))
        }
        PropertyType::DateTimeZone => {
            let Some(o) = value.as_object() else { return wrong("microsoft.graph.dateTimeTimeZone") };
            only_keys(o, &["dateTime", "timeZone"], "microsoft.graph.dateTimeTimeZone")?;
            let zone = o.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
            if Zone::by_id(zone).is_none() {
                return Err(format!(
                    "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{zone}'."
                ));
            }
            match o.get("dateTime").and_then(Value::as_str).and_then(local_time) {
                Some(_) => Ok(()),
                None => wrong("microsoft.graph.dateTimeTimeZone"),
            }
        }
        PropertyType::Body => {
            let Some(o) = value.as_object() else { return wrong("microsoft.graph.itemBody") };
            only_keys(o, &["contentType", "content"], "microsoft.graph.itemBody")?;
            match o.get("contentType").and_then(Value::as_str) {
                None | Some("text" | "html") => Ok(()),
                Some(_) => wrong("microsoft.graph.bodyType"),
            }
        }
        PropertyType::Location => {
            let Some(o) = value.as_object() else { return wrong("microsoft.graph.location") };
            only_keys(
                o,
                &[
                    "displayName",
                    "locationType",
                    "uniqueId",
                    "uniqueIdType",
                    "locationEmailAddress",
                    "locationUri",
                    "address",
                    "coordinates",
                ],
                "microsoft.graph.location",
            )
        }
        PropertyType::Recurrence => check_recurrence(value),
        PropertyType::Attendees => {
            let Some(a) = value.as_array() else { return wrong("Collection(microsoft.graph.attendee)") };
            for at in a {
                let Some(o) = at.as_object() else { return wrong("microsoft.graph.attendee") };
                only_keys(o, &["emailAddress", "type", "status", "proposedNewTime"], "microsoft.graph.attendee")?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

const PATTERN_TYPES: &[&str] =
    &["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"];
const DAYS: &[&str] = &["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const INDEXES: &[&str] = &["first", "second", "third", "fourth", "last"];

/// Checks a `patternedRecurrence` the way Graph does for what a series needs.
pub fn check_recurrence(value: &Value) -> Result<(), String> {
    let bad = |m: &str| Err(format!("Invalid recurrence: {m}."));
    let (Some(pattern), Some(range)) = (value.get("pattern"), value.get("range")) else {
        return bad("a recurrence needs a pattern and a range");
    };
    if let Some(o) = pattern.as_object() {
        only_keys(
            o,
            &["type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index"],
            "microsoft.graph.recurrencePattern",
        )?;
    }
    if let Some(o) = range.as_object() {
        only_keys(
            o,
            &["type", "startDate", "endDate", "recurrenceTimeZone", "numberOfOccurrences"],
            "microsoft.graph.recurrenceRange",
        )?;
    }
    let ty = pattern.get("type").and_then(Value::as_str).unwrap_or_default();
    if !PATTERN_TYPES.contains(&ty) {
        return bad("the pattern type is unknown");
    }
    if pattern.get("interval").and_then(Value::as_i64).unwrap_or(1) < 1 {
        return bad("the interval must be at least 1");
    }
    let days: Vec<&str> =
        pattern.get("daysOfWeek").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if days.iter().any(|d| !DAYS.contains(d)) {
        return bad("a day of the week is unknown");
    }
    if matches!(ty, "weekly" | "relativeMonthly" | "relativeYearly") && days.is_empty() {
        return bad("this pattern needs daysOfWeek");
    }
    if matches!(ty, "absoluteMonthly" | "absoluteYearly")
        && !(1..=31).contains(&pattern.get("dayOfMonth").and_then(Value::as_i64).unwrap_or(0))
    {
        return bad("this pattern needs dayOfMonth");
    }
    if matches!(ty, "absoluteYearly" | "relativeYearly")
        && !(1..=12).contains(&pattern.get("month").and_then(Value::as_i64).unwrap_or(0))
    {
        return bad("this pattern needs month");
    }
    if let Some(i) = pattern.get("index").and_then(Value::as_str)
        && !INDEXES.contains(&i)
    {
        return bad("the week index is unknown");
    }
    let rty = range.get("type").and_then(Value::as_str).unwrap_or_default();
    let date =
        |k: &str| range.get(k).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    if date("startDate").is_none() {
        return bad("the range needs a startDate");
    }
    match rty {
        "noEnd" => Ok(()),
        "endDate" if date("endDate").is_some() => Ok(()),
        "numbered" if range.get("numberOfOccurrences").and_then(Value::as_i64).unwrap_or(0) >= 1 => Ok(()),
        _ => bad("the range type is unknown or incomplete"),
    }
}

/// Daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    /// European Union: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// United States: second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
}

/// A time zone: its standard offset from UTC in minutes and its daylight-saving rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    base: i64,
    rule: Rule,
}

const ZONES: &[(&str, i64, Rule)] = &[
    ("UTC", 0, Rule::None),
    ("Greenwich Standard Time", 0, Rule::None),
    ("GMT Standard Time", 0, Rule::Eu),
    ("W. Europe Standard Time", 60, Rule::Eu),
    ("Central Europe Standard Time", 60, Rule::Eu),
    ("Central European Standard Time", 60, Rule::Eu),
    ("Romance Standard Time", 60, Rule::Eu),
    ("E. Europe Standard Time", 120, Rule::Eu),
    ("FLE Standard Time", 120, Rule::Eu),
    ("GTB Standard Time", 120, Rule::Eu),
    ("Eastern Standard Time", -300, Rule::Us),
    ("Central Standard Time", -360, Rule::Us),
    ("Mountain Standard Time", -420, Rule::Us),
    ("Pacific Standard Time", -480, Rule::Us),
    ("Alaskan Standard Time", -540, Rule::Us),
    ("US Mountain Standard Time", -420, Rule::None),
    ("Hawaiian Standard Time", -600, Rule::None),
    ("India Standard Time", 330, Rule::None),
    ("China Standard Time", 480, Rule::None),
    ("Singapore Standard Time", 480, Rule::None),
    ("Tokyo Standard Time", 540, Rule::None),
];

fn last_day(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let mut d = last_day(year, month)?;
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt()?;
    }
    Some(d)
}

fn nth_sunday(year: i32, month: u32, n: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let shift = (7 - first.weekday().num_days_from_sunday()) % 7;
    Some(first + Duration::days(i64::from(shift + 7 * (n - 1))))
}

impl Zone {
    /// A zone by Windows id (`UTC` also as `tzone://Microsoft/Utc`).
    pub fn by_id(id: &str) -> Option<Zone> {
        let id = if id.eq_ignore_ascii_case("tzone://Microsoft/Utc") { "UTC" } else { id.trim() };
        ZONES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(id)).map(|&(_, base, rule)| Zone { base, rule })
    }

    fn dst_window(&self, year: i32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let at = |d: NaiveDate, h: u32, offset: i64| {
            Utc.from_utc_datetime(&d.and_time(NaiveTime::from_hms_opt(h, 0, 0)?))
                .checked_sub_signed(Duration::minutes(offset))
        };
        match self.rule {
            Rule::None => None,
            Rule::Eu => Some((at(last_sunday(year, 3)?, 1, 0)?, at(last_sunday(year, 10)?, 1, 0)?)),
            Rule::Us => {
                Some((at(nth_sunday(year, 3, 2)?, 2, self.base)?, at(nth_sunday(year, 11, 1)?, 2, self.base + 60)?))
            }
        }
    }

    /// Offset from UTC in minutes at an instant.
    pub fn offset_at(&self, t: DateTime<Utc>) -> i64 {
        match self.dst_window(t.year()) {
            Some((from, to)) if t >= from && t < to => self.base + 60,
            _ => self.base,
        }
    }

    /// The instant of a local wall-clock time (in a skipped hour, the standard-time reading).
    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let daylight = Utc.from_utc_datetime(&local) - Duration::minutes(self.base + 60);
        if self.rule != Rule::None && self.offset_at(daylight) == self.base + 60 {
            return daylight;
        }
        Utc.from_utc_datetime(&local) - Duration::minutes(self.base)
    }

    /// The local wall-clock time of an instant.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        (t + Duration::minutes(self.offset_at(t))).naive_utc()
    }
}

/// A `dateTime` of a `dateTimeTimeZone` (`2026-03-02T09:00:00`, fractions and a `Z` allowed).
pub fn local_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .ok()
}

/// The UTC instant of a `dateTimeTimeZone` value.
pub fn instant(value: &Value) -> Option<DateTime<Utc>> {
    let local = local_time(value.get("dateTime")?.as_str()?)?;
    let zone = Zone::by_id(value.get("timeZone").and_then(Value::as_str).unwrap_or("UTC"))?;
    Some(zone.to_utc(local))
}

/// A `dateTimeTimeZone` value of an instant in a zone, as Graph renders it (7 fraction digits).
pub fn render_time(t: DateTime<Utc>, zone_id: &str) -> Value {
    let zone = Zone::by_id(zone_id).unwrap_or(Zone { base: 0, rule: Rule::None });
    serde_json::json!({"dateTime": format!("{}.0000000", zone.local(t).format("%Y-%m-%dT%H:%M:%S")), "timeZone": zone_id})
}

/// An instant as an `Edm.DateTimeOffset` in UTC.
pub fn offset_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The longest a series is expanded from its start (a series without end is cut there).
const MAX_YEARS: i64 = 30;
/// The most occurrences expanded for one series.
const MAX_OCCURRENCES: usize = 5000;

/// The occurrences of a series as its pattern places them, as original starts (UTC), up to
/// `until`: the pattern's days in the series' zone from the range's start, the master's local
/// start time on each. Empty when the recurrence or the start cannot be read.
pub fn occurrences(recurrence: &Value, start: &Value, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let (Some(pattern), Some(range)) = (recurrence.get("pattern"), recurrence.get("range")) else { return Vec::new() };
    let Some(zone) = Zone::by_id(start.get("timeZone").and_then(Value::as_str).unwrap_or("UTC")) else {
        return Vec::new();
    };
    let Some(local_start) = start.get("dateTime").and_then(Value::as_str).and_then(local_time) else {
        return Vec::new();
    };
    let date =
        |k: &str| range.get(k).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    let Some(first) = date("startDate") else { return Vec::new() };
    let last = match range.get("type").and_then(Value::as_str) {
        Some("endDate") => date("endDate"),
        _ => None,
    };
    let count = match range.get("type").and_then(Value::as_str) {
        Some("numbered") => range.get("numberOfOccurrences").and_then(Value::as_u64).map(|n| n as usize),
        _ => None,
    };
    let interval = pattern.get("interval").and_then(Value::as_i64).unwrap_or(1).max(1);
    let ty = pattern.get("type").and_then(Value::as_str).unwrap_or_default();
    let days: Vec<Weekday> = pattern
        .get("daysOfWeek")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|d| DAYS.iter().position(|n| *n == d))
        .filter_map(|i| Weekday::try_from(((i + 6) % 7) as u8).ok())
        .collect();
    let first_day = pattern
        .get("firstDayOfWeek")
        .and_then(Value::as_str)
        .and_then(|d| DAYS.iter().position(|n| *n == d))
        .unwrap_or(0) as u32;
    let day_of_month = pattern.get("dayOfMonth").and_then(Value::as_u64).unwrap_or(1) as u32;
    let month = pattern.get("month").and_then(Value::as_u64).unwrap_or(1) as u32;
    let index = pattern.get("index").and_then(Value::as_str).unwrap_or("first");
    let months =
        |a: NaiveDate, b: NaiveDate| i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
    let dom = |d: NaiveDate| d.day() == day_of_month.min(last_day(d.year(), d.month()).map_or(31, |l| l.day()));
    let relative = |d: NaiveDate| {
        if !days.contains(&d.weekday()) {
            return false;
        }
        let nth = (d.day() - 1) / 7 + 1;
        match index {
            "last" => last_day(d.year(), d.month()).is_some_and(|l| (l - d).num_days() < 7),
            i => INDEXES.iter().position(|n| *n == i).is_some_and(|p| p as u32 + 1 == nth),
        }
    };
    let week_start =
        |x: NaiveDate| x - Duration::days(i64::from((x.weekday().num_days_from_sunday() + 7 - first_day) % 7));
    let holds = |d: NaiveDate| match ty {
        "daily" => (d - first).num_days() % interval == 0,
        "weekly" => (week_start(d) - week_start(first)).num_days() / 7 % interval == 0 && days.contains(&d.weekday()),
        "absoluteMonthly" => months(first, d) % interval == 0 && dom(d),
        "relativeMonthly" => months(first, d) % interval == 0 && relative(d),
        "absoluteYearly" => d.month() == month && (d.year() - first.year()) as i64 % interval == 0 && dom(d),
        "relativeYearly" => d.month() == month && (d.year() - first.year()) as i64 % interval == 0 && relative(d),
        _ => false,
    };
    let mut out = Vec::new();
    let mut d = first;
    let stop = first + Duration::days(366 * MAX_YEARS);
    while d <= stop && last.is_none_or(|l| d <= l) && out.len() < count.unwrap_or(MAX_OCCURRENCES).min(MAX_OCCURRENCES)
    {
        if holds(d) {
            let at = zone.to_utc(d.and_time(local_start.time()));
            if at > until {
                break;
            }
            out.push(at);
        }
        let Some(next) = d.succ_opt() else { break };
        d = next;
    }
    out
}

/// The local date of an occurrence in the series' zone (for `cancelledOccurrences`).
pub fn local_date(t: DateTime<Utc>, start: &Value) -> NaiveDate {
    Zone::by_id(start.get("timeZone").and_then(Value::as_str).unwrap_or("UTC"))
        .map_or(t.date_naive(), |z| z.local(t).date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_weekly_series_keeps_its_wall_clock_time_across_daylight_saving() {
        let rec = json!({
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2026-03-16", "numberOfOccurrences": 4}
        });
        let start = json!({"dateTime": "2026-03-16T09:00:00", "timeZone": "W. Europe Standard Time"});
        let all = occurrences(&rec, &start, Utc::now() + Duration::days(3650));
        let texts: Vec<String> = all.into_iter().map(offset_text).collect();
        assert_eq!(
            texts,
            ["2026-03-16T08:00:00Z", "2026-03-23T08:00:00Z", "2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z"]
        );
    }

    #[test]
    fn patterns_and_values_are_checked() {
        let ok = json!({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            "range": {"type": "endDate", "startDate": "2026-01-30", "endDate": "2026-04-30"}});
        assert!(check_recurrence(&ok).is_ok());
        let start = json!({"dateTime": "2026-01-30T12:00:00", "timeZone": "UTC"});
        let fridays: Vec<String> =
            occurrences(&ok, &start, Utc::now() + Duration::days(3650)).into_iter().map(offset_text).collect();
        assert_eq!(
            fridays,
            ["2026-01-30T12:00:00Z", "2026-02-27T12:00:00Z", "2026-03-27T12:00:00Z", "2026-04-24T12:00:00Z"]
        );
        assert!(
            check_recurrence(
                &json!({"pattern": {"type": "weekly"}, "range": {"type": "noEnd", "startDate": "2026-01-01"}})
            )
            .is_err()
        );
        assert!(check_value("showAs", PropertyType::Enum(SHOW_AS), &json!("away")).is_err());
        assert!(
            check_value(
                "start",
                PropertyType::DateTimeZone,
                &json!({"dateTime": "2026-01-01T10:00:00", "timeZone": "Mars/Olympus"})
            )
            .is_err()
        );
        assert!(check_value("location", PropertyType::Location, &json!({"displayName": "Room 1"})).is_ok());
    }
}
