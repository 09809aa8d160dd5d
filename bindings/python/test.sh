#!/usr/bin/env bash
# Builds the Python package into a virtual environment and runs its tests and type checks:
# pytest against the EWS emulator (in process and as a subprocess), then mypy --strict on the
# examples and tests. Works on a fresh Debian machine with Rust and python3 (installs
# python3-venv when missing). Debug builds; `test.sh --wheel` also builds the release wheel and
# installs it into a fresh virtual environment to prove it imports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/target/python-venv

step() { printf '\n=== %s\n' "$*"; }

step "system packages"
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi

step "virtual environment ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-dev.txt"

step "build the emulator binary (for the subprocess tests) and the package (debug)"
cargo build -q -p ews-emulator --bin ews-emulator
VIRTUAL_ENV=$venv PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop -q -F extension-module,testing -m "$here/Cargo.toml"

step "pytest"
cd "$here"
EWS_EMULATOR_BIN=$root/target/debug/ews-emulator "$venv/bin/python" -m pytest -q tests

step "mypy --strict (examples and tests)"
"$venv/bin/mypy" --strict

step "the hand-written stub against the built module (mypy.stubtest)"
stubtest() {
  "$venv/bin/python" -m mypy.stubtest --ignore-disjoint-bases --allowlist "$here/stubtest-allowlist.txt" \
    exchange_sync._native
}
stubtest
# The check must be able to fail: a copy of the package whose stub misnames a function is refused.
mismatch=$(mktemp -d)
trap 'rm -rf "$mismatch"' EXIT
cp -r "$here/python/exchange_sync" "$mismatch/"
sed -i 's/^def set_log_level(/def set_log_levels(/' "$mismatch/exchange_sync/_native.pyi"
if (cd "$mismatch" && PYTHONPATH="$mismatch" stubtest >/dev/null 2>&1); then
  echo "stubtest accepted a stub that misnames set_log_level" >&2
  exit 1
fi

if [ "${1:-}" = "--wheel" ]; then
  step "release wheel, installed into a fresh virtual environment"
  wheels=$root/target/python-wheels
  rm -rf "$wheels" "$root/target/python-wheel-venv"
  "$venv/bin/maturin" build -q --release -m "$here/Cargo.toml" -o "$wheels"
  python3 -m venv "$root/target/python-wheel-venv"
  "$root/target/python-wheel-venv/bin/pip" install -q --disable-pip-version-check "$wheels"/exchange_sync-*.whl
  (cd / && "$root/target/python-wheel-venv/bin/python" -c \
    'import exchange_sync, exchange_sync.testing; print("imported exchange_sync", exchange_sync.__version__, "from", exchange_sync.__file__)')
fi

step "python bindings: all tests passed"
