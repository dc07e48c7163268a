"A scratch project for the benchmarks: this repository's templates and the digits data, outside the repository."
import subprocess, sys
from pathlib import Path

from mlresearch import testing

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def scratch_project() -> tuple[Path, dict]:
    "A new project root with the templates and digits acquired (the project's own fixture); the environment that points the tools at it"
    root = testing.scratch_project("all", ["sklearn:digits"])
    return root, testing.project_env(root, user="bench")


def papermill(root: Path, env: dict, out: Path, params: dict) -> subprocess.CompletedProcess:
    "Plain papermill on the train template, as a user would type it"
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    return subprocess.run([str(BIN/"papermill"), "--no-progress-bar", "--log-level", "WARNING",
                           str(root/"research/templates/train.ipynb"), str(out), *args], env=env, cwd=root, check=True,
                          capture_output=True)


def mlresearch(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN/"mlresearch"), "--log-level", "WARNING", *map(str, args)], env=env, check=True, capture_output=True)
