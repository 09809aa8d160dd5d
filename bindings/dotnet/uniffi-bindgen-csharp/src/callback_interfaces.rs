//! Callback interfaces become C# interfaces (`IName`). Passing an implementation to Rust stores it
//! in a handle map and gives Rust the handle; Rust calls back through a vtable of function pointers
//! registered once per interface (the delegates live in static fields, so the GC never moves or
//! collects them, and the vtable lives in unmanaged memory for the life of the process). Exceptions
//! of the declared error type become Rust errors; any other exception becomes an unexpected error
//! carrying its message.
//!
//! Async methods return `Task`/`Task<T>` and take a `CancellationToken`: Rust hands over a
//! completion callback, the task's outcome is sent through it when the task ends, and the token is
//! cancelled when Rust drops the future awaiting it (uniffi's foreign-future ABI).

use std::fmt::Write as _;

use uniffi_bindgen::interface::{AsType, CallbackInterface, FfiCallbackFunction, FfiType, Method};

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
        let mut params = Vec::new();
        for a in m.arguments() {
            params.push(format!("{} {}", types.cs_type(&a.as_type())?, names::camel(a.name())));
        }
        let ret = match (m.is_async(), m.return_type()) {
            (false, Some(t)) => types.cs_type(t)?,
            (false, None) => "void".into(),
            (true, Some(t)) => format!("Task<{}>", types.cs_type(t)?),
            (true, None) => "Task".into(),
        };
        if m.is_async() {
            // Cancelled when Rust drops the future that awaits this task.
            params.push("CancellationToken cancellationToken".into());
        }
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
        "        // Called by Rust: nothing may be thrown back across the FFI.\n        private static readonly {} FreeDelegate = handle => {{ try {{ {conv}.Handles.Remove(handle); }} catch (Exception) {{ }} }};",
        ffi_delegate_name("CallbackInterfaceFree")
    );
    let _ = writeln!(
        out,
        "        private static readonly {} CloneDelegate = handle => {{ try {{ return {conv}.Handles.Insert({conv}.Handles.Get(handle)); }} catch (Exception) {{ return 0; }} }};",
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
        if m.is_async() {
            methods.push_str(&async_method(i, ffi_cb, m, &conv, params, lifted, &lower_error, types)?);
            continue;
        }
        params.push("IntPtr uniffiOutReturn".into());
        params.push("ref RustCallStatus uniffiCallStatus".into());
        let call = format!("{conv}.Handles.Get(uniffiHandle).{}({})", names::pascal(m.name()), lifted.join(", "));
        let stmt = match m.return_type() {
            Some(t) => format!("UniffiOut.Write(uniffiOutReturn, {}.Lower({call}));", types.converter(t)?),
            None => format!("{call};"),
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

/// The vtable entry of an async method: start the C# task, tell Rust how to signal that it dropped
/// the future (which cancels the task's token), and complete Rust's callback when the task ends.
#[allow(clippy::too_many_arguments)]
fn async_method(
    i: usize,
    ffi_cb: &FfiCallbackFunction,
    m: &Method,
    conv: &str,
    mut params: Vec<String>,
    lifted: Vec<String>,
    lower_error: &str,
    types: &TypeMap<'_>,
) -> Result<String> {
    let complete = ffi_cb
        .arguments()
        .iter()
        .find_map(|a| match a.type_() {
            FfiType::Callback(name) if a.name() == "uniffi_future_callback" => Some(name),
            _ => None,
        })
        .ok_or_else(|| GenerateError::unsupported("an async callback without a completion callback", m.name()))?;
    let result_struct = ffi_struct_name(&complete.replacen("ForeignFutureComplete", "ForeignFutureResult", 1));
    params.push(format!("{} uniffiFutureCallback", ffi_delegate_name(&complete)));
    params.push("ulong uniffiCallbackData".into());
    params.push("IntPtr uniffiOutDroppedCallback".into());
    let mut args = lifted;
    args.push("cancellation.Token".into());
    let call = format!("{conv}.Handles.Get(uniffiHandle).{}({})", names::pascal(m.name()), args.join(", "));
    let (task_ty, failed_ty, value_decl, run, result_init) = match m.return_type() {
        Some(t) => {
            let ffi_ty = types.ffi_cs_type_of(t);
            (
                format!("Task<{}>", types.cs_type(t)?),
                types.cs_type(t)?,
                format!("                {ffi_ty} value = default({ffi_ty});\n"),
                format!("value = {}.Lower(t.GetAwaiter().GetResult());", types.converter(t)?),
                "ReturnValue = value, CallStatus = status",
            )
        }
        None => (
            "Task".to_owned(),
            "bool".to_owned(),
            String::new(),
            "t.GetAwaiter().GetResult();".to_owned(),
            "CallStatus = status",
        ),
    };
    Ok(format!(
        "        private static void Method{i}({params})
        {{
            CancellationTokenSource cancellation = new CancellationTokenSource();
            UniffiForeignFutures.SetDroppedCallback(uniffiOutDroppedCallback, cancellation);
            {task_ty} task;
            try
            {{
                task = {call};
                if (task == null) throw new InvalidOperationException(\"{name} returned no task\");
            }}
            catch (Exception e)
            {{
                task = UniffiForeignFutures.Failed<{failed_ty}>(e);
            }}
            task.ContinueWith(t =>
            {{
                RustCallStatus status = new RustCallStatus();
{value_decl}                UniffiCalls.CallbackBody(ref status, () => {{ {run} }}, {lower_error});
                uniffiFutureCallback(uniffiCallbackData, new {result_struct} {{ {result_init} }});
            }}, TaskScheduler.Default);
        }}
",
        params = params.join(", "),
        name = names::pascal(m.name()),
    ))
}
