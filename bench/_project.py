"A scratch project for the benchmarks: this repository's templates and the digits data, outside the repository."
import os, shutil, subprocess, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def scratch_project() -> tuple[Path, dict]:
    "A new project root with the templates and digits acquired; the environment that points the tools at it"
    root = Path(tempfile.mkdtemp(prefix="mlresearch-bench-"))
    shutil.copytree(REPO/"research"/"templates", root/"research"/"templates")
    (root/"pyproject.toml").write_text("[tool.mlresearch]\n")  # marks a project root
    env = {**os.environ, "MLRESEARCH_ROOT": str(root), "MLRESEARCH_USER": "bench"}
    subprocess.run([str(BIN/"mlresearch"), "--log-level", "WARNING", "data", "acquire", "sklearn:digits"], env=env, check=True,
                   capture_output=True)
    return root, env


def papermill(root: Path, env: dict, out: Path, params: dict) -> subprocess.CompletedProcess:
    "Plain papermill on the train template, as a user would type it"
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    return subprocess.run([str(BIN/"papermill"), "--no-progress-bar", "--log-level", "WARNING",
                           str(root/"research/templates/train.ipynb"), str(out), *args], env=env, cwd=root, check=True,
                          capture_output=True)


def mlresearch(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN/"mlresearch"), "--log-level", "WARNING", *map(str, args)], env=env, check=True, capture_output=True)
