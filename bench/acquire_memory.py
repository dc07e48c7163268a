"""Peak memory of `data acquire` on a CSV that grows: 1 million rows against --factor times as many (4 by default).

Each acquire runs in a fresh Python process that imports the package first; the figure is its peak resident memory
(VmHWM: ru_maxrss would carry the parent's peak across the exec) above its resident memory after the imports and a tiny acquire, so that what the interpreter and libraries take does not hide
what reading the table takes. A table read whole grows with its rows; read in chunks (`--chunk-rows`, the default
for files over 128 MB) it stays flat; --whole reads each file whole, for comparison. Each size is measured --repeats times and the median kept. Last line: the ratio
of the two medians (target: below 1.3).

This measures acquiring only; bench/table_memory.py measures acquiring, preparing and training for an epoch.

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


def measure(child:str, rows:int, columns:int, work:Path, *args)->dict:
    "Run `child` (Python code: argv the project root, the CSV, `args`) on a CSV of `rows` rows in a new scratch project; what it printed, with its peak above the imports"
    root = testing.scratch_project(parent=work)
    csv = work/f"rows{rows}.csv"
    if not csv.exists(): write_csv(csv, rows, columns)
    out = subprocess.run([sys.executable, "-c", child, str(root), str(csv), *map(str, args)], capture_output=True, text=True)
    if out.returncode: raise SystemExit(f"the measured process failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(r, above_mb=r["peak_mb"] - r["base_mb"], csv_mb=csv.stat().st_size / 1e6)


def compare(child:str, rows:int, factor:int, columns:int, repeats:int, *args, more=lambda runs: ""):
    "Measure `rows` and `factor` times as many, `repeats` times each; print each size's median peak above the imports, and their ratio last"
    with tempfile.TemporaryDirectory() as d:
        work, medians = Path(d), []
        for n in (rows, rows * factor):
            runs = [measure(child, n, columns, work, *args) for _ in range(repeats)]
            above = statistics.median(r["above_mb"] for r in runs)
            medians.append(above)
            print(f"{n:>10,} rows ({runs[0]['csv_mb']:.0f} MB CSV): peak above imports {above:.1f} MB "
                  f"(runs: {', '.join(format(r['above_mb'], '.1f') for r in runs)}; after imports {runs[0]['base_mb']:.0f} MB{more(runs)})", flush=True)
    print(f"peak memory ratio {factor}x rows / 1x rows: {medians[1] / medians[0]:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--whole", action="store_true", help="read each file whole, however large (what acquire does below 128 MB), for comparison")
    a = ap.parse_args()
    compare(CHILD, a.rows, a.factor, a.columns, a.repeats, 0 if a.whole else a.chunk_rows)


if __name__ == "__main__": main()
