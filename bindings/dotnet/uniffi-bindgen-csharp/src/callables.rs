//! Functions, methods and constructors: the C# signature and the body that lowers arguments,
//! calls the scaffolding, checks the call status (exceptions) and lifts the result.
//!
//! Async callables drive uniffi's future ABI (poll with a continuation callback, complete, free)
//! and return `Task`/`Task<T>`; they take a `CancellationToken` that cancels the Rust future.

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen::interface::{Argument, AsType, FfiFunction, FfiType, Type};

use crate::error::{GenerateError, Result};
use crate::types::TypeMap;
use crate::{defaults, names};

/// What a callable looks like, whatever kind it is.
pub(crate) struct Callable<'a> {
    /// For error messages: `Counter.add`, `echo_i32`.
    pub item: String,
    pub args: Vec<&'a Argument>,
    /// The result as C# sees it (constructors: the object).
    pub return_type: Option<Type>,
    pub throws: Option<&'a Type>,
    pub is_async: bool,
    pub ffi: &'a FfiFunction,
    /// A method: the receiver's handle is cloned and passed first.
    pub receiver: bool,
}

impl Callable<'_> {
    /// `type name, type name = default` for the C# parameter list (plus the cancellation token
    /// when async).
    pub(crate) fn params(&self, types: &TypeMap<'_>) -> Result<String> {
        let defaults = defaults::optional_suffix(
            self.args
                .iter()
                .map(|a| a.default_value().and_then(|d| defaults::constant(d, &a.as_type(), types)))
                .collect(),
        );
        let mut ps = Vec::new();
        for (a, default) in self.args.iter().zip(defaults) {
            let p = format!("{} {}", types.cs_type(&a.as_type())?, names::camel(a.name()));
            ps.push(match default {
                Some(d) => format!("{p} = {d}"),
                None => p,
            });
        }
        if self.is_async {
            ps.push("CancellationToken cancellationToken = default(CancellationToken)".into());
        }
        Ok(ps.join(", "))
    }

    /// Argument names as C# passes them on (for delegating constructors).
    pub(crate) fn arg_names(&self) -> String {
        self.args.iter().map(|a| names::camel(a.name())).collect::<Vec<_>>().join(", ")
    }

    /// The C# return type: `void`, `T`, `Task` or `Task<T>`.
    pub(crate) fn return_cs(&self, types: &TypeMap<'_>) -> Result<String> {
        let inner = match &self.return_type {
            Some(t) => Some(types.cs_type(t)?),
            None => None,
        };
        Ok(match (self.is_async, inner) {
            (false, None) => "void".into(),
            (false, Some(t)) => t,
            (true, None) => "Task".into(),
            (true, Some(t)) => format!("Task<{t}>"),
        })
    }

    fn lowered_args(&self, types: &TypeMap<'_>, pad: &str) -> Result<(String, Vec<String>)> {
        // Arguments are lowered into locals before the receiver's handle is cloned, so that a
        // failure while lowering leaks no Rust reference.
        let mut stmts = String::new();
        let mut call_args = Vec::new();
        if self.receiver {
            call_args.push("CloneHandle()".to_owned());
        }
        for (i, a) in self.args.iter().enumerate() {
            let local = format!("uniffiArg{i}");
            stmts.push_str(&format!(
                "{pad}{} {local} = {}.Lower({});\n",
                types.ffi_cs_type_of(&a.as_type()),
                types.converter(&a.as_type())?,
                defaults::or_empty(&names::camel(a.name()), a.default_value(), &a.as_type(), types)
            ));
            call_args.push(local);
        }
        Ok((stmts, call_args))
    }

    fn errors(&self, types: &TypeMap<'_>) -> Result<String> {
        match self.throws {
            None => Ok("null".into()),
            Some(t @ Type::Enum { .. }) => types.converter(t),
            Some(t) => {
                Err(GenerateError::unsupported(format!("throwing {t:?} (only enums can be errors)"), &self.item))
            }
        }
    }

    /// Statements that call Rust and return the lifted result. `raw_handle`: return the FFI value
    /// unlifted (the handle a primary constructor passes to its base class).
    pub(crate) fn body(
        &self,
        ci: &ComponentInterface,
        types: &TypeMap<'_>,
        indent: usize,
        raw_handle: bool,
    ) -> Result<String> {
        let pad = " ".repeat(indent);
        let (mut out, call_args) = self.lowered_args(types, &pad)?;
        let errors = self.errors(types)?;
        let ffi_name = self.ffi.name();
        if self.is_async {
            if raw_handle {
                return Err(GenerateError::unsupported("async primary constructors", &self.item));
            }
            let ret_ffi = self.return_type.as_ref().map(FfiType::from);
            let poll = ci.ffi_rust_future_poll(ret_ffi.clone()).name().to_owned();
            let complete = ci.ffi_rust_future_complete(ret_ffi.clone()).name().to_owned();
            let cancel = ci.ffi_rust_future_cancel(ret_ffi.clone()).name().to_owned();
            let free = ci.ffi_rust_future_free(ret_ffi).name().to_owned();
            out.push_str(&format!("{pad}ulong uniffiFuture = UniffiLib.{ffi_name}({});\n", call_args.join(", ")));
            match &self.return_type {
                Some(t) => out.push_str(&format!(
                    "{pad}return UniffiAsync.Call<{}, {}>(uniffiFuture, UniffiLib.{poll}, UniffiLib.{complete}, UniffiLib.{cancel}, UniffiLib.{free}, {}.Lift, {errors}, cancellationToken);\n",
                    types.cs_type(t)?,
                    types.ffi_cs_type_of(t),
                    types.converter(t)?
                )),
                None => out.push_str(&format!(
                    "{pad}return UniffiAsync.CallVoid(uniffiFuture, UniffiLib.{poll}, UniffiLib.{complete}, UniffiLib.{cancel}, UniffiLib.{free}, {errors}, cancellationToken);\n"
                )),
            }
            return Ok(out);
        }
        let mut ffi_args = call_args;
        ffi_args.push("ref uniffiStatus".into());
        let call = format!("UniffiLib.{ffi_name}({})", ffi_args.join(", "));
        match &self.return_type {
            Some(_) if raw_handle => out.push_str(&format!(
                "{pad}return UniffiCalls.Call({errors}, (ref RustCallStatus uniffiStatus) => {call});\n"
            )),
            Some(t) => out.push_str(&format!(
                "{pad}return {}.Lift(UniffiCalls.Call({errors}, (ref RustCallStatus uniffiStatus) => {call}));\n",
                types.converter(t)?
            )),
            None => out.push_str(&format!(
                "{pad}UniffiCalls.CallVoid({errors}, (ref RustCallStatus uniffiStatus) => {call});\n"
            )),
        }
        Ok(out)
    }
}
