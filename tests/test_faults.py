"""A full disk at every write: each command exits 1 with one line naming the full disk, and leaves what was there before.

`MLRESEARCH_TEST_ENOSPC_AT=N` makes the N-th atomic write of each process fail with ENOSPC (the deliver command and its
kernel count their own), as a disk that fills there would; N goes over every write a command makes, until it succeeds.
One test fills a real small tmpfs instead (as root, where mounting is allowed)."""
import hashlib, json, os, shutil, subprocess

import pytest

from conftest import mlresearch_here, run
from test_deliver import make_template
from mlresearch import files
from mlresearch.files import FAULT_ENV


def _state(root):
    "sha256 of every file under data/raw, research/deliver, research/exports and outs/"
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for d in ("data/raw", "research/deliver", "research/exports", "outs") for f in sorted((root/d).rglob("*")) if f.is_file()}


def _no_temporaries(root):
    return [str(f) for f in root.rglob("*") if f.name.endswith(".tmp") or (f.name.startswith(".") and f.suffix == ".ipynb")]


def _one_disk_full_line(res):
    lines = res.stderr.strip().splitlines()
    return res.returncode == 1 and lines and lines[-1].startswith("error: ") and "the disk is full" in lines[-1] and "Traceback" not in res.stderr


def _tiny(root):
    "A template that reads a dataset, logs a metric and saves an artifact: the writes of a run, without the time of a training"
    make_template(root, "small", ["dataset = 'iris'", "from mlresearch.data import load\nfrom mlresearch.record import artifacts_dir, log_metrics\n"
                                  "from mlresearch.files import atomic_write\n"
                                  "df = load(dataset)\nlog_metrics(rows=len(df))\natomic_write(artifacts_dir()/'head.csv', df.head().to_csv())"])


def test_a_full_disk_at_each_write_of_every_command_that_writes(project, tmp_path):
    "deliver, data acquire, predict, data archive, export and runs archive, each failed at each of its writes in turn"
    root, env = project
    _tiny(root)
    run("mlresearch", "data", "acquire", "sklearn:iris", env=env, check=0)
    run("mlresearch", "deliver", "small", "--name", "before", env=env, check=0)
    run("mlresearch", "deliver", "train", "--name", "model", "-p", "dataset=iris", "-p", "model=logreg", env=env, check=0)
    (tmp_path/"rows.csv").write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(30)))
    from mlresearch.data import load
    load("iris", root=root).drop(columns="target").head(40).to_csv(tmp_path/"iris.csv", index=False)
    outs = root/"outs"
    run("mlresearch", "predict", "model", tmp_path/"iris.csv", "-o", outs/"preds.csv", env=env, check=0)  # an earlier output of that name
    commands = [("deliver", ["deliver", "small", "--name", "full", "--auto-suffix"]),
                ("acquire", ["data", "acquire", str(tmp_path/"rows.csv"), "--name", "rows", "--target", "y"]),
                ("predict", ["predict", "model", str(tmp_path/"iris.csv"), "-o", str(outs/"preds.csv")]),
                ("data archive", ["data", "archive", "--to", str(outs/"data.tar.gz")]),
                ("export", ["export", "model"]),
                ("runs archive", ["runs", "archive", "before", "--to", str(outs/"runs.tar.gz")])]
    for what, args in commands:
        for n in range(1, 40):
            before = _state(root)
            # the command's entry point in this process, its count of writes started again (a deliver run's kernel, a process of
            # its own, counts its own): no interpreter start per write
            files._writes[0] = 0
            res = mlresearch_here(*args, env={**env, FAULT_ENV: str(n)})
            assert res.returncode == 0 or _one_disk_full_line(res), (what, n, res.stderr[-2000:])
            assert _no_temporaries(root) == [], (what, n)
            assert mlresearch_here("data", "verify", env=env).returncode == 0
            verify = mlresearch_here("runs", "verify", env=env)
            if verify.returncode:  # only runs recorded as failed, complete and read-only may differ: none may be half-recorded
                assert "unfinished" not in verify.stdout, (what, n, verify.stdout)
            if res.returncode == 0: break
            after = _state(root)
            assert {k: v for k, v in after.items() if k in before} == before, (what, n)  # a failed command changed nothing there before
            for f in (root/"research/deliver").glob("*_full*") if what == "deliver" else ():
                prov = json.loads((f/"provenance.json").read_text())
                assert prov["status"] == "failed" and (f/"SHA256SUMS").is_file(), (what, n, prov["status"])
        else: pytest.fail(f"{what} never succeeded")
        assert n > 1, (what, "no write was ever failed")
        print(f"{what}: failed at each of its first {n - 1} atomic writes, then succeeded")


def _tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode: pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'not root'})")


def test_a_real_full_disk_during_deliver_and_acquire(project, tmp_path):
    "The project on a 30 MB tmpfs filled to 12 and 36 KB free: each command that writes succeeds or fails in one line, and leaves it verifiable"
    src, env = project
    disk = tmp_path/"disk"
    _tmpfs(disk, "30m")
    try:
        root = disk/"proj"
        shutil.copytree(src, root, symlinks=True)
        _tiny(root)
        env = {**env, "MLRESEARCH_ROOT": str(root)}
        run("mlresearch", "data", "acquire", "sklearn:iris", env=env, check=0)
        run("mlresearch", "deliver", "train", "--name", "model", "-p", "dataset=iris", "-p", "model=logreg", env=env, check=0)
        run("mlresearch", "deliver", "small", "--name", "old", env=env, check=0)
        (tmp_path/"rows.csv").write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(3000)))
        from mlresearch.data import load
        pd_rows = load("iris", root=root).drop(columns="target")
        (root/"outs").mkdir()
        pd_rows.to_csv(root/"outs/iris.csv", index=False)
        for free_kb in (12, 36):
            filler = disk/"filler"
            with open(filler, "wb", buffering=0) as f:  # fill the disk, then give back `free_kb`
                try:
                    while True: f.write(b"\0" * (1 << 16))
                except OSError: pass
            os.truncate(filler, max(0, filler.stat().st_size - free_kb * 1024))
            before = _state(root)
            for args in (["deliver", "small", "--name", f"full-{free_kb}"],
                         ["data", "acquire", str(tmp_path/"rows.csv"), "--name", f"rows-{free_kb}", "--target", "y"],
                         ["predict", "model", str(root/"outs/iris.csv"), "-o", str(root/f"outs/preds-{free_kb}.csv")],
                         ["data", "archive", "--to", str(root/f"outs/data-{free_kb}.tar.gz")],
                         ["export", "model", "-o", str(root/f"research/exports/model-{free_kb}")],
                         ["runs", "archive", "old", "--to", str(root/f"outs/runs-{free_kb}.tar.gz")]):
                if args[:2] == ["runs", "archive"] and not list((root/"research/deliver").glob("*_old")): continue  # archived at a level before
                res = mlresearch_here(*args, env=env)  # the command's entry point in this process; the disk it fills is real
                print(f"{free_kb} KB free: {args[0]} {args[1]} exit {res.returncode}: {(res.stderr.strip().splitlines() or [''])[-1][:160]}")
                assert res.returncode == 0 or (res.returncode == 1 and "Traceback" not in res.stderr and
                                               ("the disk is full" in res.stderr or "No space left on device" in res.stderr)), (free_kb, args, res.stderr[-2000:])
            filler.unlink()
            assert _no_temporaries(root) == []
            assert run("mlresearch", "data", "verify", env=env, check=0).returncode == 0
            verify = mlresearch_here("runs", "verify", env=env)
            assert "unfinished" not in verify.stdout, verify.stdout
            kept = lambda s: {k: v for k, v in s.items() if not k.endswith("manifest.json")}  # a command that succeeded adds to the manifest
            archived = lambda s: {k: v for k, v in s.items() if "_old/" not in k}  # `runs archive` moves its run out once it succeeds
            assert {k: v for k, v in kept(_state(root)).items() if k in before} == archived(kept(before)) or \
                   {k: v for k, v in kept(_state(root)).items() if k in before} == kept(before)
        # docs, in a copy of this repository on the same disk: a full disk is one line, and _docs is never half-replaced
        from conftest import REPO
        work = disk/"repo"
        shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_proc", "_docs", "data", "research", "__pycache__", ".*cache"))
        shutil.copytree(REPO/"research/templates", work/"research/templates")
        (work/"_docs").mkdir(); (work/"_docs/index.html").write_text("the site as it was")
        filler = disk/"filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True: f.write(b"\0" * (1 << 16))
            except OSError: pass
        os.truncate(filler, max(0, filler.stat().st_size - 12 * 1024))
        res = mlresearch_here("docs", env={k: v for k, v in env.items() if k != "MLRESEARCH_ROOT"}, cwd=work)
        filler.unlink()
        print(f"12 KB free: docs exit {res.returncode}: {(res.stderr.strip().splitlines() or [''])[-1][:160]}")
        assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in res.stderr, res.stderr[-2000:]
        assert "the disk is full" in res.stderr.strip().splitlines()[-1], res.stderr[-500:]
        assert (work/"_docs/index.html").read_text() == "the site as it was" and [f for f in work.rglob("*.tmp")] == []
    finally: subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(digits_runs, tmp_path):
    "predict and data archive killed mid-write leave a hidden temporary; the next command writing that file removes it and says so"
    root, env, runs, kept, rows = digits_runs
    rows.head(50).to_csv(tmp_path/"rows.csv", index=False)
    dead = subprocess.run(["python3", "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    for args, out in ((["predict", "digits-logreg", str(tmp_path/"rows.csv"), "-o", str(tmp_path/"preds.csv")], tmp_path/"preds.csv"),
                      (["data", "archive", "--to", str(tmp_path/"data.tar.gz")], tmp_path/"data.tar.gz")):
        stray = out.with_name(f".{out.name}.{dead}.k1ll3d.tmp")
        stray.write_bytes(b"\0" * 6_700_000)
        res = run("mlresearch", *args, env=env, check=0)
        assert f"removed {stray.name}, which process {dead} left when it died writing {out.name} (6,700,000 bytes)" in res.stderr, res.stderr
        assert out.is_file() and not stray.exists()
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_an_archive_of_data_that_does_not_verify_is_refused_unless_forced(project, tmp_path):
    "A truncated manifest or a file the manifest does not list: `data archive` refuses, naming it; --force archives and records it"
    import tarfile
    root, env = project
    run("mlresearch", "data", "acquire", "sklearn:iris", env=env, check=0)
    raw = root/"data/raw"
    (raw/"stray.csv").write_text("a\n1\n")
    (raw/"elsewhere.csv").symlink_to(tmp_path/"nowhere.csv")
    res = mlresearch_here("data", "archive", "--to", tmp_path/"a.tar.gz", env=env)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith(
        "error: data/raw does not verify (2 problem(s), first: untracked: data/raw/elsewhere.csv"), res.stderr
    assert not (tmp_path/"a.tar.gz").exists()
    res = mlresearch_here("data", "archive", "--to", tmp_path/"a.tar.gz", "--force", env=env)
    assert res.returncode == 0 and "left out: data/raw/elsewhere.csv (a symbolic link)" in res.stderr, res.stderr
    assert res.stdout.strip().endswith("data/raw did not: 2 problem(s) recorded in the archive, --force)"), res.stdout
    with tarfile.open(tmp_path/"a.tar.gz") as tar: man = json.load(tar.extractfile("MLRESEARCH_ARCHIVE.json"))
    assert man["forced"][1].startswith("untracked: data/raw/stray.csv") and "data/raw/stray.csv" in man["files"]
    assert "data/raw/elsewhere.csv" not in man["files"]
    (raw/"stray.csv").unlink(); (raw/"elsewhere.csv").unlink()
    saved = (raw/"manifest.json").read_bytes()
    (raw/"manifest.json").chmod(0o644); (raw/"manifest.json").write_bytes(saved[:40])
    res = mlresearch_here("data", "archive", "--to", tmp_path/"b.tar.gz", env=env)
    assert res.returncode == 1 and f"first: the data manifest {raw/'manifest.json'} is not valid JSON" in res.stderr, res.stderr


def test_a_full_disk_at_each_write_of_the_sites_results(project, tmp_path):
    "`docs` writes the Results pages and figures (the rest of the site is nbdev's and the renderer's, built in a staging folder): each write failed in turn"
    import mlresearch.files as files
    from mlresearch.files import DiskFull
    from mlresearch.site import write_results
    root, env = project
    _tiny(root)
    run("mlresearch", "data", "acquire", "sklearn:iris", env=env, check=0)
    run("mlresearch", "sweep", "small", "--name", "sw", "-p", "dataset=iris,iris", env=env, check=0)  # two points, one configuration
    site = tmp_path/"_proc"; site.mkdir()
    write_results(site, root)
    before = {str(f): f.read_bytes() for f in site.rglob("*") if f.is_file()}
    run("mlresearch", "deliver", "small", "--name", "later", env=env, check=0)  # a new run: the next build has more to write
    for n in range(1, 60):
        files._writes[0] = 0
        os.environ[FAULT_ENV] = str(n)
        try: write_results(site, root); done = True
        except DiskFull as e: done = False; assert str(e).startswith("the disk is full: "), e
        finally: del os.environ[FAULT_ENV]
        now = {str(f): f.read_bytes() for f in site.rglob("*") if f.is_file()}
        assert [f for f in now if f.endswith(".tmp")] == [] and [d for d in site.iterdir() if d.name.startswith(".")] == []
        if done: break
        assert now == before, n  # the previous Results section, byte for byte
    else: pytest.fail("the Results section was never written")
    assert n > 3 and len(now) > len(before)
    print(f"the Results section: failed at each of its first {n - 1} writes, then written")


def test_a_byte_changed_in_any_processed_file_is_named_set_aside_and_rebuilt(project):
    "Each file of a cache entry, one byte changed in turn: the next run names it, rebuilds the entry and gets the same metrics"
    root, env = project
    run("mlresearch", "deliver", "train", "--name", "iris-0", "-p", "dataset=sklearn:iris", "-p", "model=logreg", env=env, check=0)
    first = json.loads(next((root/"research/deliver").glob("*_iris-0/metrics.json")).read_text())
    processed = root/"data/processed"
    files = sorted(f for f in processed.iterdir() if not f.name.startswith("."))
    assert [f.suffix for f in files] == [".json", ".npz", ".sha256"], files
    said = f"does not match the sha256 recorded in {files[2].name} when it was written"
    for i, f in enumerate(files):
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        os.chmod(f, 0o644)
        f.write_bytes(bytes(data))
        if i == 0:  # a deliver run: the warning relayed from its kernel, and the same metrics recorded
            r = run("mlresearch", "deliver", "train", "--name", "iris-1", "-p", "dataset=iris", "-p", "model=logreg", env=env, check=0)
            assert json.loads(next((root/"research/deliver").glob("*_iris-1/metrics.json")).read_text()) == first
        else:  # the train command, faster: the same metrics printed
            r = run("mlresearch", "train", "--dataset", "iris", "--model", "logreg", "--out", root/f"m{i}", env=env, check=0)
            shown = dict(line.split() for line in r.stdout.splitlines()[1:] if len(line.split()) == 2)
            assert float(shown["accuracy"]) == round(first["accuracy"], 4) and float(shown["val_accuracy"]) == round(first["val_accuracy"], 4), r.stdout
        # a changed checksum file: one of the files it no longer vouches for is named
        assert said in r.stderr and (f.suffix == ".sha256" or f"{f.name} {said}" in r.stderr) and "rebuilding it" in r.stderr, r.stderr
    assert len(list((root/"data/tmp").glob("corrupt-*"))) == 3
    r = run("mlresearch", "train", "--dataset", "iris", "--model", "logreg", "--out", root/"m9", env=env, check=0)
    assert "rebuilding" not in r.stderr, r.stderr  # the rebuilt entry verifies
