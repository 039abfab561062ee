"""`trials`: one record per trial (from a Ray Result or a trial directory), its status and its error line."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from tune_hardbatch.search.trials import (
    Trial,
    budget_of,
    choose,
    classify,
    common_values,
    failure,
    oom_reason,
    read_reports,
    start_order,
)

DONE, DIVERGED = {"budget_done": 1}, {"diverged": 1}
OOM, USER = {"oom": 1, "epoch_equiv": 1.25}, {"user_error": 1, "fatal_error": "model.name: bad"}


@pytest.mark.parametrize("ray_status, last, errored, final, live", [
    ("TERMINATED", DONE, False, "finished", "finished"),
    ("TERMINATED", {}, False, "stopped_early", "stopped_early"),  # a rung stopped it
    ("TERMINATED", DIVERGED, False, "diverged", "diverged"),
    ("TERMINATED", OOM, False, "failed", "failed"),  # returned after running out of GPU memory
    ("TERMINATED", USER, False, "failed", "failed"),
    ("ERROR", DONE, False, "failed", "failed"),
    ("TERMINATED", DONE, True, "failed", "failed"),  # Ray's Result carries an error
    (None, {}, False, "stopped_early", "pending"),  # never seen by the live view
    ("RUNNING", {}, False, "unfinished", "running"),  # Ctrl-C: --resume continues it
    ("RUNNING", DONE, False, "finished", "running"),  # its last report already finished the budget
    ("RUNNING", OOM, False, "failed", "running"),
    ("PENDING", {}, False, "unfinished", "pending"),
    ("PAUSED", DIVERGED, False, "diverged", "waiting"),
    ("PAUSED", {}, False, "unfinished", "waiting"),  # at a rung of synchronous halving
])
def test_one_status_table_for_the_results_and_the_live_view(ray_status, last, errored, final, live):
    assert classify(ray_status, last, errored) == final
    assert classify(ray_status, last, errored, live=True) == live


def test_the_error_line_prefers_ray_then_out_of_memory_then_a_user_error():
    assert failure(RuntimeError("Traceback\n  ...\nValueError: boom\n"), {**OOM, **USER}) == "ValueError: boom"
    assert failure(RuntimeError(""), {}) == "RuntimeError"
    assert failure(None, {**OOM, **USER}, 256, 0.5) == oom_reason(OOM, 256, 0.5)
    assert oom_reason(OOM, 256, 0.5).startswith("CUDA out of memory at epoch-equivalent 1.25 "
                                                 "(optim.batch_size 256, resources.gpu 0.5): lower")
    assert oom_reason({"oom": 1}).startswith("CUDA out of memory: lower optim.batch_size")
    assert failure(None, USER) == "model.name: bad"
    assert failure(None, DONE) is None


def result(path="/x/exp/trial_00001", metrics=None, history=(), config=None, error=None):
    frame = pd.DataFrame(list(history)) if history else None
    return SimpleNamespace(path=path, metrics=metrics, metrics_dataframe=frame, config=config, error=error)


def test_from_a_ray_result():
    history = [{"val_top1": 50.0, "epoch_equiv": 1.0}, {"val_top1": 70.0, "epoch_equiv": 2.0},
               {"val_top1": 60.0, "epoch_equiv": 3.0, **DONE}]
    r = result(metrics=history[-1], history=history, config={"optim.lr": 0.1, "optim.batch_size": 32})
    t = Trial.from_result(r, 7, {"trial_00001": "TERMINATED"})
    assert (t.trial_id, t.status, t.phase, t.errored, t.error) == ("trial_00001", "finished", "search", False, None)
    assert t.params == {"optim.lr": 0.1, "optim.batch_size": 32}
    assert t.final("val_top1") == 60.0 and t.best("val_top1") == 70.0 and t.best("val_top1", "min") == 50.0
    assert t.final("test_top1") is None and t.best("test_top1") is None


def test_from_a_ray_result_without_a_last_report_or_a_path():
    t = Trial.from_result(result(path=None, metrics={}, history=[{"val_top1": 5.0, **OOM}]), 3, {},
                          phase="confirmation", batch_size=64, gpu=1.0)
    assert t.trial_id == "3" and t.last["val_top1"] == 5.0 and t.status == "failed"
    assert "(optim.batch_size 64, resources.gpu 1)" in t.error  # the settings an out-of-memory error names
    errored = Trial.from_result(result(error=RuntimeError("worker died")), 0, {"trial_00001": "ERROR"})
    assert errored.status == "failed" and errored.errored and errored.error == "worker died"


def test_from_a_trial_directory_read_while_it_is_written(tmp_path):
    d = tmp_path / "trial_00002"
    d.mkdir()
    lines = [json.dumps({"val_top1": v, "backprops": i, "config": {"optim.lr": 0.1}}) for i, v in enumerate((1.0, 2.0))]
    (d / "result.json").write_text("\n".join(lines) + '\n{"val_top1": 3.0, "backpr')  # a report half written
    t = Trial.from_dir(d, "running")
    assert t.params == {"optim.lr": 0.1}  # no params.json yet: the first report's config
    assert t.history == [{"val_top1": 1.0, "backprops": 0}, {"val_top1": 2.0, "backprops": 1}]
    assert t.last == t.history[-1] and t.status == "running" and read_reports(d) == t.history
    (d / "params.json").write_text(json.dumps({"optim.lr": 0.2, "strategy": "plain"}))
    assert Trial.from_dir(d, "finished").params == {"optim.lr": 0.2}  # Ray's params, without a stored label
    assert Trial.from_dir(tmp_path / "empty", "running").history == [] and read_reports(tmp_path) == []


def test_parameters_are_read_decoded_and_only_when_active():
    t = Trial("t", "finished", active={"stepwise.fractions": "[0.5, 1.0]", "optim.lr": 0.1})
    assert t.param("stepwise.fractions") == [0.5, 1.0] and t.param("trim.p_end") is None
    assert t.decoded() == {"stepwise.fractions": [0.5, 1.0], "optim.lr": 0.1}


# --- choosing at one budget, and the order of start ------------------------------------------------------


def climbed(trial_id, values, status="stopped_early", step=1.0, start=None):
    """A trial with a report per `step` epoch-equivalents of compute (asha_time: the rungs' clock, half a
    report further); `start`: its start time (Ray's timestamp, whole seconds, minus time_total_s)."""
    history = [{"val_top1": v, "compute_equiv": step * (k + 1), "asha_time": step * (k + 1.5),
                "budget_done": int(status == "finished" and k == len(values) - 1)} for k, v in enumerate(values)]
    if start is not None:
        history[0].update(timestamp=int(start + 0.7), time_total_s=0.7)
    return Trial(trial_id, status, last=history[-1], history=history)


def test_finished_trials_are_compared_by_their_final_values_never_with_a_higher_early_value():
    """A trial stopped at the first rung with 99 there is not chosen over the finished ones: only the finished
    ones are compared, at the full budget, by their final values (not their best)."""
    a = climbed("a", [60.0, 97.0, 80.0, 82.0], "finished")  # best 97 on the way, 82 at the end
    b = climbed("b", [50.0, 70.0, 80.0, 85.0], "finished")
    rung = climbed("rung", [99.0])
    c = choose([rung, a, b], "val_top1")
    assert (c.trial.trial_id, c.value, c.budget, c.full, c.compared) == ("b", 85.0, 4.0, True, 2)
    assert choose([rung, a, b], "val_top1", "min").trial.trial_id == "a"  # a metric to minimise: the smallest


def test_when_none_finished_every_trial_is_compared_at_the_highest_budget_all_reached():
    """far went on to 4 (95 there) but had 70 at 2, where near stopped with 80: near wins at 2. With the
    early stopper's rungs, the values are the rung's (its milestone, 2)."""
    far, near = climbed("far", [60.0, 70.0, 90.0, 95.0]), climbed("near", [65.0, 80.0])
    c = choose([far, near], "val_top1")
    assert (c.trial.trial_id, c.value, c.budget, c.full, c.compared) == ("near", 80.0, 2.0, False, 2)
    compared = common_values([far, near], "val_top1", rungs=(1.0, 2.0, 4.0))
    assert compared.values == [70.0, 80.0] and compared.budget == 2.0 and compared.threshold == 2.0
    # no rung at or below the common budget: the budget itself (asha_time 2.5: compute 2)
    assert common_values([far, near], "val_top1", rungs=(3.0,)).threshold == 2.5
    # interrupted past the rung (mid reached 3): the highest budget all reached, not the rung below it
    mid = climbed("mid", [62.0, 71.0, 93.0], "unfinished")
    past = common_values([far, mid], "val_top1", rungs=(1.0, 2.0))
    assert past.values == [90.0, 93.0] and past.threshold == 3.5 and past.budget == 3.0
    assert budget_of({"asha_time": 2.5, "compute_equiv": 2.0}) == 2.5 and budget_of({"epoch_equiv": 3.0}) == 3.0


def test_ties_go_to_the_first_and_records_without_budgets_compare_their_last_values():
    a, b = climbed("a", [80.0], "finished"), climbed("b", [80.0], "finished")
    assert choose([a, b], "val_top1").trial is a and choose([b, a], "val_top1").trial is b
    bare = [Trial("x", "stopped_early", last={"val_top1": 70.0}), Trial("y", "stopped_early", last={"val_top1": 75.0})]
    c = choose(bare, "val_top1")
    assert c.trial.trial_id == "y" and c.budget != c.budget and not c.full  # budget NaN: not recorded
    assert choose([Trial("z", "failed", last={"val_top1": float("nan")})], "val_top1") is None


def test_trials_in_the_order_they_started_not_by_their_ids(tmp_path):
    late, early, unknown = climbed("a1", [1.0], start=1000.2), climbed("z9", [1.0], start=990.5), climbed("m", [1.0])
    assert [t.trial_id for t in start_order([unknown, late, early])] == ["z9", "a1", "m"]
    assert early.started() == pytest.approx(990.0 - 0.7 + 1) and unknown.started() is None
    d = tmp_path / "3f2a1b"  # a trial directory: Ray's per-report timestamp and time_total_s
    d.mkdir()
    (d / "result.json").write_text(json.dumps({"val_top1": 1.0, "timestamp": 1796585585,
                                               "time_total_s": 0.5633845329284668}) + "\n")
    assert Trial.from_dir(d, "finished").started() == pytest.approx(1796585585 - 0.5633845329284668)
