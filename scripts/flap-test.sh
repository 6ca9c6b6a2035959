#!/usr/bin/env bash
# Measures how often the gate flaps: N A/A comparisons of one release binary against itself,
# each of RUNS interleaved runs a side after a discarded warm-up pair (as scripts/ci-gate.sh
# runs them), at the scenario's limits; then one sensitivity check, optimized runs against
# --profile legacy runs, which must fail (exit 1). Ends with one tally line to paste into
# results/reference/. `usage` below is the help text.
set -euo pipefail
shopt -s inherit_errexit

usage() {
  cat <<'EOF'
Usage: scripts/flap-test.sh [-h|--help] [N]

Runs N (default 20) A/A comparisons of this working tree's release build against itself, RUNS
interleaved runs a side each after a discarded warm-up pair, and counts their outcomes: pass,
warn (exit 0), fail (exit 1), inconclusive (exit 3). A fail or an inconclusive A/A outcome is
a flap. Then RUNS optimized runs against RUNS legacy runs, which must fail. Prints a line per
comparison and a closing tally line. Exits 0 when the flap rate is under 5 % and the legacy
check failed as it must, 1 otherwise, 2 on bad usage or a run that cannot finish.

At the defaults (ci, 5 s + 1 s warm-up a run) a comparison takes about 1.5 minutes: 20 take
half an hour. Run it on a quiet machine; the runs table of each comparison shows how busy the
machine was with other work.

Environment:
  SCENARIO          scenario file or built-in name (default scenarios/ci.toml)
  RUNS              runs per side (default 5)
  DURATION          measured time of each run (default: the scenario's)
  SENSITIVITY=0     skip the legacy check
  OUT               keep every run's results and each comparison's summary here, one
                    directory per comparison (a pool for scripts/aa-resample.py)
  CARGO_TARGET_DIR  where the release build goes (default: cargo's)
Relative paths are taken from the directory the script is started in.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
if [ $# -gt 1 ] || [[ ${1:-} == -* ]]; then usage >&2; exit 2; fi
n=${1:-20}
runs=${RUNS:-5}
for v in "$n" "$runs"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "$v: expected a whole number, 1 or more" >&2; usage >&2; exit 2; }
done
caller=$PWD
absolute() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; }
[ -n "${CARGO_TARGET_DIR:-}" ] && export CARGO_TARGET_DIR=$(absolute "$CARGO_TARGET_DIR")
[ -n "${OUT:-}" ] && OUT=$(absolute "$OUT")
scenario=${SCENARIO:-scenarios/ci.toml}
[ -f "$scenario" ] && scenario=$(realpath "$scenario")
cd "$(dirname "$0")/.."

# The binary cargo reports having built, wherever the target dir is.
bin=$(cargo build --release --quiet --bin stepflow-bench --message-format=json-render-diagnostics |
      sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1) || bin=
[ -n "$bin" ] || { echo "the release build failed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${OUT:-$work}
mkdir -p "$out"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)

run() { # results-file [extra args...]
  local file=$1; shift
  local args=(run "$scenario" --no-progress --format json --out "$file" --keep-data "$@")
  [ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
  # Data dirs are kept until the end, as scripts/ci-gate.sh does: deleting them between runs
  # slows the next runs' inode allocation on ext4 (results/reference/write-tail.md).
  mkdir -p "$work/data"
  [ "${TMPDIR:-}" = "$work/data" ] || export TMPDIR="$work/data"
  # Exit 1 (a target missed, writes lost) is for compare to judge; anything else is a run
  # that could not finish, and the measurement stops.
  "$bin" "${args[@]}" > /dev/null 2> "${file%.json}.log" || [ $? -le 1 ] || {
    echo "run $file could not finish:" >&2; cat "${file%.json}.log" >&2; exit 2;
  }
}

# One comparison of RUNS runs a side in dir $1, the candidate side run with extra args $2...;
# writes "CODE<tab>VERDICT LINE<tab>BUSY" to $1/result (BUSY: 1 when a run ran on a busy
# machine). Called in this shell, not a subshell, so that a broken run stops the script.
comparison() {
  local dir=$1; shift
  mkdir -p "$dir"
  run "$dir/warm-a.json"; run "$dir/warm-b.json" "$@"
  for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then run "$dir/a$i.json"; run "$dir/b$i.json" "$@"
    else run "$dir/b$i.json" "$@"; run "$dir/a$i.json"; fi
  done
  local a=() b=() code
  for i in $(seq 1 "$runs"); do a+=("$dir/a$i.json"); b+=("$dir/b$i.json"); done
  set +e
  "$bin" compare --baseline "${a[@]}" --candidate "${b[@]}" --scenario "$scenario" \
    --format markdown > "$dir/summary.md"
  code=$?
  set -e
  [ "$code" -eq 2 ] && { echo "compare refused the runs:" >&2; cat "$dir/summary.md" >&2; exit 2; }
  local busy=0
  grep -q "the machine was busy with other work" "$dir/summary.md" && busy=1
  printf '%s\t%s\t%s\n' "$code" "$(head -n 1 "$dir/summary.md")" "$busy" > "$dir/result"
}

declare -A tally=([pass]=0 [warn]=0 [fail]=0 [inconclusive]=0)
busy_runs=0 busy_flaps=0
for c in $(seq 1 "$n"); do
  dir=$(printf '%s/aa-%02d' "$out" "$c")
  comparison "$dir"
  IFS=$'\t' read -r code verdict busy < "$dir/result"
  case $code in
    0) if [[ $verdict == *"PASS with warnings"* ]]; then kind=warn; else kind=pass; fi ;;
    1) kind=fail ;;
    *) kind=inconclusive ;;
  esac
  tally[$kind]=$(( tally[$kind] + 1 ))
  flap=0
  if [ "$kind" = fail ] || [ "$kind" = inconclusive ]; then flap=1; fi
  mark=
  if [ "$busy" = 1 ]; then
    mark=" [busy machine]"; busy_runs=$((busy_runs + 1)); busy_flaps=$((busy_flaps + flap))
  fi
  echo "comparison $c: exit $code$mark  $verdict"
done

flaps=$(( tally[fail] + tally[inconclusive] ))
rate=$(awk -v f="$flaps" -v n="$n" 'BEGIN { printf "%.1f", 100 * f / n }')
ok=1
awk -v f="$flaps" -v n="$n" 'BEGIN { exit !(f / n < 0.05) }' || ok=0
sensitivity="skipped"
if [ "${SENSITIVITY:-1}" != 0 ]; then
  comparison "$out/legacy" --profile legacy
  IFS=$'\t' read -r code verdict _ < "$out/legacy/result"
  echo "optimized vs legacy: exit $code  $verdict"
  sensitivity="$runs optimized vs $runs legacy exit $code (must be 1)"
  [ "$code" -eq 1 ] || ok=0
fi
echo "flap-test $(date -u +%Y-%m-%d) $commit: $n A/A comparisons of $runs vs $runs runs of" \
  "$(basename "$scenario")${DURATION:+ at $DURATION}: pass ${tally[pass]} · warn ${tally[warn]} ·" \
  "fail ${tally[fail]} · inconclusive ${tally[inconclusive]}; flap rate $flaps/$n = $rate %" \
  "(target < 5 %); busy machine in $busy_runs comparison(s), $busy_flaps of them flaps;" \
  "legacy check: $sensitivity"
[ "$ok" = 1 ]
