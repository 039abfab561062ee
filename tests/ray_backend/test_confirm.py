"""The confirmation phase and the verdict on a real local Ray: arms x seeds in looks, full training set, the
whole test set; the verdict's numbers recomputed from the confirmation trials; a driver SIGKILL then --resume.
The first two tests check one search (`killed_and_resumed`): a sequential confirmation whose driver, a CLI
subprocess with a local Ray of its own, is killed during its second look, and the --resume runs in-process on
the local Ray conftest's `local_ray` shares."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import yaml
from scipy import stats
from search_helpers import history, kill_driver_when, read_rows, space

from tune_hardbatch.ray_backend import run_search

pytestmark = pytest.mark.e2e  # a real local Ray, a CLI driver killed with SIGKILL

FULL_N = 1437 // 64  # confirmation trains on the full training set: no validation hold-out
TEST_N = 360  # digits' whole test set

SEQUENTIAL = dict(base={"epochs": 2, "optim": {"batch_size": 64, "lr": 0.1}}, space={"optim.momentum": {"choice": [0.9]}},
                  arms={"plain": {}, "trim": {"fixed": {"trim.schedule": "linear", "trim.p_end": 0.5}},
                        "broken": {"fixed": {"hard_batch.delta": 0.5, "optim.lr": 1.0e-5}}},  # learns nothing
                  search={"searcher": "random", "scheduler": "fifo", "trials_per_arm": 1},
                  confirm={"resolution": 0.2, "max_seeds": 6, "looks": 3}, run={"name": "looks", "max_failures": 1})


def last(trial_dir: Path) -> dict:
    return history(trial_dir)[-1]


@pytest.fixture(scope="module")
def killed_and_resumed(local_ray, tmp_path_factory):
    """One search shared by the tests of this module: arms plain, trim and broken (learning rate 1e-5), one
    trial each, then a confirmation with a resolution of 0.2 points in looks at 2, 4 and 6 seeds; its driver
    is killed (SIGKILL) once the second look has started training, and --resume (what the CLI runs:
    `run_search` with the same space and `resume`) finishes it on the shared local Ray.

    Returns (the experiment, confirm_arms.json after the kill, what the resume printed)."""
    tmp_path = tmp_path_factory.mktemp("confirm")
    space_file = tmp_path / "looks.yaml"
    space_file.write_text(yaml.safe_dump(space(**SEQUENTIAL)))
    exp = tmp_path / "out" / "looks"

    def ready() -> bool:  # the second look has started training
        return any(p.stat().st_size for p in (exp / "looks" / "2" / "confirm").glob("*/result.json"))

    kill_driver_when([str(space_file), "--out", str(tmp_path / "out")], ready, 300,
                     "the search ended before its second look could be interrupted")
    plan_after_kill = json.loads((exp / "confirm_arms.json").read_text())
    stream = io.StringIO()
    path = run_search(str(space_file), out=str(tmp_path / "out"), resume="looks", live_interval_s=1000,
                      stream=stream)
    assert path.resolve() == (exp / "results.csv").resolve()
    return exp, plan_after_kill, stream.getvalue()


def confirmation_dir(exp: Path, trial_id: str) -> Path:
    return next(d for d in [exp / "confirm", *(exp / "looks").glob("*/confirm")] if (d / trial_id).is_dir()) / trial_id


@pytest.mark.timeout(420)
def test_confirmation_trains_arms_x_seeds_on_the_full_sets_and_the_verdict_is_recomputable(killed_and_resumed):
    exp, _, _ = killed_and_resumed
    search = read_rows(exp / "results.csv")
    assert len(search) == 3 and all(int(r["backprops"]) < 2 * FULL_N for r in search)  # searched on the split
    rows = read_rows(exp / "confirm_results.csv")
    acc = {}
    for r in rows:
        final = last(confirmation_dir(exp, r["trial_id"]))
        assert final["backprops"] == 2 * FULL_N and math.isnan(final["val_top1"])  # the full training set
        acc[(r["arm"], int(r["seed"]))] = final["test_top1"]
    verdict = json.loads((exp / "verdict.json").read_text())
    by_arm = {a["arm"]: a for a in verdict["arms"]}
    assert verdict["baseline"] == "plain" and by_arm["plain"]["is_baseline"]
    plain = [v for (a, _), v in acc.items() if a == "plain"]
    assert by_arm["plain"]["test_top1"]["mean"] == pytest.approx(sum(plain) / len(plain))
    trim = by_arm["trim"]["diffs"][0]
    d = [acc[("trim", s)] - acc[("plain", s)] for s in range(1, 7)]
    assert trim["mean"] == pytest.approx(sum(d) / 6) and trim["decided_n"] == 6
    assert trim["ci95"] == pytest.approx(stats.t.ppf(0.975, 5) * stats.tstd(d) / math.sqrt(6))
    assert (trim["decided_df"] == 5) == (trim["error"] == "own")  # the pooled term has more df than its own
    assert len(verdict["sentences"]) == 2  # the primary family: trim and broken, each against plain
    report = (exp / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## Search trials")
    assert "Sequential design: looks at 2, 4, 6 seeds" in report and "confirmation_looks.png" in report
    variance = by_arm["plain"]["variance"]  # from the runs' per-example results, the whole test set
    assert variance["runs"] == 6 and variance["examples"] == TEST_N and variance["sampling"] >= 0


@pytest.mark.timeout(420)
def test_a_sequential_confirmation_stops_a_decided_arm_early_and_resumes_its_plan_after_a_sigkill(killed_and_resumed):
    """'broken' is decided ("hurts") before the last look and trains no more seeds; trim against plain (a
    resolution of 0.2 points it cannot reach) runs on to the last look. Killed during the second look,
    --resume continues the same plan (its looks, seeds and arms), trains every arm x seed once, and the
    verdict names per comparison its decision, the look and the seeds it used; it is printed last."""
    exp, plan, printed = killed_and_resumed
    assert plan["design"]["looks"] == [2, 4, 6] and plan["seeds"] == [1, 2, 3, 4, 5, 6]
    assert plan["looks"][0]["judged"] and not plan["done"]
    plan = json.loads((exp / "confirm_arms.json").read_text())
    assert plan["done"] and all(r["judged"] for r in plan["looks"])
    rows = read_rows(exp / "confirm_results.csv")
    trained = sorted((r["arm"], int(r["seed"])) for r in rows)
    assert len(trained) == len(set(trained)) and all(r["status"] == "finished" for r in rows)  # each once
    seeds = {arm: sorted(s for a, s in trained if a == arm) for arm in ("plain", "trim", "broken")}
    verdict = json.loads((exp / "verdict.json").read_text())
    by = {c["name"]: c for a in verdict["arms"] for c in a["diffs"]}
    broken = by["broken vs plain"]
    assert broken["decision"] == "hurts" and broken["decided_look"] < 3
    assert seeds["broken"] == list(range(1, 2 * broken["decided_look"] + 1))  # stopped: no seed after its look
    assert seeds["plain"] == seeds["trim"] == [1, 2, 3, 4, 5, 6] and by["trim vs plain"]["decided_look"] == 3
    for r in plan["looks"]:
        assert ("broken" in r["arms"]) == (r["look"] <= broken["decided_look"])
    assert verdict["design"]["sequential"] and not verdict["partial"]
    assert broken["low"] <= broken["decided_mean"] <= broken["high"] < 0
    assert f"broken vs plain: hurts: {broken['decided_mean']:+.2f} points" in printed
    assert f"look {broken['decided_look']}, {broken['decided_n']} paired seeds" in printed
    lines = [line for line in printed.splitlines() if line.strip()]
    assert lines[-1].strip().startswith(("broken vs plain", "trim vs plain")), "the verdict is printed last"
    assert len(list((exp / "looks" / "2" / "confirm").glob("*/test_correct.npz"))) >= 4  # per-example results


@pytest.mark.timeout(300)
def test_an_arm_that_spends_less_gets_its_budget_matched_baseline_which_resume_does_not_retrain(local_ray, tmp_path):
    """Declared arms plain (2 epochs) and short (delta 0.5 for 1 epoch: less compute): after the arms x seeds,
    plain SGD runs for short's mean compute on the same seeds (`budget_matched/confirm`), and the verdict
    compares short with it too (in verdict.json, report.md and printed); `report` judges it again from disk;
    `--resume` of the ended search trains nothing again."""
    from tune_hardbatch.output.report import build_report
    from tune_hardbatch.verdict.comparisons import compute_of

    space_file = tmp_path / "matched.yaml"
    space_file.write_text(yaml.safe_dump(space(
        base={"epochs": 2}, space={"optim.lr": {"choice": [0.1]}},
        arms={"plain": {}, "short": {"fixed": {"hard_batch.delta": 0.5, "epochs": 1}}},
        search={"searcher": "random", "scheduler": "fifo", "trials_per_arm": 1}, confirm={"seeds": 2},
        run={"name": "matched", "max_failures": 1})))
    stream = io.StringIO()
    path = run_search(str(space_file), out=str(tmp_path / "out"), live_interval_s=1000, stream=stream)
    exp = path.parent
    plan = json.loads((exp / "confirm_arms.json").read_text())
    rows = {(r["arm"], int(r["seed"])): r for r in read_rows(exp / "confirm_results.csv")}
    short = [compute_of(last(exp / "confirm" / rows[("short", s)]["trial_id"])) for s in (1, 2)]
    budget = round(sum(short) / 2, 2)
    [matched] = plan["matched"]
    assert matched["for"] == ["short"] and matched["compute_budget"] == budget and matched["arm"] == f"plain@{budget:g}"
    assert matched["config"]["compute_budget"] == budget and matched["config"]["data.val_fraction"] == 0.0
    assert sorted(rows) == sorted((a, s) for a in ("plain", "short", matched["arm"]) for s in (1, 2))
    assert all(r["status"] == "finished" for r in rows.values())
    matched_dirs = {p.parent.name for p in (exp / "budget_matched" / "confirm").glob("*/result.json")}
    assert matched_dirs == {rows[(matched["arm"], s)]["trial_id"] for s in (1, 2)}
    for s in (1, 2):  # once the loop trains `compute_budget`: that compute, within a batch
        final = last(exp / "budget_matched" / "confirm" / rows[(matched["arm"], s)]["trial_id"])
        if "compute_equiv" in final:
            assert final["compute_equiv"] == pytest.approx(budget, abs=64 / 1437 + 0.01)
    verdict = json.loads((exp / "verdict.json").read_text())
    by_arm = {a["arm"]: a for a in verdict["arms"]}
    at_equal = by_arm["short"]["diffs"][1]
    assert at_equal["name"] == f"short vs plain at equal compute ({budget:g})" and verdict["comparisons"] == 1
    assert at_equal["decision"] == "exploratory" and not at_equal["primary"]  # secondary: an estimate
    acc = {k: r["final_test_top1"] for k, r in rows.items()}
    assert at_equal["mean"] == pytest.approx(sum(float(acc[("short", s)]) - float(acc[(matched["arm"], s)])
                                                 for s in (1, 2)) / 2)
    assert not verdict["partial"] and by_arm[matched["arm"]]["diffs"] == []
    assert "vs plain at equal compute" in (exp / "report.md").read_text()
    assert "vs equal compute" in stream.getvalue()  # the printed verdict's column
    build_report(exp)  # `tune-hardbatch report`: judged again from disk
    assert json.loads((exp / "verdict.json").read_text())["sentences"] == verdict["sentences"]
    run_search(str(space_file), out=str(tmp_path / "out"), resume="matched", live_interval_s=1000,
               stream=io.StringIO())
    assert json.loads((exp / "confirm_arms.json").read_text()) == plan
    assert len(list((exp / "budget_matched" / "confirm").glob("*/result.json"))) == 2  # nothing trained twice
    assert len(list((exp / "confirm").glob("*/result.json"))) == 4
