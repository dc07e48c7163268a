"Tables too large for memory: prepared in passes and trained on a block at a time, scored and checked for drift like any other; their processed file verified before use; a resumed run through the stream bit-equal."
import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import resumes_bit_equal, run, spoil_each
import mlresearch.streaming as streaming


@pytest.fixture
def big(project, monkeypatch):
    "A project with a 120,000-row table acquired in chunks, and every table streamed (the size threshold set to 0 in this process)"
    root, env = project
    rng = np.random.default_rng(0)
    n = 120_000
    X = rng.normal(size=(n, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(site=rng.choice(["north", "south", "east"], n),
                                                                       label=np.where(X[:, 0] + X[:, 1] * X[:, 2] > 0, "yes", "no"))
    df.loc[::50, "x3"] = np.nan
    df.to_csv(root/"big.csv", index=False)
    run("mlresearch", "data", "acquire", root/"big.csv", "--target", "label", "--chunk-rows", "30000", env=env, check=0)
    monkeypatch.setattr(streaming, "STREAM_CELLS", 0)
    return root, env, df


def _figures(stdout):
    return {k: float(v) for k, v in (line.split() for line in stdout.splitlines()[1:] if len(line.split()) == 2 and line.split()[0] != "model:")}


def test_a_streamed_table_trains_scores_and_is_checked_for_drift(big, tmp_path):
    root, env, df = big
    r = run("mlresearch", "train", "--dataset", "big", "--model", "mlp", "-p", "epochs=3", "-p", "batch_size=256", "--out", root/"mlp", env=env, check=0)
    assert "as a stream" in r.stderr and "rows streamed from" in r.stderr, r.stderr  # the log says which path the run took
    streamed = _figures(r.stdout)
    assert streamed["accuracy"] > 0.95 and streamed["val_accuracy"] > 0.95, r.stdout
    r = run("mlresearch", "train", "--dataset", "big", "--model", "logreg", "--out", root/"logreg", env=env, check=0)  # scikit-learn fits the split read whole
    assert 0.6 < _figures(r.stdout)["accuracy"] < 0.9, r.stdout
    sample = df.drop(columns="label").iloc[:2000]
    sample.to_csv(tmp_path/"new.csv", index=False)
    from mlresearch.modelfile import load_model
    m = load_model(root/"mlp")
    assert (m.predict(sample) == df["label"].iloc[:2000]).mean() > 0.95
    assert len(m.reference()) == 1000 and list(m.reference().columns) == [c for c in df.columns if c != "label"]
    from mlresearch.drift import drift_report
    assert not drift_report(m.reference(), sample, {c: "number" for c in sample.columns if c != "site"} | {"site": "category"}).dataset_drifted


def test_a_byte_changed_in_a_streamed_tables_processed_files_is_named_and_rebuilt(big):
    root, env, _ = big
    def trained(i):
        r = run("mlresearch", "train", "--dataset", "big", "--model", "mlp", "-p", "epochs=1", "-p", "batch_size=512", "-p", "deterministic=true",
                "-p", "device=cpu", "--out", root/f"m{i}", "-q", env=env, check=0)
        return r, _figures(r.stdout)
    _, first = trained(0)
    files = sorted(f for f in (root/"data/processed").iterdir() if f.suffix in (".bin", ".json", ".parquet"))
    assert [f.suffix for f in files] == [".bin", ".json", ".parquet"], files
    runs = iter(range(1, 4))
    spoil_each(files, lambda: trained(next(runs)), first)


def test_a_streamed_run_resumes_bit_equal(big, tmp_path):
    "Stopped after one epoch and resumed, a run reading its table a block at a time ends with the weights of an uninterrupted one"
    from mlresearch.models import build_model
    from mlresearch.training import Trainer, TrainConfig
    root, _, _ = big
    p = streaming.prepare_stream("big", root=root)
    assert isinstance(p.X["train"], streaming.TableSplit)
    def trainer(out, resume):
        torch.manual_seed(9 if resume else 5)
        cfg = TrainConfig(epochs=3, batch_size=1000, seed=5, deterministic=True, device="cpu", patience=0, progress=False)
        return Trainer(build_model("mlp", in_features=p.n_features, out_features=2, hidden=[16]), cfg, out_dir=out)
    full, resumed = resumes_bit_equal(trainer, (p.X["train"], None, p.X["val"], None), tmp_path)
    assert json.loads((tmp_path/"full/metrics.jsonl").read_text().splitlines()[-1])["val_loss"] == resumed.history[-1]["val_loss"]
