#!/usr/bin/env bash
# Runs the data benchmark: `kiln data add` against `dvc add` + `dvc push`
# (DVC 3.67.1, in its own virtualenv bench/data/.venv-dvc made here, to a
# local folder remote) on the same machine and the same files, hashing
# throughput against b3sum and sha256sum, and profiling a 10M-row Parquet
# file against pandas' describe(). Writes bench/data/results.json and
# bench/data/results.md.
#
# Cases:
#   small    SMALL_FILES (10,000) files of 1–8 KiB of random content in
#            1,000 nested folders: add + push, the unchanged tree again
#            (Kiln's stat cache against DVC's state database), then one
#            file changed.
#   large    LARGE_FILES (10) files of LARGE_MB (512) MiB of random
#            content: add + push, then the unchanged set again. Scaled
#            down (with a note in the results) when the disk has less
#            than 4.5× the set free (the set, DVC's cache, DVC's remote
#            and Kiln's store). Deleted afterwards.
#   hashing  the large files hashed by Kiln's hashing alone
#            (bench/data/main.go: dataset.Hash, no stat cache, no
#            upload), b3sum (cargo install b3sum --locked into
#            bench/data/.tools) and sha256sum, page cache warm, best of 3
#            (sha256sum: one run, as slow as it is).
#   profile  PROFILE_ROWS (10,000,000) rows × 20 columns written by
#            dataset/profile/testdata/gen_bench.py (kept in
#            bench/data/out/ between runs): `kiln data profile` of an
#            added version (computed by the server from its artifact store)
#            against pandas read_parquet + describe(include="all").
#
# Kiln runs as `kiln server` (SQLite, file:// artifact store in the same
# temporary folder as DVC's remote) with the CLI on the same machine; `kiln
# data add` of a local folder hashes, asks the server which objects it
# lacks, uploads them and records the version. DVC runs with its defaults
# (`dvc init --no-scm`, cache type reflink,copy: copies on this file
# system). Before each timed step the page cache is warmed with the step's
# input files and `sync` flushes earlier writes, so no step pays for
# another's write-back.
#
# Environment: SMALL_FILES, LARGE_FILES, LARGE_MB, PROFILE_ROWS (set 0 to
# skip the profile case), SKIP_LARGE=1, MAX_LOAD (wait up to LOAD_WAIT
# seconds, default 300, for the 1-minute load average to fall below it;
# default 1.5), BENCH_TMP (where the files go, default /tmp), RESULTS
# (output path without extension, default bench/data/results).
set -euo pipefail
cd "$(dirname "$0")/../.."
SMALL_FILES=${SMALL_FILES:-10000}
LARGE_FILES=${LARGE_FILES:-10}
LARGE_MB=${LARGE_MB:-512}
PROFILE_ROWS=${PROFILE_ROWS:-10000000}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}
BENCH_TMP=${BENCH_TMP:-/tmp}
RESULTS=${RESULTS:-bench/data/results}
DVC_VERSION=3.67.1
B3SUM_VERSION=1.8.7
here=bench/data
mkdir -p "$here/out"
tmp=$(mktemp -d "$BENCH_TMP/kiln-data-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
: >"$tmp/notes.txt"
note() { echo "$1" >>"$tmp/notes.txt"; echo "note: $1" >&2; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
py=.venv/bin/python

# --- tools -----------------------------------------------------------------
make --no-print-directory build venv >/dev/null
go build -o "$tmp/databench" ./bench/data
bench="$tmp/databench"
kiln="$PWD/bin/kiln"
dvc="$PWD/$here/.venv-dvc/bin/dvc"
if [ "$("$dvc" --version 2>/dev/null)" != "$DVC_VERSION" ]; then
  echo "installing dvc==$DVC_VERSION into $here/.venv-dvc" >&2
  rm -rf "$here/.venv-dvc"
  python3 -m venv "$here/.venv-dvc"
  "$here/.venv-dvc/bin/pip" install -q --disable-pip-version-check "dvc==$DVC_VERSION"
fi
export DVC_NO_ANALYTICS=1
b3sum="$PWD/$here/.tools/bin/b3sum"
if [ ! -x "$b3sum" ]; then
  if command -v cargo >/dev/null; then
    echo "installing b3sum $B3SUM_VERSION with cargo into $here/.tools" >&2
    cargo install -q b3sum --version "$B3SUM_VERSION" --locked --root "$here/.tools"
  else
    # Without cargo: the BLAKE3 Rust crate through its PyPI bindings, all threads.
    "$here/.venv-dvc/bin/pip" install -q --disable-pip-version-check blake3==1.0.11
    cat >"$tmp/b3sum" <<EOF
#!$PWD/$here/.venv-dvc/bin/python
import sys, blake3
for p in sys.argv[1:]:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(p)
    print(h.hexdigest(), "", p)
EOF
    chmod +x "$tmp/b3sum"; b3sum="$tmp/b3sum"
    note "cargo is missing: b3sum is the blake3 PyPI package (the Rust crate, mmap, all threads)"
  fi
fi
b3sum_label=$("$b3sum" --version 2>/dev/null || echo "blake3 (PyPI)")

# --- wait for a quiet machine ----------------------------------------------
for _ in $(seq 1 $((LOAD_WAIT / 5))); do
  awk -v l="$(loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
  echo "load average $(loadavg) >= $MAX_LOAD: waiting" >&2; sleep 5
done
awk -v l="$(loadavg)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' ||
  note "the 1-minute load average was still $(loadavg) (≥ $MAX_LOAD) after waiting ${LOAD_WAIT}s: other work shared the cores"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
uptime_start=$(uptime)

# --- helpers -----------------------------------------------------------------
: >"$tmp/steps.jsonl"
warm() { find "$@" -type f -print0 | xargs -0 cat >/dev/null; }
in_dir() { local d=$1; shift; (cd "$d" && "$@"); }
# step CASE TOOL STEP CMD...: times CMD (after a sync), then the sync of
# what it left unwritten (sync_s: DVC does not fsync, Kiln's store does).
step() {
  local case=$1 tool=$2 name=$3; shift 3
  sync
  local lb t0 t1
  lb=$(loadavg); t0=$(date +%s.%N)
  if ! "$@" >"$tmp/step.out" 2>"$tmp/step.err"; then
    echo "step $case/$tool/$name failed: $*" >&2; tail -20 "$tmp/step.err" >&2; exit 1
  fi
  t1=$(date +%s.%N)
  sync
  local t2; t2=$(date +%s.%N)
  python3 - "$case" "$tool" "$name" "$t0" "$t1" "$lb" "$(loadavg)" "$tmp/step.out" "$t2" "$@" >>"$tmp/steps.jsonl" <<'PY'
import json, sys
case, tool, name, t0, t1, lb, la, out, t2 = sys.argv[1:10]
rec = {"case": case, "tool": tool, "step": name, "seconds": float(t1) - float(t0), "sync_s": float(t2) - float(t1),
       "load_before": lb, "load_after": la}
argv = sys.argv[10:]
if argv[:1] == ["in_dir"]:
    argv = argv[2:]
argv[0] = argv[0].rsplit("/", 1)[-1]
rec["note"] = "`" + " ".join(a.rsplit("/", 1)[-1] if a.startswith("/") else a for a in argv) + "`"
try:
    o = json.load(open(out))
except Exception:
    o = None
if isinstance(o, dict) and "hash" in o:
    h, tr, v = o["hash"], o.get("transfer") or {}, o.get("version") or {}
    rec["output"] = {"version": v.get("version"), "created": o.get("created"), "hash": h, "transfer": tr}
    rec["note"] = (f"{'created' if o.get('created') else 'unchanged'} v{v.get('version')}: hashed {h.get('HashedFiles')} files, "
                   f"{h.get('CachedFiles')} from the stat cache; uploaded {tr.get('Sent')} of {tr.get('Objects')} objects")
elif isinstance(o, dict) and "profile" in o:
    rec["note"] = f"profiled {o['profile']['rows']} rows × {len(o['profile']['columns'])} columns on the server"
print(json.dumps(rec))
PY
  awk -v a="$t0" -v b="$t1" -v c="$case" -v t="$tool" -v n="$name" 'BEGIN { printf "%-7s %-5s %-15s %8.2f s\n", c, t, n, b - a }' >&2
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_kiln NAME: a kiln server on SQLite + file:// under $tmp/NAME; sets KILN_URL, KILN_CACHE_DIR, kpid.
start_kiln() {
  local d="$tmp/$1" port
  mkdir -p "$d"
  port=$(free_port)
  setsid "$kiln" server --addr "127.0.0.1:$port" --db "sqlite://$d/kiln.db" --artifacts "file://$d/artifacts" --log-level warn >"$d/server.log" 2>&1 &
  kpid=$!; pids+=("$kpid")
  export KILN_URL="http://127.0.0.1:$port" KILN_CACHE_DIR="$d/cache"
  for _ in $(seq 1 100); do curl -sf "$KILN_URL/health" >/dev/null && return 0; sleep 0.1; done
  echo "kiln server did not start" >&2; cat "$d/server.log" >&2; exit 1
}
stop_kiln() { kill -TERM -- "-$kpid" 2>/dev/null || true; wait "$kpid" 2>/dev/null || true; }
# dvc_ws DIR: a DVC project without git at DIR with a folder remote beside it.
dvc_ws() {
  mkdir -p "$1"
  in_dir "$1" "$dvc" init -q --no-scm
  in_dir "$1" "$dvc" config core.analytics false
  in_dir "$1" "$dvc" remote add -q -d local "$1.remote"
}

# --- small files ---------------------------------------------------------------
echo "== small: $SMALL_FILES files" >&2
ws="$tmp/dvc-small"
dvc_ws "$ws"
"$bench" gen-small "$ws/data" "$SMALL_FILES" 1024 8192
start_kiln kiln-small
warm "$ws/data"
step small dvc add in_dir "$ws" "$dvc" add -q data
step small dvc push in_dir "$ws" "$dvc" push -q
warm "$ws/data"
step small kiln add "$kiln" data add small "$ws/data" -o json
step small dvc re-add in_dir "$ws" "$dvc" add -q data
step small dvc re-push in_dir "$ws" "$dvc" push -q
step small kiln re-add "$kiln" data add small "$ws/data" -o json
printf 'changed' >>"$ws/data/d00/e0/f00000.bin"
step small dvc add-1-changed in_dir "$ws" "$dvc" add -q data
step small dvc push-1-changed in_dir "$ws" "$dvc" push -q
step small kiln add-1-changed "$kiln" data add small "$ws/data" -o json
stop_kiln
small_mb=$(du -sm "$ws/data" | cut -f1)
rm -rf "$ws" "$ws.remote" "$tmp/kiln-small"

# --- large files and hashing ---------------------------------------------------------
if [ "${SKIP_LARGE:-}" != 1 ]; then
  free_mb=$(( $(df -Pk "$tmp" | awk 'NR==2 {print $4}') / 1024 ))
  need_mb=$(( LARGE_FILES * LARGE_MB * 9 / 2 ))
  if [ "$free_mb" -lt "$need_mb" ]; then
    LARGE_MB=$(( free_mb * 2 / 9 / LARGE_FILES ))
    note "only $free_mb MB free on $(df -P "$tmp" | awk 'NR==2 {print $6}'): the large set is scaled down to $LARGE_FILES × $LARGE_MB MiB"
  fi
  echo "== large: $LARGE_FILES × $LARGE_MB MiB" >&2
  ws="$tmp/dvc-large"
  dvc_ws "$ws"
  "$bench" gen-large "$ws/data" "$LARGE_FILES" $((LARGE_MB << 20))
  sync

  # Hashing throughput, page cache warm, best of 3.
  warm "$ws/data"
  best() { sort -n | head -1; }
  time_of() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }
  k_t=$(for _ in 1 2 3; do "$bench" hash -digests "$tmp/kiln.digests" "$ws/data" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])'; done | best)
  b_t=$(for _ in 1 2 3; do (cd "$ws/data" && time_of "$b3sum" part-*); done | best)
  (cd "$ws/data" && "$b3sum" part-*) | sort -k2 >"$tmp/b3.digests"
  s_t=$(cd "$ws/data" && time_of sh -c "ls part-* | xargs -P $(nproc) -n 1 sha256sum")
  match=false; cmp -s <(sort -k2 "$tmp/kiln.digests") "$tmp/b3.digests" && match=true
  bytes=$(( LARGE_FILES * (LARGE_MB << 20) ))
  python3 - "$k_t" "$b_t" "$s_t" "$bytes" "$LARGE_FILES" "$match" "$(nproc)" >"$tmp/hash.json" <<'PY'
import json, sys
k, b, s, n, files, match, cpus = sys.argv[1:]
n = int(n)
res = {}
for key, label, secs in (("kiln", f"Kiln (dataset.Hash, BLAKE3, {cpus} workers)", k), ("b3sum", f"b3sum (BLAKE3, mmap, {cpus} threads)", b),
                         ("sha256sum", f"sha256sum ({cpus} processes, one file each)", s)):
    secs = float(secs)
    res[key] = {"label": label, "seconds": secs, "mb_per_s": n / 1e6 / secs}
print(json.dumps({"files": int(files), "bytes": n, "reps": 3, "results": res, "digests_match_b3sum": match == "true"}))
PY
  echo "hashing: kiln ${k_t}s b3sum ${b_t}s sha256sum ${s_t}s (digests match b3sum: $match)" >&2

  start_kiln kiln-large
  warm "$ws/data"
  step large dvc add in_dir "$ws" "$dvc" add -q data
  step large dvc push in_dir "$ws" "$dvc" push -q
  warm "$ws/data"
  step large kiln add "$kiln" data add large "$ws/data" -o json
  step large dvc re-add in_dir "$ws" "$dvc" add -q data
  step large dvc re-push in_dir "$ws" "$dvc" push -q
  step large kiln re-add "$kiln" data add large "$ws/data" -o json
  stop_kiln
  rm -rf "$ws" "$ws.remote" "$tmp/kiln-large"
fi
large_label="$LARGE_FILES × $LARGE_MB MiB"

# --- profiling ---------------------------------------------------------------------
if [ "$PROFILE_ROWS" != 0 ]; then
  pfile="$here/out/profile-$PROFILE_ROWS.parquet"
  if [ ! -f "$pfile" ]; then
    echo "== writing $pfile" >&2
    "$py" dataset/profile/testdata/gen_bench.py "$PROFILE_ROWS" "$pfile.tmp" >/dev/null
    mv "$pfile.tmp" "$pfile"
  fi
  echo "== profile: $PROFILE_ROWS rows" >&2
  start_kiln kiln-profile
  warm "$pfile"
  step profile kiln add "$kiln" data add prof "$pfile" -o json
  step profile kiln profile "$kiln" data profile prof -o json
  cp "$tmp/step.out" "$tmp/kiln-profile-out.json"
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$kpid/status")
  stop_kiln
  warm "$pfile"
  sync
  "$py" "$here/pandas_describe.py" "$pfile" >"$tmp/pandas.json"
  python3 - "$tmp/steps.jsonl" "$tmp/kiln-profile-out.json" "$hwm" >"$tmp/kiln-profile.json" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
t = {s["step"]: s["seconds"] for s in steps if s["case"] == "profile"}
p = json.load(open(sys.argv[2]))["profile"]
f3 = next(c for c in p["columns"] if c["field"]["name"] == "f3")
print(json.dumps({"add_s": t["add"], "profile_s": t["profile"], "rows": p["rows"], "server_peak_rss_mb": int(sys.argv[3]) / 1024,
                  "check": {"f3_mean": f3["mean"], "f3_count": f3["count"]}}))
PY
  profile_mb=$(du -m "$pfile" | cut -f1)
else
  profile_mb=0
fi

# --- report --------------------------------------------------------------------------
export M_DATE M_MACHINE M_LOAD_START M_LOAD_END M_UPTIME_START M_UPTIME_END M_KILN M_B3SUM M_SHA M_SMALL M_SMALL_MB M_LARGE M_ROWS M_PROFILE_MB
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
M_MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(df -PT "$tmp" | awk 'NR==2 {print $2}') file system"
M_LOAD_START=$load_start M_LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
M_UPTIME_START=$uptime_start M_UPTIME_END=$(uptime)
M_KILN=$("$kiln" version 2>/dev/null | sed -n 1p) M_B3SUM=$b3sum_label M_SHA=$(sha256sum --version | sed -n 1p)
M_SMALL=$SMALL_FILES M_SMALL_MB=$small_mb M_LARGE=$large_label M_ROWS=$PROFILE_ROWS M_PROFILE_MB=$profile_mb
python3 - "$tmp/notes.txt" "$DVC_VERSION" >"$tmp/meta.json" <<'PY'
import json, os, sys
e = os.environ
print(json.dumps({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "load_start": e["M_LOAD_START"], "load_end": e["M_LOAD_END"],
    "uptime_start": e["M_UPTIME_START"].strip(), "uptime_end": e["M_UPTIME_END"].strip(),
    "dvc": sys.argv[2], "kiln": e["M_KILN"], "b3sum": e["M_B3SUM"], "sha256sum": e["M_SHA"],
    "small_files": int(e["M_SMALL"]), "small_mb": int(e["M_SMALL_MB"]), "large_label": e["M_LARGE"],
    "profile_rows": int(e["M_ROWS"]), "profile_file_mb": float(e["M_PROFILE_MB"]),
    "notes": [l for l in open(sys.argv[1]).read().splitlines() if l],
}, indent=2))
PY
python3 "$here/report.py" "$tmp" "$RESULTS"
