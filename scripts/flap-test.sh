#!/usr/bin/env bash
# Measures how often the gate flaps: N A/A comparisons of one binary against itself, each of
# RUNS interleaved runs per side (as scripts/ci-gate.sh runs them), at default limits.
# Usage: scripts/flap-test.sh [N]   Environment: SCENARIO (scenarios/ci.toml), RUNS (5), DURATION
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
runs=${RUNS:-5}
scenario=${SCENARIO:-scenarios/ci.toml}
cargo build --release --quiet
bin=target/release/stepflow-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  local args=(run "$scenario" --no-progress --format json --out "$1")
  [ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
  "$bin" "${args[@]}" > /dev/null 2>&1 || [ $? -le 1 ]
}
declare -A outcomes=()
for c in $(seq 1 "$n"); do
  run "$work/warm-a.json"; run "$work/warm-b.json"
  for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then run "$work/a$i.json"; run "$work/b$i.json"
    else run "$work/b$i.json"; run "$work/a$i.json"; fi
  done
  set +e
  "$bin" compare --baseline "$work"/a*.json --candidate "$work"/b*.json \
    --scenario "$scenario" --format markdown > "$work/summary.md"
  code=$?
  set -e
  headline=$(head -n 1 "$work/summary.md")
  outcomes[$code]=$(( ${outcomes[$code]:-0} + 1 ))
  echo "comparison $c: exit $code  $headline"
done
echo "A/A comparisons: $n; by exit code (0 pass/warn, 1 regressed, 3 inconclusive):"
for k in "${!outcomes[@]}"; do echo "  exit $k: ${outcomes[$k]}"; done
