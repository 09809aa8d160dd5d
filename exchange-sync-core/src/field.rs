//! Canonical field names.
//!
//! These names are the contract between connectors (which map their server's properties onto
//! them), the planner (which merges field by field), filters and modifications (which name fields
//! in configuration), and the state store (which keeps merge bases). They are lower-case, dotted
//! paths; indexed properties carry their index (`email1.address`, `address.business.city`).
//!
//! A connector may carry fields not listed here (e.g. `x.<name>` for properties it copies
//! opaquely); names starting with [`crate::item::SERVER_FIELD_PREFIX`] are server-maintained.

// Shared by all kinds.
/// Subject (calendar items, tasks, notes) or the display subject of other items.
pub const SUBJECT: &str = "subject";
/// Sensitivity: `normal`, `personal`, `private`, `confidential`.
pub const SENSITIVITY: &str = "sensitivity";
/// Importance: `low`, `normal`, `high`.
pub const IMPORTANCE: &str = "importance";

// Contacts: names.
/// Display name as the user set it.
pub const DISPLAY_NAME: &str = "display_name";
/// "File as" string.
pub const FILE_AS: &str = "file_as";
/// Given (first) name.
pub const GIVEN_NAME: &str = "given_name";
/// Middle name.
pub const MIDDLE_NAME: &str = "middle_name";
/// Surname (last name).
pub const SURNAME: &str = "surname";
/// Initials.
pub const INITIALS: &str = "initials";
/// Nickname.
pub const NICKNAME: &str = "nickname";
/// Title before the name (Dr., Ms.).
pub const NAME_TITLE: &str = "name.title";
/// Suffix after the name (Jr.).
pub const NAME_SUFFIX: &str = "name.suffix";
/// Company name.
pub const COMPANY: &str = "company";
/// Department.
pub const DEPARTMENT: &str = "department";
/// Job title.
pub const JOB_TITLE: &str = "job_title";
/// Office location.
pub const OFFICE: &str = "office";
/// Manager's name.
pub const MANAGER: &str = "manager";
/// Assistant's name.
pub const ASSISTANT_NAME: &str = "assistant_name";
/// Spouse's name.
pub const SPOUSE_NAME: &str = "spouse_name";
/// Birthday.
pub const BIRTHDAY: &str = "birthday";
/// Wedding anniversary.
pub const ANNIVERSARY: &str = "anniversary";
/// Business home page.
pub const BUSINESS_HOME_PAGE: &str = "business_home_page";
/// Profession.
pub const PROFESSION: &str = "profession";
/// Children's names (a text list).
pub const CHILDREN: &str = "children";
/// Companies (a text list).
pub const COMPANIES: &str = "companies";

// Contacts: e-mail addresses (EWS EmailAddress1..3).
/// First e-mail address.
pub const EMAIL1: &str = "email1.address";
/// Second e-mail address.
pub const EMAIL2: &str = "email2.address";
/// Third e-mail address.
pub const EMAIL3: &str = "email3.address";

/// The canonical name of an e-mail address slot (`1..=3`).
pub fn email(slot: u8) -> String {
    format!("email{slot}.address")
}

// Contacts: instant messaging (EWS ImAddress1..3).
/// The canonical name of an IM address slot (`1..=3`).
pub fn im(slot: u8) -> String {
    format!("im{slot}.address")
}

// Contacts: phone numbers (every EWS PhoneNumberKey, in snake case).
/// Business phone.
pub const PHONE_BUSINESS: &str = "phone.business";
/// Mobile phone.
pub const PHONE_MOBILE: &str = "phone.mobile";
/// Home phone.
pub const PHONE_HOME: &str = "phone.home";

/// Every phone key: EWS `PhoneNumberKey` values and their canonical suffixes.
pub const PHONE_KEYS: &[(&str, &str)] = &[
    ("AssistantPhone", "assistant"),
    ("BusinessFax", "business_fax"),
    ("BusinessPhone", "business"),
    ("BusinessPhone2", "business2"),
    ("Callback", "callback"),
    ("CarPhone", "car"),
    ("CompanyMainPhone", "company_main"),
    ("HomeFax", "home_fax"),
    ("HomePhone", "home"),
    ("HomePhone2", "home2"),
    ("Isdn", "isdn"),
    ("MobilePhone", "mobile"),
    ("OtherFax", "other_fax"),
    ("OtherTelephone", "other"),
    ("Pager", "pager"),
    ("PrimaryPhone", "primary"),
    ("RadioPhone", "radio"),
    ("Telex", "telex"),
    ("TtyTddPhone", "tty_tdd"),
];

/// The canonical name of a phone number by its suffix in [`PHONE_KEYS`] (e.g. `mobile`).
pub fn phone(suffix: &str) -> String {
    format!("phone.{suffix}")
}

// Contacts: postal addresses (EWS PhysicalAddressKey Business / Home / Other).
/// The address kinds: EWS `PhysicalAddressKey` values and their canonical names.
pub const ADDRESS_KINDS: &[(&str, &str)] = &[("Business", "business"), ("Home", "home"), ("Other", "other")];
/// The parts of a postal address, in EWS schema order with their canonical names.
pub const ADDRESS_PARTS: &[(&str, &str)] = &[
    ("Street", "street"),
    ("City", "city"),
    ("State", "state"),
    ("CountryOrRegion", "country"),
    ("PostalCode", "postal_code"),
];

/// The canonical name of one part of one postal address, e.g. `address.business.city`.
pub fn address(kind: &str, part: &str) -> String {
    format!("address.{kind}.{part}")
}

// Calendar items.
/// Start (date-time).
pub const START: &str = "start";
/// End (date-time).
pub const END: &str = "end";
/// All-day event flag.
pub const IS_ALL_DAY: &str = "is_all_day";
/// Location.
pub const LOCATION: &str = "location";
/// Free/busy status: `free`, `tentative`, `busy`, `oof`, `working_elsewhere`.
pub const LEGACY_FREE_BUSY: &str = "free_busy";
/// Reminder set flag.
pub const REMINDER_IS_SET: &str = "reminder.is_set";
/// Minutes before start for the reminder.
pub const REMINDER_MINUTES: &str = "reminder.minutes_before_start";
/// The recurrence of a recurring master, in a canonical text form chosen by the connector
/// (e.g. `weekly;interval=1;days=monday,wednesday;start=2026-01-05;end=2026-06-29`).
pub const RECURRENCE: &str = "recurrence";
/// Time zone id of the start.
pub const START_TIME_ZONE: &str = "start_time_zone";
/// Attendees of a meeting, kept as text (copies are written as plain appointments).
pub const ATTENDEES: &str = "attendees";

// Tasks.
/// Due date.
pub const DUE_DATE: &str = "due_date";
/// Start date.
pub const START_DATE: &str = "start_date";
/// Status: `not_started`, `in_progress`, `completed`, `waiting_on_others`, `deferred`.
pub const STATUS: &str = "status";
/// Percent complete (integer 0..=100).
pub const PERCENT_COMPLETE: &str = "percent_complete";
/// Completion date.
pub const COMPLETE_DATE: &str = "complete_date";

// Server-maintained fields (never hashed, merged or written).
/// Last modification time as the server reports it.
pub const SERVER_LAST_MODIFIED: &str = "server.last_modified_time";
/// Creation time as the server reports it.
pub const SERVER_CREATED: &str = "server.created_time";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_match_constants() {
        assert_eq!(email(1), EMAIL1);
        assert_eq!(phone("mobile"), PHONE_MOBILE);
        assert_eq!(address("business", "city"), "address.business.city");
        assert!(crate::item::Item::is_server_field(SERVER_LAST_MODIFIED));
    }
}
