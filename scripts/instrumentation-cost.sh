#!/usr/bin/env bash
# What the monitor's instrumentation costs (per-route request histograms and the
# once-a-second sampler behind /performance/alerts, /metrics and the dashboard):
# `stress --duration D` against one release binary served with and without
# `--no-instrumentation`, alternated A B B A ... so that the machine's drift hits both sides;
# then the dashboard's CPU cost: the server's CPU time over IDLE seconds with and without one
# headless Chromium viewer on /performance/dashboard, alternated the same way.
#
#   scripts/instrumentation-cost.sh [PAIRS=5] [DURATION=30s]  (env: PAIRS, DURATION, IDLE, OUT)
#
# Writes every run's results under $OUT (default results/instrumentation-cost/, ignored by
# git) and prints a markdown summary: medians, the ratio, the CPU model and the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-5}
DURATION=${DURATION:-30s}
IDLE=${IDLE:-30}
OUT=${OUT:-results/instrumentation-cost}
bin=${BIN:-target/release/stepflow-bench}
[ -n "${BIN:-}" ] || cargo build --release --quiet
mkdir -p "$OUT"
work=$(mktemp -d)
# Every run's data dir is kept until the end: deleting tens of thousands of log files makes
# ext4 slow for the next run (README, "Back-to-back runs on ext4").
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start() { # start NAME [serve flags...]: sets $url and $pid
  local name=$1; shift
  "$bin" serve --addr 127.0.0.1:0 --data-dir "$work/$name" "$@" > "$work/$name.addr" 2>"$work/$name.log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/$name.addr" 2>/dev/null && break; sleep 0.05; done
  url=$(sed 's/listening on //' "$work/$name.addr")
  [ -n "$url" ] || { echo "the monitor did not start:" >&2; cat "$work/$name.log" >&2; exit 3; }
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

run() { # run MODE INDEX
  local mode=$1 i=$2 flags=()
  [ "$mode" = off ] && flags=(--no-instrumentation)
  start "$mode-$i" "${flags[@]}"
  "$bin" stress --target "$url" --duration "$DURATION" --no-progress \
    --out "$OUT/$mode-$i.json" > /dev/null 2>"$work/$mode-$i.stress" || true
  stop
  echo "  $mode $i: $(python3 -c 'import json,sys
r = json.load(open(sys.argv[1])); t = r["totals"]
print("%.0f ops/s, p99 %.2f ms, errors %s, lost writes %s" % (t["throughput"],
      t["latency_us"]["p99"] / 1000, t["errors"], r.get("integrity", {}).get("lost_writes")))' "$OUT/$mode-$i.json")" >&2
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) -eq 1 ]; then run on "$i"; run off "$i"; else run off "$i"; run on "$i"; fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The dashboard's cost: server CPU seconds per second, idle, with and without one viewer.
viewer_cpu=()
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; } # utime + stime, clock ticks
# CPU seconds of every process in the browser's session (started with setsid).
session_cpu() { for p in $(ps -o pid= -s "$1"); do cpu_of "$p" 2>/dev/null || true; done | awk '{s+=$1} END {print s+0}'; }
dash() { # dash MODE INDEX -> "server_cpu_pct browser_cpu_pct"
  local mode=$1 i=$2 browser=""
  start "dash-$mode-$i"
  sleep 2
  if [ "$mode" = viewer ]; then
    setsid chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/chrome-$i" \
      --remote-debugging-port=0 --window-size=1400,1300 "$url/performance/dashboard" \
      > /dev/null 2>&1 &
    browser=$!
    sleep 3
  fi
  local s0 b0=0 s1 b1=0
  s0=$(cpu_of "$pid")
  [ -n "$browser" ] && b0=$(session_cpu "$browser")
  sleep "$IDLE"
  s1=$(cpu_of "$pid")
  [ -n "$browser" ] && b1=$(session_cpu "$browser")
  [ -n "$browser" ] && { kill -- -"$browser" 2>/dev/null || kill "$browser"; wait "$browser" 2>/dev/null || true; }
  stop
  python3 -c "import sys; s0,s1,b0,b1,d=map(float,sys.argv[1:]); print(f'{(s1-s0)/d*100:.2f} {(b1-b0)/d*100:.1f}')" "$s0" "$s1" "$b0" "$b1" "$IDLE"
}
if command -v chromium >/dev/null; then
  for i in 1 2 3; do
    viewer_cpu+=("none $(dash none "$i")" "viewer $(dash viewer "$i")")
    echo "  dashboard $i: ${viewer_cpu[-2]} / ${viewer_cpu[-1]}" >&2
  done
fi

python3 - "$OUT" "$PAIRS" "$DURATION" "$load_after" "${viewer_cpu[@]}" <<'EOF'
import json, statistics, sys
out, pairs, duration, load_after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
viewer = sys.argv[5:]
def fig(mode):
    tp, p99 = [], []
    for i in range(1, pairs + 1):
        r = json.load(open(f"{out}/{mode}-{i}.json"))
        tp.append(r["totals"]["throughput"]); p99.append(r["totals"]["latency_us"]["p99"] / 1000)
    return tp, p99
on, off = fig("on"), fig("off")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"CPU: {cpu}, {len([l for l in open('/proc/cpuinfo') if l.startswith('processor')])} cores; "
      f"load average after the stress runs: {load_after}\n")
print(f"| stress --duration {duration}, {pairs} runs a side, alternated | instrumented | --no-instrumentation | ratio |")
print("|---|---|---|---|")
mt_on, mt_off = statistics.median(on[0]), statistics.median(off[0])
mp_on, mp_off = statistics.median(on[1]), statistics.median(off[1])
print(f"| throughput, median ops/s | {mt_on:.0f} | {mt_off:.0f} | {mt_on/mt_off:.3f} ({(mt_on/mt_off-1)*100:+.1f} %) |")
print(f"| p99, median ms | {mp_on:.2f} | {mp_off:.2f} | {mp_on/mp_off:.3f} |")
print(f"| throughput, every run | {', '.join(f'{x:.0f}' for x in on[0])} | {', '.join(f'{x:.0f}' for x in off[0])} | |")
print(f"| p99 ms, every run | {', '.join(f'{x:.2f}' for x in on[1])} | {', '.join(f'{x:.2f}' for x in off[1])} | |")
pair = [a / b for a, b in zip(on[0], off[0])]
print(f"| throughput ratio per pair, median | {statistics.median(pair):.3f} | | |")
if viewer:
    rows = [v.split() for v in viewer]
    none = [float(r[1]) for r in rows if r[0] == "none"]
    view = [float(r[1]) for r in rows if r[0] == "viewer"]
    br = [float(r[2]) for r in rows if r[0] == "viewer"]
    print(f"\n| idle monitor, server CPU % of one core | no viewer | one dashboard viewer |")
    print("|---|---|---|")
    print(f"| median of {len(none)} | {statistics.median(none):.2f} | {statistics.median(view):.2f} |")
    print(f"| every run | {', '.join(map(str, none))} | {', '.join(map(str, view))} |")
    print(f"| the viewer's own Chromium, median CPU % | | {statistics.median(br):.1f} |")
EOF
