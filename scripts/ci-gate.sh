#!/usr/bin/env bash
# Regression gate: builds BASE_REF and CANDIDATE_REF (default: the working tree; skipped when
# both come from identical sources), runs the scenario interleaved (B A A B B A ...) with RUNS
# runs per side after one discarded warm-up run each, compares, prints the markdown summary
# (appended to $GITHUB_STEP_SUMMARY when set) and exits with compare's code. `usage` below is
# the help text; keep the two in step.
set -euo pipefail
shopt -s inherit_errexit

usage() {
  cat <<'EOF'
Usage: scripts/ci-gate.sh [-h|--help] BASE_REF [CANDIDATE_REF]

Builds BASE_REF and CANDIDATE_REF (default: the working tree), runs the scenario with both,
interleaved (B A A B ...), RUNS runs a side after one discarded warm-up run each, compares the
runs and exits with compare's code: 0 pass or warnings, 1 fail (a regression, lost writes, an
absolute target missed; also a candidate that does not build or a candidate run that cannot
finish), 2 bad input (bad arguments, a base that does not build, a baseline run that cannot
finish), 3 inconclusive. Exits 0 without running when both build from identical sources.

Environment:
  SCENARIO          a scenario file, or a built-in name as `stepflow-bench run` takes it
                    (api-latency, ci, concurrent, simulate, stress); default scenarios/ci.toml.
                    A name is read from the candidate's scenarios/ and both sides run that file.
  RUNS              runs per side (default 5)
  DURATION          measured time of each run, e.g. 2s (default: the scenario's)
  FORCE=1           run even when both build from identical sources
  OUT               directory for results, logs and the summary (default: a temporary one)
  CARGO_TARGET_DIR  where both builds go (default target/gate); CARGO_BUILD_TARGET_DIR too
Relative paths are taken from the directory the script is started in.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
if [ $# -lt 1 ] || [ $# -gt 2 ] || [[ $1 == -* ]] || [[ ${2:-} == -* ]]; then
  usage >&2
  exit 2
fi
base_ref=$1
cand_ref=${2:-}
runs=${RUNS:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "RUNS=$runs: expected a whole number of runs, 1 or more" >&2; exit 2; }

# Paths the caller gave are relative to where they called from, not to the repository root.
caller=$PWD
absolute() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; }
[ -n "${CARGO_TARGET_DIR:-}" ] && export CARGO_TARGET_DIR=$(absolute "$CARGO_TARGET_DIR")
[ -n "${CARGO_BUILD_TARGET_DIR:-}" ] && export CARGO_BUILD_TARGET_DIR=$(absolute "$CARGO_BUILD_TARGET_DIR")
[ -n "${OUT:-}" ] && OUT=$(absolute "$OUT")
scenario=${SCENARIO:-scenarios/ci.toml}
[ -f "$scenario" ] && scenario=$(realpath "$scenario")
cd "$(dirname "$0")/.."
# One target dir for both builds, unless the caller chose one: dependencies compile once.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -z "${CARGO_BUILD_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=$PWD/target/gate
fi

work=$(mktemp -d)
out=${OUT:-$work/results}
mkdir -p "$out"
cleanup() {
  for wt in "$work"/src-*; do [ -d "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT

# A scenario file, else a built-in name (as `run` reads it: "ci", "ci.toml", "scenarios/ci"),
# taken from the candidate's sources so that both sides run the very same file.
if [ ! -f "$scenario" ]; then
  name=${scenario#scenarios/}
  name=${name%.toml}
  if [ -z "$cand_ref" ]; then
    names=$(cd scenarios && ls -- *.toml | sed 's/\.toml$//')
  else
    names=$(git ls-tree --name-only "$cand_ref:scenarios" 2>/dev/null | sed -n 's/\.toml$//p') ||
      { echo "cannot read scenarios/ of $cand_ref" >&2; exit 2; }
  fi
  if ! grep -qxF -- "$name" <<<"$names"; then
    echo "SCENARIO=$scenario: no such file, and not a built-in scenario (those are:" \
      "$(echo $names | sed 's/ /, /g'))" >&2
    exit 2
  fi
  if [ -z "$cand_ref" ]; then
    scenario=$PWD/scenarios/$name.toml
  else
    scenario=$work/$name.toml
    git show "$cand_ref:scenarios/$name.toml" >"$scenario"
  fi
fi

# The binary cargo reports having built: right wherever the target dir is.
build() { # ref|"" name -> path of a copy of the built binary
  local ref=$1 name=$2 src bin
  if [ -z "$ref" ]; then
    src=$PWD
  else
    src=$work/src-$name
    git worktree add --detach --force "$src" "$ref" >/dev/null 2>&1 ||
      { echo "cannot check out $ref" >&2; exit 2; }
  fi
  echo "building $name (${ref:-working tree})" >&2
  bin=$(cd "$src" && cargo build --release --quiet --bin stepflow-bench \
          --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1) || bin=
  if [ -z "$bin" ]; then
    echo "$name (${ref:-working tree}) does not build" >&2
    if [ "$name" = candidate ]; then exit 1; else exit 2; fi
  fi
  cp "$bin" "$work/$name"
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
  local args=(run "$scenario" --no-progress --format json --out "$out/$2-$3.json" --keep-data)
  [ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
  # Every run keeps its bundled monitor's data dir until the gate ends: deleting one (tens of
  # thousands of step log files) makes ext4 slower to allocate inodes for a minute or more,
  # and the next runs paid for it, throughput falling 16k -> 11k ops/s over one comparison
  # (results/reference/write-tail.md). TMPDIR puts the kept dirs under $work.
  mkdir -p "$work/data"
  [ "${TMPDIR:-}" = "$work/data" ] || export TMPDIR="$work/data"
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
