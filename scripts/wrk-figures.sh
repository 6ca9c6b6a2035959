#!/usr/bin/env bash
# Measures the monitor with wrk (the issue's reference figures): health at 1 and 64
# connections, creates at 64 connections for both profiles, list?limit=10 at 1 connection
# with 100,000+ executions stored, and the server's RSS under each load.
# Usage: scripts/wrk-figures.sh [SECONDS]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. scripts/lib.sh
rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status; }
stop() { kill -TERM $pid; wait $pid || true; }
line() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }

echo "# The monitor under wrk"
echo
echo "\`scripts/wrk-figures.sh $secs\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
echo "$(date -u +%Y-%m-%d), wrk and the server sharing the machine; ${secs} s per load. Non-2xx"
echo "answers and socket errors reported by wrk are listed under each row."
echo
echo "| load | req/s | p50 | p99 | server peak RSS |"
echo "|---|--:|--:|--:|--:|"
run_wrk() { # label conns path [script]
  local label=$1 c=$2 path=$3 script=${4:-}
  local out
  out=$(wrk -t$(( c < 2 ? 1 : 2 )) -c"$c" -d"${secs}s" --latency ${script:+-s "$script"} "$url$path")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  line "$label" "$rps" "$p50" "$p99" "$(rss)"
  grep -E 'non-201|Non-2xx|Socket errors' <<<"$out" | sed 's/^/    /' >&2 || true
}

start_monitor optimized
run_wrk "GET /api/health, 1 connection" 1 /api/health
run_wrk "GET /api/health, 64 connections" 64 /api/health
run_wrk "POST /api/executions, 64 connections (optimized)" 64 /api/executions scripts/create.lua
stored=$(curl -s "$url/api/executions?limit=1" | sed 's/.*"total":\([0-9]*\).*/\1/')
run_wrk "GET /api/executions?limit=10, 1 connection, $stored stored" 1 "/api/executions?limit=10"
stop

start_monitor legacy
run_wrk "POST /api/executions, 64 connections (legacy)" 64 /api/executions scripts/create.lua
stop
