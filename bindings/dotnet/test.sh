#!/usr/bin/env bash
# Tests the .NET bindings end to end on Linux with Mono from Debian's packages:
#   1. installs what is missing (mono-mcs, mono-runtime, libmono-system-core4.0-cil),
#   2. runs the generator's Rust tests,
#   3. builds the fixture cdylib, the exchange-sync facade cdylib and the generator (and runs the
#      facade's Rust tests),
#   4. generates the C# bindings of both,
#   5. compiles them with `mcs -langversion:7.2` (warnings are errors), then with their C# suites,
#   6. compiles and runs the C# examples (the fixture's, and the quickstart against the emulator),
#   7. runs the fixture suite (round trips, exceptions, objects and disposal, callbacks, async,
#      leak check) and the service suite (sync scenarios against the emulator, exceptions,
#      progress, async, disposal, logging, leak check).
#
# Every Mono process must exit by itself: `timeout` only turns a hang into a failure.
# With EWS_TRACE_DIR set, every EWS document of the service suite and the quickstart is traced
# there (scripts/validate-traces.sh DIR validates them).
#
#   bindings/dotnet/test.sh             everything
#   bindings/dotnet/test.sh Async       only C# tests whose name contains "Async"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

step() { printf '\n=== %s (at %ss)\n' "$*" "$SECONDS"; }

step "system packages"
need=()
command -v mcs >/dev/null || need+=(mono-mcs)
command -v mono >/dev/null || need+=(mono-runtime)
[ -f /usr/lib/mono/4.5/System.Core.dll ] || need+=(libmono-system-core4.0-cil)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mcs --version
mono --version | head -1

step "generator unit tests"
cargo test -q -p uniffi-bindgen-csharp

step "facade unit tests"
cargo test -q -p exchange-sync-bindings --all-features
cargo test -q -p exchange-sync-dotnet --features testing

step "build the fixture and facade libraries and the generator"
cargo build -q -p dotnet-fixture -p exchange-sync-dotnet -p uniffi-bindgen-csharp --features exchange-sync-dotnet/testing
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lib_dir=$target_dir/debug
out=$target_dir/dotnet-tests
rm -rf "$out" && mkdir -p "$out/generated" "$out/service"

step "generate C#"
"$lib_dir/uniffi-bindgen-csharp" "$lib_dir/libdotnet_fixture.so" "$out/generated"
"$lib_dir/uniffi-bindgen-csharp" --config "$here/facade/csharp.toml" "$lib_dir/libexchange_sync_dotnet.so" "$out/service"

step "compile with mcs -langversion:7.2"
# As a library first, with -doc: every public member of the generated API must be documented.
mcs -langversion:7.2 -warnaserror -target:library -doc:"$out/DotnetFixture.xml" -out:"$out/DotnetFixture.dll" "$out"/generated/*.cs
mcs -langversion:7.2 -warnaserror -debug -out:"$out/FixtureTests.exe" "$out"/generated/*.cs "$here"/tests/*.cs

# The example sees only the public API, as a user of the package would.
mcs -langversion:7.2 -warnaserror -r:"$out/DotnetFixture.dll" -out:"$out/Example.exe" "$here"/examples/csharp/*.cs

# The same for the facade: the library with its documentation, the service suite, the quickstart.
mcs -langversion:7.2 -warnaserror -target:library -doc:"$out/ExchangeSync.xml" -out:"$out/ExchangeSync.dll" "$out"/service/*.cs
mcs -langversion:7.2 -warnaserror -debug -out:"$out/ServiceTests.exe" "$out"/service/*.cs "$here"/tests/Harness.cs "$here"/tests/service/*.cs
mcs -langversion:7.2 -warnaserror -r:"$out/ExchangeSync.dll" -out:"$out/Quickstart.exe" "$here"/examples/quickstart/*.cs
mcs -langversion:7.2 -warnaserror -r:"$out/ExchangeSync.dll" -out:"$out/ExitWithoutDispose.exe" "$here"/tests/exit/*.cs

export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# `timeout`: a process that does not exit (threads keeping Mono alive) fails instead of hanging.
run_mono() {
  local limit=$1; shift
  local rc=0
  timeout "$limit" mono --debug "$@" || rc=$?
  [ $rc -eq 124 ] && echo "mono $1 did not exit within $limit s" >&2
  return $rc
}

# No .NET SDK in Debian: the package projects are checked as well-formed XML only.
if command -v xmllint >/dev/null; then
  xmllint --noout "$here"/package/DotnetFixture.csproj "$here"/package/ExchangeSync/ExchangeSync.csproj "$here"/package/build/*.targets
fi

step "run the C# examples"
run_mono 300 "$out/Example.exe"
(cd "$out" && run_mono 300 "$out/Quickstart.exe")

step "a process leaving the service running and nothing disposed exits by itself"
(cd "$out" && run_mono 60 "$out/ExitWithoutDispose.exe")

status=0
step "run the fixture's C# tests"
run_mono 900 "$out/FixtureTests.exe" "$@" || status=$?
step "run the service's C# tests"
(cd "$out" && run_mono 900 "$out/ServiceTests.exe" "$@") || status=$?
echo "bindings/dotnet/test.sh took ${SECONDS}s"
exit $status
