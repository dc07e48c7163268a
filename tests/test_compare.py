"Comparisons a reviewer accepts: seeds as an axis of a sweep, intervals over them, a paired verdict, and the winner chosen on validation"
import re

import numpy as np
from scipy import stats

from conftest import run


def test_a_sweep_over_seeds_is_compared_paired_and_its_winner_used(project, tmp_path):
    root, env = project
    run("mlresearch", "data", "acquire", "sklearn:wine", "--name", "wine", env=env, check=0)
    r = run("mlresearch", "sweep", "train", "--name", "lr-seeds", "-p", "model=mlp", "-p", "dataset=wine", "-p", "lr=1e-3,1e-2", "-p", "epochs=8",
            "--seeds", "2", "-q", env=env, check=0)
    assert "sweep lr-seeds: 4 point(s), 0 succeeded earlier, 4 to run" in r.stdout, r.stdout
    won = re.search(r"its best run (\S+) is sweep:lr-seeds", r.stdout)
    assert won, r.stdout

    r = run("mlresearch", "runs", "compare", "val_accuracy", "--by", "lr", "--sweep", "lr-seeds", "--out", tmp_path/"lr.png", env=env, check=0)
    rows = r.stdout.splitlines()[2:4]
    assert [row.split()[1:4] for row in rows] == [["0.0010", "2", "0,1"], ["0.0100", "2", "0,1"]], r.stdout  # two groups of two seeds
    from mlresearch.compare import plot_compare
    from mlresearch.runs import runs_index, select_runs
    df = select_runs(runs_index(root), sweep="lr-seeds")
    assert plot_compare(df, "val_accuracy", by="lr").axes[0].get_xscale() == "log"

    r = run("mlresearch", "runs", "compare", "val_log_loss", "--sweep", "lr-seeds", "--between", "lr=1e-3", "--and", "lr=1e-2",
            "--out", tmp_path/"ab.png", env=env, check=0)
    a = df.sort_values("param.seed").query("`param.lr` == 0.001")["metric.val_log_loss"].to_numpy()
    b = df.sort_values("param.seed").query("`param.lr` == 0.01")["metric.val_log_loss"].to_numpy()
    ref = stats.ttest_rel(b, a)
    half = stats.t.ppf(0.975, 1) * np.std(b - a, ddof=1) / np.sqrt(2)
    line = r.stdout.splitlines()[-2]
    assert line.startswith(f"val_log_loss: (lr=1e-2) - (lr=1e-3) = {np.mean(b - a):+.4g}, 95% CI {np.mean(b - a) - half:+.4g} to "
                           f"{np.mean(b - a) + half:+.4g}, over 2 shared seeds; paired t-test t = {ref.statistic:.3g}, p = {ref.pvalue:.3g}: "), line

    rows = tmp_path/"rows.csv"
    from sklearn.datasets import load_wine
    load_wine(as_frame=True).frame.drop(columns="target").head(5).to_csv(rows, index=False)
    r = run("mlresearch", "predict", "sweep:lr-seeds", rows, "-o", tmp_path/"p.csv", env=env, check=0)
    assert f"5 rows scored by {won[1]}" in r.stdout and f"sweep:lr-seeds is run {won[1]}" in r.stderr, (r.stdout, r.stderr)
    r = run("mlresearch", "serve", "sweep:lr-seeds", "--metric", "accuracy", env=env, check=1)
    assert r.stderr.strip() == "error: 'accuracy' is measured on the test split, which never chooses; choose by val_accuracy", r.stderr


def test_cv_5_on_wine_records_five_folds_and_their_mean(project):
    import json
    root, env = project
    run("mlresearch", "deliver", "train", "--name", "wine-cv", "-p", "dataset=sklearn:wine", "-p", "model=logreg", "-p", "cv=5", env=env, check=0)
    m = json.loads(next((root/"research/deliver").glob("*_wine-cv/metrics.json")).read_text())
    assert [f["fold"] for f in m["cv_folds"]] == [1, 2, 3, 4, 5] and sum(f["rows"] for f in m["cv_folds"]) == 142, m["cv_folds"]
    assert abs(m["val_accuracy"] - np.mean([f["accuracy"] for f in m["cv_folds"]])) < 1e-12 and m["test_rows"] == 36, m
    r = run("mlresearch", "deliver", "train", "--name", "wine-cv1", "-p", "dataset=wine", "-p", "model=logreg", "-p", "cv=1", env=env, check=1)
    assert "raised ConfigError: cv=1: give 0 (no cross-validation) or the number of folds, 2 or more" in r.stderr, r.stderr
