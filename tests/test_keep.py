"Keeping data and runs: archive and restore into a fresh clone, retention, runs archives, MLflow export, make sync-data"
import json, os, shutil, subprocess

import pytest

from mlresearch.testing import scratch_project
from conftest import REPO, run


@pytest.fixture(scope="module")
def _main_job_built(digits_runs, tmp_path_factory):
    "A project as the main job leaves it (the digits data, the CNN and the baseline), plus one failed run: made once per module"
    root, env, runs, kept, rows = digits_runs
    proj = scratch_project("all", parent=tmp_path_factory.mktemp("main-job"), name="proj")
    shutil.copytree(root/"data/raw", proj/"data/raw")
    for name in ("digits-cnn", "digits-logreg"): shutil.copytree(runs[name], proj/"research/deliver"/runs[name].name)
    env = {**env, "MLRESEARCH_ROOT": str(proj)}
    run("mlresearch", "deliver", "train", "--name", "digits-mlp-broken", "-p", "dataset=digits", "-p", "model=mlp", "-p", "epochs=0", env=env, check=1)
    return proj, env


@pytest.fixture
def main_job(_main_job_built, tmp_path):
    "A copy of that project of its own for each test, which may archive, clean or export it"
    built, env = _main_job_built
    proj = shutil.copytree(built, tmp_path/"proj", symlinks=True)
    return proj, {**env, "MLRESEARCH_ROOT": str(proj)}


def files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_archive_then_restore_into_a_fresh_clone_verifies_and_a_flipped_byte_is_refused(main_job, tmp_path):
    proj, env = main_job
    res = run("mlresearch", "data", "archive", "--to", tmp_path/"keep.tar.gz", "--include-runs", env=env, check=0)
    assert "(verified)" in res.stdout
    fresh = scratch_project("all", parent=tmp_path, name="fresh")
    fenv = {**env, "MLRESEARCH_ROOT": str(fresh)}
    # a byte flipped, and the archive cut short: refused in one line, nothing restored
    data = bytearray((tmp_path/"keep.tar.gz").read_bytes())
    for name, blob in (("flipped", data[:len(data) // 3] + bytes([data[len(data) // 3] ^ 0x10]) + data[len(data) // 3 + 1:]), ("cut", data[:len(data) // 2])):
        (tmp_path/f"{name}.tar.gz").write_bytes(bytes(blob))
        res = run("mlresearch", "data", "restore", tmp_path/f"{name}.tar.gz", env=fenv, check=1)
        assert res.stderr.count("\n") == 1 and "nothing was restored" in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert not (fresh/"data/raw").exists() and not (fresh/"research/deliver").exists() and list((fresh/"data/tmp").iterdir()) == []
    res = run("mlresearch", "data", "restore", tmp_path/"keep.tar.gz", env=fenv, check=0)
    assert "every file matched its sha256" in res.stdout
    assert files(fresh/"data/raw") == files(proj/"data/raw") and files(fresh/"research/deliver") == files(proj/"research/deliver")
    run("mlresearch", "data", "verify", env=fenv, check=0)
    run("mlresearch", "runs", "verify", env=fenv, check=0)
    assert "nothing to restore" in run("mlresearch", "data", "restore", tmp_path/"keep.tar.gz", env=fenv, check=0).stdout
    # a file that differs is never overwritten
    f = next((fresh/"research/deliver").glob("*_digits-logreg"))/"metrics.json"
    f.chmod(0o644); f.write_text("{}\n")
    res = run("mlresearch", "data", "restore", tmp_path/"keep.tar.gz", env=fenv, check=1)
    assert f"{f} exists and differs from the archive's copy" in res.stderr and f.read_text() == "{}\n"


def test_data_clean_removes_exactly_the_stale_entries_and_the_runs_still_verify(main_job):
    proj, env = main_job
    processed = proj/"data/processed"
    processed.mkdir(parents=True, exist_ok=True)
    used = {d["path"] for r in (proj/"research/deliver").iterdir() for d in json.loads((r/"provenance.json").read_text())["data"]
            if d["path"].startswith("data/processed/")}
    stale = ["data/processed/digits_processed_00000000deadbeef_v1.npz", "data/processed/digits_processed_00000000deadbeef_v1.json"]
    for s in stale: (proj/s).write_bytes(b"x" * 2000)
    for s in used: (proj/s).write_bytes(b"kept")  # the runs' own cache entries (the fixture's project made them)
    (proj/"data/tmp").mkdir(exist_ok=True)
    (proj/"data/tmp/download.part").write_bytes(b"y" * 1000)
    want = sorted([*stale, "data/tmp/download.part"])
    before = files(proj/"data/raw"), files(proj/"research/deliver")
    res = run("mlresearch", "data", "clean", "--dry-run", env=env, check=0)
    assert sorted(ln.split()[2] for ln in res.stdout.splitlines() if ln.startswith("would remove")) == want
    assert "would free 0.0 MB in 3 item(s)" in res.stdout and all((proj/w).exists() for w in want)
    res = run("mlresearch", "data", "clean", env=env, check=0)
    assert sorted(ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("removed")) == want
    assert not any((proj/w).exists() for w in want) and all((proj/u).exists() for u in used) and used
    assert (files(proj/"data/raw"), files(proj/"research/deliver")) == before
    run("mlresearch", "runs", "verify", env=env, check=0)
    run("mlresearch", "data", "verify", env=env, check=0)


def test_runs_archive_moves_runs_out_only_once_the_archive_verifies(main_job, tmp_path):
    proj, env = main_job
    cnn = next((proj/"research/deliver").glob("*_digits-cnn"))
    saved = files(cnn)
    res = run("mlresearch", "runs", "archive", cnn.name, "--to", tmp_path/"old.tar.gz", env=env, check=0)
    assert "(verified) and removed them" in res.stdout and not cnn.exists()
    res = run("mlresearch", "runs", "restore", tmp_path/"old.tar.gz", env=env, check=0)
    assert res.stdout.strip() == f"restored 1 run(s): {cnn.name}"
    assert files(cnn) == saved and all(p.stat().st_mode & 0o222 == 0 for p in cnn.rglob("*") if p.is_file())  # read-only again
    run("mlresearch", "runs", "verify", cnn.name, env=env, check=0)
    res = run("mlresearch", "runs", "archive", cnn.name, "--to", tmp_path/"old.tar.gz", env=env, check=1)
    assert "already exists; an archive is never replaced" in res.stderr and cnn.exists()


def test_exporting_the_main_jobs_runs_twice_to_mlflow_gives_one_mlflow_run_each(main_job, tmp_path):
    from mlflow.tracking import MlflowClient
    proj, env = main_job
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = run("mlresearch", "runs", "export", "--mlflow", uri, env=env, check=0).stdout
    second = run("mlresearch", "runs", "export", "--mlflow", uri, env=env, check=0).stdout
    assert first.count("exported: ") == 3 and second.count("already there: ") == 3, (first, second)
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("proj")
    got = {r.data.tags["mlresearch.run"]: r for r in c.search_runs([exp.experiment_id], max_results=100)}
    folders = sorted((proj/"research/deliver").iterdir())
    assert sorted(got) == [f.name for f in folders]
    for f in folders:
        prov, metrics, r = json.loads((f/"provenance.json").read_text()), json.loads((f/"metrics.json").read_text()), got[f.name]
        assert r.info.status == {"succeeded": "FINISHED", "failed": "FAILED"}[prov["status"]]
        assert r.info.start_time == int(__import__("datetime").datetime.fromisoformat(prov["started"]).timestamp() * 1000)
        assert r.data.metrics == {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert r.data.tags["mlresearch.status"] == prov["status"] and r.data.tags["mlresearch.template"] == prov["template"]
        if prov["status"] == "succeeded":
            arts = {a.path for a in c.list_artifacts(r.info.run_id)}
            assert {"train.ipynb", "params.toml", "metrics.json", "provenance.json", "model"} <= arts, arts
    assert "artifacts" not in os.listdir(proj) and not (proj/"mlruns").exists()  # MLflow wrote beside its database, not here
    res = run("mlresearch", "runs", "export", "--mlflow", uri, "nosuch", env=env, check=1)
    assert "no deliver run 'nosuch'" in res.stderr


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (Debian: apt-get install rsync); CI installs it")
def test_make_sync_data_mirrors_data(tmp_path):
    res = subprocess.run(["make", "-s", "-C", str(REPO), "sync-data", f"DEST={tmp_path/'mirror'}"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert files(tmp_path/"mirror") == files(REPO/"data")
    res = subprocess.run(["make", "-s", "-C", str(REPO), "sync-data"], capture_output=True, text=True)
    assert res.returncode == 2 and "name the destination" in res.stderr
