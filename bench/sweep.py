"""Sweep speed-up: an 8-point `mlresearch sweep --jobs 2` against a serial loop of plain papermill calls.

The grid is lr in {3e-3, 1e-3} x seed in {0, 1, 2, 3} on research/templates/train.ipynb (the digits CNN, --epochs
epochs), in a scratch project. The serial loop runs papermill once per point with torch's default threads; the sweep
runs two deliver runs at a time on two warm worker processes, each run's kernel with cores // 2 threads, and writes full
run folders and the sweep's record. One untimed papermill run warms the caches. Last line: the ratio sweep / serial
(target: at most 0.60 on 2 cores).

    python bench/sweep.py [--epochs 10] [--jobs 2]
"""
import argparse, itertools, os, shutil, time

from _project import mlresearch, papermill, scratch_project

LRS, SEEDS = ("3e-3", "1e-3"), (0, 1, 2, 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    root, env = scratch_project()
    base = dict(model="cnn", epochs=a.epochs, patience=0)
    try:
        papermill(root, env, root/"warm.ipynb", base)
        t = time.perf_counter()
        for i, (lr, seed) in enumerate(itertools.product(LRS, SEEDS)):
            papermill(root, env, root/f"serial-{i}.ipynb", dict(base, lr=lr, seed=seed))
        serial = time.perf_counter() - t
        print(f"serial papermill loop, 8 runs: {serial:.1f} s")
        t = time.perf_counter()
        mlresearch(env, "sweep", "train", "--name", "bench", "--jobs", a.jobs, "-p", f"lr={','.join(LRS)}",
                   "-p", f"seed={','.join(map(str, SEEDS))}", *[x for k, v in base.items() for x in ("-p", f"{k}={v}")])
        swept = time.perf_counter() - t
        print(f"mlresearch sweep --jobs {a.jobs}, 8 runs: {swept:.1f} s ({os.cpu_count()} cores)")
    finally: shutil.rmtree(root, ignore_errors=True)
    print(f"sweep/serial time ratio: {swept / serial:.3f}")


if __name__ == "__main__": main()
