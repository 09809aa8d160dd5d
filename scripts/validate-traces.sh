#!/usr/bin/env bash
# Validates every EWS document traced into a directory (the EWS_TRACE_DIR of a test run) against
# the EWS schema: each *.xml as one envelope, each *.stream as a streaming body of several.
# The schema is expected at ../shared/ews-schema beside the checkout (override: EWS_SCHEMA_DIR).
#
#   scripts/validate-traces.sh DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
schema_dir=${EWS_SCHEMA_DIR:-$root/../shared/ews-schema}
dir=${1:?usage: scripts/validate-traces.sh DIR}
[ -x "$schema_dir/validate" ] || { echo "EWS schema not found at $schema_dir (set EWS_SCHEMA_DIR)" >&2; exit 2; }
shopt -s nullglob globstar
xml=("$dir"/**/*.xml)
streams=("$dir"/**/*.stream)
[ ${#xml[@]} -gt 0 ] || { echo "no EWS documents were traced in $dir: the tests did not talk to the emulator" >&2; exit 1; }
"$schema_dir/validate" "$dir"
for s in "${streams[@]}"; do "$schema_dir/validate" --stream "$s"; done
