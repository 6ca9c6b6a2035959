#!/usr/bin/env bash
# Fuzzes the monitor against its own OpenAPI document with schemathesis: builds the monitor,
# starts it on 127.0.0.1:0 in a fresh data dir, runs every schemathesis check against the
# document the server serves, stops the monitor (it must exit 0) and prints the counts.
# `usage` below is the help text.
set -euo pipefail
shopt -s inherit_errexit

usage() {
  cat <<'EOF'
Usage: scripts/fuzz-api.sh [-h|--help] [EXAMPLES]

Builds the monitor (debug), starts `stepflow-bench serve --addr 127.0.0.1:0` in a fresh
temporary data dir and runs schemathesis against http://127.0.0.1:PORT/api/openapi.json with
`--checks all`, every check schemathesis 4 has: no 5xx; every status, content type, header and
body as documented; schema-valid requests accepted and invalid ones refused with a 4xx;
undocumented methods refused with 405 and a correct Allow; a created resource readable. All of
its phases run: coverage (boundary values), fuzzing (random valid and invalid requests) and
stateful (chains of calls following the links it infers, such as create then get).

EXAMPLES (default 100) is schemathesis's --max-examples: test cases per operation and phase;
a run makes about 50 times as many requests in all (12 operations, 3 phases, plus the
stateful scenarios). 10 takes about 15 s, 1000 about 8 minutes on 2 cores.

Exits 0 when schemathesis found nothing and the monitor shut down cleanly with nothing on its
stderr about internal errors or panics; 1 when a check failed or the monitor misbehaved; 2 on
bad usage; 3 when the monitor or schemathesis could not run (or MAX_TIME ran out).

Environment:
  MAX_TIME          hard limit of the schemathesis run, seconds (default 900); past it the
                    run is stopped and the script exits 3
  DURATION          fuzz for this many seconds instead: fuzzing and stateful testing repeat
                    until it is spent (schemathesis --max-time); MAX_TIME still applies
  SEED              schemathesis --seed, to repeat a run (each run prints its seed)
  WORKERS           schemathesis --workers (default 1: with more, hypothesis 6.170 can fail
                    on its own with "AST constructor recursion depth mismatch")
  PROFILE           the monitor's storage profile (default optimized)
  OUT               where the reports go (default target/fuzz-api/<time>): JUnit, NDJSON
                    events, a pytest file reproducing any failure, the monitor's stderr
  FUZZ_VENV         the Python virtual environment for schemathesis (default
                    target/fuzz-api/venv); created, and the versions pinned in
                    scripts/fuzz-api-requirements.txt installed into it from PyPI, when it
                    does not hold them
  PYTHON            the Python that creates it (default python3.11, else python3)
  CARGO_TARGET_DIR  where the build goes (default: cargo's)
Relative paths are taken from the directory the script is started in.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
if [ $# -gt 1 ] || [[ ${1:-} == -* ]]; then usage >&2; exit 2; fi
examples=${1:-100}
if ! [[ $examples =~ ^[0-9]+$ ]] || [ "$examples" -lt 1 ] || [ "$examples" -gt 100000 ]; then
  echo "fuzz-api: EXAMPLES must be an integer from 1 to 100000, got '$examples'" >&2
  exit 2
fi
for var in MAX_TIME DURATION SEED WORKERS; do
  value=${!var:-}
  if [ -n "$value" ] && ! [[ $value =~ ^[0-9]+$ ]]; then
    echo "fuzz-api: $var must be a non-negative integer, got '$value'" >&2
    exit 2
  fi
done
max_time=${MAX_TIME:-900}
workers=${WORKERS:-1}
profile=${PROFILE:-optimized}

start_dir=$PWD
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$start_dir" "$1" ;; esac; }
cd "$(dirname "$0")/.."
target_dir=$(abs "${CARGO_TARGET_DIR:-target}")
out=$(abs "${OUT:-$target_dir/fuzz-api/$(date -u +%Y%m%dT%H%M%SZ)}")
venv=$(abs "${FUZZ_VENV:-$target_dir/fuzz-api/venv}")
mkdir -p "$out"

# schemathesis and its dependencies, every version pinned: a new release may add checks or
# change what they accept.
requirements=scripts/fuzz-api-requirements.txt
stamp="$venv/.requirements"

# schemathesis in its own virtual environment, installed again when the pins change.
st="$venv/bin/st"
if ! [ -x "$st" ] || ! cmp -s "$requirements" "$stamp"; then
  python=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
  [ -n "$python" ] || { echo "fuzz-api: no python3 found (set PYTHON)" >&2; exit 3; }
  echo "fuzz-api: installing schemathesis ($requirements) into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" || { echo "fuzz-api: $python cannot make a venv" >&2; exit 3; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    -r "$requirements" >&2 ||
    { echo "fuzz-api: installing schemathesis failed" >&2; exit 3; }
  cp "$requirements" "$stamp"
fi

cargo build --quiet --bin stepflow-bench
bin="$target_dir/debug/stepflow-bench"

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" --profile "$profile" \
  > "$work/addr" 2> "$out/monitor.stderr" &
pid=$!
for _ in $(seq 200); do grep -q listening "$work/addr" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/addr")
if [ -z "$url" ]; then
  echo "fuzz-api: the monitor did not start:" >&2
  cat "$out/monitor.stderr" >&2
  exit 3
fi
echo "fuzz-api: monitor ($profile) on $url, reports in $out" >&2

args=(--no-color run "$url/api/openapi.json" --checks all --max-examples "$examples" --workers "$workers"
  --report junit,ndjson,pytest --report-dir "$out")
[ -n "${DURATION:-}" ] && args+=(--max-time "$DURATION")
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
set +e
# Run from the report dir: schemathesis keeps a cache (.schemathesis/) in its working dir.
(cd "$out" && timeout --kill-after=10 "$max_time" "$st" "${args[@]}")
st_code=$?
set -e

# The monitor must still be up and must shut down cleanly (SIGTERM: exit 0).
code=0
if ! kill -0 "$pid" 2>/dev/null; then
  echo "fuzz-api: the monitor died during the run" >&2
  code=1
else
  kill -TERM "$pid"
  set +e
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  wait "$pid"
  monitor_code=$?
  set -e
  pid=
  if [ "$monitor_code" -ne 0 ]; then
    echo "fuzz-api: the monitor exited $monitor_code after SIGTERM" >&2
    code=1
  fi
fi
if grep -Eq 'internal error|panicked' "$out/monitor.stderr"; then
  echo "fuzz-api: the monitor reported faults:" >&2
  grep -E 'internal error|panicked' "$out/monitor.stderr" | head -20 >&2
  code=1
fi

# Counts from the NDJSON events: test cases, requests by status, checks by outcome.
"$venv/bin/python" - "$out" <<'PY' || true
import collections, glob, json, sys
files = sorted(glob.glob(sys.argv[1] + "/ndjson-*.ndjson"))
if not files:
    sys.exit("fuzz-api: no NDJSON report")
requests, statuses, checks, failed = 0, collections.Counter(), 0, collections.Counter()
for line in open(files[-1], encoding="utf-8"):
    event = json.loads(line)
    finished = event.get("ScenarioFinished")
    if not finished:
        continue
    recorder = finished.get("recorder") or {}
    for interaction in (recorder.get("interactions") or {}).values():
        requests += 1
        response = interaction.get("response")
        statuses[response["status_code"] if response else "no answer"] += 1
    for results in (recorder.get("checks") or {}).values():
        for check in results:
            checks += 1
            if check.get("status") != "success":
                failed[check["name"]] += 1
by_status = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str))
print(f"fuzz-api: {requests} requests ({by_status}); {checks} checks, "
      f"{sum(failed.values())} failed" + (f" ({dict(failed)})" if failed else ""))
PY

if [ "$st_code" -eq 124 ] || [ "$st_code" -eq 137 ]; then
  echo "fuzz-api: schemathesis did not finish within MAX_TIME=${max_time}s" >&2
  exit 3
fi
if [ "$st_code" -ne 0 ]; then
  echo "fuzz-api: schemathesis reported failures or errors (exit $st_code); see $out" >&2
  exit 1
fi
exit "$code"
