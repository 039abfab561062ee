"""Optuna is told the truth (PRUNED, FAIL, COMPLETE; equal-compute steps) and the rungs record at equal compute."""

from types import SimpleNamespace

import pytest
from search_helpers import BASE, history, space

from tune_hardbatch.ray_backend.optuna_search import outcome, step_of
from tune_hardbatch.ray_backend.tuner import build_scheduler
from tune_hardbatch.search.space import load_space
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.loop import Trainer


@pytest.mark.parametrize("result, error, expected", [
    ({"val_top1": 90.0, "budget_done": 1}, False, ("COMPLETE", 90.0)),
    ({"val_top1": 80.0, "budget_done": 0}, False, ("PRUNED", None)),  # stopped early at a rung
    ({"val_top1": float("nan"), "budget_done": 1}, False, ("FAIL", None)),  # NaN: never left RUNNING
    ({"val_top1": 10.0, "budget_done": 0, "diverged": 1}, False, ("FAIL", None)),
    ({"val_top1": 50.0, "budget_done": 0, "oom": 1}, False, ("FAIL", None)),
    ({"val_top1": 50.0, "budget_done": 0, "user_error": 1}, False, ("FAIL", None)),
    (None, True, ("FAIL", None)),
    ({"val_top1": 90.0, "budget_done": 1}, True, ("FAIL", None)),
])
def test_outcomes(result, error, expected):
    assert outcome(result, error, "val_top1") == expected


def test_intermediate_steps_are_hundredths_of_epoch_equivalents():
    assert step_of({"epoch_equiv": 0.9461, "training_iteration": 1}) == 95
    assert step_of({"epoch_equiv": 2.0, "training_iteration": 10}) == 200  # a step-wise trial's 10th report


def _reports(batch_size: int) -> list[dict]:
    cfg = build_config({**BASE, "epochs": 3, "optim": {"batch_size": batch_size}})
    return list(Trainer(cfg).run())


def _decisions(sched, reports, trial_id) -> dict[float, float]:
    """milestone -> epoch_equiv of the report at which the rungs recorded this trial."""
    trial = SimpleNamespace(trial_id=trial_id, config={})
    sched.on_trial_add(None, trial)
    ladder, out = sched.ladder("all"), {}
    for r in reports:
        sched.on_trial_result(None, trial, {**r, "val_top1": 50.0})
        for milestone, recorded in zip(ladder.milestones, ladder.values):
            if trial_id in recorded and milestone not in out:
                out[milestone] = r["epoch_equiv"]
    return out


def test_rungs_fall_at_equal_compute_whether_or_not_the_batch_divides_the_training_set(tmp_path):
    spec = load_space(space(search={"scheduler": "halving", "grace_period": 1, "reduction_factor": 2},
                            base={"epochs": 3}))
    n = Trainer(build_config({**BASE, "epochs": 1})).num_train
    fits, misfits = _reports(next(b for b in range(40, 80) if n % b == 0)), _reports(64)
    steps = {"fits": fits[0]["epoch_equiv"], "misfits": misfits[0]["epoch_equiv"]}
    assert steps["fits"] == pytest.approx(1.0) and steps["misfits"] < 0.99  # 64 does not divide M
    sched = build_scheduler(spec, tmp_path)
    for name, reports in (("fits", fits), ("misfits", misfits)):
        decided = _decisions(sched, reports, name)
        assert decided, name
        for milestone, ee in decided.items():
            # decided at the report nearest the milestone: never a whole report late
            assert abs(ee - milestone) <= steps[name] / 2 + 1e-9, (name, milestone, ee)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_optuna_study_after_a_halving_search_has_pruned_and_failed_trials_and_none_running(local_ray, tmp_path):
    """Lr 3000 diverges (FAIL), the rungs stop the weak (PRUNED), the rest COMPLETE; the journal opens in Optuna."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from search_helpers import read_rows

    from tune_hardbatch.ray_backend import run_search

    spec = space(base={"epochs": 4}, space={"optim.lr": {"choice": [0.003, 0.1, 3000.0]},
                                             "optim.batch_size": {"choice": [50, 64]}},
                 search={"searcher": "optuna", "scheduler": "halving", "num_samples": 8, "grace_period": 1,
                         "reduction_factor": 2, "startup_trials": 8, "seed": 1},
                 run={"name": "truth"})
    path = run_search(spec, out=str(tmp_path), live_interval_s=1000)
    rows = read_rows(path)
    study = optuna.load_study(study_name="truth", storage=JournalStorage(JournalFileBackend(
        str(path.parent / "optuna.journal"))))
    states = sorted(t.state.name for t in study.trials)
    expected = sorted({"finished": "COMPLETE", "stopped_early": "PRUNED", "diverged": "FAIL",
                       "failed": "FAIL"}[r["status"]] for r in rows)
    assert states == expected and "RUNNING" not in states
    assert {"PRUNED", "FAIL", "COMPLETE"} <= set(states), states
    # intermediate values at equal compute: each report's step is its hundredths of epoch-equivalents,
    # not its report count (0.95 epoch-equivalents a report here, so the two part after one report)
    pruned = sorted(sorted(t.intermediate_values) for t in study.trials if t.state.name == "PRUNED")
    assert pruned == sorted([step_of(h) for h in history(path.parent / r["trial_id"])]
                            for r in rows if r["status"] == "stopped_early")
    # every trial's last report is its last intermediate value, also the one a rung stopped it on (Ray passes
    # that report to on_trial_complete only): TPE ranks pruned trials by it
    ended = sorted((max(t.intermediate_values), round(t.intermediate_values[max(t.intermediate_values)], 6))
                   for t in study.trials if t.state.name in ("PRUNED", "COMPLETE"))
    lasts = [history(path.parent / r["trial_id"])[-1] for r in rows if r["status"] in ("finished", "stopped_early")]
    assert ended == sorted((step_of(h), round(h["val_top1"], 6)) for h in lasts)
    complete = sorted(t.value for t in study.trials if t.state.name == "COMPLETE")
    assert complete == pytest.approx(sorted(float(r["final_val_top1"]) for r in rows if r["status"] == "finished"))


def test_a_rung_records_a_step_wise_plan_at_the_report_nearest_its_milestone(tmp_path):
    """A-O forwards 0.2 epoch-equivalents a report in stage 1, then 1.0: at the change of step the nearest
    report is judged by the next step, not the last one."""
    spec = load_space(space(search={"scheduler": "halving", "grace_period": 1, "reduction_factor": 2},
                            base={"epochs": 6}, space={"stepwise.fractions": {"choice": [None, "A-O"]}}))
    reports = list(Trainer(build_config({**BASE, "epochs": 6, "stepwise": {"fractions": "A-O"}})).run())
    ees = [r["epoch_equiv"] for r in reports]
    decided = _decisions(build_scheduler(spec, tmp_path), reports, "a-o")
    assert decided
    for milestone, ee in decided.items():
        assert min(abs(x - milestone) for x in ees) == pytest.approx(abs(ee - milestone)), (milestone, ee, ees)
