//! Windows time zones for writing events: Graph takes an event's start and end as a local
//! wall-clock time and a zone id (`dateTimeTimeZone`), while the core holds UTC instants and the
//! zone's id. The zone is what keeps a series on its local time across daylight-saving changes,
//! so a copy is written in its source's zone, not in UTC.
//!
//! The table holds the Windows ids most calendars use with the EU and US daylight-saving rules of
//! today (the same ids the EWS connector writes with their rules for Exchange 2007 SP1). An event
//! in another zone is written in UTC with a warning: its instants are right, its series follow
//! UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc, Weekday};

/// Daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    /// European Union: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// United States: second Sunday of March 02:00 local to first Sunday of November 02:00 local.
    Us,
}

/// A time zone: standard offset from UTC (minutes) and daylight-saving rule.
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
    /// UTC.
    pub const UTC: Zone = Zone { base: 0, rule: Rule::None };

    /// A zone by Windows id (`tzone://Microsoft/Utc` is UTC).
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

    fn offset_at(&self, t: DateTime<Utc>) -> i64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_changes_its_offset_with_the_eu() {
        let z = Zone::by_id("W. Europe Standard Time").unwrap();
        let winter = NaiveDate::from_ymd_opt(2026, 3, 23).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let summer = NaiveDate::from_ymd_opt(2026, 3, 30).unwrap().and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(z.to_utc(winter).to_rfc3339(), "2026-03-23T08:00:00+00:00");
        assert_eq!(z.to_utc(summer).to_rfc3339(), "2026-03-30T07:00:00+00:00");
        assert_eq!(z.local(z.to_utc(summer)), summer);
        assert!(Zone::by_id("Mars Standard Time").is_none());
    }
}
