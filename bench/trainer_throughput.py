"""Trainer throughput through the DataLoader path: our Trainer against a minimal hand-written loop over the same DataLoader.

Both train the same ResNet-style CNN (a stem, --blocks residual blocks of two 3x3 convolutions with batch norm, global
average pooling, a linear head) on synthetic 3x32x32 images in 10 classes, with AdamW, for --epochs epochs, reading
the images from one `DataLoader` over a `TensorDataset` (--workers worker processes; pinned memory on CUDA). The
Trainer gets the DataLoader itself, so it trains through its DataLoader path (`loaders.DatasetRows`), with its
schedule, autocast context, accumulation check and loss bookkeeping; the loop does only forward, loss, backward, step.
No validation and no checkpoint, so that the figure is the cost of the training path alone.

On a CUDA GPU both run with bf16 autocast, the model in `channels_last` and, with --compile, through `torch.compile`;
the GPU's utilisation is sampled with nvidia-smi during the Trainer's runs, and when the ratio is below 0.97 the
Trainer's heaviest operations (torch.profiler, a few steps) are printed to show where the time goes.

Runs are interleaved in this one process, the order alternating each repeat; each repeat's Trainer time is divided
by the loop's time of the same repeat, and the median of those paired ratios is the result. On the CPU both run with
--threads intra-op threads (1 by default, the process pinned to one core: on a shared two-core machine two threads
make every operator wait for the slower core). Last line: Trainer / loop in samples per second (target: at least 0.97).

Needs torch and the Trainer alone (no project, no data):

    python bench/trainer_throughput.py [--epochs 2] [--repeats 21] [--rows 1024] [--width 16] [--batch-size 64] [--workers 0] [--device auto] [--compile]
"""
import argparse, contextlib, gc, os, shutil, statistics, subprocess, threading, time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlresearch.runtime import get_device, seed_everything
from mlresearch.training import Trainer, TrainConfig


class Block(nn.Module):
    "Two 3x3 convolutions with batch norm, added to the input"
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    def forward(self, x): return torch.relu(x + self.body(x))


def resnet(width, blocks, classes=10):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         *[Block(width) for _ in range(blocks)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def build(a, device):
    seed_everything(0)
    m = resnet(a.width, a.blocks)
    return m.to(device, memory_format=torch.channels_last) if device.type == "cuda" else m


def loop_run(a, loader, device):
    model = build(a, device)
    net = torch.compile(model) if a.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    model.train()
    for _ in range(a.epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with amp: out = net(xb)
            loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if device.type == "cuda": torch.cuda.synchronize()


def trainer_run(a, loader, device, profile=False):
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=1e-3, device=str(device), patience=0, progress=False, compile=a.compile,
                      schedule="constant", threads=0)
    tr = Trainer(build(a, device), cfg)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with prof(activities=acts) as p: tr.fit(loader)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(p.key_averages().table(sort_by=key, row_limit=12))
        return
    tr.fit(loader)
    if device.type == "cuda": torch.cuda.synchronize()


class Utilisation:
    "The GPU's utilisation, sampled with nvidia-smi every 0.2 s while the block runs"
    def __init__(self): self.samples, self.stop = [], threading.Event()
    def _sample(self):
        while not self.stop.wait(0.2):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True).stdout.strip()
            if out.isdigit(): self.samples.append(int(out))
    def __enter__(self):
        self.stop, self.th = threading.Event(), threading.Thread(target=self._sample, daemon=True)
        if shutil.which("nvidia-smi"): self.th.start()
        return self
    def __exit__(self, *exc):
        self.stop.set()
        if self.th.is_alive(): self.th.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--rows", type=int, default=1024, help="synthetic images per epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=16, help="channels of every block")
    ap.add_argument("--blocks", type=int, default=3, help="residual blocks")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="both through torch.compile")
    ap.add_argument("--threads", type=int, default=1, help="CPU: torch intra-op threads; 0: torch's default")
    a = ap.parse_args()
    device = get_device(a.device)
    if device.type == "cpu" and a.threads:
        torch.set_num_threads(a.threads)
        if a.threads == 1 and hasattr(os, "sched_setaffinity"): os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(a.rows, 3, 32, 32, generator=g), torch.randint(0, 10, (a.rows,), generator=g))
    loader = DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, pin_memory=device.type == "cuda",
                        persistent_workers=a.workers > 0, generator=torch.Generator().manual_seed(0))
    trainer_run(a, loader, device); loop_run(a, loader, device)  # warm-up: kernels, allocator, workers, compilation
    times, util = {"trainer": [], "loop": []}, Utilisation()
    runs = {"trainer": lambda: trainer_run(a, loader, device), "loop": lambda: loop_run(a, loader, device)}
    for r in range(a.repeats):
        for name in (("trainer", "loop") if r % 2 == 0 else ("loop", "trainer")):
            gc.collect()
            with (util if name == "trainer" else _nothing()):
                t0 = time.perf_counter(); runs[name](); times[name].append(time.perf_counter() - t0)
    n = a.rows * a.epochs
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} thread(s)"
    print(f"device={device} ({name}) rows={a.rows} epochs={a.epochs} batch={a.batch_size} workers={a.workers} repeats={a.repeats} "
          f"model=resnet width {a.width}, {a.blocks} blocks{' compiled' if a.compile else ''}{', bf16 autocast, channels_last' if device.type == 'cuda' else ''}")
    for k, v in times.items():
        print(f"{k}: median {n / statistics.median(v):,.0f} samples/s  runs: {', '.join(f'{n / t:,.0f}' for t in v)}")
    if util.samples: print(f"GPU utilisation during the Trainer's runs: median {statistics.median(util.samples)}% (max {max(util.samples)}%, {len(util.samples)} samples)")
    ratio = statistics.median(lp / t for t, lp in zip(times["trainer"], times["loop"]))  # samples/s ratio = the loop's time over the Trainer's
    if ratio < 0.97:
        print("below 0.97: where the Trainer's time goes (torch.profiler, one run)")
        trainer_run(a, loader, device, profile=True)
    print(f"trainer/loop samples per second: {ratio:.3f}")


class _nothing:
    def __enter__(self): return self
    def __exit__(self, *exc): return False


if __name__ == "__main__":
    main()
