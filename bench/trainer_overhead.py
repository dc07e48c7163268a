"""Trainer overhead: our Trainer against a minimal hand-written PyTorch loop, same model, data, epochs and optimizer.

Both train the digits CNN with AdamW and a one-cycle schedule on data kept on the device, and evaluate on the
validation split after every epoch (the work early stopping needs). The Trainer also writes a JSON line every epoch,
copies the epoch's state for its checkpoint, and writes the atomic checkpoint every --checkpoint-every seconds (its
default, 30, which a run this short never reaches) and when fit ends. --checkpoint-every 0 writes one every epoch.
With --reference a third variant, the loop without validation, is timed too.
Runs are interleaved in this one process, the order rotating each repeat so that no variant always goes first. On a
shared machine single timings drift by 20-30% as other work comes and goes, so each repeat's Trainer time is divided by
the loop's time of the same repeat (the two ran back to back), and the median of those paired ratios is the result; the
ratio of the two medians is printed too. Last line: the Trainer / loop with validation ratio (target: at most 1.03 on
the CPU).

Both run with `--threads` intra-op threads (1 by default): with two threads on a shared two-core machine every
operator waits for the slower core, and single timings swing by a quarter; one thread measures the same work steadily.
With one thread the process is pinned to one core (--no-pin leaves it free), and garbage is collected before each
timed run, so that neither a migration nor the previous run's garbage lands inside a timing.

The paired ratios of one run spread by about +-8% here, so 21 repeats are needed for a median that moves by less than 2%.

    python bench/trainer_overhead.py [--epochs 10] [--repeats 21] [--threads 1] [--device auto] [--reference]
"""
import argparse, gc, os, statistics, tempfile, time
from pathlib import Path

import torch

from mlresearch.runtime import get_device, seed_everything
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


def trainer_run(p, epochs, bs, lr, wd, seed, device, out, checkpoint_every=TrainConfig.checkpoint_every):
    cfg = TrainConfig(epochs=epochs, batch_size=bs, lr=lr, weight_decay=wd, seed=seed, device=str(device), patience=0, progress=False,
                      checkpoint_every=checkpoint_every)
    seed_everything(seed)
    tr = Trainer(build_model("cnn", out_features=10), cfg, out_dir=out).fit(p.X["train"], p.y["train"], p.X["val"], p.y["val"])
    if device.type == "cuda": torch.cuda.synchronize()
    return tr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads; 0: torch's default")
    ap.add_argument("--reference", action="store_true", help="also time the loop without validation")
    ap.add_argument("--checkpoint-every", type=float, default=TrainConfig.checkpoint_every, help="the Trainer's checkpoint interval in seconds")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core (pinned by default with --threads 1)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    if a.threads == 1 and not a.no_pin and hasattr(os, "sched_setaffinity"):  # one core: no migrations between the timed runs
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    device = get_device(a.device)
    root = Path(tempfile.mkdtemp())
    acquire("sklearn:digits", root=root)
    p = prepare("digits", root=root)
    n = len(p.y["train"])
    kw = dict(epochs=a.epochs, bs=64, lr=3e-3, wd=1e-4, seed=0, device=device)
    trainer_run(p, 1, 64, 3e-3, 1e-4, 0, device, None)  # warm-up: kernels, allocator
    val = (torch.as_tensor(p.X["val"]).to(device), torch.as_tensor(p.y["val"]).to(device))
    times = {"trainer": [], "loop": [], **({"loop without validation": []} if a.reference else {})}
    variants = {"trainer": lambda r: trainer_run(p, **kw, out=root/f"run{r}", checkpoint_every=a.checkpoint_every),
                "loop": lambda r: minimal_loop(p.X["train"], p.y["train"], **kw, val=val),
                "loop without validation": lambda r: minimal_loop(p.X["train"], p.y["train"], **kw)}
    names = list(times)
    for r in range(a.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order: each variant takes each place in turn
            gc.collect()  # no collection of the previous run's garbage inside this one's timing
            t0 = time.perf_counter(); variants[name](r); times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device={device} epochs={a.epochs} train_rows={n} val_rows={len(p.y['val'])} repeats={a.repeats} threads={torch.get_num_threads()} checkpoint_every={a.checkpoint_every:g}s")
    for k, v in times.items():
        print(f"{k}: median {med[k]:.3f}s  ({a.epochs * n / med[k]:,.0f} train samples/s)  runs: {', '.join(f'{t:.3f}' for t in v)}")
    paired = [t / v for t, v in zip(times["trainer"], times["loop"])]
    if a.reference: print(f"trainer / loop without validation (ratio of medians): {med['trainer'] / med['loop without validation']:.3f}")
    print(f"trainer / loop (ratio of medians): {med['trainer'] / med['loop']:.3f}")
    print(f"paired ratios: {', '.join(f'{x:.3f}' for x in paired)}")
    print(f"trainer/loop time ratio: {statistics.median(paired):.3f}")


if __name__ == "__main__":
    main()
