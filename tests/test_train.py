"Training end to end on real data: the accuracy bars, regression, a messy CSV, and saved models that predict identically."
import numpy as np
import pandas as pd
import pytest

from mlresearch.modelfile import load_model
from mlresearch.pipeline import train

from conftest import run


@pytest.fixture
def root(project):
    return project[0]


def test_cnn_on_digits_reaches_098(root):
    res = train(dict(dataset="sklearn:digits", model="cnn"), root=root)
    assert res.metrics["accuracy"] >= 0.98, res.metrics
    assert res.prepared.meta["sizes"] == dict(train=1257, val=180, test=360)


def test_best_baseline_on_digits_reaches_096(root):
    # hist_gb (0.961 here, never the best) is trained by the CSV test below; on one thread it cost this test more than the other two
    scores = {m: train(dict(dataset="sklearn:digits", model=m), root=root).metrics["accuracy"] for m in ("logreg", "random_forest")}
    assert max(scores.values()) >= 0.96, scores


def test_regression_on_diabetes_reports_rmse_and_r2(root):
    for m in ("ridge", "mlp"):
        r = train(dict(dataset="sklearn:diabetes", model=m, epochs=60), root=root).metrics
        assert set(r) == {"rmse", "mae", "r2"}
        assert r["r2"] > 0.2 and 40 < r["rmse"] < 65, (m, r)  # a mean predictor: r2 ~ 0, rmse ~ 77


def test_csv_with_missing_values_and_categories_through_the_cli(project, tmp_path):
    root, env = project
    rng = np.random.default_rng(0)
    n = 400
    age = rng.integers(20, 90, n).astype(float)
    smoker = rng.choice(["yes", "no"], n)
    region = rng.choice(["north", "south", "east", None], n)
    risk = (age > 55).astype(int) + (smoker == "yes")
    outcome = np.where(risk + rng.random(n) * 0.8 > 1.2, "ill", "well")
    age[rng.random(n) < 0.1] = np.nan
    csv = tmp_path/"clinic.csv"
    pd.DataFrame(dict(age=age, smoker=smoker, region=region, outcome=outcome)).to_csv(csv, index=False)
    run("mlresearch", "data", "acquire", csv, "--target", "outcome", env=env, check=0)
    for model in ("mlp", "hist_gb"):
        res = run("mlresearch", "train", "--dataset", "clinic", "--model", model, "-p", "epochs=40", "--out", tmp_path/model, env=env, check=0)
        acc = float(next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("accuracy")).split()[1])
        assert acc > 0.75, res.stdout
        m = load_model(tmp_path/model)
        assert set(m.schema["columns"]["region"]["categories"]) == {"east", "north", "south"}
        rows = pd.DataFrame(dict(age=[70.0, None, 30.0], smoker=["yes", "no", "no"], region=["west", None, "north"]))  # unseen, missing
        assert set(m.predict(rows)) <= {"ill", "well"}
        again = load_model(tmp_path/model)
        np.testing.assert_array_equal(again.predict_proba(rows), m.predict_proba(rows))


def test_saved_model_predicts_identically(root, tmp_path):
    for model in ("cnn", "random_forest"):
        res = train(dict(dataset="sklearn:digits", model=model, epochs=3), out=tmp_path/model, root=root)
        m = load_model(res.folder)
        raw = pd.read_parquet(next((root/"data/raw").glob("digits_*.parquet"))).drop(columns="target")
        np.testing.assert_allclose(m.predict_proba(raw), res.model.scores(res.prepared.transform.transform(raw)), rtol=0, atol=1e-6)
        assert (m.folder/("model.safetensors" if model == "cnn" else "model.skops")).exists()


def test_a_tampered_skops_file_is_refused(root, tmp_path):
    import skops.io
    from mlresearch.weights import SklearnModel
    res = train(dict(dataset="sklearn:iris", model="logreg"), out=tmp_path/"m", root=root)
    f = res.folder/"model.skops"
    f.chmod(0o644)
    skops.io.dump({"model": res.model.est, "extra": pd.Timestamp("2020-01-01")}, f)
    with pytest.raises(Exception, match="outside mlresearch.s allow-list"):
        SklearnModel.load(res.folder, {"name": "logreg", "weights": "model.skops"}, "classification")


def test_a_baseline_is_trained_saved_loaded_and_scored_without_importing_pytorch_or_dask(project, tmp_path):
    "A baseline's run, its serving and its batch jobs load neither framework: each would cost a few seconds of every such process"
    root, env = project
    code = f"""import sys
from mlresearch.pipeline import train
import numpy as np
from mlresearch.data import load
from mlresearch.modelfile import load_model
res = train(dict(dataset="sklearn:iris", model="logreg"), out={str(tmp_path/'model')!r})
rows = load("iris").iloc[res.prepared.rows["test"]].drop(columns="target")
assert np.allclose(load_model(res.folder).predict_proba(rows), res.test_scores())
print(sorted(k for k in ("torch", "dask", "mlresearch.models", "mlresearch.training") if k in sys.modules))"""
    assert run("python", "-c", code, env=env, check=0).stdout.strip() == "[]"
