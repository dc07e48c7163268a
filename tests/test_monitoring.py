"Drift (a file, the service's window), evaluation runs and the ONNX export, on the delivered digits models"
import json, shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import run
from mlresearch.record import write_checksums
from mlresearch.drift import drift_report
from mlresearch.modelfile import column_kinds, load_run_model, model_checksums
from mlresearch.record import verify_run
from mlresearch.serve.app import ServeConfig, get_app

SHIFTED = "pixel_3_3"


def shifted(rows: pd.DataFrame) -> pd.DataFrame:
    "The test rows with one pixel brightened by a quarter of the pixel range"
    return rows.assign(**{SHIFTED: np.clip(rows[SHIFTED] + 4, 0, 16)})


def test_the_drift_report_flags_the_shifted_feature_and_no_untouched_one(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    m = load_run_model(runs["digits-cnn"], root)
    ref = m.reference()
    assert len(ref) == 1000 and list(ref.columns) == list(rows.columns)
    assert drift_report(ref, rows, column_kinds(m)).drifted == []
    rep = drift_report(ref, shifted(rows), column_kinds(m))
    assert rep.drifted == [SHIFTED] and not rep.dataset_drifted
    assert rep.table.set_index("feature").loc[SHIFTED, "psi_level"] == "alert"

    # the command line: exit 2 for one feature at PSI alert level (the default rule), 0 with a warning under --fail-on dataset
    shifted(rows).to_csv(tmp_path/"shifted.csv", index=False)
    res = run("mlresearch", "monitor", "digits-cnn", tmp_path/"shifted.csv", "--report", tmp_path/"report", env=env, check=2)
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith(f"drift: 1 of 64 features drifted (2%: {SHIFTED}); the dataset did not drift") and last.endswith(f"PSI at alert level (> 0.25): {SHIFTED}"), last
    assert json.loads((tmp_path/"report/drift.json").read_text())["alert_features"] == [SHIFTED]
    assert (tmp_path/"report/drift.png").stat().st_size > 10_000
    res = run("mlresearch", "monitor", "digits-cnn", tmp_path/"shifted.csv", "--fail-on", "dataset", env=env, check=0)
    assert res.stdout.strip().splitlines()[-1].startswith("warning: 1 of 64 features drifted"), res.stdout
    res = run("mlresearch", "monitor", "digits-cnn", tmp_path/"shifted.csv", "--fail-on", "feature", env=env, check=2)
    assert res.stdout.strip().splitlines()[-1].startswith("drift: 1 of 64 features drifted")
    (rows * 0.5).to_parquet(tmp_path/"dim.parquet")
    res = run("mlresearch", "monitor", "digits-logreg", tmp_path/"dim.parquet", env=env, check=2)
    assert "the dataset drifted" in res.stdout


def test_one_severely_drifted_category_among_thirteen_features_exits_2_and_is_named(project, tmp_path):
    "A table of 12 numbers and a colour; new rows where three features drift, one (colour) far: not half the features, but exit 2"
    root, env = project
    rng = np.random.default_rng(0)
    def table(n, shift=0.0, colours=("red", "green", "blue"), p=None):
        df = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"x{i}" for i in range(12)])
        df[["x0", "x3"]] += shift
        df["color"] = rng.choice(colours, n, p=p)
        return df
    train = table(600).assign(y=lambda d: np.where(d["x1"] + (d["color"] == "red") > 0.5, "a", "b"))
    train.to_csv(tmp_path/"shapes.csv", index=False)
    run("mlresearch", "data", "acquire", tmp_path/"shapes.csv", "--target", "y", env=env, check=0)
    run("mlresearch", "deliver", "train", "--name", "shapes-logreg", "-p", "dataset=shapes", "-p", "model=logreg", env=env, check=0)
    table(400, shift=0.3, p=(0.02, 0.02, 0.96)).to_csv(tmp_path/"shifted.csv", index=False)
    res = run("mlresearch", "drift", "shapes-logreg", tmp_path/"shifted.csv", env=env, check=2)
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("drift: 3 of 13 features drifted") and "the dataset did not drift" in last and "PSI at alert level (> 0.25): color" in last, last
    res = run("mlresearch", "drift", "shapes-logreg", tmp_path/"shifted.csv", "--fail-on", "dataset", env=env, check=0)
    assert res.stdout.strip().splitlines()[-1].startswith("warning: 3 of 13") and "color" in res.stdout.splitlines()[-1]


def test_the_service_flags_drift_after_a_window_of_shifted_requests(digits_runs):
    root, env, runs, kept, rows = digits_runs
    cfg = ServeConfig(drift_window=200)
    with TestClient(get_app(runs["digits-cnn"], cfg, root)) as client:
        def send(df):
            for i in range(0, len(df), 20):
                part = df.iloc[i:i + 20]
                if i % 40:  # every other request through the V2 protocol
                    body = {"inputs": [{"name": "x", "shape": list(part.shape), "datatype": "FP64", "data": part.to_numpy().ravel().tolist()}]}
                    assert client.post("/v2/models/digits-cnn/infer", json=body).status_code == 200
                else: assert client.post("/predict", json={"records": part.to_dict("records")}).status_code == 200
        send(rows)
        calm = client.get("/monitoring/drift").json()
        assert (calm["available"], calm["window"]["rows"], calm["drifted_features"]) == (True, 200, [])
        moved = shifted(rows).iloc[:200]
        send(moved)
        d = client.get("/monitoring/drift").json()
        assert (d["window"]["rows"], d["drifted_features"], d["dataset_drifted"]) == (200, [SHIFTED], False)
        # the same verdict and figures as a report on those rows
        want = drift_report(load_run_model(runs["digits-cnn"], root).reference(), moved.reset_index(drop=True)).table.set_index("feature")
        got = pd.DataFrame(d["features"]).set_index("feature")
        assert np.allclose(got.loc[want.index, "p_value"], want["p_value"]) and np.allclose(got.loc[want.index, "psi"], want["psi"])


@pytest.fixture(scope="module")
def old_run(digits_runs):
    "A copy of the logistic regression's run as a version before reference rows were kept would have saved it"
    root, env, runs, kept, rows = digits_runs
    old = shutil.copytree(runs["digits-logreg"], root/"research/deliver/2001-01-03_old-logreg")
    for f in [old, *old.rglob("*")]: f.chmod(0o755 if f.is_dir() else 0o644)
    (old/"artifacts/model/reference.parquet").unlink()
    write_checksums(old)
    assert verify_run(old) == []
    return old


def test_a_model_without_reference_says_drift_is_unavailable(digits_runs, old_run, tmp_path):
    root, env, runs, kept, rows = digits_runs
    rows.to_csv(tmp_path/"rows.csv", index=False)
    res = run("mlresearch", "monitor", old_run.name, tmp_path/"rows.csv", env=env, check=0)
    assert res.stderr.strip().endswith("trained before mlresearch saved a reference sample with each model; deliver a new training run to monitor drift")
    with TestClient(get_app(old_run, root=root)) as client:
        assert client.post("/predict", json={"records": rows.iloc[:3].to_dict("records")}).status_code == 200
        d = client.get("/monitoring/drift").json()
        assert d["available"] is False and d["reason"].startswith(f"drift unavailable: run {old_run.name}")


def test_evaluate_makes_a_run_that_names_the_evaluated_run(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    shifted(rows).assign(target=kept["target"].to_numpy()).to_csv(tmp_path/"labelled.csv", index=False)
    res = run("mlresearch", "evaluate", "digits-cnn", "--dataset", tmp_path/"labelled.csv", env=env, check=0)
    folder = next((root/"research/deliver").glob("*_evaluate-digits-cnn"))
    prov = json.loads((folder/"provenance.json").read_text())
    m = load_run_model(runs["digits-cnn"], root)
    assert prov["status"] == "succeeded" and prov["template"] == "research/templates/evaluate.ipynb"
    assert prov["models"] == [dict(run=runs["digits-cnn"].name, model="artifacts/model", sha256=model_checksums(m))]
    assert prov["figures"] == 3, prov["figures"]  # the confusion matrix, the ROC curves, the drift figure
    metrics = json.loads((folder/"metrics.json").read_text())
    assert (metrics["rows"], metrics["drifted_features"], metrics["same_data_as_training"]) == (360, 1, False)
    assert metrics["accuracy"] == pytest.approx((kept["prediction"] == kept["target"]).mean())  # the same rows the run's test split scored
    assert f"succeeded: accuracy={metrics['accuracy']:.4f}" in res.stdout
    assert verify_run(folder) == []
    assert sorted(p.relative_to(folder/"artifacts").as_posix() for p in (folder/"artifacts").rglob("*") if p.is_file()) == [
        "drift/drift.csv", "drift/drift.json", "drift/drift.png", "predictions.parquet"]
    params = (folder/"params.toml").read_text()
    assert f'run = "{runs["digits-cnn"].name}"' in params and 'dataset = "labelled@1"' in params


def test_the_onnx_export_of_the_cnn_agrees_with_load_model_on_every_test_row(digits_runs, tmp_path):
    import onnxruntime as ort
    root, env, runs, kept, rows = digits_runs
    res = run("mlresearch", "export", "digits-cnn", "--format", "onnx", "--output", tmp_path/"cnn", env=env, check=0)
    assert "rows checked against the model" in res.stdout
    rec = json.loads((tmp_path/"cnn/export.json").read_text())
    assert rec["inputs"] == [dict(name="pixels", dtype="float32", shape=[None, 64])] and rec["check"]["passed"]
    s = ort.InferenceSession(str(tmp_path/"cnn/model.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = s.run(["probabilities"], {"pixels": rows.to_numpy(np.float32)})
    m = load_run_model(runs["digits-cnn"], root)
    assert (probs.argmax(1) == m.predict(rows).astype(int)).all()          # every test row's class
    assert (probs.argmax(1) == kept["prediction"].to_numpy()).all()         # and the notebook's
    assert np.abs(probs - m.predict_proba(rows)).max() <= rec["check"]["atol"]
    # the baseline too, through skl2onnx; its input is the standardized features export.json spells out
    run("mlresearch", "export", "digits-logreg", "--output", tmp_path/"logreg", env=env, check=0)
    lr = load_run_model(runs["digits-logreg"], root)
    pre = json.loads((tmp_path/"logreg/export.json").read_text())["preprocessing"]["columns"]
    feats = np.stack([(rows[c["column"]].to_numpy() - c["mean"]) / c["std"] for c in pre], 1).astype(np.float32)
    label, proba = ort.InferenceSession(str(tmp_path/"logreg/model.onnx")).run(None, {"features": feats})
    assert (label == lr.predict(rows).astype(int)).all()
    res = run("mlresearch", "export", "digits-logreg", "--output", tmp_path/"logreg", env=env, check=1)
    assert "already exists; an export is never replaced" in res.stderr
