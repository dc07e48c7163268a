"""Peak memory of acquiring a CSV, preparing it and training an MLP on it for one epoch: 1 million rows against --factor times as many (4 by default).

Each size runs in a fresh Python process that imports torch and the package and does the whole job once on a tiny table
first (so that every module, torch's compiler stack included, is loaded); the figure is its peak resident memory (VmHWM)
above its resident memory after that. Then: `data acquire` in chunks, `streaming.prepare_stream` (three passes over the raw
file, the processed splits written to one file) and `Trainer.fit` for one epoch with a validation pass, reading the
training split a block of rows at a time. Both sizes take the streamed path (the size threshold is set to 0), as a table
larger than memory does. Each size is measured --repeats times and the median kept. Last line: the ratio of the two
medians (target: below 1.3).

    python bench/table_memory.py [--rows 1000000] [--factor 4] [--columns 8] [--repeats 3]
"""
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

from acquire_memory import write_csv
from mlresearch import testing

CHILD = """
import json, sys, time
from pathlib import Path
import torch
import mlresearch.data, mlresearch.streaming
from mlresearch.models import build_model
from mlresearch.training import Trainer, TrainConfig
def status_kb(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])
root, csv = Path(sys.argv[1]), sys.argv[2]
mlresearch.streaming.STREAM_CELLS = 0  # every table streamed, as one larger than memory is
def job(path, name):
    t0 = time.perf_counter()
    e = mlresearch.data.acquire(path, name=name, target="label", chunk_rows=100_000, root=root)
    p = mlresearch.streaming.prepare_stream(name, root=root)
    cfg = TrainConfig(epochs=1, batch_size=256, device="cpu", threads=1, progress=False, patience=0)
    tr = Trainer(build_model("mlp", in_features=p.n_features, out_features=len(p.classes)), cfg)
    tr.fit(p.X["train"], None, p.X["val"], None)
    return e, tr, time.perf_counter() - t0
(root/"warm.csv").write_text("x0,label\\n" + "".join(f"{i % 7},{i % 2}\\n" for i in range(64)))
job(root/"warm.csv", "warm")  # every module the job uses is imported
base = status_kb('VmRSS')
e, tr, seconds = job(csv, "big")
print(json.dumps(dict(base_mb=base / 1024, peak_mb=status_kb('VmHWM') / 1024, rows=e["rows"], seconds=seconds, val_loss=tr.history[-1]["val_loss"])))
"""


def measure(rows:int, columns:int, work:Path)->dict:
    root = testing.scratch_project(parent=work)
    csv = work/f"rows{rows}.csv"
    if not csv.exists(): write_csv(csv, rows, columns)
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(csv)], capture_output=True, text=True)
    if out.returncode: raise SystemExit(f"the measured process failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(r, above_mb=r["peak_mb"] - r["base_mb"], csv_mb=csv.stat().st_size / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work, medians = Path(d), []
        for rows in (a.rows, a.rows * a.factor):
            runs = [measure(rows, a.columns, work) for _ in range(a.repeats)]
            above = statistics.median(r["above_mb"] for r in runs)
            medians.append(above)
            print(f"{rows:>10,} rows ({runs[0]['csv_mb']:.0f} MB CSV): peak above imports {above:.1f} MB "
                  f"(runs: {', '.join(format(r['above_mb'], '.1f') for r in runs)}; after imports {runs[0]['base_mb']:.0f} MB; "
                  f"acquire + prepare + 1 epoch {statistics.median(r['seconds'] for r in runs):.0f} s)", flush=True)
    print(f"peak memory ratio {a.factor}x rows / 1x rows: {medians[1] / medians[0]:.3f}")


if __name__ == "__main__": main()
