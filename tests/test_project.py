"The project's own machinery: plain papermill on the templates, nbdev's two spellings, the README, mlresearch check (the docs site: test_browser)."
import subprocess

import nbformat

from conftest import REPO, clone_with_runs, run


def test_plain_papermill_runs_the_eda_template(project, tmp_path):
    "Headless servers and CI export MPLBACKEND=Agg; the kernel's backend is the project's choice, not the shell's, under plain papermill too"
    from mlresearch.execute import count_figures
    root, env = project
    env = {**env, "MPLBACKEND": "Agg"}
    run("mlresearch", "data", "acquire", "sklearn:breast_cancer", env=env, check=0)
    out = tmp_path/"out.ipynb"
    run("papermill", "--no-progress-bar", "--log-level", "WARNING", REPO/"research/templates/eda.ipynb", out,
        "-p", "dataset", "breast-cancer", env=env, cwd=root, check=0)
    nb = nbformat.read(out, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs) >= 4
    assert count_figures(nb) >= 4


def test_templates_keep_their_parameters_tag():
    for f in (REPO/"research/templates").glob("*.ipynb"):
        nb = nbformat.read(f, as_version=4)
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1, f
        assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), f"{f} must be committed without outputs"


def test_both_nbdev_spellings(tmp_path):
    for cmd in ("nbdev_export", "nbdev-export", "nbdev_test", "nbdev-test"):
        assert run(cmd, "--help", check=0).stdout.startswith("usage:")
    res = run("nbdev_test", "nbs/00_config.ipynb", cwd=REPO, check=0)
    assert "Success" in res.stdout


def test_no_settings_ini_and_nbdev_config():
    import tomllib
    assert not (REPO/"settings.ini").exists()
    cfg = tomllib.loads((REPO/"pyproject.toml").read_text())["tool"]["nbdev"]
    assert set("notest slow gpu".split()) <= set(cfg["tst_flags"].split())
    assert "tags" in cfg["allowed_cell_metadata_keys"]


def test_readme_is_generated_from_index():
    from mlresearch.project import readme_text
    assert (REPO/"README.md").read_text() == readme_text(REPO), "README.md is stale: run mlresearch check"
    assert "make test" in readme_text(REPO)


def test_generated_docs_files_are_ignored_by_git():
    res = subprocess.run(["git", "check-ignore", "nbs/nbdev.yml", "nbs/sidebar.yml", "_proc/results/index.qmd"], cwd=REPO, capture_output=True, text=True)
    assert res.stdout.split() == ["nbs/nbdev.yml", "nbs/sidebar.yml", "_proc/results/index.qmd"], res


def test_check_passes_on_a_clone_and_names_each_broken_convention(digits_runs, tmp_path):
    work, env, runs = clone_with_runs(digits_runs, tmp_path)
    res = run("mlresearch", "check", cwd=work, env=env, check=0)
    assert "ok: " in res.stdout and "warning: data/raw/digits_raw_sklearn_v1.parquet: dataset digits v1 has no EDA deliver run" in res.stdout

    def fails_naming(line):
        res = run("mlresearch", "check", cwd=work, env=env, check=1)
        assert line in res.stdout.splitlines() and res.stderr.startswith("error: "), (res.stdout, res.stderr)

    deliver = work/"research/deliver"
    cnn = runs["digits-cnn"].name
    (deliver/cnn).rename(deliver/"DigitsCNN")
    fails_naming("problem: research/deliver/DigitsCNN: a deliver run must be named YYYY-MM-DD_short-description")
    (deliver/"DigitsCNN").rename(deliver/cnn)

    raw = work/"data/raw/digits_raw_sklearn_v1.parquet"
    saved = raw.read_bytes()
    raw.chmod(0o644); raw.write_bytes(saved + b"\0")
    res = run("mlresearch", "check", cwd=work, env=env, check=1)
    assert any(ln.startswith("problem: data/raw/digits_raw_sklearn_v1.parquet: modified") for ln in res.stdout.splitlines()), res.stdout
    raw.write_bytes(saved)

    nb = work/"nbs/08_baselines.ipynb"
    d = nbformat.read(nb, as_version=4)
    cell = next(c for c in d.cells if c.source.startswith("#| export") and "def baseline_names" in c.source)
    cell.source += "\n\ndef baseline_count(task:str)->int: return len(baseline_names(task))"
    nbformat.write(d, nb)
    fails_naming("changed: mlresearch/baselines.py (generated: now rewritten; review and commit it)")
    run("mlresearch", "check", cwd=work, env=env, check=0)  # the export is now current


def test_every_exported_function_and_class_is_documented():
    "The library reference: nbdev shows each exported function and class with its docstring; none may lack one"
    import importlib, inspect, pkgutil
    import mlresearch
    missing = []
    for m in pkgutil.walk_packages(mlresearch.__path__, "mlresearch."):
        if m.ispkg or m.name.rsplit(".", 1)[-1].startswith("_"): continue  # a package's modules are walked; serve/__init__.py is empty
        mod = importlib.import_module(m.name)
        missing += [f"{m.name}.{n}" for n in mod.__all__ if (inspect.isfunction(o := getattr(mod, n)) or inspect.isclass(o)) and not inspect.getdoc(o)]
    assert missing == []
