//! Objects become classes deriving from the runtime's `UniffiObject`: they own one Rust reference
//! (a handle), release it on `Dispose()` or in the finalizer, and pass a clone of it to every
//! method call (Rust consumes the clone). The primary constructor is a C# constructor; other
//! constructors are static factory methods. Rust traits exported with the object become the .NET
//! equivalents: `Display` (or else `Debug`) is `ToString()`, `Eq` is `Equals`, `Hash` is
//! `GetHashCode`, `Ord` is `IComparable<T>`.

use std::fmt::Write as _;

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen::interface::{AsType, Method, Object};

use crate::callables::Callable;
use crate::doc_comments::summary;
use crate::error::{GenerateError, Result};
use crate::names;
use crate::types::TypeMap;

/// The class and converter of an object.
pub(crate) fn render(obj: &Object, ci: &ComponentInterface, types: &TypeMap<'_>) -> Result<String> {
    if obj.has_callback_interface() {
        return Err(GenerateError::unsupported("traits implemented in C# (use a callback interface)", obj.name()));
    }
    let class = names::pascal(obj.name());
    let conv = types.converter_class(&obj.as_type())?;
    let mut out = summary(obj.docstring(), 4);
    let comparable =
        if obj.uniffi_trait_methods().ord_cmp.is_some() { format!(", IComparable<{class}>") } else { String::new() };
    let _ = writeln!(out, "    public class {class} : UniffiObject{comparable}\n    {{");
    let _ = writeln!(out, "        internal {class}(UniffiHandleTag tag, ulong handle) : base(handle) {{ }}\n");
    for cons in obj.constructors() {
        let callable = Callable {
            item: format!("{}.{}", obj.name(), cons.name()),
            args: cons.arguments(),
            return_type: Some(obj.as_type()),
            throws: cons.throws_type(),
            is_async: cons.is_async(),
            ffi: cons.ffi_func(),
            receiver: false,
        };
        out.push_str(&summary(cons.docstring(), 8));
        if cons.is_primary_constructor() {
            let _ = writeln!(
                out,
                "        public {class}({}) : base(UniffiConstruct({})) {{ }}\n",
                callable.params(types)?,
                callable.arg_names()
            );
            let _ =
                writeln!(out, "        private static ulong UniffiConstruct({})\n        {{", callable.params(types)?);
            out.push_str(&callable.body(ci, types, 12, true)?);
            let _ = writeln!(out, "        }}\n");
        } else {
            let _ = writeln!(
                out,
                "        public static {} {}({})\n        {{",
                callable.return_cs(types)?,
                names::pascal(cons.name()),
                callable.params(types)?
            );
            out.push_str(&callable.body(ci, types, 12, false)?);
            let _ = writeln!(out, "        }}\n");
        }
    }
    for meth in obj.methods() {
        let callable = Callable {
            item: format!("{}.{}", obj.name(), meth.name()),
            args: meth.arguments(),
            return_type: meth.return_type().cloned(),
            throws: meth.throws_type(),
            is_async: meth.is_async(),
            ffi: meth.ffi_func(),
            receiver: true,
        };
        out.push_str(&summary(meth.docstring(), 8));
        let _ = writeln!(
            out,
            "        public {} {}({})\n        {{",
            callable.return_cs(types)?,
            names::pascal(meth.name()),
            callable.params(types)?
        );
        out.push_str(&callable.body(ci, types, 12, false)?);
        let _ = writeln!(out, "        }}\n");
    }
    out.push_str(&trait_methods(obj, &class, ci, types)?);
    let _ = writeln!(
        out,
        "        internal override ulong CloneRustHandle(ulong handle)\n        {{\n            return UniffiCalls.Call(null, (ref RustCallStatus s) => UniffiLib.{}(handle, ref s));\n        }}\n",
        obj.ffi_object_clone().name()
    );
    let _ = writeln!(
        out,
        "        internal override void FreeRustHandle(ulong handle)\n        {{\n            UniffiCalls.CallVoid(null, (ref RustCallStatus s) => UniffiLib.{}(handle, ref s));\n        }}\n    }}\n",
        obj.ffi_object_free().name()
    );
    let _ = writeln!(
        out,
        "    internal sealed class {conv} : FfiConverter<{class}, ulong>\n    {{\n        public static readonly {conv} Instance = new {conv}();\n"
    );
    let _ = writeln!(
        out,
        "        public override {class} Lift(ulong handle) {{ return new {class}(UniffiHandleTag.Value, handle); }}\n"
    );
    let _ = writeln!(
        out,
        "        public override ulong Lower({class} v)\n        {{\n            if (v == null) throw new ArgumentNullException(\"{class} value\");\n            return v.CloneHandle();\n        }}\n"
    );
    let _ = writeln!(out, "        public override {class} Read(UniffiReader r) {{ return Lift(r.ReadUInt64()); }}\n");
    let _ = writeln!(
        out,
        "        public override void Write({class} v, UniffiWriter w) {{ w.WriteUInt64(Lower(v)); }}\n    }}\n"
    );
    Ok(out)
}

fn trait_callable<'a>(obj: &Object, m: &'a Method) -> Callable<'a> {
    Callable {
        item: format!("{}.{}", obj.name(), m.name()),
        args: m.arguments(),
        return_type: m.return_type().cloned(),
        throws: m.throws_type(),
        is_async: false,
        ffi: m.ffi_func(),
        receiver: true,
    }
}

/// The argument name of a trait method comparing with another instance (`Eq`, `Ord`).
fn other_arg(m: &Method) -> Result<String> {
    match m.arguments().as_slice() {
        [a] => Ok(names::camel(a.name())),
        _ => Err(GenerateError::unsupported("trait methods without exactly one argument", m.name())),
    }
}

fn trait_methods(obj: &Object, class: &str, ci: &ComponentInterface, types: &TypeMap<'_>) -> Result<String> {
    let traits = obj.uniffi_trait_methods();
    let mut out = String::new();
    if let Some(m) = traits.display_fmt.as_ref().or(traits.debug_fmt.as_ref()) {
        let _ = writeln!(
            out,
            "        /// <summary>The Rust object's formatted text.</summary>\n        public override string ToString()\n        {{"
        );
        out.push_str(&trait_callable(obj, m).body(ci, types, 12, false)?);
        let _ = writeln!(out, "        }}\n");
    }
    if let Some(m) = &traits.eq_eq {
        let other = other_arg(m)?;
        let _ = writeln!(
            out,
            "        /// <summary>Equality as the Rust object defines it.</summary>\n        public override bool Equals(object obj)\n        {{\n            {class} {other} = obj as {class};\n            if ({other} == null) return false;"
        );
        out.push_str(&trait_callable(obj, m).body(ci, types, 12, false)?);
        let _ = writeln!(out, "        }}\n");
    }
    match &traits.hash_hash {
        Some(m) => {
            let _ = writeln!(out, "        private ulong UniffiHash()\n        {{");
            out.push_str(&trait_callable(obj, m).body(ci, types, 12, false)?);
            let _ = writeln!(
                out,
                "        }}\n\n        /// <summary>The Rust object's hash.</summary>\n        public override int GetHashCode()\n        {{\n            ulong h = UniffiHash();\n            return unchecked((int)(h ^ (h >> 32)));\n        }}\n"
            );
        }
        None if traits.eq_eq.is_some() => {
            // Equal objects must hash alike; without Rust's Hash, a constant is the only safe choice.
            let _ = writeln!(
                out,
                "        /// <summary>Constant: the Rust object defines equality but no hash.</summary>\n        public override int GetHashCode()\n        {{\n            return 0;\n        }}\n"
            );
        }
        None => {}
    }
    if let Some(m) = &traits.ord_cmp {
        let other = other_arg(m)?;
        let _ = writeln!(
            out,
            "        /// <summary>Ordering as the Rust object defines it.</summary>\n        public int CompareTo({class} {other})\n        {{\n            if ({other} == null) return 1;\n            return UniffiCompare({other});\n        }}\n\n        private sbyte UniffiCompare({class} {other})\n        {{"
        );
        out.push_str(&trait_callable(obj, m).body(ci, types, 12, false)?);
        let _ = writeln!(out, "        }}\n");
    }
    Ok(out)
}
