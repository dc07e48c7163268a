"Folders of images end to end: acquired (a truncated file refused by name), delivered with the CNN, served through /predict and V2, scored by predict, checked for drift, exported; their processed cache verified; a resumed run through DataLoader workers bit-equal."
import base64, json, struct

import numpy as np
import pandas as pd
from PIL import Image

from conftest import resumes_bit_equal, run, spoil_each
from mlresearch.testing import digit_folder

TRAIN = ["-p", "model=cnn", "-p", "image_size=16", "-p", "batch_size=16", "-p", "channels=[16,32]", "-p", "deterministic=true", "-p", "device=cpu"]


def _truncated_jpeg(path):
    "A JPEG file cut in half, as a failed copy leaves it"
    Image.new("RGB", (40, 30), (120, 60, 200)).save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _v2_binary(images):
    "A V2 request with one binary BYTES tensor of image files: its body and headers"
    raw = b"".join(struct.pack("<I", len(b)) + b for b in images)
    head = json.dumps({"inputs": [{"name": "image", "shape": [len(images)], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def test_an_image_folder_is_acquired_delivered_served_scored_checked_for_drift_and_exported(project, tmp_path):
    from fastapi.testclient import TestClient
    from mlresearch.serve.app import get_app
    root, env = project
    folder = digit_folder(tmp_path/"incoming"/"digits3", per_class=50)
    _truncated_jpeg(folder/"two"/"broken.jpg")
    r = run("mlresearch", "data", "acquire", folder, env=env, check=1)
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {folder}/two/broken.jpg is not a readable image ("), r.stderr
    assert not any((root/"data/raw").glob("*.parquet"))  # nothing half-written
    (folder/"two"/"broken.jpg").unlink()
    r = run("mlresearch", "data", "acquire", folder, env=env, check=0)
    assert r.stdout.startswith("digits3 v1: 150 rows x 6 columns, target label -> data/raw/digits3_raw_images_v1.parquet"), r.stdout
    run("mlresearch", "data", "verify", env=env, check=0)

    r = run("mlresearch", "deliver", "train", "--name", "d3-cnn", "-p", "dataset=digits3", *TRAIN, "-p", "epochs=12", "-p", "augment=crop",
            "-p", "num_workers=1", env=env, check=0)
    rundir = next((root/"research/deliver").glob("*_d3-cnn"))
    metrics = json.loads((rundir/"metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9 and metrics["test_rows"] == 30, metrics
    kept = pd.read_parquet(rundir/"artifacts/test_predictions.parquet")
    raw = pd.read_parquet(next((root/"data/raw").glob("digits3_*.parquet")), columns=["path", "image"]).iloc[kept["row"]]
    want = kept["prediction"].tolist()

    with TestClient(get_app("d3-cnn", root=root)) as c:  # the notebook's test predictions, back through both protocols
        ans = c.post("/predict", json={"records": [{"image": base64.b64encode(b).decode()} for b in raw["image"]]})
        assert ans.status_code == 200 and ans.json()["predictions"] == want, ans.text
        ans = c.post("/v2/models/d3-cnn/infer", json={"inputs": [{"name": "image", "shape": [len(raw)], "datatype": "BYTES",
                                                                 "data": [base64.b64encode(b).decode() for b in raw["image"]]}]})
        assert ans.status_code == 200 and ans.json()["outputs"][0]["data"] == want, ans.text
        body, headers = _v2_binary(list(raw["image"]))
        ans = c.post("/v2/models/d3-cnn/infer", content=body, headers=headers)
        assert ans.status_code == 200 and ans.json()["outputs"][0]["data"] == want, ans.text
        bad = c.post("/predict", json={"records": [{"image": base64.b64encode(raw["image"].iloc[0]).decode()}, {"image": base64.b64encode(b"not an image").decode()}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "records", 1, "image"], bad.text
        assert c.get("/v2/models/d3-cnn").json()["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        assert c.get("/monitoring/drift").json()["window"]["rows"] == 2 * len(raw) + len(raw)

    out = tmp_path/"preds.csv"
    r = run("mlresearch", "predict", "d3-cnn", folder, "--output", out, env=env, check=0)
    assert r.stdout.startswith("150 rows scored by"), r.stdout
    preds = pd.read_csv(out).set_index("path")
    assert preds.loc[raw["path"], "prediction"].tolist() == want
    assert (preds.index.str.split("/").str[0] == preds["prediction"]).mean() >= 0.9
    (tmp_path/"rows.csv").write_text("a,b\n1,2\n")
    r = run("mlresearch", "predict", "d3-cnn", tmp_path/"rows.csv", env=env, check=1)
    assert "is not a folder of images, an image file (.png" in r.stderr.strip().splitlines()[-1], r.stderr

    darker = tmp_path/"darker"  # the same digits, photographed in a darker room
    for f in sorted(folder.rglob("*.png"))[::2]:
        (darker/f.parent.name).mkdir(parents=True, exist_ok=True)
        im = Image.open(f)
        Image.fromarray((np.asarray(im, np.float32) * 0.45).astype(np.uint8), im.mode).save(darker/f.parent.name/f.name)
    r = run("mlresearch", "drift", "d3-cnn", darker, "--report", tmp_path/"drift", env=env)
    assert r.returncode == 2 and "mean_red" in r.stdout.splitlines()[-1], (r.returncode, r.stdout, r.stderr)
    r = run("mlresearch", "drift", "d3-cnn", folder, env=env, check=0)  # the training folder itself: no alert
    run("mlresearch", "evaluate", "d3-cnn", "--dataset", digit_folder(tmp_path/"more"/"digits3-new", per_class=10, seed=5), env=env, check=0)
    assert json.loads(next((root/"research/deliver").glob("*_evaluate-d3-cnn/metrics.json")).read_text())["accuracy"] >= 0.8

    r = run("mlresearch", "export", "d3-cnn", "--format", "onnx", env=env, check=0)
    export = json.loads(next((root/"research/exports").glob("*/export.json")).read_text())
    assert export["inputs"][0]["shape"] == [None, 3, 16, 16] and export["check"]["passed"] and export["preprocessing"]["kind"] == "image_files", export


def test_a_byte_changed_in_any_processed_file_of_an_image_folder_is_named_and_rebuilt(project, tmp_path):
    "The images' bytes and the split are cache entries like a table's: each file changed in turn is named, set aside and rebuilt, and the run's figures do not move"
    root, env = project
    run("mlresearch", "data", "acquire", digit_folder(tmp_path/"digits3", per_class=20), env=env, check=0)
    def trained(i):
        r = run("mlresearch", "train", "--dataset", "digits3", *TRAIN, "-p", "epochs=3", "--out", root/f"m{i}", "-q", env=env, check=0)
        return r, [line for line in r.stdout.splitlines() if "accuracy" in line or "loss" in line]
    _, first = trained(0)
    files = sorted(f for f in (root/"data/processed").iterdir() if f.suffix in (".bin", ".npy", ".npz", ".json"))
    assert sorted(f.suffix for f in files) == [".bin", ".json", ".npy", ".npz"], files
    runs = iter(range(1, 5))
    spoil_each(files, lambda: trained(next(runs)), first)
    assert len(list((root/"data/tmp").glob("corrupt-*"))) == 4


def test_a_run_on_images_through_dataloader_workers_resumes_bit_equal(tmp_path):
    "Augmented images decoded by two DataLoader workers: stopped after one epoch and resumed, the weights equal an uninterrupted run's"
    import torch
    from mlresearch.data import acquire
    from mlresearch.imagedata import prepare_images
    from mlresearch.models import build_model
    from mlresearch.testing import scratch_project
    from mlresearch.training import Trainer, TrainConfig
    root = scratch_project(parent=tmp_path, name="p")
    acquire(digit_folder(tmp_path/"digits3", per_class=12), root=root)
    p = prepare_images("digits3", size=12, root=root)
    train = p.X["train"].augmented(("flip", "crop", "rotate"), seed=3)
    def trainer(out, resume):
        torch.manual_seed(7 if resume else 3)
        cfg = TrainConfig(epochs=3, batch_size=8, seed=3, deterministic=True, device="cpu", patience=0, progress=False, num_workers=2)
        return Trainer(build_model("cnn", in_channels=3, out_features=3, channels=[8]), cfg, out_dir=out)
    resumes_bit_equal(trainer, (train, None, p.X["val"], None), tmp_path)
    assert not np.array_equal(train[0, 1][0], p.X["train"][0][0])  # the items were augmented
