"An Optuna search through the command line: hopeless trials pruned on the epochs' validation figures, the study continued by the same command"
import json

import optuna

from conftest import run


def test_an_optuna_search_prunes_a_hopeless_trial_and_the_same_command_continues_it(project):
    root, env = project
    run("mlresearch", "data", "acquire", "sklearn:wine", "--name", "wine", env=env, check=0)
    cmd = ["mlresearch", "sweep", "train", "--name", "tpe", "--search", "optuna", "--trials", "3", "--jobs", "1", "--prune-after", "1",
           "--metric", "val_loss", "-p", "model=mlp", "-p", "dataset=wine", "-p", "epochs=5", "-p", "lr=loguniform:1e-6:1e-1", "-q"]
    r = run(*cmd, env=env, check=0)
    assert "sweep tpe: 3 trial(s), 0 succeeded earlier, 3 to run on 1 local process" in r.stdout, r.stdout
    storage = f"sqlite:///{root/'research'/'sweeps'/'tpe.optuna.db'}"
    study = optuna.load_study(study_name="tpe", storage=storage)
    rec = json.loads((root/"research"/"sweeps"/"tpe.json").read_text())
    assert rec["search"]["kind"] == "optuna" and rec["search"]["metric"] == "val_loss"
    deliver = root/"research"/"deliver"
    states = {}
    for p in rec["points"]:
        t, run_dir = study.trials[p["trial"]], deliver/p["runs"][-1]["run"]
        prov = json.loads((run_dir/"provenance.json").read_text())
        assert prov["trial"]["number"] == t.number and prov["status"] == p["runs"][-1]["status"]
        states[t.state.name] = states.get(t.state.name, 0) + 1
        if t.state.name == "COMPLETE":  # the study holds what the run recorded, and every epoch's figure
            assert t.value == json.loads((run_dir/"metrics.json").read_text())["val_loss"]
            assert sorted(t.intermediate_values) == [1, 2, 3, 4, 5]
        else:  # stopped after the warm-up epochs, recorded `pruned`, never `failed`
            assert t.state.name == "PRUNED" and prov["status"] == "pruned", prov
            assert prov["error"]["type"] == "TrialPruned" and "pruned after epoch" in prov["error"]["message"]
            assert 3 <= max(t.intermediate_values) < 5
    assert states.get("PRUNED") and states.get("COMPLETE"), states
    assert r.stdout.count(" pruned: trial ") == states["PRUNED"], r.stdout  # its line says why
    run("mlresearch", "runs", "verify", env=env, check=0)

    folders = sorted(deliver.iterdir())
    r = run(*cmd, env=env, check=0)  # the same command: nothing to run, a pruned trial is not retried
    assert f"3 trial(s), {states['COMPLETE']} succeeded earlier, {states['PRUNED']} pruned, 0 to run" in r.stdout, r.stdout
    assert sorted(deliver.iterdir()) == folders and len(optuna.load_study(study_name="tpe", storage=storage).trials) == 3

    other = [c if c != "tpe" else "tpe-2" for c in cmd]
    r = run(*[c if c != "val_loss" else "accuracy" for c in other], env=env)  # a test figure never steers a search
    assert r.returncode == 1 and "'accuracy' is measured on the test split" in r.stderr, r.stderr
    r = run(*other, "--seeds", "2", env=env)
    assert r.returncode == 1 and "an Optuna trial is one run" in r.stderr, r.stderr
