#!/usr/bin/env bash
# Runs every Go fuzz target briefly (FUZZTIME, default 10s each) on top of its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${FUZZTIME:-10s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $f ($T)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$T" "$pkg"
  done
done
