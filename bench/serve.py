"""Serving: `mlresearch serve` against the seeds' design and a plain FastAPI app, on the same delivered model.

In a scratch project this delivers the digits models (a logistic regression and the CNN), then for each model starts,
one at a time on 127.0.0.1:
  - ours:    `mlresearch serve RUN` (uvicorn, one worker);
  - flask:   the seeds' design: a minimal Flask app that unpickles the model (transform + estimator or torch module)
             at start and, per request, builds a DataFrame from the JSON records, transforms it and predicts;
  - fastapi: a plain FastAPI app (pydantic request model, sync endpoint) with the same per-request code, on uvicorn.
The baselines get OMP_NUM_THREADS=1 (their best setting under concurrency here) and no request log, as ours has none.
`hey` (a compiled load generator, a separate process) sends --requests single-record requests at concurrency 8 to each
after --warmup untimed ones, and the table shows requests per second, p50 and p99, and any answer that was not a 200.

Batch: --batch-repeats requests of one 1,000-row batch to our service, each timed with a keep-alive client from this
process (the standard library's http.client: httpx costs about 0.6 ms a request more here, which is the client's time,
not the service's), against the same rows through in-process `LoadedModel.predict` (the same rows as a DataFrame, torch's default
threads), alternated so that both see the same machine; rows per second from the medians. JSON records
(`POST /predict`), one [1000, 64] JSON tensor (`POST /v2/models/NAME/infer`), and the same tensor as binary tensor data
(FP64, binary outputs back: what `tritonclient.http` sends by default).

Last lines: ours / Flask throughput for each model, and binary V2 / in-process for each. Targets (2 cores): >= 3.0x Flask,
ahead of FastAPI, our p99 under 10 ms, binary V2 >= 0.9 of in-process for the CNN and >= 0.7 for the logistic regression.

    python bench/serve.py [--requests 4000] [--warmup 500] [--batch-repeats 30] [--models cnn,logreg]
"""
import argparse, http.client, json, os, pickle, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from _project import BIN, mlresearch, scratch_project

FLASK_APP = '''
import logging, pickle, sys
import numpy as np, pandas as pd
from flask import Flask, jsonify, request
with open(sys.argv[1], "rb") as f: M = pickle.load(f)
if M["kind"] == "torch": import torch
app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.WARNING)

@app.post("/predict")
def predict():
    df = pd.DataFrame(request.get_json()["records"])
    X = M["transform"].transform(df)
    if M["kind"] == "torch":
        with torch.no_grad(): p = torch.softmax(M["model"](torch.as_tensor(X)), 1).numpy()
    else: p = M["model"].predict_proba(X.reshape(len(X), -1))
    return jsonify(predictions=[M["classes"][i] for i in p.argmax(1)], probabilities=p.tolist())

@app.get("/health")
def health(): return "ok"

app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
'''

FASTAPI_APP = '''
import pickle, sys
import numpy as np, pandas as pd, uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
with open(sys.argv[1], "rb") as f: M = pickle.load(f)
if M["kind"] == "torch": import torch
app = FastAPI()

class Request(BaseModel):
    records: list[dict[str, float | None]]

@app.post("/predict")
def predict(req: Request):
    df = pd.DataFrame(req.records)
    X = M["transform"].transform(df)
    if M["kind"] == "torch":
        with torch.no_grad(): p = torch.softmax(M["model"](torch.as_tensor(X)), 1).numpy()
    else: p = M["model"].predict_proba(X.reshape(len(X), -1))
    return {"predictions": [M["classes"][i] for i in p.argmax(1)], "probabilities": p.tolist()}

@app.get("/health")
def health(): return "ok"

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list, env: dict, port: int, health: str) -> subprocess.Popen:
    "Start a server and wait until it answers"
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    for _ in range(600):
        if p.poll() is not None: raise SystemExit(f"server {cmd[:3]} exited: {p.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1).status_code == 200: return p
        except httpx.HTTPError: pass
        time.sleep(0.1)
    raise SystemExit(f"server {cmd[:3]} did not start")


def stop(p: subprocess.Popen):
    os.killpg(p.pid, signal.SIGTERM)
    try: p.wait(30)
    except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL)


def hey(url: str, body: Path, n: int) -> dict:
    "Requests per second, p50 and p99 (ms), and the status codes, from one `hey` run"
    out = subprocess.run(["hey", "-n", str(n), "-c", "8", "-m", "POST", "-T", "application/json", "-D", str(body), url],
                         capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"(\d+)% in ([\d.]+) secs", out))
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+(?:Get|Post)", out))  # hey's "Error distribution": no answer at all
    return dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50=float(pct["50"]) * 1e3,
                p99=float(pct["99"]) * 1e3, not_200=errors + sum(int(v) for k, v in codes.items() if k != "200"))


def seed_pickle(run: Path, path: Path):
    "What the seeds' services unpickle: the fitted transform and the bare estimator or torch module"
    from mlresearch.modelfile import load_run_model
    m = load_run_model(run)
    model = m.model.module if m.model.kind == "torch" else m.model.est
    with open(path, "wb") as f: pickle.dump(dict(kind=m.model.kind, transform=m.transform, model=model, classes=m.classes), f)


def batch(run: Path, port: int, name: str, rows: pd.DataFrame, repeats: int) -> dict:
    "Rows per second: a 1,000-row request to our service (records and a V2 tensor) against in-process predict, alternated"
    from mlresearch.modelfile import load_run_model
    m = load_run_model(run)
    records = json.dumps(dict(records=rows.to_dict("records"))).encode()
    x = rows.to_numpy()
    tensor = json.dumps(dict(inputs=[dict(name="x", shape=list(x.shape), datatype="FP64", data=x.ravel().tolist())])).encode()
    head = json.dumps(dict(inputs=[dict(name="x", shape=list(x.shape), datatype="FP64", parameters=dict(binary_data_size=x.nbytes))],
                           parameters=dict(binary_data_output=True))).encode()
    binary, binary_headers = head + x.tobytes(), {"Inference-Header-Content-Length": str(len(head)), "content-type": "application/octet-stream"}
    t = dict(records=[], tensor=[], binary=[], local=[])
    conn, as_json = http.client.HTTPConnection("127.0.0.1", port, timeout=60), {"content-type": "application/json"}
    def post(path, body, headers):
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("inference-header-content-length"), r.read()
    try:
        for i in range(repeats + 3):
            t0 = time.perf_counter(); r1 = post("/predict", records, as_json); t1 = time.perf_counter()
            r2 = post(f"/v2/models/{name}/infer", tensor, as_json); t2 = time.perf_counter()
            r3 = post(f"/v2/models/{name}/infer", binary, binary_headers); t3 = time.perf_counter()
            local = m.predict(rows); t4 = time.perf_counter()
            assert r1[0] == r2[0] == r3[0] == 200, (r1[2][:200], r2[2][:200], r3[2][:200])
            n = int(r3[1])
            assert json.loads(r1[2])["predictions"] == local.tolist() == json.loads(r2[2])["outputs"][0]["data"] == np.frombuffer(r3[2][n:n + 8 * len(x)], "<i8").tolist()
            if i >= 3:  # the first ones warm up
                t["records"].append(t1 - t0); t["tensor"].append(t2 - t1); t["binary"].append(t3 - t2); t["local"].append(t4 - t3)
    finally: conn.close()
    return {k: len(rows) / statistics.median(v) for k, v in t.items()}


def bench_model(run: Path, env: dict, a, work: Path) -> dict:
    from mlresearch.data import load
    rows = load("digits", root=env["MLRESEARCH_ROOT"]).drop(columns="target").iloc[:1000]
    one = work/"one.json"
    one.write_text(json.dumps(dict(records=rows.iloc[:1].to_dict("records"))))
    seed_pickle(run, work/"model.pkl")
    (work/"flask_app.py").write_text(FLASK_APP); (work/"fastapi_app.py").write_text(FASTAPI_APP)
    base_env = {**env, "OMP_NUM_THREADS": "1"}
    servers = dict(ours=([str(BIN/"mlresearch"), "serve", str(run), "--port", "{port}"], env, "/ready"),
                   flask=([sys.executable, str(work/"flask_app.py"), str(work/"model.pkl"), "{port}"], base_env, "/health"),
                   fastapi=([sys.executable, str(work/"fastapi_app.py"), str(work/"model.pkl"), "{port}"], base_env, "/health"))
    res = {}
    for name, (cmd, e, health) in servers.items():
        port = free_port()
        p = start([c.format(port=port) for c in cmd], e, port, health)
        try:
            hey(f"http://127.0.0.1:{port}/predict", one, a.warmup)
            res[name] = hey(f"http://127.0.0.1:{port}/predict", one, a.requests)
            if name == "ours": res["batch"] = batch(run, port, run.name.split("_", 1)[1], rows, a.batch_repeats)
        finally: stop(p)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--batch-repeats", type=int, default=30)
    ap.add_argument("--models", default="cnn,logreg")
    a = ap.parse_args()
    if not shutil.which("hey"): raise SystemExit("bench/serve.py needs `hey` (apt-get install hey)")
    root, env = scratch_project()
    os.environ["MLRESEARCH_ROOT"] = env["MLRESEARCH_ROOT"]
    work = Path(tempfile.mkdtemp(prefix="mlresearch-bench-serve-"))
    summary, binary = [], []
    try:
        for model in a.models.split(","):
            mlresearch(env, "deliver", "train", "--name", f"digits-{model}", "-p", "dataset=digits", "-p", f"model={model}")
            run = next((root/"research/deliver").glob(f"*_digits-{model}"))
            r = bench_model(run, env, a, work)
            print(f"\n{model} (run {run.name}; {os.cpu_count()} cores; {a.requests} single-record requests at concurrency 8 with hey)")
            print(f"{'server':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'not 200':>8}")
            for k in ("ours", "flask", "fastapi"):
                print(f"{k:10} {r[k]['rps']:9.0f} {r[k]['p50']:8.2f} {r[k]['p99']:8.2f} {r[k]['not_200']:8d}")
            b = r["batch"]
            print(f"batch of 1000 rows: in-process predict {b['local']:.0f} rows/s; /predict records {b['records']:.0f} rows/s "
                  f"({b['records'] / b['local']:.3f}); V2 tensor {b['tensor']:.0f} rows/s ({b['tensor'] / b['local']:.3f}); "
                  f"binary V2 {b['binary']:.0f} rows/s ({b['binary'] / b['local']:.3f})")
            print(f"ours/fastapi {r['ours']['rps'] / r['fastapi']['rps']:.2f}x; our p99 {r['ours']['p99']:.2f} ms")
            summary.append(f"{model} {r['ours']['rps'] / r['flask']['rps']:.2f}x")
            binary.append(f"{model} {b['binary'] / b['local']:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True); shutil.rmtree(work, ignore_errors=True)
    print(f"\nours/flask throughput: {'; '.join(summary)}")
    print(f"binary V2 batch / in-process: {'; '.join(binary)}")


if __name__ == "__main__":
    main()
