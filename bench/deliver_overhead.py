"""Deliver overhead: `mlresearch deliver` against plain `papermill` on the same template and parameters.

Both execute research/templates/train.ipynb (the digits CNN, --epochs epochs) in a scratch project. Deliver also
resolves and writes params.toml, collects provenance (git, package versions, data hashes), checksums every file and
makes the run read-only; papermill just writes the executed notebook. One untimed run of each warms the caches; then
the two alternate and the medians are compared. Last line: the ratio deliver / papermill (target: at most 1.10).

    python bench/deliver_overhead.py [--epochs 10] [--repeats 3]
"""
import argparse, shutil, statistics, time

from _project import mlresearch, papermill, scratch_project


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    root, env = scratch_project()
    params = dict(model="cnn", epochs=a.epochs, patience=0)
    plain, deliver = [], []
    try:
        for i in range(a.repeats + 1):  # i = 0 warms up
            t = time.perf_counter(); papermill(root, env, root/f"plain-{i}.ipynb", params); tp = time.perf_counter() - t
            t = time.perf_counter(); mlresearch(env, "deliver", "train", "--name", f"bench-{i}", *[x for k, v in params.items() for x in ("-p", f"{k}={v}")])
            td = time.perf_counter() - t
            if i:
                plain.append(tp); deliver.append(td)
                print(f"repeat {i}: papermill {tp:6.2f} s   deliver {td:6.2f} s")
    finally: shutil.rmtree(root, ignore_errors=True)
    mp, md = statistics.median(plain), statistics.median(deliver)
    print(f"median: papermill {mp:.2f} s, deliver {md:.2f} s (train template, cnn, {a.epochs} epochs)")
    print(f"deliver/papermill time ratio: {md / mp:.3f}")


if __name__ == "__main__": main()
