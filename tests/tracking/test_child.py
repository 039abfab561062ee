"""The tracking process's side (`tracking.child`): Ctrl-C is the driver's, and when the driver dies the
process saves what it knows and exits, leaving the rest to a resumed driver."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from mlflow.tracking import MlflowClient
from process_helpers import child_runs, make_reports, run_trial

from tune_hardbatch.ray_backend.callbacks import TrackingCallback
from tune_hardbatch.ray_backend.publish import finish_tracking
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.tracking import MAP_FILE

pytestmark = pytest.mark.e2e  # the tracking process: a child that imports MLflow (seconds)


def test_ctrl_c_is_the_drivers_and_the_process_ends_the_search_after_it(started):
    """Ctrl-C reaches the whole process group: the tracking process goes on, so the driver's end (the
    trials' statuses, the parent KILLED) still reaches MLflow."""
    cb = TrackingCallback(started.process, started.spec, started.exp_dir)
    run_trial(cb, "t1", make_reports(2, 50.0), end=False)
    time.sleep(2.0)  # the child is past its imports (SIGINT before they ran would be Python's default)
    os.kill(started.process.proc.pid, signal.SIGINT)
    finish_tracking(started.process, [Trial("t1", "unfinished")], started.exp_dir, "KILLED")
    started.process.close()
    assert started.process.proc.returncode == 0
    client = MlflowClient(tracking_uri=started.uri)
    run = child_runs(started.uri, started.tracker.mapping["parent"])["t1"]
    assert run.info.status == "KILLED" and run.data.tags["status"] == "unfinished"
    assert client.get_run(started.tracker.mapping["parent"]).info.status == "KILLED"


def test_when_the_driver_dies_the_process_saves_the_mapping_and_exits(started):
    """The end of its stdin (the driver gone, even by SIGKILL): the mapping on disk names every run made so
    far, though its writes are spaced 2 s apart, and the process does not outlive the driver by more."""
    cb = TrackingCallback(started.process, started.spec, started.exp_dir)
    for trial_id in ("t1", "t2"):
        run_trial(cb, trial_id, make_reports(1, 50.0), end=False)
    deadline = time.monotonic() + 60
    while len(child_runs(started.uri, started.tracker.mapping["parent"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the second run's entry in the mapping, just after MLflow made it
    started.process.proc.stdin.close()  # what the driver's death does to the pipe
    started.process.proc.wait(timeout=10)
    runs = child_runs(started.uri, started.tracker.mapping["parent"])
    mapping = json.loads((started.exp_dir / MAP_FILE).read_text())
    assert mapping["trials"] == {t: r.info.run_id for t, r in runs.items()} and len(runs) == 2
