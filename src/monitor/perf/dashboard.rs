//! `GET /performance/dashboard`: one self-contained page (inline script and style, charts
//! drawn on canvases, no request leaves the monitor) fed by `GET /performance/events`
//! (Server-Sent Events, one sample a second), with the alerts, the recommendations and
//! buttons for the optimize actions.

pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>StepFlow monitor · performance</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#0f1419; --card:#182028; --fg:#d8dee6; --dim:#8a96a3; --grid:#2a3540;
          --a:#4fb3ff; --b:#ff7a59; --c:#7bd88f; --d:#e5c07b; --e:#c678dd; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--fg);
         font:13px/1.4 "DejaVu Sans", system-ui, sans-serif; }
  header { display:flex; gap:18px; align-items:baseline; padding:10px 16px;
           border-bottom:1px solid var(--grid); flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; }
  .pill { padding:1px 8px; border-radius:9px; background:var(--grid); }
  .live { background:#1f6f3f; } .down { background:#8a2a2a; }
  main { display:grid; grid-template-columns:repeat(auto-fill, minmax(390px, 1fr));
         gap:10px; padding:10px 16px; }
  .card { background:var(--card); border-radius:6px; padding:8px 10px; }
  .card h2 { font-size:12px; margin:0 0 4px; color:var(--dim); font-weight:normal;
             display:flex; justify-content:space-between; }
  .card h2 b { color:var(--fg); font-weight:bold; }
  canvas { width:100%; height:150px; display:block; }
  .wide { grid-column:1 / -1; }
  table { border-collapse:collapse; width:100%; }
  td, th { text-align:left; padding:2px 6px; border-bottom:1px solid var(--grid);
           font-variant-numeric:tabular-nums; }
  th { color:var(--dim); font-weight:normal; }
  .lvl-info { color:var(--a); } .lvl-warning { color:var(--d); }
  .lvl-critical { color:var(--b); } .lvl-emergency { color:#ff4040; font-weight:bold; }
  button { background:#24405a; color:var(--fg); border:1px solid #35597a; border-radius:4px;
           padding:4px 12px; margin-right:6px; cursor:pointer; }
  button:disabled { opacity:.5; }
  pre { white-space:pre-wrap; margin:6px 0 0; color:var(--dim); max-height:120px; overflow:auto; }
  .legend span { margin-left:10px; } .legend i { display:inline-block; width:10px; height:3px;
           vertical-align:middle; margin-right:4px; }
</style>
</head>
<body>
<header>
  <h1>StepFlow monitor · performance</h1>
  <span id="status" class="pill down">connecting</span>
  <span>samples <b id="samples">0</b></span>
  <span>requests/s <b id="rps">–</b></span>
  <span>p99 <b id="p99">–</b></span>
  <span>CPU <b id="cpu">–</b></span>
  <span>RSS <b id="rss">–</b></span>
  <span>alerts <b id="alert-count">0</b></span>
  <span id="clock" style="color:var(--dim)"></span>
</header>
<main>
  <div class="card"><h2>requests/s <span class="legend" id="lg-rps"></span></h2><canvas id="c-rps"></canvas></div>
  <div class="card"><h2>latency, all routes (ms) <span class="legend" id="lg-lat"></span></h2><canvas id="c-lat"></canvas></div>
  <div class="card"><h2>DB operation mean latency (µs) <span class="legend" id="lg-db"></span></h2><canvas id="c-db"></canvas></div>
  <div class="card"><h2>group-commit batch size (writes) <span class="legend" id="lg-batch"></span></h2><canvas id="c-batch"></canvas></div>
  <div class="card"><h2>writer queue depth <span class="legend" id="lg-queue"></span></h2><canvas id="c-queue"></canvas></div>
  <div class="card"><h2>WAL size (MB) <span class="legend" id="lg-wal"></span></h2><canvas id="c-wal"></canvas></div>
  <div class="card"><h2>RSS (MB) <span class="legend" id="lg-rss"></span></h2><canvas id="c-rss"></canvas></div>
  <div class="card"><h2>CPU (% of one core) <span class="legend" id="lg-cpu"></span></h2><canvas id="c-cpu"></canvas></div>
  <div class="card wide"><h2>routes, last second</h2>
    <table><thead><tr><th>route</th><th>requests/s</th><th>p50 ms</th><th>p99 ms</th><th>5xx</th></tr></thead>
    <tbody id="routes"><tr><td colspan="5">waiting for the first sample</td></tr></tbody></table></div>
  <div class="card wide"><h2>alerts <span id="alerts-at"></span></h2>
    <table><thead><tr><th>level</th><th>rule</th><th>subject</th><th>value</th><th>threshold</th><th>since</th></tr></thead>
    <tbody id="alerts"><tr><td colspan="6">none</td></tr></tbody></table></div>
  <div class="card wide"><h2>recommendations <button id="refresh-recs">refresh</button></h2>
    <table><thead><tr><th>severity</th><th>what</th><th>fix</th></tr></thead>
    <tbody id="recs"><tr><td colspan="3">loading</td></tr></tbody></table></div>
  <div class="card wide"><h2>optimize (runs on the writer between group commits; service goes on)</h2>
    <button data-action="analyze">ANALYZE</button><button data-action="optimize">PRAGMA optimize</button>
    <button data-action="checkpoint">checkpoint WAL</button><button data-action="vacuum">VACUUM</button>
    <pre id="opt-result"></pre></div>
</main>
<script>
"use strict";
const KEEP = 120;
const samples = [];
let received = 0;
const $ = (id) => document.getElementById(id);
const colors = ["#4fb3ff", "#ff7a59", "#7bd88f", "#e5c07b", "#c678dd", "#56b6c2"];
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
const fmt = (v, d) => (v === null || v === undefined || !isFinite(v)) ? "–" :
  (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(d === undefined ? 1 : d));

function draw(id, series) {
  const c = $("c-" + id), dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * dpr) { c.width = w * dpr; c.height = h * dpr; }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 46, bottom = 16, top = 6, pw = w - left - 6, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (isFinite(v) && v > max) max = v;
  if (max <= 0) max = 1;
  const mag = Math.pow(10, Math.floor(Math.log10(max)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => max / s <= 4) || mag * 10;
  max = Math.ceil(max / step) * step;
  g.font = "10px DejaVu Sans, sans-serif"; g.fillStyle = "#8a96a3"; g.strokeStyle = "#2a3540";
  g.lineWidth = 1;
  for (let v = 0; v <= max + 1e-9; v += step) {
    const y = top + ph - (v / max) * ph;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
    g.fillText(fmt(v, step < 1 ? 2 : 0), 2, y + 3);
  }
  g.fillText("-" + KEEP + " s", left, h - 3); g.fillText("now", left + pw - 20, h - 3);
  const legend = [];
  series.forEach((s, k) => {
    const col = colors[k % colors.length];
    legend.push('<span><i style="background:' + col + '"></i>' + esc(s.name) + " " +
      fmt(s.values[s.values.length - 1]) + "</span>");
    g.strokeStyle = col; g.lineWidth = 1.6; g.beginPath();
    const n = s.values.length;
    s.values.forEach((v, i) => {
      const x = left + pw - ((n - 1 - i) / (KEEP - 1)) * pw;
      const y = top + ph - (Math.max(0, isFinite(v) ? v : 0) / max) * ph;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  });
  $("lg-" + id).innerHTML = legend.join("");
}

function col(f) { return samples.map(f); }

function render() {
  const last = samples[samples.length - 1];
  if (!last) return;
  $("samples").textContent = received;
  $("rps").textContent = fmt(last.requests_per_s, 0);
  $("p99").textContent = fmt(last.p99_us / 1000, 2) + " ms";
  $("cpu").textContent = fmt(last.cpu_pct, 0) + " %";
  $("rss").textContent = fmt(last.rss_bytes / 1e6, 0) + " MB";
  $("alert-count").textContent = last.alerts;
  $("clock").textContent = new Date(last.t_ms).toLocaleTimeString();
  draw("rps", [{name: "all", values: col((s) => s.requests_per_s)},
               {name: "5xx", values: col((s) => s.errors_5xx_per_s)}]);
  draw("lat", [{name: "p50", values: col((s) => s.p50_us / 1000)},
               {name: "p99", values: col((s) => s.p99_us / 1000)}]);
  const ops = ["insert", "point_select", "list", "update", "commit"];
  draw("db", ops.map((op) => ({name: op, values: col((s) => s.db[op] ? s.db[op].mean_us : 0)})));
  draw("batch", [{name: "mean", values: col((s) => s.batch_mean)},
                 {name: "commits/s", values: col((s) => s.batches_per_s / 100)}]);
  $("lg-batch").insertAdjacentHTML("beforeend", "<span>(commits/s ÷ 100)</span>");
  draw("queue", [{name: "depth", values: col((s) => s.writer_queue_depth)}]);
  draw("wal", [{name: "WAL", values: col((s) => s.wal_bytes / 1e6)}]);
  draw("rss", [{name: "RSS", values: col((s) => s.rss_bytes / 1e6)}]);
  draw("cpu", [{name: "CPU", values: col((s) => s.cpu_pct)}]);
  const rows = last.routes.slice().sort((a, b) => b.requests - a.requests).map((r) =>
    "<tr><td>" + esc(r.route) + "</td><td>" + r.requests + "</td><td>" + fmt(r.p50_us / 1000, 2) +
    "</td><td>" + fmt(r.p99_us / 1000, 2) + "</td><td>" + r.errors_5xx + "</td></tr>");
  $("routes").innerHTML = rows.join("") || '<tr><td colspan="5">no requests in the last second</td></tr>';
}

function push(s, live) {
  if (!s) return;
  samples.push(s); if (live) received++;
  while (samples.length > KEEP) samples.shift();
}

async function loadAlerts() {
  try {
    const r = await fetch("/performance/alerts"); const j = await r.json();
    $("alerts-at").textContent = "evaluated " + j.evaluated_at + " over " + j.window_s + " s";
    $("alerts").innerHTML = j.alerts.map((a) =>
      '<tr><td class="lvl-' + a.level + '">' + a.level + "</td><td>" + esc(a.rule) + "</td><td>" +
      esc(a.subject || "server") + "</td><td>" + fmt(a.value, 2) + " " + esc(a.unit) + "</td><td>" +
      a.threshold + "</td><td>" + esc(a.since) + "</td></tr>").join("") ||
      '<tr><td colspan="6">none firing</td></tr>';
  } catch (e) { $("alerts").innerHTML = '<tr><td colspan="6">' + esc(e) + "</td></tr>"; }
}

async function loadRecs() {
  try {
    const r = await fetch("/performance/recommendations"); const j = await r.json();
    $("recs").innerHTML = j.recommendations.map((x) =>
      "<tr><td>" + esc(x.severity) + "</td><td><b>" + esc(x.title) + "</b><br><small>" + esc(x.why) +
      "</small></td><td><code>" + esc(x.fix.sql || (x.fix.action ? "optimize: " + x.fix.action : JSON.stringify(x.fix))) +
      "</code></td></tr>").join("") || '<tr><td colspan="3">none: profile ' + esc(j.profile) + " is as recommended</td></tr>";
  } catch (e) { $("recs").innerHTML = '<tr><td colspan="3">' + esc(e) + "</td></tr>"; }
}

document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", async () => {
  b.disabled = true;
  try {
    const r = await fetch("/performance/optimize", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({actions: [b.dataset.action]})});
    const j = await r.json();
    $("opt-result").textContent = r.ok ? j.done.map((d) => d.action + ": " + (d.skipped ||
      ("held the writer " + d.writer_paused_ms.toFixed(1) + " ms, " + JSON.stringify(d.result)))).join("\n")
      : "HTTP " + r.status + ": " + j.error;
    loadRecs();
  } catch (e) { $("opt-result").textContent = String(e); }
  b.disabled = false;
}));
$("refresh-recs").addEventListener("click", loadRecs);

const es = new EventSource("/performance/events");
es.addEventListener("open", () => { $("status").textContent = "live"; $("status").className = "pill live"; });
es.addEventListener("error", () => { $("status").textContent = "disconnected"; $("status").className = "pill down"; });
es.addEventListener("history", (e) => { JSON.parse(e.data).forEach((s) => push(s, false)); render(); });
es.addEventListener("sample", (e) => {
  const s = JSON.parse(e.data); push(s, true); render();
  if (received % 2 === 0) loadAlerts();
});
loadAlerts(); loadRecs();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_references_nothing_outside_the_monitor() {
        let page = super::PAGE.to_ascii_lowercase();
        for outside in [
            "http://", "https://", "//cdn", "src=\"//", "@import", "url(",
        ] {
            assert!(!page.contains(outside), "the dashboard refers to {outside}");
        }
        // It uses only the monitor's own endpoints.
        for own in [
            "/performance/events",
            "/performance/alerts",
            "/performance/recommendations",
            "/performance/optimize",
        ] {
            assert!(super::PAGE.contains(own), "{own}");
        }
    }
}
