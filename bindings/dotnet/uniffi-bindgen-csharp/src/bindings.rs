//! Puts one component's C# file together and plugs the generator into uniffi's library mode.
//!
//! A library may hold several components (one per crate with uniffi exports). A record or enum
//! that one crate defines and another's functions use (a uniffi external type) is generated into
//! the file of every component that uses it, so it lives in that component's namespace next to
//! the functions that take it; a component made only of such types gets no file of its own.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Context as _;
use camino::Utf8Path;
use uniffi_bindgen::interface::Type;
use uniffi_bindgen::{BindingGenerator, Component, ComponentInterface, EmptyCrateConfigSupplier, GenerationSettings};

use crate::callables::Callable;
use crate::config::Config;
use crate::doc_comments::summary;
use crate::error::{GenerateError, Result};
use crate::types::TypeMap;
use crate::{callback_interfaces, converters, enums, ffi, names, objects, records};

const RUNTIME: &str = include_str!("templates/Runtime.cs");

/// uniffi's [`BindingGenerator`] for C#: writes `<Namespace>.cs` per component into the output
/// directory. `overrides` (e.g. from the command line) win over the configuration file.
#[derive(Debug, Default)]
pub struct CsharpBindingGenerator {
    /// Settings that win over `[bindings.csharp]` of the configuration file.
    pub overrides: Config,
}

impl BindingGenerator for CsharpBindingGenerator {
    type Config = Config;

    fn new_config(&self, root_toml: &toml::Value) -> anyhow::Result<Config> {
        let table = root_toml.get("bindings").and_then(|b| b.get("csharp")).cloned();
        let config: Config = match table {
            Some(t) => t.try_into().context("reading [bindings.csharp]")?,
            None => Config::default(),
        };
        Ok(config.overridden_by(&self.overrides))
    }

    fn update_component_configs(
        &self,
        settings: &GenerationSettings,
        components: &mut Vec<Component<Config>>,
    ) -> anyhow::Result<()> {
        for c in components.iter_mut() {
            if c.config.cdylib_name.is_none() {
                c.config.cdylib_name = settings.cdylib.clone();
            }
        }
        Ok(())
    }

    fn write_bindings(&self, settings: &GenerationSettings, components: &[Component<Config>]) -> anyhow::Result<()> {
        for c in components.iter().filter(|c| !merged_into_others(&c.ci, components)) {
            let source = generate_component(&c.ci, &c.config)?;
            let path = settings.out_dir.join(format!("{}.cs", namespace(&c.ci, &c.config)));
            std::fs::write(&path, source).map_err(|source| GenerateError::Write { path: path.to_string(), source })?;
        }
        Ok(())
    }
}

/// Generates C# for every component of a built cdylib (uniffi library mode) into `out_dir`;
/// returns the names of the components that got a file. `config_file`: a TOML file whose
/// `[bindings.csharp]` table configures the output (`overrides` win over it).
pub fn generate_from_library(
    library: &Utf8Path,
    out_dir: &Utf8Path,
    config_file: Option<&Utf8Path>,
    overrides: Config,
) -> anyhow::Result<Vec<String>> {
    let generator = CsharpBindingGenerator { overrides };
    let components = uniffi_bindgen::library_mode::generate_bindings(
        library,
        None,
        &generator,
        &EmptyCrateConfigSupplier,
        config_file,
        out_dir,
        false,
    )
    .with_context(|| format!("generating C# for {library}"))?;
    let written = components.iter().filter(|c| !merged_into_others(&c.ci, &components));
    Ok(written.map(|c| c.ci.namespace().to_owned()).collect())
}

/// Whether a component holds only records and enums that other components of the library use:
/// they are generated into those components' files, so it needs no file (nor namespace) of its own.
fn merged_into_others(ci: &ComponentInterface, components: &[Component<Config>]) -> bool {
    let types_only = ci.function_definitions().is_empty()
        && ci.object_definitions().is_empty()
        && ci.callback_interface_definitions().is_empty();
    let used_elsewhere = components.iter().any(|other| {
        other.ci.crate_name() != ci.crate_name()
            && other.ci.iter_external_types().any(|t| crate_of(t) == Some(ci.crate_name()))
    });
    types_only && used_elsewhere
}

/// The crate a type is defined in (its module path's first segment).
fn crate_of(ty: &Type) -> Option<&str> {
    ty.crate_name().and_then(|path| path.split("::").next())
}

/// The other components of the library whose records and enums `ci` uses (directly, or through
/// another external type), each once.
fn external_components(ci: &ComponentInterface) -> Result<Vec<&ComponentInterface>> {
    let mut found: Vec<&ComponentInterface> = Vec::new();
    let mut pending: Vec<&Type> = ci.iter_external_types().collect();
    while let Some(ty) = pending.pop() {
        let name = ty.name().unwrap_or_default().to_owned();
        if !matches!(ty, Type::Record { .. } | Type::Enum { .. }) {
            return Err(GenerateError::unsupported("objects, traits and custom types of another crate", name));
        }
        let krate = crate_of(ty).unwrap_or_default();
        if krate == ci.crate_name() || found.iter().any(|c| c.crate_name() == krate) {
            continue;
        }
        let other = ci.all_component_interfaces().iter().find(|c| c.crate_name() == krate).ok_or_else(|| {
            GenerateError::unsupported("a type of a crate whose uniffi metadata is not in the library", name)
        })?;
        found.push(other);
        pending.extend(other.iter_external_types());
    }
    Ok(found)
}

fn namespace(ci: &ComponentInterface, config: &Config) -> String {
    config.namespace.clone().unwrap_or_else(|| names::pascal(ci.namespace()))
}

/// The whole C# source of one component. `ci` must have its FFI functions derived (library mode
/// does that).
pub fn generate_component(ci: &ComponentInterface, config: &Config) -> Result<String> {
    let types = TypeMap::new(ci);
    let ns = namespace(ci, config);
    let lib_name = config.cdylib_name.clone().unwrap_or_else(|| ci.crate_name().to_owned());
    let last_segment = ns.rsplit('.').next().unwrap_or(&ns);
    let functions_class = config.functions_class.clone().unwrap_or_else(|| format!("{last_segment}Functions"));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by uniffi-bindgen-csharp from the uniffi interface of `{}`: do not edit.\n// C# 7.2, netstandard2.0.\n",
        ci.crate_name()
    );
    for using in [
        "System",
        "System.Collections",
        "System.Collections.Generic",
        "System.IO",
        "System.Runtime.InteropServices",
        "System.Text",
        "System.Threading",
        "System.Threading.Tasks",
    ] {
        let _ = writeln!(out, "using {using};");
    }
    let _ = writeln!(out, "\nnamespace {ns}\n{{");
    out.push_str(RUNTIME);
    out.push('\n');
    out.push_str("    // ---- FFI declarations ----\n\n");
    let exit_call = match &config.process_exit {
        Some(name) => {
            let f = ci.get_function_definition(name).ok_or_else(|| {
                GenerateError::unsupported("a process_exit setting naming no exported function", name.as_str())
            })?;
            if !f.arguments().is_empty() || f.is_async() {
                return Err(GenerateError::unsupported(
                    "a process_exit function with arguments or async",
                    name.as_str(),
                ));
            }
            Some(format!("{functions_class}.{}()", names::pascal(name)))
        }
        None => None,
    };
    out.push_str(&ffi::render(ci, &lib_name, exit_call.as_deref()));

    out.push_str("    // ---- types ----\n\n");
    let externals = external_components(ci)?;
    for component in std::iter::once(ci).chain(externals.iter().copied()) {
        for rec in component.record_definitions() {
            out.push_str(&records::render(rec, &types)?);
        }
        for e in component.enum_definitions() {
            out.push_str(&enums::render(e, &types)?);
        }
    }
    for obj in ci.object_definitions() {
        out.push_str(&objects::render(obj, ci, &types)?);
    }
    for cbi in ci.callback_interface_definitions() {
        out.push_str(&callback_interfaces::render(cbi, &types)?);
    }
    let mut seen = BTreeSet::new();
    let local_types = externals.iter().flat_map(|c| c.iter_local_types());
    for ty in ci.iter_local_types().chain(local_types) {
        check_supported(ty)?;
        if seen.insert(types.converter_class(ty)?)
            && let Some(conv) = converters::render(ty, &types)?
        {
            out.push_str(&conv);
        }
    }

    let default_doc = format!("The top-level functions of the `{}` library.", ci.crate_name());
    out.push_str(&summary(Some(ci.namespace_docstring().unwrap_or(&default_doc)), 4));
    let _ = writeln!(out, "    public static class {functions_class}\n    {{");
    for f in ci.function_definitions() {
        let callable = Callable {
            item: f.name().to_owned(),
            args: f.arguments(),
            return_type: f.return_type().cloned(),
            throws: f.throws_type(),
            is_async: f.is_async(),
            ffi: f.ffi_func(),
            receiver: false,
        };
        out.push_str(&summary(f.docstring(), 8));
        let _ = writeln!(
            out,
            "        public static {} {}({})\n        {{",
            callable.return_cs(&types)?,
            names::pascal(f.name()),
            callable.params(&types)?
        );
        out.push_str(&callable.body(ci, &types, 12, false)?);
        let _ = writeln!(out, "        }}\n");
    }
    let _ = writeln!(out, "    }}\n}}");
    Ok(out)
}

fn check_supported(ty: &Type) -> Result<()> {
    match ty {
        Type::Object { name, imp, .. } if imp.has_callback_interface() => {
            Err(GenerateError::unsupported("traits implemented in C#", name.clone()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_comes_from_the_csharp_table_and_overrides_win() {
        let toml: toml::Value =
            toml::from_str("[bindings.csharp]\nnamespace = \"ExchangeSync\"\nfunctions_class = \"Sync\"\n").unwrap();
        let generator = CsharpBindingGenerator {
            overrides: Config { functions_class: Some("Native".into()), ..Config::default() },
        };
        let config = generator.new_config(&toml).unwrap();
        assert_eq!(config.namespace.as_deref(), Some("ExchangeSync"));
        assert_eq!(config.functions_class.as_deref(), Some("Native"));
        let bad: toml::Value = toml::from_str("[bindings.csharp]\nnamespaces = \"typo\"\n").unwrap();
        assert!(generator.new_config(&bad).is_err(), "unknown keys are rejected");
    }
}
