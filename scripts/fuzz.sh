#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given -fuzztime each (a duration or Nx; default 3000x).
set -euo pipefail
t=${1:-3000x}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  # Targets behind a build tag (runtime/ort: -tags ort) run from their own make target.
  if grep -q '^//go:build' "$f"; then echo "skip $f (build tag; see its make target)"; continue; fi
  pkg="./$(dirname "${f#./}")"
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "fuzz $pkg $name ($t)"
    go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$t" >/tmp/kiln-fuzz.log 2>&1 || { cat /tmp/kiln-fuzz.log; exit 1; }
  done
done
