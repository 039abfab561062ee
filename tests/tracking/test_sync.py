"""`report NAME --sync` (`tracking.sync`): what an outage of the MLflow server left out is uploaded afterwards,
against a real `mlflow server` on 127.0.0.1 stopped and started by the test."""

import pytest
from mlflow.tracking import MlflowClient

from tune_hardbatch.tracking import SearchTracker, sync_experiment

pytestmark = pytest.mark.e2e  # a real MLflow server


def results(n):
    return [{"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0, "test_top1": 50.0 + i, "train_loss": 1.0 / (i + 1),
             "convergence_epoch": float("nan"), "trial_id": "t", "config": {"x": 1}} for i in range(n)]


def test_server_down_mid_search_warns_then_sync_uploads_everything(mlflow_server, tmp_path, capsys):
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    tracker = SearchTracker(mlflow_server.uri, "exp-b", exp_dir)
    tracker.start("search", {}, {}, None)
    tracker.trial_run("t1", {"seed": 0}, {"strategy": "plain"})
    tracker.log_result("t1", results(1)[0])
    mlflow_server.stop()
    for r in results(4)[1:]:
        tracker.log_result("t1", r)  # must not raise: training goes on
    tracker.trial_run("t2", {"seed": 1}, {"strategy": "plain"})
    err = capsys.readouterr().err
    assert err.count("warning: MLflow tracking") == 1 and "--sync" in err
    mlflow_server.start()
    trials = [{"trial_id": t, "params": {"seed": i}, "tags": {"strategy": "plain"}, "status": "finished",
               "history": results(4)} for i, t in enumerate(("t1", "t2"))]
    counts = sync_experiment(SearchTracker(mlflow_server.uri, "exp-b", exp_dir), trials, "search", {}, {}, None, [])
    assert counts["runs_created"] == 1
    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("exp-b")
    children = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "backprops")] == [10, 20, 30, 40]
        assert child.data.tags["status"] == "finished"
