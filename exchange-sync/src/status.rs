//! What `status` shows: per group and member, how far syncing got and what went wrong.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::report::GroupReport;

/// The status of one folder of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberStatusReport {
    /// The member id (`hub` for the hub).
    pub member: String,
    /// The folder, as configured (`alice@contoso.test/contacts`, `public folder Company Contacts`).
    pub folder: String,
    /// `hub`, `one_way` or `two_way`.
    pub direction: String,
    /// Whether the folder's initial sync completed.
    pub initialized: bool,
    /// When the folder last completed a sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// The last error that stopped the folder's sync.
    pub last_error: Option<String>,
    /// How many copies of the group's items the folder holds.
    pub copies: usize,
    /// Creates started and not yet confirmed (resolved by the next pass).
    pub pending_creates: usize,
}

/// The status of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStatus {
    /// The group id.
    pub group: String,
    /// The hub first, then the members.
    pub members: Vec<MemberStatusReport>,
    /// Whether the mass-delete guard stopped the group (an admin must confirm).
    pub stopped_by_mass_delete_guard: bool,
    /// The last pass's report, when this process ran one.
    pub last_report: Option<GroupReport>,
}
