"""Peak memory of `data acquire` on a CSV that grows: 1 million rows against --factor times as many (4 by default).

Each acquire runs in a fresh Python process that imports the package first; the figure is its peak resident memory
(VmHWM: ru_maxrss would carry the parent's peak across the exec) above its resident memory after the imports and a tiny acquire, so that what the interpreter and libraries take does not hide
what reading the table takes. A table read whole grows with its rows; read in chunks (`--chunk-rows`, the default
for files over 128 MB) it stays flat; --whole reads each file whole, for comparison. Each size is measured --repeats times and the median kept. Last line: the ratio
of the two medians (target: below 1.3).

This measures acquiring only: training on a table that large still loads it whole (streaming `prepare` is not built).

    python bench/acquire_memory.py [--rows 1000000] [--factor 4] [--columns 8] [--chunk-rows 100000] [--repeats 3] [--whole]
"""
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mlresearch import testing

CHILD = """
import json, sys
from pathlib import Path
import mlresearch.data, pyarrow.parquet
def status_kb(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])
root, csv, chunk = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) or None
if chunk is None: mlresearch.sources.STREAM_BYTES = float("inf")  # --whole: every file read whole, however large
(root/"warm.csv").write_text("x,label\\n1,0\\n2,1\\n")  # a tiny acquire first, whole and in chunks: every module acquire uses is imported
mlresearch.data.acquire(root/"warm.csv", name="warm", target="label", root=root)
mlresearch.data.acquire(root/"warm.csv", name="warm-chunks", target="label", chunk_rows=1, root=root)
base = status_kb('VmRSS')
e = mlresearch.data.acquire(csv, target="label", chunk_rows=chunk, root=root)
print(json.dumps(dict(base_mb=base / 1024, peak_mb=status_kb('VmHWM') / 1024, rows=e["rows"])))
"""


def write_csv(path:Path, rows:int, columns:int, seed:int=0):
    "A CSV of `rows` rows: `columns` float columns and an integer label, written 250,000 rows at a time"
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            df = pd.DataFrame(rng.normal(size=(n, columns)).round(4), columns=[f"x{i}" for i in range(columns)])
            df["label"] = rng.integers(0, 10, n)
            df.to_csv(f, index=False, header=start == 0)


def measure(rows:int, columns:int, chunk_rows:int, work:Path)->dict:
    root = testing.scratch_project(parent=work)
    csv = work/f"rows{rows}.csv"
    if not csv.exists(): write_csv(csv, rows, columns)
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(csv), str(chunk_rows)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(r, above_mb=r["peak_mb"] - r["base_mb"], csv_mb=csv.stat().st_size / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--whole", action="store_true", help="read each file whole, however large (what acquire does below 128 MB), for comparison")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work, medians = Path(d), []
        for rows in (a.rows, a.rows * a.factor):
            runs = [measure(rows, a.columns, 0 if a.whole else a.chunk_rows, work) for _ in range(a.repeats)]
            above = statistics.median(r["above_mb"] for r in runs)
            medians.append(above)
            print(f"{rows:>10,} rows ({runs[0]['csv_mb']:.0f} MB CSV): peak above imports {above:.1f} MB "
                  f"(runs: {', '.join(format(r['above_mb'], '.1f') for r in runs)}; after imports {runs[0]['base_mb']:.0f} MB)", flush=True)
    print(f"peak memory ratio {a.factor}x rows / 1x rows: {medians[1] / medians[0]:.3f}")


if __name__ == "__main__": main()
