"The `mlresearch` command end to end, as a user runs it."
import hashlib, json, os, threading, functools, http.server

import pytest

from conftest import mlresearch_here, run


def mlr(env, *args, check=None): return run("mlresearch", "--log-level", "WARNING", *args, env=env, check=check)


def one_error_line(res, *needles):
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines
    for n in needles: assert n in lines[0], lines[0]


def test_help_on_every_command(project):
    "Every verb and every command of a group answers --help (through the command's entry point, in this process), flags shown as flags"
    from mlresearch.cli import VERBS, verb_command
    _, env = project
    paths = [[]] + [[v] for v in VERBS] + [[v, c] for v in VERBS if hasattr(g := verb_command(v), "commands") for c in g.commands]
    assert ["runs", "reproduce"] in paths and ["data", "clean"] in paths and len(paths) > 25, paths
    for args in paths:
        res = mlresearch_here(*args, "--help", env={**env, "COLUMNS": "120"})
        assert res.returncode == 0 and "Usage" in res.stdout and "<bool>" not in res.stdout, (args, res.stdout, res.stderr)


def test_acquire_list_verify(project):
    root, env = project
    res = mlr(env, "data", "acquire", "sklearn:digits", check=0)
    assert res.stdout.strip() == "digits v1: 1797 rows x 65 columns, target target -> data/raw/digits_raw_sklearn_v1.parquet"
    raw = root/"data"/"raw"
    f = raw/"digits_raw_sklearn_v1.parquet"
    assert f.exists() and not os.access(f, os.W_OK) or os.geteuid() == 0
    assert f.stat().st_mode & 0o222 == 0
    (entry,) = json.loads((raw/"manifest.json").read_text())["datasets"]
    assert entry["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert (entry["rows"], entry["target"], entry["task"]) == (1797, "target", "classification")
    # the same content again is a no-op
    mlr(env, "data", "acquire", "sklearn:digits", check=0)
    assert sorted(p.name for p in raw.iterdir()) == [".lock", "digits_raw_sklearn_v1.parquet", "manifest.json"]
    listing = mlr(env, "data", "list", check=0).stdout
    assert "digits" in listing and "1797" in listing
    assert mlr(env, "data", "verify", check=0).stdout.startswith("ok: 1 file(s)")


def test_verify_names_a_file_changed_by_one_byte(project):
    root, env = project
    mlr(env, "data", "acquire", "sklearn:iris", check=0)
    f = root/"data"/"raw"/"iris_raw_sklearn_v1.parquet"
    os.chmod(f, 0o644)
    b = bytearray(f.read_bytes()); b[len(b)//2] ^= 0xFF; f.write_bytes(bytes(b))
    res = mlr(env, "data", "verify")
    assert res.returncode == 1
    assert "modified: data/raw/iris_raw_sklearn_v1.parquet" in res.stdout
    assert "1 problem(s) in data/raw" in res.stderr
    # a stray file and a deleted file are named too
    (root/"data"/"raw"/"stray.csv").write_text("a\n1\n")
    f.unlink()
    res = mlr(env, "data", "verify")
    assert "missing: data/raw/iris_raw_sklearn_v1.parquet" in res.stdout and "untracked: data/raw/stray.csv" in res.stdout


def test_a_file_name_that_is_not_utf8_is_stored_and_listed_safely(project, tmp_path):
    "LANG=C and a Latin-1 file name: acquired, recorded with its odd byte escaped, and `data list` still prints every dataset"
    root, env = project
    env = {**env, "LANG": "C", "LC_ALL": "C"}
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv")
    with open(odd, "w") as f: f.write("x,y\n1,a\n2,b\n3,a\n")
    run("mlresearch", "data", "acquire", "sklearn:iris", env=env, check=0)
    res = run("mlresearch", "data", "acquire", os.fsdecode(odd), "--name", "cafe", "--target", "y", env=env, check=0)
    assert "cafe" in res.stdout + res.stderr
    listing = run("mlresearch", "data", "list", env=env, check=0).stdout
    assert "iris" in listing and "cafe" in listing, listing
    entry = next(e for e in json.loads((root/"data/raw/manifest.json").read_text())["datasets"] if e["name"] == "cafe")
    assert entry["source"] == os.fsdecode(os.fsencode(tmp_path)) + "/caf\\xe9.csv"
    run("mlresearch", "data", "verify", env=env, check=0)


def test_csv_versions_and_target(project, tmp_path):
    root, env = project
    csv = tmp_path/"patients.csv"
    csv.write_text("age,sex,smoker,outcome\n61,f,,1\n45,m,yes,0\n38,,no,0\n")
    res = mlr(env, "data", "acquire", csv, "--target", "outcome", check=0)
    assert res.stdout.startswith("patients v1: 3 rows x 4 columns, target outcome -> data/raw/patients_raw_csv_v1.parquet")
    csv.write_text("age,sex,smoker,outcome\n61,f,,1\n45,m,yes,0\n38,,no,0\n70,m,no,1\n")
    res = mlr(env, "data", "acquire", csv, "--target", "outcome", check=0)
    assert "patients v2: 4 rows" in res.stdout
    v1 = root/"data"/"raw"/"patients_raw_csv_v1.parquet"
    assert v1.exists(), "version 1 must stay"
    mlr(env, "data", "verify", check=0)


BAD_INPUTS = {
    "missing file": (["nowhere/data.csv"], ["does not exist"]),
    "unknown sklearn name": (["sklearn:mnist"], ["unknown dataset 'sklearn:mnist'", "sklearn:digits"]),
    "checksum mismatch": (["{csv}", "--sha256", "0" * 64], ["checksum mismatch"]),
    "malformed CSV": (["{ragged}"], ["malformed CSV"]),
    "empty CSV": (["{empty}"], ["is empty"]),
    "header-only CSV": (["{header}"], ["no data rows"]),
    "missing target column": (["{csv}", "--target", "died"], ["target column 'died' is not in", "columns are: age, outcome"]),
    "bad name": (["{csv}", "--name", "My_Data"], ["must be a short slug"]),
    "unknown format": (["{xlsx}"], ["cannot tell the format"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_nothing(project, tmp_path, case):
    root, env = project
    files = dict(csv="age,outcome\n1,0\n2,1\n", ragged="a,b\n1,2\n3,4,5\n", empty="", header="a,b\n", xlsx="x")
    paths = {}
    for k, text in files.items():
        p = tmp_path/(f"{k}.xlsx" if k == "xlsx" else f"{k}.csv"); p.write_text(text); paths[k] = p
    args, needles = BAD_INPUTS[case]
    res = mlr(env, "data", "acquire", *[a.format(**paths) for a in args])
    assert res.returncode == 1
    one_error_line(res, *needles)
    raw = root/"data"/"raw"
    assert not raw.exists() or sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == []
    tmp = root/"data"/"tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.fixture
def server(tmp_path):
    "An http server on 127.0.0.1 serving a folder the test fills"
    folder = tmp_path/"www"; folder.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{srv.server_address[1]}", srv
    srv.shutdown(); srv.server_close()


def test_acquire_from_url(project, server):
    root, env = project
    folder, base, _ = server
    (folder/"houses.csv").write_text("rooms,area,price\n3,80.5,250.0\n2,55.0,180.5\n4,120.0,410.0\n")
    digest = hashlib.sha256((folder/"houses.csv").read_bytes()).hexdigest()
    res = mlr(env, "data", "acquire", f"{base}/houses.csv", "--sha256", digest, "--target", "price", check=0)
    assert "houses v1: 3 rows x 3 columns" in res.stdout
    (entry,) = json.loads((root/"data/raw/manifest.json").read_text())["datasets"]
    assert (entry["source"], entry["source_sha256"], entry["task"]) == (f"{base}/houses.csv", digest, "regression")
    one_error_line(mlr(env, "data", "acquire", f"{base}/houses.csv", "--name", "h2", "--sha256", "a" * 64), "checksum mismatch")
    one_error_line(mlr(env, "data", "acquire", f"{base}/gone.csv"), "HTTP 404")
    assert list((root/"data/tmp").iterdir()) == []


def test_unreachable_url(project, server):
    root, env = project
    _, base, srv = server
    srv.shutdown(); srv.server_close()
    one_error_line(mlr(env, "data", "acquire", f"{base}/x.csv"), "could not reach", "check the address")


def test_eda_command_writes_notebook_with_figures(project):
    "A new notebook in research/develop every time: one already at the name it would take is left as it was"
    import datetime as dt, nbformat
    root, env = project
    first = root/"research/develop"/f"{dt.date.today():%Y-%m-%d}_tester_eda-wine.ipynb"
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_text("an earlier notebook")
    res = mlr(env, "eda", "sklearn:wine", "-p", "max_features=6", check=0)
    nb_path = first.with_name(first.stem + "-2.ipynb")
    assert str(nb_path) in res.stdout and first.read_text() == "an earlier notebook"
    nb = nbformat.read(nb_path, as_version=4)
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4
    one_error_line(mlr(env, "eda", "wine", "-p", "epochs=3"), "unknown parameter 'epochs'")


def test_two_acquires_of_one_name_at_once_make_two_versions_with_their_own_hashes(project):
    "A URL that answers two different tables, fetched by two acquires started together: versions 1 and 2, each with the hash of its own bytes"
    import subprocess
    from conftest import BIN
    root, env = project
    bodies = [b"x,y\n" + b"".join(b"%d,%s\n" % (i, b"ab"[(i + k) % 2:][:1]) for i in range(200)) for k in range(2)]
    served = []
    class Alternating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = bodies[len(served) % 2]; served.append(body)
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Alternating)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/pts.csv"
        procs = [subprocess.Popen([str(BIN/"mlresearch"), "data", "acquire", url, "--name", "pts", "--target", "y"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        assert [p.wait(120) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    finally: srv.shutdown(); srv.server_close()
    entries = [e for e in json.loads((root/"data/raw/manifest.json").read_text())["datasets"] if e["name"] == "pts"]
    assert sorted(e["version"] for e in entries) == [1, 2]
    assert {e["source_sha256"] for e in entries} == {hashlib.sha256(b).hexdigest() for b in bodies}
    run("mlresearch", "data", "verify", env=env, check=0)  # each raw file matches the sha256 its entry records
