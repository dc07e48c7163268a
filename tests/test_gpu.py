"""On a machine with a CUDA GPU: the digits CNN trains there (bf16 autocast) and the model it saves, loaded on the CPU as
`serve` loads it, answers the test split exactly as the GPU-trained model did. Skipped where there is no GPU."""
import datetime as dt, json, time

import pytest
from mlresearch.testing import scratch_project

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_cnn_trained_on_the_gpu_serves_on_the_cpu_with_the_same_answers(tmp_path):
    from fastapi.testclient import TestClient
    from mlresearch.data import load
    from mlresearch.record import write_checksums
    from mlresearch.pipeline import save_predictions, train
    from mlresearch.serve.app import get_app
    root = scratch_project(parent=tmp_path, name="proj")
    run = root/"research/deliver"/f"{dt.date.today():%Y-%m-%d}_digits-cnn-gpu"
    t0 = time.perf_counter()
    res = train(dict(dataset="sklearn:digits", model="cnn", device="cuda", epochs=30), out=run/"artifacts/model", root=root)
    seconds = time.perf_counter() - t0
    assert res.metrics["accuracy"] > 0.97, res.metrics
    kept = save_predictions(res, run/"artifacts/test_predictions.parquet")
    # the rest of a deliver run's folder, by hand (papermill's kernel is not needed to check the model)
    (run/"params.toml").write_text('model = "cnn"\ndevice = "cuda"\n')
    (run/"metrics.json").write_text(json.dumps(res.metrics))
    (run/"provenance.json").write_text(json.dumps(dict(run=run.name, status="succeeded", template="research/templates/train.ipynb")))
    write_checksums(run)
    import pandas as pd
    kept = pd.read_parquet(kept)
    rows = load("digits", root=root).iloc[kept["row"]].drop(columns="target")
    with TestClient(get_app(run, root=root)) as c:
        r = c.post("/predict", json={"records": rows.to_dict("records")})
        drift = c.get("/monitoring/drift").json()
    assert r.status_code == 200 and r.json()["predictions"] == kept["prediction"].tolist()
    assert (drift["available"], drift["window"]["rows"], drift["drifted_features"]) == (True, 360, [])  # the test rows: no drift
    print(f"\n{torch.cuda.get_device_name()}: 30 epochs of the digits CNN in {seconds:.1f} s, test accuracy {res.metrics['accuracy']:.4f}; "
          f"served on the CPU: {len(kept)} of {len(kept)} predictions equal; drift of the test rows: {drift['summary']}")
    try: import onnxruntime as ort
    except ImportError: print("onnxruntime is not installed: the ONNX export is not checked here"); return
    from mlresearch.onnx import export_run
    import numpy as np
    out = export_run(run, out=tmp_path/"onnx", root=root)
    (probs,) = ort.InferenceSession(str(out/"model.onnx"), providers=["CPUExecutionProvider"]).run(["probabilities"], {"pixels": rows.to_numpy(np.float32)})
    assert (probs.argmax(1) == kept["prediction"].to_numpy()).all()
    print(f"ONNX export of the GPU-trained CNN: {len(kept)} of {len(kept)} test rows give the notebook's class; "
          f"check on the reference rows: {json.loads((out/'export.json').read_text())['check']}")
