//! C# spelling of uniffi names: PascalCase for types, members and methods, camelCase for
//! parameters, `@` before reserved words.

use heck::{ToLowerCamelCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "abstract",
    "as",
    "base",
    "bool",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "checked",
    "class",
    "const",
    "continue",
    "decimal",
    "default",
    "delegate",
    "do",
    "double",
    "else",
    "enum",
    "event",
    "explicit",
    "extern",
    "false",
    "finally",
    "fixed",
    "float",
    "for",
    "foreach",
    "goto",
    "if",
    "implicit",
    "in",
    "int",
    "interface",
    "internal",
    "is",
    "lock",
    "long",
    "namespace",
    "new",
    "null",
    "object",
    "operator",
    "out",
    "override",
    "params",
    "private",
    "protected",
    "public",
    "readonly",
    "ref",
    "return",
    "sbyte",
    "sealed",
    "short",
    "sizeof",
    "stackalloc",
    "static",
    "string",
    "struct",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "uint",
    "ulong",
    "unchecked",
    "unsafe",
    "ushort",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
];

/// A type, method, property or enum member name.
pub(crate) fn pascal(name: &str) -> String {
    let s = name.to_upper_camel_case();
    if s.starts_with(|c: char| c.is_ascii_digit()) { format!("V{s}") } else { s }
}

/// A parameter or local name, escaped when it is a keyword.
pub(crate) fn camel(name: &str) -> String {
    let s = name.to_lower_camel_case();
    let s = if s.starts_with(|c: char| c.is_ascii_digit()) { format!("v{s}") } else { s };
    if KEYWORDS.contains(&s.as_str()) { format!("@{s}") } else { s }
}

/// The exception class of a uniffi error: `FooError` becomes `FooException`, as .NET names them.
pub(crate) fn exception(name: &str) -> String {
    let base = pascal(name);
    match base.strip_suffix("Error") {
        Some(stem) if !stem.is_empty() => format!("{stem}Exception"),
        _ if base.ends_with("Exception") => base,
        _ => format!("{base}Exception"),
    }
}

/// A callback interface: `IName`, as .NET names interfaces.
pub(crate) fn interface(name: &str) -> String {
    format!("I{}", pascal(name))
}

/// A property of a nested variant class; a property may not share its class's name in C#.
pub(crate) fn variant_property(field: &str, variant_class: &str) -> String {
    let p = pascal(field);
    if p == variant_class { format!("{p}Value") } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_members_and_parameters() {
        assert_eq!(pascal("echo_i32"), "EchoI32");
        assert_eq!(camel("backoff_ms"), "backoffMs");
        assert_eq!(camel("string"), "@string");
        assert_eq!(camel("0"), "v0");
    }

    #[test]
    fn names_exceptions_and_interfaces_as_dotnet_does() {
        assert_eq!(exception("FieldError"), "FieldException");
        assert_eq!(exception("Error"), "ErrorException");
        assert_eq!(exception("Boom"), "BoomException");
        assert_eq!(exception("SyncException"), "SyncException");
        assert_eq!(interface("progress_listener"), "IProgressListener");
        assert_eq!(variant_property("updated", "Updated"), "UpdatedValue");
    }
}
