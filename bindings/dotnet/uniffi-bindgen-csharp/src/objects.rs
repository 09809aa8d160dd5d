//! Objects become classes deriving from the runtime's `UniffiObject`: they own one Rust reference
//! (a handle), release it on `Dispose()` or in the finalizer, and pass a clone of it to every
//! method call (Rust consumes the clone). The primary constructor is a C# constructor; other
//! constructors are static factory methods.

use std::fmt::Write as _;

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen::interface::{AsType, Object};

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
    let _ = writeln!(out, "    public class {class} : UniffiObject\n    {{");
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
