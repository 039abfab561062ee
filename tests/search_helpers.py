"""Shared helpers of the search tests (spec validation, Ray runs, the CLI): a digits base config and
small space mappings, results.csv and result.json readers, a CLI subprocess killed with its group."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from servers import kill_group

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "TUNE_HARDBATCH_NO_PROGRESS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
CLI = [sys.executable, "-m", "tune_hardbatch", "search"]
BASE = {"data": {"name": "digits", "val_fraction": 0.2}, "model": {"name": "test_resnet"}, "device": "cpu",
        "optim": {"batch_size": 64}}  # 1437 training digits, 287 held out for validation
TRAIN = 1150  # training samples after the validation split
N = TRAIN // 64  # back-propagations per epoch
# a space of four dimensions, and its validated spec (the results, history and console tests')
SPACE = {"optim.lr": {"loguniform": [0.01, 0.3]}, "trim.schedule": {"choice": ["none", "linear"]},
         "trim.p_end": {"uniform": [0.2, 0.8]}, "stepwise.fractions": {"choice": [None, [0.5, 1.0]]}}


# Names YAML would retype, as a user types them: arms `0.5`, `yes`, `delta=1` (reached by --set only quoted) and
# one of 100 characters, a run named by a date, an experiment named by a number (one epoch, one trial per arm)
TYPED_NAME100 = "n" * 100
TYPED_SPACE = ("search: {scheduler: fifo, trials_per_arm: 1}\nconfirm: {seeds: 0}\nresources: {cpu: 1}\n"
               "base: {epochs: 1, data: {name: digits, val_fraction: 0.2, train_limit: 400}, optim: {batch_size: 64}}\n"
               "space: {optim.lr: {loguniform: [0.05, 0.2]}}\nrun: {name: 2026-12-07}\ntracking: {experiment: 2026}\n"
               f"arms:\n  0.5: {{}}\n  yes: {{fixed: {{trim.schedule: linear}}}}\n  delta=1: {{}}\n  {TYPED_NAME100}: {{}}\n")
TYPED_SETS = ["--set", 'arms."delta=1".fixed.hard_batch.delta=1.0']


def spec(**search):
    from tune_hardbatch.search.space import validate_space

    return validate_space({"base": {**BASE, "epochs": 4}, "space": SPACE,
                           "search": {"scheduler": "fifo", **search}, "resources": {"cpu": 1, "gpu": 0.5}})


def read_rows(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def history(trial_dir) -> list[dict]:
    """Every result a trial reported (Ray's result.json: one JSON object per line, NaN allowed)."""
    with open(Path(trial_dir) / "result.json") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def space(**sections) -> dict:
    # no confirmation phase and no MLflow tracking unless a test asks for them (tracking is tested end to end
    # by tests/test_mlflow_search.py against a server, and with the default local store by the CLI test
    # test_default_space_via_cli)
    out = {"base": dict(BASE), "resources": {"cpu": 1, "gpu": 0}, "run": {"max_failures": 1},
           "confirm": {"seeds": 0}, "tracking": {"enabled": False}}
    for key, value in sections.items():
        if key == "base":
            out["base"] = {**BASE, **value}
        else:
            out[key] = value
    return out


def run_cli(args, timeout, env=None, cwd=None, cli=None):
    """A CLI subprocess in its own process group (`cli`: the command before ARGS, default `CLI`); the whole
    group is killed afterwards."""
    proc = subprocess.Popen((cli or CLI) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or ENV, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return proc.returncode, out, err


def kill_driver_when(args, ready, timeout_s: float, too_late: str, env=None) -> None:
    """Start `tune-hardbatch search ARGS` (a driver with a local Ray of its own); once `ready()` (polled),
    SIGKILL the driver only, as a crash would, then whatever it left behind. `too_late`: the failure
    message when the search ended first."""
    proc = subprocess.Popen(CLI + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env or ENV, start_new_session=True)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.3)
        assert proc.poll() is None, too_late
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        kill_group(proc)


def snapshot_statuses(exp: Path) -> dict:
    """trial id -> Ray status from an experiment's newest snapshot ({} while none is readable)."""
    import glob

    files = sorted(glob.glob(str(exp / "experiment_state-*.json")))
    if not files:
        return {}
    try:
        data = json.loads(Path(files[-1]).read_text())
        return {json.loads(t[0])["trial_id"]: json.loads(t[0])["status"] for t in data["trial_data"]}
    except (OSError, ValueError, KeyError):
        return {}


# Bad inputs through the CLI: `main(argv)` for many argvs in one fresh interpreter (is Ray imported?)

_RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys
    from tune_hardbatch.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(argv)
        out.append([code, err.getvalue()])
    print(json.dumps({"results": out, "ray_imported": "ray" in sys.modules}))
""")


def run_mains(argvs: list[list[str]], cwd, timeout: int = 120) -> tuple[list, bool]:
    """`main(argv)` for each argv in ONE fresh interpreter: [(exit code, stderr)], whether Ray was imported."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argvs)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["results"], report["ray_imported"]


def assert_one_error_line(code, err, key, fragment=None):
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}"), err
    assert "Traceback" not in err
    if fragment:
        assert fragment in lines[0], lines[0]
