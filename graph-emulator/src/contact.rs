//! The `microsoft.graph.contact` resource as Graph v1.0 defines it: which properties a client may
//! write, their JSON types, and how the emulator renders a stored contact.
//!
//! Writes are checked the way Graph checks them: a property the type does not declare, or a value
//! of the wrong JSON type, fails the whole request with `400 RequestBodyRead`. Server-maintained
//! properties (`id`, `changeKey`, timestamps, `parentFolderId`) are ignored when a client sends them.

use serde_json::{Map, Value, json};

/// How a writable contact property is typed in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// `Edm.String`.
    Text,
    /// `Edm.DateTimeOffset` (an ISO 8601 string).
    DateTime,
    /// `Collection(Edm.String)`.
    TextList,
    /// `graph.physicalAddress`.
    Address,
    /// `Collection(graph.emailAddress)`.
    EmailList,
}

/// Every property of `microsoft.graph.contact` (and `outlookItem`) a client may write, in the
/// order Graph renders them.
pub const WRITABLE: &[(&str, PropertyType)] = &[
    ("categories", PropertyType::TextList),
    ("assistantName", PropertyType::Text),
    ("birthday", PropertyType::DateTime),
    ("businessAddress", PropertyType::Address),
    ("businessHomePage", PropertyType::Text),
    ("businessPhones", PropertyType::TextList),
    ("children", PropertyType::TextList),
    ("companyName", PropertyType::Text),
    ("department", PropertyType::Text),
    ("displayName", PropertyType::Text),
    ("emailAddresses", PropertyType::EmailList),
    ("fileAs", PropertyType::Text),
    ("generation", PropertyType::Text),
    ("givenName", PropertyType::Text),
    ("homeAddress", PropertyType::Address),
    ("homePhones", PropertyType::TextList),
    ("imAddresses", PropertyType::TextList),
    ("initials", PropertyType::Text),
    ("jobTitle", PropertyType::Text),
    ("manager", PropertyType::Text),
    ("middleName", PropertyType::Text),
    ("mobilePhone", PropertyType::Text),
    ("nickName", PropertyType::Text),
    ("officeLocation", PropertyType::Text),
    ("otherAddress", PropertyType::Address),
    ("personalNotes", PropertyType::Text),
    ("profession", PropertyType::Text),
    ("spouseName", PropertyType::Text),
    ("surname", PropertyType::Text),
    ("title", PropertyType::Text),
    ("yomiCompanyName", PropertyType::Text),
    ("yomiGivenName", PropertyType::Text),
    ("yomiSurname", PropertyType::Text),
];

/// Properties the server maintains; a client sending them is ignored, as Graph does.
pub const SERVER_MAINTAINED: &[&str] =
    &["id", "changeKey", "createdDateTime", "lastModifiedDateTime", "parentFolderId"];

/// The parts of a `graph.physicalAddress`.
pub const ADDRESS_PARTS: &[&str] = &["city", "countryOrRegion", "postalCode", "state", "street"];

/// The most e-mail addresses an Exchange contact holds.
pub const MAX_EMAIL_ADDRESSES: usize = 3;

/// The type of a writable property.
pub fn property_type(name: &str) -> Option<PropertyType> {
    WRITABLE.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Checks one property value against its type; `Err` says what is wrong, in Graph's words.
pub fn check_value(name: &str, ty: PropertyType, value: &Value) -> Result<(), String> {
    let wrong = |expected: &str| {
        Err(format!("Cannot convert the literal '{value}' to the expected type '{expected}' of property '{name}'."))
    };
    if value.is_null() {
        return Ok(());
    }
    match ty {
        PropertyType::Text => {
            if !value.is_string() {
                return wrong("Edm.String");
            }
        }
        PropertyType::DateTime => match value.as_str() {
            Some(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {}
            _ => return wrong("Edm.DateTimeOffset"),
        },
        PropertyType::TextList => match value.as_array() {
            Some(a) if a.iter().all(Value::is_string) => {}
            _ => return wrong("Collection(Edm.String)"),
        },
        PropertyType::Address => {
            let Some(o) = value.as_object() else { return wrong("microsoft.graph.physicalAddress") };
            for (k, v) in o {
                if !ADDRESS_PARTS.contains(&k.as_str()) {
                    return Err(format!(
                        "The property '{k}' does not exist on type 'microsoft.graph.physicalAddress'. Make sure to only use property names that are defined by the type."
                    ));
                }
                if !(v.is_string() || v.is_null()) {
                    return wrong("Edm.String");
                }
            }
        }
        PropertyType::EmailList => {
            let Some(a) = value.as_array() else { return wrong("Collection(microsoft.graph.emailAddress)") };
            if a.len() > MAX_EMAIL_ADDRESSES {
                return Err(format!("A contact holds at most {MAX_EMAIL_ADDRESSES} e-mail addresses."));
            }
            for e in a {
                let Some(o) = e.as_object() else { return wrong("microsoft.graph.emailAddress") };
                for (k, v) in o {
                    if k != "name" && k != "address" {
                        return Err(format!(
                            "The property '{k}' does not exist on type 'microsoft.graph.emailAddress'. Make sure to only use property names that are defined by the type."
                        ));
                    }
                    if !(v.is_string() || v.is_null()) {
                        return wrong("Edm.String");
                    }
                }
            }
        }
    }
    Ok(())
}

/// The value Graph renders for a property the contact does not hold.
pub fn empty_value(ty: PropertyType) -> Value {
    match ty {
        PropertyType::Text | PropertyType::DateTime => Value::Null,
        PropertyType::TextList | PropertyType::EmailList => json!([]),
        PropertyType::Address => json!({}),
    }
}

/// Drops the null parts of an address, as Exchange stores it.
pub fn normalize(ty: PropertyType, value: Value) -> Value {
    match (ty, value) {
        (PropertyType::Address, Value::Object(o)) => {
            Value::Object(o.into_iter().filter(|(_, v)| !v.is_null()).collect::<Map<String, Value>>())
        }
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_graph_accepts_and_refuses_the_rest() {
        assert!(check_value("givenName", PropertyType::Text, &json!("Ann")).is_ok());
        assert!(check_value("givenName", PropertyType::Text, &json!(3)).is_err());
        assert!(check_value("birthday", PropertyType::DateTime, &json!("2001-02-03T00:00:00Z")).is_ok());
        assert!(check_value("birthday", PropertyType::DateTime, &json!("yesterday")).is_err());
        assert!(check_value("businessAddress", PropertyType::Address, &json!({"city": "Oslo"})).is_ok());
        assert!(check_value("businessAddress", PropertyType::Address, &json!({"town": "Oslo"})).is_err());
        let four = json!([{"address": "a"}, {"address": "b"}, {"address": "c"}, {"address": "d"}]);
        assert!(check_value("emailAddresses", PropertyType::EmailList, &four).is_err());
        assert!(check_value("emailAddresses", PropertyType::EmailList, &json!([{"addr": "a"}])).is_err());
    }
}
