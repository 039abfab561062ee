"""A phase's trial events made into MLflow child runs (`tracking.TrialRecorder`), as the Ray callback hands
them over through `LocalTracking`: curves the worker draws, and the confirmation's described runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from tune_hardbatch.search import space as SP
from tune_hardbatch.tracking import LocalTracking, SearchTracker, resolve_uri


def _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s, budget_done=0):
    """A trial stopped early (ASHA; `budget_done` 1: finished), whose worker draws its curves
    `worker_draws_after_s` after the event (None: never); the uploaded curves' bytes, and what the trial
    folder's curves.png holds."""
    from tune_hardbatch.ray_backend.callbacks import TrackingCallback
    from tune_hardbatch.tracking import recorder
    from tune_hardbatch.tracking.records import write_config, write_curves

    monkeypatch.setattr(recorder, "CURVES_WAIT_S", 1.0)
    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    (exp_dir / "t1").mkdir(parents=True)
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    tracker = SearchTracker(uri, "stopped", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    session = LocalTracking(tracker, spec)
    callback = TrackingCallback(session, spec, exp_dir)
    trial = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.05}, checkpoint=None)
    report = {"backprops": 10, "epoch_equiv": 1.0, "test_top1": 50.0, "test_top5": 90.0, "train_top1": 60.0,
              "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0, "budget_done": budget_done}
    (exp_dir / "t1" / "result.json").write_text(json.dumps(report) + "\n")
    write_config(spec.base_cfg, exp_dir / "t1")  # the worker writes it as the trial starts
    drawn = write_curves([report], tmp_path / "worker", "drawn by the worker").read_bytes()  # drawn before:
    callback.on_trial_start(0, [], trial)  # the first drawing in a process takes part of the wait below
    callback.on_trial_result(0, [], trial, report)
    callback.on_trial_complete(0, [], trial)
    if worker_draws_after_s is not None:
        time.sleep(worker_draws_after_s)
        (exp_dir / "t1" / ".curves.tmp.png").write_bytes(drawn)  # written whole, as `write_curves` does
        os.replace(exp_dir / "t1" / ".curves.tmp.png", exp_dir / "t1" / "curves.png")
    else:
        drawn = None
    assert session.background.drain()
    client = MlflowClient(tracking_uri=uri)
    run_id = tracker.mapping["trials"]["t1"]
    local = client.download_artifacts(run_id, "curves.png", str(tmp_path))
    assert client.get_run(run_id).data.tags["status"] == ("finished" if budget_done else "stopped_early")
    return Path(local).read_bytes(), drawn


@pytest.mark.parametrize("budget_done", [0, 1], ids=["stopped", "finished"])
def test_a_trial_waits_for_the_curves_its_worker_draws(tmp_path, monkeypatch, budget_done):
    uploaded, drawn = _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s=0.5, budget_done=budget_done)
    assert uploaded == drawn  # the worker's picture, not one the driver drew


def test_a_stopped_trial_whose_worker_drew_nothing_is_drawn_by_the_driver(tmp_path, monkeypatch):
    uploaded, _ = _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s=None)
    assert uploaded[:8] == b"\x89PNG\r\n\x1a\n"


def test_confirmation_callback_describes_its_runs_beside_the_search_ones(tmp_path):
    """A confirmation-phase callback (a second Tune experiment in <search>/confirm, whose trial ids may
    repeat the search's) makes its own child runs under the same parent: described by `describe`, tagged
    phase=confirmation, keyed confirm/<id>, with the test correctness its worker kept among its artifacts;
    the search's run of the same id is untouched. A trial whose end
    was lost is ended by end_the_rest from a row without params (read from Ray's params.json)."""
    from tune_hardbatch.ray_backend.callbacks import TrackingCallback
    from tune_hardbatch.ray_backend.publish import finish_tracking
    from tune_hardbatch.search.trials import Trial
    from tune_hardbatch.training.correctness import CORRECT_FILE, save_correct

    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    confirm_dir = exp_dir / "confirm"
    (confirm_dir / "t2").mkdir(parents=True)
    (confirm_dir / "t2" / "params.json").write_text(json.dumps({"arm": 0, "seed": 2}))
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    tracker = SearchTracker(uri, "phases", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    session = LocalTracking(tracker, spec)
    background = session.background
    search = TrackingCallback(session, spec, exp_dir)
    seen = []

    def describe(trial_id, config):
        seen.append((trial_id, config))
        return ({"optim.lr": 0.05, "seed": config["seed"]},
                {"phase": "confirmation", "arm": "plain", "seed": str(config["seed"]), "strategy": "plain"},
                f"confirm plain seed {config['seed']} {trial_id}")

    confirm = TrackingCallback(session, spec, confirm_dir, phase="confirmation", describe=describe)
    result = {"backprops": 10, "epoch_equiv": 1.0, "test_top1": 50.0, "test_top5": 90.0, "train_top1": 60.0,
              "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0, "budget_done": 1}
    searched = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.05}, checkpoint=None)
    confirmed = SimpleNamespace(trial_id="t1", config={"arm": 0, "seed": 1}, checkpoint=None)
    save_correct(confirm_dir / "t1", [True, False, True])  # its worker kept its test correctness
    for callback, trial, top1 in ((search, searched, 50.0), (confirm, confirmed, 70.0)):
        callback.on_trial_start(0, [], trial)
        callback.on_trial_result(0, [], trial, {**result, "test_top1": top1})
        (callback.exp_dir / "t1").mkdir(parents=True, exist_ok=True)  # as the result loggers write it
        (callback.exp_dir / "t1" / "result.json").write_text(json.dumps({**result, "test_top1": top1}) + "\n")
        callback.on_trial_complete(0, [], trial)
    confirm.on_trial_start(0, [], SimpleNamespace(trial_id="t2", config={"arm": 0, "seed": 2}, checkpoint=None))
    assert background.drain()
    rows = [Trial("t2", "finished", "confirmation", arm="plain", seed=2)]  # its end was never seen; no params
    confirm.end_the_rest(rows)
    assert background.drain() and background.failed == 0
    finish_tracking(session, [Trial("t1", "finished"), *rows], exp_dir, "FINISHED")
    client = MlflowClient(tracking_uri=uri)
    trials = tracker.mapping["trials"]
    assert sorted(trials) == ["confirm/t1", "confirm/t2", "t1"] and len(set(trials.values())) == 3
    s_run, c_run = client.get_run(trials["t1"]), client.get_run(trials["confirm/t1"])
    assert s_run.info.run_name == f"{s_run.data.tags['strategy']} t1" and s_run.data.tags["phase"] == "search"
    assert c_run.info.run_name == "confirm plain seed 1 t1" and c_run.data.tags["phase"] == "confirmation"
    assert c_run.data.params["seed"] == "1" and c_run.data.tags["arm"] == "plain"
    for run in (s_run, c_run):
        assert run.data.tags["mlflow.parentRunId"] == tracker.mapping["parent"] and run.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(c_run.info.run_id, "test_top1")] == [70.0]
    assert [m.value for m in client.get_metric_history(s_run.info.run_id, "test_top1")] == [50.0]
    assert {a.path for a in client.list_artifacts(c_run.info.run_id)} == {"config.yaml", "curves.png", CORRECT_FILE}
    assert {a.path for a in client.list_artifacts(s_run.info.run_id)} == {"config.yaml", "curves.png"}
    assert (confirm_dir / "t1" / "curves.png").is_file() and (exp_dir / "t1" / "curves.png").is_file()
    t2 = client.get_run(trials["confirm/t2"])
    assert t2.info.run_name == "confirm plain seed 2 t2" and t2.info.status == "FINISHED"
    assert ("t2", {"arm": 0, "seed": 2}) in seen
