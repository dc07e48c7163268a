"""`mlresearch predict`: the digits CNN run scores the raw test rows exactly as its notebook did, a 1,000,000-row CSV is
scored with flat memory, bad files are named, and runs that must not be used are refused."""
import json, pickle, shutil, subprocess, sys

import pandas as pd

from conftest import BIN, run

from mlresearch.files import sha256_file


def test_the_cnn_run_scores_the_test_rows_as_its_notebook_did(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    rows.to_csv(tmp_path/"rows.csv", index=False)
    rows.to_parquet(tmp_path/"rows.parquet")
    res = run("mlresearch", "predict", "digits-cnn", tmp_path/"rows.csv", "--output", tmp_path/"out/preds.csv", "--chunk-rows", "100", env=env, check=0)
    assert "360 rows scored by" in res.stdout
    preds = pd.read_csv(tmp_path/"out/preds.csv")
    assert preds["prediction"].tolist() == kept["prediction"].tolist()
    assert list(preds.columns) == ["prediction", *[f"proba_{k}" for k in range(10)]]
    rec = json.loads((tmp_path/"out/preds.csv.json").read_text())
    sums = dict(line.split("  ")[::-1] for line in (runs["digits-cnn"]/"SHA256SUMS").read_text().splitlines())
    assert rec["model_sha256"]["model.safetensors"] == sums["artifacts/model/model.safetensors"]
    assert (rec["run"], rec["rows"], rec["input_sha256"], rec["output_sha256"]) == (
        runs["digits-cnn"].name, 360, sha256_file(tmp_path/"rows.csv"), sha256_file(tmp_path/"out/preds.csv"))
    run("mlresearch", "predict", "digits-cnn", tmp_path/"rows.parquet", "-o", tmp_path/"out/preds.parquet", env=env, check=0)
    assert pd.read_parquet(tmp_path/"out/preds.parquet")["prediction"].tolist() == kept["prediction"].tolist()


def _peak_kb(args, env) -> int:
    "The peak resident memory of one `mlresearch` command, in KiB"
    code = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); " \
           "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(r.stderr[-2000:])"
    res = subprocess.run([sys.executable, "-c", code, str(BIN/"mlresearch"), *map(str, args)], env=env, capture_output=True, text=True)
    code, kb = res.stdout.split()
    assert code == "0", res.stderr
    return int(kb)


def test_a_million_row_csv_is_scored_in_flat_memory(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    from mlresearch.data import load
    digits = load("digits", root=root).drop(columns="target")
    sizes = {}
    for n, reps in (("200k", 112), ("1m", 557)):  # 1797 rows x 557 = 1,000,929 rows
        f = tmp_path/f"{n}.csv"
        header, body = digits.to_csv(index=False).split("\n", 1)  # the text of the 1797 rows, written `reps` times
        with f.open("w") as out:
            out.write(header + "\n")
            for _ in range(reps): out.write(body)
        sizes[n] = (f.stat().st_size, _peak_kb(["predict", "digits-logreg", f, "-o", tmp_path/f"{n}.parquet"], env))
        got = pd.read_parquet(tmp_path/f"{n}.parquet", columns=["prediction"])
        assert len(got) == 1797 * reps
    from mlresearch.modelfile import load_run_model
    assert got["prediction"].iloc[:1797].tolist() == load_run_model("digits-logreg", root=root).predict(digits).tolist()
    (b1, m1), (b2, m2) = sizes["200k"], sizes["1m"]
    print(f"\npeak memory of mlresearch predict: {b1 / 1e6:.0f} MB CSV (201,264 rows) {m1 / 1024:.0f} MiB; "
          f"{b2 / 1e6:.0f} MB CSV (1,000,929 rows) {m2 / 1024:.0f} MiB")
    assert m2 < m1 * 1.15, sizes  # five times the rows, the same memory (within noise)


def test_bad_files_are_named_and_leave_nothing_behind(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    bad = rows.astype({"pixel_2_3": object})
    bad.iloc[250, bad.columns.get_loc("pixel_2_3")] = "dark"
    bad.to_csv(tmp_path/"bad.csv", index=False)
    rows.drop(columns=["pixel_0_0", "pixel_7_7"]).to_csv(tmp_path/"short.csv", index=False)
    (tmp_path/"short-row.csv").write_text(",".join(rows.columns) + "\n" + "1,2\n")
    (tmp_path/"ragged.csv").write_text(",".join(rows.columns) + "\n" + ",".join(["0"] * 64) + "\n" + ",".join(["0"] * 70) + "\n")
    missing = rows.copy()
    missing.iloc[5, 3] = None
    missing.to_csv(tmp_path/"missing.csv", index=False)
    (tmp_path/"keep.csv").write_text("an earlier output\n")
    cases = [(["bad.csv"], "bad.csv: row 251 column 'pixel_2_3' is not a finite number"),
             (["short.csv"], "lacks column(s) the model needs: pixel_0_0, pixel_7_7 (2 of 64)"),
             (["ragged.csv"], "cannot read"),
             (["short-row.csv"], "short-row.csv: row 1 column 'pixel_0_2' is missing"),
             (["missing.csv"], "row 6 column 'pixel_0_3' is missing"),
             (["nothing.csv"], "does not exist"),
             (["."], "is a folder; this model reads a CSV or Parquet file of its columns"),
             (["bad.csv", "--chunk-rows", "0"], "chunk_rows must be at least 1")]
    for args, words in cases:
        res = run("mlresearch", "predict", "digits-cnn", *[tmp_path/args[0], *args[1:]], "-o", tmp_path/"keep.csv", env=env)
        assert res.returncode == 1 and words in res.stderr.strip().splitlines()[-1] and "Traceback" not in res.stderr, (args, res.stderr)
        assert (tmp_path/"keep.csv").read_text() == "an earlier output\n"
    res = run("mlresearch", "predict", "digits-cnn", tmp_path/"bad.csv", "-o", tmp_path/"out.xlsx", env=env)
    assert res.returncode == 1 and "is not a .csv or .parquet file" in res.stderr


def test_predict_evaluate_monitor_and_export_refuse_a_tampered_or_pickled_model_naming_the_file(digits_runs, tmp_path):
    root, env, runs, kept, rows = digits_runs
    rows.to_csv(tmp_path/"rows.csv", index=False)
    deliver = root/"research/deliver"
    tampered = shutil.copytree(runs["digits-cnn"], deliver/"2001-01-01_cnn-tampered")
    w = tampered/"artifacts/model/model.safetensors"
    data = bytearray(w.read_bytes()); data[len(data) // 2] ^= 0xFF
    w.chmod(0o644); w.write_bytes(bytes(data))
    pickled = shutil.copytree(runs["digits-cnn"], deliver/"2001-01-02_cnn-pickled")
    marker = tmp_path/"pwned"

    class Evil:
        def __reduce__(self): return (exec, (f"open({str(marker)!r}, 'w')",))
    (pickled/"artifacts/model/weights.pkl").write_bytes(pickle.dumps(Evil()))
    from mlresearch.record import write_checksums
    (pickled/"SHA256SUMS").chmod(0o644); write_checksums(pickled)  # even with checksums that match
    runs_before = sorted(p.name for p in deliver.iterdir())
    for name, words in (("2001-01-01_cnn-tampered", "artifacts/model/model.safetensors modified"),
                        ("2001-01-02_cnn-pickled", "holds weights.pkl, which save_model never writes")):
        for cmd in (["predict", name, tmp_path/"rows.csv", "-o", tmp_path/"p.csv"], ["evaluate", name, "--dataset", "digits"],
                    ["monitor", name, tmp_path/"rows.csv"], ["export", name, "--output", tmp_path/"onnx"]):
            res = run("mlresearch", *cmd, env=env)
            assert res.returncode == 1 and words in res.stderr and "Traceback" not in res.stderr, (cmd, res.stderr)
        assert not (tmp_path/"p.csv").exists() and not (tmp_path/"onnx").exists()
    assert sorted(p.name for p in deliver.iterdir()) == runs_before  # no evaluation run was started
    assert not marker.exists()
