"""Every notebook's lessons, run as `nbdev-test` runs them (nbdev's `test_nb`, the skip flags of pyproject.toml), one test per notebook.

Run here, the lessons share pytest-xdist's workers with the other tests, so neither waits for the other to finish: as a separate
`nbdev-test` before pytest they took 2 to 4.5 minutes, much of it with one core idle behind the slowest notebook. Each lesson runs in
the worker's process, as in nbdev-test's pool of processes; what a notebook may leave changed there (the environment, the working
directory, `sys.path`, the SIGINT handler, logging, matplotlib's settings and figures) is put back before the next test."""
import contextlib, io, sys

import pytest

from conftest import REPO, restored_process

NBS = REPO/"nbs"
LESSONS = sorted(p.name for p in NBS.glob("*.ipynb"))
# the slowest first, so that no worker is left with one of them at the end (seconds on a quiet 2-core machine)
SLOW_FIRST = ("23_search.ipynb", "24_site.ipynb", "22_sweeps.ipynb", "32_onnx.ipynb", "37_adding_a_model.ipynb", "19_runs.ipynb",
              "16_execute.ipynb", "26_batch.ipynb")


@pytest.mark.parametrize("notebook", sorted(LESSONS, key=lambda n: (n not in SLOW_FIRST, SLOW_FIRST.index(n) if n in SLOW_FIRST else 0, n)))
def test_lessons(notebook):
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config(NBS)
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    err = io.StringIO()
    with restored_process(), contextlib.redirect_stdout(io.StringIO()):
        saved, sys.__stderr__ = sys.__stderr__, err  # where test_nb writes the failing cell's traceback
        try: ok, _ = test_nb(NBS/notebook, skip_flags=skip, force_flags=[], basepath=cfg.config_path, cell_timeout=cfg.cell_timeout or None)
        finally: sys.__stderr__ = saved
    assert ok, f"a lesson of {notebook} failed:\n{err.getvalue()[-6000:]}"
