#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, Rust unit / integration / property tests,
# the Python tests against the EWS and Graph emulators, and schema validation of every EWS document
# and every Graph exchange the tests made. Installs what the tests need (Debian and pip packages) when it is missing.
#
#   scripts/test-all.sh            the CI suite (Rust, a 45 s fuzzing run of the EWS response parser,
#                                  Python bindings, .NET bindings on Mono, benchmark quick mode,
#                                  schema validation, docs)
#   PROPTEST_CASES=2000 scripts/test-all.sh   a longer property-test run (nightly mode)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)

step() { printf '\n=== %s\n' "$*"; }

# The suite builds each crate once; incremental-compilation caches would only add gigabytes of
# build output (a developer can still ask for them by setting CARGO_INCREMENTAL=1).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step "system packages"
need_apt=()
command -v xmllint >/dev/null || need_apt+=(libxml2-utils)
command -v python3 >/dev/null || need_apt+=(python3)
# Graph certificate credentials are tested with a throwaway key and certificate the openssl command makes.
command -v openssl >/dev/null || need_apt+=(openssl)
python3 -c 'import venv' 2>/dev/null || need_apt+=(python3-venv)
# The status page is tested in a real browser (headless), the systemd unit by systemd-analyze.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# Negotiate/Kerberos (the `kerberos` features): GSSAPI headers and libclang to build the binding, and
# an MIT KDC the tests run on loopback under target/kdc (scripts/kdc.sh; no system service).
for pkg in libkrb5-dev libclang-dev krb5-kdc krb5-admin-server krb5-user; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# The PostgreSQL state store is tested against a throwaway cluster of Debian's server binaries
# (scripts/postgres.sh runs it under target/postgres, never as a system service).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

step "python environment"
venv=$root/target/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt

step "formatting and lints"
# Every crate of the workspace: the bindings and the fuzz crate too; --locked: the lock file in the
# repository is what gets built. Clippy also holds the code to the declared rust-version (its
# incompatible_msrv lint).
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "a throwaway PostgreSQL server on loopback (target/postgres) for the PostgreSQL state store"
# The tests of the `postgres` feature read its URL from EXCHANGE_SYNC_TEST_POSTGRES and fail
# without it: the conformance suite, the state machine, the leases and the failover of workers.
# Servers the tests start are stopped however the run ends.
servers=()
stop_servers() { for s in "${servers[@]}"; do "$root/scripts/$s.sh" stop || true; done; }
trap stop_servers EXIT
eval "$(scripts/postgres.sh start)"
servers+=(postgres)

step "rust tests"
trace_dir=$root/target/ews-traces
rm -rf "$trace_dir" && mkdir -p "$trace_dir"
export EWS_TRACE_DIR=$trace_dir
graph_trace_dir=$root/target/graph-traces
rm -rf "$graph_trace_dir" && mkdir -p "$graph_trace_dir"
export GRAPH_TRACE_DIR=$graph_trace_dir
cargo build --locked --bins
# The Kerberos tests take their realm, keytabs and ticket cache from the KDC's environment.
scripts/kdc.sh start >/dev/null
servers+=(kdc)
# shellcheck disable=SC1091
. target/kdc/env
# The browser test of the status page must not skip itself for want of chromium; it leaves its
# screenshot in target/status-page.png (docs/status-page.png is one).
REQUIRE_BROWSER=1 cargo test --locked --all-features --no-fail-fast

step "the systemd unit (systemd-analyze verify, hardening score)"
scripts/check-systemd-unit.sh

step "fuzzing the EWS response parser briefly (libFuzzer on stable, ~1.5-4 min with its build)"
scripts/fuzz-smoke.sh

step "python tests against the emulators (exchangelib over EWS, msgraph-sdk over Graph, the Graph schema check)"
EWS_EMULATOR_BIN=$root/target/debug/ews-emulator GRAPH_EMULATOR_BIN=$root/target/debug/graph-emulator \
  "$venv/bin/python" -m pytest -q tests/python

step "Python bindings (pytest, mypy --strict)"
bindings/python/test.sh

step ".NET bindings (generator tests, C# suite on Mono)"
bindings/dotnet/test.sh

step "benchmarks still run (quick mode; the numbers are in docs/benchmarks.md)"
cargo run -q -p exchange-sync-bench -- --quick --python "$venv/bin/python"

step "EWS schema validation of every document the tests exchanged"
scripts/validate-traces.sh "$trace_dir"

step "Graph schema check of every request and answer the tests exchanged with the Graph emulator"
python3 scripts/validate-graph-traces.py "$graph_trace_dir"

step "documentation"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

elapsed=$(( $(date +%s) - started ))
step "all tests passed in $((elapsed / 60)) min $((elapsed % 60)) s (build output: $(du -sh target 2>/dev/null | cut -f1))"
