//! Records become sealed classes: a constructor taking every field, settable properties, value
//! equality (deep over lists, maps and byte arrays) and a converter that (de)serializes fields in
//! declaration order.

use std::fmt::Write as _;

use uniffi_bindgen::interface::{AsType, Field, Record};

use crate::doc_comments::summary;
use crate::error::{GenerateError, Result};
use crate::types::TypeMap;
use crate::{defaults, names};

/// Properties, constructor, `Equals`/`GetHashCode`/`ToString` of a class holding `fields`.
pub(crate) fn members(
    class: &str,
    fields: &[Field],
    types: &TypeMap<'_>,
    pad: &str,
    property_name: &dyn Fn(&str) -> String,
) -> Result<String> {
    let mut out = String::new();
    let mut params = Vec::new();
    let mut assigns = String::new();
    let defaults = defaults::optional_suffix(
        fields.iter().map(|f| f.default_value().and_then(|d| defaults::constant(d, &f.as_type(), types))).collect(),
    );
    for (f, default) in fields.iter().zip(defaults) {
        let ty = types.cs_type(&f.as_type())?;
        let prop = property_name(f.name());
        let param = format!("{ty} {}", names::camel(f.name()));
        params.push(match default {
            Some(d) => format!("{param} = {d}"),
            None => param,
        });
        let value = defaults::or_empty(&names::camel(f.name()), f.default_value(), &f.as_type(), types);
        let _ = writeln!(assigns, "{pad}    this.{prop} = {value};");
    }
    let _ = writeln!(out, "{pad}/// <summary>Creates the value from all its fields.</summary>");
    let _ = writeln!(out, "{pad}public {class}({})\n{pad}{{\n{assigns}{pad}}}\n", params.join(", "));
    for f in fields {
        out.push_str(&summary(f.docstring(), pad.len()));
        let _ =
            writeln!(out, "{pad}public {} {} {{ get; set; }}\n", types.cs_type(&f.as_type())?, property_name(f.name()));
    }
    let eq: Vec<String> = fields
        .iter()
        .map(|f| format!("UniffiEquality.Equals(this.{p}, other.{p})", p = property_name(f.name())))
        .collect();
    let eq = if eq.is_empty() { "true".to_owned() } else { eq.join(" && ") };
    let _ = writeln!(out, "{pad}/// <summary>Value equality over all fields.</summary>");
    let _ = writeln!(
        out,
        "{pad}public override bool Equals(object obj)\n{pad}{{\n{pad}    {class} other = obj as {class};\n{pad}    return other != null && {eq};\n{pad}}}\n"
    );
    let _ = writeln!(out, "{pad}/// <summary>A hash consistent with <see cref=\"Equals(object)\"/>.</summary>");
    let _ = writeln!(out, "{pad}public override int GetHashCode()\n{pad}{{\n{pad}    int h = 17;");
    for f in fields {
        let _ =
            writeln!(out, "{pad}    h = unchecked(h * 31 + UniffiEquality.Hash(this.{}));", property_name(f.name()));
    }
    let _ = writeln!(out, "{pad}    return h;\n{pad}}}\n");
    let shown: Vec<String> =
        fields.iter().map(|f| format!("\"{p}=\" + UniffiFormat.Show(this.{p})", p = property_name(f.name()))).collect();
    let shown = if shown.is_empty() { "\"\"".to_owned() } else { shown.join(" + \", \" + ") };
    let _ = writeln!(out, "{pad}/// <summary>The type and its fields, for logs and test failures.</summary>");
    let _ = writeln!(
        out,
        "{pad}public override string ToString()\n{pad}{{\n{pad}    return \"{class}(\" + {shown} + \")\";\n{pad}}}"
    );
    Ok(out)
}

/// Statements writing each field of `value` (a C# expression) to the writer `w`.
pub(crate) fn write_fields(
    value: &str,
    fields: &[Field],
    types: &TypeMap<'_>,
    pad: &str,
    property_name: &dyn Fn(&str) -> String,
) -> Result<String> {
    let mut out = String::new();
    for f in fields {
        let _ = writeln!(out, "{pad}{}.Write({value}.{}, w);", types.converter(&f.as_type())?, property_name(f.name()));
    }
    Ok(out)
}

/// Arguments reading each field from the reader `r`, in order.
pub(crate) fn read_fields(fields: &[Field], types: &TypeMap<'_>) -> Result<String> {
    let mut args = Vec::new();
    for f in fields {
        args.push(format!("{}.Read(r)", types.converter(&f.as_type())?));
    }
    Ok(args.join(", "))
}

/// The class and converter of a record.
pub(crate) fn render(rec: &Record, types: &TypeMap<'_>) -> Result<String> {
    if !rec.methods().is_empty() || !rec.constructors().is_empty() {
        return Err(GenerateError::unsupported("methods and constructors on records", rec.name()));
    }
    let class = names::pascal(rec.name());
    let prop = |n: &str| names::pascal(n);
    let mut out = summary(rec.docstring(), 4);
    let _ = writeln!(out, "    public sealed class {class}\n    {{");
    out.push_str(&members(&class, rec.fields(), types, "        ", &prop)?);
    let _ = writeln!(out, "    }}\n");
    let conv = types.converter_class(&rec.as_type())?;
    let _ = writeln!(
        out,
        "    internal sealed class {conv} : FfiConverterRustBuffer<{class}>\n    {{\n        public static readonly {conv} Instance = new {conv}();\n"
    );
    let _ = writeln!(
        out,
        "        public override {class} Read(UniffiReader r)\n        {{\n            return new {class}({});\n        }}\n",
        read_fields(rec.fields(), types)?
    );
    let _ = writeln!(
        out,
        "        public override void Write({class} v, UniffiWriter w)\n        {{\n            if (v == null) throw new ArgumentNullException(\"{class} value\");\n{}        }}\n    }}\n",
        write_fields("v", rec.fields(), types, "            ", &prop)?
    );
    Ok(out)
}
