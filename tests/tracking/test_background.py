"""Tracking off the driver's loop: `tracking.BackgroundTracker` and the Ray callback that feeds it."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from tune_hardbatch import spec as SP
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
    for i in range(3):
        callback.on_trial_result(0, [], trial, {"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0,
                                                "test_top1": 50.0 + i, "test_top5": 90.0, "train_top1": 60.0,
                                                "train_loss": 1.0, "test_loss": 1.1, "lr": 0.1, "p": 1.0})
    callback.on_trial_complete(0, [], trial)
    assert "t1" not in tracker.mapping["trials"]  # nothing reached MLflow while the thread was held up
    gate.set()
    assert background.drain()
    run_id = tracker.mapping["trials"]["t1"]
    client = MlflowClient(tracking_uri=uri)
    assert [m.value for m in client.get_metric_history(run_id, "test_top1")] == [50.0, 51.0, 52.0]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert Path(exp_dir / "t1" / "curves.png").is_file()  # the plot was drawn there too
