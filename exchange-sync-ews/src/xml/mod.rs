//! XML for EWS: a hardened, namespace-tolerant reader into a small element tree, and a writer that
//! emits exactly the elements asked for (the callers know the schema order).

mod element;
mod writer;

pub use element::{Element, ParseLimits, parse};
pub(crate) use element::{for_each_attribute, is_blank, local_name};
pub use writer::XmlWriter;

/// The EWS messages namespace (prefix `m:` in what we send).
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// The EWS types namespace (prefix `t:` in what we send).
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// The SOAP 1.1 envelope namespace (http, as Exchange uses it).
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
