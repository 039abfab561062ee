"""`report`: the verdict first, arms across seeds, t-intervals, change against the baseline, formats, plots."""

import csv
import io
import json
import math

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.output.report import arm_rows, build_report, render
from tune_hardbatch.search.history import find_experiment, load_trials


def write_trial(exp, trial_id, params, strategy, accs, losses, conv, samples=1000):
    d = exp / trial_id
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({**params, "strategy": strategy}))
    lines = []
    for i, (acc, loss) in enumerate(zip(accs, losses)):
        lines.append(json.dumps({"epoch_equiv": i + 1.0, "backprops": 10 * (i + 1), "test_top1": acc,
                                 "train_top1": acc + 1, "train_loss": loss, "convergence_epoch": conv,
                                 "converged": int(conv == conv and conv > 0),
                                 "samples_forward": samples * (i + 1), "time_train_s": 2.0 * (i + 1),
                                 "time_eval_s": 0.5, "config": params}))
    (d / "result.json").write_text("\n".join(lines) + "\n")


@pytest.fixture
def experiment(tmp_path):
    exp = tmp_path / "paper-grid"
    exp.mkdir()
    (exp / "search_space.yaml").write_text(
        "space:\n  hard_batch.delta: {grid: [1.0, 0.5, 0.2]}\n  seed: {grid: [0, 1, 2]}\n"
        "search: {searcher: grid, scheduler: fifo, metric: test_top1, allow_test_metric: true}\nresources: {cpu: 1, gpu: 0.25}\n")
    statuses = {}
    for seed, (a1, a5, c1, c5) in enumerate([(70.0, 69.0, 8.0, 6.0), (71.0, 70.0, 8.0, 7.0), (72.0, 68.0, 8.0, 8.0)]):
        write_trial(exp, f"d1s{seed}", {"hard_batch.delta": 1.0, "seed": seed}, "delta=1", [50, a1], [1, .5], c1)
        write_trial(exp, f"d5s{seed}", {"hard_batch.delta": 0.5, "seed": seed}, "delta=0.5", [50, a5], [1, .6], c5)
        statuses[f"d1s{seed}"] = statuses[f"d5s{seed}"] = "finished"
    write_trial(exp, "d2s0", {"hard_batch.delta": 0.2, "seed": 0}, "delta=0.2", [40], [1.2], float("nan"))
    statuses["d2s0"] = "stopped_early"
    with open(exp / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial_id", "status"])
        w.writerows(statuses.items())
    return exp


def test_arms_group_seeds_with_t_intervals_and_change_against_delta_1(experiment):
    trials = load_trials(experiment)
    assert len(trials) == 7
    rows = {r["strategy"]: r for r in arm_rows(trials, gpu=0.25)}
    d1, d5, d2 = rows["delta=1"], rows["delta=0.5"], rows["delta=0.2"]
    assert d1["seeds"] == 3 and d1["baseline"] and not d5["baseline"]
    assert d1["test_top1"] == pytest.approx(71.0)
    assert d1["test_top1_ci95"] == pytest.approx(4.302652729911275 / math.sqrt(3))  # sd 1 across 3 seeds
    assert d5["convergence_epoch"] == pytest.approx(7.0)
    assert d5["convergence_change_pct"] == pytest.approx(-12.5)  # (7 - 8) / 8
    assert d2["seeds"] == 0 and math.isnan(d2["test_top1"]) and "stopped_early" in d2["statuses"]
    assert d1["samples_forward"] == 2000 and d1["trial_seconds"] == pytest.approx(3 * 4.5)
    assert d1["gpu_seconds"] == pytest.approx(3 * 4.5 * 0.25)


def test_formats(experiment):
    rows = arm_rows(load_trials(experiment))
    md = render(rows, "md", "t")
    assert "| delta=1 | 3 |" in md and "71.00 ± 2.48" in md and "base" in md and "-12.5" in md
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert {r["strategy"] for r in parsed} == {"delta=1", "delta=0.5", "delta=0.2"}
    data = json.loads(render(rows, "json"))
    assert data[0]["test_top1"] == pytest.approx(71.0) and data[-1]["test_top1"] is None


def test_build_report_writes_markdown_and_plots(experiment):
    _, _, report, plots = build_report(experiment)
    text = report.read_text()
    # a seed grid is its own confirmation: the report judges its trials (and writes verdict.json)
    assert text.startswith("# Search paper-grid\n\n## Verdict\n\nThe grid's own trials")
    assert json.loads((experiment / "verdict.json").read_text())["baseline"] == "delta=1"
    assert {p.name for p in plots} == {"confirmed_arms.png", "importances.png", "best_so_far.png", "best_curves.png",
                                       "tuning_curves.png"}
    assert "## Tuning curves" in text and "| delta=1 | 3 |" in text
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in plots)


def test_report_opens_with_the_verdict_and_plots_the_confirmed_arms(experiment):
    from tune_hardbatch.search.trials import Trial
    from tune_hardbatch.verdict.comparisons import VERDICT_FILE, build_verdict, to_json

    def run(seed, acc):
        return Trial(f"t{seed}{acc}", "finished", "confirmation", seed=seed, last={"test_top1": acc})

    groups = {"plain": [run(s, a) for s, a in ((1, 70.0), (2, 71.0), (3, 72.0))],
              "delta=0.5": [run(s, a) for s, a in ((1, 72.0), (2, 73.5), (3, 74.2))]}
    verdict = build_verdict(groups, {"plain": "plain", "delta=0.5": "delta"}, "confirmation", [1, 2, 3], 2.0)
    (experiment / VERDICT_FILE).write_text(to_json(verdict))
    # a search whose confirmation left no arms file (no confirm_arms.json): its verdict.json as it is
    (experiment / "search_space.yaml").write_text(
        "space:\n  hard_batch.delta: {choice: [1.0, 0.5, 0.2]}\n  seed: {choice: [0, 1, 2]}\n"
        "search: {searcher: random, scheduler: fifo, metric: train_top1}\nresources: {cpu: 1, gpu: 0.25}\n")
    _, _, report, plots = build_report(experiment)
    text = report.read_text()
    assert text.index("## Verdict") < text.index("## What mattered") < text.index("## Search trials")
    assert "- delta (delta=0.5) against plain at 2 epoch-equivalents helps: +" in text
    assert "confirmed_arms.png" in {p.name for p in plots}


def test_find_experiment_by_name_or_path(experiment, tmp_path):
    assert find_experiment(str(experiment)) == experiment
    assert find_experiment("paper-grid", out=str(tmp_path)) == experiment
    with pytest.raises(UserError, match="no search 'nope'"):
        find_experiment("nope", out=str(tmp_path))



def test_report_command_prints_the_whole_report_in_markdown_and_the_table_as_csv(experiment, capsys):
    from tune_hardbatch.cli import main

    assert main(["report", str(experiment)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Search paper-grid") and "## Verdict" in out and "| delta=1 | 3 |" in out
    assert main(["report", str(experiment), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("arm,")


def test_a_run_that_never_converged_is_censored_not_given_its_last_epoch(experiment):
    """converged = 0 (its convergence_epoch is then its last epoch_equiv): left out of the mean, counted."""
    write_trial(experiment, "d5s3", {"hard_batch.delta": 0.5, "seed": 3}, "delta=0.5", [50, 66.0], [1, .9], 0.0)
    with open(experiment / "results.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["d5s3", "finished"])
    rows = {r["strategy"]: r for r in arm_rows(load_trials(experiment))}
    d5 = rows["delta=0.5"]
    assert d5["seeds"] == 4 and d5["converged"] == 3 and d5["convergence_epoch"] == pytest.approx(7.0)
    assert "7.00 ± 2.48 (3 of 4 conv.)" in render(list(rows.values()), "md")


def test_plain_is_the_baseline_of_the_arm_table_as_of_the_verdict(experiment):
    """With plain SGD and delta = 1 both present, both tables of report.md measure against plain."""
    for seed, acc in enumerate((69.0, 70.0, 71.0)):
        write_trial(experiment, f"ps{seed}", {"hard_batch.delta": None, "seed": seed}, "plain", [50, acc], [1, .5], 8.0)
    with open(experiment / "results.csv", "a", newline="") as fh:
        csv.writer(fh).writerows([[f"ps{s}", "finished"] for s in range(3)])
    rows = {r["strategy"]: r for r in arm_rows(load_trials(experiment))}
    assert rows["plain"]["baseline"] and not rows["delta=1"]["baseline"]


def write_climb(exp, trial_id, arm, lr, values, start, finished):
    """A search trial of a declared arm: a report per epoch-equivalent of compute (asha_time half a report
    further), Ray's timestamp (whole seconds) and time_total_s, budget_done on its last report when finished."""
    d = exp / trial_id
    d.mkdir(parents=True)
    params = {"arm": arm, "optim.lr": lr, **({"hard_batch.delta": 0.5} if arm == "half" else {})}
    (d / "params.json").write_text(json.dumps(params))
    lines = [json.dumps({"val_top1": v, "test_top1": v, "compute_equiv": k + 1.0, "epoch_equiv": k + 1.0,
                         "asha_time": k + 1.5, "samples_forward": 1000 * (k + 1), "time_train_s": 1.0,
                         "time_eval_s": 0.1, "timestamp": int(start + k + 0.5), "time_total_s": k + 0.5,
                         "budget_done": int(finished and k == len(values) - 1), "config": params})
             for k, v in enumerate(values)]
    (d / "result.json").write_text("\n".join(lines) + "\n")
    return trial_id, "finished" if finished else "stopped_early"


@pytest.fixture
def arms_search(tmp_path):
    """Two declared arms, three trials each, halving with its first rung at 1 of 4 epoch-equivalents; the
    trial directories' names sort against the order the trials started."""
    exp = tmp_path / "arms"
    exp.mkdir()
    (exp / "search_space.yaml").write_text(
        "base: {data: {name: digits, val_fraction: 0.2}, model: {name: test_resnet}, device: cpu, epochs: 4}\n"
        "space:\n  optim.lr: {loguniform: [0.01, 0.3]}\n"
        "arms:\n  plain: {}\n  half: {fixed: {hard_batch.delta: 0.5}}\n"
        "search: {searcher: random, scheduler: halving, trials_per_arm: 3, grace_period: 1, reduction_factor: 3}\n")
    statuses = dict([
        # plain: z-first started first and finished with 90; b-rung stopped at the rung with 97 there
        write_climb(exp, "z-first", "plain", 0.1, [60.0, 75.0, 85.0, 90.0], 100.0, True),
        write_climb(exp, "b-rung", "plain", 0.2, [97.0], 110.0, False),
        write_climb(exp, "a-last", "plain", 0.05, [50.0, 70.0, 80.0, 88.0], 120.0, True),
        # half: none finished (an interrupted climb): all three at 1, the highest budget all reached
        write_climb(exp, "y-half", "half", 0.1, [40.0, 95.0], 101.0, False),
        write_climb(exp, "c-half", "half", 0.2, [55.0], 111.0, False),
        write_climb(exp, "d-half", "half", 0.3, [45.0, 96.0], 121.0, False)])
    with open(exp / "results.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["trial_id", "status"], *statuses.items()])
    return exp


def test_the_report_names_each_arms_chosen_trial_its_budget_and_start(arms_search):
    from tune_hardbatch.output.report import chosen_markdown

    _, _, report, _ = build_report(arms_search)
    text = report.read_text()
    assert text.index("## Each arm's best trial") < text.index("## Tuning curves")
    # plain: the finished ones by their final value (z-first, 90), never b-rung's 97 at the rung
    assert "| plain | z-first | 1 of 3 | full budget (4) | 2 | 90.00 |" in text
    # half: none finished: at 1 (the first rung), c-half's 55 beats the others' 40 and 45 there
    assert "| half | c-half | 2 of 3 | 1 (highest all reached) | 3 | 55.00 |" in text
    trials = load_trials(arms_search)
    assert chosen_markdown(trials, "val_top1", "max").count("\n|") == 4  # header, rule, two arms
    # the tuning curves at one budget per arm: plain's three trials at the first rung (1), half's too
    assert "| plain | 3 | 1 | " in text and "| half | 3 | 1 | " in text
    assert "- one more trial of plain would gain about" in text


def test_best_so_far_orders_trials_by_start_and_best_curves_plot_compute(arms_search):
    from tune_hardbatch.output.report import best_curves, started_points

    trials = load_trials(arms_search)  # in the directories' order: a-last, b-rung, c-half, d-half, y-half, z-first
    points = started_points(trials, "val_top1")
    assert [p[0] for p in points] == [1, 2, 3, 4, 5, 6]
    assert [(p[1], p[2]) for p in points] == [(90.0, "finished"), (95.0, "stopped_early"),
                                              (97.0, "stopped_early"), (55.0, "stopped_early"),
                                              (88.0, "finished"), (96.0, "stopped_early")]
    curves = best_curves(trials, "val_top1", "max")
    assert list(curves) == ["half", "plain"]
    assert curves["plain"] == ([1.0, 2.0, 3.0, 4.0], [60.0, 75.0, 85.0, 90.0])  # compute on x: z-first's reports
    assert curves["half"][0] == [1.0]  # c-half, chosen at the highest budget all half's trials reached
