//! The raw FFI layer: one P/Invoke declaration per scaffolding function, a delegate type per FFI
//! callback, a struct per FFI struct (vtables, future results), and the load-time checks that the
//! native library matches the bindings (contract version and API checksums).

use std::fmt::Write as _;

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen::interface::{FfiCallbackFunction, FfiDefinition, FfiFunction, FfiStruct, FfiType};

use crate::names;
use crate::types::{ffi_cs_type, ffi_delegate_name, ffi_struct_name};

/// The `UniffiLib` class and the FFI delegates and structs.
pub(crate) fn render(ci: &ComponentInterface, lib_name: &str, exit_call: Option<&str>) -> String {
    let mut out = String::new();
    let mut externs = String::new();
    for def in ci.ffi_definitions() {
        match def {
            FfiDefinition::CallbackFunction(cb) => out.push_str(&delegate(&cb)),
            FfiDefinition::Struct(st) => out.push_str(&structure(&st)),
            FfiDefinition::Function(f) => externs.push_str(&extern_fn(&f)),
        }
    }
    let _ = writeln!(out, "    internal static class UniffiLib");
    let _ = writeln!(out, "    {{");
    let _ = writeln!(out, "        internal const string LibName = \"{lib_name}\";\n");
    out.push_str(&integrity_checks(ci, exit_call));
    out.push_str(&externs);
    let _ = writeln!(
        out,
        "        internal static RustBuffer RustBufferFromBytes(ForeignBytes bytes, ref RustCallStatus status)\n        {{\n            return {}(bytes, ref status);\n        }}\n",
        ci.ffi_rustbuffer_from_bytes().name()
    );
    let _ = writeln!(
        out,
        "        internal static void RustBufferFree(RustBuffer buf, ref RustCallStatus status)\n        {{\n            {}(buf, ref status);\n        }}",
        ci.ffi_rustbuffer_free().name()
    );
    let _ = writeln!(out, "    }}\n");
    out
}

/// A static constructor that refuses to run against a library built from another interface, and
/// registers the process-exit call when there is one.
fn integrity_checks(ci: &ComponentInterface, exit_call: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "        static UniffiLib()\n        {{\n            UniffiNativeLibrary.Preload(LibName);");
    let _ = writeln!(
        out,
        "            uint contract = {}();\n            if (contract != {}) throw new UniffiException(\"uniffi contract version mismatch: bindings expect {}, library has \" + contract);",
        ci.ffi_uniffi_contract_version().name(),
        ci.uniffi_contract_version(),
        ci.uniffi_contract_version()
    );
    for (name, checksum) in ci.iter_checksums() {
        let _ = writeln!(
            out,
            "            if ({name}() != {checksum}) throw new UniffiException(\"API checksum mismatch for {name}: rebuild the bindings for this library\");"
        );
    }
    if let Some(call) = exit_call {
        let _ = writeln!(
            out,
            "            AppDomain.CurrentDomain.ProcessExit += (sender, e) => {{ try {{ {call}; }} catch (Exception) {{ }} }};"
        );
    }
    let _ = writeln!(out, "        }}\n");
    out
}

fn params(args: &[(String, FfiType)], call_status: bool) -> String {
    let mut ps: Vec<String> = args.iter().map(|(n, t)| format!("{} {}", ffi_cs_type(t), names::camel(n))).collect();
    if call_status {
        ps.push("ref RustCallStatus uniffiCallStatus".into());
    }
    ps.join(", ")
}

fn ret(ty: Option<&FfiType>) -> String {
    ty.map(ffi_cs_type).unwrap_or_else(|| "void".into())
}

fn extern_fn(f: &FfiFunction) -> String {
    let args: Vec<(String, FfiType)> = f.arguments().iter().map(|a| (a.name().to_owned(), a.type_())).collect();
    format!(
        "        [DllImport(LibName, CallingConvention = CallingConvention.Cdecl)]\n        internal static extern {} {}({});\n\n",
        ret(f.return_type()),
        f.name(),
        params(&args, f.has_rust_call_status_arg())
    )
}

fn delegate(cb: &FfiCallbackFunction) -> String {
    let args: Vec<(String, FfiType)> = cb.arguments().iter().map(|a| (a.name().to_owned(), a.type_())).collect();
    format!(
        "    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]\n    internal delegate {} {}({});\n\n",
        ret(cb.return_type()),
        ffi_delegate_name(cb.name()),
        params(&args, cb.has_rust_call_status_arg())
    )
}

fn structure(st: &FfiStruct) -> String {
    let mut out = format!(
        "    [StructLayout(LayoutKind.Sequential)]\n    internal struct {}\n    {{\n",
        ffi_struct_name(st.name())
    );
    for field in st.fields() {
        // Function pointers are stored as IntPtr (Marshal.GetFunctionPointerForDelegate) so that
        // the struct stays blittable and can live in unmanaged memory that Rust keeps.
        let ty = match field.type_() {
            FfiType::Callback(_) => "IntPtr".to_owned(),
            t => ffi_cs_type(&t),
        };
        let _ = writeln!(out, "        public {ty} {};", names::pascal(field.name()));
    }
    out.push_str("    }\n\n");
    out
}
