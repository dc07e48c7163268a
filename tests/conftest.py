import os, shutil, subprocess, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args, env=None, cwd=None, check=None):
    "Run a command from the venv; return the CompletedProcess"
    cmd = [str(BIN/args[0]) if (BIN/args[0]).exists() else args[0], *map(str, args[1:])]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if check is not None: assert res.returncode == check, f"{cmd} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture
def project(tmp_path):
    "A scratch project with this project's templates; its env points MLRESEARCH_ROOT at it"
    root = tmp_path/"proj"
    shutil.copytree(REPO/"research"/"templates", root/"research"/"templates")
    env = {**os.environ, "MLRESEARCH_ROOT": str(root), "MLRESEARCH_USER": "tester"}
    return root, env
