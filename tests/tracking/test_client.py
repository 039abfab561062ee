"""MLflow tracking against a real `mlflow server` on 127.0.0.1: nesting, histories, outage and sync."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tune_hardbatch.errors import UserError
from tune_hardbatch.tracking import SearchTracker, check_reachable, resolve_uri, sync_experiment


def results(n):
    return [{"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0, "test_top1": 50.0 + i, "train_loss": 1.0 / (i + 1),
             "convergence_epoch": float("nan"), "trial_id": "t", "config": {"x": 1}} for i in range(n)]


def test_parent_and_nested_child_runs_with_histories(mlflow_server, tmp_path):
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    space = exp_dir / "search_space.yaml"
    space.write_text("base: {}\n")
    tracker = SearchTracker(mlflow_server.uri, "exp-a", exp_dir)
    tracker.start("search", {"searcher": "grid"}, {"search.num_samples": 2}, space)
    for trial in ("t1", "t2"):
        tracker.trial_run(trial, {"hard_batch.delta": 0.5, "seed": 1}, {"strategy": "delta=0.5"})
        for r in results(3):
            tracker.log_result(trial, r)
        tracker.log_result(trial, results(3)[-1])  # a step reported twice is logged once
        tracker.end_trial(trial, "finished")
    tracker.finish([])
    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("exp-a")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags.get("tune_hardbatch.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(parent) == 1 and len(children) == 2
    child = children[0]
    assert child.data.params["hard_batch.delta"] == "0.5" and child.data.tags["status"] == "finished"
    assert child.info.status == "FINISHED"
    history = client.get_metric_history(child.info.run_id, "test_top1")
    assert [m.step for m in history] == [10, 20, 30] and [m.value for m in history] == [50.0, 51.0, 52.0]
    assert "config" not in child.data.metrics and "trial_id" not in child.data.metrics
    assert [a.path for a in client.list_artifacts(parent[0].info.run_id)] == ["search_space.yaml"]
    # the mapping survives: a new tracker (a resumed driver) reuses the runs
    again = SearchTracker(mlflow_server.uri, "exp-a", exp_dir)
    assert again.trial_run("t1", {}, {}) == json.loads((exp_dir / "mlflow_runs.json").read_text())["trials"]["t1"]
    again.log_result("t1", results(3)[-1])
    assert len(client.get_metric_history(child.info.run_id, "test_top1")) == 3
    assert len(client.search_runs([exp.experiment_id])) == 3


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


def test_unreachable_server_is_a_user_error():
    with pytest.raises(UserError, match="tracking.uri: cannot reach the MLflow server"):
        check_reachable("http://127.0.0.1:9")


def test_default_and_relative_uris_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_uri(None, "out")
    assert uri == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}" and artifacts == (tmp_path / "out" / "mlartifacts").as_uri()
    assert resolve_uri("sqlite:///rel.db", "x")[0] == f"sqlite:///{tmp_path / 'rel.db'}"
    assert resolve_uri("http://h:5000", "x") == ("http://h:5000", None)


def test_a_trial_keeps_one_child_run_when_a_driver_died_after_creating_it(tmp_path):
    """A run that a killed driver created but never recorded in mlflow_runs.json is reused, and a
    duplicate (a retried create request) is deleted: one child run per trial."""
    from tune_hardbatch.tracking import resolve_uri

    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    tracker = SearchTracker(uri, "dup", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    client = MlflowClient(tracking_uri=uri)
    tags = {"mlflow.parentRunId": tracker.mapping["parent"], "trial_id": "t1"}
    orphans = [client.create_run(tracker.mapping["experiment_id"], run_name="t1", tags=tags) for _ in range(2)]
    run_id = tracker.trial_run("t1", {"seed": 0}, {"strategy": "plain"})
    assert run_id == orphans[0].info.run_id
    live = client.search_runs([tracker.mapping["experiment_id"]], "tags.trial_id = 't1'")
    assert [r.info.run_id for r in live] == [run_id]
