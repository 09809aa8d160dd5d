//! C# types and converter classes of uniffi types.
//!
//! | uniffi | C# |
//! |---|---|
//! | integers, floats, bool | `sbyte` ... `ulong`, `float`, `double`, `bool` |
//! | `String`, bytes | `string`, `byte[]` |
//! | timestamp, duration | `DateTime` (UTC), `TimeSpan` (100 ns resolution) |
//! | `Option<T>` | `T?` for value types, `T` (null) for reference types |
//! | `Vec<T>`, `HashSet<T>`, `HashMap<K, V>` | `List<T>`, `HashSet<T>`, `Dictionary<K, V>` |
//! | record, enum, error, object | generated class / enum / exception |
//! | callback interface | generated `IName` interface |
//!
//! A record or enum of another crate of the same library (a uniffi external type) is generated
//! into this component's file under its own name, so both crates' types share one namespace.

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen::interface::{FfiType, Type};

use crate::error::{GenerateError, Result};
use crate::names;

/// Answers type questions about one component.
pub(crate) struct TypeMap<'a> {
    ci: &'a ComponentInterface,
}

impl<'a> TypeMap<'a> {
    pub(crate) fn new(ci: &'a ComponentInterface) -> Self {
        Self { ci }
    }

    /// Whether a uniffi enum is used as an error (an exception class in C#).
    pub(crate) fn is_error(&self, name: &str) -> bool {
        self.ci.is_name_used_as_error(name)
    }

    /// Whether an enum becomes a C# `enum` (no variant carries data, not an error). The enum
    /// may be defined by another component of the library (an external type).
    pub(crate) fn is_cs_enum(&self, name: &str) -> bool {
        let definition = self
            .ci
            .get_enum_definition(name)
            .or_else(|| self.ci.all_component_interfaces().iter().find_map(|other| other.get_enum_definition(name)));
        !self.is_error(name) && definition.is_some_and(|e| e.variants().iter().all(|v| !v.has_fields()))
    }

    /// Whether the C# type is a value type (so that `Option` of it is `Nullable<T>`).
    pub(crate) fn is_value_type(&self, ty: &Type) -> bool {
        match ty {
            Type::UInt8
            | Type::Int8
            | Type::UInt16
            | Type::Int16
            | Type::UInt32
            | Type::Int32
            | Type::UInt64
            | Type::Int64
            | Type::Float32
            | Type::Float64
            | Type::Boolean
            | Type::Timestamp
            | Type::Duration => true,
            Type::Enum { name, .. } => self.is_cs_enum(name),
            Type::Custom { builtin, .. } => self.is_value_type(builtin),
            Type::Box { inner_type } => self.is_value_type(inner_type),
            _ => false,
        }
    }

    /// The C# type that users see.
    pub(crate) fn cs_type(&self, ty: &Type) -> Result<String> {
        Ok(match ty {
            Type::UInt8 => "byte".into(),
            Type::Int8 => "sbyte".into(),
            Type::UInt16 => "ushort".into(),
            Type::Int16 => "short".into(),
            Type::UInt32 => "uint".into(),
            Type::Int32 => "int".into(),
            Type::UInt64 => "ulong".into(),
            Type::Int64 => "long".into(),
            Type::Float32 => "float".into(),
            Type::Float64 => "double".into(),
            Type::Boolean => "bool".into(),
            Type::String => "string".into(),
            Type::Bytes => "byte[]".into(),
            Type::Timestamp => "DateTime".into(),
            Type::Duration => "TimeSpan".into(),
            Type::Optional { inner_type } => {
                if matches!(**inner_type, Type::Optional { .. }) {
                    return Err(GenerateError::unsupported("nested Option (Option<Option<T>>)", self.canonical(ty)?));
                }
                let inner = self.cs_type(inner_type)?;
                if self.is_value_type(inner_type) { format!("{inner}?") } else { inner }
            }
            Type::Sequence { inner_type } => format!("List<{}>", self.cs_type(inner_type)?),
            Type::Map { key_type, value_type } => {
                format!("Dictionary<{}, {}>", self.cs_type(key_type)?, self.cs_type(value_type)?)
            }
            Type::Record { name, .. } | Type::Object { name, .. } => names::pascal(name),
            Type::Enum { name, .. } => {
                if self.is_error(name) {
                    names::exception(name)
                } else {
                    names::pascal(name)
                }
            }
            Type::CallbackInterface { name, .. } => names::interface(name),
            Type::Custom { builtin, .. } => self.cs_type(builtin)?,
            Type::Box { inner_type } => self.cs_type(inner_type)?,
            Type::Set { inner_type } => format!("HashSet<{}>", self.cs_type(inner_type)?),
        })
    }

    /// A name unique to the type, used to name its converter class.
    pub(crate) fn canonical(&self, ty: &Type) -> Result<String> {
        Ok(match ty {
            Type::UInt8 => "UInt8".into(),
            Type::Int8 => "Int8".into(),
            Type::UInt16 => "UInt16".into(),
            Type::Int16 => "Int16".into(),
            Type::UInt32 => "UInt32".into(),
            Type::Int32 => "Int32".into(),
            Type::UInt64 => "UInt64".into(),
            Type::Int64 => "Int64".into(),
            Type::Float32 => "Float32".into(),
            Type::Float64 => "Float64".into(),
            Type::Boolean => "Boolean".into(),
            Type::String => "String".into(),
            Type::Bytes => "Bytes".into(),
            Type::Timestamp => "Timestamp".into(),
            Type::Duration => "Duration".into(),
            Type::Optional { inner_type } => format!("Optional{}", self.canonical(inner_type)?),
            Type::Sequence { inner_type } => format!("Sequence{}", self.canonical(inner_type)?),
            Type::Map { key_type, value_type } => {
                format!("Map{}{}", self.canonical(key_type)?, self.canonical(value_type)?)
            }
            Type::Record { name, .. }
            | Type::Object { name, .. }
            | Type::Enum { name, .. }
            | Type::CallbackInterface { name, .. } => format!("Type{}", names::pascal(name)),
            Type::Custom { builtin, .. } => self.canonical(builtin)?,
            Type::Box { inner_type } => self.canonical(inner_type)?,
            Type::Set { inner_type } => format!("Set{}", self.canonical(inner_type)?),
        })
    }

    /// The converter class of a type.
    pub(crate) fn converter_class(&self, ty: &Type) -> Result<String> {
        Ok(format!("FfiConverter{}", self.canonical(ty)?))
    }

    /// An expression for the converter instance of a type.
    pub(crate) fn converter(&self, ty: &Type) -> Result<String> {
        Ok(format!("{}.Instance", self.converter_class(ty)?))
    }

    /// The C# type of a value lowered for the FFI.
    pub(crate) fn ffi_cs_type_of(&self, ty: &Type) -> String {
        ffi_cs_type(&FfiType::from(ty))
    }
}

/// The C# type of an FFI value in P/Invoke signatures and FFI structs: pointers are `IntPtr`,
/// callbacks are delegate types (callers keep the delegate alive).
pub(crate) fn ffi_cs_type(ty: &FfiType) -> String {
    match ty {
        FfiType::UInt8 => "byte".into(),
        FfiType::Int8 => "sbyte".into(),
        FfiType::UInt16 => "ushort".into(),
        FfiType::Int16 => "short".into(),
        FfiType::UInt32 => "uint".into(),
        FfiType::Int32 => "int".into(),
        FfiType::UInt64 | FfiType::Handle => "ulong".into(),
        FfiType::Int64 => "long".into(),
        FfiType::Float32 => "float".into(),
        FfiType::Float64 => "double".into(),
        FfiType::RustBuffer(_) => "RustBuffer".into(),
        FfiType::ForeignBytes => "ForeignBytes".into(),
        FfiType::Callback(name) => ffi_delegate_name(name),
        FfiType::Struct(name) => ffi_struct_name(name),
        FfiType::RustCallStatus => "RustCallStatus".into(),
        FfiType::Reference(_) | FfiType::MutReference(_) | FfiType::VoidPointer => "IntPtr".into(),
    }
}

/// The delegate type generated for an FFI callback function.
pub(crate) fn ffi_delegate_name(name: &str) -> String {
    format!("Uniffi{}", names::pascal(name))
}

/// The struct generated for an FFI struct.
pub(crate) fn ffi_struct_name(name: &str) -> String {
    format!("Uniffi{}", names::pascal(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffi_types_map_to_blittable_csharp() {
        assert_eq!(ffi_cs_type(&FfiType::Handle), "ulong");
        assert_eq!(ffi_cs_type(&FfiType::RustBuffer(None)), "RustBuffer");
        assert_eq!(
            ffi_cs_type(&FfiType::Callback("rust_future_continuation_callback".into())),
            "UniffiRustFutureContinuationCallback"
        );
        assert_eq!(ffi_cs_type(&FfiType::MutReference(Box::new(FfiType::Int32))), "IntPtr");
    }

    #[test]
    fn optional_value_types_are_nullable_and_references_are_not() {
        let ci = ComponentInterface::new("t");
        let map = TypeMap::new(&ci);
        let opt_i32 = Type::Optional { inner_type: Box::new(Type::Int32) };
        let opt_str = Type::Optional { inner_type: Box::new(Type::String) };
        assert_eq!(map.cs_type(&opt_i32).unwrap(), "int?");
        assert_eq!(map.cs_type(&opt_str).unwrap(), "string");
        let nested = Type::Optional { inner_type: Box::new(opt_str.clone()) };
        assert!(map.cs_type(&nested).is_err());
        let map_ty = Type::Map {
            key_type: Box::new(Type::String),
            value_type: Box::new(Type::Sequence { inner_type: Box::new(Type::Int32) }),
        };
        assert_eq!(map.cs_type(&map_ty).unwrap(), "Dictionary<string, List<int>>");
        assert_eq!(map.converter(&map_ty).unwrap(), "FfiConverterMapStringSequenceInt32.Instance");
    }
}
