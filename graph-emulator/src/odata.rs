//! The parts of OData the emulator understands: query strings, the `$filter` and `$expand`
//! expressions the connector and the usual SDK calls use, and extended property ids.
//!
//! Anything else in `$filter` is refused with `400` (as Graph refuses filters it cannot run on a
//! mailbox), so a client relying on a filter the emulator would silently ignore fails loudly.

use std::collections::BTreeMap;

/// Decodes `%XX` escapes and `+` (a space in form-encoded query strings).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query options of a request, by name (`$top`, `$filter`, ...), decoded.
pub fn query_options(query: Option<&str>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(percent_decode(k), percent_decode(v));
    }
    map
}

/// An extended property id (`String {guid} Name X`, `String {guid} Id 0x8005`, `String 0x3A24`),
/// in a normal form that compares the way Exchange does (type and GUID ignore case).
pub fn normalize_property_id(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split_whitespace().collect();
    let ty = *parts.first()?;
    const TYPES: &[&str] = &[
        "Binary",
        "Boolean",
        "CLSID",
        "Currency",
        "Double",
        "Float",
        "Integer",
        "Long",
        "Object",
        "Short",
        "String",
        "SystemTime",
    ];
    let ty = TYPES.iter().find(|t| t.eq_ignore_ascii_case(ty))?;
    let tag =
        |s: &str| s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).and_then(|h| u32::from_str_radix(h, 16).ok());
    match parts.as_slice() {
        [_, t] => Some(format!("{ty} 0x{:04x}", tag(t)?)),
        [_, guid, kind, rest @ ..] if guid.starts_with('{') && guid.ends_with('}') && !rest.is_empty() => {
            let guid = uuid::Uuid::parse_str(&guid[1..guid.len() - 1]).ok()?;
            if kind.eq_ignore_ascii_case("Name") {
                Some(format!("{ty} {{{}}} Name {}", guid.hyphenated(), rest.join(" ")))
            } else if kind.eq_ignore_ascii_case("Id") && rest.len() == 1 {
                Some(format!("{ty} {{{}}} Id 0x{:04x}", guid.hyphenated(), tag(rest[0])?))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A `$filter` the emulator can evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `singleValueExtendedProperties/any(ep: ep/id eq 'ID' and ep/value eq 'VALUE')`.
    ExtendedPropertyEquals {
        /// The property id, normalized.
        id: String,
        /// The value.
        value: String,
    },
    /// `displayName eq 'X'` (contact folders).
    DisplayNameEquals(String),
    /// `mail eq 'X'` (groups).
    MailEquals(String),
}

/// Reads an OData string literal at the start of `s` (`'it''s'`), answering it and the rest.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &s[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Consumes a keyword (case-insensitive) with surrounding spaces.
fn keyword<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let s = s.trim_start();
    let head = s.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &s[word.len()..])
}

/// Parses the `$filter` expressions the emulator supports; `Err` says why one is not.
pub fn parse_filter(text: &str) -> Result<Filter, String> {
    let unsupported = || format!("The $filter expression '{text}' is not supported.");
    let any = || -> Option<Filter> {
        let rest = keyword(text, "singleValueExtendedProperties/any(")?;
        let rest = rest.trim_start();
        let var_end = rest.find(':')?;
        let var = rest[..var_end].trim();
        let rest = &rest[var_end + 1..];
        let rest = keyword(rest, &format!("{var}/id"))?;
        let rest = keyword(rest, "eq")?;
        let (id, rest) = string_literal(rest)?;
        let rest = keyword(rest, "and")?;
        let rest = keyword(rest, &format!("{var}/value"))?;
        let rest = keyword(rest, "eq")?;
        let (value, rest) = string_literal(rest)?;
        let rest = keyword(rest, ")")?;
        if !rest.trim().is_empty() {
            return None;
        }
        Some(Filter::ExtendedPropertyEquals { id: normalize_property_id(&id)?, value })
    };
    if let Some(f) = any() {
        return Ok(f);
    }
    let display = || -> Option<Filter> {
        // `name` is a calendar's display name.
        let rest = keyword(text, "displayName").or_else(|| keyword(text, "name"))?;
        let rest = keyword(rest, "eq")?;
        let (name, rest) = string_literal(rest)?;
        rest.trim().is_empty().then_some(Filter::DisplayNameEquals(name))
    };
    let mail = || -> Option<Filter> {
        let rest = keyword(text, "mail")?;
        let rest = keyword(rest, "eq")?;
        let (address, rest) = string_literal(rest)?;
        rest.trim().is_empty().then_some(Filter::MailEquals(address))
    };
    display().or_else(mail).ok_or_else(unsupported)
}

/// Parses `$expand=singleValueExtendedProperties($filter=id eq 'X')` into the normalized ids to
/// render (several joined with `or`); `Err` for any other expansion.
pub fn parse_expand(text: &str) -> Result<Vec<String>, String> {
    let unsupported = || format!("The $expand expression '{text}' is not supported.");
    let rest = keyword(text, "singleValueExtendedProperties").ok_or_else(unsupported)?;
    let rest = keyword(rest, "(").ok_or_else(unsupported)?;
    let mut rest = keyword(rest, "$filter=").ok_or_else(unsupported)?;
    let mut ids = Vec::new();
    loop {
        rest = keyword(rest, "id").ok_or_else(unsupported)?;
        rest = keyword(rest, "eq").ok_or_else(unsupported)?;
        let (id, after) = string_literal(rest).ok_or_else(unsupported)?;
        ids.push(normalize_property_id(&id).ok_or_else(unsupported)?);
        rest = after;
        match keyword(rest, "or") {
            Some(after) => rest = after,
            None => break,
        }
    }
    let rest = keyword(rest, ")").ok_or_else(unsupported)?;
    if rest.trim().is_empty() { Ok(ids) } else { Err(unsupported()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &str = "String {C87D849C-6C0B-43EC-9A40-FEAD13D50B3C} Name OriginStamp";

    #[test]
    fn property_ids_compare_like_exchange() {
        let n = normalize_property_id(STAMP).unwrap();
        assert_eq!(n, "String {c87d849c-6c0b-43ec-9a40-fead13d50b3c} Name OriginStamp");
        assert_eq!(normalize_property_id("string 0x3A24").unwrap(), "String 0x3a24");
        assert!(normalize_property_id("Text {x} Name Y").is_none());
        assert!(normalize_property_id("String {not-a-guid} Name Y").is_none());
    }

    #[test]
    fn parses_the_filters_in_use() {
        let f =
            parse_filter(&format!("singleValueExtendedProperties/Any(ep: ep/id eq '{STAMP}' and ep/value eq 'a''b')"))
                .unwrap();
        assert_eq!(
            f,
            Filter::ExtendedPropertyEquals { id: normalize_property_id(STAMP).unwrap(), value: "a'b".into() }
        );
        assert_eq!(parse_filter("displayName eq 'Team'").unwrap(), Filter::DisplayNameEquals("Team".into()));
        assert!(parse_filter("startswith(displayName,'T')").is_err());
        let ids = parse_expand(&format!("singleValueExtendedProperties($filter=id eq '{STAMP}')")).unwrap();
        assert_eq!(ids.len(), 1);
        assert!(parse_expand("photo").is_err());
    }

    #[test]
    fn query_strings_decode() {
        let q = query_options(Some("%24top=5&%24filter=displayName+eq+%27A%20B%27&x"));
        assert_eq!(q.get("$top").map(String::as_str), Some("5"));
        assert_eq!(q.get("$filter").map(String::as_str), Some("displayName eq 'A B'"));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
