"""`results`: search trials' records from a Ray ResultGrid, results.csv and confirm_results.csv (columns and
values, which other tools read), and the best trial."""

import csv
from types import SimpleNamespace

import pandas as pd
import pytest
from search_helpers import BASE, spec

from tune_hardbatch.search.results import CONFIRM_COLUMNS, best_choice, best_trial, search_trials, write_results
from tune_hardbatch.search.space import validate_space
from tune_hardbatch.search.trials import Trial


def result(name, config, reports, error=None):
    return SimpleNamespace(path=f"/s/exp/{name}", metrics=reports[-1] if reports else {}, config=config,
                           metrics_dataframe=pd.DataFrame(reports) if reports else None, error=error)


REPORTS = [{"val_top1": 80.0, "test_top1": 79.0, "epoch_equiv": 2.0, "backprops": 36},
           {"val_top1": 90.0, "test_top1": 91.0, "epoch_equiv": 4.0, "backprops": 72, "convergence_epoch": 3.0,
            "converged": 1, "samples_forward": 4600, "time_total_s": 12.5, "budget_done": 1}]
GRID = [result("t_00000", {"optim.lr": 0.1, "trim.schedule": "linear", "trim.p_end": 0.5,
                           "stepwise.fractions": "[0.5, 1.0]"}, REPORTS),
        result("t_00001", {"optim.lr": 0.05, "trim.schedule": "none", "trim.p_end": 0.7, "stepwise.fractions": None},
               [{**REPORTS[0], "val_top1": float("nan"), "oom": 1}]),
        result("t_00002", {"optim.lr": -1.0, "trim.schedule": "none"}, [], error=RuntimeError("x\nKeyError: 'a'"))]


def test_records_from_a_result_grid():
    s = spec()
    done, oom, broken = search_trials(s, GRID, {"t_00000": "TERMINATED", "t_00001": "TERMINATED"})
    assert (done.status, done.strategy) == ("finished", "trim-linear+splits=0.5-1")
    assert done.active == {"optim.lr": 0.1, "trim.schedule": "linear", "trim.p_end": 0.5,
                           "stepwise.fractions": "[0.5, 1.0]"}
    assert oom.status == "failed" and "trim.p_end" in oom.params and "trim.p_end" not in oom.active  # not applied
    assert oom.error.startswith("CUDA out of memory at epoch-equivalent 2 (optim.batch_size 64, resources.gpu 0.5)")
    assert (broken.strategy, broken.status, broken.errored, broken.error) == ("invalid", "failed", True, "KeyError: 'a'")


def test_results_csv_columns_and_values(tmp_path):
    s = spec()
    path = tmp_path / "results.csv"
    write_results(search_trials(s, GRID, {}), s, path)
    with open(path) as fh:
        header, *rows = list(csv.reader(fh))
    assert header == ["trial_id", "status", "strategy", "optim.lr", "trim.schedule", "trim.p_end", "stepwise.fractions",
                      "final_test_top1", "best_test_top1", "convergence_epoch", "converged", "epoch_equiv", "compute_equiv", "backprops",
                      "samples_forward", "time_s", "final_val_top1", "best_val_top1", "error"]
    done = dict(zip(header, rows[0]))
    assert done["stepwise.fractions"] == "[0.5, 1.0]" and done["trim.p_end"] == "0.5"  # a list as JSON
    assert (done["final_test_top1"], done["best_test_top1"], done["final_val_top1"], done["best_val_top1"]) == \
        ("91.0", "91.0", "90.0", "90.0")
    assert (done["convergence_epoch"], done["backprops"], done["time_s"], done["error"]) == ("3.0", "72", "12.5", "")
    oom = dict(zip(header, rows[1]))
    assert oom["trim.p_end"] == "" and oom["final_val_top1"] == "nan" and oom["best_val_top1"] == ""
    assert oom["stepwise.fractions"] == ""  # null: the dimension's value was None


def test_results_csv_with_the_test_metric_and_no_trials_yet(tmp_path):
    s = validate_space({"base": {**BASE, "epochs": 4}, "space": {"seed": {"grid": [0, 1]}},
                        "search": {"searcher": "grid", "scheduler": "fifo", "metric": "test_top1",
                                   "allow_test_metric": True}})
    write_results([], s, tmp_path / "results.csv")
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[-3:] == ["samples_forward", "time_s", "error"] and "final_val_top1" not in header


def test_confirm_results_csv(tmp_path):
    t = Trial("c_00000", "finished", "confirmation", arm="delta=0.5", family="delta", seed=3,
              last={"test_top1": 95.5, "samples_with_grad": 100, "time_total_s": 2.0})
    never = Trial("c_00001", "finished", "confirmation", arm="plain", family="plain", seed=3,
                  last={"test_top1": 94.0, "convergence_epoch": 6.0, "converged": 0, "epoch_equiv": 6.0})
    write_results([t, never], spec(), tmp_path / "confirm_results.csv", phase="confirmation")
    with open(tmp_path / "confirm_results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CONFIRM_COLUMNS
    # never converged: censored (no epoch), not its last epoch_equiv shown as if measured
    assert (rows[1]["convergence_epoch"], rows[1]["converged"], rows[1]["epoch_equiv"]) == ("", "0", "6.0")
    assert {k: rows[0][k] for k in ("arm", "family", "seed", "final_test_top1", "samples_with_grad", "time_s")} == \
        {"arm": "delta=0.5", "family": "delta", "seed": "3", "final_test_top1": "95.5", "samples_with_grad": "100",
         "time_s": "2.0"}


def trial(trial_id, status, value):
    return Trial(trial_id, status, last={"val_top1": value, "test_top1": 100.0})


@pytest.mark.parametrize("trials, mode, best", [
    ([trial("a", "stopped_early", 99.0), trial("b", "finished", 80.0), trial("c", "finished", 85.0)], "max", "c"),
    ([trial("a", "stopped_early", 99.0), trial("b", "finished", 80.0), trial("c", "finished", 85.0)], "min", "b"),
    ([trial("a", "failed", 99.0), trial("b", "diverged", float("nan")), trial("c", "unfinished", 70.0)], "max", "c"),
    ([trial("a", "finished", float("nan")), trial("b", "stopped_early", 60.0)], "max", "b"),
    ([trial("a", "diverged", 99.0), trial("b", "stopped_early", 60.0)], "max", "b"),  # a diverged one: no best
    ([trial("a", "failed", 99.0), trial("b", "diverged", None)], "max", None),
])
def test_the_best_trial_the_finished_ones_by_their_final_metric(trials, mode, best):
    s = spec(metric="val_loss", mode=mode) if mode == "min" else spec()
    if mode == "min":
        trials = [Trial(t.trial_id, t.status, last={"val_loss": t.final("val_top1")}) for t in trials]
    found = best_trial(trials, s)
    assert (found.trial_id if found else None) == best


def stopped(trial_id, values, status="stopped_early"):
    history = [{"val_top1": v, "compute_equiv": k + 1.0, "budget_done": int(status == "finished" and
                                                                           k == len(values) - 1)}
               for k, v in enumerate(values)]
    return Trial(trial_id, status, last=history[-1], history=history)


def test_best_config_follows_the_arms_rule_at_the_highest_budget_all_reached():
    """best_config.yaml's trial: none finished, so every trial at 2, the highest budget all reached: not the
    one that went furthest (far, 95 at 4), nor one that had a higher value past that budget."""
    far, near = stopped("far", [60.0, 70.0, 90.0, 95.0]), stopped("near", [65.0, 80.0])
    c = best_choice([far, near], spec())
    assert (c.trial.trial_id, c.value, c.budget, c.full) == ("near", 80.0, 2.0, False)
    done = stopped("done", [50.0, 60.0, 70.0, 75.0], status="finished")
    assert best_choice([far, near, done], spec()).trial is done  # a finished one: those alone are compared
