"""The shared design on a real local Ray (`ArmSearch` with `search.space.design`): four arms that search
different dimensions of their own give their k-th start-up trial the same values of the shared dimensions,
in a whole search and across a driver SIGKILL and --resume. Trials are simulated (`ray_backend.simulated`):
the searcher, not training, is under test. The rules themselves (queue, restore, a point left waiting) are
in `test_arm_search.py`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import search_helpers  # noqa: E402
from search_helpers import kill_driver_when, read_rows, snapshot_statuses, space  # noqa: E402

from tune_hardbatch.ray_backend import run_search  # noqa: E402
from tune_hardbatch.ray_backend.simulated import SIMULATE_ENV  # noqa: E402

SHARED = {"optim.lr": {"loguniform": [0.01, 0.3]}, "optim.weight_decay": {"loguniform": [1e-5, 1e-3]}}
ARMS = {"plain": {}, "delta<1": {"space": {"hard_batch.delta": {"choice": [0.5, 0.3]}}},
        "trim": {"fixed": {"trim.schedule": "linear"}, "space": {"trim.p_end": {"uniform": [0.3, 0.8]}}},
        "both": {"space": {"trim.schedule": {"choice": ["none", "linear"]}, "trim.p_end": {"uniform": [0.3, 0.8]},
                           "hard_batch.delta": {"choice": [0.5, 0.3]}}}}


def arms_space(name: str, epochs: int, per_arm: int) -> dict:
    """Every trial a start-up trial: `startup_trials` = `per_arm` >= the 2 trials run at once (whatever the
    machine's CPUs: the killed driver must still have trials to create when it dies)."""
    return space(base={"epochs": epochs}, space=SHARED, arms=ARMS, run={"name": name},
                 search={"trials_per_arm": per_arm, "startup_trials": per_arm, "max_concurrent": 2,
                         "scheduler": "fifo", "seed": 3})


def design(per_arm: int) -> list[tuple]:
    """The shared values of start-up trials 0 .. per_arm - 1, as the search draws them, sorted."""
    from tune_hardbatch.search import space as SP
    from tune_hardbatch.search.space.design import shared_design

    dims = SP.validate_space(arms_space("x", 2, per_arm)).arms[0].shared
    return sorted(tuple(p[k] for k in SHARED) for p in shared_design(dims, per_arm, 3))


def shared_by_arm(exp: Path) -> dict:
    """arm -> the sorted shared values of its trials (params.json: exact, unlike results.csv's text)."""
    out: dict = {}
    for row in read_rows(exp / "results.csv"):
        params = json.loads((exp / row["trial_id"] / "params.json").read_text())
        assert params["arm"] == row["arm"] and row["status"] == "finished", row
        out.setdefault(row["arm"], []).append(tuple(params[k] for k in SHARED))
    return {arm: sorted(values) for arm, values in out.items()}


def design_points_by_arm(exp: Path) -> dict:
    """arm -> (its study's design points of COMPLETE trials, sorted; how many are left WAITING or RUNNING)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(exp / "optuna.journal")))
    out = {}
    for arm in ARMS:
        trials = optuna.load_study(study_name=f"{exp.name}.{arm}", storage=storage).trials
        out[arm] = (sorted(t.user_attrs["shared_design_point"] for t in trials if t.state.name == "COMPLETE"),
                    sum(t.state.name in ("WAITING", "RUNNING") for t in trials))
    return out


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_same_shared_values_across_a_sigkill_and_resume(local_ray, tmp_path, monkeypatch):
    """The driver (a CLI subprocess) is killed once a few trials ended; --resume completes the search: every arm
    gets exactly its trials (the arms' searcher state is saved with the experiment), and every arm's trials
    still hold each design point once: none queued twice, none skipped, none waiting or left running."""
    monkeypatch.setitem(search_helpers.ENV, SIMULATE_ENV, "interval=0.2")
    monkeypatch.setenv(SIMULATE_ENV, "interval=0.2")
    space_file = tmp_path / "design.yaml"
    space_file.write_text(yaml.safe_dump(arms_space("design", 3, 3)))
    exp = tmp_path / "out" / "design"
    state = {}

    def ready() -> bool:
        state.clear()
        state.update(snapshot_statuses(exp))
        return list(state.values()).count("TERMINATED") >= 3 and "RUNNING" in state.values()

    kill_driver_when([str(space_file), "--out", str(tmp_path / "out")], ready, 150,
                     "the search ended before it could be interrupted")
    assert len(state) < len(ARMS) * 3, state
    run_search(str(space_file), out=str(tmp_path / "out"), resume="design", live_interval_s=1000)
    assert shared_by_arm(exp) == {arm: design(3) for arm in ARMS}  # exactly 3 trials an arm, each finished
    assert design_points_by_arm(exp) == {arm: ([0, 1, 2], 0) for arm in ARMS}  # each study told only its own
    for row in read_rows(exp / "results.csv"):  # an arm's own dimension only in that arm
        assert (row["trim.p_end"] != "") == (row["arm"] in ("trim", "both") and row["trim.schedule"] != "none")
        assert (row["hard_batch.delta"] != "") == (row["arm"] in ("delta<1", "both")), row
