"""The container files, without Docker (CI cannot run it): they parse, every path they copy or mount exists, nothing
runs as root, the torch they install is the Makefile's, and the commands they run are run here for real: the API's
command from compose.yaml serves a real run, the image's HEALTHCHECK passes against it and fails without it,
Prometheus's scrape target and path answer in its text format, and the training image's default command delivers a run."""
import json, re, shlex, signal, socket, subprocess, sys, time, tomllib

import httpx
import pytest
import yaml

from conftest import BIN, REPO, run

DOCKER = REPO/"docker"


def dockerfile(name: str) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined and comments dropped"
    text = re.sub(r"\\\n", " ", (DOCKER/name).read_text())
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1].strip()) for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _args(ins, key):
    return [a for k, a in ins if k == key]


def _exec_form(s: str) -> list:
    return json.loads(s)


def _ignored() -> list[str]:
    return [ln.strip() for ln in (REPO/".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.mark.parametrize("name", ["serve.Dockerfile", "train.Dockerfile"])
def test_dockerfiles_copy_what_exists_run_as_non_root_and_pin_the_makefiles_torch(name):
    ins = dockerfile(name)
    assert ins[0][0] == "FROM" and ins[0][1].startswith("python:3.11")
    for a in _args(ins, "COPY"):
        *srcs, _ = a.split()
        for s in srcs:
            assert (REPO/s).exists(), s
            assert not any(s == p or s.startswith(p.rstrip("/") + "/") for p in _ignored()), f"{s} is excluded by .dockerignore"
    users = [i for i, (k, _) in enumerate(ins) if k == "USER"]
    assert users and ins[users[-1]][1] not in ("root", "0") and users[-1] < [i for i, (k, _) in enumerate(ins) if k == "ENTRYPOINT"][0]
    torch_pin = re.search(r'TORCH \?= .*,(torch==[\d.]+)\)', (REPO/"Makefile").read_text()).group(1)
    assert any(f'"{torch_pin}" --index-url https://download.pytorch.org/whl/cpu' in a for a in _args(ins, "RUN"))
    entry = _exec_form(_args(ins, "ENTRYPOINT")[0])
    assert entry[0] in tomllib.loads((REPO/"pyproject.toml").read_text())["project"]["scripts"] or entry[0] == "jupyter"


def test_compose_and_prometheus_name_files_that_exist_and_agree():
    c = yaml.safe_load((DOCKER/"compose.yaml").read_text())
    assert set(c["services"]) == {"lab", "api", "prometheus"}
    for s in c["services"].values():
        if "build" in s:
            assert (DOCKER/s["build"]["context"]/s["build"]["dockerfile"]).is_file()
        for v in s.get("volumes", []):
            assert (DOCKER/v.split(":")[0]).exists(), v
    prom = yaml.safe_load((DOCKER/"prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    host, port = job["static_configs"][0]["targets"][0].split(":")
    api = c["services"]["api"]
    assert host == "api" and api["ports"] == [f"{port}:{port}"] and api["command"][api["command"].index("--port") + 1] == port
    assert job["metrics_path"] == "/metrics"
    assert c["services"]["prometheus"]["depends_on"] == ["api"]
    serve = dockerfile("serve.Dockerfile")
    assert _args(serve, "EXPOSE") == [port]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthcheck(port: int) -> int:
    "The serve image's HEALTHCHECK command, pointed at `port`; its exit status"
    hc = next(a for k, a in dockerfile("serve.Dockerfile") if k == "HEALTHCHECK")
    cmd = _exec_form(hc[hc.index("CMD") + 3:].strip())
    assert "http://127.0.0.1:8000/v2/health/ready" in cmd[-1]
    cmd = [sys.executable if cmd[0] == "python" else cmd[0], *[a.replace(":8000/", f":{port}/") for a in cmd[1:]]]
    return subprocess.run(cmd, capture_output=True, timeout=30).returncode


def test_the_api_command_serves_a_run_its_healthcheck_passes_and_prometheus_can_scrape_it(digits_runs):
    from prometheus_client.parser import text_string_to_metric_families
    root, env, runs, kept, rows = digits_runs
    api = yaml.safe_load((DOCKER/"compose.yaml").read_text())["services"]["api"]
    entry = _exec_form(next(a for k, a in dockerfile("serve.Dockerfile") if k == "ENTRYPOINT"))
    port = _free_port()
    args = [a.replace("/runs/${RUN:?set RUN to a run folder in research/deliver}", str(runs["digits-logreg"])) for a in api["command"]]
    args[args.index("--port") + 1] = str(port)
    assert _healthcheck(port) != 0  # nothing listens yet
    p = subprocess.Popen([str(BIN/entry[0]), *entry[1:], *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            if _healthcheck(port) == 0: break
            assert p.poll() is None, p.stdout.read()
            time.sleep(0.2)
        else: pytest.fail("the API never became ready")
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": rows.iloc[:3].to_dict("records")})
        assert r.status_code == 200
        families = {f.name for f in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics").text)}
        assert {"mlresearch_http_requests", "mlresearch_http_request_duration_seconds", "mlresearch_batch_rows", "mlresearch_predictions"} <= families
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0


def test_the_training_images_default_command_delivers_a_run(project):
    root, env = project
    cmd = _exec_form(next(a for k, a in dockerfile("train.Dockerfile") if k == "CMD"))
    entry = _exec_form(next(a for k, a in dockerfile("train.Dockerfile") if k == "ENTRYPOINT"))
    image_env = dict(re.findall(r"(\w+)=(\S+)", next(a for k, a in dockerfile("train.Dockerfile") if k == "ENV")))
    assert image_env["MLRESEARCH_ROOT"] == "/project" and next(a for k, a in reversed(dockerfile("train.Dockerfile")) if k == "WORKDIR") == "/project"
    res = run(*entry, *cmd, "-p", "epochs=2", env={**env, "MPLBACKEND": image_env["MPLBACKEND"]}, cwd=root, check=0)  # two epochs, for time
    assert "succeeded" in res.stdout
    assert any((root/"research/deliver").glob("*_digits-cnn/artifacts/model/model.safetensors"))
    lab = yaml.safe_load((DOCKER/"compose.yaml").read_text())["services"]["lab"]
    assert lab["entrypoint"][0] == "jupyter" and (BIN/"jupyter-lab").exists()
    assert shlex.join(lab["entrypoint"]) == "jupyter lab --ip=0.0.0.0 --port=8888 --no-browser" and lab["ports"] == ["8888:8888"]


@pytest.mark.parametrize("tool, files", [("actionlint", sorted((REPO/".github/workflows").glob("*.yml"))),
                                         ("hadolint", sorted(DOCKER.glob("*.Dockerfile")))])
def test_workflows_and_dockerfiles_pass_their_linters(tool, files):
    "actionlint on the GitHub workflows (current action versions), hadolint on the Dockerfiles: exit 0, as the pre-commit hooks run them"
    assert files
    run(tool, *files, cwd=REPO, check=0)
