"JupyterLab and the served model's API docs, started as a person starts them and looked at in headless Chromium"
import os, re, shlex, shutil, socket, subprocess, time, urllib.request

import numpy as np
import pytest

from conftest import BIN, REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); CI installs it")
SHOTS = REPO/".pytest_cache"/"screenshots"  # kept after the run, for a person to look at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60, proc=None, log=None) -> bytes:
    "The body at `url`, retried until it answers; a server process that exits first fails with its log"
    end = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r: return r.read()
        except OSError:
            if proc is not None and proc.poll() is not None: pytest.fail(f"the server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > end: raise
            time.sleep(0.5)


def chromium(url: str, shot=None) -> str:
    "The DOM of `url` after its scripts ran (and a screenshot, when `shot` names a file)"
    base = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800", "--virtual-time-budget=20000"]
    if shot: subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    return subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout


def not_blank(png) -> tuple[int, int]:
    "The screenshot's size in bytes and its number of distinct colours; fails on a blank page"
    import matplotlib.image
    img = matplotlib.image.imread(png)[..., :3]
    colours = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert img.shape[:2] == (800, 1280) and img.std() > 0.05 and colours > 50, (img.shape, img.std(), colours)
    return os.path.getsize(png), colours


def test_make_lab_allows_root_only_where_it_runs_as_root():
    out = subprocess.run(["make", "-n", "-C", str(REPO), "lab"], capture_output=True, text=True, check=True).stdout
    cmd = next(ln for ln in out.splitlines() if "jupyter lab" in ln)
    assert ("--allow-root" in cmd) == (os.getuid() == 0) and f'--ServerApp.root_dir="{REPO}"' in cmd


@pytest.fixture
def lab(tmp_path):
    "JupyterLab started with `make lab`'s command on a copy of this project, on 127.0.0.1 with a token"
    work = tmp_path/"proj"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_proc", "_docs", "data", "deliver", "develop", "__pycache__", ".*cache"))
    out = subprocess.run(["make", "-n", "-C", str(REPO), "lab"], capture_output=True, text=True, check=True).stdout
    cmd = shlex.split(next(ln for ln in out.splitlines() if "jupyter lab" in ln))
    cmd = [str(BIN/"jupyter"), *(f"--ServerApp.root_dir={work}" if a.startswith("--ServerApp.root_dir=") else a for a in cmd[1:])]
    port, token = free_port(), "mlresearch-test-token"
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path/"cfg"), "JUPYTER_DATA_DIR": str(tmp_path/"data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path/"rt")}
    p = subprocess.Popen([*cmd, "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path/"lab.log", "w"))
    try:
        wait_for(f"http://127.0.0.1:{port}/api/status?token={token}", proc=p, log=tmp_path/"lab.log")
        yield f"http://127.0.0.1:{port}", token
    finally:
        p.terminate(); p.wait(30)


def test_jupyterlab_serves_the_templates_through_its_rest_api(lab):
    import json
    base, token = lab
    nb = json.loads(wait_for(f"{base}/api/contents/research/templates/train.ipynb?token={token}"))
    assert nb["type"] == "notebook" and nb["content"]["cells"][1]["metadata"]["tags"] == ["parameters"]
    with pytest.raises(urllib.error.HTTPError) as e: wait_for(f"{base}/api/contents/research/templates", seconds=0)  # no token, no access
    assert e.value.code == 403


@needs_chromium
def test_jupyterlab_renders_in_chromium(lab):
    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    dom = chromium(f"{base}/lab?token={token}")
    listed = re.findall(r'jp-DirListing-itemText[^>]*><span>([^<]+)<', dom)
    assert {"nbs", "research", "mlresearch", "README.md"} <= set(listed), listed
    shot = SHOTS/"jupyterlab-train-template.png"
    chromium(f"{base}/lab/tree/research/templates/train.ipynb?token={token}", shot)
    size, colours = not_blank(shot)
    print(f"JupyterLab screenshot: {shot} ({size} bytes, {colours} colours)")


@needs_chromium
def test_the_served_models_api_docs_render_in_chromium(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    port = free_port()
    p = subprocess.Popen([str(BIN/"mlresearch"), "serve", "digits-logreg", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path/"serve.log", "w"))
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/health/ready", proc=p, log=tmp_path/"serve.log")
        SHOTS.mkdir(parents=True, exist_ok=True)
        dom = chromium(f"http://127.0.0.1:{port}/docs", SHOTS/"api-docs.png")
        paths = set(re.findall(r'data-path="([^"]+)"', dom))
        assert {"/predict", "/v2/models/{name}/infer", "/metadata", "/monitoring/drift", "/metrics"} <= paths, paths
        assert "mlresearch: digits-logreg" in dom
        size, colours = not_blank(SHOTS/"api-docs.png")
        print(f"API docs screenshot: {SHOTS/'api-docs.png'} ({size} bytes, {colours} colours)")
    finally:
        p.terminate(); p.wait(30)
