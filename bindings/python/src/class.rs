//! Python classes over the neutral records: a class wraps a record of `exchange_sync_bindings`
//! and its attributes read the record's fields, converted the Python way (`datetime` in UTC,
//! durations in seconds, nested records as their classes).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// How a record's value reads in Python.
pub trait Py<T> {
    /// The value as the attribute returns it.
    fn py(&self) -> T;
}

macro_rules! as_it_is {
    ($($t:ty),*) => {
        $(impl Py<$t> for $t {
            fn py(&self) -> $t {
                self.clone()
            }
        })*
    };
}

as_it_is!(String, bool, u32, u64, Option<String>, Option<u32>);

impl Py<DateTime<Utc>> for SystemTime {
    fn py(&self) -> DateTime<Utc> {
        (*self).into()
    }
}

impl Py<Option<DateTime<Utc>>> for Option<SystemTime> {
    fn py(&self) -> Option<DateTime<Utc>> {
        self.map(Into::into)
    }
}

impl Py<f64> for Duration {
    fn py(&self) -> f64 {
        self.as_secs_f64()
    }
}

impl<R: Clone, W: From<R>> Py<Vec<W>> for Vec<R> {
    fn py(&self) -> Vec<W> {
        self.iter().cloned().map(W::from).collect()
    }
}

/// A class wrapping a record, its attributes reading the record's fields.
macro_rules! record_class {
    ($(#[$doc:meta])* $name:ident($record:ty) { $($field:ident: $ty:ty),* $(,)? } $($methods:tt)*) => {
        $(#[$doc])*
        #[::pyo3::pyclass(module = "exchange_sync", frozen)]
        #[derive(Clone)]
        pub struct $name(pub $record);

        impl From<$record> for $name {
            fn from(r: $record) -> Self {
                $name(r)
            }
        }

        #[::pyo3::pymethods]
        impl $name {
            $(
                #[getter]
                fn $field(&self) -> $ty {
                    $crate::class::Py::py(&self.0.$field)
                }
            )*
            $($methods)*
        }
    };
}

pub(crate) use record_class;
