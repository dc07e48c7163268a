"The figures a researcher reads in a run: seaborn's, in the project's theme, present in the executed notebooks"
import json

import nbformat

from conftest import run
from mlresearch.execute import count_figures


def _images_by_call(nb, calls):
    "For each function name in `calls`, how many images the cells that call it show"
    out = dict.fromkeys(calls, 0)
    for c in nb.cells:
        if c.cell_type != "code": continue
        images = sum(any(m.startswith("image/") for m in o.get("data", {})) for o in c.get("outputs", []))
        for name in calls:
            if f"{name}(" in c.source: out[name] += images
    return out


EDA = ("plot_missing", "plot_target", "plot_distributions", "plot_correlations", "plot_pairs", "plot_pca", "plot_image_grid")


def test_eda_runs_on_wine_and_digits_show_every_figure(project):
    """A headless shell (MPLBACKEND=Agg, as servers and CI export it) changes nothing: each figure of the EDA template is in the run's
    notebook, the image grid for images only; the run records how many it shows, and the kernel's own log lines stay out of the output"""
    root, env = project
    env = {**env, "MPLBACKEND": "Agg"}
    for name, spec, images in (("wine", "sklearn:wine", 0), ("digits", "sklearn:digits", 1)):
        res = run("mlresearch", "deliver", "eda", "--name", f"eda-{name}", "-p", f"dataset={spec}", "-p", "max_features=8", env=env, check=0)
        (folder,) = (root/"research/deliver").glob(f"*_eda-{name}")
        nb = nbformat.read(folder/"eda.ipynb", as_version=4)
        want = {**dict.fromkeys(EDA, 1), "plot_image_grid": images}
        assert _images_by_call(nb, EDA) == want, (name, _images_by_call(nb, EDA))
        assert count_figures(nb) == 6 + images
        assert json.loads((folder/"provenance.json").read_text())["figures"] == 6 + images
        assert "Kernel is running over TCP" not in res.stderr and "IPKernelApp" not in res.stderr, res.stderr
    table = run("mlresearch", "runs", env=env, check=0).stdout.splitlines()
    col = table[0].split().index("figures")
    assert sorted(row.split()[col] for row in table[1:]) == ["6", "7"], table


def test_the_cnn_run_shows_learning_curves_confusion_heatmap_and_roc(digits_runs):
    root, env, runs, kept, rows = digits_runs
    nb = nbformat.read(runs["digits-cnn"]/"train.ipynb", as_version=4)
    counts = _images_by_call(nb, ("plot_learning_curves", "plot_confusion", "plot_roc"))
    assert counts == {"plot_learning_curves": 1, "plot_confusion": 1, "plot_roc": 1}, counts
    assert count_figures(nb) == 3
