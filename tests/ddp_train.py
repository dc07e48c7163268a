"Run under torchrun: a small MLP trained with DistributedDataParallel on gloo; each rank saves its final weights."
import sys
from pathlib import Path

import torch

from mlresearch.runtime import seed_everything
from mlresearch.models import build_model
from mlresearch.runtime import dist_info
from mlresearch.training import Trainer, TrainConfig

out = Path(sys.argv[1])
rank, world, _ = dist_info()
g = torch.Generator().manual_seed(7)
X, y = torch.randn(400, 10, generator=g), torch.randint(0, 2, (400,), generator=g)
y = (X[:, 0] + X[:, 1] > 0).long()  # a learnable rule
cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-2, device="cpu", patience=0, progress=False, deterministic=True)
seed_everything(0)
tr = Trainer(build_model("mlp", in_features=10, out_features=2, hidden=[16]), cfg, out_dir=out/"run")
tr.fit(X[:320], y[:320], X[320:], y[320:])
torch.save(tr.model.state_dict(), out/f"rank{rank}.pt")
(out/f"rank{rank}.txt").write_text(f"{world} {tr.history[0]['val_loss']} {tr.history[-1]['val_loss']} {tr.history[-1]['val_accuracy']}")
tr.close()
