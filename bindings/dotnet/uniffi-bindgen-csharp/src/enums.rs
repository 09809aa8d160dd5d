//! Enums and errors.
//!
//! - An enum whose variants carry no data becomes a C# `enum`.
//! - An enum with data becomes an abstract class with a sealed nested class per variant
//!   (`Change.Created`), each with value equality.
//! - An error becomes an exception hierarchy: an abstract `NameException` (from `NameError`) with a
//!   nested exception class per variant. Flat errors carry Rust's message; errors with fields
//!   expose them as properties. On the wire every variant is its 1-based index (`i32`) followed by
//!   its fields (flat errors: by the message, which Rust does not read back).

use std::fmt::Write as _;

use uniffi_bindgen::interface::{AsType, Enum, Type};

use crate::doc_comments::summary;
use crate::error::{GenerateError, Result};
use crate::names;
use crate::records;
use crate::types::TypeMap;

/// The C# type(s) and converter of an enum or error.
pub(crate) fn render(e: &Enum, types: &TypeMap<'_>) -> Result<String> {
    if !e.methods().is_empty() || !e.constructors().is_empty() {
        return Err(GenerateError::unsupported("methods and constructors on enums", e.name()));
    }
    if types.is_error(e.name()) {
        render_error(e, types)
    } else if types.is_cs_enum(e.name()) {
        render_flat(e, types)
    } else {
        render_data(e, types)
    }
}

fn converter_head(conv: &str, class: &str, extra: &str) -> String {
    format!(
        "    internal sealed class {conv} : FfiConverterRustBuffer<{class}>{extra}\n    {{\n        public static readonly {conv} Instance = new {conv}();\n\n"
    )
}

fn render_flat(e: &Enum, types: &TypeMap<'_>) -> Result<String> {
    let class = names::pascal(e.name());
    let mut out = summary(e.docstring(), 4);
    let _ = writeln!(out, "    public enum {class}\n    {{");
    for v in e.variants() {
        out.push_str(&summary(v.docstring(), 8));
        let _ = writeln!(out, "        {},", names::pascal(v.name()));
    }
    let _ = writeln!(out, "    }}\n");
    let conv = types.converter_class(&e.as_type())?;
    out.push_str(&converter_head(&conv, &class, ""));
    let _ = writeln!(
        out,
        "        public override {class} Read(UniffiReader r)\n        {{\n            int index = r.ReadInt32();\n            switch (index)\n            {{"
    );
    for (i, v) in e.variants().iter().enumerate() {
        let _ = writeln!(out, "                case {}: return {class}.{};", i + 1, names::pascal(v.name()));
    }
    let _ = writeln!(
        out,
        "                default: throw new UniffiException(\"invalid {class} index \" + index);\n            }}\n        }}\n"
    );
    let _ = writeln!(
        out,
        "        public override void Write({class} v, UniffiWriter w)\n        {{\n            switch (v)\n            {{"
    );
    for (i, v) in e.variants().iter().enumerate() {
        let _ =
            writeln!(out, "                case {class}.{}: w.WriteInt32({}); break;", names::pascal(v.name()), i + 1);
    }
    let _ = writeln!(
        out,
        "                default: throw new ArgumentOutOfRangeException(\"v\", \"not a {class} value: \" + v);\n            }}\n        }}\n    }}\n"
    );
    Ok(out)
}

fn render_data(e: &Enum, types: &TypeMap<'_>) -> Result<String> {
    let class = names::pascal(e.name());
    let mut out = summary(e.docstring(), 4);
    let _ = writeln!(out, "    public abstract class {class}\n    {{\n        private {class}() {{ }}\n");
    for v in e.variants() {
        let vclass = names::pascal(v.name());
        let prop = |n: &str| names::variant_property(n, &vclass);
        out.push_str(&summary(v.docstring(), 8));
        let _ = writeln!(out, "        public sealed class {vclass} : {class}\n        {{");
        out.push_str(&records::members(&vclass, v.fields(), types, "            ", &prop)?);
        let _ = writeln!(out, "        }}\n");
    }
    let _ = writeln!(out, "    }}\n");
    let conv = types.converter_class(&e.as_type())?;
    out.push_str(&converter_head(&conv, &class, ""));
    out.push_str(&read_switch(e, &class, types, false)?);
    out.push_str(&write_chain(e, &class, types, false)?);
    let _ = writeln!(out, "    }}\n");
    Ok(out)
}

fn render_error(e: &Enum, types: &TypeMap<'_>) -> Result<String> {
    let class = names::exception(e.name());
    let flat = e.is_flat();
    let mut out = summary(e.docstring(), 4);
    let _ = writeln!(
        out,
        "    public abstract class {class} : Exception\n    {{\n        /// <summary>Creates the exception with its message.</summary>\n        protected {class}(string message) : base(message) {{ }}\n"
    );
    for v in e.variants() {
        let vclass = names::pascal(v.name());
        out.push_str(&summary(v.docstring(), 8));
        let _ = writeln!(out, "        public sealed class {vclass} : {class}\n        {{");
        if flat {
            let _ = writeln!(
                out,
                "            /// <summary>Creates the exception with the message that Rust formatted.</summary>\n            public {vclass}(string message) : base(message) {{ }}"
            );
        } else {
            let mut params = Vec::new();
            let mut shown = Vec::new();
            let mut assigns = String::new();
            // A `message: String` field is the exception's message (Exception.Message), not a
            // property of its own (which would hide Exception.Message).
            let message_field =
                v.fields().iter().find(|f| f.name() == "message" && matches!(f.as_type(), Type::String));
            for f in v.fields() {
                let p = names::variant_property(f.name(), &vclass);
                let a = names::camel(f.name());
                params.push(format!("{} {a}", types.cs_type(&f.as_type())?));
                shown.push(format!("\"{}=\" + {a}", f.name()));
                if message_field.is_none_or(|m| m.name() != f.name()) {
                    let _ = writeln!(assigns, "                this.{p} = {a};");
                }
            }
            let message = if let Some(f) = message_field {
                names::camel(f.name())
            } else if shown.is_empty() {
                format!("\"{vclass}\"")
            } else {
                format!("\"{vclass}(\" + {} + \")\"", shown.join(" + \", \" + "))
            };
            let _ = writeln!(
                out,
                "            /// <summary>Creates the exception from its fields.</summary>\n            public {vclass}({}) : base({message})\n            {{\n{assigns}            }}",
                params.join(", ")
            );
            for f in v.fields() {
                if message_field.is_some_and(|m| m.name() == f.name()) {
                    continue;
                }
                out.push_str(&summary(f.docstring(), 12));
                let _ = writeln!(
                    out,
                    "            public {} {} {{ get; }}",
                    types.cs_type(&f.as_type())?,
                    names::variant_property(f.name(), &vclass)
                );
            }
        }
        let _ = writeln!(out, "        }}\n");
    }
    let _ = writeln!(out, "    }}\n");
    let conv = types.converter_class(&e.as_type())?;
    out.push_str(&converter_head(&conv, &class, ", IUniffiErrorLifter"));
    let _ = writeln!(
        out,
        "        public Exception LiftError(RustBuffer buf)\n        {{\n            return Lift(buf);\n        }}\n"
    );
    out.push_str(&read_switch(e, &class, types, flat)?);
    out.push_str(&write_chain(e, &class, types, flat)?);
    let _ = writeln!(out, "    }}\n");
    Ok(out)
}

fn read_switch(e: &Enum, class: &str, types: &TypeMap<'_>, flat_error: bool) -> Result<String> {
    let mut out = format!(
        "        public override {class} Read(UniffiReader r)\n        {{\n            int index = r.ReadInt32();\n            switch (index)\n            {{\n"
    );
    for (i, v) in e.variants().iter().enumerate() {
        let args = if flat_error {
            "FfiConverterString.Instance.Read(r)".to_owned()
        } else {
            records::read_fields(v.fields(), types)?
        };
        let _ =
            writeln!(out, "                case {}: return new {class}.{}({args});", i + 1, names::pascal(v.name()));
    }
    let _ = writeln!(
        out,
        "                default: throw new UniffiException(\"invalid {class} index \" + index);\n            }}\n        }}\n"
    );
    Ok(out)
}

fn write_chain(e: &Enum, class: &str, types: &TypeMap<'_>, flat_error: bool) -> Result<String> {
    let mut out = format!("        public override void Write({class} v, UniffiWriter w)\n        {{\n");
    for (i, v) in e.variants().iter().enumerate() {
        let vclass = names::pascal(v.name());
        let prop = |n: &str| names::variant_property(n, &vclass);
        let binds_fields = !flat_error && !v.fields().is_empty();
        let binding = if binds_fields { format!(" variant{i}") } else { String::new() };
        let _ = writeln!(
            out,
            "            if (v is {class}.{vclass}{binding})\n            {{\n                w.WriteInt32({});",
            i + 1
        );
        if binds_fields {
            out.push_str(&records::write_fields(&format!("variant{i}"), v.fields(), types, "                ", &prop)?);
        }
        let _ = writeln!(out, "                return;\n            }}");
    }
    let _ = writeln!(out, "            throw new ArgumentException(\"not a {class} variant: \" + v);\n        }}");
    Ok(out)
}
