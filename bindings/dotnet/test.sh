#!/usr/bin/env bash
# Tests the .NET bindings end to end on Linux with Mono from Debian's packages:
#   1. installs what is missing (mono-mcs, mono-runtime, libmono-system-core4.0-cil),
#   2. runs the generator's Rust tests,
#   3. builds the fixture cdylib and the generator,
#   4. generates the C# bindings of the fixture,
#   5. compiles them with `mcs -langversion:7.2` (warnings are errors), then with the C# suite,
#   6. compiles and runs the C# example,
#   7. runs the suite (round trips, exceptions, objects and disposal, callbacks, async, leak check).
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

step "build the fixture library and the generator"
cargo build -q -p dotnet-fixture -p uniffi-bindgen-csharp
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lib_dir=$target_dir/debug
out=$target_dir/dotnet-tests
rm -rf "$out" && mkdir -p "$out/generated"

step "generate C#"
"$lib_dir/uniffi-bindgen-csharp" "$lib_dir/libdotnet_fixture.so" "$out/generated"

step "compile with mcs -langversion:7.2"
# As a library first, with -doc: every public member of the generated API must be documented.
mcs -langversion:7.2 -warnaserror -target:library -doc:"$out/DotnetFixture.xml" -out:"$out/DotnetFixture.dll" "$out"/generated/*.cs
mcs -langversion:7.2 -warnaserror -debug -out:"$out/FixtureTests.exe" "$out"/generated/*.cs "$here"/tests/*.cs

# The example sees only the public API, as a user of the package would.
mcs -langversion:7.2 -warnaserror -r:"$out/DotnetFixture.dll" -out:"$out/Example.exe" "$here"/examples/csharp/*.cs

export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step "run the C# example"
# timeout: a process that does not exit (Rust threads keeping Mono alive) fails instead of hanging
timeout 300 mono --debug "$out/Example.exe"

step "run the C# tests"
status=0
timeout 900 mono --debug "$out/FixtureTests.exe" "$@" || status=$?
[ $status -eq 124 ] && echo "the C# tests did not exit within 900 s" >&2
echo "bindings/dotnet/test.sh took ${SECONDS}s"
exit $status
