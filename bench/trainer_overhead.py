"""Trainer overhead: our Trainer against a minimal hand-written PyTorch loop, same model, data, epochs and optimizer.

Both train the digits CNN with AdamW and a one-cycle schedule on data kept on the device, and evaluate on the
validation split after every epoch (the work early stopping needs). The Trainer also writes a JSON line and an
atomic checkpoint every epoch. A third variant, the loop without validation, is timed for reference.
Runs are interleaved in this one process, the order rotating each repeat so that no variant always goes first;
the medians are compared. Last line: the ratio Trainer / loop with validation (target: at most 1.03 on the CPU).

    python bench/trainer_overhead.py [--epochs 10] [--repeats 7] [--device auto]
"""
import argparse, statistics, tempfile, time
from pathlib import Path

import torch

from mlresearch.config import get_device, seed_everything
from mlresearch.data import acquire
from mlresearch.models import build_model
from mlresearch.preprocessing import prepare
from mlresearch.training import Trainer, TrainConfig


def minimal_loop(X, y, epochs, bs, lr, wd, seed, device, val=None):
    seed_everything(seed)
    model = build_model("cnn", out_features=10).to(device)
    X, y = torch.as_tensor(X).to(device), torch.as_tensor(y).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = -(-len(X) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), bs):
            idx = perm[i:i + bs].to(device)
            loss = loss_fn(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        if val is not None:
            model.eval()
            with torch.no_grad():
                out = model(val[0])
                _ = (loss_fn(out, val[1]).item(), (out.argmax(1) == val[1]).float().mean().item())
    if device.type == "cuda": torch.cuda.synchronize()
    return model


def trainer_run(p, epochs, bs, lr, wd, seed, device, out):
    cfg = TrainConfig(epochs=epochs, batch_size=bs, lr=lr, weight_decay=wd, seed=seed, device=str(device), patience=0, progress=False)
    seed_everything(seed)
    tr = Trainer(build_model("cnn", out_features=10), cfg, out_dir=out).fit(p.X["train"], p.y["train"], p.X["val"], p.y["val"])
    if device.type == "cuda": torch.cuda.synchronize()
    return tr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    device = get_device(a.device)
    root = Path(tempfile.mkdtemp())
    acquire("sklearn:digits", root=root)
    p = prepare("digits", root=root)
    n = len(p.y["train"])
    kw = dict(epochs=a.epochs, bs=64, lr=3e-3, wd=1e-4, seed=0, device=device)
    trainer_run(p, 1, 64, 3e-3, 1e-4, 0, device, None)  # warm-up: kernels, allocator
    val = (torch.as_tensor(p.X["val"]).to(device), torch.as_tensor(p.y["val"]).to(device))
    times = {"trainer": [], "loop": [], "loop without validation": []}
    variants = {"trainer": lambda r: trainer_run(p, **kw, out=root/f"run{r}"),
                "loop": lambda r: minimal_loop(p.X["train"], p.y["train"], **kw, val=val),
                "loop without validation": lambda r: minimal_loop(p.X["train"], p.y["train"], **kw)}
    names = list(variants)
    for r in range(a.repeats):
        for name in names[r % 3:] + names[:r % 3]:  # rotate the order: each variant takes each place in turn
            t0 = time.perf_counter(); variants[name](r); times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device={device} epochs={a.epochs} train_rows={n} val_rows={len(p.y['val'])} repeats={a.repeats} threads={torch.get_num_threads()}")
    for k, v in times.items():
        print(f"{k}: median {med[k]:.3f}s  ({a.epochs * n / med[k]:,.0f} train samples/s)  runs: {', '.join(f'{t:.3f}' for t in v)}")
    print(f"trainer / loop without validation: {med['trainer'] / med['loop without validation']:.3f}")
    print(f"trainer/loop time ratio: {med['trainer'] / med['loop']:.3f}")


if __name__ == "__main__":
    main()
