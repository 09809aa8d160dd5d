#!/usr/bin/env bash
# Checks the shipped systemd unit (exchange-sync/examples/systemd/exchange-sync.service): systemd
# accepts it (`systemd-analyze verify`, with the binary the build made), and its hardening keeps
# systemd's exposure score at 2.0 or below (`systemd-analyze security --offline`). The score is
# about 1.4 today; a change that drops a protection raises it and fails this check.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=exchange-sync/examples/systemd/exchange-sync.service
binary=${1:-$(pwd)/target/debug/exchange-sync}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is missing (Debian package systemd)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The unit names the installed binary; the check runs the one the build made.
sed "s#/usr/local/bin/exchange-sync#${binary}#g" "$unit" >"$tmp/exchange-sync.service"
systemd-analyze verify "$tmp/exchange-sync.service"
systemd-analyze security --offline=true --threshold=20 "$tmp/exchange-sync.service" | tail -n 1
echo "the systemd unit verifies and its exposure is within the threshold"
