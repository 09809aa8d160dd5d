//! Settings of the C# output: the `[bindings.csharp]` table of a TOML file given to the generator
//! (`--config`), overridable on the command line.

use serde::Deserialize;

/// What the generated C# is called and which native library it loads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// C# namespace; defaults to the uniffi namespace in PascalCase.
    pub namespace: Option<String>,
    /// Static class holding the top-level functions; defaults to `<last namespace segment>Functions`.
    pub functions_class: Option<String>,
    /// Native library name for `DllImport` (without `lib` prefix or extension); defaults to the
    /// cdylib's name.
    pub cdylib_name: Option<String>,
    /// A top-level function without arguments that the bindings call when the process exits
    /// (`AppDomain.ProcessExit`), e.g. one that stops the library's threads so that they cannot
    /// keep the process alive.
    pub process_exit: Option<String>,
}

impl Config {
    /// This configuration with every value that `other` sets replaced (command-line flags win over
    /// the configuration file).
    pub fn overridden_by(mut self, other: &Config) -> Config {
        if other.namespace.is_some() {
            self.namespace.clone_from(&other.namespace);
        }
        if other.functions_class.is_some() {
            self.functions_class.clone_from(&other.functions_class);
        }
        if other.cdylib_name.is_some() {
            self.cdylib_name.clone_from(&other.cdylib_name);
        }
        if other.process_exit.is_some() {
            self.process_exit.clone_from(&other.process_exit);
        }
        self
    }
}
