"JupyterLab, the served model's API docs and the docs site, started or built as a person does and looked at in headless Chromium"
import html, os, re, shlex, shutil, socket, subprocess, time, urllib.parse, urllib.request

import numpy as np
import pytest

from conftest import BIN, REPO, clone_with_runs, run

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


CHECK_SCRIPT = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.broken = JSON.stringify(imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")));
});</script>"""


def _look_at(base: str, site, page) -> tuple[int, list, str]:
    "Chromium's view of one page: its image count, the images that did not load, and its DOM"
    import json
    probe = page.with_name(page.stem + ".probe.html")  # beside the page, so relative paths mean the same
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    try: dom = chromium(f"{base}/{probe.relative_to(site).as_posix()}")
    finally: probe.unlink()
    body = re.search(r"<body[^>]*>", dom).group(0)
    images = int(re.search(r'data-images="(\d+)"', body).group(1))
    broken = json.loads(html.unescape(re.search(r'data-broken="([^"]*)"', body).group(1)))
    return images, broken, dom


def _internal_links(dom: str, page_url: str, base: str) -> set:
    "The pages of this site that the DOM's links point to, as paths under the site"
    links = set()
    for href in re.findall(r'<a\s[^>]*href="([^"]+)"', dom):
        url = urllib.parse.urljoin(page_url, html.unescape(href)).split("#")[0].split("?")[0]
        if url.startswith(base + "/") or url == base: links.add(urllib.parse.unquote(url[len(base):]).lstrip("/"))
    return links


def test_the_site_as_a_fresh_clone_builds_it_renders_and_reads_in_chromium(digits_runs, tmp_path):
    """The site as a fresh clone builds it after the main job and a sweep: the Results pages and the sidebar (written the same
    way twice, byte for byte), rendered into _docs/ (Quarto where installed, else the smalldocs preview); then every page of
    Results in Chromium: each image loaded, each link to this site reaching a page that exists, each run's metrics on its page"""
    import json, yaml
    from mlresearch.project import add_results
    from mlresearch.site import status_mark
    work, env, runs = clone_with_runs(digits_runs, tmp_path)
    run("mlresearch", "sweep", "train", "--name", "seeds", "-p", "dataset=digits", "-p", "model=logreg", "-p", "seed=0,1", "--jobs", "2",
        "--quiet", cwd=work, env=env, check=0)
    res = run("mlresearch", "docs", cwd=work, env=env, check=0)
    out = res.stdout + res.stderr
    assert "warn" not in out.lower(), out  # nothing a reader cannot act on
    renderer = "(Quarto)" if shutil.which("quarto") else "(a preview by smalldocs"
    assert res.stdout.startswith(f"site {renderer}") and res.stdout.strip().endswith(str(work/"_docs/index.html")), res.stdout
    proc = work/"_proc"
    for f in ("_quarto.yml", "nbdev.yml", "sidebar.yml", "00_config.ipynb", "24_site.ipynb", "index.ipynb"):
        assert (proc/f).exists(), f
    results = proc/"results"
    deliver = sorted(p.name for p in (work/"research/deliver").iterdir())
    pages = _pages_and_figures(results)
    assert set(pages) == {results/"index.qmd", results/"sweeps/seeds.qmd", *(results/"runs"/f"{r}.ipynb" for r in deliver)}, sorted(pages)
    figures = [f for refs in pages.values() for f in refs]
    assert figures and all(f.is_file() and f.stat().st_size > 5_000 for f in figures), figures
    index = (results/"index.qmd").read_text()
    assert index.count(f"| {status_mark('succeeded')} |") == 4 and "verifies" in index
    side = yaml.safe_load((proc/"sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    listed = {c for c in yaml.safe_dump(side).split() if c.endswith((".ipynb", ".qmd"))}
    assert {p.relative_to(proc).as_posix() for p in pages} <= listed and "05_data.ipynb" in listed
    before = {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()}
    add_results(proc, work)  # the Results pages again: the same bytes
    assert {p.relative_to(results): p.read_bytes() for p in results.rglob("*") if p.is_file()} == before

    site = work/"_docs"
    if not shutil.which("quarto"):  # the preview rendered again over the first: replaced, never nested inside it
        from mlresearch.project import render_preview
        render_preview(proc, site)
        assert (site/"results/index.html").is_file() and not (site/"_docs").exists()
    if CHROMIUM is None: pytest.skip("chromium is not installed (Debian: apt-get install chromium): the rendered pages were not looked at")
    port = free_port()
    log = tmp_path/"http.log"
    server = subprocess.Popen([str(BIN/"python"), "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/index.html", proc=server, log=log)
        looked = [site/"results/index.html", site/"results/sweeps/seeds.html", *(site/"results/runs"/f"{r}.html" for r in deliver)]
        problems = []
        for page in looked:
            assert page.is_file(), page
            url = f"{base}/{page.relative_to(site).as_posix()}"
            images, broken, dom = _look_at(base, site, page)
            problems += [f"{page.relative_to(site)}: image {b} did not load" for b in broken]
            problems += [f"{page.relative_to(site)}: link to {p}, which is not a page" for p in _internal_links(dom, url, base)
                         if not ((site/p).is_file() or (site/p/"index.html").is_file())]
            if page.parent.name == "runs":
                assert images >= 1 and status_mark("succeeded") in dom, page  # a figure of the notebook, the status as text
                metrics = json.loads((work/"research/deliver"/page.stem/"metrics.json").read_text())
                assert f"{metrics['accuracy']:.4g}" in dom and f"{metrics['val_accuracy']:.4g}" in dom, page
            else: assert images >= 1, page
        assert problems == [], "\n".join(problems)
        shot = SHOTS/"site-run.png"
        SHOTS.mkdir(parents=True, exist_ok=True)
        chromium(f"{base}/results/runs/{runs['digits-cnn'].name}.html", shot=shot)
        size, colours = not_blank(shot)
        print(f"site run page screenshot: {shot} ({size} bytes, {colours} colours); {len(looked)} pages looked at")
    finally: server.terminate(); server.wait(10)
