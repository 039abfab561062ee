"""The tracking process's tests' shared parts: a search's parent run and a started `TrackingProcess`
(`started`, a fixture in tests/tracking/conftest.py), trials as Ray's callback events, the runs made."""

from __future__ import annotations

import json
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from tune_hardbatch.search import space as SP
from tune_hardbatch.tracking import SearchTracker, TrackingProcess, resolve_uri, tracker_setup


def start(tmp_path):
    """A search's parent run opened by the driver's tracker, and the tracking process started after it."""
    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    tracker = SearchTracker(uri, "proc", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    process = TrackingProcess(tracker_setup(tracker), spec, exp_dir / "libraries.log")
    return SimpleNamespace(spec=spec, exp_dir=exp_dir, uri=uri, tracker=tracker, process=process)


def make_reports(n: int, top1: float) -> list[dict]:
    """`n` reports of a trial whose test top-1 starts at `top1`, the last one with its budget done."""
    return [{"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0, "test_top1": top1 + i, "test_top5": 90.0,
             "train_top1": 60.0, "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1 / (i + 1), "p": 1.0,
             "budget_done": int(i == n - 1), "config": {"optim.lr": 0.05}} for i in range(n)]


def run_trial(cb, trial_id: str, reports: list[dict], end: bool = True) -> None:
    """A trial as Ray's callback events give it to `cb` (a `TrackingCallback`), with the result.json its
    result logger writes."""
    trial = SimpleNamespace(trial_id=trial_id, config={"optim.lr": 0.05}, checkpoint=None)
    cb.on_trial_start(0, [], trial)
    (cb.exp_dir / trial_id).mkdir(parents=True, exist_ok=True)
    for report in reports:
        cb.on_trial_result(0, [], trial, report)
    (cb.exp_dir / trial_id / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    if end:
        cb.on_trial_complete(0, [], trial)


def child_runs(uri: str, parent: str) -> dict:
    """Trial id -> its MLflow child run under `parent`."""
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("proc").experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    return {r.data.tags["trial_id"]: r for r in runs}
