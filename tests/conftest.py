import os, shutil, subprocess, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args, env=None, cwd=None, check=None):
    "Run a command from the venv; return the CompletedProcess"
    cmd = [str(BIN/args[0]) if (BIN/args[0]).exists() else args[0], *map(str, args[1:])]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if check is not None: assert res.returncode == check, f"{cmd} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture
def project(tmp_path):
    "A scratch project with this project's templates; its env points MLRESEARCH_ROOT at it"
    root = tmp_path/"proj"
    shutil.copytree(REPO/"research"/"templates", root/"research"/"templates")
    (root/"pyproject.toml").write_text("[tool.mlresearch]\n")  # marks a project root
    env = {**os.environ, "MLRESEARCH_ROOT": str(root), "MLRESEARCH_USER": "tester"}
    return root, env


def train_tiny(out_dir, epochs: int, stop_after: int | None = None, resume: bool = False, seed: int = 0):
    "An MLP on random data, for the resume checks; optionally interrupted after `stop_after` epochs"
    import torch
    from mlresearch.runtime import seed_everything
    from mlresearch.models import build_model
    from mlresearch.training import Trainer, TrainConfig
    g = torch.Generator().manual_seed(123)
    X, y = torch.randn(300, 12, generator=g), torch.randint(0, 3, (300,), generator=g)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=1e-2, seed=seed, deterministic=True, device="cpu", patience=0, progress=False)
    seed_everything(seed + (1 if resume else 0))  # a resumed run must not depend on the fresh init
    tr = Trainer(build_model("mlp", in_features=12, out_features=3, hidden=[32, 16]), cfg, out_dir=out_dir)
    if stop_after is not None:
        def _stop(t, rec):
            if t.epoch == stop_after: raise KeyboardInterrupt
        tr.callbacks.append(_stop)
    try: tr.fit(X[:240], y[:240], X[240:], y[240:], resume=resume)
    except KeyboardInterrupt: pass
    return tr


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory):
    "A project with two delivered digits models (a short-trained CNN and a logistic regression), the CNN's kept test predictions and their raw rows"
    import pandas as pd
    from mlresearch.data import load
    root = tmp_path_factory.mktemp("digits-runs")/"proj"
    shutil.copytree(REPO/"research/templates", root/"research/templates")
    (root/"pyproject.toml").write_text("[tool.mlresearch]\n")
    env = {**os.environ, "MLRESEARCH_ROOT": str(root), "MLRESEARCH_USER": "tester"}
    run("mlresearch", "deliver", "train", "--name", "digits-cnn", "-p", "dataset=sklearn:digits", "-p", "model=cnn", "-p", "epochs=4",
        env=env, check=0)
    run("mlresearch", "deliver", "train", "--name", "digits-logreg", "-p", "dataset=digits", "-p", "model=logreg", env=env, check=0)
    runs = {f.name.split("_", 1)[1]: f for f in (root/"research/deliver").iterdir()}
    kept = pd.read_parquet(runs["digits-cnn"]/"artifacts/test_predictions.parquet")
    raw = load("digits", root=root)
    return root, env, runs, kept, raw.iloc[kept["row"]].drop(columns="target")
