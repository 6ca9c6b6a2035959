# Shared by the measurement scripts: a release build and the monitor on a free port.
# Source it after `cd` to the repository root; sets $bin and $work (removed on exit).
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet
bin=target/release/stepflow-bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# start_monitor PROFILE: starts `serve` on 127.0.0.1:0 in a fresh data dir; sets $url, $pid.
start_monitor() {
  rm -rf "$work/data"
  "$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" --profile "$1" > "$work/addr" 2>"$work/server.log" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/addr" 2>/dev/null && break; sleep 0.05; done
  url=$(sed 's/listening on //' "$work/addr")
  [ -n "$url" ] || { echo "the monitor did not start:" >&2; cat "$work/server.log" >&2; exit 3; }
}
