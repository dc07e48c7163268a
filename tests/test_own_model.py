"""A researcher's own model, added as README's "Adding a model" says (a notebook, one decorator, nbdev-export), through every verb; what
training learned kept in the run; a killed run resumed; the model's code tied to the run."""
import json, shutil, signal, socket, subprocess, sys, time, tomllib

import httpx
import pandas as pd
import psutil
import pytest

from conftest import BIN, run
from mlresearch.testing import copy_env, project_copy, write_model_notebook


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    "A fresh copy of this project (its own git repository) with the residual-MLP notebook added and exported, and nothing else edited"
    root = project_copy(tmp_path_factory.mktemp("clone")/"proj")
    nb = write_model_notebook(root)
    env = copy_env(root)
    run("nbdev-export", env=env, cwd=root, check=0)
    return root, env, nb


def mlr(own, *args, check=None):
    "`mlresearch ARGS` in the copy, as a process of its own: the copy's package, with the model notebook's module, is not this one"
    root, env, _ = own
    return run("mlresearch", *args, env=env, cwd=root, check=check, fresh=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving(own, run_name, *extra):
    "`mlresearch serve RUN` in a real process: (process, url), or the process that exited"
    root, env, _ = own
    port = _free_port()
    p = subprocess.Popen([str(BIN/"mlresearch"), "serve", run_name, "--port", str(port), *extra], env=env, cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if p.poll() is not None: return p, None
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200: return p, url
        except httpx.HTTPError: time.sleep(0.2)
    p.kill()
    pytest.fail(f"server did not start: {p.stdout.read()}")


def test_the_notebook_model_is_listed_trained_and_its_fields_are_parameters(own):
    root, env, nb = own
    assert (root/"mlresearch/resmlp.py").is_file() and nb.name.endswith("_resmlp.ipynb")
    listed = mlr(own, "models", check=0).stdout
    assert "resmlp  mlresearch.resmlp.ResMLP, table data" in listed and "  n_blocks  = 2             residual blocks" in listed, listed
    res = mlr(own, "train", "--dataset", "sklearn:wine", "--model", "resmlp", "-p", "n_blocks=3", "-p", "epochs=5", check=0)
    assert "val_accuracy" in res.stdout and "accuracy" in res.stdout
    # stderr is a pipe, not a terminal: one line per epoch
    assert [ln.split("  ")[0] for ln in res.stderr.splitlines() if ln.startswith("epoch ")] == [f"epoch {i}/5" for i in range(1, 6)], res.stderr
    bad = mlr(own, "train", "--dataset", "wine", "--model", "resmlp", "-p", "n_block=3", check=1)
    assert bad.stderr.strip() == "error: unknown parameter 'n_block' for model 'resmlp'; did you mean 'n_blocks'? (resmlp's fields: width, n_blocks, dropout)"
    other = mlr(own, "train", "--dataset", "wine", "--model", "resmlp", "-p", "hidden=[64]", check=1)
    assert "hidden is a field of mlp" in other.stderr and len(other.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def delivered(own):
    res = mlr(own, "deliver", "train", "--name", "wine-resmlp", "-p", "dataset=wine", "-p", "model=resmlp", "-p", "n_blocks=3",
              "-p", "epochs=6", check=0)
    folder = own[0]/"research/deliver"/res.stdout.splitlines()[0].split("/")[-1]
    return folder, res


def test_a_deliver_run_keeps_its_fields_records_code_and_patch(own, delivered):
    folder, res = delivered
    params = tomllib.loads((folder/"params.toml").read_text())
    assert (params["model"], params["n_blocks"], params["width"]) == ("resmlp", 3, 64)
    assert not {"hidden", "channels", "batch_norm"} & set(params)  # only the chosen model's fields
    relayed = [ln for ln in res.stderr.splitlines() if ": epoch " in ln]
    assert relayed[0].startswith(f"{folder.name}: epoch 1/6  train_loss ") and len(relayed) == 6, res.stderr
    lines = (folder/"artifacts/training/metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "lr", "seconds"} <= json.loads(lines[0]).keys()
    assert (folder/"artifacts/training/last.ckpt").stat().st_size > 0
    metrics = json.loads((folder/"metrics.json").read_text())
    assert {"accuracy", "val_accuracy", "val_loss", "best_epoch"} <= metrics.keys()
    prov = json.loads((folder/"provenance.json").read_text())
    assert prov["code"][0]["module"] == "mlresearch.resmlp" and prov["code"][0]["cls"] == "ResMLP" and len(prov["code"][0]["sha256"]) == 64
    assert prov["git"]["dirty"] and prov["git"]["patch"] == "git.patch"
    patch = (folder/"git.patch").read_bytes()
    assert b"+++ b/mlresearch/resmlp.py" in patch and b"_resmlp.ipynb" in patch  # the untracked notebook and its module
    assert len(prov["packages"]) > 50 and "httpx" in prov["packages"]  # every installed distribution


def test_sweep_serve_predict_evaluate_monitor_export_on_its_runs(own, delivered, tmp_path):
    root, env, _ = own
    folder, _ = delivered
    sw = mlr(own, "sweep", "train", "--name", "blocks", "-p", "dataset=wine", "-p", "model=resmlp", "-p", "n_blocks=1,2", "-p", "epochs=3",
             "--quiet", check=0)
    assert sw.stdout.count("succeeded") >= 2 and ": epoch " not in sw.stderr, sw.stdout
    assert [tomllib.loads((root/f"research/deliver/{folder.name[:10]}_blocks-00{i}/params.toml").read_text())["n_blocks"] for i in (1, 2)] == [1, 2]
    kept = pd.read_parquet(folder/"artifacts/test_predictions.parquet")
    raw = pd.read_parquet(next((root/"data/raw").glob("wine_*.parquet")))
    rows = raw.iloc[kept["row"]].drop(columns="target")
    p, url = _serving(own, "wine-resmlp")
    try:
        got = httpx.post(f"{url}/predict", json={"records": rows.to_dict("records")}, timeout=30).json()
        assert got["predictions"] == kept["prediction"].tolist()  # the notebook's predictions of the test split
        assert httpx.get(f"{url}/metadata").json()["code_change"] is None
    finally: p.terminate(); p.wait(30)
    rows.to_csv(tmp_path/"rows.csv", index=False)
    mlr(own, "predict", "wine-resmlp", tmp_path/"rows.csv", "--output", tmp_path/"preds.csv", check=0)
    assert pd.read_csv(tmp_path/"preds.csv")["prediction"].tolist() == kept["prediction"].tolist()
    assert "succeeded: accuracy=" in mlr(own, "evaluate", "wine-resmlp", "--dataset", "wine", check=0).stdout
    mon = mlr(own, "monitor", "wine-resmlp", tmp_path/"rows.csv")
    last = mon.stdout.strip().splitlines()[-1]  # its own test split: no drift; 36 rows make PSI noisy, said as a warning
    assert mon.returncode == 0 and last.startswith(("ok: 0 of 13 features drifted", "warning: 0 of 13 features drifted")), mon.stdout + mon.stderr
    assert mlr(own, "export", "wine-resmlp", "--format", "onnx", "--output", tmp_path/"onnx", check=0).stdout.startswith("exported: ")


def test_a_changed_model_class_is_refused_unless_allowed(own, delivered, tmp_path):
    root, env, _ = own
    folder, _ = delivered
    src = root/"mlresearch/resmlp.py"
    before = src.read_text()
    recorded = json.loads((folder/"provenance.json").read_text())["code"][0]["sha256"]
    src.write_text(before.replace("nn.GELU()", "nn.SiLU()"))  # the same weights' shapes, other predictions
    try:
        p, url = _serving(own, "wine-resmlp")
        assert url is None and p.returncode == 1
        out = p.stdout.read().strip().splitlines()[-1]
        assert out.startswith("error: run ") and "mlresearch.resmlp.ResMLP" in out and recorded[:12] in out and "--allow-code-change" in out, out
        now = subprocess.run([sys.executable, "-c", "from mlresearch.weights import _code_now; print(_code_now('resmlp')['sha256'])"],
                             env=env, cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        assert now != recorded and now[:12] in out
        p, url = _serving(own, "wine-resmlp", "--allow-code-change")
        try:
            meta = httpx.get(f"{url}/metadata").json()
            assert meta["code_change"]["recorded"]["sha256"] == recorded and meta["code_change"]["current"]["sha256"] == now
        finally: p.terminate(); p.wait(30)
        verify = mlr(own, "runs", "verify", "wine-resmlp", check=0)
        assert any(ln.startswith("warning: ") and "changed since it was trained" in ln for ln in verify.stdout.splitlines()), verify.stdout
        raw = pd.read_parquet(next((root/"data/raw").glob("wine_*.parquet")))
        raw.drop(columns="target").head(5).to_csv(tmp_path/"rows.csv", index=False)
        refused = mlr(own, "predict", "wine-resmlp", tmp_path/"rows.csv", "--output", tmp_path/"x.csv", check=1)
        assert "changed since it was trained" in refused.stderr and not (tmp_path/"x.csv").exists()
        mlr(own, "predict", "wine-resmlp", tmp_path/"rows.csv", "--output", tmp_path/"x.csv", "--allow-code-change", check=0)
        assert json.loads((tmp_path/"x.csv.json").read_text())["code_change"]["recorded"]["sha256"] == recorded
        repro = mlr(own, "runs", "reproduce", "wine-resmlp", check=1)
        assert "git.patch" in repro.stderr and "uncommitted changes" in repro.stderr, repro.stderr
    finally: src.write_text(before)


def test_the_notebook_passes_nbdev_test_and_check(own):
    root, env, nb = own
    # the new notebook, and lessons that list the registered models
    run("nbdev-test", "--n-workers", "2", "--file-re", rf"^({nb.stem}|09_models|35_cli)\.ipynb$", env=env, cwd=root, check=0)
    res = run("mlresearch", "check", env=env, cwd=root, fresh=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _kill_tree(pid):
    "SIGKILL a process and every process under it (the kernel too), as a power cut would"
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for p in procs:
        try: p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(project):
    root, env = project
    args = ("-p", "dataset=sklearn:digits", "-p", "model=cnn", "-p", "epochs=6", "-p", "patience=0", "-p", "deterministic=true",
            "-p", "device=cpu", "-p", "checkpoint_every=0", "-p", "threads=1")
    full = run("mlresearch", "deliver", "train", "--name", "full", *args, env=env, check=0)
    full_dir = root/"research/deliver"/full.stdout.splitlines()[0].split("/")[-1]
    p = subprocess.Popen([str(BIN/"mlresearch"), "deliver", "train", "--name", "cut", "--quiet", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cut = next(iter(sorted(root.glob("research/deliver/*_cut"))), None)
    deadline = time.time() + 300
    while time.time() < deadline:
        cut = next(iter(sorted(root.glob("research/deliver/*_cut"))), None)
        lines = cut and (cut/"artifacts/training/metrics.jsonl").is_file() and len((cut/"artifacts/training/metrics.jsonl").read_text().splitlines())
        if lines and lines >= 3: break
        time.sleep(0.05)
    _kill_tree(p.pid)
    p.wait()
    done = len((cut/"artifacts/training/metrics.jsonl").read_text().splitlines())
    assert 3 <= done < 6, done  # killed halfway
    assert json.loads((cut/"provenance.json").read_text())["status"] == "running"  # the process died: nothing recorded its end
    res = run("mlresearch", "deliver", "--resume", cut.name, env=env, check=0)
    new = root/"research/deliver"/res.stdout.splitlines()[0].split("/")[-1]
    prov = json.loads((new/"provenance.json").read_text())
    assert prov["status"] == "succeeded" and prov["resumes"] == cut.name and new.name.endswith("cut-resumed")
    assert (new/"artifacts/model/model.safetensors").read_bytes() == (full_dir/"artifacts/model/model.safetensors").read_bytes()
    assert (new/"params.toml").read_bytes() == (cut/"params.toml").read_bytes()
    untimed = [[{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in (d/"artifacts/training/metrics.jsonl").read_text().splitlines()]
               for d in (new, full_dir)]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 6
    again = run("mlresearch", "deliver", "--resume", new.name, env=env, check=1)
    assert again.stderr.strip() == f"error: run {new.name} succeeded: there is nothing to resume (`mlresearch runs reproduce` runs it again)"
    # a run made now reproduces: weights byte-equal, training records equal but for their wall-clock times
    rep = run("mlresearch", "runs", "reproduce", full_dir.name, env=env, check=0)
    assert rep.stdout.splitlines()[-1].startswith("identical: ") and "artifacts/model/model.safetensors byte-equal" in " ".join(rep.stdout.split()), rep.stdout
    assert "artifacts/training/metrics.jsonl equal but for wall-clock times" in " ".join(rep.stdout.split()), rep.stdout
    repro = root/"research/deliver"/rep.stdout.splitlines()[0].split()[-1]
    assert json.loads((repro/"provenance.json").read_text())["reproduces"] == dict(run=full_dir.name, template_changed=False)
    assert (repro/"metrics.json").read_bytes() == (full_dir/"metrics.json").read_bytes()


def test_a_warm_start_is_recorded_and_refused_for_another_architecture(project):
    root, env = project
    base = ("-p", "dataset=sklearn:iris", "-p", "model=mlp", "-p", "epochs=3", "-p", "hidden=[16]")
    first = run("mlresearch", "deliver", "train", "--name", "first", "--quiet", *base, env=env, check=0)
    first_dir = first.stdout.splitlines()[0].split("/")[-1]
    warm = run("mlresearch", "deliver", "train", "--name", "warm", "--quiet", *base, "-p", "init=first", env=env, check=0)
    warm_dir = root/"research/deliver"/warm.stdout.splitlines()[0].split("/")[-1]
    prov = json.loads((warm_dir/"provenance.json").read_text())
    assert [m["run"] for m in prov["models"]] == [first_dir]  # the run it started from, with its model files' sha256
    assert tomllib.loads((warm_dir/"params.toml").read_text())["init"] == "first"
    from mlresearch.config import ConfigError
    from mlresearch.pipeline import train
    with pytest.raises(ConfigError, match="warm-start from a run of the same model and fields"):
        train(dict(dataset="iris", model="mlp", epochs=1, hidden=[8], init="first"), root=root)
    # a run made before model fields were parameters: its params.toml held hidden, channels and dropout whatever the model
    old = root/"research/deliver"/"2025-01-01_old"
    shutil.copytree(root/"research/deliver"/first_dir, old)
    params = old/"params.toml"
    params.chmod(0o644)
    params.write_text(params.read_text().replace("hidden = [", "channels = [32, 64]\nhidden = ["))
    rep = run("mlresearch", "runs", "reproduce", old.name, env=env, check=1)
    assert rep.stderr.startswith(f"error: run {old.name} cannot be reproduced by this version: its parameters no longer fit the template ("), rep.stderr
    assert "channels" in rep.stderr and len(rep.stderr.strip().splitlines()) == 1
