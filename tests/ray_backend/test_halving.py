"""Synchronous successive halving on a real local Ray (`ray_backend.halving`), with simulated trials: each arm's
rungs decide only once all its trials are there, whatever runs when; Optuna hears PRUNED for the stopped and
COMPLETE for the finished; a driver SIGKILL and `--resume` go on with the same rungs (`rungs.jsonl`)."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from search_helpers import BASE, ENV, read_rows, space

from tune_hardbatch.ray_backend.simulated import SIMULATE_ENV

ARMS = {"plain": {}, "half": {"fixed": {"hard_batch.delta": 0.5}},
        "trim": {"fixed": {"trim.schedule": "linear"}, "space": {"trim.p_end": {"uniform": [0.3, 0.7]}}}}


def _space(name: str) -> dict:
    # a constant rate (schedule none): the rungs fall at the grace period, 2 and 4 of 6
    return space(base={"epochs": 6, "optim": {**BASE["optim"], "schedule": "none"}},
                 space={"optim.lr": {"loguniform": [0.003, 3.0]}}, arms=ARMS,
                 search={"trials_per_arm": 4, "scheduler": "halving", "grace_period": 2, "reduction_factor": 2},
                 run={"name": name})


def _check(exp, rows: list[dict]) -> None:
    """Every rung kept the best half of its entrants, and results.csv agrees with the rungs."""
    ladders = json.loads((exp / "rungs.jsonl").read_text())
    assert set(ladders) == set(ARMS)
    by_id = {r["trial_id"]: r for r in rows}
    for arm, ladder in ladders.items():
        assert ladder["milestones"] == [2, 4] and len(ladder["members"]) == 4
        first, second = ladder["values"]
        assert len(first) == 4 and len(ladder["survivors"][0]) == 2 and len(ladder["survivors"][1]) == 1
        for values, survivors in zip(ladder["values"], ladder["survivors"]):
            losers = [v for t, v in values.items() if t not in survivors]
            assert min(values[t] for t in survivors) >= max(losers)  # none survives a rung it was worst at
        finished = {t for t in ladder["members"] if by_id[t]["status"] == "finished"}
        assert finished == set(ladder["survivors"][1])
        assert all(by_id[t]["status"] == "stopped_early" for t in ladder["members"] if t not in finished)


def _optuna_states(exp, arm: str) -> list[str]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(exp / "optuna.journal")))
    study = optuna.load_study(study_name=f"{exp.name}.{arm}", storage=storage)
    return sorted(t.state.name for t in study.trials)


class Controller:
    """What SyncHalving asks of Ray's controller: the trials, and stopping one."""

    def __init__(self, trials):
        self.trials, self.stopped = trials, []

    def get_trials(self):
        return self.trials

    def stop_trial(self, trial):
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"


def test_a_slow_arm_is_compared_only_with_itself_and_early_arrivals_wait(tmp_path):
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from tune_hardbatch.ray_backend.halving import HELD, SyncHalving

    sched = SyncHalving({"plain": 2, "splits": 2}, (1.0,), 2, "val_top1", "max", "asha_time", tmp_path)
    trials = {n: SimpleNamespace(trial_id=n, config={"arm": arm}, status="RUNNING")
              for n, arm in (("p1", "plain"), ("p2", "plain"), ("s1", "splits"), ("s2", "splits"))}
    ctl = Controller(list(trials.values()))
    for t in trials.values():
        sched.on_trial_add(ctl, t)
    report = lambda n, v: sched.on_trial_result(ctl, trials[n], {"asha_time": 1.2, "val_top1": v})  # noqa: E731
    assert report("p1", 90.0) == TrialScheduler.PAUSE and report("s1", 10.0) == TrialScheduler.PAUSE
    assert HELD[str(tmp_path)] == {"p1", "s1"}  # their slots go to the trials they wait for
    trials["p1"].status = trials["s1"].status = "PAUSED"
    assert report("p2", 85.0) == TrialScheduler.STOP  # the worse of plain's two
    assert sched.choose_trial_to_run(ctl) is trials["p1"]  # the winner resumes
    trials["p1"].status = "RUNNING"
    assert report("s2", 5.0) == TrialScheduler.STOP
    assert sched.choose_trial_to_run(ctl) is trials["s1"]  # 10 < 85, but splits is compared only with splits
    assert ctl.stopped == [] and HELD[str(tmp_path)] == set()
    saved = json.loads((tmp_path / "rungs.jsonl").read_text())
    assert saved["splits"]["survivors"] == [["s1"]] and saved["plain"]["survivors"] == [["p1"]]


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_driver_killed_while_trials_wait_at_a_rung_resumes_the_same_rungs(local_ray, tmp_path):
    """Every arm keeps the best half at each rung (complete rungs only), before and after the kill; the
    results agree with the rungs; Optuna hears PRUNED and COMPLETE."""
    from search_helpers import kill_driver_when

    from tune_hardbatch.ray_backend import run_search

    space_file = tmp_path / "sh.yaml"
    space_file.write_text(yaml.safe_dump(_space("kill")))
    exp = tmp_path / "out" / "kill"
    seen = {}

    def ready() -> bool:  # some trial waits at a rung, none has finished
        try:
            ladders = json.loads((exp / "rungs.jsonl").read_text())
        except (OSError, ValueError):
            return False
        seen.update(ladders)
        return sum(len(lad["values"][0]) for lad in ladders.values()) >= 5

    env = {**ENV, SIMULATE_ENV: "interval=0.3"}
    kill_driver_when([str(space_file), "--out", str(tmp_path / "out")], ready, 150,
                     "the search ended before it could be interrupted", env=env)
    before = {arm: dict(lad["values"][0]) for arm, lad in seen.items()}
    os.environ[SIMULATE_ENV] = "interval=0.02"
    try:
        path = run_search(str(space_file), out=str(tmp_path / "out"), resume="kill", live_interval_s=1000)
    finally:
        del os.environ[SIMULATE_ENV]
    rows = read_rows(path)
    assert len(rows) == 12 and {r["status"] for r in rows} == {"finished", "stopped_early"}
    _check(exp, rows)
    after = json.loads((exp / "rungs.jsonl").read_text())
    kept = {r["trial_id"] for r in rows}
    for arm, values in before.items():  # what the killed driver recorded stands, for every trial Ray kept;
        for t, v in values.items():  # a trial lost with the driver left its rung to its replacement
            assert after[arm]["values"][0][t] == v if t in kept else t not in after[arm]["members"]
    for arm in ARMS:  # Optuna hears the truth: trials asked after the last snapshot (lost with the driver) FAIL
        assert [s for s in _optuna_states(exp, arm) if s != "FAIL"] == ["COMPLETE", "PRUNED", "PRUNED", "PRUNED"]
