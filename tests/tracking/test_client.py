"""MLflow tracking against a real `mlflow server` on 127.0.0.1: nesting, histories, outage and sync."""

import json

import pytest
from mlflow.tracking import MlflowClient

from tune_hardbatch.errors import UserError
from tune_hardbatch.tracking import SearchTracker, check_reachable, resolve_uri


def results(n):
    return [{"backprops": 10 * (i + 1), "epoch_equiv": i + 1.0, "test_top1": 50.0 + i, "train_loss": 1.0 / (i + 1),
             "convergence_epoch": float("nan"), "trial_id": "t", "config": {"x": 1}} for i in range(n)]


@pytest.mark.e2e
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
    assert not again.log_result("t1", results(3)[-1])  # a step MLflow holds is not buffered again
    again.send("t1")
    assert len(client.get_metric_history(child.info.run_id, "test_top1")) == 3
    assert len(client.search_runs([exp.experiment_id])) == 3


def test_unreachable_server_is_a_user_error():
    with pytest.raises(UserError, match="tracking.uri: cannot reach the MLflow server"):
        check_reachable("http://127.0.0.1:9")


@pytest.mark.parametrize("code, key, words", [
    ("UNAUTHENTICATED", "tracking.uri", "refused the credentials of user 'alice' (HTTP 401)"),
    ("PERMISSION_DENIED", "tracking.experiment", "does not let this account (MLFLOW_TRACKING_USERNAME) use"),
])
def test_a_server_that_turns_the_account_away_is_one_line(monkeypatch, code, key, words):
    """What MLflow's client raises for HTTP 401 / 403 (a server with basic auth): one line naming what to
    change, without the password (tests/test_mlflow_auth.py: against a real server)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    from tune_hardbatch.tracking import check_experiment

    def refuse(self, name):
        raise MlflowException("API request to endpoint ... failed", error_code=getattr(databricks_pb2, code))

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", refuse)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-env")
    with pytest.raises(UserError) as info:
        check_experiment("http://127.0.0.1:9", "exp")
    assert info.value.key == key and words in str(info.value), str(info.value)
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


def test_default_and_relative_uris_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_uri(None, "out")
    assert uri == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}" and artifacts == (tmp_path / "out" / "mlartifacts").as_uri()
    assert resolve_uri("sqlite:///rel.db", "x")[0] == f"sqlite:///{tmp_path / 'rel.db'}"
    assert resolve_uri("http://h:5000", "x") == ("http://h:5000", None)


def test_a_trial_keeps_one_child_run_when_a_driver_died_after_creating_it(tmp_path):
    """A run that a killed driver created but never recorded in mlflow_runs.json is reused by the resumed
    driver, and a duplicate (a retried create request) is deleted: one child run per trial."""
    from tune_hardbatch.tracking import resolve_uri

    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    killed = SearchTracker(uri, "dup", exp_dir, artifacts)
    killed.start("search", {}, {}, None)
    client = MlflowClient(tracking_uri=uri)
    tags = {"mlflow.parentRunId": killed.mapping["parent"], "trial_id": "t1"}
    orphans = [client.create_run(killed.mapping["experiment_id"], run_name="t1", tags=tags) for _ in range(2)]
    resumed = SearchTracker(uri, "dup", exp_dir, artifacts)
    assert not resumed.fresh
    run_id = resumed.trial_run("t1", {"seed": 0}, {"strategy": "plain"})
    assert run_id == orphans[0].info.run_id
    live = client.search_runs([resumed.mapping["experiment_id"]], "tags.trial_id = 't1'")
    assert [r.info.run_id for r in live] == [run_id]


def test_a_new_search_looks_up_no_runs_and_deletes_duplicates_after_the_phase(tmp_path):
    """A search this driver started makes each trial's run without looking for an older one (there can be
    none), and its mapping is written at most every MAP_SAVE_S; after the phase, one query deletes a run
    that a retried create request made twice (where requests are retried: a server), and the mapping on
    disk is complete."""
    from tune_hardbatch.tracking import resolve_uri
    from tune_hardbatch.tracking.client import KEY_TAG

    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    tracker = SearchTracker(uri, "fresh", exp_dir, artifacts)
    tracker.start("search", {}, {}, None)
    assert tracker.fresh
    calls = []
    tracker._child_runs = lambda *a: calls.append(a) or []
    ids = [tracker.trial_run(f"t{i}", {"seed": i}, {"strategy": "plain"}) for i in range(5)]
    assert calls == [] and len(set(ids)) == 5
    client = MlflowClient(tracking_uri=uri)
    extra = client.create_run(tracker.mapping["experiment_id"], run_name="t3", tags={
        "mlflow.parentRunId": tracker.mapping["parent"], "trial_id": "t3", KEY_TAG: "t3"})
    on_disk = json.loads((exp_dir / "mlflow_runs.json").read_text())["trials"]
    assert len(on_disk) < 5  # not rewritten for every trial
    assert not tracker.retries  # sqlite: nothing retries a request, so no query is made
    tracker.delete_duplicates()
    assert len(client.search_runs([tracker.mapping["experiment_id"]], "tags.trial_id = 't3'")) == 2
    tracker.retries = True  # as through a tracking server (http), whose client retries requests
    tracker.delete_duplicates()
    live = client.search_runs([tracker.mapping["experiment_id"]], "tags.trial_id = 't3'")
    assert [r.info.run_id for r in live] == [ids[3]] and extra.info.run_id != ids[3]
    assert json.loads((exp_dir / "mlflow_runs.json").read_text())["trials"] == tracker.mapping["trials"]


# --- MLflow 3.17's UI: a model-training experiment, readable child runs, phases, the verdict ----------

VERDICT = {
    "source": "confirmation", "metric": "test_top1", "seeds": [1, 2, 3], "budget": 12.0, "baseline": "plain",
    "baselines": ["plain", "delta=1"],
    "arms": [
        {"arm": "plain", "family": "plain", "is_baseline": True, "n": 3, "seeds": [1, 2, 3], "trial_ids": [],
         "params": {}, "test_top1": {"mean": 94.7, "ci95": 0.5, "values": [94.2, 94.7, 95.2]}, "diffs": [],
         "convergence_epoch": {"mean": 8.0, "ci95": 1.0}, "convergence_change": {"mean": float("nan"), "ci95": None},
         "compute": {"epoch_equiv": 12.0, "samples_forward": 17232, "samples_with_grad": 17232,
                     "gpu_seconds": 0.0, "trial_seconds": 30.0}, "word": "baseline"},
        {"arm": "delta=1", "family": "delta=1", "is_baseline": True, "n": 3, "seeds": [1, 2, 3], "trial_ids": [],
         "params": {}, "test_top1": {"mean": 94.9, "ci95": 0.6, "values": []},
         "diffs": [{"baseline": "plain", "mean": 0.2, "ci95": 0.7, "n": 3}],
         "convergence_epoch": {"mean": 7.5, "ci95": 1.1}, "convergence_change": {"mean": -0.5, "ci95": 0.4},
         "compute": {"epoch_equiv": 12.0, "samples_forward": 17232, "samples_with_grad": 17232,
                     "gpu_seconds": 0.0, "trial_seconds": 31.0}, "word": "baseline"},
        {"arm": "delta=0.5+trim-linear", "family": "delta+trim", "is_baseline": False, "n": 3, "seeds": [1, 2, 3],
         "trial_ids": ["a", "b", "c"], "params": {"hard_batch.delta": 0.5},
         "test_top1": {"mean": 95.1, "ci95": 0.8, "values": [94.5, 95.1, 95.7]},
         "diffs": [{"baseline": "plain", "mean": 0.4, "ci95": 0.9, "n": 3},
                   {"baseline": "delta=1", "mean": 0.2, "ci95": 0.3, "n": 3}],
         "convergence_epoch": {"mean": 7.0, "ci95": 1.2}, "convergence_change": {"mean": -1.0, "ci95": 0.5},
         "compute": {"epoch_equiv": 12.0, "samples_forward": 17232, "samples_with_grad": 9000,
                     "gpu_seconds": 1.5, "trial_seconds": 31.0}, "word": "no detectable difference"}],
    "sentences": ["delta+trim (delta=0.5+trim-linear): no detectable difference from plain at 12 "
                  "epoch-equivalents with 3 seeds (+0.40 ± 0.90 points)."]}


def sqlite_tracker(tmp_path, experiment="kinds", name="search"):
    uri, artifacts = resolve_uri(f"sqlite:///{tmp_path / 'm.db'}", str(tmp_path))
    exp_dir = tmp_path / name
    exp_dir.mkdir(exist_ok=True)
    return SearchTracker(uri, experiment, exp_dir, artifacts), uri


def test_experiment_is_a_model_training_one_new_or_made_before(tmp_path):
    """A new experiment is created tagged mlflow.experimentKind=custom_model_development; one of ours made
    before (no kind) is tagged when a search starts or resumes in it; a kind a user chose stays."""
    from tune_hardbatch.tracking import KIND_TAG, TRAINING_KIND

    tracker, uri = sqlite_tracker(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    old = client.create_experiment("old")  # an existing experiment of ours without a kind tag
    chosen = client.create_experiment("chosen", tags={KIND_TAG: "genai_development"})
    tracker.start("search", {}, {}, None)
    assert client.get_experiment_by_name("kinds").tags[KIND_TAG] == TRAINING_KIND
    assert tracker.ui_url() is None and tracker.ui_url("http://127.0.0.1:5000/") == (
        f"http://127.0.0.1:5000/#/experiments/{tracker.mapping['experiment_id']}?workflowType=machine_learning")
    for name, exp_id in (("old", old), ("chosen", chosen)):
        sqlite_tracker(tmp_path, name, f"s-{name}")[0].start("search", {}, {}, None)
    assert client.get_experiment(old).tags[KIND_TAG] == TRAINING_KIND
    assert client.get_experiment(chosen).tags[KIND_TAG] == "genai_development"
    client.delete_experiment_tag(old, KIND_TAG)
    resumed = SearchTracker(uri, "old", tmp_path / "s-old")  # its mapping has the parent: a resume
    resumed.start("search", {}, {}, None)
    assert client.get_experiment(old).tags[KIND_TAG] == TRAINING_KIND


def test_child_runs_are_named_and_the_two_phases_never_share_a_run(tmp_path):
    """Search trial t1 and confirmation trial t1 (a second Tune experiment may reuse ids): two runs under
    one parent, keyed t1 and confirm/t1; a resumed driver reuses both; a run a killed driver left unrecorded
    is found by its key, not taken from the other phase."""
    from tune_hardbatch.tracking import trial_key

    tracker, uri = sqlite_tracker(tmp_path)
    tracker.start("search", {}, {}, None)
    search_run = tracker.trial_run("t1", {"seed": 0}, {"strategy": "delta=0.5+trim-linear", "phase": "search"})
    key = trial_key("t1", "confirmation")
    assert key == "confirm/t1" and trial_key("t1") == "t1"
    confirm_run = tracker.trial_run(key, {"seed": 1}, {"phase": "confirmation", "strategy": "plain"},
                                    "confirm plain seed 1 t1")
    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_id: r for r in client.search_runs([tracker.mapping["experiment_id"]])}
    assert runs[search_run].info.run_name == "delta=0.5+trim-linear t1"
    assert runs[confirm_run].info.run_name == "confirm plain seed 1 t1"
    for run_id, phase in ((search_run, "search"), (confirm_run, "confirmation")):
        tags = runs[run_id].data.tags
        assert tags["mlflow.parentRunId"] == tracker.mapping["parent"] and tags["trial_id"] == "t1"
        assert tags["phase"] == phase
    tracker.flush()  # as at the end of a phase
    mapping = json.loads((tmp_path / "search" / "mlflow_runs.json").read_text())["trials"]
    assert mapping == {"t1": search_run, "confirm/t1": confirm_run}
    again = SearchTracker(uri, "kinds", tmp_path / "search")
    assert again.trial_run("t1", {}, {}) == search_run and again.trial_run(key, {}, {}) == confirm_run
    # a driver killed after creating a run, before recording it: found by its key
    del again.mapping["trials"][key]
    assert again.trial_run(key, {}, {"strategy": "plain"}) == confirm_run
    del again.mapping["trials"]["t1"]
    assert again.trial_run("t1", {}, {"strategy": "x"}) == search_run
    assert len(client.search_runs([tracker.mapping["experiment_id"]])) == 3


def test_verdict_slugs_are_metric_names_mlflow_accepts():
    from mlflow.utils.validation import _validate_metric_name

    from tune_hardbatch.tracking import slug, verdict_metrics

    assert slug("delta=0.5+trim-linear") == "delta_0.5_trim-linear" and slug("plain") == "plain"
    assert slug("delta=0.5+splits=0.5-0.3-0.2") == "delta_0.5_splits_0.5-0.3-0.2"
    metrics = verdict_metrics(VERDICT)
    for name in metrics:
        _validate_metric_name(name)
    assert metrics["delta_0.5_trim-linear.diff_vs_delta_1_ci95"] == 0.3
    assert "plain.convergence_change_mean" not in metrics  # NaN and None are left out
    clash = {"arms": [{"arm": "a=1"}, {"arm": "a+1"}]}
    assert sorted(verdict_metrics({**clash, "arms": [{**a, "n": 1} for a in clash["arms"]]})) == ["a_1.n", "a_1_2.n"]


@pytest.mark.e2e
def test_verdict_on_the_parent_run(mlflow_server, tmp_path, capsys):
    """log_verdict (through the background thread): per-arm metrics, tags, the description in Markdown and
    the files on the parent; a second call logs no value twice; with the server gone it only warns."""
    from tune_hardbatch.tracking import BackgroundTracker

    exp_dir = tmp_path / "search"
    exp_dir.mkdir()
    files = [exp_dir / "verdict.json", exp_dir / "report.md", exp_dir / "verdict.png", exp_dir / "absent.png"]
    files[0].write_text(json.dumps(VERDICT))
    files[1].write_text("# report\n")
    files[2].write_bytes(b"\x89PNG\r\n")
    tracker = SearchTracker(mlflow_server.uri, "exp-v", exp_dir)
    tracker.start("search", {}, {}, None)
    background = BackgroundTracker()
    background.submit(tracker.log_verdict, VERDICT, files)
    background.submit(tracker.log_verdict, VERDICT, files)  # a resumed driver logs it again
    assert background.drain() and background.failed == 0 and not tracker.down
    client = MlflowClient(mlflow_server.uri)
    parent = client.get_run(tracker.mapping["parent"])
    m = parent.data.metrics
    arm = "delta_0.5_trim-linear"
    assert m[f"{arm}.test_top1_mean"] == 95.1 and m[f"{arm}.test_top1_ci95"] == 0.8
    assert m[f"{arm}.diff_vs_plain_mean"] == 0.4 and m[f"{arm}.diff_vs_plain_ci95"] == 0.9
    assert m[f"{arm}.diff_vs_delta_1_mean"] == 0.2 and m["delta_1.diff_vs_plain_mean"] == 0.2
    assert m[f"{arm}.convergence_epoch_mean"] == 7.0 and m[f"{arm}.samples_forward"] == 17232
    assert m[f"{arm}.gpu_seconds"] == 1.5 and m["plain.test_top1_mean"] == 94.7
    assert len(client.get_metric_history(parent.info.run_id, f"{arm}.test_top1_mean")) == 1
    tags = parent.data.tags
    assert tags[f"verdict.{arm}"] == "delta=0.5+trim-linear: no detectable difference"
    assert tags["verdict.source"] == "confirmation" and tags["verdict.baseline"] == "plain"
    note = tags["mlflow.note.content"]
    assert note.startswith("### Verdict") and f"- {VERDICT['sentences'][0]}" in note
    assert "| delta=0.5+trim-linear | 3 | 95.10 ± 0.80 | +0.40 ± 0.90 | +0.20 ± 0.30 | 7.00 ± 1.20 |" in note
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"verdict.json", "report.md", "verdict.png"}
    mlflow_server.stop()
    tracker.log_verdict(VERDICT, files)  # must not raise
    assert tracker.down and capsys.readouterr().err.count("warning: MLflow tracking") == 1


def test_a_trials_results_go_out_together_and_the_last_with_its_status(tmp_path):
    tracker = SearchTracker(f"sqlite:///{tmp_path / 'm.db'}", "batched", tmp_path)
    tracker.start("search", {}, {}, None)
    run_id = tracker.trial_run("t1", {"seed": 0}, {"strategy": "plain"})
    batches, log_batch = [], tracker.client.log_batch
    tracker.client.log_batch = lambda run, **kw: (batches.append(kw), log_batch(run, **kw))[1]
    r = results(4)
    assert tracker.log_result("t1", r[0]) and not tracker.log_result("t1", r[1])  # the first asks for a send
    assert not tracker.log_result("t1", r[1])  # a step already buffered is not buffered twice
    tracker.send("t1")
    assert tracker.log_result("t1", r[2]) and not tracker.log_result("t1", r[3])
    tracker.end_trial("t1", "finished")
    assert len(batches) == 2 and [t.key for t in batches[1]["tags"]] == ["status"]
    assert [p.key for p in batches[0]["params"]] == ["seed"] and not batches[1]["params"]  # with the first metrics
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "test_top1")] == \
        [(10, 50.0), (20, 51.0), (30, 52.0), (40, 53.0)]
    run = client.get_run(run_id)
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED"
    assert run.data.params == {"seed": "0"}
    # the end's statuses: a run that ended with its final status is left alone, another is changed
    tags, set_tag = [], tracker.client.set_tag
    tracker.client.set_tag = lambda run, k, v: (tags.append((k, v)), set_tag(run, k, v))[1]
    tracker.set_status("t1", "finished")
    assert tags == []
    tracker.set_status("t1", "unfinished")
    assert tags == [("status", "unfinished")] and client.get_run(run_id).info.status == "KILLED"


def test_a_trial_without_results_gets_its_params_and_artifacts(tmp_path):
    """Params wait for the first results, so a run that ends without any still gets them (with its
    status); its artifacts go to the store the run was made with."""
    tracker = SearchTracker(f"sqlite:///{tmp_path / 'm.db'}", "bare", tmp_path, str(tmp_path / "artifacts"))
    tracker.start("search", {}, {}, None)
    run_id = tracker.trial_run("t1", {"seed": 3, "optim.lr": 0.1}, {"strategy": "plain"})
    (tmp_path / "config.yaml").write_text("seed: 3\n")
    tracker.end_trial("t1", "failed", [tmp_path / "config.yaml"])
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    run = client.get_run(run_id)
    assert run.data.params == {"seed": "3", "optim.lr": "0.1"} and run.info.status == "FAILED"
    assert [a.path for a in client.list_artifacts(run_id)] == ["config.yaml"]
    assert (tmp_path / "artifacts").is_dir()
