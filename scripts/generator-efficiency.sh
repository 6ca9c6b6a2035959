#!/usr/bin/env bash
# Generator efficiency: GET /api/health at 64 connections against one `serve` process,
# alternating wrk and stepflow-bench (wrk, ours, wrk, ours, ...), and the median ratio.
# Usage: scripts/generator-efficiency.sh [ROUNDS] [SECONDS]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-10}
. scripts/lib.sh
start_monitor optimized
cat > "$work/health.toml" <<TOML
name = "health-c64"
description = "GET /api/health only, 64 connections"
duration = "${secs}s"
warmup = "1s"
[load]
model = "closed"
concurrency = 64
[[operations]]
name = "health"
method = "GET"
path = "/api/health"
TOML
ratios=()
echo "| round | wrk req/s | stepflow-bench req/s | ratio |"
echo "|--:|--:|--:|--:|"
for r in $(seq 1 "$rounds"); do
  w=$(wrk -t2 -c64 -d"${secs}s" "$url/api/health" | awk '/Requests\/sec/ {print $2}')
  "$bin" run "$work/health.toml" --target "$url" --no-progress --format json --out "$work/r$r.json" > /dev/null 2>&1
  o=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['throughput'])" "$work/r$r.json")
  ratio=$(python3 -c "print(f'{$o / $w:.3f}')")
  ratios+=("$ratio")
  printf '| %d | %.0f | %.0f | %s |\n' "$r" "$w" "$o" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo
echo "median ratio stepflow-bench / wrk: $median"
