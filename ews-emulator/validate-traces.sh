#!/usr/bin/env bash
# Runs the emulator's tests with tracing on, then validates every dumped request, response and
# streaming body against the EWS schema (expected at ../shared/ews-schema beside the checkout).
#
#   ews-emulator/validate-traces.sh            # from the repository root
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$root"
EWS_TRACE_DIR=$dir cargo test -p ews-emulator --quiet
if python3 -c 'import exchangelib' 2>/dev/null; then
  cargo build -p ews-emulator --quiet
  EWS_TRACE_DIR=$dir python3 -m pytest -q tests/python/test_emulator_exchangelib.py
fi
"$root/scripts/validate-traces.sh" "$dir"
echo "documents by operation:"
ls "$dir" | sed -E 's/^emulator-//; s/-[0-9]+\.(xml|stream)$//' | sort | uniq -c
