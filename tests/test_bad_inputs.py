"""Every verb given bad input: one `error:` line (the last on stderr), a non-zero exit, no traceback, and nothing already written changes.

The cases run against one scratch project holding acquired data and a finished run. Afterwards `data verify` and
`runs verify` must pass and every file in data/raw and in the earlier runs must be byte for byte as before.
"""
import hashlib, os

import nbformat
import pytest

from mlresearch.testing import project_env, scratch_project
from conftest import mlresearch_here, run

DAY = __import__("time").strftime("%Y-%m-%d")


def _files(*folders):
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for d in folders if d.exists() for f in sorted(d.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    "A project with digits, iris and three awkward CSV datasets acquired, a tiny template, and one finished run"
    tmp = tmp_path_factory.mktemp("bad")
    root = scratch_project(["all", "tiny"], parent=tmp, name="proj")
    env = project_env(root)
    tiny = nbformat.read(root/"research/templates/tiny.ipynb", as_version=4)
    files = {"one-class.csv": "x,y\n" + "".join(f"{i},a\n" for i in range(40)),
             "empty-target.csv": "x,y\n" + "".join(f"{i},\n" for i in range(40)),
             "few-rows.csv": "x,y\n1,a\n2,b\n3,a\n4,b\n",
             "ragged.csv": "a,b\n1,2\n3,4,5\n", "empty.csv": "", "header.csv": "a,b\n", "table.xlsx": "x", "ok.csv": "age,outcome\n1,0\n2,1\n",
             "broken.ipynb": "this is not a notebook", "bad.toml": "lr = = 1\n"}
    for name, text in files.items(): (tmp/name).write_text(text)
    nbformat.write(nbformat.v4.new_notebook(metadata=tiny.metadata, cells=[nbformat.v4.new_code_cell("a = 1")]), tmp/"noparams.ipynb")
    for spec, extra in (("sklearn:digits", []), ("sklearn:iris", []), (tmp/"one-class.csv", ["--target", "y"]),
                        (tmp/"empty-target.csv", ["--target", "y"]), (tmp/"few-rows.csv", ["--target", "y"])):
        run("mlresearch", "data", "acquire", spec, *extra, env=env, check=0)
    run("mlresearch", "deliver", "tiny", "--name", "done", env=env, check=0)
    (tmp/"not-a-project").mkdir()
    (tmp/"no-images"/"cats").mkdir(parents=True); (tmp/"no-images"/"cats"/"notes.txt").write_text("no image here")
    (tmp/"loose").mkdir(); (tmp/"loose"/"a.png").write_bytes(b"")
    return root, env, tmp


def cases(tmp):
    t = str(tmp)
    empty_root = {"MLRESEARCH_ROOT": f"{t}/not-a-project"}
    c = [  # (args, expected part of the error line, exit code, extra environment)
        # global options
        (["--log-level", "LOUD", "runs"], "log level 'LOUD' is not one of", 1, {}),
        (["--log-json", "/no/such/dir/x.jsonl", "runs"], "folder /no/such/dir does not exist", 1, {}),
        (["--root", f"{t}/not-a-project", "runs"], "is not an mlresearch project", 1, {}),
        (["--root", "/no/such/dir", "data", "list"], "is not an mlresearch project", 1, {}),
        (["runs"], "is not an mlresearch project", 1, empty_root),
        (["data", "acquire", "sklearn:wine"], "is not an mlresearch project", 1, empty_root),
        (["nosuchverb"], "No such command 'nosuchverb'. (see mlresearch --help)", 2, {}),
        # data acquire
        (["data", "acquire", f"{t}/nowhere.csv"], "does not exist", 1, {}),
        (["data", "acquire", "sklearn:mnist"], "unknown dataset 'sklearn:mnist'", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--sha256", "0" * 64], "checksum mismatch", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--sha256", "not-hex"], "checksum mismatch", 1, {}),
        (["data", "acquire", f"{t}/ragged.csv"], "malformed CSV", 1, {}),
        (["data", "acquire", f"{t}/empty.csv"], "is empty", 1, {}),
        (["data", "acquire", f"{t}/header.csv"], "no data rows", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--chunk-rows", "0"], "chunk_rows must be at least 1, not 0", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--chunk-rows", "abc"], "Invalid value for '--chunk-rows'", 2, {}),
        (["data", "acquire", f"{t}/ragged.csv", "--chunk-rows", "1"], "malformed CSV", 1, {}),
        (["data", "acquire", f"{t}/header.csv", "--chunk-rows", "1"], "no data rows", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--target", "died"], "target column 'died' is not in", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--name", "My_Data"], "must be a short slug", 1, {}),
        (["data", "acquire", f"{t}/table.xlsx"], "cannot tell the format", 1, {}),
        (["data", "acquire", "ftp://host/x.csv"], "unsupported URL scheme", 1, {}),
        (["data", "acquire", "http://127.0.0.1:9/x.csv"], "could not reach", 1, {}),
        (["data", "acquire", "sklearn:wine", "--name", "digits"], "dataset name 'digits' holds data from sklearn:digits, not sklearn:wine", 1, {}),
        (["data", "acquire", f"{t}/ok.csv", "--name", "iris"], "a new version must come from the same source", 1, {}),
        (["data", "acquire"], "Missing argument", 2, {}),
        (["data", "acquire", f"{t}/no-images"], "holds no images (.png, .jpg", 1, {}),
        (["data", "acquire", f"{t}/loose"], "loose/a.png is not in a class folder: put each class's images in a subfolder named by the class", 1, {}),
        # data list
        (["data", "list", "nope"], "no dataset named 'nope'", 1, {}),
        # eda
        (["eda", "nope"], "no dataset named 'nope'", 1, {}),
        (["eda", "iris", "-p", "max_feature=3"], "unknown parameter 'max_feature'", 1, {}),
        (["eda", "iris", "-p", "max_features=abc"], "expects int", 1, {}),
        (["eda", "iris", "-p", "max_features"], "must look like key=value", 1, {}),
        (["eda", "iris", "-f", f"{t}/missing.toml"], "does not exist", 1, {}),
        (["eda", "iris", "-f", f"{t}/bad.toml"], "is not valid TOML", 1, {}),
        (["eda", "iris@9"], "has no version 9", 1, {}),
        (["eda", "iris@x"], "must be a number from 1", 1, {}),
        (["eda", "iris", "-p", "target=nosuch"], "target column 'nosuch' is not in iris", 1, {}),
        # train
        (["train", "--dataset", "iris", "--model", "svm"], "no model 'svm'; choose a PyTorch model (mlp, cnn", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "lr=nan"], "lr must be a positive number, got nan", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "lr=0"], "lr must be a positive number", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "epochs=0"], "epochs and batch_size must be at least 1", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "batch_size=0"], "epochs and batch_size must be at least 1", 1, {}),
        (["train", "--dataset", "iris", "-p", "epochs=abc"], "expects int", 1, {}),
        (["train", "--dataset", "iris", "-p", "epoch=3"], "did you mean 'epochs'?", 1, {}),
        (["train", "--dataset", "one-class", "--model", "logreg"], "has one class ('a': 40 rows)", 1, {}),
        (["train", "--dataset", "one-class", "--model", "mlp"], "has one class ('a': 40 rows)", 1, {}),
        (["train", "--dataset", "empty-target", "--model", "logreg"], "is empty in every row (0 of 40)", 1, {}),
        (["train", "--dataset", "few-rows", "--model", "logreg"], "too few to split", 1, {}),
        (["train", "--dataset", "iris", "--model", "cnn"], "needs image data", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "device=tpu"], "not a device name", 1, {}),
        (["train", "--dataset", "iris", "-p", "test_size=1.5"], "must be shares", 1, {}),
        (["train", "--dataset", "iris", "-f", f"{t}/missing.toml"], "does not exist", 1, {}),
        (["train", "--dataset", "nope"], "no dataset named 'nope'", 1, {}),
        (["train", "--dataset", "iris", "--model", "logreg", "-p", "seed=-1"], "seed must be from 0 to 2**32 - 1, got -1", 1, {}),
        (["train", "--dataset"], "requires an argument", 2, {}),
        # deliver
        (["deliver", "tiny", "--name", "x", "-p", "lrr=0.1"], "unknown parameter 'lrr' in the overrides; did you mean 'lr'?", 1, {}),
        (["deliver", "tiny", "--name", "x", "-p", "a=one"], "expects int", 1, {}),
        (["deliver", "tiny", "--name", "../x"], "run name '../x' must be a short slug", 1, {}),
        (["deliver", "nope", "--name", "x"], "no template 'nope'", 1, {}),
        (["deliver", "tiny", "--name", "x", "-f", f"{t}/missing.toml"], "does not exist", 1, {}),
        (["deliver", f"{t}/broken.ipynb", "--name", "x"], "is not a readable notebook", 1, {}),
        (["deliver", f"{t}/noparams.ipynb", "--name", "x"], "has no cell tagged 'parameters'", 1, {}),
        (["deliver", "tiny", "--name", "x", "--timeout", "0"], "timeout must be at least 1 second", 1, {}),
        (["deliver", "tiny", "--name", "x", "--timeout", "-5"], "timeout must be at least 1 second", 1, {}),
        (["deliver", "tiny", "--name", "done"], "already exists; a deliver run is never overwritten", 1, {}),
        (["deliver", "train", "--name", "x", "-p", "dataset=nope"], "no dataset named 'nope'", 1, {}),
        (["deliver", "train", "--name", "x", "-p", "dataset=iris@7"], "has no version 7", 1, {}),
        (["deliver", "train", "--name", "x", "-p", "dataset=iris", "-p", "model=nosuch"], "no model 'nosuch'; choose a PyTorch model (mlp, cnn", 1, {}),
        (["deliver", "train", "--name", "x", "-p", "dataset=iris", "-p", "model="], "no model ''; choose a PyTorch model", 1, {}),
        (["deliver", "tiny"], "Missing", 2, {}),
        (["deliver"], "Missing argument 'TEMPLATE' (or --resume RUN)", 2, {}),
        (["deliver", "--resume", "nope"], "no deliver run 'nope'", 1, {}),
        (["deliver", "tiny", "--resume", "done"], "--resume RUN runs RUN's own template; leave out TEMPLATE", 1, {}),
        (["deliver", "--resume", "done"], "succeeded: there is nothing to resume", 1, {}),
        (["deliver", "--resume", "done", "-p", "a=2"], "keeps the parameters of the run it continues", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "hiden=[8]"], "did you mean 'hidden'?", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "optimizer=lion"], "optimizer 'lion' is not one of adamw, sgd", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "accumulate=0"], "accumulate must be at least 1", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "augment=flip,blur"], "augment: unknown 'blur'; choose from flip, crop, rotate", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "augment=flip"], "augmentation is for folders of images, and iris is a table", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "image_size=0"], "image_size=0: give a side in pixels", 1, {}),
        (["train", "--dataset", "iris", "--model", "mlp", "-p", "num_workers=-1"], "num_workers must be 0 (read in this process) or more", 1, {}),
        (["models", "resnet"], "no PyTorch model named 'resnet'", 1, {}),
        # runs
        (["runs", "--sort", "nosuch"], "no run has a metric 'nosuch'; metrics are: score", 1, {}),
        (["runs", "--template", "nosuch"], "no run of template 'nosuch'; templates with runs: tiny", 1, {}),
        (["runs", "--sweep", "nosuch"], "no run of sweep 'nosuch'", 1, {}),
        (["runs", "verify", "nosuch"], "no deliver run 'nosuch'", 1, {}),
        (["runs", "compare", "nosuch"], "no run has a metric 'nosuch'", 1, {}),
        (["runs", "compare", "score", "--by", "nosuch"], "no run has a parameter 'nosuch'", 1, {}),
        (["runs", "compare", "score", "--template", "nosuch"], "no run of template 'nosuch'", 1, {}),
        (["runs", "reproduce", "nosuch"], "no deliver run 'nosuch'", 1, {}),
        (["runs", "reproduce", "done", "--name", "../x"], "must be a short slug", 1, {}),
        # sweep
        (["sweep", "tiny", "--name", "s", "-p", "b=1,2"], "unknown parameter 'b'", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a"], "must look like key=value1,value2", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,,2"], "has an empty value", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,x"], "expects int", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1", "--jobs", "0"], "--jobs must be at least 1", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1", "--threads", "0"], "--threads must be at least 1", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1", "--retries", "-1"], "--retries must be 0 or more", 1, {}),
        (["sweep", "tiny", "--name", "../s", "-p", "a=1"], "must be a short slug", 1, {}),
        (["sweep", "nope", "--name", "s", "-p", "a=1"], "no template 'nope'", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1", "--jobs", "two"], "valid integer", 2, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,2", "--seeds", "0"], "--seeds must be at least 1, not 0", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,2", "-p", "seed=0,1", "--seeds", "2"], "give the seeds once", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=3..1"], "the range 3..1 is empty", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,2", "--search", "bayes"], "--search is grid, random or optuna, not 'bayes'", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1,2", "--trials", "3"], "--trials is for a search", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "random"], "needs its number of trials: --trials N", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "random", "--trials", "0"], "--trials must be at least 1, not 0", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "lr=loguniform:0:1", "--search", "random", "--trials", "2"], "loguniform needs LOW above 0", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:9:1", "--search", "random", "--trials", "2"], "LOW must be below HIGH", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:2", "--search", "random", "--trials", "5"], "the space holds only 2 distinct trials", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "optuna"], "an optuna search needs its number of trials", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "optuna", "--trials", "2", "--seeds", "2"], "an Optuna trial is one run", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "optuna", "--trials", "2", "--metric", "rmse"], "'rmse' is measured on the test split", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "optuna", "--trials", "2"], "this template takes no dataset", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=1", "--search", "optuna", "--trials", "2", "--metric", "score"], "needs a parameter to search", 1, {}),
        (["sweep", "tiny", "--name", "s", "-p", "a=int:1:9", "--search", "optuna", "--trials", "2", "--metric", "score", "--prune-after", "-1"], "--prune-after must be 0 or more", 1, {}),
        # serve (none of these starts a server)
        (["serve", "nosuch"], "no deliver run 'nosuch'", 1, {}),
        (["serve", "done"], "saved no model", 1, {}),
        (["serve", "done", "--workers", "0"], "workers must be at least 1, not 0", 1, {}),
        (["serve", "done", "--port", "70000"], "port must be between 1 and 65535", 1, {}),
        (["serve", "done", "--max-rows", "0"], "max_rows must be at least 1", 1, {}),
        (["serve", "done", "--max-body-mb", "-1"], "max_body_mb must be a positive number of megabytes", 1, {}),
        (["serve", "done", "--timeout", "0"], "timeout must be a positive number of seconds", 1, {}),
        (["serve", "done", "--port", "http"], "valid integer", 2, {}),
        (["serve", "done", "--drift-window", "-1"], "drift_window must be 0 (off) or a number of rows", 1, {}),
        # evaluate, monitor, export: the run is checked first, and nothing is started for a bad one
        (["evaluate", "nosuch", "--dataset", "digits"], "no deliver run 'nosuch'", 1, {}),
        (["evaluate", "done", "--dataset", "digits"], "saved no model", 1, {}),
        (["evaluate", "done"], "Missing option '--dataset'", 2, {}),
        (["monitor", "nosuch", f"{t}/ok.csv"], "no deliver run 'nosuch'", 1, {}),
        (["monitor", "done", f"{t}/ok.csv"], "saved no model", 1, {}),
        (["monitor", "done", f"{t}/ok.csv", "--fail-on", "column"], "--fail-on takes alert, dataset, feature, not 'column'", 1, {}),
        (["monitor", "done", f"{t}/ok.csv", "--fail-on", "ALERT"], "--fail-on takes alert, dataset, feature, not 'ALERT'", 1, {}),
        (["monitor", "done", f"{t}/ok.csv", "--fail-on", ""], "--fail-on takes alert, dataset, feature, not ''", 1, {}),
        (["export", "done"], "saved no model", 1, {}),
        (["export", "done", "--format", "tflite"], "format must be one of onnx, not 'tflite'", 1, {}),
        # keeping data and runs
        (["data", "archive"], "Missing option '--to'", 2, {}),
        (["data", "restore", f"{t}/nosuch.tar.gz"], "nosuch.tar.gz does not exist", 1, {}),
        (["data", "restore", f"{t}/ok.csv"], "is truncated or not an mlresearch archive", 1, {}),
        (["data", "clean", "--older-than", "-1"], "--older-than takes a number of days, 0 or more, not -1", 1, {}),
        (["data", "clean", "--older-than", "week"], "Input should be a valid number", 2, {}),
        (["runs", "archive", "nosuch", "--to", f"{t}/r.tar.gz"], "no deliver run 'nosuch'", 1, {}),
        (["runs", "archive", "done"], "Missing option '--to'", 2, {}),
        (["runs", "restore", f"{t}/ok.csv"], "is truncated or not an mlresearch archive", 1, {}),
        (["runs", "export", "nosuch", "--mlflow", f"sqlite:///{t}/m.db"], "no deliver run 'nosuch'", 1, {}),
        (["runs", "export"], "Missing option '--mlflow'", 2, {}),
        # predict (the run "done" saved no model; the file checks come first)
        (["predict", "nosuch", f"{t}/ok.csv", "-o", f"{t}/p.csv"], "no deliver run 'nosuch'", 1, {}),
        (["predict", "done", f"{t}/ok.csv", "-o", f"{t}/p.csv"], "saved no model", 1, {}),
        (["predict", "done", f"{t}/table.xlsx", "-o", f"{t}/p.csv"], "is not a .csv or .parquet file", 1, {}),
        (["predict", "done", f"{t}/ok.csv", "-o", f"{t}/p.txt"], "is not a .csv or .parquet file", 1, {}),
        (["predict", "done", f"{t}/ok.csv", "-o", f"{t}/ok.csv"], "is the input; choose another file", 1, {}),
        (["predict", "done", f"{t}/ok.csv", "-o", f"{t}/p.csv", "--chunk-rows", "0"], "chunk_rows must be at least 1", 1, {}),
        (["predict", "done", f"{t}/ok.csv"], "saved no model", 1, {}),  # the default output beside the input is not written
        # develop
        (["develop", "../x"], "description '../x' must be a short slug", 1, {}),
        (["develop", "My_Notes"], "must be a short slug", 1, {}),
        (["develop", "x", "--from", "nothing"], "no deliver run 'nothing'", 1, {}),
    ]
    return c


def test_every_bad_input_is_one_line_and_changes_nothing(proj):
    root, env, tmp = proj
    before = _files(root/"data/raw", root/"research/deliver")
    all_cases = cases(tmp)
    assert len(all_cases) >= 60
    def one(case):
        args, needle, code, extra = case
        res = mlresearch_here(*args, env={**env, **extra})  # the command's entry point, in this process: 90 calls in seconds
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]  # log lines may come before it
        ok = (res.returncode == code and len(errors) == 1 and res.stderr.strip().splitlines()[-1] == errors[0] and needle in errors[0]
              and "Traceback" not in res.stderr + res.stdout)
        return None if ok else f"{' '.join(args)}: exit {res.returncode}, stderr {res.stderr.strip()!r}"
    problems = [p for p in map(one, all_cases) if p]
    assert problems == [], "\n".join(problems)
    assert not (tmp/"ok.predictions.csv").exists()
    assert _files(root/"data/raw", root/"research/deliver") == before, "a bad input changed data/raw or an earlier run"
    run("mlresearch", "data", "verify", env=env, check=0)
    run("mlresearch", "runs", "verify", env=env, check=0)


def test_runs_reproduce_refuses_a_run_whose_raw_data_changed(proj):
    root, env, tmp = proj
    run("mlresearch", "deliver", "train", "--name", "few", "-p", "dataset=iris", "-p", "model=logreg", env=env, check=0)
    f = root/"data/raw/iris_raw_sklearn_v1.parquet"
    saved = f.read_bytes()
    try:
        os.chmod(f, 0o644); f.write_bytes(saved[:-8] + bytes(8))
        res = run("mlresearch", "runs", "reproduce", "few", env=env, check=1)
        assert res.stderr.strip() == ("error: data/raw/iris_raw_sklearn_v1.parquet no longer matches the sha256 run "
                                      f"{DAY}_few recorded; restore the file (mlresearch data verify) to reproduce the run")
    finally:
        f.write_bytes(saved); os.chmod(f, 0o444)
    assert not list((root/"research/deliver").glob("*few-repro*"))


def _one_error_line(res, needle):
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    ok = res.returncode == 1 and len(errors) == 1 and res.stderr.strip().splitlines()[-1] == errors[0] and needle in errors[0] and "Traceback" not in res.stderr
    return None if ok else f"exit {res.returncode}, stderr {res.stderr.strip()!r}, wanted {needle!r}"


def test_corrupt_records_are_named_in_one_line(proj, tmp_path):
    "A manifest, sweep record, run record, run parameters or model config that does not parse or has the wrong shape: one line naming the file"
    import shutil
    src, _, tmp = proj
    root = tmp_path/"proj"
    shutil.copytree(src, root, symlinks=True)
    env = project_env(root)
    run("mlresearch", "deliver", "train", "--name", "model", "-p", "dataset=iris", "-p", "model=logreg", env=env, check=0)
    run("mlresearch", "sweep", "tiny", "--name", "sw", "-p", "a=1", env=env, check=0)
    (done,) = (root/"research/deliver").glob("*_done")
    (model,) = (root/"research/deliver").glob("*_model")
    manifest, sweep = root/"data/raw/manifest.json", root/"research/sweeps/sw.json"
    cases = [  # (file, bad content, command, what the line says)
        (manifest, '{"format": 1, "datasets": [', ["data", "list"], f"the data manifest {manifest} is not valid JSON ("),
        (manifest, "[]", ["data", "verify"], f"the data manifest {manifest} holds a list, not an object"),
        (manifest, "null", ["data", "list"], f"the data manifest {manifest} holds null, not an object"),
        (manifest, '{"datasets": [{"name": "iris", "version": 1, "sha256": "0"}]}', ["data", "list"], f"the data manifest {manifest}: entry 1 has no valid 'file'"),
        (manifest, '{"datasets": {}}', ["deliver", "train", "--name", "x", "-p", "dataset=iris"], f"the data manifest {manifest}: 'datasets' is an object, not a list"),
        (sweep, '{"name": "sw", "points": [', ["sweep", "tiny", "--name", "sw", "-p", "a=1"], f"sweep record {sweep} is not valid JSON ("),
        (sweep, "[]", ["sweep", "tiny", "--name", "sw", "-p", "a=1"], f"sweep record {sweep} holds a list, not an object"),
        (sweep, '{"name": "sw", "template": "research/templates/tiny.ipynb", "grid": {}}', ["sweep", "tiny", "--name", "sw", "-p", "a=1"],
         f"sweep record {sweep} has no 'points'"),
        (sweep, '{"name": "sw", "template": "t", "grid": {}, "points": [{"number": 1}]}', ["sweep", "tiny", "--name", "sw", "-p", "a=1"], f"sweep record {sweep}: point 1 has no valid 'values', 'params', 'runs'"),
        (done/"provenance.json", "{", ["runs", "reproduce", "done"], f"run record {done/'provenance.json'} is not valid JSON ("),
        (done/"provenance.json", '{"status": "failed"}', ["deliver", "--resume", "done"], f"run record {done/'provenance.json'} has no 'template'"),
        (done/"provenance.json", "[1]", ["develop", "x", "--from", "done"], f"run record {done/'provenance.json'} holds a list, not an object"),
        (done/"params.toml", "a = = 1", ["runs", "reproduce", "done"], f"run parameters {done/'params.toml'} is not valid TOML ("),
        (model/"artifacts/model/config.json", '{"task": "classification"}', ["predict", "model", f"{tmp}/ok.csv"], "config.json"),
    ]
    problems = []
    for f, text, args, needle in cases:
        saved = f.read_bytes()
        f.chmod(0o644); f.write_text(text)
        try: problems.append(_one_error_line(mlresearch_here(*args, env=env), needle))
        finally: f.write_bytes(saved); f.chmod(0o444 if "deliver" in str(f) else 0o644)
    assert [p for p in problems if p] == []
