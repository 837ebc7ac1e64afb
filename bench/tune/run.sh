#!/usr/bin/env bash
# Kiln's TPE and random samplers (package tune, called directly by
# main.go) against Optuna's at equal budget on Branin, Hartmann-6 and a
# shifted 5-D sphere of mixed parameters: the median best value over
# SEEDS seeds of TRIALS trials, and the time per trial. Optuna comes from
# bench/tune/.venv, made here. Prints a Markdown table; every study's row
# goes to bench/tune/results/rows.jsonl.
#
# Environment: SEEDS (default 20), TRIALS (60), PROBLEMS
# (branin,hartmann6,sphere5).
set -euo pipefail
cd "$(dirname "$0")/../.."
OPTUNA_VERSION=4.5.0
venv=bench/tune/.venv
if [ "$("$venv/bin/python" -c 'import optuna; print(optuna.__version__)' 2>/dev/null)" != "$OPTUNA_VERSION" ]; then
  echo "installing optuna==$OPTUNA_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "optuna==$OPTUNA_VERSION"
fi
seeds=${SEEDS:-20} trials=${TRIALS:-60} problems=${PROBLEMS:-branin,hartmann6,sphere5}
mkdir -p bench/tune/results
go run ./bench/tune -seeds "$seeds" -trials "$trials" -problems "$problems" > bench/tune/results/kiln.jsonl
exec "$venv/bin/python" bench/tune/bench.py --kiln bench/tune/results/kiln.jsonl --seeds "$seeds" --trials "$trials" \
  --problems "$problems" --rows bench/tune/results/rows.jsonl
