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
import argparse, statistics

from acquire_memory import compare

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    compare(CHILD, a.rows, a.factor, a.columns, a.repeats,
            more=lambda runs: f"; acquire + prepare + 1 epoch {statistics.median(r['seconds'] for r in runs):.0f} s")


if __name__ == "__main__": main()
