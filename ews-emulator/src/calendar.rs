//! Recurring calendar items as Exchange keeps them: a master holds the pattern, its occurrences
//! are computed, and exceptions (a deleted or modified occurrence) are stored on the master.
//!
//! - **Expansion.** A master's occurrences follow its `Recurrence` pattern and range in the
//!   master's own time zone (`StartTimeZone`, else `MeetingTimeZone` of Exchange 2007 SP1, else
//!   UTC): each occurrence starts at the master's local wall-clock time, so a weekly 09:00 in
//!   `W. Europe Standard Time` is 08:00 UTC in winter and 07:00 UTC in summer, as on Exchange.
//!   The instance index counts occurrences from 1 at the start of the range, deleted ones included
//!   (an `OccurrenceItemId` names master and index).
//! - **Exceptions.** Deleting an occurrence adds its original start to the master's
//!   `DeletedOccurrences`; updating one stores the occurrence's fields as an exception (returned
//!   in the master's `ModifiedOccurrences` with `Start`, `End`, `OriginalStart`). A change of the
//!   master's pattern, start or end drops every exception, as Exchange does when a series is
//!   re-timed.
//! - **Time zones.** Windows ids with the daylight-saving rules in force (EU, US) or none; an
//!   unknown id counts as UTC. This covers what the tests use; it is no full time zone database.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc, Weekday};

use crate::response_code::EwsError;
use crate::store::Item;
use crate::xml::Element;

/// The stored exception of a modified occurrence (a field of the master the renderer never
/// writes: it is not in the schema order). Attributes `Index` and `OriginalStart`; children are
/// the occurrence's own fields.
pub const EXCEPTION: &str = "emulator.Exception";

/// Most occurrences expanded for one master (a series without end is cut there).
const MAX_OCCURRENCES: u32 = 2000;
/// Fields of the master that an occurrence does not have.
const MASTER_ONLY: &[&str] =
    &["Recurrence", "ModifiedOccurrences", "DeletedOccurrences", "FirstOccurrence", "LastOccurrence"];

/// Daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    /// European Union: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// United States: second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
}

/// A time zone: standard offset from UTC in minutes and its daylight-saving rule.
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

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone { base: 0, rule: Rule::None };

    /// A zone by Windows id.
    pub fn by_id(id: &str) -> Option<Zone> {
        ZONES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(id.trim())).map(|&(_, base, rule)| Zone { base, rule })
    }

    /// The zone of a calendar item: `StartTimeZone` (2010+), else `MeetingTimeZone` (2007 SP1:
    /// by name, else its `BaseOffset`, the bias to add to local time), else UTC.
    pub fn of(item: &Item) -> Zone {
        if let Some(z) = item.field("StartTimeZone").and_then(|t| t.attr("Id")).and_then(Zone::by_id) {
            return z;
        }
        if let Some(mtz) = item.field("MeetingTimeZone") {
            if let Some(z) = mtz.attr("TimeZoneName").and_then(Zone::by_id) {
                return z;
            }
            if let Some(bias) = mtz.child_text("BaseOffset").and_then(duration_minutes) {
                return Zone { base: -bias, rule: Rule::None };
            }
        }
        Zone::UTC
    }

    fn dst_window(&self, year: i32) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let at = |d: NaiveDate, h: u32, offset_min: i64| {
            Utc.from_utc_datetime(&d.and_time(NaiveTime::from_hms_opt(h, 0, 0)?))
                .checked_sub_signed(Duration::minutes(offset_min))
        };
        match self.rule {
            Rule::None => None,
            Rule::Eu => Some((at(last_sunday(year, 3)?, 1, 0)?, at(last_sunday(year, 10)?, 1, 0)?)),
            Rule::Us => Some((
                at(nth_weekday(year, 3, Weekday::Sun, 2)?, 2, self.base)?,
                at(nth_weekday(year, 11, Weekday::Sun, 1)?, 2, self.base + 60)?,
            )),
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

/// Minutes of an `xs:duration` such as `PT8H`, `-PT5H30M`.
fn duration_minutes(text: &str) -> Option<i64> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text),
    };
    let rest = rest.strip_prefix("PT")?;
    let (mut total, mut number) = (0i64, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'H' => total += number.parse::<i64>().ok()? * 60,
            'M' => total += number.parse::<i64>().ok()?,
            'S' => {}
            _ => return None,
        }
        if c.is_ascii_alphabetic() {
            number.clear();
        }
    }
    Some(sign * total)
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let mut d = last_day(year, month)?;
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt()?;
    }
    Some(d)
}

fn last_day(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

/// The n-th (1-based) weekday of a month.
fn nth_weekday(year: i32, month: u32, day: Weekday, n: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let shift = (7 + day.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    let d = first + Duration::days(i64::from(shift + 7 * (n - 1)));
    (d.month() == month).then_some(d)
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "Monday" => Weekday::Mon,
        "Tuesday" => Weekday::Tue,
        "Wednesday" => Weekday::Wed,
        "Thursday" => Weekday::Thu,
        "Friday" => Weekday::Fri,
        "Saturday" => Weekday::Sat,
        "Sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// Whether a `DaysOfWeek` value (`Monday Wednesday`, `Day`, `Weekday`, `WeekendDay`) holds a day.
fn days_hold(days: &str, d: Weekday) -> bool {
    days.split_whitespace().any(|n| match n {
        "Day" => true,
        "Weekday" => !matches!(d, Weekday::Sat | Weekday::Sun),
        "WeekendDay" => matches!(d, Weekday::Sat | Weekday::Sun),
        other => weekday(other) == Some(d),
    })
}

fn date_of(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim().get(..10)?, "%Y-%m-%d").ok()
}

/// A `xs:dateTime` as a UTC instant.
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// `xs:dateTime` as Exchange writes it.
pub fn format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether a date is the relative day (`DayOfWeekIndex` First..Fourth, Last) of its month.
fn relative_day(d: NaiveDate, pattern: &Element) -> bool {
    let days = pattern.child_text("DaysOfWeek").unwrap_or("");
    if !days_hold(days, d.weekday()) {
        return false;
    }
    let nth = (d.day() - 1) / 7 + 1;
    match pattern.child_text("DayOfWeekIndex").unwrap_or("First") {
        "First" => nth == 1,
        "Second" => nth == 2,
        "Third" => nth == 3,
        "Fourth" => nth == 4,
        "Last" => last_day(d.year(), d.month()).is_some_and(|l| (l - d).num_days() < 7),
        _ => false,
    }
}

fn months_between(a: NaiveDate, b: NaiveDate) -> i64 {
    i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month())
}

/// Whether the pattern holds a date, counted from the range start.
fn pattern_holds(pattern: &Element, first: NaiveDate, d: NaiveDate) -> bool {
    let interval = pattern.child_text("Interval").and_then(|i| i.parse::<i64>().ok()).unwrap_or(1).max(1);
    let day_of_month = |d: NaiveDate| {
        let want = pattern.child_text("DayOfMonth").and_then(|v| v.parse::<u32>().ok()).unwrap_or(1);
        let last = last_day(d.year(), d.month()).map_or(31, |l| l.day());
        d.day() == want.min(last)
    };
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
    let in_month = |d: NaiveDate| {
        pattern
            .child_text("Month")
            .and_then(|m| MONTHS.iter().position(|n| *n == m))
            .is_some_and(|p| p as u32 + 1 == d.month())
    };
    match &*pattern.name {
        "DailyRecurrence" => (d - first).num_days() % interval == 0,
        "WeeklyRecurrence" => {
            let start_of = |x: NaiveDate| x - Duration::days(i64::from(x.weekday().num_days_from_sunday()));
            let weeks = (start_of(d) - start_of(first)).num_days() / 7;
            weeks % interval == 0 && days_hold(pattern.child_text("DaysOfWeek").unwrap_or(""), d.weekday())
        }
        "AbsoluteMonthlyRecurrence" => months_between(first, d) % interval == 0 && day_of_month(d),
        "RelativeMonthlyRecurrence" => months_between(first, d) % interval == 0 && relative_day(d, pattern),
        "AbsoluteYearlyRecurrence" => in_month(d) && day_of_month(d),
        "RelativeYearlyRecurrence" => in_month(d) && relative_day(d, pattern),
        _ => false,
    }
}

/// One occurrence of a series as the pattern places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Instance index, from 1.
    pub index: u32,
    /// Start as the pattern places it (`OriginalStart`).
    pub start: DateTime<Utc>,
    /// End as the pattern places it.
    pub end: DateTime<Utc>,
}

/// The occurrences of a master as its pattern places them, up to `until` (exceptions not
/// applied). Empty for an item without a (readable) recurrence.
pub fn slots(master: &Item, until: DateTime<Utc>) -> Vec<Slot> {
    let (Some(recurrence), Some(start), Some(end)) = (
        master.field("Recurrence"),
        master.field("Start").and_then(|s| instant(&s.text)),
        master.field("End").and_then(|e| instant(&e.text)),
    ) else {
        return Vec::new();
    };
    let (Some(pattern), Some(range)) = (recurrence.children.first(), recurrence.children.get(1)) else {
        return Vec::new();
    };
    let zone = Zone::of(master);
    let local_start = zone.local(start);
    let first = range.child_text("StartDate").and_then(date_of).unwrap_or(local_start.date());
    let last_date = match &*range.name {
        "EndDateRecurrence" => range.child_text("EndDate").and_then(date_of),
        _ => None,
    };
    let count = match &*range.name {
        "NumberedRecurrence" => {
            range.child_text("NumberOfOccurrences").and_then(|n| n.parse::<u32>().ok()).unwrap_or(MAX_OCCURRENCES)
        }
        _ => MAX_OCCURRENCES,
    }
    .min(MAX_OCCURRENCES);
    let length = end - start;
    let mut out = Vec::new();
    let mut d = first;
    // Ten years of days at most: a pattern that never matches ends the walk.
    for _ in 0..3700 {
        if out.len() as u32 >= count || last_date.is_some_and(|l| d > l) {
            break;
        }
        if pattern_holds(pattern, first, d) {
            let s = zone.to_utc(d.and_time(local_start.time()));
            if s > until {
                break;
            }
            out.push(Slot { index: out.len() as u32 + 1, start: s, end: s + length });
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// The slot of an instance index, or Exchange's error for an index outside the series.
pub fn slot(master: &Item, index: u32) -> Result<Slot, EwsError> {
    let far = Utc.from_utc_datetime(&NaiveDate::from_ymd_opt(9999, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN));
    slots(master, far).into_iter().find(|s| s.index == index).ok_or_else(|| {
        EwsError::new(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "Occurrence index is out of recurrence range.",
        )
    })
}

/// Whether the occurrence starting originally at `start` is deleted.
pub fn is_deleted(master: &Item, start: DateTime<Utc>) -> bool {
    master
        .field("DeletedOccurrences")
        .is_some_and(|d| d.children.iter().any(|o| o.child_text("Start").and_then(instant) == Some(start)))
}

/// The stored exception of an instance index.
pub fn exception(master: &Item, index: u32) -> Option<&Element> {
    let key = index.to_string();
    master.fields.iter().find(|f| f.name == EXCEPTION && f.attr("Index") == Some(key.as_str()))
}

/// Whether an item is a recurring master.
pub fn is_master(item: &Item) -> bool {
    item.element == "CalendarItem" && item.field("Recurrence").is_some()
}

/// The occurrence of a master as an item of its own (fields only: the renderer gives it the
/// occurrence id): the master's fields, or the exception's, with `Start`, `End`, `OriginalStart`.
/// Fails as Exchange does for an index outside the series or a deleted occurrence.
pub fn occurrence(master: &Item, index: u32) -> Result<(Item, bool), EwsError> {
    let slot = slot(master, index)?;
    if is_deleted(master, slot.start) {
        return Err(EwsError::new(
            "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
            "Occurrence with this index was previously deleted from the recurrence.",
        ));
    }
    let mut item = master.clone();
    let exception = exception(master, index);
    item.fields = match exception {
        Some(e) => e.children.clone(),
        None => {
            let mut f: Vec<Element> = master
                .fields
                .iter()
                .filter(|f| f.name != EXCEPTION && !MASTER_ONLY.contains(&&*f.name))
                .cloned()
                .collect();
            f.retain(|x| x.name != "Start" && x.name != "End");
            f.push(Element::t_text("Start", format(slot.start)));
            f.push(Element::t_text("End", format(slot.end)));
            f
        }
    };
    item.set_field(Element::t_text("OriginalStart", format(slot.start)));
    item.set_field(Element::t_text("RecurrenceId", format(slot.start)));
    Ok((item, exception.is_some()))
}

/// The occurrences of a master overlapping `[from, to)`: (index, occurrence item, is exception),
/// deleted ones left out, modified ones where they were moved to.
pub fn in_window(master: &Item, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(u32, Item, bool)> {
    // A moved exception may lie far from its slot: expand to the window's end plus the longest
    // distance any exception was moved, then filter by the occurrences' own times.
    let reach = master
        .fields
        .iter()
        .filter(|f| f.name == EXCEPTION)
        .filter_map(|e| Some((e.child_text("Start").and_then(instant)? - instant(e.attr("OriginalStart")?)?).abs()))
        .max()
        .unwrap_or_default();
    slots(master, to + reach)
        .into_iter()
        .filter_map(|s| occurrence(master, s.index).ok().map(|(item, exc)| (s.index, item, exc)))
        .filter(|(_, item, _)| {
            let time = |n: &str| item.field(n).and_then(|f| instant(&f.text));
            matches!((time("Start"), time("End")), (Some(s), Some(e)) if s < to && e > from)
        })
        .collect()
}

/// Records the deletion of an occurrence on its master.
pub fn delete_occurrence(master: &mut Item, index: u32) -> Result<(), EwsError> {
    let (_, _) = occurrence(master, index)?;
    let slot = slot(master, index)?;
    let key = index.to_string();
    master.fields.retain(|f| !(f.name == EXCEPTION && f.attr("Index") == Some(key.as_str())));
    let entry = Element::t("DeletedOccurrence").with_child(Element::t_text("Start", format(slot.start)));
    match master.fields.iter_mut().find(|f| f.name == "DeletedOccurrences") {
        Some(list) => {
            list.children.push(entry);
            list.children.sort_by_key(|o| o.child_text("Start").and_then(instant));
        }
        None => master.fields.push(Element::t("DeletedOccurrences").with_child(entry)),
    }
    Ok(())
}

/// Stores an occurrence's fields (after the client's changes) as an exception of the master.
pub fn store_exception(master: &mut Item, index: u32, occurrence: &Item) -> Result<(), EwsError> {
    let slot = slot(master, index)?;
    let time = |n: &str| occurrence.field(n).and_then(|f| instant(&f.text));
    if let (Some(s), Some(e)) = (time("Start"), time("End"))
        && e < s
    {
        return Err(EwsError::new("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"));
    }
    let mut e =
        Element::t(EXCEPTION).with_attr("Index", index.to_string()).with_attr("OriginalStart", format(slot.start));
    e.children =
        occurrence.fields.iter().filter(|f| !matches!(&*f.name, "OriginalStart" | "RecurrenceId")).cloned().collect();
    let key = index.to_string();
    master.fields.retain(|f| !(f.name == EXCEPTION && f.attr("Index") == Some(key.as_str())));
    master.fields.push(e);
    Ok(())
}

/// `ModifiedOccurrences` of a master as Exchange answers it: one `t:Occurrence` per exception,
/// in order of original start, each with its id, `Start`, `End` and `OriginalStart`.
pub fn modified_occurrences(master: &Item, id_of: impl Fn(u32) -> Element) -> Option<Element> {
    let mut list: Vec<(DateTime<Utc>, Element)> = master
        .fields
        .iter()
        .filter(|f| f.name == EXCEPTION)
        .filter_map(|e| {
            let index = e.attr("Index")?.parse::<u32>().ok()?;
            let original = e.attr("OriginalStart")?.to_string();
            let o = Element::t("Occurrence")
                .with_child(id_of(index))
                .with_child(Element::t_text("Start", e.child_text("Start")?))
                .with_child(Element::t_text("End", e.child_text("End")?))
                .with_child(Element::t_text("OriginalStart", original.clone()));
            Some((instant(&original)?, o))
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    list.sort_by_key(|(t, _)| *t);
    let mut e = Element::t("ModifiedOccurrences");
    e.children = list.into_iter().map(|(_, o)| o).collect();
    Some(e)
}

/// Drops every exception of a master whose pattern or times changed (Exchange re-times the
/// series and the exceptions are gone).
pub fn drop_exceptions_if_retimed(before: &Item, after: &mut Item) {
    let changed = ["Recurrence", "Start", "End", "StartTimeZone", "MeetingTimeZone"]
        .iter()
        .any(|n| before.field(n) != after.field(n));
    if changed && is_master(before) {
        after
            .fields
            .retain(|f| f.name != EXCEPTION && f.name != "DeletedOccurrences" && f.name != "ModifiedOccurrences");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(start: &str, end: &str, tz: Option<&str>, pattern: Element, range: Element) -> Item {
        let mut fields = vec![
            Element::t_text("Subject", "s"),
            Element::t_text("Start", start),
            Element::t_text("End", end),
            Element::t("Recurrence").with_child(pattern).with_child(range),
        ];
        if let Some(z) = tz {
            fields.push(Element::t("StartTimeZone").with_attr("Id", z));
        }
        Item {
            number: 1,
            folder: 1,
            element: "CalendarItem".into(),
            item_class: "IPM.Appointment".into(),
            fields,
            extended: vec![],
            version: 1,
            created: Utc::now(),
            modified: Utc::now(),
            created_seq: 1,
            changed_seq: 1,
        }
    }

    fn weekly(days: &str) -> Element {
        Element::t("WeeklyRecurrence")
            .with_child(Element::t_text("Interval", "1"))
            .with_child(Element::t_text("DaysOfWeek", days))
    }

    fn numbered(start: &str, n: u32) -> Element {
        Element::t("NumberedRecurrence")
            .with_child(Element::t_text("StartDate", start))
            .with_child(Element::t_text("NumberOfOccurrences", n.to_string()))
    }

    #[test]
    fn weekly_series_keeps_wall_clock_time_across_dst() {
        // 09:00 Berlin: 08:00 UTC in winter, 07:00 UTC after 2026-03-29.
        let m = master(
            "2026-03-16T08:00:00Z",
            "2026-03-16T08:30:00Z",
            Some("W. Europe Standard Time"),
            weekly("Monday"),
            numbered("2026-03-16", 4),
        );
        let s: Vec<String> = slots(&m, Utc::now() + Duration::days(3650)).iter().map(|s| format(s.start)).collect();
        assert_eq!(s, ["2026-03-16T08:00:00Z", "2026-03-23T08:00:00Z", "2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z"]);
    }

    #[test]
    fn us_rule_and_meeting_time_zone() {
        let z = Zone::by_id("Pacific Standard Time").unwrap();
        let local = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(format(z.to_utc(local)), "2026-07-01T16:00:00Z");
        let local = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(format(z.to_utc(local)), "2026-12-01T17:00:00Z");
        assert_eq!(duration_minutes("-PT5H30M"), Some(-330));
    }

    #[test]
    fn monthly_and_daily_patterns_and_ranges() {
        let rel = Element::t("RelativeMonthlyRecurrence")
            .with_child(Element::t_text("Interval", "1"))
            .with_child(Element::t_text("DaysOfWeek", "Friday"))
            .with_child(Element::t_text("DayOfWeekIndex", "Last"));
        let m = master("2026-01-30T10:00:00Z", "2026-01-30T11:00:00Z", None, rel, numbered("2026-01-01", 3));
        let s: Vec<String> = slots(&m, Utc::now() + Duration::days(3650)).iter().map(|s| format(s.start)).collect();
        assert_eq!(s, ["2026-01-30T10:00:00Z", "2026-02-27T10:00:00Z", "2026-03-27T10:00:00Z"]);
        let daily = Element::t("DailyRecurrence").with_child(Element::t_text("Interval", "2"));
        let range = Element::t("EndDateRecurrence")
            .with_child(Element::t_text("StartDate", "2026-01-01"))
            .with_child(Element::t_text("EndDate", "2026-01-07"));
        let m = master("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", None, daily, range);
        assert_eq!(slots(&m, Utc::now() + Duration::days(3650)).len(), 4);
    }

    #[test]
    fn exceptions_are_kept_on_the_master_and_dropped_on_retiming() {
        let mut m =
            master("2026-01-05T09:00:00Z", "2026-01-05T09:30:00Z", None, weekly("Monday"), numbered("2026-01-05", 5));
        delete_occurrence(&mut m, 2).unwrap();
        assert_eq!(occurrence(&m, 2).unwrap_err().code, "ErrorCalendarOccurrenceIsDeletedFromRecurrence");
        let (mut occ, exc) = occurrence(&m, 3).unwrap();
        assert!(!exc);
        occ.set_field(Element::t_text("Start", "2026-01-20T10:00:00Z"));
        occ.set_field(Element::t_text("End", "2026-01-20T11:00:00Z"));
        store_exception(&mut m, 3, &occ).unwrap();
        let from = instant("2026-01-01T00:00:00Z").unwrap();
        let to = instant("2026-02-01T00:00:00Z").unwrap();
        let starts: Vec<String> =
            in_window(&m, from, to).iter().map(|(_, i, _)| i.field("Start").unwrap().text.clone()).collect();
        assert_eq!(starts, ["2026-01-05T09:00:00Z", "2026-01-20T10:00:00Z", "2026-01-26T09:00:00Z"]);
        assert_eq!(slot(&m, 6).unwrap_err().code, "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange");
        let before = m.clone();
        m.set_field(Element::t_text("Start", "2026-01-05T10:00:00Z"));
        drop_exceptions_if_retimed(&before, &mut m);
        assert!(exception(&m, 3).is_none() && m.field("DeletedOccurrences").is_none());
    }
}
