//! One test per type shape: an interface declared in UDL goes through the generator, and the C#
//! must contain the declarations and the FFI plumbing that make the shape work. (The C# suite in
//! `bindings/dotnet/tests`, run by `bindings/dotnet/test.sh`, compiles and runs the real thing.)

#![allow(clippy::expect_used, reason = "test helpers: a failure to generate is the test failing")]

use uniffi_bindgen::ComponentInterface;
use uniffi_bindgen_csharp::{Config, generate_component};

fn generate(udl: &str) -> String {
    let mut ci = ComponentInterface::from_webidl(udl, "shapes").expect("valid UDL");
    ci.derive_ffi_funcs().expect("FFI functions");
    generate_component(&ci, &Config::default()).expect("C# generated")
}

fn assert_has(cs: &str, needles: &[&str]) {
    for n in needles {
        assert!(cs.contains(n), "generated C# lacks `{n}`");
    }
}

fn assert_lacks(cs: &str, needles: &[&str]) {
    for n in needles {
        assert!(!cs.contains(n), "generated C# should not contain `{n}`");
    }
}

#[test]
fn scalars_map_to_csharp_primitives_and_lower_directly() {
    let cs = generate(
        "namespace shapes { i8 f_i8(i8 v); u8 f_u8(u8 v); i16 f_i16(i16 v); u16 f_u16(u16 v); i32 f_i32(i32 v);
         u32 f_u32(u32 v); i64 f_i64(i64 v); u64 f_u64(u64 v); float f_f32(float v); double f_f64(double v);
         boolean f_bool(boolean v); };",
    );
    assert_has(
        &cs,
        &[
            "public static sbyte FI8(sbyte v)",
            "public static byte FU8(byte v)",
            "public static short FI16(short v)",
            "public static ushort FU16(ushort v)",
            "public static int FI32(int v)",
            "public static uint FU32(uint v)",
            "public static long FI64(long v)",
            "public static ulong FU64(ulong v)",
            "public static float FF32(float v)",
            "public static double FF64(double v)",
            "public static bool FBool(bool v)",
            // booleans cross as a signed byte
            "sbyte uniffiArg0 = FfiConverterBoolean.Instance.Lower(v);",
            "internal static extern sbyte uniffi_shapes_fn_func_f_bool(sbyte v, ref RustCallStatus uniffiCallStatus);",
        ],
    );
}

#[test]
fn strings_bytes_and_time_travel_in_rust_buffers() {
    let cs = generate(
        "namespace shapes { string f_s(string v); bytes f_b(bytes v); timestamp f_t(timestamp v); duration f_d(duration v); };",
    );
    assert_has(
        &cs,
        &[
            "public static string FS(string v)",
            "public static byte[] FB(byte[] v)",
            "public static DateTime FT(DateTime v)",
            "public static TimeSpan FD(TimeSpan v)",
            "RustBuffer uniffiArg0 = FfiConverterString.Instance.Lower(v);",
            "return FfiConverterTimestamp.Instance.Lift(",
            "internal static extern RustBuffer uniffi_shapes_fn_func_f_s(RustBuffer v, ref RustCallStatus uniffiCallStatus);",
        ],
    );
}

#[test]
fn optionals_sequences_and_maps_get_one_converter_per_instantiation() {
    let cs = generate(
        "namespace shapes { string? f_o(string? v); i32? f_oi(i32? v); sequence<i32> f_seq(sequence<i32> v);
         record<string, sequence<i32>> f_map(record<string, sequence<i32>> v); };",
    );
    assert_has(
        &cs,
        &[
            "public static string FO(string v)",
            "public static int? FOi(int? v)",
            "public static List<int> FSeq(List<int> v)",
            "public static Dictionary<string, List<int>> FMap(Dictionary<string, List<int>> v)",
            "internal sealed class FfiConverterOptionalString : FfiConverterRustBuffer<string>",
            "internal sealed class FfiConverterOptionalInt32 : FfiConverterRustBuffer<int?>",
            // a nullable value type is unwrapped before writing
            "FfiConverterInt32.Instance.Write(v.Value, w);",
            "internal sealed class FfiConverterSequenceInt32 : FfiConverterRustBuffer<List<int>>",
            "internal sealed class FfiConverterMapStringSequenceInt32 : FfiConverterRustBuffer<Dictionary<string, List<int>>>",
        ],
    );
    assert_eq!(cs.matches("class FfiConverterSequenceInt32 ").count(), 1, "one converter per type");
}

#[test]
fn records_are_classes_with_value_equality() {
    let cs = generate(
        "namespace shapes { Contact echo(Contact c); };
         dictionary Contact { string name; string? email; u32 age; sequence<string> tags; };",
    );
    assert_has(
        &cs,
        &[
            "public sealed class Contact",
            "public Contact(string name, string email, uint age, List<string> tags)",
            "public string Name { get; set; }",
            "public uint Age { get; set; }",
            "public override bool Equals(object obj)",
            "UniffiEquality.Equals(this.Tags, other.Tags)",
            "public override int GetHashCode()",
            "internal sealed class FfiConverterTypeContact : FfiConverterRustBuffer<Contact>",
            // fields are read in declaration order
            "return new Contact(FfiConverterString.Instance.Read(r), FfiConverterOptionalString.Instance.Read(r), FfiConverterUInt32.Instance.Read(r), FfiConverterSequenceString.Instance.Read(r));",
        ],
    );
}

#[test]
fn flat_enums_are_csharp_enums_with_one_based_indexes() {
    let cs =
        generate("namespace shapes { Direction flip(Direction d); }; enum Direction { \"one_way\", \"two_way\" };");
    assert_has(
        &cs,
        &[
            "public enum Direction",
            "OneWay,",
            "TwoWay,",
            "case 1: return Direction.OneWay;",
            "case Direction.TwoWay: w.WriteInt32(2); break;",
        ],
    );
}

#[test]
fn enums_with_data_are_class_hierarchies() {
    let cs = generate(
        "namespace shapes { Change echo(Change c); };
         [Enum] interface Change { Created(string id); Updated(string id, sequence<string> fields); Deleted(); };",
    );
    assert_has(
        &cs,
        &[
            "public abstract class Change",
            "private Change() { }",
            "public sealed class Created : Change",
            "public sealed class Updated : Change",
            "public Updated(string id, List<string> fields)",
            "public sealed class Deleted : Change",
            "if (v is Change.Updated variant1)",
            "FfiConverterSequenceString.Instance.Write(variant1.Fields, w);",
            "case 3: return new Change.Deleted();",
        ],
    );
}

#[test]
fn flat_errors_are_exceptions_carrying_rusts_message() {
    let cs = generate(
        "namespace shapes { [Throws=FlatError] void fail(string what); };
         [Error] enum FlatError { \"NotFound\", \"Denied\" };",
    );
    assert_has(
        &cs,
        &[
            "public abstract class FlatException : Exception",
            "public sealed class NotFound : FlatException",
            "public NotFound(string message) : base(message) { }",
            "internal sealed class FfiConverterTypeFlatError : FfiConverterRustBuffer<FlatException>, IUniffiErrorLifter",
            "case 1: return new FlatException.NotFound(FfiConverterString.Instance.Read(r));",
            "UniffiCalls.CallVoid(FfiConverterTypeFlatError.Instance, (ref RustCallStatus uniffiStatus) =>",
        ],
    );
}

#[test]
fn errors_with_fields_expose_them_as_properties() {
    let cs = generate(
        "namespace shapes { [Throws=SyncError] u32 sync(); };
         [Error] interface SyncError { Conflict(string mailbox, string item); Throttled(u64 backoff_ms); };",
    );
    assert_has(
        &cs,
        &[
            "public abstract class SyncException : Exception",
            "public sealed class Conflict : SyncException",
            "public Conflict(string mailbox, string item) : base(\"Conflict(\" + \"mailbox=\" + mailbox + \", \" + \"item=\" + item + \")\")",
            "public string Mailbox { get; }",
            "public ulong BackoffMs { get; }",
            "case 2: return new SyncException.Throttled(FfiConverterUInt64.Instance.Read(r));",
            "return FfiConverterUInt32.Instance.Lift(UniffiCalls.Call(FfiConverterTypeSyncError.Instance,",
        ],
    );
}

#[test]
fn a_message_field_of_an_error_is_the_exception_message() {
    let cs = generate(
        "namespace shapes { [Throws=SyncError] u32 sync(); };
         [Error] interface SyncError { NotFound(string message, string item); };",
    );
    assert_has(
        &cs,
        &[
            "public NotFound(string message, string item) : base(message)",
            "public string Item { get; }",
            "this.Item = item;",
        ],
    );
    assert!(!cs.contains("public string Message { get; }"), "Message would hide Exception.Message");
    assert!(!cs.contains("this.Message = message;"));
}

#[test]
fn objects_own_a_handle_and_clone_it_for_each_call() {
    let cs = generate(
        "namespace shapes { i64 sum(sequence<Counter> counters); };
         [Error] enum CounterError { \"Denied\" };
         interface Counter {
           constructor(i64 start);
           [Name=named, Throws=CounterError] constructor(string name);
           i64 add(i64 by);
           Counter fork();
         };",
    );
    assert_has(
        &cs,
        &[
            "public class Counter : UniffiObject",
            "public Counter(long start) : base(UniffiConstruct(start)) { }",
            "public static Counter Named(string name)",
            "public long Add(long by)",
            "UniffiLib.uniffi_shapes_fn_method_counter_add(CloneHandle(), uniffiArg0, ref uniffiStatus)",
            "public Counter Fork()",
            "internal override void FreeRustHandle(ulong handle)",
            "UniffiLib.uniffi_shapes_fn_free_counter(handle, ref s)",
            "UniffiLib.uniffi_shapes_fn_clone_counter(handle, ref s)",
            "internal sealed class FfiConverterTypeCounter : FfiConverter<Counter, ulong>",
            "return v.CloneHandle();",
            "public static long Sum(List<Counter> counters)",
        ],
    );
    // the runtime base class: IDisposable plus a finalizer
    assert_has(
        &cs,
        &["public abstract class UniffiObject : IDisposable", "~UniffiObject()", "GC.SuppressFinalize(this);"],
    );
}

#[test]
fn callback_interfaces_register_a_vtable_of_static_delegates() {
    let cs = generate(
        "namespace shapes { u32 run(Listener l); };
         [Error] interface ListenerError { Failed(string reason); };
         callback interface Listener {
           void on_progress(u32 done, string message);
           [Throws=ListenerError] string transform(string value);
         };",
    );
    assert_has(
        &cs,
        &[
            "public interface IListener",
            "void OnProgress(uint done, string message);",
            "string Transform(string value);",
            "internal static readonly UniffiHandleMap<IListener> Handles",
            "private static readonly UniffiCallbackInterfaceFree FreeDelegate",
            "UniffiCallbacksListener.Register();",
            "Marshal.GetFunctionPointerForDelegate(Method1Delegate)",
            "UniffiLib.uniffi_shapes_fn_init_callback_vtable_listener(p);",
            "UniffiOut.Write(uniffiOutReturn, FfiConverterString.Instance.Lower(",
            "ListenerException declared = e as ListenerException;",
        ],
    );
}

#[test]
fn async_functions_return_tasks_and_drive_rust_futures() {
    let cs = generate("namespace shapes { [Async] i32 add(i32 a, i32 b); [Async] void wait(); };");
    assert_has(
        &cs,
        &[
            "public static Task<int> Add(int a, int b, CancellationToken cancellationToken = default(CancellationToken))",
            "public static Task Wait(CancellationToken cancellationToken = default(CancellationToken))",
            "ulong uniffiFuture = UniffiLib.uniffi_shapes_fn_func_add(uniffiArg0, uniffiArg1);",
            "return UniffiAsync.Call<int, int>(uniffiFuture, UniffiLib.ffi_shapes_rust_future_poll_i32, UniffiLib.ffi_shapes_rust_future_complete_i32, UniffiLib.ffi_shapes_rust_future_cancel_i32, UniffiLib.ffi_shapes_rust_future_free_i32, FfiConverterInt32.Instance.Lift, null, cancellationToken);",
            "return UniffiAsync.CallVoid(uniffiFuture, UniffiLib.ffi_shapes_rust_future_poll_void,",
        ],
    );
}

#[test]
fn library_load_checks_contract_version_and_checksums() {
    let cs = generate("namespace shapes { i32 f(i32 v); };");
    assert_has(
        &cs,
        &[
            "static UniffiLib()",
            "ffi_shapes_uniffi_contract_version()",
            "if (uniffi_shapes_checksum_func_f() != ",
            "internal const string LibName = \"shapes\";",
        ],
    );
}

#[test]
fn output_stays_within_csharp_7_2() {
    let cs = generate(
        "namespace shapes { [Async] Rec f(Rec r, Shape s); };
         dictionary Rec { string? a; };
         [Enum] interface Shape { Dot(); Line(u32 len); };",
    );
    // Newer syntax that mcs -langversion:7.2 rejects or netstandard2.0 lacks.
    assert_lacks(
        &cs,
        &[
            "record class",
            "record struct",
            "#nullable",
            " init;",
            "switch {",
            " => {\n",
            "using var ",
            "ValueTask",
            "..^",
            "??=",
        ],
    );
}

#[test]
fn configuration_names_namespace_class_and_library() {
    let mut ci = ComponentInterface::from_webidl("namespace shapes { void f(); };", "shapes").expect("valid UDL");
    ci.derive_ffi_funcs().expect("FFI functions");
    let config = Config {
        namespace: Some("ExchangeSync.Native".into()),
        functions_class: Some("Native".into()),
        cdylib_name: Some("exchange_sync_dotnet".into()),
        process_exit: None,
    };
    let cs = generate_component(&ci, &config).expect("C# generated");
    assert_has(
        &cs,
        &["namespace ExchangeSync.Native", "public static class Native", "LibName = \"exchange_sync_dotnet\""],
    );
}

#[test]
fn a_process_exit_function_is_called_from_the_exit_handler() {
    let mut ci = ComponentInterface::from_webidl("namespace shapes { void stop_threads(); void f(u32 a); };", "shapes")
        .expect("valid UDL");
    ci.derive_ffi_funcs().expect("FFI functions");
    let config = Config { process_exit: Some("stop_threads".into()), ..Config::default() };
    let cs = generate_component(&ci, &config).expect("C# generated");
    assert_has(
        &cs,
        &["AppDomain.CurrentDomain.ProcessExit += (sender, e) => { try { ShapesFunctions.StopThreads(); }"],
    );
    let with_args = Config { process_exit: Some("f".into()), ..Config::default() };
    assert!(generate_component(&ci, &with_args).is_err());
    let missing = Config { process_exit: Some("nope".into()), ..Config::default() };
    assert!(generate_component(&ci, &missing).is_err());
}

#[test]
fn functions_class_defaults_to_the_last_namespace_segment() {
    let mut ci = ComponentInterface::from_webidl("namespace shapes { void f(); };", "shapes").expect("valid UDL");
    ci.derive_ffi_funcs().expect("FFI functions");
    let config = Config { namespace: Some("ExchangeSync.Native".into()), ..Config::default() };
    let cs = generate_component(&ci, &config).expect("C# generated");
    assert_has(&cs, &["public static class NativeFunctions"]);
}

#[test]
fn trailing_constant_defaults_become_optional_parameters() {
    let cs = generate(
        "namespace shapes { string greet(string name, optional string greeting = \"hello\", optional u32 times = 2);
                             u32 count(optional sequence<string> tags = []); };
         dictionary Options { string group; sequence<string> tags = []; u32 batch = 50; boolean dry_run = false; };",
    );
    assert_has(
        &cs,
        &[
            "public static string Greet(string name, string greeting = \"hello\", uint times = 2)",
            // an empty list is no C# constant: its default is null, replaced by an empty list
            "public Options(string group, List<string> tags = null, uint batch = 50, bool dryRun = false)",
            "this.Tags = (tags ?? new List<string>());",
            "public static uint Count(List<string> tags = null)",
            ".Lower((tags ?? new List<string>()));",
        ],
    );
}

#[test]
fn rust_traits_become_dotnet_overrides() {
    let cs = generate("namespace shapes {}; [Traits=(Display, Eq, Hash, Ord)] interface Counter { constructor(); };");
    assert_has(
        &cs,
        &[
            "public class Counter : UniffiObject, IComparable<Counter>",
            "public override string ToString()",
            "public override bool Equals(object obj)",
            "public override int GetHashCode()",
            "public int CompareTo(Counter other)",
        ],
    );
}

#[test]
fn async_callback_methods_return_tasks_and_complete_rusts_callback() {
    let cs = generate(
        "namespace shapes { [Async] string fetch(TokenSource s); };
         callback interface TokenSource { [Async] string token(string scope); };",
    );
    assert_has(
        &cs,
        &[
            "Task<string> Token(string scope, CancellationToken cancellationToken);",
            "UniffiForeignFutures.SetDroppedCallback(uniffiOutDroppedCallback, cancellation);",
            "UniffiForeignFutureCompleteRustBuffer uniffiFutureCallback",
            "uniffiFutureCallback(uniffiCallbackData, new UniffiForeignFutureResultRustBuffer { ReturnValue = value, CallStatus = status });",
        ],
    );
}

#[test]
fn records_and_enums_of_another_crate_are_generated_into_the_file_that_uses_them() {
    // Two crates of one library: `geometry` defines types only, `shapes` uses them.
    let mut geometry = ComponentInterface::from_webidl(
        "namespace geometry {}; dictionary Point { i32 x; i32 y; sequence<string> labels; };
         enum Quadrant { \"First\", \"Second\" }; [Enum] interface Shape { Dot(Point at); Nothing(); };",
        "geometry",
    )
    .expect("valid UDL");
    let mut shapes = ComponentInterface::from_webidl(
        "namespace shapes { Point mirror(Point p); Quadrant quadrant(Point p); sequence<Shape> outline(); };
         [External=\"geometry\"] typedef dictionary Point;
         [External=\"geometry\"] typedef enum Quadrant;
         [External=\"geometry\"] typedef enum Shape;",
        "shapes",
    )
    .expect("valid UDL");
    geometry.derive_ffi_funcs().expect("FFI functions");
    shapes.derive_ffi_funcs().expect("FFI functions");
    let all = vec![shapes.clone(), geometry.clone()];
    shapes.set_all_component_interfaces(all);
    let cs = generate_component(&shapes, &Config::default()).expect("C# generated");
    assert_has(
        &cs,
        &[
            "public sealed class Point",
            "internal sealed class FfiConverterTypePoint : FfiConverterRustBuffer<Point>",
            // a flat enum of the other crate is a C# enum, so an optional of it would be nullable
            "public enum Quadrant",
            "public abstract class Shape",
            // the other crate's own generic types get their converters here too
            "internal sealed class FfiConverterSequenceString : FfiConverterRustBuffer<List<string>>",
            "internal sealed class FfiConverterSequenceTypeShape : FfiConverterRustBuffer<List<Shape>>",
            "public static Point Mirror(Point p)",
            "public static Quadrant Quadrant(Point p)",
        ],
    );
    assert_eq!(cs.matches("public sealed class Point").count(), 1, "one definition per type");
    assert_lacks(&cs, &["uniffi_geometry_"]);
}

#[test]
fn an_external_type_without_its_crate_in_the_library_is_an_error() {
    let mut shapes = ComponentInterface::from_webidl(
        "namespace shapes { Point mirror(Point p); }; [External=\"geometry\"] typedef dictionary Point;",
        "shapes",
    )
    .expect("valid UDL");
    shapes.derive_ffi_funcs().expect("FFI functions");
    let err = generate_component(&shapes, &Config::default()).expect_err("the definition of Point is missing");
    assert!(err.to_string().contains("Point"), "{err}");
}
