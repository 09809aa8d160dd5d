#!/usr/bin/env bash
# A short coverage-guided fuzzing run of the EWS response parser (exchange-sync-ews/fuzz, target
# parse_response) on the stable toolchain: libFuzzer (from the libfuzzer-sys crate) drives the
# target, built with the same SanitizerCoverage flags `cargo fuzz` uses without a sanitizer (all
# stable -C options), so neither nightly nor cargo-fuzz is needed. The run is seeded with the
# response fixtures of the parser tests and capped in memory; a panic, an input over the memory
# cap or a slow input fails it and leaves the input under target/fuzz-artifacts.
#
#   scripts/fuzz-smoke.sh                  45 seconds of fuzzing (FUZZ_SECONDS to change)
#   cargo +nightly fuzz run parse_response  the same target for long runs, from exchange-sync-ews/
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-45}
corpus=$root/target/fuzz-corpus/parse_response
artifacts=$root/target/fuzz-artifacts/parse_response
mkdir -p "$corpus" "$artifacts"
cp exchange-sync-ews/tests/fixtures/* "$corpus"/

flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cdebug-assertions --cfg fuzzing"
# A debug build without debug info: it builds in a fraction of the release time, which matters
# more for a run this short than executions per second. Its own target dir, since the flags differ;
# an explicit --target keeps the instrumentation out of build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="$flags" CARGO_PROFILE_DEV_DEBUG=0 cargo build -q --target "$host" \
  --locked -p exchange-sync-ews-fuzz --bin parse_response --target-dir "$root/target/fuzz"
"$root/target/fuzz/$host/debug/parse_response" "$corpus" \
  -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -max_len=65536 -timeout=10 \
  -artifact_prefix="$artifacts/" -print_final_stats=1
