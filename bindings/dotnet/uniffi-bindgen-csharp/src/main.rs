//! `uniffi-bindgen-csharp LIBRARY OUT_DIR`: generates C# bindings for every uniffi component in a
//! built cdylib.

use camino::Utf8PathBuf;
use clap::Parser;
use uniffi_bindgen_csharp::{Config, generate_from_library};

/// Generate C# 7.2 / netstandard2.0 bindings from a uniffi cdylib.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The built library (`libNAME.so`, `NAME.dll`, `libNAME.dylib`).
    library: Utf8PathBuf,
    /// Directory for the generated `<Namespace>.cs` files (created when missing).
    out_dir: Utf8PathBuf,
    /// A TOML file whose `[bindings.csharp]` table sets namespace, functions_class, cdylib_name.
    #[arg(long)]
    config: Option<Utf8PathBuf>,
    /// C# namespace (default: the uniffi namespace in PascalCase).
    #[arg(long)]
    namespace: Option<String>,
    /// Static class for top-level functions (default: `<Namespace>Functions`).
    #[arg(long)]
    functions_class: Option<String>,
    /// Native library name for DllImport (default: the library file's name without `lib` and
    /// extension).
    #[arg(long)]
    cdylib_name: Option<String>,
    /// A top-level function without arguments to call at process exit.
    #[arg(long)]
    process_exit: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let overrides = Config {
        namespace: args.namespace,
        functions_class: args.functions_class,
        cdylib_name: args.cdylib_name,
        process_exit: args.process_exit,
    };
    match generate_from_library(&args.library, &args.out_dir, args.config.as_deref(), overrides) {
        Ok(components) => {
            for c in components {
                println!("generated C# for {c} in {}", args.out_dir);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
