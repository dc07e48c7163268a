"""The README's commands as a new user types them: every shell command in its code blocks and every command in its inline
code names a make target, an extra or a command that exists, with options that command has, and the executables work from a
fresh shell once `source .venv/bin/activate` (the README's first daily step) has run."""
import os, re, shlex, subprocess, tomllib

import pytest
import typer

from conftest import BIN, REPO

README = (REPO/"README.md").read_text()
STARTS = (".venv/bin/", "mlresearch ", "make ", "nbdev", "papermill ", "pytest", "python -m ", "source ")
NOT_OURS = {"docker", "curl", "cd", "[", "git", "hey", "wrk"}  # the user's system's commands, not this project's
CRON = re.compile(r"^(\S+\s+){5}")  # a crontab line's five time fields


def readme_commands() -> list[str]:
    "Each simple command of the README: its sh blocks' lines (continuations joined, comments dropped) and its inline commands"
    lines = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", README, re.S):
        for ln in re.sub(r"\\\n\s*", " ", block).splitlines():
            ln = re.sub(r"\s+#\s.*$", "", ln).strip()
            if ln and not ln.startswith("#"): lines.append(CRON.sub("", ln) if re.match(r"^[\d*]", ln) else ln)
    lines += [c for c in re.findall(r"`([^`\n]+)`", README) if c.startswith(STARTS) and not c.startswith("mlresearch.")]
    return [part.strip() for ln in lines for part in re.split(r"\s*(?:&&|\|\||;)\s*", ln) if part.strip()]


def words(cmd: str) -> list[str]:
    "The command's words, leading VAR=value assignments dropped, brackets of optional parts and `...` removed"
    ws = [w if w in ("[", "]") else w.strip("[]") for w in shlex.split(cmd.replace("$(", "(").replace("$?", "0"))]
    while ws and re.fullmatch(r"[A-Z_]+=\S*", ws[0]): ws.pop(0)
    return [w for w in ws if w and w != "..." and w != ".venv/bin/..."]


COMMANDS = [c for c in readme_commands() if words(c)]  # `.venv/bin/...` stands for any command


def test_the_readme_has_the_commands_a_user_types():
    exes = {words(c)[0].removeprefix(".venv/bin/") for c in COMMANDS}
    assert {"make", "mlresearch", "papermill", "nbdev_export", "nbdev_test", "source"} <= exes, exes
    assert len(COMMANDS) > 60, len(COMMANDS)
    # the checks below would catch a renamed command or option
    assert _click_path(["runs", "compare", "accuracy", "--by", "lr"]) == (["runs", "compare"], [])
    assert _click_path(["runs", "comparison"])[1] == ["mlresearch runs has no command 'comparison'"]
    assert _click_path(["predict", "r", "x.csv", "--out", "y.csv"])[1] == ["mlresearch predict has no option --out"]


def _click_path(ws: list[str]) -> tuple[list[str], list[str]]:
    "Walk `mlresearch` words through the command tree: (the command path, the problems: unknown commands or options)"
    try: from typer._click import Context  # newer typer vendors click
    except ImportError: from click import Context
    from mlresearch.cli import app
    cmd, path, problems, i = typer.main.get_command(app), [], [], 0
    ctx = Context(cmd)
    while i < len(ws):
        w = ws[i]
        if w.startswith("-") and w != "-":
            name = w.split("=")[0]
            opt = next((p for p in cmd.params if name in (*p.opts, *p.secondary_opts)), None)
            if opt is None: problems.append(f"{' '.join(['mlresearch', *path])} has no option {name}")
            elif not getattr(opt, "is_flag", False) and "=" not in w: i += 1  # its value
        elif hasattr(cmd, "list_commands"):  # a word after a group names one of its commands
            sub = cmd.get_command(ctx, w)
            if sub is None: problems.append(f"{' '.join(['mlresearch', *path])} has no command {w!r}"); break
            cmd, path = sub, [*path, w]
            ctx = Context(cmd, parent=ctx)
        i += 1
    return path, problems


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_readme_command_names_what_exists(cmd):
    from typer.testing import CliRunner
    from mlresearch.cli import app
    ws = words(cmd)
    exe = ws[0].removeprefix(".venv/bin/")
    if exe in NOT_OURS: return
    if exe == "make":
        targets = set(re.findall(r"^([a-z-]+):", (REPO/"Makefile").read_text(), re.M))
        assert all(t in targets for t in ws[1:] if "=" not in t and not t.startswith("-")) and len(ws) > 1, cmd
    elif exe == "pip":
        extras = tomllib.loads((REPO/"pyproject.toml").read_text())["project"]["optional-dependencies"]
        for spec in ws[2:]:
            for extra in re.findall(r"\[([^\]]+)\]", spec.replace('"', "")) or []:
                assert set(extra.split(",")) <= set(extras), cmd
        assert ws[1] == "install", cmd
    elif exe == "source": assert ws[1:] == [".venv/bin/activate"], cmd
    elif exe in ("mlresearch", "python"):
        if exe == "python": assert ws[1:3] == ["-m", "mlresearch"], cmd; ws = ws[2:]
        path, problems = _click_path(ws[1:])
        assert problems == [], f"{cmd}: {problems}"
        r = CliRunner().invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (cmd, r.output)
    else: assert (BIN/exe).exists(), f"{cmd}: {exe} is not installed in the environment"


def test_the_readme_commands_work_in_a_fresh_shell_after_activating():
    "As typed after `source .venv/bin/activate`, in a shell whose PATH has only the system's folders: each executable answers --help"
    exes = sorted({words(c)[0].removeprefix(".venv/bin/") for c in COMMANDS} - NOT_OURS - {"make", "source", "pip", "python"})
    script = [f"source {shlex.quote(str(BIN/'activate'))}", f"cd {shlex.quote(str(REPO))}"]
    script += [f"{e} --help >/dev/null 2>&1 || echo 'not working: {e} --help'" for e in exes]
    script += ["python -m mlresearch --help >/dev/null 2>&1 || echo 'not working: python -m mlresearch --help'",
               "nbdev_export --help >/dev/null && nbdev_test --help >/dev/null || echo 'not working: nbdev_export && nbdev_test'"]
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    res = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr
    assert {"mlresearch", "papermill", "nbdev_export", "nbdev_test", "pytest"} <= set(exes), exes


def test_make_run_on_a_fresh_machine_installs_the_daily_workflows_tools_first():
    "What `make run` would do with no environment yet (`make -n`): the dev extra (nbdev, JupyterLab, pytest) before the main job, then the activation line"
    steps = subprocess.run(["make", "-n", "run", "VENV=/nonexistent/venv"], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    dev = next(i for i, s in enumerate(steps) if s.startswith("/nonexistent/venv/bin/pip install") and '".[dev]"' in s)
    first_job = next(i for i, s in enumerate(steps) if s.startswith("/nonexistent/venv/bin/mlresearch "))
    said = next(i for i, s in enumerate(steps) if "source /nonexistent/venv/bin/activate" in s)
    assert dev < said < first_job, steps
