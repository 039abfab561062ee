"""The tracking process from the driver's side (`tracking.TrackingProcess`): a real child process makes the
runs that a Ray callback's events describe, the end comes back through it, and its death is one warning."""

from __future__ import annotations

import json
import time

import pytest
from mlflow.tracking import MlflowClient
from process_helpers import child_runs, make_reports, run_trial

from tune_hardbatch.ray_backend.callbacks import TrackingCallback
from tune_hardbatch.tracking import MAP_FILE

pytestmark = pytest.mark.e2e  # the tracking process: a child that imports MLflow (seconds)


def test_runs_made_by_the_process_hold_every_report_and_the_end_comes_back(started):
    cb = TrackingCallback(started.process, started.spec, started.exp_dir)
    reports = {"t1": make_reports(3, 50.0), "t2": make_reports(5, 40.0)}
    for trial_id, rows in reports.items():
        run_trial(cb, trial_id, rows)
    done = started.process.finish([("t1", "finished"), ("t2", "finished")], None, [], "FINISHED")
    started.process.close()
    assert done == {"drained": True, "down": False} and started.process.proc.returncode == 0
    client = MlflowClient(tracking_uri=started.uri)
    children = child_runs(started.uri, started.tracker.mapping["parent"])
    assert sorted(children) == ["t1", "t2"]
    for trial_id, rows in reports.items():
        run = children[trial_id]
        for key in ("test_top1", "lr", "backprops"):  # every report, at step = backprops, as result.json has it
            assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)] == \
                [(r["backprops"], float(r[key])) for r in rows]
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
        assert run.data.params["optim.lr"] == "0.05" and run.data.tags["strategy"]
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.yaml", "curves.png"}
    assert client.get_run(started.tracker.mapping["parent"]).info.status == "FINISHED"
    mapping = json.loads((started.exp_dir / MAP_FILE).read_text())
    assert mapping["trials"] == {t: children[t].info.run_id for t in ("t1", "t2")}


def test_a_dead_tracking_process_is_one_warning_and_the_search_goes_on(capsys, started):
    cb = TrackingCallback(started.process, started.spec, started.exp_dir)
    time.sleep(1.0)
    started.process.proc.kill()
    started.process.proc.wait()
    for trial_id in ("t1", "t2", "t3"):
        run_trial(cb, trial_id, make_reports(2, 50.0))  # returns: nothing waits on the dead process
    done = started.process.finish([("t1", "finished")], None, [], "FINISHED", timeout_s=5)
    started.process.close()
    assert done == {"drained": False, "down": True}
    err = capsys.readouterr().err
    assert err.count("warning: the MLflow tracking process ended") == 1 and "--sync" in err
