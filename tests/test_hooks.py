"The pre-commit hooks and the GitHub Actions workflows: they name commands and targets that exist, and the hooks pass on a clean clone"
import json, os, re, subprocess

import yaml

from conftest import BIN, REPO


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO/"Makefile").read_text(), re.M))


def test_the_hooks_run_the_projects_own_tools_and_pass_on_a_clean_clone(tmp_path):
    cfg = yaml.safe_load((REPO/".pre-commit-config.yaml").read_text())
    hooks = [h for r in cfg["repos"] for h in r["hooks"]]
    assert {h["id"] for h in hooks} == {"nbdev-clean", "ruff", "mlresearch-check", "actionlint", "hadolint"} and all(r["repo"] == "local" for r in cfg["repos"])
    for h in hooks:  # the venv's own tools: nothing is downloaded
        tools = re.findall(r"\.venv/bin/[a-z-]+", h["entry"])
        assert tools and all((REPO/t).exists() for t in tools), h["entry"]
    assert "hooks" in make_targets() and "pre-commit install" in (REPO/"Makefile").read_text()
    work = tmp_path/"clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)
    (work/".venv").symlink_to(REPO/".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLRESEARCH_")} | {"PRE_COMMIT_HOME": str(tmp_path/"pc")}
    pc = str(BIN/"pre-commit")
    subprocess.run([pc, "validate-config"], cwd=work, env=env, check=True, capture_output=True)
    res = subprocess.run([pc, "run", "--all-files"], cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.count("Passed") == 5, res.stdout + res.stderr
    # a notebook saved with outputs and stray metadata is cleaned, and the commit stopped until it is added again
    nb = work/"nbs/08_baselines.ipynb"
    d = json.loads(nb.read_text())
    code = next(c for c in d["cells"] if c["cell_type"] == "code")
    code["metadata"], code["execution_count"] = {"collapsed": True, "scrolled": True}, 7
    nb.write_text(json.dumps(d, indent=2))
    res = subprocess.run([pc, "run", "nbdev-clean", "--files", "nbs/08_baselines.ipynb"], cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "files were modified by this hook" in res.stdout, res.stdout
    assert subprocess.run(["git", "diff", "--quiet"], cwd=work).returncode == 0  # cleaned back to the committed bytes


def test_the_workflows_run_make_targets_that_exist():
    targets = make_targets()
    for wf, want in (("test.yml", "test"), ("docs.yml", "docs")):
        doc = yaml.safe_load((REPO/".github/workflows"/wf).read_text())
        steps = [s for job in doc["jobs"].values() for s in job.get("steps", [])]
        runs = [s["run"] for s in steps if "run" in s]
        made = {m for r in runs for m in re.findall(r"\bmake ([a-z-]+)", r)}
        assert want in made and made <= targets, (wf, made)
        pys = [s["with"]["python-version"] for s in steps if s.get("uses", "").startswith("actions/setup-python")]
        assert pys == ["3.11"], pys
    docs = yaml.safe_load((REPO/".github/workflows/docs.yml").read_text())
    uses = [s.get("uses", "") for job in docs["jobs"].values() for s in job.get("steps", [])]
    assert any(u.startswith("quarto-dev/quarto-actions/setup") for u in uses) and any(u.startswith("actions/deploy-pages") for u in uses)
