//! Converters of generic types (`Option`, `Vec`, `HashSet`, `HashMap`): one class per instantiation, named
//! after the type (`FfiConverterOptionalString`), serializing as uniffi does: a presence byte, an
//! `i32` count followed by the items (sequences and sets), an `i32` count followed by key / value pairs.

use std::fmt::Write as _;

use uniffi_bindgen::interface::Type;

use crate::error::Result;
use crate::types::TypeMap;

/// The converter class of `ty` when it is a generic type; `None` for every other type.
pub(crate) fn render(ty: &Type, types: &TypeMap<'_>) -> Result<Option<String>> {
    let (read, write) = match ty {
        Type::Optional { inner_type } => {
            let inner = types.converter(inner_type)?;
            let value = if types.is_value_type(inner_type) { "v.Value" } else { "v" };
            (
                format!("            if (r.ReadByte() == 0) return null;\n            return {inner}.Read(r);\n"),
                format!(
                    "            if (v == null)\n            {{\n                w.WriteByte(0);\n                return;\n            }}\n            w.WriteByte(1);\n            {inner}.Write({value}, w);\n"
                ),
            )
        }
        Type::Sequence { inner_type } => {
            let inner = types.converter(inner_type)?;
            let item = types.cs_type(inner_type)?;
            (
                format!(
                    "            int n = r.ReadInt32();\n            List<{item}> list = new List<{item}>(n);\n            for (int i = 0; i < n; i++) list.Add({inner}.Read(r));\n            return list;\n"
                ),
                format!(
                    "            if (v == null) throw new ArgumentNullException(\"list value\");\n            w.WriteInt32(v.Count);\n            foreach ({item} item in v) {inner}.Write(item, w);\n"
                ),
            )
        }
        Type::Set { inner_type } => {
            let inner = types.converter(inner_type)?;
            let item = types.cs_type(inner_type)?;
            (
                format!(
                    "            int n = r.ReadInt32();\n            HashSet<{item}> set = new HashSet<{item}>();\n            for (int i = 0; i < n; i++) set.Add({inner}.Read(r));\n            return set;\n"
                ),
                format!(
                    "            if (v == null) throw new ArgumentNullException(\"set value\");\n            w.WriteInt32(v.Count);\n            foreach ({item} item in v) {inner}.Write(item, w);\n"
                ),
            )
        }
        Type::Map { key_type, value_type } => {
            let kc = types.converter(key_type)?;
            let vc = types.converter(value_type)?;
            let k = types.cs_type(key_type)?;
            let v = types.cs_type(value_type)?;
            (
                format!(
                    "            int n = r.ReadInt32();\n            Dictionary<{k}, {v}> map = new Dictionary<{k}, {v}>(n);\n            for (int i = 0; i < n; i++)\n            {{\n                {k} key = {kc}.Read(r);\n                map[key] = {vc}.Read(r);\n            }}\n            return map;\n"
                ),
                format!(
                    "            if (v == null) throw new ArgumentNullException(\"dictionary value\");\n            w.WriteInt32(v.Count);\n            foreach (KeyValuePair<{k}, {v}> entry in v)\n            {{\n                {kc}.Write(entry.Key, w);\n                {vc}.Write(entry.Value, w);\n            }}\n"
                ),
            )
        }
        _ => return Ok(None),
    };
    let class = types.converter_class(ty)?;
    let cs = types.cs_type(ty)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "    internal sealed class {class} : FfiConverterRustBuffer<{cs}>\n    {{\n        public static readonly {class} Instance = new {class}();\n"
    );
    let _ = writeln!(out, "        public override {cs} Read(UniffiReader r)\n        {{\n{read}        }}\n");
    let _ = writeln!(
        out,
        "        public override void Write({cs} v, UniffiWriter w)\n        {{\n{write}        }}\n    }}\n"
    );
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use uniffi_bindgen::ComponentInterface;

    use super::*;

    // UDL cannot declare sets, so the set converter is checked here rather than in tests/shapes.rs.
    #[test]
    fn sets_are_hash_sets_serialized_like_sequences() {
        let ci = ComponentInterface::new("t");
        let types = TypeMap::new(&ci);
        let set = Type::Set { inner_type: Box::new(Type::String) };
        assert_eq!(types.cs_type(&set).unwrap(), "HashSet<string>");
        let cs = render(&set, &types).unwrap().unwrap();
        assert!(cs.contains("internal sealed class FfiConverterSetString : FfiConverterRustBuffer<HashSet<string>>"));
        assert!(cs.contains("set.Add(FfiConverterString.Instance.Read(r));"));
        assert!(cs.contains("w.WriteInt32(v.Count);"));
        assert!(render(&Type::String, &types).unwrap().is_none(), "only generic types get a converter here");
    }
}
