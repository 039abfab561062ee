"""`trials`: one record per trial (from a Ray Result or a trial directory), its status and its error line."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from tune_hardbatch.search.trials import Trial, classify, failure, oom_reason, read_reports

DONE, DIVERGED = {"budget_done": 1}, {"diverged": 1}
OOM, USER = {"oom": 1, "epoch_equiv": 1.25}, {"user_error": 1, "fatal_error": "model.name: bad"}


@pytest.mark.parametrize("ray_status, last, errored, final, live", [
    ("TERMINATED", DONE, False, "finished", "finished"),
    ("TERMINATED", {}, False, "stopped_early", "stopped_early"),  # ASHA stopped it
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
    ("PAUSED", DIVERGED, False, "diverged", "pending"),
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
