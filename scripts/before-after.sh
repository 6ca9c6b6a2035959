#!/usr/bin/env bash
# Runs stress, api and concurrent against the bundled monitor with --profile legacy and
# --profile optimized, and writes results/before-after.md: the write-up's claimed figures
# beside ours, with ratios. Usage: scripts/before-after.sh [STRESS_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
cargo build --release --quiet
bin=target/release/stepflow-bench
dir=results/before-after
mkdir -p "$dir"
for profile in legacy optimized; do
  echo "== $profile ==" >&2
  # Exit code 1 (a target missed) is expected for legacy; anything else stops the script.
  run() { "$bin" "$@" --profile "$profile" --no-progress --format json > /dev/null || [ $? -eq 1 ]; }
  run stress --duration "$secs" --out "$dir/stress-$profile.json"
  run api --out "$dir/api-$profile.json"
  for n in 20 100 1000; do
    run concurrent --concurrency "$n" --out "$dir/concurrent$n-$profile.json"
  done
done
python3 scripts/before_after_table.py "$dir" > results/before-after.md
echo "wrote results/before-after.md" >&2
