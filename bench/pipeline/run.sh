#!/usr/bin/env bash
# Pipeline scheduling overhead on the local executor against `dvc repro`
# on the same DAGs (a chain of CHAIN trivial steps; a fan-out of 1 -> FANOUT
# -> 1), on this machine. DVC 3.67.1 comes from bench/data/.venv-dvc, made
# here as bench/data/run.sh makes it. Prints a Markdown table (bench.py
# says how each figure is computed).
#
# Environment: CHAIN (default 100), FANOUT (default 500), REPEAT (3),
# SKIP_DVC=1, SKIP_KILN=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
DVC_VERSION=3.67.1
venv=bench/data/.venv-dvc
make --no-print-directory build >/dev/null
if [ "$("$venv/bin/dvc" --version 2>/dev/null)" != "$DVC_VERSION" ]; then
  echo "installing dvc==$DVC_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "dvc==$DVC_VERSION"
fi
args=(--kiln "$PWD/bin/kiln" --dvc "$PWD/$venv/bin/dvc" --chain "${CHAIN:-100}" --fanout "${FANOUT:-500}" --repeat "${REPEAT:-3}")
[ "${SKIP_DVC:-}" = 1 ] && args+=(--skip-dvc)
[ "${SKIP_KILN:-}" = 1 ] && args+=(--skip-kiln)
exec python3 bench/pipeline/bench.py "${args[@]}"
