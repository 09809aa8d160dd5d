//! Calendar time zones for Exchange 2007 SP1, whose schema has no `StartTimeZone` /
//! `EndTimeZone` (Exchange 2010 and later: a Windows id is enough, the server fills in the
//! definition). A 2007 server takes the zone of a meeting as `MeetingTimeZone`: its name, its
//! bias (`BaseOffset`, minutes to add to local time to get UTC) and, where daylight saving time
//! applies, the two yearly transitions. Those are written here for the Windows ids most
//! calendars use (EU and US rules of today); another id is written by name only.

use crate::xml::XmlWriter;

/// The yearly daylight-saving rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    /// European Union: from the last Sunday of March (02:00 local in Central Europe) to the
    /// last Sunday of October (03:00 local), one hour.
    Eu,
    /// United States and Canada: from the second Sunday of March 02:00 to the first Sunday of
    /// November 02:00, one hour.
    Us,
}

/// (Windows id, standard offset from UTC in minutes, rule, local hour of the spring change).
const ZONES: &[(&str, i32, Rule, u32)] = &[
    ("UTC", 0, Rule::None, 0),
    ("Greenwich Standard Time", 0, Rule::None, 0),
    ("GMT Standard Time", 0, Rule::Eu, 1),
    ("W. Europe Standard Time", 60, Rule::Eu, 2),
    ("Central Europe Standard Time", 60, Rule::Eu, 2),
    ("Central European Standard Time", 60, Rule::Eu, 2),
    ("Romance Standard Time", 60, Rule::Eu, 2),
    ("E. Europe Standard Time", 120, Rule::Eu, 3),
    ("FLE Standard Time", 120, Rule::Eu, 3),
    ("GTB Standard Time", 120, Rule::Eu, 3),
    ("Eastern Standard Time", -300, Rule::Us, 2),
    ("Central Standard Time", -360, Rule::Us, 2),
    ("Mountain Standard Time", -420, Rule::Us, 2),
    ("Pacific Standard Time", -480, Rule::Us, 2),
    ("Alaskan Standard Time", -540, Rule::Us, 2),
    ("US Mountain Standard Time", -420, Rule::None, 0),
    ("Hawaiian Standard Time", -600, Rule::None, 0),
    ("India Standard Time", 330, Rule::None, 0),
    ("China Standard Time", 480, Rule::None, 0),
    ("Singapore Standard Time", 480, Rule::None, 0),
    ("Tokyo Standard Time", 540, Rule::None, 0),
];

/// `xs:duration` of a number of minutes (`-PT1H`, `PT5H30M`, `PT0M`).
fn duration(minutes: i32) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let m = minutes.unsigned_abs();
    match (m / 60, m % 60) {
        (0, r) => format!("{sign}PT{r}M"),
        (h, 0) => format!("{sign}PT{h}H"),
        (h, r) => format!("{sign}PT{h}H{r}M"),
    }
}

fn transition(w: &mut XmlWriter, tag: &str, offset: i32, index: &str, month: &str, hour: u32) {
    w.open(tag, &[]);
    w.leaf("t:Offset", &duration(offset));
    w.open("t:RelativeYearlyRecurrence", &[]);
    w.leaf("t:DaysOfWeek", "Sunday");
    w.leaf("t:DayOfWeekIndex", index);
    w.leaf("t:Month", month);
    w.close("t:RelativeYearlyRecurrence");
    w.leaf("t:Time", &format!("{hour:02}:00:00"));
    w.close(tag);
}

/// The children of `t:MeetingTimeZone` for a Windows id (empty for an id not in the table: the
/// element then names the zone only).
pub(crate) fn meeting_time_zone_children(id: &str) -> String {
    let Some(&(_, base, rule, spring)) = ZONES.iter().find(|(n, ..)| n.eq_ignore_ascii_case(id.trim())) else {
        return String::new();
    };
    let mut w = XmlWriter::new();
    // The bias is what is added to local time to get UTC.
    w.leaf("t:BaseOffset", &duration(-base));
    match rule {
        Rule::None => {}
        Rule::Eu => {
            transition(&mut w, "t:Standard", 0, "Last", "October", spring + 1);
            transition(&mut w, "t:Daylight", -60, "Last", "March", spring);
        }
        Rule::Us => {
            transition(&mut w, "t:Standard", 0, "First", "November", 2);
            transition(&mut w, "t:Daylight", -60, "Second", "March", spring);
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_of_known_zones() {
        let berlin = meeting_time_zone_children("W. Europe Standard Time");
        assert!(
            berlin.starts_with("<t:BaseOffset>-PT1H</t:BaseOffset><t:Standard><t:Offset>PT0M</t:Offset>"),
            "{berlin}"
        );
        assert!(berlin.contains("<t:Month>March</t:Month></t:RelativeYearlyRecurrence><t:Time>02:00:00</t:Time>"));
        let pacific = meeting_time_zone_children("Pacific Standard Time");
        assert!(pacific.starts_with("<t:BaseOffset>PT8H</t:BaseOffset>"));
        assert_eq!(meeting_time_zone_children("India Standard Time"), "<t:BaseOffset>-PT5H30M</t:BaseOffset>");
        assert_eq!(meeting_time_zone_children("Atlantis Standard Time"), "");
    }
}
