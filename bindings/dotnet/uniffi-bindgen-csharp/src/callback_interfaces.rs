//! Callback interfaces become C# interfaces (`IName`). Passing an implementation to Rust stores it
//! in a handle map and gives Rust the handle; Rust calls back through a vtable of function pointers
//! registered once per interface (the delegates live in static fields, so the GC never moves or
//! collects them, and the vtable lives in unmanaged memory for the life of the process). Exceptions
//! of the declared error type become Rust errors; any other exception becomes an unexpected error
//! carrying its message.

use std::fmt::Write as _;

use uniffi_bindgen::interface::{AsType, CallbackInterface, FfiType};

use crate::doc_comments::summary;
use crate::error::{GenerateError, Result};
use crate::names;
use crate::types::{TypeMap, ffi_delegate_name, ffi_struct_name};

/// The interface, its converter and the vtable glue.
pub(crate) fn render(cbi: &CallbackInterface, types: &TypeMap<'_>) -> Result<String> {
    let iface = names::interface(cbi.name());
    let conv = types.converter_class(&cbi.as_type())?;
    let glue = format!("UniffiCallbacks{}", names::pascal(cbi.name()));
    let mut out = summary(cbi.docstring(), 4);
    let _ = writeln!(out, "    public interface {iface}\n    {{");
    for m in cbi.methods() {
        if m.is_async() {
            return Err(GenerateError::unsupported(
                "async callback interface methods",
                format!("{}.{}", cbi.name(), m.name()),
            ));
        }
        let mut params = Vec::new();
        for a in m.arguments() {
            params.push(format!("{} {}", types.cs_type(&a.as_type())?, names::camel(a.name())));
        }
        let ret = match m.return_type() {
            Some(t) => types.cs_type(t)?,
            None => "void".into(),
        };
        out.push_str(&summary(m.docstring(), 8));
        let _ = writeln!(out, "        {ret} {}({});", names::pascal(m.name()), params.join(", "));
    }
    let _ = writeln!(out, "    }}\n");

    let _ = writeln!(
        out,
        "    internal sealed class {conv} : FfiConverter<{iface}, ulong>\n    {{\n        public static readonly {conv} Instance = new {conv}();\n        internal static readonly UniffiHandleMap<{iface}> Handles = new UniffiHandleMap<{iface}>();\n"
    );
    let _ = writeln!(out, "        public override {iface} Lift(ulong handle) {{ return Handles.Get(handle); }}\n");
    let _ = writeln!(
        out,
        "        public override ulong Lower({iface} v)\n        {{\n            if (v == null) throw new ArgumentNullException(\"{iface} value\");\n            {glue}.Register();\n            return Handles.Insert(v);\n        }}\n"
    );
    let _ = writeln!(out, "        public override {iface} Read(UniffiReader r) {{ return Lift(r.ReadUInt64()); }}\n");
    let _ = writeln!(
        out,
        "        public override void Write({iface} v, UniffiWriter w) {{ w.WriteUInt64(Lower(v)); }}\n    }}\n"
    );

    let vtable = ffi_struct_name(&match cbi.vtable() {
        FfiType::Struct(name) => name,
        other => return Err(GenerateError::unsupported(format!("vtable type {other:?}"), cbi.name())),
    });
    let _ = writeln!(out, "    internal static class {glue}\n    {{");
    let _ = writeln!(
        out,
        "        private static readonly object RegisterLock = new object();\n        private static IntPtr vtable = IntPtr.Zero;\n"
    );
    let _ = writeln!(
        out,
        "        private static readonly {} FreeDelegate = handle => {conv}.Handles.Remove(handle);",
        ffi_delegate_name("CallbackInterfaceFree")
    );
    let _ = writeln!(
        out,
        "        private static readonly {} CloneDelegate = handle => {conv}.Handles.Insert({conv}.Handles.Get(handle));",
        ffi_delegate_name("CallbackInterfaceClone")
    );
    let mut fields = vec![
        "UniffiFree = Marshal.GetFunctionPointerForDelegate(FreeDelegate)".to_owned(),
        "UniffiClone = Marshal.GetFunctionPointerForDelegate(CloneDelegate)".to_owned(),
    ];
    let mut methods = String::new();
    for (i, (ffi_cb, m)) in cbi.vtable_methods().iter().enumerate() {
        let _ = writeln!(
            out,
            "        private static readonly {} Method{i}Delegate = Method{i};",
            ffi_delegate_name(ffi_cb.name())
        );
        fields.push(format!("{} = Marshal.GetFunctionPointerForDelegate(Method{i}Delegate)", names::pascal(m.name())));
        let mut params = vec!["ulong uniffiHandle".to_owned()];
        let mut lifted = Vec::new();
        for a in m.arguments() {
            let ty = a.as_type();
            params.push(format!("{} {}", types.ffi_cs_type_of(&ty), names::camel(a.name())));
            lifted.push(format!("{}.Lift({})", types.converter(&ty)?, names::camel(a.name())));
        }
        params.push("IntPtr uniffiOutReturn".into());
        params.push("ref RustCallStatus uniffiCallStatus".into());
        let call = format!("{conv}.Handles.Get(uniffiHandle).{}({})", names::pascal(m.name()), lifted.join(", "));
        let stmt = match m.return_type() {
            Some(t) => format!("UniffiOut.Write(uniffiOutReturn, {}.Lower({call}));", types.converter(t)?),
            None => format!("{call};"),
        };
        let lower_error = match m.throws_type() {
            None => "null".to_owned(),
            Some(t) => {
                let ex = types.cs_type(t)?;
                format!(
                    "e => {{ {ex} declared = e as {ex}; return declared == null ? (RustBuffer?)null : {}.Lower(declared); }}",
                    types.converter(t)?
                )
            }
        };
        let _ = writeln!(
            methods,
            "        private static void Method{i}({})\n        {{\n            UniffiCalls.CallbackBody(ref uniffiCallStatus, () => {{ {stmt} }}, {lower_error});\n        }}\n",
            params.join(", ")
        );
    }
    out.push('\n');
    out.push_str(&methods);
    let _ = writeln!(
        out,
        "        internal static void Register()\n        {{\n            lock (RegisterLock)\n            {{\n                if (vtable != IntPtr.Zero) return;\n                {vtable} table = new {vtable}\n                {{\n                    {}\n                }};\n                IntPtr p = Marshal.AllocHGlobal(Marshal.SizeOf(typeof({vtable})));\n                Marshal.StructureToPtr(table, p, false);\n                UniffiLib.{}(p);\n                vtable = p;\n            }}\n        }}\n    }}\n",
        fields.join(",\n                    "),
        cbi.ffi_init_callback().name()
    );
    Ok(out)
}
