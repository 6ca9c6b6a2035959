#!/usr/bin/env bash
# Regression gate: builds BASE_REF and CANDIDATE_REF (default: the working tree; skipped when
# both come from identical sources), runs the
# scenario interleaved (B A A B B A ...) with RUNS runs per side after one discarded warm-up
# run each, compares, prints the markdown summary (appended to $GITHUB_STEP_SUMMARY when
# set) and exits with compare's code: 0 pass/warnings, 1 regression, 2 bad input,
# 3 inconclusive.
#
# Usage: scripts/ci-gate.sh BASE_REF [CANDIDATE_REF]
# Environment: SCENARIO (default scenarios/ci.toml), RUNS (5), DURATION (the scenario's),
#   FORCE=1 (run even when both build from identical sources), OUT (results dir, default a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,12p "$0" >&2; exit 2; }
base_ref=$1
cand_ref=${2:-}
scenario=${SCENARIO:-scenarios/ci.toml}
runs=${RUNS:-5}
[ -f "$scenario" ] || { echo "scenario file $scenario not found" >&2; exit 2; }
scenario=$(realpath "$scenario")

work=$(mktemp -d)
out=${OUT:-$work/results}
mkdir -p "$out"
cleanup() {
  for wt in "$work"/src-*; do [ -d "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
# One target dir for both builds: dependencies compile once.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/gate}

build() { # ref|"" -> path of the built binary
  local ref=$1 name=$2 src
  if [ -z "$ref" ]; then
    src=$PWD
  else
    src=$work/src-$name
    git worktree add --detach --force "$src" "$ref" >/dev/null 2>&1 ||
      { echo "cannot check out $ref" >&2; exit 2; }
  fi
  echo "building $name (${ref:-working tree})" >&2
  (cd "$src" && cargo build --release --quiet --bin stepflow-bench) >&2
  cp "$CARGO_TARGET_DIR/release/stepflow-bench" "$work/$name"
  echo "$work/$name"
}
# Identical sources build identical programs. (The binaries themselves differ in the build
# paths embedded in their debug info, so comparing them would never say "identical".)
same=0
if [ -z "$cand_ref" ]; then
  git diff --quiet "$base_ref" -- . && [ -z "$(git ls-files --others --exclude-standard)" ] && same=1
elif [ "$(git rev-parse "$base_ref^{tree}")" = "$(git rev-parse "$cand_ref^{tree}")" ]; then
  same=1
fi
if [ "$same" = 1 ] && [ "${FORCE:-0}" != 1 ]; then
  echo "$base_ref and ${cand_ref:-the working tree} build from identical sources: nothing to compare" >&2
  exit 0
fi
base_bin=$(build "$base_ref" base)
cand_bin=$(build "$cand_ref" candidate)

run() { # binary label index
  local args=(run "$scenario" --no-progress --format json --out "$out/$2-$3.json")
  [ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
  # A run's own exit code (a target missed, writes lost) is judged by compare; a run that
  # could not finish stops the gate: a broken candidate fails it (1), a broken baseline
  # leaves nothing to compare with (2).
  "$1" "${args[@]}" > /dev/null 2> "$out/$2-$3.log" || [ $? -le 1 ] || {
    echo "$2 run $3 failed:" >&2; cat "$out/$2-$3.log" >&2
    if [ "$2" = candidate ]; then exit 1; else exit 2; fi
  }
}
echo "warm-up runs (discarded)" >&2
run "$base_bin" warmup base
run "$cand_bin" warmup candidate
for i in $(seq 1 "$runs"); do
  echo "pair $i of $runs" >&2
  if [ $((i % 2)) -eq 1 ]; then
    run "$base_bin" base "$i"; run "$cand_bin" candidate "$i"
  else
    run "$cand_bin" candidate "$i"; run "$base_bin" base "$i"
  fi
done

bases=(); cands=()
for i in $(seq 1 "$runs"); do bases+=("$out/base-$i.json"); cands+=("$out/candidate-$i.json"); done
set +e
"$cand_bin" compare --baseline "${bases[@]}" --candidate "${cands[@]}" --scenario "$scenario" \
  --format markdown --junit "$out/gate-junit.xml" > "$out/summary.md"
code=$?
set -e
cat "$out/summary.md"
[ -n "${GITHUB_STEP_SUMMARY:-}" ] && cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
exit $code
