"""Tracking off the driver's loop: `tracking.BackgroundTracker` and the Ray callback that feeds it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from tune_hardbatch import space as SP
from tune_hardbatch.tracking import BackgroundTracker, SearchTracker, resolve_uri


def test_calls_run_in_order_on_their_own_thread():
    background = BackgroundTracker()
    seen = []
    for i in range(20):
        background.submit(lambda i=i: seen.append((i, threading.get_ident())))
    assert background.drain()
    assert [i for i, _ in seen] == list(range(20))
    assert {t for _, t in seen} == {background._thread.ident} != {threading.get_ident()}


def test_a_failing_call_warns_once_and_the_others_still_run(capsys):
    background = BackgroundTracker()
    done = []
    for i in range(3):
        background.submit(lambda: 1 / 0)
        background.submit(done.append, i)
    assert background.drain() and done == [0, 1, 2] and background.failed == 3
    assert capsys.readouterr().err.count("warning: tracking call") == 1


def test_the_callback_returns_before_mlflow_is_called(tmp_path):
    """A trial's result is handed to the background thread: while that thread is held up (a slow
    server), the callback has returned and MLflow has nothing yet; after it goes on, everything is there."""
    from tune_hardbatch.ray_backend.callbacks import TrackingCallback

    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))  # artifacts beside it
    tracker = SearchTracker(uri, "bg", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    background = BackgroundTracker()
    gate = threading.Event()
    background.submit(gate.wait)  # the background thread is busy until the gate opens
    callback = TrackingCallback(tracker, spec, exp_dir, background)
    trial = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.05}, checkpoint=None)
    callback.on_trial_start(0, [], trial)
    reports = [{"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0, "test_top1": 50.0 + i, "test_top5": 90.0,
                "train_top1": 60.0, "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0,
                "budget_done": int(i == 2)} for i in range(3)]
    for report in reports:
        callback.on_trial_result(0, [], trial, report)
    (exp_dir / "t1").mkdir()  # what the result loggers write as the results come
    (exp_dir / "t1" / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    callback.on_trial_complete(0, [], trial)
    assert "t1" not in tracker.mapping["trials"]  # nothing reached MLflow while the thread was held up
    gate.set()
    assert background.drain()
    run_id = tracker.mapping["trials"]["t1"]
    client = MlflowClient(tracking_uri=uri)
    assert [m.value for m in client.get_metric_history(run_id, "test_top1")] == [50.0, 51.0, 52.0]
    assert client.get_run(run_id).info.status == "FINISHED"
    # its worker wrote no artifacts (a trial that failed for good, say): the driver drew them from result.json
    assert {a.path for a in client.list_artifacts(run_id)} == {"config.yaml", "curves.png"}
    assert Path(exp_dir / "t1" / "curves.png").is_file()


def test_delayed_calls_run_after_their_delay_and_drain_runs_them_at_once():
    background = BackgroundTracker()
    seen, start = [], time.monotonic()

    def first():
        background.later(0.3, lambda: seen.append(("late", time.monotonic() - start)))
        seen.append(("now", time.monotonic() - start))

    background.submit(first)
    for i in range(5):
        background.submit(seen.append, (i, 0.0))
    while len(seen) < 7 and time.monotonic() - start < 10:
        time.sleep(0.01)
    assert [k for k, _ in seen] == ["now", 0, 1, 2, 3, 4, "late"] and seen[-1][1] >= 0.3
    # the search is over: a call delayed by a minute (a trial's buffered results) runs now, and drain waits for it
    background.submit(lambda: background.later(60.0, seen.append, ("minute", 0.0)))
    drained_at = time.monotonic()
    assert background.drain(timeout_s=10)
    assert seen[-1][0] == "minute" and time.monotonic() - drained_at < 5


def _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s):
    """A trial stopped early (ASHA), whose worker draws its curves `worker_draws_after_s` after the event
    (None: never); the uploaded curves' bytes, and what the trial folder's curves.png holds."""
    from tune_hardbatch.ray_backend import callbacks as CB
    from tune_hardbatch.tracking.records import write_config, write_curves

    monkeypatch.setattr(CB, "CURVES_WAIT_S", 1.0)
    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    (exp_dir / "t1").mkdir(parents=True)
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    tracker = SearchTracker(uri, "stopped", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    background = BackgroundTracker()
    callback = CB.TrackingCallback(tracker, spec, exp_dir, background)
    trial = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.05}, checkpoint=None)
    report = {"backprops": 10, "epoch_equiv": 1.0, "test_top1": 50.0, "test_top5": 90.0, "train_top1": 60.0,
              "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0, "budget_done": 0}
    (exp_dir / "t1" / "result.json").write_text(json.dumps(report) + "\n")
    write_config(spec.base_cfg, exp_dir / "t1")  # the worker writes it as the trial starts
    callback.on_trial_start(0, [], trial)
    callback.on_trial_result(0, [], trial, report)
    callback.on_trial_complete(0, [], trial)
    if worker_draws_after_s is not None:
        time.sleep(worker_draws_after_s)
        write_curves([report], exp_dir / "t1", "drawn by the worker")
    drawn = (exp_dir / "t1" / "curves.png").read_bytes() if worker_draws_after_s is not None else None
    assert background.drain()
    client = MlflowClient(tracking_uri=uri)
    run_id = tracker.mapping["trials"]["t1"]
    local = client.download_artifacts(run_id, "curves.png", str(tmp_path))
    assert client.get_run(run_id).data.tags["status"] == "stopped_early"
    return Path(local).read_bytes(), drawn


def test_a_stopped_trial_waits_for_the_curves_its_worker_draws(tmp_path, monkeypatch):
    uploaded, drawn = _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s=0.5)
    assert uploaded == drawn  # the worker's picture, not one the driver drew


def test_a_stopped_trial_whose_worker_drew_nothing_is_drawn_by_the_driver(tmp_path, monkeypatch):
    uploaded, _ = _stopped_trial(tmp_path, monkeypatch, worker_draws_after_s=None)
    assert uploaded[:8] == b"\x89PNG\r\n\x1a\n"


def test_confirmation_callback_describes_its_runs_beside_the_search_ones(tmp_path):
    """A confirmation-phase callback (a second Tune experiment in <search>/confirm, whose trial ids may
    repeat the search's) makes its own child runs under the same parent: described by `describe`, tagged
    phase=confirmation, keyed confirm/<id>; the search's run of the same id is untouched. A trial whose end
    was lost is ended by end_the_rest from a row without params (read from Ray's params.json)."""
    from tune_hardbatch.ray_backend.callbacks import TrackingCallback
    from tune_hardbatch.ray_backend.publish import finish_tracking
    from tune_hardbatch.trials import Trial

    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    confirm_dir = exp_dir / "confirm"
    (confirm_dir / "t2").mkdir(parents=True)
    (confirm_dir / "t2" / "params.json").write_text(json.dumps({"arm": 0, "seed": 2}))
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    tracker = SearchTracker(uri, "phases", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    background = BackgroundTracker()
    search = TrackingCallback(tracker, spec, exp_dir, background)
    seen = []

    def describe(trial_id, config):
        seen.append((trial_id, config))
        return ({"optim.lr": 0.05, "seed": config["seed"]},
                {"phase": "confirmation", "arm": "plain", "seed": str(config["seed"]), "strategy": "plain"},
                f"confirm plain seed {config['seed']} {trial_id}")

    confirm = TrackingCallback(tracker, spec, confirm_dir, background, phase="confirmation", describe=describe)
    result = {"backprops": 10, "epoch_equiv": 1.0, "test_top1": 50.0, "test_top5": 90.0, "train_top1": 60.0,
              "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0, "budget_done": 1}
    searched = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.05}, checkpoint=None)
    confirmed = SimpleNamespace(trial_id="t1", config={"arm": 0, "seed": 1}, checkpoint=None)
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
    finish_tracking(tracker, [Trial("t1", "finished"), *rows], exp_dir, "FINISHED", background=background)
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
    assert {a.path for a in client.list_artifacts(c_run.info.run_id)} == {"config.yaml", "curves.png"}
    assert (confirm_dir / "t1" / "curves.png").is_file() and (exp_dir / "t1" / "curves.png").is_file()
    t2 = client.get_run(trials["confirm/t2"])
    assert t2.info.run_name == "confirm plain seed 2 t2" and t2.info.status == "FINISHED"
    assert ("t2", {"arm": 0, "seed": 2}) in seen


def test_sync_uploads_the_confirmation_trials_and_the_verdict(tmp_path):
    """`report --sync`'s part for the confirmation phase: its trials (from <search>/confirm, the chosen arms
    and confirm_results.csv) become their named, tagged child runs; the verdict goes on the parent."""
    import json

    from tune_hardbatch.tracking import sync_experiment, verdict_metrics
    from tune_hardbatch.tracking.sync import confirmation_trials

    spec = SP.load_space(None)
    exp_dir = tmp_path / "search"
    trial_dir = exp_dir / "confirm" / "c_00000"
    trial_dir.mkdir(parents=True)
    (exp_dir / "confirm_arms.json").write_text(json.dumps({"arms": [
        {"arm": "delta=0.5", "family": "delta", "trial_id": "s1", "params": {"hard_batch.delta": 0.5, "seed": 0}}],
        "seeds": [1], "notes": []}))
    (exp_dir / "confirm_results.csv").write_text("trial_id,status\nc_00000,finished\n")
    (trial_dir / "params.json").write_text(json.dumps({"arm": 0, "seed": 1}))
    reports = [{"backprops": 10 * i, "epoch_equiv": float(i), "test_top1": 60.0 + i, "test_top5": 90.0,
                "train_top1": 60.0, "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0} for i in (1, 2)]
    (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    trials = confirmation_trials(spec, exp_dir)
    assert [t["key"] for t in trials] == ["confirm/c_00000"] and trials[0]["status"] == "finished"
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    verdict = {"metric": "test_top1", "arms": [{"arm": "delta=0.5", "n": 1, "test_top1": {"mean": 62.0, "ci95": None}}],
               "sentences": ["delta: no baseline."]}
    counts = sync_experiment(SearchTracker(uri, "sync", exp_dir, artifacts), trials, "search", {}, {}, None, [],
                             verdict)
    assert counts == {"runs_created": 1, "metrics_logged": counts["metrics_logged"]}
    tracker = SearchTracker(uri, "sync", exp_dir, artifacts)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(tracker.mapping["trials"]["confirm/c_00000"])
    assert run.info.run_name == "confirm delta=0.5 seed 1 c_00000" and run.info.status == "FINISHED"
    assert run.data.tags["phase"] == "confirmation" and run.data.tags["mlflow.parentRunId"] == tracker.mapping["parent"]
    assert run.data.params["seed"] == "1" and run.data.params["hard_batch.delta"] == "0.5"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "test_top1")] == [61.0, 62.0]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.yaml", "curves.png"}
    assert client.get_run(tracker.mapping["parent"]).data.metrics == verdict_metrics(verdict) == {
        "delta_0.5.test_top1_mean": 62.0, "delta_0.5.n": 1.0}
