//! # exchange-sync-core
//!
//! The transport-independent heart of exchange-sync: what a sync is, independent of any server.
//!
//! Data flows one way: **connector → observations → planner → actions → executor → connector**,
//! with the **state store** as the memory between runs. Nothing here knows what SOAP is; the EWS
//! crate provides connectors for Exchange mailbox and public folders.
//!
//! - [`item`]: the normalized item and its content hash; [`field`]: canonical field names.
//! - [`id`] and [`origin`]: identifiers and the origin stamp carried by every copy we write.
//! - [`group`]: sync groups, members, directions and policies.
//! - [`connector`]: the trait a server implements, one instance per folder.
//! - [`state`]: the state store trait and its records.
//! - [`plan`](mod@plan): observations, actions and plans (the dry run).
//! - [`planner`]: the pure function from state and observations to a plan; [`merge`]: the
//!   three-way field merge it uses.
//! - [`executor`]: applies a plan, committing each action's outcome as it completes.
//! - [`engine`]: one sync pass of a group (recover, observe, plan, execute) with its report.
//! - [`view`]: what a one-way member receives (filters and modifications, as views).
//! - [`error`]: the error type, with a kind that says whether to retry.
//! - [`back_off`]: the per-mailbox gate that holds requests while a server's back-off lasts.
//! - `testkit` (feature `testkit`): an in-memory connector with fault injection and the connector
//!   conformance suite.
//!
//! The vocabulary (group, hub, member, folder, entity, copy, base) and the reconciliation rules
//! cited as "design rule N" are in the repository's `docs/design.md`.

pub mod back_off;
pub mod connector;
pub mod engine;
pub mod error;
pub mod executor;
pub mod field;
pub mod group;
pub mod id;
pub mod item;
pub mod merge;
pub mod origin;
pub mod plan;
pub mod planner;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod view;

pub use back_off::BackOffGate;
pub use connector::{
    BatchResult, Capabilities, Change, ChangeDetection, ChangeHint, ChangePage, Connector, Deleted, FetchedItem,
    ItemDelete, ItemUpdate, ItemVersion, ListPage, NewItem, PageCursor,
};
pub use error::{Error, ErrorContext, ErrorKind, Result};
pub use group::{
    ConflictPolicy, Direction, LocalChangePolicy, MassDeleteGuard, Member, OneWayPolicy, SyncGroup, TwoWayPolicy,
};
pub use id::{EntityId, GroupId, ItemId, MemberId, SyncToken, Version};
pub use item::{Body, BodyFormat, ContentHash, FieldValue, Item, ItemKind};
pub use merge::{FieldConflict, MergeSide, Merged};
pub use origin::OriginStamp;
pub use plan::{Action, FolderObservation, Notice, Observed, Plan, PlanInput, Reason};
pub use planner::plan;
pub use state::{EntityRecord, ReplicaRecord, ReplicaSlot, StateStore, StateTransaction, StateWrite};
pub use view::{MemberView, MemberViews};
