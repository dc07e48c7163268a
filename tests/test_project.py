"The project's own machinery: plain papermill on the templates, nbdev's two spellings, the docs build, the README."
import os, shutil, subprocess

import nbformat

from conftest import REPO, run


def test_plain_papermill_runs_the_eda_template(project, tmp_path):
    root, env = project
    run("mlresearch", "data", "acquire", "sklearn:breast_cancer", env=env, check=0)
    out = tmp_path/"out.ipynb"
    run("papermill", "--no-progress-bar", "--log-level", "WARNING", REPO/"research/templates/eda.ipynb", out,
        "-p", "dataset", "breast-cancer", env=env, cwd=root, check=0)
    nb = nbformat.read(out, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs) >= 4


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


def _pages_and_figures(results):
    "Every generated page with its front matter, and every image it references"
    import json, re, yaml
    found = {}
    for page in sorted(results.rglob("*")):
        if page.suffix == ".qmd":
            text = page.read_text()
            front, body = re.match(r"---\n(.*?)\n---\n", text, re.S).group(1), text
        elif page.suffix == ".ipynb":
            cells = json.loads(page.read_text())["cells"]
            assert cells[0]["cell_type"] == "raw", page
            front = re.fullmatch(r"---\n(.*?)\n---", "".join(cells[0]["source"]), re.S).group(1)
            body = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else: continue
        meta = yaml.safe_load(front)
        assert isinstance(meta, dict) and meta.get("title"), (page, front)
        found[page] = [page.parent/f for f in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", body)]
    return found


def _clone_with_runs(digits_runs, tmp_path):
    "A copy of this project as a fresh clone has it after the main job: the digits data and its CNN and baseline runs"
    root, env, runs, kept, rows = digits_runs
    work = tmp_path/"repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_proc", "_docs", "data", "research", "__pycache__"))
    shutil.copytree(REPO/"research/templates", work/"research/templates")
    shutil.copytree(root/"data/raw", work/"data/raw")
    for name in ("digits-cnn", "digits-logreg"): shutil.copytree(runs[name], work/"research/deliver"/runs[name].name)
    env = {k: v for k, v in os.environ.items() if k != "MLRESEARCH_ROOT"}  # found from the working directory, the copy
    return work, env, runs


def test_docs_build_a_results_page_for_every_run(digits_runs, tmp_path):
    "The site as a fresh clone builds it after the main job: the reference, the Results pages, the sidebar; twice, byte for byte"
    import yaml
    work, env, runs = _clone_with_runs(digits_runs, tmp_path)
    res = run("mlresearch", "docs", cwd=work, env=env, check=0)
    out = res.stdout + res.stderr
    if shutil.which("quarto"):
        html = (work/"_docs/results/index.html").read_text()
        assert all(runs[n].name in html for n in ("digits-cnn", "digits-logreg"))
    else: assert "quarto is not installed: skipped the render" in res.stdout
    assert "warn" not in out.lower(), out  # nothing a reader cannot act on
    proc = work/"_proc"
    for f in ("_quarto.yml", "nbdev.yml", "sidebar.yml", "00_config.ipynb", "22_site.ipynb", "index.ipynb"):
        assert (proc/f).exists(), f
    results = proc/"results"
    pages = _pages_and_figures(results)
    assert set(pages) == {results/"index.qmd", *(results/"runs"/f"{runs[n].name}.ipynb" for n in ("digits-cnn", "digits-logreg"))}
    figures = [f for refs in pages.values() for f in refs]
    assert figures and all(f.is_file() and f.stat().st_size > 5_000 for f in figures), figures
    index = (results/"index.qmd").read_text()
    assert index.count("| ✅ succeeded |") == 2 and "verifies" in index
    side = yaml.safe_load((proc/"sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    listed = {c for c in yaml.safe_dump(side).split() if c.endswith((".ipynb", ".qmd"))}
    assert {p.relative_to(proc).as_posix() for p in pages} <= listed and "05_data.ipynb" in listed
    before = {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()}
    run("mlresearch", "docs", cwd=work, env=env, check=0)
    assert {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()} == before


def test_generated_docs_files_are_ignored_by_git():
    res = subprocess.run(["git", "check-ignore", "nbs/nbdev.yml", "nbs/sidebar.yml", "_proc/results/index.qmd"], cwd=REPO, capture_output=True, text=True)
    assert res.stdout.split() == ["nbs/nbdev.yml", "nbs/sidebar.yml", "_proc/results/index.qmd"], res


def test_check_passes_on_a_clone_and_names_each_broken_convention(digits_runs, tmp_path):
    work, env, runs = _clone_with_runs(digits_runs, tmp_path)
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
