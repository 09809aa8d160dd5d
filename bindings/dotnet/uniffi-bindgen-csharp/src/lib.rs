//! C# backend for uniffi.
//!
//! uniffi defines the FFI of a Rust library (scaffolding, metadata, a C ABI); this crate turns the
//! metadata of a built cdylib into one C# source file that compiles as **C# 7.2 against
//! netstandard2.0**, so the same output builds with Mono's `mcs -langversion:7.2` (the C# compiler
//! that Debian packages, hence the one CI runs) and runs unchanged on .NET Framework 4.7.2+
//! (Windows PowerShell 5.1), .NET 6+ and Mono.
//!
//! How uniffi shapes map to C# is described on each module; in short: records are sealed classes,
//! flat enums are C# enums, enums with data are abstract classes with a nested class per variant,
//! errors are exception hierarchies, objects are `IDisposable` classes with a finalizer, callback
//! interfaces are C# interfaces, async functions return `Task`/`Task<T>` and take a
//! `CancellationToken`.

mod bindings;
mod callables;
mod callback_interfaces;
mod config;
mod converters;
mod defaults;
mod doc_comments;
mod enums;
mod error;
mod ffi;
mod names;
mod objects;
mod records;
mod types;

pub use bindings::{CsharpBindingGenerator, generate_component, generate_from_library};
pub use config::Config;
pub use error::{ErrorKind, GenerateError};
