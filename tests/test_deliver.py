"Deliver runs, the run index, sweeps (local and on a Dask LocalCluster) and develop notebooks, through the CLI."
import json, os, signal, subprocess, time

import nbformat
import pytest

from conftest import BIN, REPO, run


def make_template(root, name, cells):
    "A template whose first cell (tagged `parameters`) holds the defaults"
    nb = nbformat.v4.new_notebook(metadata=nbformat.read(REPO/"research/templates/eda.ipynb", as_version=4).metadata,
                                  cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, root/"research/templates"/f"{name}.ipynb")


@pytest.fixture
def tiny(project):
    "A scratch project with a fast template: `score = a * lr` logged as a metric, and a cell that fails when asked"
    root, env = project
    make_template(root, "tiny", ["a = 1\nlr = 0.5\nfail = False",
                                 "from mlresearch.record import log_metrics\nlog_metrics(score=a * lr)",
                                 "if fail: raise ValueError(f'asked to fail with a={a}')"])
    return root, env


def runs_of(root):
    d = root/"research/deliver"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def run_folder(res):
    "The folder a deliver command printed on its first line"
    from pathlib import Path
    return Path(res.stdout.splitlines()[0].removeprefix("run: "))


def test_train_template_parameters_are_train_defaults():
    from mlresearch.pipeline import TRAIN_DEFAULTS
    from mlresearch.execute import template_parameters
    assert template_parameters(REPO/"research/templates/train.ipynb") == TRAIN_DEFAULTS


def test_a_deterministic_cpu_run_keeps_everything_a_run_folder_must(project):
    # that a second deterministic run gives the same bytes is `runs reproduce`'s to show, on a CNN (test_own_model's killed run: the
    # weights byte-equal) and on an MLP and a baseline (test_a_run_pins_its_data_version_and_reproduces_exactly: metrics.json byte-equal)
    root, env = project
    args = ("-p", "epochs=3", "-p", "deterministic=true", "-p", "device=cpu")
    ra = run_folder(run("mlresearch", "deliver", "train", "--name", "cnn-a", *args, env=env, check=0))
    ma = (ra/"metrics.json").read_bytes()
    assert json.loads(ma)["accuracy"] > 0.9
    # everything the issue asks of a run folder
    assert sorted(p.name for p in ra.iterdir()) == ["SHA256SUMS", "artifacts", "metrics.json", "params.toml", "provenance.json", "train.ipynb"]
    prov = json.loads((ra/"provenance.json").read_text())
    assert prov["status"] == "succeeded" and prov["seed"] == 0 and prov["device"]["used"] == "cpu"
    assert prov["command"] == "mlresearch deliver train --name cnn-a " + " ".join(args)
    assert prov["packages"]["torch"].startswith("2.") and prov["python"] and prov["platform"] and prov["ended"] >= prov["started"]
    paths = [d["path"] for d in prov["data"]]  # what the run read: the raw file, and the processed cache entry it made
    assert "data/raw/digits_raw_sklearn_v1.parquet" in paths and any(p.startswith("data/processed/digits_processed_") for p in paths), paths
    assert all(len(d["sha256"] or "") == 64 for d in prov["data"] if d["path"].startswith("data/"))
    assert all(not f.stat().st_mode & 0o222 for f in ra.rglob("*") if f.is_file())
    # the saved model predicts like the run said
    from mlresearch.modelfile import load_model
    m = load_model(ra/"artifacts/model")
    assert m.config["metrics"]["accuracy"] == json.loads(ma)["accuracy"]


def test_a_kernel_ends_fast_yet_runs_exit_handlers_and_flushes_files_left_open(project, tmp_path):
    "The kernel skips the interpreter's teardown (execute.KERNEL_LAUNCHER), not what a normal exit does for the notebook's code"
    root, env = project
    left, handler = tmp_path/"left-open.txt", tmp_path/"atexit.txt"
    make_template(root, "leaves", [f"left = {str(left)!r}\nhandler = {str(handler)!r}",
                                   "import atexit, pathlib\nf = open(left, 'w'); f.write('buffered, never closed')\n"
                                   "atexit.register(lambda: pathlib.Path(handler).write_text('ran'))",
                                   "import torch\ng = open(left + '.2', 'w'); g.write('x' * 100)\ndel g"])
    res = run("mlresearch", "deliver", "leaves", "--name", "leaves", env=env, check=0)
    assert left.read_text() == "buffered, never closed" and handler.read_text() == "ran", res.stderr
    assert (tmp_path/"left-open.txt.2").read_text() == "x" * 100


def test_plain_papermill_runs_the_train_template(project, tmp_path):
    root, env = project
    out = tmp_path/"train.ipynb"
    run("papermill", "--no-progress-bar", "--log-level", "WARNING", REPO/"research/templates/train.ipynb", out,
        "-p", "model", "logreg", env=env, cwd=root, check=0)
    models = list((root/"research/develop").glob("*_tester_train-logreg/model/model.skops"))
    assert len(models) == 1, list((root/"research/develop").iterdir())
    nb = nbformat.read(out, as_version=4)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs) >= 2
    assert runs_of(root) == []


def test_runs_verify_names_edited_deleted_and_added_files(tiny):
    root, env = tiny
    folder = run_folder(run("mlresearch", "deliver", "tiny", "--name", "tamper", env=env, check=0))
    assert run("mlresearch", "runs", "verify", env=env, check=0).stdout.strip() == "ok: 1 run(s) match their checksums"
    m = folder/"metrics.json"
    m.chmod(0o644); m.write_text(m.read_text().replace("0.5", "0.9"))
    res = run("mlresearch", "runs", "verify", "tamper", env=env, check=1)
    assert res.stdout.strip() == f"modified: {folder.name}/metrics.json (sha256 differs)"
    assert res.stderr.strip() == "error: 1 of 1 run(s) differ from their checksums"
    (folder/"params.toml").unlink()
    (folder/"artifacts").mkdir(); (folder/"artifacts/extra.txt").write_text("x")
    out = run("mlresearch", "runs", "verify", env=env, check=1).stdout.splitlines()
    assert out == [f"missing: {folder.name}/params.toml (listed in SHA256SUMS)", f"added: {folder.name}/artifacts/extra.txt (not in SHA256SUMS)",
                   f"modified: {folder.name}/metrics.json (sha256 differs)"]


def test_a_template_failing_in_its_third_cell_leaves_a_failed_run(project):
    root, env = project
    make_template(root, "breaks", ["n = 3", "x = n * 2", "raise RuntimeError(f'third cell broke with x={x}')", "print('never')"])
    res = run("mlresearch", "deliver", "breaks", "--name", "breaks", env=env, check=1)
    folder = run_folder(res)
    assert res.stderr.strip().splitlines()[-1] == \
        f"error: run {folder.name} failed: cell 3 raised RuntimeError: third cell broke with x=6; see {folder}"
    prov = json.loads((folder/"provenance.json").read_text())
    assert prov["status"] == "failed" and prov["notebook"] == "breaks.failed.ipynb"
    err = prov["error"]
    assert (err["type"], err["message"], err["cell"]) == ("RuntimeError", "third cell broke with x=6", 3)
    assert "raise RuntimeError(f'third cell broke with x={x}')" in err["traceback"] and "RuntimeError: third cell broke with x=6" in err["traceback"]
    nb = nbformat.read(folder/"breaks.failed.ipynb", as_version=4)
    assert nb.cells[-1].outputs == []  # the cell after the failure never ran
    assert run("mlresearch", "runs", "verify", folder.name, env=env, check=0)
    assert "failed" in run("mlresearch", "runs", env=env, check=0).stdout


def test_a_template_that_exits_early_is_a_failed_run(project):
    "papermill itself lets `sys.exit(0)` pass: the cells after it never run, yet it returns normally"
    root, env = project
    make_template(root, "quits", ["n = 1", "import sys\nsys.exit(0)", "print('never')"])
    res = run("mlresearch", "deliver", "quits", "--name", "quits", env=env, check=1)
    folder = run_folder(res)
    assert res.stderr.strip().splitlines()[-1] == f"error: run {folder.name} failed: cell 2 raised SystemExit: 0; see {folder}"
    prov = json.loads((folder/"provenance.json").read_text())
    assert (prov["status"], prov["error"]["type"], prov["error"]["cell"], prov["notebook"]) == ("failed", "SystemExit", 2, "quits.failed.ipynb")
    assert "failed" in run("mlresearch", "runs", env=env, check=0).stdout


def test_a_dead_kernel_fails_the_run(project):
    root, env = project
    make_template(root, "dies", ["x = 1", "import os\nos._exit(3)"])
    folder = run_folder(run("mlresearch", "deliver", "dies", "--name", "dies", env=env, check=1))
    prov = json.loads((folder/"provenance.json").read_text())
    assert (prov["status"], prov["error"]["type"]) == ("failed", "DeadKernelError")


def ctrl_c_as_at_a_terminal():
    "SIGINT's default action in the child, as a command typed at a terminal has it: a shell script's `pytest &` starts it ignored"
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_interrupts_the_run_and_keeps_what_ran(project, sig, code):
    root, env = project
    make_template(root, "sleepy", ["secs = 60", "from mlresearch.record import log_metrics\nlog_metrics(before=1)",
                                   "import time\ntime.sleep(secs)", "log_metrics(after=1)"])
    p = subprocess.Popen([str(BIN/"mlresearch"), "deliver", "sleepy", "--name", "sleepy"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_at_a_terminal)
    folder = None
    for _ in range(600):  # wait until the second cell has logged its metric, then stop the run
        time.sleep(0.1)
        found = list((root/"research/deliver").glob("*_sleepy/metrics.json"))
        if found: folder = found[0].parent; break
    assert folder is not None, p.communicate()
    time.sleep(0.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.strip().splitlines()[-1] == f"error: run {folder.name} interrupted: stopped by {sig.name}; see {folder}"
    prov = json.loads((folder/"provenance.json").read_text())
    assert (prov["status"], prov["error"]["signal"], prov["notebook"]) == ("interrupted", sig.name, "sleepy.failed.ipynb")
    assert json.loads((folder/"metrics.json").read_text()) == {"before": 1}
    assert not [f for f in folder.rglob(".*")], "temporary files left behind"
    assert run("mlresearch", "runs", "verify", env=env, check=0)


def test_bad_deliver_requests_fail_in_one_line_and_write_nothing(tiny):
    root, env = tiny
    cases = [
        (("tiny", "--name", "x", "-p", "lrr=0.1"), "error: unknown parameter 'lrr' in the overrides; did you mean 'lr'?"),
        (("tiny", "--name", "x", "-p", "a=one"), "error: "),
        (("tiny", "--name", "../x"), "error: run name '../x' must be a short slug"),
        (("nope", "--name", "x"), "error: no template 'nope'; templates are: eda, evaluate, tiny, train"),
        (("tiny", "--name", "x", "-f", str(root/"missing.toml")), "error: "),
    ]
    for args, start in cases:
        res = run("mlresearch", "deliver", *args, env=env, check=1)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(start), (args, res.stderr)
    assert runs_of(root) == []
    folder = run_folder(run("mlresearch", "deliver", "tiny", "--name", "once", env=env, check=0))
    before = (folder/"metrics.json").read_bytes()
    res = run("mlresearch", "deliver", "tiny", "--name", "once", "-p", "a=5", env=env, check=1)
    assert res.stderr.strip() == f"error: run {folder} already exists; a deliver run is never overwritten: choose another --name"
    assert (folder/"metrics.json").read_bytes() == before and runs_of(root) == [folder.name]


def test_a_run_repeats_from_its_params_toml(tiny):
    root, env = tiny
    first = run_folder(run("mlresearch", "deliver", "tiny", "--name", "first", "-p", "a=4", env=env, check=0))
    again = run_folder(run("mlresearch", "deliver", "tiny", "--name", "again", "-f", first/"params.toml", env=env, check=0))
    assert (again/"params.toml").read_text() == (first/"params.toml").read_text()
    assert json.loads((again/"metrics.json").read_text()) == {"score": 2.0}


def test_runs_table_sort_and_compare(tiny, tmp_path):
    root, env = tiny
    for a in (1, 3, 2): run("mlresearch", "deliver", "tiny", "--name", f"a{a}", "-p", f"a={a}", env=env, check=0)
    lines = run("mlresearch", "runs", "--sort", "score", env=env, check=0).stdout.splitlines()
    assert lines[0].split() == ["run", "template", "status", "a", "score", "figures", "path"]
    assert [ln.split()[0].split("_")[1] for ln in lines[1:]] == ["a3", "a2", "a1"]
    assert lines[1].split()[-1].endswith("_a3")  # the path column
    res = run("mlresearch", "runs", "compare", "score", "--out", tmp_path/"score.png", env=env, check=0)
    assert (tmp_path/"score.png").read_bytes()[:4] == b"\x89PNG" and "figure:" in res.stdout
    res = run("mlresearch", "runs", "compare", "accuracy", env=env, check=1)
    assert res.stderr.strip() == "error: no run has a metric 'accuracy'; metrics are: score"
    from mlresearch.runs import runs_index
    df = runs_index(root)
    assert list(df.sort_values("metric.score")["param.a"]) == [1, 2, 3]


def test_sweep_reports_failures_and_continues_where_it_stopped(tiny):
    root, env = tiny
    args = ("sweep", "tiny", "--name", "grid", "-p", "a=1,2", "-p", "fail=false,true", "--jobs", "2")
    make_template(root, "tiny", ["a = 1\nlr = 0.5\nfail = False", "from mlresearch.record import log_metrics\nlog_metrics(score=a * lr)",
                                 "if fail and a == 2: raise ValueError(f'asked to fail with a={a}')"])  # one point of four fails
    res = run("mlresearch", *args, env=env, check=1)
    day = time.strftime('%Y-%m-%d')
    assert res.stderr.strip() == f"error: 1 of 4 point(s) did not succeed: {day}_grid-004; run the same command again to retry them"
    assert sum(line.startswith("[") for line in res.stdout.splitlines()) == 4
    table = [ln.split() for ln in res.stdout.splitlines() if ln.strip().startswith(day)]
    assert [(t[0], t[1]) for t in table] == [(f"{day}_grid-00{i}", s) for i, s in zip((1, 2, 3, 4), ["succeeded"] * 3 + ["failed"])]
    provs = [json.loads((root/"research/deliver"/r/"provenance.json").read_text()) for r in runs_of(root)]
    assert [p["status"] for p in provs] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert {p["sweep"] for p in provs} == {"grid"}
    assert {p["threads"]["OMP_NUM_THREADS"] for p in provs} == {str(max(1, (os.cpu_count() or 1) // 2))}
    # the same command again, nothing fixed: the three succeeded points are skipped, the failed one runs again as a new run
    res = run("mlresearch", *args, env=env, check=1)
    assert res.stdout.splitlines()[0] == "sweep grid: 4 point(s), 3 succeeded earlier, 1 to run on 2 local processes"
    assert [ln.split()[:3] for ln in res.stdout.splitlines() if ln.startswith("[")] == [["[1]", f"{day}_grid-004-2", "failed:"]]
    assert [r.split("_")[1] for r in runs_of(root)] == ["grid-001", "grid-002", "grid-003", "grid-004", "grid-004-2"]
    assert json.loads((root/"research/deliver"/f"{day}_grid-004/provenance.json").read_text())["status"] == "failed"  # kept as it was
    record = json.loads((root/"research/sweeps/grid.json").read_text())
    assert [[r["run"].split("_")[1] for r in p["runs"]] for p in record["points"]] == [["grid-001"], ["grid-002"], ["grid-003"], ["grid-004", "grid-004-2"]]
    # a grid that differs is refused; --retries runs a failed point again in the same call; the runs table filters by sweep
    res = run("mlresearch", "sweep", "tiny", "--name", "grid", "-p", "a=1,2,3", "-p", "fail=false,true", env=env, check=1)
    assert res.stderr.strip() == "error: this grid adds 2 point(s) to sweep 'grid' (a=3 fail=false; a=3 fail=true); add --extend to run them, or choose another --name"
    res = run("mlresearch", *args, "--retries", "1", env=env, check=1)
    assert [r.split("_")[1] for r in runs_of(root)][-2:] == ["grid-004-3", "grid-004-4"]
    res = run("mlresearch", "runs", "--sweep", "grid", env=env, check=0)
    assert len(res.stdout.splitlines()) == 1 + 7 and res.stdout.splitlines()[0].split()[:4] == ["run", "template", "status", "sweep"]
    assert run("mlresearch", "runs", "--sweep", "nope", env=env, check=1).stderr.strip() == "error: no run of sweep 'nope'; sweeps with runs: grid"
    res = run("mlresearch", "sweep", "tiny", "--name", "typo", "-p", "b=1,2", env=env, check=1)
    assert res.stderr.strip() == "error: unknown parameter 'b' in the overrides; known: a, fail, lr"
    assert len(runs_of(root)) == 7


def test_fail_fast_stops_launching(tiny):
    root, env = tiny
    res = run("mlresearch", "sweep", "tiny", "--name", "ff", "-p", "fail=true,false,false,false", "--jobs", "1", "--fail-fast", env=env, check=1)
    assert [ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("[")] == [f"{time.strftime('%Y-%m-%d')}_ff-001"]
    assert [ln.split()[:3] for ln in res.stdout.splitlines() if ln.strip().startswith("ff-")] == [[f"ff-00{i}", "not", "started"] for i in (2, 3, 4)]
    assert runs_of(root) == [f"{time.strftime('%Y-%m-%d')}_ff-001"]
    record = json.loads((root/"research/sweeps/ff.json").read_text())
    assert [len(p["runs"]) for p in record["points"]] == [1, 0, 0, 0]


def test_ctrl_c_prints_the_table_and_records_interrupted_runs(tiny):
    root, env = tiny
    make_template(root, "sleepy", ["secs = 60", "from mlresearch.record import log_metrics\nlog_metrics(before=secs)",
                                   "import time\ntime.sleep(secs)"])
    p = subprocess.Popen([str(BIN/"mlresearch"), "sweep", "sleepy", "--name", "nap", "-p", "secs=0,60,61", "--jobs", "2"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_at_a_terminal)
    for _ in range(900):  # wait until the quick point has finished and the two slow ones sleep
        time.sleep(0.1)
        if len(list((root/"research/deliver").glob("*_nap-*/metrics.json"))) == 3: break
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=90)
    assert p.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "error: sweep nap stopped by SIGINT; run the same command again to continue it"
    table = {ln.split()[0].split("_")[-1]: ln.split()[1] for ln in out.splitlines() if ln.strip().startswith(time.strftime("%Y-%m-%d"))}
    assert table == {"nap-001": "succeeded", "nap-002": "interrupted", "nap-003": "interrupted"}, out
    provs = {f.name.split("_")[1]: json.loads((f/"provenance.json").read_text())["status"] for f in (root/"research/deliver").iterdir()}
    assert provs == {"nap-001": "succeeded", "nap-002": "interrupted", "nap-003": "interrupted"}
    assert not [f for f in (root/"research/deliver").rglob(".*")], "temporary files left behind"


def test_sweep_on_a_dask_local_cluster(tiny):
    pytest.importorskip("distributed")
    root, env = tiny
    res = run("mlresearch", "sweep", "tiny", "--name", "dask", "-p", "a=1,2,3", "--dask", "--jobs", "2", env=env, check=0)
    assert "a Dask LocalCluster of 2 workers" in res.stdout
    scores = [json.loads((root/"research/deliver"/r/"metrics.json").read_text())["score"] for r in runs_of(root)]
    assert scores == [0.5, 1.0, 1.5]
    # --fail-fast on Dask: a point not yet started when the first failure comes back is cancelled and stays `not started`
    res = run("mlresearch", "sweep", "tiny", "--name", "dff", "-p", "fail=true,false,false,false", "--dask", "--jobs", "1", "--fail-fast",
              env=env, check=1)
    assert "not started" in res.stdout and "did not succeed" in res.stderr


def test_sweep_on_a_dask_scheduler_with_two_workers(tiny, tmp_path):
    "A real cluster on 127.0.0.1: `dask scheduler` and two `dask worker` processes, started here"
    pytest.importorskip("distributed")
    root, env = tiny
    sched_file = tmp_path/"scheduler.json"
    common = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [subprocess.Popen([str(BIN/"dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], **common)]
    try:
        for _ in range(300):
            if sched_file.exists() and sched_file.stat().st_size: break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs += [subprocess.Popen([str(BIN/"dask"), "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                                    "--name", f"w{i}"], **common) for i in range(2)]
        from distributed import Client
        with Client(address, timeout="30s") as c: c.wait_for_workers(2, timeout=60)
        res = run("mlresearch", "sweep", "tiny", "--name", "remote", "-p", "a=1,2,3,4", "--dask-scheduler", address, env=env, check=0)
        assert f"on Dask scheduler {address}" in res.stdout
        provs = [json.loads((root/"research/deliver"/r/"provenance.json").read_text()) for r in runs_of(root)]
        assert [p["status"] for p in provs] == ["succeeded"] * 4 and len({p["pid"] for p in provs}) == 2  # both workers took points
        scores = [json.loads((root/"research/deliver"/r/"metrics.json").read_text())["score"] for r in runs_of(root)]
        assert scores == [0.5, 1.0, 1.5, 2.0]
    finally:
        for p in procs: p.terminate()
        for p in procs: p.wait(timeout=30)


def test_develop_copies_a_run_into_a_writable_notebook(tiny):
    root, env = tiny
    folder = run_folder(run("mlresearch", "deliver", "tiny", "--name", "src", env=env, check=0))
    res = run("mlresearch", "develop", "redo-src", "--from", "src", env=env, check=0)
    from pathlib import Path
    nb_path = Path(res.stdout.strip().removeprefix("develop notebook: "))
    assert nb_path.name == f"{time.strftime('%Y-%m-%d')}_tester_redo-src.ipynb" and os.access(nb_path, os.W_OK)
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[0].source.startswith(f"> Copied from deliver run `{folder.name}`")
    assert run("mlresearch", "develop", "fresh", env=env, check=0).stdout.strip().endswith("_tester_fresh.ipynb")
    assert run("mlresearch", "develop", "x", "--from", "nothing", env=env, check=1).stderr.startswith("error: no deliver run 'nothing'")
    assert run("mlresearch", "runs", "verify", env=env, check=0)


def test_a_run_pins_its_data_version_and_reproduces_exactly(project, tmp_path):
    """foo v1, a run on it, foo v2: the run's params.toml still means v1, and `runs reproduce` gives the same metrics and model bytes
    (a PyTorch model's reproduction is test_own_model's killed-run test: its weights, training records and metrics)"""
    root, env = project
    csv = tmp_path/"foo.csv"
    import numpy as np, pandas as pd
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4))
    pd.DataFrame(dict(a=X[:, 0], b=X[:, 1], c=X[:, 2], d=X[:, 3], label=np.where(X[:, 0] + X[:, 1] > 0, "yes", "no"))).to_csv(csv, index=False)
    run("mlresearch", "data", "acquire", csv, "--target", "label", env=env, check=0)
    common = ("-p", "dataset=foo", "-p", "deterministic=true", "-p", "device=cpu")
    logreg = run_folder(run("mlresearch", "deliver", "train", "--name", "foo-logreg", *common, "-p", "model=logreg", env=env, check=0))
    assert 'dataset = "foo@1"' in (logreg/"params.toml").read_text()
    csv.write_text(csv.read_text() + "".join(f"{i},0,0,0,no\n" for i in range(40)))  # the file changes: foo v2
    assert "foo v2" in run("mlresearch", "data", "acquire", csv, "--target", "label", env=env, check=0).stdout
    again = run_folder(run("mlresearch", "deliver", "train", "--name", "foo-again", "-f", logreg/"params.toml", env=env, check=0))
    prov = json.loads((again/"provenance.json").read_text())
    used = {d.get("raw", d["path"]) for d in prov["data"]}  # a raw file read, or the raw file behind a processed one
    assert "data/raw/foo_raw_csv_v1.parquet" in used and "data/raw/foo_raw_csv_v2.parquet" not in used, prov["data"]
    res = run("mlresearch", "runs", "reproduce", logreg.name, env=env, check=0)
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"reproduced {logreg.name} as {logreg.name}-repro"), res.stdout
    assert lines[-1].startswith("identical: ") and " 0 artifact" not in lines[-1], res.stdout
    assert any(ln.split()[:2] == ["artifacts/model/model.skops", "byte-equal"] for ln in lines), res.stdout
    new = root/"research/deliver"/lines[0].split()[-1]
    assert json.loads((new/"provenance.json").read_text())["reproduces"] == dict(run=logreg.name, template_changed=False)
    assert (new/"metrics.json").read_bytes() == (logreg/"metrics.json").read_bytes()
    res = run("mlresearch", "data", "list", "foo", env=env, check=0)
    assert [ln.split()[:2] for ln in res.stdout.splitlines()[1:]] == [["foo", "1"], ["foo", "2"]] and str(csv) in res.stdout


def test_runs_settle_turns_a_killed_run_into_a_complete_failed_record(project):
    "SIGKILL of deliver and its kernel leaves a run `running` for ever; `runs` shows it died, `runs settle` records it as failed"
    import psutil
    root, env = project
    make_template(root, "slow", ["n = 1", "from mlresearch.record import log_metrics\nlog_metrics(first=n)", "import time\ntime.sleep(600)"])
    p = subprocess.Popen([str(BIN/"mlresearch"), "deliver", "slow", "--name", "cut", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, folder = time.time() + 120, None
    def sleeping(folder):  # papermill has saved the notebook with the sleep running: no save is under way when it is killed
        for f in folder.glob(".slow.*.ipynb"):
            try: cells = json.loads(f.read_text())["cells"]
            except (OSError, ValueError): continue
            if any("time.sleep" in "".join(c["source"]) and c["metadata"].get("papermill", {}).get("status") == "running" for c in cells): return True
        return False
    while time.time() < deadline:  # until the kernel has run the cells before the sleep
        folder = next(iter((root/"research/deliver").glob("*_cut")), None)
        if folder and (folder/"metrics.json").is_file() and sleeping(folder): break
        time.sleep(0.1)
    procs = [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
    for proc in procs:
        try: proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass
    p.wait()
    (folder/".stray.tmp").write_bytes(b"x" * 2_000_000)  # a write the process never finished
    table = run("mlresearch", "runs", env=env, check=0).stdout
    assert f"died: {folder.name} (PID {p.pid} on " in table and "`mlresearch runs settle` records it as failed" in table, table
    assert run("mlresearch", "runs", "verify", env=env, check=1).returncode == 1
    from mlresearch.project import check_conventions
    assert check_conventions(root)[0] == [f"research/deliver/{folder.name}/SHA256SUMS: unfinished (no checksums: the run never finished (killed, or still running))"]
    res = run("mlresearch", "runs", "settle", env=env, check=0)
    assert res.stdout.strip() == (f"settled {folder.name}: failed (the process died); kept what ran as slow.failed.ipynb; "
                                  "removed 1 stray temporary file(s), 2.0 MB"), res.stdout
    prov = json.loads((folder/"provenance.json").read_text())
    assert (prov["status"], prov["error"]["type"], prov["notebook"]) == ("failed", "ProcessDied", "slow.failed.ipynb")
    assert f"the process died (PID {p.pid} on " in prov["error"]["message"]
    assert json.loads((folder/"metrics.json").read_text()) == {"first": 1}  # what it logged before it died
    assert not [f for f in folder.rglob(".*")] and all(f.stat().st_mode & 0o222 == 0 for f in folder.rglob("*") if f.is_file())
    assert run("mlresearch", "runs", "verify", env=env, check=0).stdout.strip() == "ok: 1 run(s) match their checksums"
    assert check_conventions(root)[0] == []  # what `mlresearch check` says of the runs (the rest of it needs the nbdev project)
    assert "failed" in run("mlresearch", "runs", env=env, check=0).stdout
    assert run("mlresearch", "runs", "settle", env=env, check=0).stdout.strip() == "nothing to settle: no run's process died"
    again = run("mlresearch", "runs", "settle", "cut", env=env, check=1)
    assert again.stderr.strip() == f"error: run {folder.name} is failed, not died: only a run whose process is gone (on this host) is settled"


def test_two_identical_sweeps_at_once_one_runs_the_other_is_refused(tiny):
    "The second sweep of a name names the one running; the record keeps every run; a lock left by a killed sweep is taken over"
    root, env = tiny
    make_template(root, "tiny", ["a = 1\nlr = 0.5\nfail = False", "import time\ntime.sleep(2)", "from mlresearch.record import log_metrics\nlog_metrics(score=a * lr)"])
    args = [str(BIN/"mlresearch"), "sweep", "tiny", "--name", "sw", "-p", "a=1,2", "--jobs", "1"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((root/"research/deliver").glob("*_sw-001")): time.sleep(0.1)
    second = run("mlresearch", "sweep", "tiny", "--name", "sw", "-p", "a=1,2", "--jobs", "1", env=env, check=1)
    assert first.wait(120) == 0, first.stderr
    assert second.stderr.strip().startswith(f"error: sweep 'sw' is being written by PID {first.pid} (mlresearch sweep tiny --name sw "), second.stderr
    assert ", since 20" in second.stderr and second.stderr.strip().endswith("wait for it to end, or stop it")
    record = json.loads((root/"research/sweeps/sw.json").read_text())
    assert [[r["run"].split("_")[1] for r in p["runs"]] for p in record["points"]] == [["sw-001"], ["sw-002"]]
    assert [r.split("_")[1] for r in runs_of(root)] == ["sw-001", "sw-002"]  # no point ran twice
    # a sweep killed while it held the lock: the next one takes the lock over and says so
    killed = subprocess.Popen([*args[:4], "sw2", "-p", "a=1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while time.time() < deadline + 60 and not (root/"research/sweeps/.sw2.lock").is_file(): time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(killed.pid, signal.SIGKILL); killed.wait()
    res = run("mlresearch", "sweep", "tiny", "--name", "sw2", "-p", "a=1", env=env, check=0)
    assert f"took over sweep 'sw2' from PID {killed.pid} (" in res.stderr, res.stderr
