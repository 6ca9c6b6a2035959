#!/usr/bin/env python3
"""False-alarm rate of the gate, estimated by resampling a pool of A/A runs.

Every file in the pool is a results JSON of the same scenario from the same binary (e.g. made
with `stepflow-bench run ci --duration 2s --out pool/r-$i.json` in a loop), so any
"regressed" verdict between two disjoint random draws from it is a false alarm. Draws are not
interleaved, so compare judges them unpaired: a harsher test than scripts/ci-gate.sh's
interleaved runs.

Usage: scripts/aa-resample.py POOL_DIR RUNS_PER_SIDE [TRIALS] [BINARY]
Prints the exit codes of TRIALS comparisons and the rows that came out regressed.
"""
import collections
import glob
import json
import random
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pool = sorted(glob.glob(f"{sys.argv[1]}/*.json"))
    n = int(sys.argv[2])
    trials = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    binary = sys.argv[4] if len(sys.argv) > 4 else "target/release/stepflow-bench"
    if len(pool) < 2 * n:
        print(f"{len(pool)} runs in {sys.argv[1]}: need at least {2 * n}", file=sys.stderr)
        return 2
    rng = random.Random(1)
    codes = collections.Counter()
    regressed = collections.Counter()
    for _ in range(trials):
        pick = rng.sample(pool, 2 * n)
        out = subprocess.run(
            [binary, "compare", "--baseline", *pick[:n], "--candidate", *pick[n:],
             "--format", "json"],
            capture_output=True, text=True, check=False)
        codes[out.returncode] += 1
        if out.returncode == 1:
            result = json.loads(out.stdout[: out.stdout.rfind("}") + 1])
            for row in result["rows"]:
                if row["verdict"] == "regressed":
                    regressed[f"{row['operation']}.{row['metric']}"] += 1
    print(f"{n} vs {n} runs, {trials} draws from {len(pool)} A/A runs")
    names = {0: "pass/warn", 1: "fail", 2: "bad input", 3: "inconclusive"}
    for code, count in sorted(codes.items()):
        print(f"  exit {code} ({names.get(code, '?')}): {count}")
    for row, count in regressed.most_common(6):
        print(f"  regressed row {row}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
