//! Default values of arguments and record fields as C# optional parameters.
//!
//! C# accepts only compile-time constants as defaults, and optional parameters must come last: a
//! default becomes optional only when it is a constant (booleans, numbers, strings, members of a
//! C# enum, `null` for `None`) and every later parameter is optional too. An empty collection
//! (`[]`, `{}`) becomes a `null` default that the bindings replace by an empty list, set or
//! dictionary ([`empty_collection`]). Other defaults (records) leave the parameter required.

use uniffi_bindgen::interface::{DefaultValue, Literal, Type};

use crate::names;
use crate::types::TypeMap;

/// The C# constant for a default value of type `ty`, if there is one.
pub(crate) fn constant(default: &DefaultValue, ty: &Type, types: &TypeMap<'_>) -> Option<String> {
    if empty_collection(default, ty) {
        return Some("null".into());
    }
    match default {
        DefaultValue::Default => match ty {
            Type::Boolean => Some("false".into()),
            Type::String => Some("\"\"".into()),
            Type::Optional { .. } => Some("null".into()),
            Type::Float32 => Some("0f".into()),
            Type::Float64 => Some("0d".into()),
            Type::Int8
            | Type::UInt8
            | Type::Int16
            | Type::UInt16
            | Type::Int32
            | Type::UInt32
            | Type::Int64
            | Type::UInt64 => Some("0".into()),
            _ => None,
        },
        DefaultValue::Literal(lit) => literal(lit, ty, types),
    }
}

/// Whether `default` is an empty collection of type `ty`: its C# default is `null`, replaced by
/// an empty collection where the value is used (`value ?? new List<T>()`).
pub(crate) fn empty_collection(default: &DefaultValue, ty: &Type) -> bool {
    let collection = matches!(ty, Type::Sequence { .. } | Type::Map { .. } | Type::Set { .. });
    collection
        && matches!(default, DefaultValue::Default | DefaultValue::Literal(Literal::EmptySequence | Literal::EmptyMap))
}

/// `name`, or `(name ?? new T())` when its default is an empty collection.
pub(crate) fn or_empty(name: &str, default: Option<&DefaultValue>, ty: &Type, types: &TypeMap<'_>) -> String {
    match (default, types.cs_type(ty)) {
        (Some(d), Ok(cs)) if empty_collection(d, ty) => format!("({name} ?? new {cs}())"),
        _ => name.to_owned(),
    }
}

fn literal(lit: &Literal, ty: &Type, types: &TypeMap<'_>) -> Option<String> {
    match lit {
        Literal::Boolean(b) => Some(b.to_string()),
        Literal::String(s) => Some(string(s)),
        Literal::UInt(v, _, _) => Some(v.to_string()),
        Literal::Int(v, _, _) => Some(v.to_string()),
        Literal::Float(s, t) => Some(if matches!(t, Type::Float32) { format!("{s}f") } else { format!("{s}d") }),
        Literal::Enum(variant, Type::Enum { name, .. }) if types.is_cs_enum(name) => {
            Some(format!("{}.{}", names::pascal(name), names::pascal(variant)))
        }
        Literal::None => Some("null".into()),
        Literal::Some { inner } => match ty {
            Type::Optional { inner_type } => constant(inner, inner_type, types),
            _ => None,
        },
        _ => None,
    }
}

/// A C# string literal.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// For parameters with these defaults (in order), the C# default of each, `None` where the
/// parameter must stay required.
pub(crate) fn optional_suffix(defaults: Vec<Option<String>>) -> Vec<Option<String>> {
    let mut out = vec![None; defaults.len()];
    for (i, d) in defaults.into_iter().enumerate().rev() {
        match d {
            Some(c) => out[i] = Some(c),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use uniffi_bindgen::ComponentInterface;
    use uniffi_bindgen::interface::Radix;

    use super::*;

    #[test]
    fn constants_for_csharp_defaults() {
        let ci = ComponentInterface::new("t");
        let types = TypeMap::new(&ci);
        let lit = |l: Literal, t: &Type| constant(&DefaultValue::Literal(l), t, &types);
        assert_eq!(lit(Literal::String("a\"b\\\n".into()), &Type::String).unwrap(), "\"a\\\"b\\\\\\n\"");
        assert_eq!(lit(Literal::UInt(5, Radix::Decimal, Type::UInt32), &Type::UInt32).unwrap(), "5");
        assert_eq!(lit(Literal::Float("1.5".into(), Type::Float32), &Type::Float32).unwrap(), "1.5f");
        let opt = Type::Optional { inner_type: Box::new(Type::Int32) };
        assert_eq!(lit(Literal::None, &opt).unwrap(), "null");
        let some =
            Literal::Some { inner: Box::new(DefaultValue::Literal(Literal::Int(-3, Radix::Decimal, Type::Int32))) };
        assert_eq!(lit(some, &opt).unwrap(), "-3");
        let seq = Type::Sequence { inner_type: Box::new(Type::Int32) };
        assert_eq!(lit(Literal::EmptySequence, &seq).unwrap(), "null");
        assert_eq!(
            or_empty("xs", Some(&DefaultValue::Literal(Literal::EmptySequence)), &seq, &types),
            "(xs ?? new List<int>())"
        );
        assert_eq!(or_empty("n", None, &Type::Int32, &types), "n");
        assert_eq!(constant(&DefaultValue::Default, &Type::Boolean, &types).unwrap(), "false");
    }

    #[test]
    fn only_a_trailing_run_of_constants_becomes_optional() {
        let got = optional_suffix(vec![Some("1".into()), None, Some("2".into()), Some("3".into())]);
        assert_eq!(got, vec![None, None, Some("2".into()), Some("3".into())]);
    }
}
