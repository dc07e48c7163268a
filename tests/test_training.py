"The Trainer's promises: exact resume, refusal of damaged checkpoints, DistributedDataParallel on 2 CPU processes."
import os, subprocess, sys
from pathlib import Path

import pytest
import torch

from mlresearch.testing import train_tiny as _train_tiny
from mlresearch.training import CheckpointError, load_checkpoint

HERE = Path(__file__).parent


@pytest.mark.parametrize("stop", [1, 2, 3, 4, 5])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, stop):
    full = _train_tiny(tmp_path/"full", epochs=6)
    cut = _train_tiny(tmp_path/"cut", epochs=6, stop_after=stop)
    assert cut.epoch == stop and load_checkpoint(tmp_path/"cut/last.ckpt")["epoch"] == stop
    resumed = _train_tiny(tmp_path/"cut", epochs=6, resume=True)
    assert resumed.epoch == 6
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]


@pytest.mark.parametrize("stop", [1, 3])
def test_interrupted_and_resumed_through_dataloader_workers_equals_uninterrupted(tmp_path, stop):
    "A dataset whose rows get fresh noise as two DataLoader workers read them: the workers' generators are part of what resumes"
    full = _train_tiny(tmp_path/"full", epochs=4, workers=2)
    _train_tiny(tmp_path/"cut", epochs=4, stop_after=stop, workers=2)
    resumed = _train_tiny(tmp_path/"cut", epochs=4, resume=True, workers=2)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a: assert torch.equal(a[k], b[k]), k
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    arrays = _train_tiny(tmp_path/"arrays", epochs=4).model.state_dict()
    assert any(not torch.equal(a[k], arrays[k]) for k in a)  # the noise was drawn: not the arrays' run


def test_a_different_seed_does_not_give_the_same_weights(tmp_path):
    "The equality above is not vacuous: another seed ends elsewhere"
    a = _train_tiny(tmp_path/"a", epochs=3).model.state_dict()
    b = _train_tiny(tmp_path/"b", epochs=3, seed=1).model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep", [0, 100, 0.5, 0.99])
def test_cut_checkpoint_is_refused(tmp_path, keep):
    _train_tiny(tmp_path/"run", epochs=2)
    ck = tmp_path/"run/last.ckpt"
    data = ck.read_bytes()
    ck.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="cut short or corrupted"):
        _train_tiny(tmp_path/"run", epochs=4, resume=True)


def test_resume_refuses_other_settings(tmp_path):
    _train_tiny(tmp_path/"run", epochs=2)
    with pytest.raises(CheckpointError, match="other settings"):
        _train_tiny(tmp_path/"run", epochs=3, resume=True, seed=5)


def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
           str(HERE/"ddp_train.py"), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    w0, w1 = torch.load(tmp_path/"rank0.pt"), torch.load(tmp_path/"rank1.pt")
    for k in w0: assert torch.equal(w0[k], w1[k]), k  # DDP kept the replicas identical
    world, first, last, acc = (tmp_path/"rank0.txt").read_text().split()
    assert world == "2" and float(last) < float(first) and float(acc) > 0.8
    assert load_checkpoint(tmp_path/"run/last.ckpt")["epoch"] == 4  # rank 0 wrote the checkpoint
