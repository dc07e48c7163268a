import contextlib, fcntl, os, shutil, signal, subprocess, sys
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from mlresearch.deliver import THREAD_VARS
from mlresearch.testing import project_env, scratch_project

# pytest-xdist runs a worker per core: each, and every command and kernel it starts, gets its share of the cores as BLAS and
# OpenMP threads, whatever the shell exports. Threads of OpenBLAS that spin waiting for a core another worker holds made a
# logistic regression on digits take 3.5 s instead of 0.02-0.09 s with one thread each.
THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ.update({k: str(THREADS) for k in THREAD_VARS})  # what the processes it starts read
threadpool_limits(THREADS)  # the libraries this process has loaded already

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args, env=None, cwd=None, check=None, fresh=False):
    """Run a command from the venv; return the CompletedProcess. `mlresearch ...` runs through its entry point in this process
    (`mlresearch_here`: the same code and exit status without a new interpreter's imports, which cost 1 to 5 s a call); `fresh=True`
    starts it as a new process, for a test about the process itself (its signals, its own imports, what it inherits)"""
    if args[0] == "mlresearch" and not fresh: res = mlresearch_here(*args[1:], env=env, cwd=cwd)
    else:
        cmd = [str(BIN/args[0]) if (BIN/args[0]).exists() else args[0], *map(str, args[1:])]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if check is not None: assert res.returncode == check, f"{res.args} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def spoil_each(files, again, first):
    """Change one byte in the middle of each file in turn, then `again()` -> `(CompletedProcess, figures)`: each time the file must be
    named, its cache entry rebuilt, and the figures `first`, those of the run before any change"""
    for f in files:
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        os.chmod(f, 0o644); f.write_bytes(bytes(data))
        r, figures = again()
        assert f"{f.name} does not match the sha256 recorded in" in r.stderr and "rebuilding it" in r.stderr, r.stderr
        assert figures == first, (f.name, figures, first)


def resumes_bit_equal(trainer, data, folder):
    """Train to the end; train again, stopped after epoch 1 as Ctrl-C would stop it; resume that one from its checkpoint: the resumed
    run must end with the uninterrupted run's epochs and weights, bit for bit. `trainer(out_dir, resume)` builds a fresh Trainer
    (a resumed one must not depend on its fresh init); `data` are `fit`'s data arguments. Returns the two finished Trainers."""
    import torch
    def fit(out, stop=False, resume=False):
        tr = trainer(folder/out, resume)
        if stop: tr.callbacks.append(lambda t, rec: (_ for _ in ()).throw(KeyboardInterrupt) if t.epoch == 1 else None)
        try: tr.fit(*data, resume=resume)
        except KeyboardInterrupt: pass
        return tr
    full = fit("full")
    fit("cut", stop=True)
    resumed = fit("cut", resume=True)
    assert [r["epoch"] for r in resumed.history] == [r["epoch"] for r in full.history] and len(full.history) > 1, (resumed.history, full.history)
    for k, v in full.model.state_dict().items(): assert torch.equal(v, resumed.model.state_dict()[k]), k
    return full, resumed


@pytest.fixture
def project(tmp_path):
    "A scratch project with this project's templates; its env points MLRESEARCH_ROOT at it"
    root = scratch_project("all", parent=tmp_path, name="proj")
    return root, project_env(root)


@contextlib.contextmanager
def _locked(path: Path):
    "An exclusive lock on `path` across processes (the workers of pytest -n)"
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)


def _build_digits_runs(root: Path):
    "The main job's two models, delivered into a new project at `root`"
    scratch_project("all", parent=root.parent, name=root.name)
    env = project_env(root)
    run("mlresearch", "deliver", "train", "--name", "digits-cnn", "-p", "dataset=sklearn:digits", "-p", "model=cnn", "-p", "epochs=4",
        env=env, check=0)
    run("mlresearch", "deliver", "train", "--name", "digits-logreg", "-p", "dataset=digits", "-p", "model=logreg", env=env, check=0)


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory):
    """A project with two delivered digits models (a short-trained CNN and a logistic regression), the CNN's kept test predictions
    and their raw rows. Delivered once per test session, whatever the number of pytest-xdist workers (the first one builds it under
    a lock in the folder they share); each worker gets its own copy, since tests add runs and data to it."""
    import pandas as pd
    from mlresearch.data import load
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else tmp_path_factory.getbasetemp()
    built = shared/"digits-runs-built"/"proj"
    with _locked(shared/"digits-runs.lock"):
        if not (built.parent/"done").exists():
            shutil.rmtree(built.parent, ignore_errors=True)
            built.parent.mkdir()
            _build_digits_runs(built)
            (built.parent/"done").touch()
    root = tmp_path_factory.mktemp("digits-runs")/"proj"
    shutil.copytree(built, root, symlinks=True)
    env = project_env(root)
    runs = {f.name.split("_", 1)[1]: f for f in (root/"research/deliver").iterdir()}
    kept = pd.read_parquet(runs["digits-cnn"]/"artifacts/test_predictions.parquet")
    raw = load("digits", root=root)
    return root, env, runs, kept, raw.iloc[kept["row"]].drop(columns="target")


def clone_with_runs(digits_runs, tmp_path):
    "A copy of this project as a fresh clone has it after the main job: the digits data and its CNN and baseline runs"
    root, env, runs, kept, rows = digits_runs
    work = tmp_path/"repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_proc", "_docs", "data", "research", "__pycache__", ".*cache"))
    shutil.copytree(REPO/"research/templates", work/"research/templates")
    shutil.copytree(root/"data/raw", work/"data/raw")
    for name in ("digits-cnn", "digits-logreg"): shutil.copytree(runs[name], work/"research/deliver"/runs[name].name)
    env = {k: v for k, v in os.environ.items() if k != "MLRESEARCH_ROOT"}  # found from the working directory, the copy
    return work, env, runs


@contextlib.contextmanager
def restored_process():
    """Put back what a command or a lesson run in this process may change: the environment, the working directory, `sys.argv`
    and `sys.path`, the SIGINT and SIGTERM handlers, logging as a new process has it, matplotlib's settings and figures"""
    import logging
    env, cwd, argv, path = dict(os.environ), os.getcwd(), sys.argv[:], sys.path[:]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    mpl = dict(sys.modules["matplotlib"].rcParams) if "matplotlib" in sys.modules else None
    # a handler an earlier command left on the `mlresearch` logger writes to a stream that command closed (`setup_logging`, which a
    # command calls, replaces it; a lesson calling a verb's functions does not)
    loggers = [logging.getLogger(), logging.getLogger("mlresearch")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    for lg, level in zip(loggers, (logging.WARNING, logging.NOTSET)): lg.handlers, lg.level, lg.propagate = [], level, True
    try: yield
    finally:
        for lg, hs, level, propagate in saved: lg.handlers, lg.level, lg.propagate = hs, level, propagate
        os.environ.clear(); os.environ.update(env)
        os.chdir(cwd); sys.argv[:], sys.path[:] = argv, path
        for s, h in handlers.items(): signal.signal(s, h)
        if "matplotlib" in sys.modules:
            import matplotlib, matplotlib.pyplot as plt
            plt.close("all")
            matplotlib.rcParams.update(mpl if mpl is not None else matplotlib.rcParamsOrig)


def mlresearch_here(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """`mlresearch ARGS` through the console script's entry point (`cli.main`) in this process, with `env` as its whole environment
    (as `subprocess.run` takes it: a variable it lacks is unset) and `cwd` as its working directory: the same code and exit status
    as the command, without a new interpreter's imports"""
    from typer.testing import CliRunner
    from mlresearch.cli import main
    argv = ["mlresearch", *map(str, args)]
    with restored_process():
        if env is not None: os.environ.clear(); os.environ.update(env)
        if cwd is not None: os.chdir(cwd)
        with CliRunner().isolation() as (out, err, _):
            sys.argv = argv
            try: main(); code = 0
            except SystemExit as e: code = e.code if isinstance(e.code, int) else int(e.code is not None)
            return subprocess.CompletedProcess(argv, code, out.getvalue().decode(), err.getvalue().decode())
