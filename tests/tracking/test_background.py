"""Tracking off the driver's loop: `tracking.BackgroundTracker`, the thread that runs the tracking calls in
order (and some later); and `report --sync` for the confirmation's trials."""

from __future__ import annotations

import json
import threading
import time

from mlflow.tracking import MlflowClient

from tune_hardbatch.search import space as SP
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


def test_abandon_skips_the_calls_not_yet_run_and_runs_the_last_one_after_the_running_call():
    """The tracking process when its driver died: the mapping saved next, nothing queued run after it."""
    background = BackgroundTracker()
    running, release, seen = threading.Event(), threading.Event(), []

    def busy():
        running.set()
        release.wait(5)
        seen.append("busy")

    background.submit(busy)
    background.submit(lambda: background.later(0.0, seen.append, "delayed"))
    background.submit(seen.append, "queued")
    assert running.wait(5)
    background.later(0.0, seen.append, "delayed before")  # one already scheduled (the thread is held in busy)
    threading.Timer(0.2, release.set).start()
    assert background.abandon(lambda: seen.append(("last", threading.get_ident())))
    assert seen == ["busy", ("last", background._thread.ident)]
    background.submit(seen.append, "after")  # nothing runs once abandoned
    time.sleep(0.1)
    assert len(seen) == 2


def test_sync_uploads_the_confirmation_trials_and_the_verdict(tmp_path):
    """`report --sync`'s part for the confirmation phase: its trials (from <search>/confirm, the chosen arms
    and confirm_results.csv) become their named, tagged child runs; the verdict goes on the parent."""

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
