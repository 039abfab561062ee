"""`tracking.LocalTracking`: the Ray callback's events queued for the tracking thread, never waited on."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from tune_hardbatch.search import space as SP
from tune_hardbatch.tracking import LocalTracking, SearchTracker, resolve_uri


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
    session = LocalTracking(tracker, spec)
    background = session.background
    gate = threading.Event()
    background.submit(gate.wait)  # the background thread is busy until the gate opens
    callback = TrackingCallback(session, spec, exp_dir)
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
