//! The test kit (feature `testkit`): what other crates and the bindings reuse to test against
//! the engine without a server.
//!
//! - [`MemoryConnector`]: an in-memory folder that behaves like an Exchange folder (versions,
//!   change tokens and pages, or snapshot listing; origin stamps; per-item batch results; change
//!   hints), with a user API to simulate phone edits and a fault schedule ([`Fault`]) to simulate
//!   a server's bad days and process crashes ([`CrashSignal`]).
//! - [`conformance`]: the suite every [`crate::Connector`] implementation runs against itself.

pub mod conformance;
pub mod faults;
pub mod memory_connector;

pub use faults::{CrashSignal, Fault, FaultKind, Operation, error_of_kind, run_until_crash};
pub use memory_connector::{MemoryConnector, MemoryConnectorConfig};
