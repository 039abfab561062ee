"""`tune-hardbatch search` on a real local Ray Tune (the Ray backend), on digits.

In-process runs share one local Ray (conftest's `local_ray`); the CLI test and the driver that is killed
(SIGKILL) are subprocesses, each with its own local Ray, killed with its process group; the --resume after
the kill runs in-process. Trials are short: a few epochs on digits with 1 CPU each.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from search_helpers import (  # noqa: E402,F401
    BASE,
    CLI,
    ENV,
    REPO,
    N,
    history,
    kill_driver_when,
    read_rows,
    run_cli,
    snapshot_statuses,
    space,
)

from tune_hardbatch.ray_backend import run_search  # noqa: E402
from tune_hardbatch.ray_backend.faults import CRASH_ENV  # noqa: E402
from tune_hardbatch.search import space as SP  # noqa: E402
from tune_hardbatch.training.config import build_config  # noqa: E402


def run(spec_dict, tmp_path, name, **kw) -> tuple[list[dict], Path]:
    spec_dict = {**spec_dict, "run": {**spec_dict.get("run", {}), "name": name}}
    path = run_search(spec_dict, out=str(tmp_path), live_interval_s=1000, **kw)
    return read_rows(path), path.parent


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_grid_yields_exactly_its_arms(local_ray, tmp_path):
    rows, exp = run(space(base={"epochs": 2, "data": {"name": "digits", "train_limit": 640, "val_fraction": 0.0}},
                          space={"hard_batch.delta": {"grid": [1.0, 0.5]}, "seed": {"grid": [0, 1]}},
                          search={"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"}), tmp_path, "grid")
    arms = sorted((float(r["hard_batch.delta"]), int(r["seed"])) for r in rows)
    assert arms == sorted(itertools.product([1.0, 0.5], [0, 1]))
    assert all(r["status"] == "finished" for r in rows)
    assert {r["strategy"] for r in rows} == {"delta=1", "delta=0.5"}
    assert {int(r["backprops"]) for r in rows} == {2 * (640 // 64)}  # equal back-propagations per arm
    assert len({r["trial_id"] for r in rows}) == 4
    for r in rows:
        cfg = json.loads((exp / r["trial_id"] / "params.json").read_text())
        assert "strategy" not in cfg  # derived from the params (Ray restores sample_from as placeholders)
        assert all(not isinstance(v, str) for k, v in history(exp / r["trial_id"])[-1].items()
                   if k not in ("date", "hostname", "node_ip", "node_id", "trial_id", "experiment_tag",
                                "checkpoint_dir_name"))


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_checkpoints_when_due_and_ended_trials_keep_only_the_best_ones(local_ray, tmp_path):
    """run.checkpoint_every 3: checkpoints at epoch-equivalents 1, 4, 7 and the last (8); after the search
    only the best trial keeps one (its final) checkpoint; Ray's TensorBoard logger is not added."""
    rows, exp = run(space(base={"epochs": 8, "data": {"name": "digits", "train_limit": 640, "val_fraction": 0.0}},
                          space={"seed": {"grid": [0, 1]}},
                          search={"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"},
                          run={"checkpoint_every": 3}), tmp_path, "ckpt")
    best = (exp / "best_config.yaml").read_text().split()[3]  # "# best trial <id> of search ..."
    for r in rows:
        reports = history(exp / r["trial_id"])
        assert [h["epoch"] for h in reports if h.get("checkpoint_dir_name")] == [1, 4, 7, 8]
        assert reports[-1]["checkpoint_s"] > 0 and "report_blocked_s" in reports[-1]
        left = sorted(p.name for p in (exp / r["trial_id"]).glob("checkpoint_*"))
        assert left == (["checkpoint_000003"] if r["trial_id"] == best else []), (r["trial_id"], left)
    assert not list(exp.rglob("events.out.tfevents*")), "no TensorBoard logger on top of JSON and CSV"


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_halving_stops_the_first_started_trial_when_it_is_the_worst(local_ray, tmp_path):
    """One trial at a time, the worst started first: each waits at the rung (paused from its checkpoint) until
    all have reported there, so the first is stopped; survivors resume exactly where they paused."""
    rows, exp = run(space(base={"epochs": 4, "optim": {**BASE["optim"], "schedule": "none"}},  # rungs at 1, 2
                          space={"optim.lr": {"grid": [0.001, 0.004, 0.015, 0.1]}},
                          search={"searcher": "grid", "scheduler": "halving", "grace_period": 1,
                                  "reduction_factor": 2, "max_concurrent": 1}), tmp_path, "halving")
    assert len(rows) == 4
    by_lr = {float(r["optim.lr"]): r for r in rows}
    assert by_lr[0.001]["status"] == "stopped_early"  # the first started, the worst at the first rung
    finished = [r for r in rows if r["status"] == "finished"]
    assert len(finished) == 1 and int(finished[0]["backprops"]) == 4 * N  # 4 -> 2 -> 1
    ladder = json.loads((exp / "rungs.jsonl").read_text())["all"]
    assert ladder["milestones"] == [1.0, 2.0] and len(ladder["values"][0]) == 4
    first, survivors = ladder["values"][0], ladder["survivors"][0]
    assert first[by_lr[0.001]["trial_id"]] == min(first.values())  # started first, worst at the rung
    assert len(survivors) == 2 and by_lr[0.001]["trial_id"] not in survivors
    for values, kept in zip(ladder["values"], ladder["survivors"]):  # none survives a rung it was worst at
        assert min(values[t] for t in kept) >= max(v for t, v in values.items() if t not in kept)
    assert ladder["survivors"][1] == [finished[0]["trial_id"]]
    for r in rows:
        epochs = [h["epoch"] for h in history(exp / r["trial_id"])]
        assert epochs == list(range(1, len(epochs) + 1))  # paused and resumed: no epoch repeated or lost
        if r["status"] == "stopped_early":
            assert int(r["backprops"]) < 4 * N and history(exp / r["trial_id"])[-1]["budget_done"] == 0


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_nan_trial_ends_diverged_and_is_not_retried(local_ray, tmp_path):
    rows, exp = run(space(base={"epochs": 3, "data": {"name": "digits", "train_limit": 640, "val_fraction": 0.0}},
                          space={"optim.lr": {"grid": [0.05, 1.0e6]}},
                          search={"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"},
                          run={"max_failures": 2}),
                    tmp_path, "nan")
    by_lr = {float(r["optim.lr"]): r for r in rows}
    assert by_lr[0.05]["status"] == "finished" and int(by_lr[0.05]["backprops"]) == 3 * 10
    bad = by_lr[1.0e6]
    assert bad["status"] == "diverged"
    reports = history(exp / bad["trial_id"])
    assert len(reports) == 1 and reports[0]["diverged"] == 1  # really diverged, stopped, reported once
    assert reports[0]["train_loss"] != reports[0]["train_loss"]  # NaN
    assert not (exp / bad["trial_id"] / "error.txt").exists()  # returned normally: not retried


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_injected_crash_is_retried_from_its_checkpoint(local_ray, tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    monkeypatch.setenv(CRASH_ENV, f"epoch=3,marker={markers}")
    rows, exp = run(space(base={"epochs": 4, "data": {"name": "digits", "train_limit": 640, "val_fraction": 0.0}},
                          space={"seed": {"grid": [0]}},
                          search={"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"},
                          run={"max_failures": 1, "checkpoint_every": 1}),  # every report: the next epoch
                    tmp_path, "crash")
    (row,) = rows
    assert row["status"] == "finished" and int(row["backprops"]) == 4 * 10
    assert (markers / f"{row['trial_id']}.crashed").exists()  # it did crash once
    reports = history(exp / row["trial_id"])
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4]  # continued after epoch 2, no restart from 0
    backprops = [r["backprops"] for r in reports]
    assert backprops == sorted(set(backprops)) and backprops[0] == 10


_MODULES_AFTER = """
import json, sys
from tune_hardbatch.cli import main
path = sys.argv.pop(1)
code = main(sys.argv[1:])
with open(path, "w") as fh:
    json.dump({m: m in sys.modules for m in ("torch", "timm", "torchvision")}, fh)
sys.exit(code)
"""


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_default_space_via_cli(tmp_path):
    # the default space, shortened: 4 trials of 3 epochs on 640 digits (512 after the validation split)
    modules = tmp_path / "modules.json"
    code, out, err = run_cli(["--set", "search.num_samples=4", "--set", "base.epochs=3", "--set",
                              "base.data.train_limit=640", "--set", "confirm.seeds=2", "--set", "run.name=cli",
                              "--out", str(tmp_path)], timeout=220, cwd=tmp_path,
                             cli=[sys.executable, "-c", _MODULES_AFTER, str(modules), "search"])
    assert code == 0, err[-3000:]
    # the driver never held torch, timm or a model: the pre-flight check ran in a child process, the trials
    # (and their curves) in Ray's workers
    assert json.loads(modules.read_text()) == {"torch": False, "timm": False, "torchvision": False}
    assert all((p.parent / "curves.png").is_file() for p in (tmp_path / "cli").glob("*/result.json"))
    rows = read_rows(tmp_path / "cli" / "results.csv")
    assert len(rows) == 4 and len({r["trial_id"] for r in rows}) == 4
    assert all(r["status"] in SP.STATUSES for r in rows)
    assert {"trial_id", "status", "strategy", "optim.lr", "hard_batch.delta", "final_test_top1",
            "best_test_top1", "convergence_epoch", "epoch_equiv", "backprops", "samples_forward",
            "time_s"} <= set(rows[0])
    lines = [line for line in out.splitlines() if line.strip()]
    start = max(i for i, line in enumerate(lines) if line.startswith("best configuration"))
    verdict = max(i for i, line in enumerate(lines) if line.startswith("verdict ("))
    confirm = max(i for i, line in enumerate(lines) if line.startswith("confirmation: "))
    assert start < confirm < verdict, "the best configuration, then the confirmation, then the verdict last"
    config = lines[start + 1:next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))]
    assert any(line.strip().startswith("optim.lr:") for line in config)
    assert lines.index(next(line for line in lines if line.startswith("results:"))) < start
    verdict_json = json.loads((tmp_path / "cli" / "verdict.json").read_text())
    assert verdict_json["source"] == "confirmation" and verdict_json["seeds"] == [1, 2]
    # 4 trials over the 4 arms: one each, and plain SGD (lr <= 0.3) trains on digits, so plain is confirmed as
    # the baseline and the last line printed is the words of the verdict's last primary comparison with it
    assert verdict_json["baseline"] == "plain"
    primary = [c["name"] for a in verdict_json["arms"] for c in a["diffs"] if c["primary"]]
    assert lines[-1].strip().startswith(f"{primary[-1]}: ") and primary[-1].endswith(" vs plain"), lines[-3:]
    # the tool's own lines only: MLflow's, alembic's, Ray's and Python's warnings go to the file the header names
    assert lines[0].startswith(f"starting cli: default.yaml, 4 trials; results under {tmp_path / 'cli'}")
    library = re.compile(r"^\d{4}[-/]\d\d[-/]\d\d .*(INFO|WARNING|DEBUG)|alembic|mlflow\.store|Warning:|\(raylet\)",
                         re.M)
    assert not library.search(out) and not library.search(err), (library.findall(out + err), err[-2000:])
    assert f"the libraries' logs (Ray, MLflow, Optuna) in {tmp_path / 'cli' / 'libraries.log'}" in out
    assert (tmp_path / "cli" / "libraries.log").is_file()
    best = yaml.safe_load((tmp_path / "cli" / "best_config.yaml").read_text())
    build_config(best)  # a valid training config


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_sigkill_then_resume_does_not_rerun_finished_trials(local_ray, tmp_path):
    """The driver, a CLI subprocess with a local Ray of its own, is killed (SIGKILL) mid-search; --resume
    (what the CLI runs: `run_search` with the same space and `resume`) continues on the shared local Ray."""
    space_file = tmp_path / "kill.yaml"
    space_file.write_text(yaml.safe_dump(space(base={"epochs": 8}, space={"seed": {"grid": [0, 1, 2, 3]}},
                                               search={"searcher": "grid", "scheduler": "fifo"},
                                               run={"name": "kill", "max_failures": 1})))
    exp = tmp_path / "out" / "kill"
    args = [str(space_file), "--out", str(tmp_path / "out")]
    state = {}

    def ready() -> bool:
        state.clear()
        state.update(snapshot_statuses(exp))
        return "TERMINATED" in state.values() and "RUNNING" in state.values()

    kill_driver_when(args, ready, 150, "the search ended before it could be interrupted")
    assert "TERMINATED" in state.values(), state
    done_before = {t for t, s in state.items() if s == "TERMINATED"}
    lines_before = {t: len(history(exp / t)) for t in done_before}
    assert not (exp / "results.csv").exists()

    path = run_search(str(space_file), out=str(tmp_path / "out"), resume="kill", live_interval_s=1000)
    assert path.resolve() == (exp / "results.csv").resolve()
    rows = read_rows(exp / "results.csv")
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert all(int(r["backprops"]) == 8 * N for r in rows)
    for t in done_before:  # finished before the kill: not run again
        assert len(history(exp / t)) == lines_before[t] == 8
    for r in rows:  # every trial completed its plan (running ones continue from their last snapshot)
        epochs = [h["epoch"] for h in history(exp / r["trial_id"])]
        assert epochs[-1] == 8 and sorted(set(epochs)) == list(range(1, 9))


def test_rays_records_of_a_trials_checkpoints_hold_no_copy_of_its_reports(tmp_path, monkeypatch):
    """The driver keeps a record per checkpoint to the end of the search: with `ray_env`, a path, not the
    report's ~45 metrics (Ray's TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE; we rank no checkpoint by score)."""
    from ray import tune
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult

    from tune_hardbatch.ray_backend.checkpoints import checkpoint_config
    from tune_hardbatch.ray_backend.driver import ray_env

    monkeypatch.delenv("TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE", raising=False)
    ray_env(local=True)
    manager = _CheckpointManager(checkpoint_config())
    report = {f"key{i}": float(i) for i in range(45)}
    for epoch in range(3):
        (tmp_path / f"checkpoint_{epoch}").mkdir()
        manager.register_checkpoint(_TrainingResult(tune.Checkpoint(str(tmp_path / f"checkpoint_{epoch}")),
                                                    {**report, "epoch": epoch}))
    assert [r.metrics for r in manager.best_checkpoint_results] == [{}, {}, {}]
    assert manager.latest_checkpoint_result.checkpoint.path.endswith("checkpoint_2")
