"The project's own machinery: plain papermill on the templates, nbdev's two spellings, the docs build, the README."
import os, shutil

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


def test_docs_prepare_without_quarto(tmp_path):
    if shutil.which("quarto"):
        import pytest; pytest.skip("quarto is installed: `make docs` renders the full site")
    work = tmp_path/"repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_proc", "_docs", "data", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "MLRESEARCH_ROOT"}  # found from the working directory, the copy
    res = run("mlresearch", "docs", cwd=work, env=env, check=0)
    assert "quarto is not installed: skipped the render" in res.stdout
    proc = work/"_proc"
    for f in ("_quarto.yml", "nbdev.yml", "sidebar.yml", "00_config.ipynb", "index.ipynb"):
        assert (proc/f).exists(), f
    assert "mlresearch" in (proc/"nbdev.yml").read_text()
    assert "01_data.ipynb" in (proc/"sidebar.yml").read_text()
