"""Builds results/before-after.md from the JSON results that scripts/before-after.sh wrote."""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1])


def load(name, profile):
    return json.loads((d / f"{name}-{profile}.json").read_text())


def ms(us):
    return f"{us / 1000:.3f} ms"


def ratio(legacy, optimized, higher_is_better):
    if not legacy or not optimized:
        return "-"
    r = optimized / legacy if higher_is_better else legacy / optimized
    return f"{r:,.1f}×"


P = ("legacy", "optimized")
api = {p: load("api", p) for p in P}
stress = {p: load("stress", p) for p in P}
conc = {(n, p): load(f"concurrent{n}", p) for n in (20, 100, 1000) for p in P}
env = stress["optimized"]["environment"]

rows = []


def row(figure, before, after, leg, opt, r):
    rows.append(f"| {figure} | {before} | {after} | {leg} | {opt} | {r} |")


for op, label, after in [
    ("health", "GET /api/health, mean", "0.41 ms avg"),
    ("list_executions", "GET /api/executions?limit=10, mean", "1.33 ms avg"),
    ("get_execution", "GET /api/executions/{id}, mean", "—"),
]:
    l, o = (api[p]["operations"][op]["latency_us"]["mean"] for p in P)
    row(label, "10–50 ms", after, ms(l), ms(o), ratio(l, o, False))
for q, claimed in [("p50", "0.8"), ("p90", "1.2"), ("p95", "1.5"), ("p99", "2.0")]:
    l, o = (api[p]["totals"]["latency_us"][q] for p in P)
    row(f"API {q} (all three endpoints)", "—", f"{claimed} ms", ms(l), ms(o), ratio(l, o, False))
for n in (20, 100, 1000):
    cells = []
    for p in P:
        r = conc[(n, p)]
        created = r["extra"].get("created", 0)
        d = r["duration_s"]
        took = f"{d * 1000:.0f} ms" if d < 1 else f"{d:.2f} s"
        cells.append(f"{created} of {n} in {took} ({created / max(d, 1e-9):,.0f}/s)")
    claimed = {20: "20 of 20 in 1.26 s (15.9/s)", 100: "0 of 100", 1000: "—"}[n]
    rl, ro = (conc[(n, p)]["totals"]["throughput"] for p in P)
    row(f"concurrent creation, {n} at once", "15–20" if n == 20 else "—", claimed, cells[0], cells[1], ratio(rl, ro, True))
l, o = (stress[p]["totals"]["throughput"] for p in P)
cells = [
    f"{stress[p]['totals']['throughput']:,.0f} ops/s ({stress[p]['totals']['count']:,} ops, "
    f"{stress[p]['totals']['errors']} errors, lost writes {stress[p].get('integrity', {}).get('lost_writes', '?')})"
    for p in P
]
row(f"{stress['optimized']['duration_s']:.0f} s DB stress, ~60 % reads / 40 % writes", "100 ops/s", "808 ops/s (24,258 ops, 0 errors)", cells[0], cells[1], ratio(l, o, True))
l, o = (stress[p]["totals"]["latency_us"]["p99"] for p in P)
row("DB stress p99 (HTTP, end to end)", "—", "—", ms(l), ms(o), ratio(l, o, False))
for op, label, claimed in [
    ("insert", "DB INSERT (server-side, p50)", "1.2 ms"),
    ("point_select", "DB simple SELECT (p50)", "0.8 ms"),
    ("list", "DB list SELECT (p50)", "2.1 ms (complex SELECT)"),
    ("update", "DB UPDATE (p50)", "1.5 ms"),
    ("commit", "DB commit (p50)", "0.3 ms"),
]:
    l, o = (stress[p]["server"]["stats"]["db"][op]["p50_us"] for p in P)
    row(label, "—", claimed, ms(l), ms(o), ratio(l, o, False))
l, o = (stress[p]["server"]["rss_peak_bytes"] / 2**20 for p in P)
row("server memory (peak RSS until the stress load ended)", "~150 MB", "~200 MB", f"{l:.0f} MiB", f"{o:.0f} MiB", "—")

print(f"""# Before vs after

The write-up's claimed figures (a Python aiohttp + aiosqlite service, measured on a laptop)
beside ours: the bundled monitor's **legacy** profile (the write-up's "before": rollback
journal, `synchronous=FULL`, a connection per operation, a transaction per write) and its
**optimized** profile (WAL, group commit, reader pool), measured in one session by
`scripts/before-after.sh` with the generator and the server sharing the machine.
Ratio = how many times better optimized is than legacy.

Environment: {env['cpu']}, {env['cores']} cores, {env['os']}, stepflow-bench {env['version']}
(git {env.get('git') or 'unknown'}), {stress['optimized']['started_at'][:10]}.

| figure | write-up before | write-up after | ours, legacy | ours, optimized | ratio |
|---|---|---|---|---|---|
""" + "\n".join(rows) + """

Commands: `stepflow-bench stress --duration 30`, `stepflow-bench api` (5,000 requests per
endpoint, 1 worker, after 1 s warm-up), `stepflow-bench concurrent --concurrency N`, each with
`--profile legacy` and `--profile optimized`. The raw results are in `results/before-after/`.
DB op latencies are the server's own timings from `/performance/stats`, taken when the stress
load ended (its set-up and warm-up included, the integrity read-back not), as is the peak RSS.
""")
